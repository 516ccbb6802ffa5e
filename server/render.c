/* render.c - the server's objects as JSON: identities, messages and their parts, conversations
 * and announcements as one viewer sees them, and the small writers and patches they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "patch.h"
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"

static char base_url[256];
static char content_key[65]; /* signs download URLs */

void render_configure(const char *url, const char *key)
{
    snprintf(base_url, sizeof base_url, "%s", url);
    snprintf(content_key, sizeof content_key, "%s", key);
}

const char *render_base_url(void) { return base_url; }

void content_signature(const char *uuid, const char *expires, char hex[65])
{
    char msg[96];
    unsigned char mac[32];
    int i;
    snprintf(msg, sizeof msg, "%s:%s", uuid, expires);
    srv_hmac256(content_key, strlen(content_key), msg, strlen(msg), mac);
    for (i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", mac[i]);
}

/* ---------- small JSON writers ---------- */

void w_str(jbuf *b, const char *s)
{
    if (s)
        jbuf_string(b, s, strlen(s));
    else
        jbuf_puts(b, "null");
}

void w_key(jbuf *b, const char *k)
{
    jbuf_string(b, k, strlen(k));
    jbuf_putc(b, ':');
}

void w_iso(jbuf *b, int64_t ms)
{
    char t[32];
    srv_iso(ms, t);
    w_str(b, t);
}

/* ---------- ids and urls ---------- */

void w_identity_id(jbuf *b, const char *user)
{
    jbuf_putc(b, '"');
    jbuf_puts(b, "layer:///identities/");
    srv_url_encode(b, user);
    jbuf_putc(b, '"');
}

void w_url(jbuf *b, const char *kind, const char *id)
{
    jbuf_putc(b, '"');
    jbuf_puts(b, base_url);
    jbuf_putc(b, '/');
    jbuf_puts(b, kind);
    jbuf_putc(b, '/');
    if (strcmp(kind, "identities") == 0)
        srv_url_encode(b, id);
    else
        jbuf_puts(b, id);
    jbuf_putc(b, '"');
}

/* How every identity form opens: the brace, then id, url and user_id. */
static void w_identity_head(jbuf *b, const char *user)
{
    jbuf_puts(b, "{\"id\":");
    w_identity_id(b, user);
    jbuf_puts(b, ",\"url\":");
    w_url(b, "identities", user);
    jbuf_puts(b, ",\"user_id\":");
    w_str(b, user);
}

void w_basic_identity(jbuf *b, const char *user)
{
    sqlite3_stmt *st = sql(Q_IDENTITY_BASIC);
    bind_text(st, 1, user);
    w_identity_head(b, user);
    if (sqlite3_step(st) == SQLITE_ROW) {
        jbuf_puts(b, ",\"display_name\":");
        w_str(b, col_text(st, 0));
        jbuf_puts(b, ",\"avatar_url\":");
        w_str(b, col_text(st, 1));
    } else {
        jbuf_puts(b, ",\"display_name\":");
        w_str(b, user);
        jbuf_puts(b, ",\"avatar_url\":null");
    }
    jbuf_putc(b, '}');
}

int w_full_identity(jbuf *b, const char *user)
{
    static const char *names[] = {"display_name",  "avatar_url",   "first_name", "last_name",
                                  "email_address", "phone_number", "public_key", "type"};
    int i;
    sqlite3_stmt *st = sql(Q_IDENTITY_FULL);
    bind_text(st, 1, user);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    w_identity_head(b, user);
    for (i = 0; i < 8; i++) {
        jbuf_putc(b, ',');
        w_key(b, names[i]);
        w_str(b, col_text(st, i));
    }
    jbuf_puts(b, ",\"metadata\":");
    jbuf_puts(b, col_text(st, 8) ? col_text(st, 8) : "{}");
    jbuf_putc(b, '}');
    return 1;
}

/* ---------- messages ---------- */

static const char *status_name(int s) { return s >= 2 ? "read" : s == 1 ? "delivered" : "sent"; }

void w_content(jbuf *b, const char *uuid, int64_t size)
{
    char sig[65], expires[24];
    int64_t exp = srv_now_ms() + 3600 * 1000;
    snprintf(expires, sizeof expires, "%lld", (long long)exp);
    content_signature(uuid, expires, sig);
    jbuf_puts(b, "{\"id\":\"layer:///content/");
    jbuf_puts(b, uuid);
    jbuf_puts(b, "\",\"size\":");
    jbuf_int(b, size);
    jbuf_puts(b, ",\"download_url\":\"");
    jbuf_puts(b, base_url);
    jbuf_puts(b, "/content-download/");
    jbuf_puts(b, uuid);
    jbuf_puts(b, "?expires=");
    jbuf_puts(b, expires);
    jbuf_puts(b, "&sig=");
    jbuf_puts(b, sig);
    jbuf_puts(b, "\",\"expiration\":");
    w_iso(b, exp);
    jbuf_puts(b, ",\"refresh_url\":");
    w_url(b, "content", uuid);
    jbuf_putc(b, '}');
}

/* Parts are stored normalized: [{"mime_type","body"?,"encoding"?,"content"?:{"id","size"}}]. */
static void w_parts(jbuf *b, const char *layer_id, const char *stored)
{
    jv_doc *d = jv_parse(stored, strlen(stored), NULL, NULL);
    const jv *a = d ? jv_root(d) : NULL;
    uint32_t i;
    jbuf_putc(b, '[');
    for (i = 0; a && a->type == JV_ARRAY && i < a->len; i++) {
        const jv *p = &a->u.items[i];
        const jv *mt = jv_get(p, "mime_type"), *body = jv_get(p, "body"), *enc = jv_get(p, "encoding");
        const jv *content = jv_get(p, "content");
        if (i) jbuf_putc(b, ',');
        jbuf_puts(b, "{\"id\":\"");
        jbuf_puts(b, layer_id);
        jbuf_puts(b, "/parts/");
        jbuf_int(b, i);
        jbuf_puts(b, "\",\"mime_type\":");
        if (mt)
            jv_write(b, mt);
        else
            jbuf_puts(b, "null");
        if (body) {
            jbuf_puts(b, ",\"body\":");
            jv_write(b, body);
            jbuf_puts(b, ",\"size\":");
            jbuf_int(b, body->type == JV_STRING ? body->len : 0);
        }
        if (enc) {
            jbuf_puts(b, ",\"encoding\":");
            jv_write(b, enc);
        }
        if (content) {
            const jv *cid = jv_get(content, "id"), *size = jv_get(content, "size");
            char u[37];
            if (cid && cid->type == JV_STRING && parse_layer_uuid(cid->u.s, cid->len, "content", u)) {
                int64_t sz = size && size->type == JV_INT ? size->u.i : 0;
                jbuf_puts(b, ",\"size\":");
                jbuf_int(b, sz);
                jbuf_puts(b, ",\"content\":");
                w_content(b, u, sz);
            }
        }
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ']');
    jv_doc_free(d);
}

int w_message(jbuf *b, const char *uuid, const char *viewer)
{
    char conv[37], sender[160], lid[64], *parts;
    int64_t pos, sent;
    int vstat = 2;
    sqlite3_stmt *st = sql(Q_MSG_GET);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(conv, sizeof conv, "%s", col_text(st, 0));
    pos = sqlite3_column_int64(st, 1);
    snprintf(sender, sizeof sender, "%s", col_text(st, 2));
    sent = sqlite3_column_int64(st, 3);
    parts = strdup(col_text(st, 4) ? col_text(st, 4) : "[]");
    snprintf(lid, sizeof lid, "layer:///messages/%s", uuid);
    jbuf_puts(b, "{\"id\":\"");
    jbuf_puts(b, lid);
    jbuf_puts(b, "\",\"url\":");
    w_url(b, "messages", uuid);
    jbuf_puts(b, ",\"conversation\":{\"id\":\"layer:///conversations/");
    jbuf_puts(b, conv);
    jbuf_puts(b, "\",\"url\":");
    w_url(b, "conversations", conv);
    jbuf_puts(b, "},\"parts\":");
    w_parts(b, lid, parts ? parts : "[]");
    free(parts);
    jbuf_puts(b, ",\"sent_at\":");
    w_iso(b, sent);
    jbuf_puts(b, ",\"received_at\":");
    w_iso(b, sent);
    jbuf_puts(b, ",\"sender\":");
    w_basic_identity(b, sender);
    jbuf_puts(b, ",\"recipient_status\":{");
    st = sql(Q_RSTATUS_OF_MSG);
    bind_text(st, 1, uuid);
    {
        int first = 1;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *u = col_text(st, 0);
            int s = sqlite3_column_int(st, 1);
            if (!first) jbuf_putc(b, ',');
            first = 0;
            w_identity_id(b, u);
            jbuf_putc(b, ':');
            w_str(b, status_name(s));
            if (strcmp(u, viewer) == 0) vstat = s;
        }
    }
    jbuf_puts(b, "},\"is_unread\":");
    jbuf_puts(b, (vstat < 2 && strcmp(sender, viewer) != 0) ? "true" : "false");
    jbuf_puts(b, ",\"position\":");
    jbuf_int(b, pos);
    jbuf_putc(b, '}');
    return 1;
}

int w_conversation(jbuf *b, const char *uuid, const char *viewer)
{
    int64_t created, from = 0, total = 0;
    int distinct, i, n;
    char *meta, last[37], **mem;
    sqlite3_stmt *st = sql(Q_CONV_GET);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    created = sqlite3_column_int64(st, 0);
    distinct = sqlite3_column_int(st, 1);
    meta = strdup(col_text(st, 2) ? col_text(st, 2) : "{}");
    conv_member(uuid, viewer, &from);
    jbuf_puts(b, "{\"id\":\"layer:///conversations/");
    jbuf_puts(b, uuid);
    jbuf_puts(b, "\",\"url\":");
    w_url(b, "conversations", uuid);
    jbuf_puts(b, ",\"messages_url\":\"");
    jbuf_puts(b, base_url);
    jbuf_puts(b, "/conversations/");
    jbuf_puts(b, uuid);
    jbuf_puts(b, "/messages\",\"created_at\":");
    w_iso(b, created);
    jbuf_puts(b, ",\"participants\":[");
    n = conv_members(uuid, &mem);
    for (i = 0; i < n; i++) {
        if (i) jbuf_putc(b, ',');
        w_basic_identity(b, mem[i]);
    }
    free_list(mem, n);
    jbuf_puts(b, "],\"distinct\":");
    jbuf_puts(b, distinct ? "true" : "false");
    jbuf_puts(b, ",\"metadata\":");
    jbuf_puts(b, meta ? meta : "{}");
    free(meta);
    jbuf_puts(b, ",\"unread_message_count\":");
    jbuf_int(b, conv_unread(uuid, viewer, from));
    st = sql(Q_MSG_COUNT_VISIBLE_TOTAL);
    bind_text(st, 1, uuid);
    sqlite3_bind_int64(st, 2, from);
    bind_text(st, 3, viewer);
    if (sqlite3_step(st) == SQLITE_ROW) total = sqlite3_column_int64(st, 0);
    jbuf_puts(b, ",\"total_message_count\":");
    jbuf_int(b, total);
    jbuf_puts(b, ",\"last_message\":");
    if (conv_last_message(uuid, viewer, from, last))
        w_message(b, last, viewer);
    else
        jbuf_puts(b, "null");
    jbuf_putc(b, '}');
    return 1;
}

/* ---------- announcements ---------- */

int w_announcement(jbuf *b, const char *uuid, const char *viewer)
{
    char lid[64], *parts;
    int status;
    sqlite3_stmt *st = sql(Q_ANN_GET);
    bind_text(st, 1, viewer);
    bind_text(st, 2, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(lid, sizeof lid, "layer:///announcements/%s", uuid);
    jbuf_puts(b, "{\"id\":\"");
    jbuf_puts(b, lid);
    jbuf_puts(b, "\",\"url\":");
    w_url(b, "announcements", uuid);
    jbuf_puts(b, ",\"sent_at\":");
    w_iso(b, sqlite3_column_int64(st, 0));
    jbuf_puts(b, ",\"received_at\":");
    w_iso(b, sqlite3_column_int64(st, 0));
    /* A service sender: Layer's `name`, and the `display_name` SDKs read for any sender. */
    jbuf_puts(b, ",\"sender\":{\"id\":null,\"name\":");
    w_str(b, col_text(st, 1));
    jbuf_puts(b, ",\"display_name\":");
    w_str(b, col_text(st, 1));
    jbuf_puts(b, "},\"position\":");
    jbuf_int(b, sqlite3_column_int64(st, 3));
    status = sqlite3_column_int(st, 4);
    jbuf_puts(b, ",\"is_unread\":");
    jbuf_puts(b, status < 2 ? "true" : "false");
    jbuf_puts(b, ",\"recipient_status\":{");
    w_identity_id(b, viewer);
    jbuf_putc(b, ':');
    w_str(b, status_name(status));
    jbuf_puts(b, "},\"parts\":");
    parts = strdup(col_text(st, 2) ? col_text(st, 2) : "[]");
    w_parts(b, lid, parts ? parts : "[]");
    free(parts);
    jbuf_putc(b, '}');
    return 1;
}

void receipt_status_patch(jbuf *b, const char *user, int level)
{
    jbuf_puts(b, "[{\"operation\":\"set\",\"property\":");
    escaped_identity_prop(b, user);
    jbuf_puts(b, ",\"value\":");
    w_str(b, level == 2 ? "read" : "delivered");
    jbuf_puts(b, "}]");
    jbuf_putc(b, 0);
}

void escaped_identity_prop(jbuf *b, const char *user)
{
    /* recipient_status.<identity id>, the id escaped as the client's cache escapes it */
    jbuf id, prop;
    jbuf_init(&id);
    jbuf_init(&prop);
    jbuf_puts(&id, "layer:///identities/");
    srv_url_encode(&id, user);
    jbuf_puts(&prop, "recipient_status.");
    lp_escape_segment(&prop, id.data, id.len);
    jbuf_string(b, prop.data, prop.len);
    jbuf_free(&prop);
    jbuf_free(&id);
}
