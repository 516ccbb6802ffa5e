/* model.c - the server's objects: rendering them as JSON per viewer, and pushing change packets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "model.h"

srv_state S;

/* ---------- small JSON writers ---------- */

void w_str(jbuf *b, const char *s)
{
    if (s) jbuf_string(b, s, strlen(s));
    else jbuf_puts(b, "null");
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

const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
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
    jbuf_puts(b, S.base_url);
    jbuf_putc(b, '/');
    jbuf_puts(b, kind);
    jbuf_putc(b, '/');
    if (strcmp(kind, "identities") == 0) srv_url_encode(b, id);
    else jbuf_puts(b, id);
    jbuf_putc(b, '"');
}

/* Accepts "layer:///<kind>/<uuid>" or a bare uuid; copies the uuid out. */
int parse_layer_uuid(const char *s, size_t n, const char *kind, char out[37])
{
    char prefix[64];
    size_t pl;
    snprintf(prefix, sizeof prefix, "layer:///%s/", kind);
    pl = strlen(prefix);
    if (n > pl && memcmp(s, prefix, pl) == 0) {
        s += pl;
        n -= pl;
    }
    if (!srv_is_uuid(s, n)) return 0;
    memcpy(out, s, 36);
    out[36] = 0;
    return 1;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Accepts "layer:///identities/<enc>" or a bare user id. */
int parse_identity(const char *s, size_t n, char *out, size_t osz)
{
    static const char pre[] = "layer:///identities/";
    size_t i, o = 0;
    int enc = 0;
    if (n > sizeof pre - 1 && memcmp(s, pre, sizeof pre - 1) == 0) {
        s += sizeof pre - 1;
        n -= sizeof pre - 1;
        enc = 1;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (enc && c == '%' && i + 2 < n + 0 && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            c = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= osz) return 0;
        out[o++] = c;
    }
    out[o] = 0;
    return srv_valid_user_id(out, o);
}

/* ---------- identities ---------- */

void ensure_identity(const char *user)
{
    sqlite3_stmt *st = store_prep("INSERT OR IGNORE INTO identities(user_id, display_name) VALUES(?1, ?1)");
    bind_text(st, 1, user);
    sqlite3_step(st);
}

int identity_exists(const char *user)
{
    sqlite3_stmt *st = store_prep("SELECT 1 FROM identities WHERE user_id=?");
    bind_text(st, 1, user);
    return sqlite3_step(st) == SQLITE_ROW;
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
    sqlite3_stmt *st = store_prep("SELECT display_name, avatar_url FROM identities WHERE user_id=?");
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
    static const char *names[] = {"display_name", "avatar_url", "first_name", "last_name",
                                  "email_address", "phone_number", "public_key", "type"};
    int i;
    sqlite3_stmt *st = store_prep(
        "SELECT display_name, avatar_url, first_name, last_name, email_address, phone_number, public_key,"
        " type, metadata FROM identities WHERE user_id=?");
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

/* ---------- membership ---------- */

int conv_member(const char *conv, const char *user, int64_t *from_pos)
{
    sqlite3_stmt *st = store_prep("SELECT from_pos FROM members WHERE conv=? AND user_id=? AND active=1");
    bind_text(st, 1, conv);
    bind_text(st, 2, user);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    if (from_pos) *from_pos = sqlite3_column_int64(st, 0);
    return 1;
}

int conv_members(const char *conv, char ***out)
{
    sqlite3_stmt *st = store_prep("SELECT user_id FROM members WHERE conv=? AND active=1 ORDER BY rowid");
    char **v = NULL;
    int n = 0;
    bind_text(st, 1, conv);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nv = realloc(v, sizeof *v * (size_t)(n + 1));
        if (!nv) break;
        v = nv;
        v[n++] = strdup(col_text(st, 0));
    }
    *out = v;
    return n;
}

void free_list(char **v, int n)
{
    int i;
    for (i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---------- messages ---------- */

static const char *status_name(int s)
{
    return s >= 2 ? "read" : s == 1 ? "delivered" : "sent";
}

void w_content(jbuf *b, const char *uuid, int64_t size)
{
    char sig[65], expires[24];
    unsigned char mac[32];
    char msg[80];
    int64_t exp = srv_now_ms() + 3600 * 1000;
    int i;
    snprintf(expires, sizeof expires, "%lld", (long long)exp);
    snprintf(msg, sizeof msg, "%s:%s", uuid, expires);
    srv_hmac256(S.content_key, strlen(S.content_key), msg, strlen(msg), mac);
    for (i = 0; i < 32; i++) sprintf(sig + 2 * i, "%02x", mac[i]);
    jbuf_puts(b, "{\"id\":\"layer:///content/");
    jbuf_puts(b, uuid);
    jbuf_puts(b, "\",\"size\":");
    jbuf_int(b, size);
    jbuf_puts(b, ",\"download_url\":\"");
    jbuf_puts(b, S.base_url);
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
        if (mt) jv_write(b, mt); else jbuf_puts(b, "null");
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
    sqlite3_stmt *st = store_prep("SELECT conv, pos, sender, sent_ms, parts FROM messages WHERE uuid=? AND deleted=0");
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
    st = store_prep("SELECT user_id, status FROM rstatus WHERE msg=? ORDER BY rowid");
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

/* A message the viewer may see: its conversation is theirs, it is past their
 * from_position and not hidden for them. Fills conv if given. */
int msg_visible(const char *uuid, const char *viewer, char conv[37], int64_t *pos)
{
    char c[37];
    int64_t p, from = 0;
    sqlite3_stmt *st = store_prep("SELECT conv, pos FROM messages WHERE uuid=? AND deleted=0");
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(c, sizeof c, "%s", col_text(st, 0));
    p = sqlite3_column_int64(st, 1);
    if (!conv_member(c, viewer, &from) || p <= from) return 0;
    st = store_prep("SELECT hidden FROM rstatus WHERE msg=? AND user_id=?");
    bind_text(st, 1, uuid);
    bind_text(st, 2, viewer);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0)) return 0;
    if (conv) memcpy(conv, c, 37);
    if (pos) *pos = p;
    return 1;
}

/* Rich content belongs to its uploader until a message carries it, then to the
 * conversations of the messages that do: a user sees it through one of those
 * messages they may see. Unknown and unfinished uploads are seen by nobody. */
int content_visible(const char *uuid, const char *user)
{
    char owner[160];
    int attached = 0;
    sqlite3_stmt *st = store_prep("SELECT owner FROM content WHERE uuid=? AND complete=1");
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(owner, sizeof owner, "%s", col_text(st, 0) ? col_text(st, 0) : "");
    st = store_prep("SELECT msg FROM content_refs WHERE content=?");
    bind_text(st, 1, uuid);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char msg[37];
        attached = 1;
        snprintf(msg, sizeof msg, "%s", col_text(st, 0) ? col_text(st, 0) : "");
        if (msg_visible(msg, user, NULL, NULL)) {
            sqlite3_reset(st);
            return 1;
        }
    }
    return !attached && strcmp(owner, user) == 0;
}

/* ---------- conversations ---------- */

int conv_last_message(const char *conv, const char *viewer, int64_t from, char out[37])
{
    sqlite3_stmt *st = store_prep(
        "SELECT uuid FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
        " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)"
        " ORDER BY pos DESC LIMIT 1");
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, from);
    bind_text(st, 3, viewer);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(out, 37, "%s", col_text(st, 0));
    return 1;
}

/* Unread counts are kept in members.unread: bumped on each new message,
 * recounted exactly after receipts, deletes and mark_all_read. */
int64_t conv_unread(const char *conv, const char *viewer, int64_t from)
{
    sqlite3_stmt *st = store_prep("SELECT unread FROM members WHERE conv=? AND user_id=?");
    (void)from;
    bind_text(st, 1, conv);
    bind_text(st, 2, viewer);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    return sqlite3_column_int64(st, 0);
}

void conv_unread_recount(const char *conv, const char *viewer)
{
    sqlite3_stmt *st = store_prep(
        "UPDATE members SET unread=(SELECT count(*) FROM messages m JOIN rstatus r ON r.msg=m.uuid AND r.user_id=?1"
        " WHERE m.conv=?2 AND m.deleted=0 AND m.pos>members.from_pos AND r.status<2 AND r.hidden=0 AND m.sender<>?1)"
        " WHERE conv=?2 AND user_id=?1");
    bind_text(st, 1, viewer);
    bind_text(st, 2, conv);
    sqlite3_step(st);
}

int w_conversation(jbuf *b, const char *uuid, const char *viewer)
{
    int64_t created, from = 0, total = 0;
    int distinct, i, n;
    char *meta, last[37], **mem;
    sqlite3_stmt *st = store_prep("SELECT created_ms, is_distinct, metadata FROM conversations WHERE uuid=?");
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
    jbuf_puts(b, S.base_url);
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
    st = store_prep("SELECT count(*) FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
                    " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)");
    bind_text(st, 1, uuid);
    sqlite3_bind_int64(st, 2, from);
    bind_text(st, 3, viewer);
    if (sqlite3_step(st) == SQLITE_ROW) total = sqlite3_column_int64(st, 0);
    jbuf_puts(b, ",\"total_message_count\":");
    jbuf_int(b, total);
    jbuf_puts(b, ",\"last_message\":");
    if (conv_last_message(uuid, viewer, from, last)) w_message(b, last, viewer);
    else jbuf_puts(b, "null");
    jbuf_putc(b, '}');
    return 1;
}

/* ---------- announcements ---------- */

int w_announcement(jbuf *b, const char *uuid, const char *viewer)
{
    char lid[64], *parts;
    int status;
    sqlite3_stmt *st = store_prep(
        "SELECT a.sent_ms, a.sender_name, a.parts, a.pos, r.status FROM announcements a JOIN ann_rcpt r"
        " ON r.ann=a.uuid AND r.user_id=? AND r.deleted=0 WHERE a.uuid=?");
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

/* ---------- packets ---------- */

static void conn_enqueue(srv_conn *c, const char *type, const char *body, size_t blen, int64_t ts_ms)
{
    jbuf b;
    srv_pkt *p;
    if (c->close_pending) return;
    if (c->qbytes > 16u * 1024 * 1024) { /* a reader that never reads: drop it */
        c->close_pending = 1;
        if (S.wake) S.wake(c);
        return;
    }
    c->counter += c->skip;
    c->skip = 0;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"type\":\"");
    jbuf_puts(&b, type);
    jbuf_puts(&b, "\",\"counter\":");
    jbuf_int(&b, c->counter++);
    jbuf_puts(&b, ",\"timestamp\":");
    w_iso(&b, ts_ms);
    jbuf_puts(&b, ",\"body\":");
    jbuf_putn(&b, body, blen);
    jbuf_putc(&b, '}');
    if (b.oom || !(p = malloc(sizeof *p + S.pkt_headroom + b.len))) {
        jbuf_free(&b);
        return;
    }
    p->next = NULL;
    p->len = b.len;
    memcpy(p->data + S.pkt_headroom, b.data, b.len);
    jbuf_free(&b);
    if (c->qtail) c->qtail->next = p;
    else c->qhead = p;
    c->qtail = p;
    c->qbytes += p->len;
    if (S.wake) S.wake(c);
}

void conn_send(srv_conn *c, const char *type, const char *body)
{
    conn_enqueue(c, type, body, strlen(body), srv_now_ms());
}

srv_pkt *srv_conn_pop(srv_conn *c)
{
    srv_pkt *p = c->qhead;
    if (!p) return NULL;
    c->qhead = p->next;
    if (!c->qhead) c->qtail = NULL;
    c->qbytes -= p->len;
    return p;
}

/* Body of a change/operation packet for one socket's API version. */
static void build_body(jbuf *b, int api, const char *kind, const char *op, const char *otype, const char *oid,
                       const char *data)
{
    jbuf_putc(b, '{');
    if (strcmp(kind, "operation") == 0) {
        jbuf_puts(b, "\"method\":");
        w_str(b, op);
        jbuf_puts(b, ",\"object\":{\"id\":");
        w_str(b, oid);
        jbuf_putc(b, '}');
    } else {
        jbuf_puts(b, "\"operation\":");
        w_str(b, (strcmp(op, "patch") == 0 && api == 2) ? "update" : op);
        jbuf_puts(b, ",\"object\":{\"type\":");
        w_str(b, otype);
        jbuf_puts(b, ",\"id\":");
        w_str(b, oid);
        jbuf_puts(b, ",\"url\":");
        if (strncmp(oid, "layer://", 8) == 0) {
            jbuf_putc(b, '"');
            jbuf_puts(b, S.base_url);
            jbuf_puts(b, oid + 8);
            jbuf_putc(b, '"');
        } else {
            jbuf_puts(b, "null");
        }
        jbuf_putc(b, '}');
    }
    jbuf_puts(b, ",\"data\":");
    jbuf_puts(b, data);
    jbuf_putc(b, '}');
}

void send_event(srv_conn *c, const char *kind, const char *op, const char *otype, const char *oid, const char *data,
                int64_t ts_ms)
{
    jbuf b;
    jbuf_init(&b);
    build_body(&b, c->api, kind, op, otype, oid, data);
    if (!b.oom) conn_enqueue(c, kind, b.data, b.len, ts_ms);
    jbuf_free(&b);
}

/* Each recipient's events get strictly increasing timestamps (the clock, or
 * one past the last logged one), so Event.replay from a timestamp is exact
 * and two identical changes in one millisecond stay two packets. The last
 * stamp is read from the log, so a restarted server continues it. */
static int64_t next_event_ts(const char *user)
{
    int64_t now = srv_now_ms(), last = 0;
    sqlite3_stmt *st = store_prep("SELECT MAX(ts_ms) FROM events WHERE user_id=?");
    bind_text(st, 1, user);
    if (sqlite3_step(st) == SQLITE_ROW) last = sqlite3_column_int64(st, 0);
    return last >= now ? last + 1 : now;
}

/* Record a change in the user's event log and push it to their sockets
 * (except those catching up through Event.replay: the log reaches them). */
void emit(const char *user, const char *kind, const char *op, const char *otype, const char *oid, const char *data)
{
    srv_conn *c;
    int64_t ts = next_event_ts(user);
    sqlite3_stmt *st = store_prep(
        "INSERT INTO events(user_id, ts_ms, kind, op, otype, oid, data) VALUES(?,?,?,?,?,?,?)");
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, ts);
    bind_text(st, 3, kind);
    bind_text(st, 4, op);
    bind_text(st, 5, otype);
    bind_text(st, 6, oid);
    bind_text(st, 7, data);
    sqlite3_step(st);
    for (c = srv_user_conns(user); c; c = c->hnext)
        if (strcmp(c->user, user) == 0 && !c->replaying) send_event(c, kind, op, otype, oid, data, ts);
}

static void object_id(char *out, size_t n, const char *otype, const char *uuid)
{
    const char *kind = strcmp(otype, "Message") == 0        ? "messages"
                       : strcmp(otype, "Announcement") == 0 ? "announcements"
                                                            : "conversations";
    snprintf(out, n, "layer:///%s/%s", kind, uuid);
}

void emit_conv(const char *user, const char *op, const char *uuid, const char *data)
{
    char oid[64];
    object_id(oid, sizeof oid, "Conversation", uuid);
    emit(user, "change", op, "Conversation", oid, data);
}

void emit_msg(const char *user, const char *op, const char *uuid, const char *data)
{
    char oid[64];
    object_id(oid, sizeof oid, "Message", uuid);
    emit(user, "change", op, "Message", oid, data);
}

void emit_members(const char *conv, const char *kind, const char *op, const char *otype, const char *uuid,
                  const char *data)
{
    char oid[64], **mem;
    int i, n = conv_members(conv, &mem);
    object_id(oid, sizeof oid, otype, uuid);
    for (i = 0; i < n; i++) emit(mem[i], kind, op, otype, oid, data);
    free_list(mem, n);
}

/* A read receipt: everyone else learns the reader's recipient_status; the reader's
 * own copy also stops being unread, so its cached is_unread is never stale. */
void emit_read_receipt(const char *conv, const char *reader, const char *otype, const char *uuid,
                       const char *status_patch)
{
    char oid[64], **mem;
    int i, n = conv ? conv_members(conv, &mem) : 0;
    jbuf own;
    jbuf_init(&own);
    jbuf_puts(&own, status_patch);
    if (own.len) own.len--; /* drop the closing ']' */
    jbuf_puts(&own, ",{\"operation\":\"set\",\"property\":\"is_unread\",\"value\":false}]");
    jbuf_putc(&own, 0);
    object_id(oid, sizeof oid, otype, uuid);
    for (i = 0; i < n; i++)
        if (strcmp(mem[i], reader)) emit(mem[i], "change", "patch", otype, oid, status_patch);
    if (conv) free_list(mem, n);
    if (!own.oom) emit(reader, "change", "patch", otype, oid, own.data);
    jbuf_free(&own);
}

/* Conversation patch telling `user` its last_message and unread count. */
void emit_conv_summary(const char *user, const char *conv, int with_last)
{
    jbuf b;
    int64_t from = 0;
    char last[37];
    if (!conv_member(conv, user, &from)) return;
    jbuf_init(&b);
    jbuf_putc(&b, '[');
    if (with_last) {
        if (conv_last_message(conv, user, from, last)) {
            jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"last_message\",\"id\":\"layer:///messages/");
            jbuf_puts(&b, last);
            jbuf_puts(&b, "\",\"value\":");
            w_message(&b, last, user);
            jbuf_puts(&b, "},");
        } else {
            jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"last_message\",\"value\":null},");
        }
    }
    jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"unread_message_count\",\"value\":");
    jbuf_int(&b, conv_unread(conv, user, from));
    jbuf_puts(&b, "}]");
    if (!b.oom) emit_conv(user, "patch", conv, b.data);
    jbuf_free(&b);
}

int receipt_level(const jv *type)
{
    if (!type || type->type != JV_STRING) return 0;
    if (strcmp(type->u.s, "read") == 0) return 2;
    return strcmp(type->u.s, "delivery") == 0 ? 1 : 0;
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
    /* recipient_status.<identity id>, dots in the id escaped for Layer-Patch */
    jbuf id;
    size_t i;
    jbuf_init(&id);
    jbuf_puts(&id, "recipient_status.layer:///identities/");
    srv_url_encode(&id, user);
    {
        jbuf esc;
        jbuf_init(&esc);
        for (i = 0; i < id.len; i++) {
            if (i >= 17 && id.data[i] == '.') jbuf_putc(&esc, '\\');
            jbuf_putc(&esc, id.data[i]);
        }
        jbuf_string(b, esc.data, esc.len);
        jbuf_free(&esc);
    }
    jbuf_free(&id);
}
