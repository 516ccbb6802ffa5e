/* actions.c - creating conversations and messages, shared by REST and WebSocket (patches, deletes
 * and receipts live with their resource: conversations.c, messages.c, announcements.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "fanout.h"
#include "actions.h"
#include "handlers.h"
#include "patch.h"

#define MAX_PARTICIPANTS 25
#define MAX_PART_CHARS 2048
/* What one conversation's metadata may hold (docs/protocol.md §6), so that
 * no create or patch within the body limit makes a conversation that costs
 * every later read, patch and change packet without bound. */
#define MAX_META_BYTES (64 * 1024) /* as stored: compact JSON */
#define MAX_META_KEYS 1024         /* object members, at every level */
#define MAX_META_DEPTH 8           /* the metadata object itself is level 1 */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The distinct key: sorted participant ids, one per line. */
static char *participant_key(char **users, int n)
{
    jbuf b;
    char **sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1));
    int i;
    if (!sorted) return NULL;
    if (n) memcpy(sorted, users, sizeof *sorted * (size_t)n); /* nobody left: users is NULL */
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    jbuf_init(&b);
    for (i = 0; i < n; i++) {
        jbuf_puts(&b, sorted[i]);
        jbuf_putc(&b, '\n');
    }
    jbuf_putc(&b, 0);
    free(sorted);
    return b.data;
}

void update_pkey_pub(const char *conv)
{
    char **mem;
    int n = conv_members(conv, &mem);
    char *key = participant_key(mem, n);
    sqlite3_stmt *st = sql(Q_CONV_SET_PKEY);
    bind_text(st, 1, key ? key : "");
    bind_text(st, 2, conv);
    sqlite3_step(st);
    free(key);
    free_list(mem, n);
}

/* One participant entry: identity id, bare user id, or an identity object. */
int participant_user_jv(const jv *p, char *out, size_t osz)
{
    const jv *id;
    if (p->type == JV_STRING) return parse_identity(p->u.s, p->len, out, osz);
    if (p->type != JV_OBJECT) return 0;
    if ((id = jv_get(p, "id")) && id->type == JV_STRING) return parse_identity(id->u.s, id->len, out, osz);
    if ((id = jv_get(p, "user_id")) && id->type == JV_STRING) return parse_identity(id->u.s, id->len, out, osz);
    return 0;
}

/* Counts v's object members into *keys; 0 once past a limit. */
static int meta_walk(const jv *v, int level, long *keys)
{
    uint32_t i;
    if (v->type != JV_OBJECT && v->type != JV_ARRAY) return 1;
    if (level > MAX_META_DEPTH) return 0;
    if (v->type == JV_OBJECT && (*keys += v->len) > MAX_META_KEYS) return 0;
    for (i = 0; i < v->len; i++)
        if (!meta_walk(v->type == JV_OBJECT ? &v->u.members[i].value : &v->u.items[i], level + 1, keys)) return 0;
    return 1;
}

const char *metadata_over_limits(const jv *meta, size_t json_bytes)
{
    long keys = 0;
    if (json_bytes > MAX_META_BYTES) return "metadata over 64 KiB (as JSON)";
    if (!meta_walk(meta, 1, &keys))
        return keys > MAX_META_KEYS ? "metadata over 1024 keys" : "metadata nests deeper than 8 levels";
    return NULL;
}

static int add_unique(char ***v, int *n, const char *u)
{
    int i;
    char **nv;
    for (i = 0; i < *n; i++)
        if (strcmp((*v)[i], u) == 0) return 1;
    nv = realloc(*v, sizeof **v * (size_t)(*n + 1));
    if (!nv) return 0;
    *v = nv;
    (*v)[(*n)++] = strdup(u);
    return 1;
}

static void conv_body(srv_resp *r, const char *uuid, const char *user, int status)
{
    r->status = status;
    r->body.len = 0;
    w_conversation(&r->body, uuid, user);
}

/* The checks of a create body that need no lookup: participants, distinct, metadata and id.
 * Returns 0 after answering 422; uuid gets the id asked for, or a new one. */
static int check_conv_create(const jv *data, srv_resp *r, int *distinct, char uuid[37])
{
    const jv *parts, *dist, *meta, *idv;
    if (!data || data->type != JV_OBJECT) {
        err_resp(r, 422, "invalid_property", 105, "Body must be a JSON object", NULL);
        return 0;
    }
    parts = jv_get(data, "participants");
    if (!parts) {
        err_resp(r, 422, "missing_property", 104, "participants is required", NULL);
        return 0;
    }
    if (parts->type != JV_ARRAY) {
        err_resp(r, 422, "invalid_property", 105, "participants must be an array", NULL);
        return 0;
    }
    if (parts->len == 0) {
        err_resp(r, 422, "invalid_property", 105, "participants must name at least one identity", NULL);
        return 0;
    }
    dist = jv_get(data, "distinct");
    if (dist && dist->type != JV_TRUE && dist->type != JV_FALSE && dist->type != JV_NULL) {
        err_resp(r, 422, "invalid_property", 105, "distinct must be a boolean", NULL);
        return 0;
    }
    *distinct = !(dist && dist->type == JV_FALSE);
    meta = jv_get(data, "metadata");
    if (meta && meta->type != JV_OBJECT && meta->type != JV_NULL) {
        err_resp(r, 422, "invalid_property", 105, "metadata must be an object", NULL);
        return 0;
    }
    idv = jv_get(data, "id");
    if (idv && idv->type != JV_NULL) {
        if (idv->type != JV_STRING || !parse_layer_uuid(idv->u.s, idv->len, "conversations", uuid)) {
            err_resp(r, 422, "invalid_property", 105, "id must be layer:///conversations/<uuid>", NULL);
            return 0;
        }
    } else {
        srv_uuid(uuid);
    }
    return 1;
}

/* Deduplication: the same create sent twice. Returns 1 after answering 409. */
static int answer_id_in_use(const char *uuid, const char *user, srv_resp *r)
{
    sqlite3_stmt *st = sql(Q_CONV_EXISTS);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    if (conv_member(uuid, user, NULL)) {
        jbuf d;
        jbuf_init(&d);
        w_conversation(&d, uuid, user);
        jbuf_putc(&d, 0);
        err_resp(r, 409, "id_in_use", 111, "The conversation already exists", d.data);
        jbuf_free(&d);
    } else {
        err_resp(r, 409, "id_in_use", 111, "The id is in use", NULL);
    }
    return 1;
}

/* A distinct conversation with the same participants (key): answered 200 when its metadata
 * matches, 409 when not. Returns 1 when one exists. */
static int answer_distinct_exists(const char *key, const jv *meta, const char *user, srv_resp *r)
{
    sqlite3_stmt *st = sql(Q_CONV_FIND_DISTINCT);
    char found[37];
    int same = 1;
    bind_text(st, 1, key);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(found, sizeof found, "%s", col_text(st, 0));
    if (meta && meta->type == JV_OBJECT && meta->len > 0) {
        const char *stored = col_text(st, 1);
        jv_doc *sd = jv_parse(stored ? stored : "{}", stored ? strlen(stored) : 2, NULL, NULL);
        same = sd && jv_deep_equal(jv_root(sd), meta);
        jv_doc_free(sd);
    }
    if (same) {
        conv_body(r, found, user, 200);
    } else {
        jbuf d;
        jbuf_init(&d);
        w_conversation(&d, found, user);
        jbuf_putc(&d, 0);
        err_resp(r, 409, "conflict", 108,
                 "A distinct conversation with these participants exists with different metadata", d.data);
        jbuf_free(&d);
    }
    return 1;
}

/* Store the new conversation with its members, each of whom gets a create change. */
static void store_new_conv(const char *uuid, int distinct, const char *key, const char *metadata, char **users, int n)
{
    sqlite3_stmt *st;
    int i;
    store_begin();
    st = sql(Q_CONV_INSERT);
    bind_text(st, 1, uuid);
    sqlite3_bind_int64(st, 2, srv_now_ms());
    sqlite3_bind_int(st, 3, distinct);
    bind_text(st, 4, key ? key : "");
    bind_text(st, 5, metadata);
    sqlite3_bind_int64(st, 6, srv_now_ms());
    sqlite3_step(st);
    for (i = 0; i < n; i++) {
        ensure_identity(users[i]);
        st = sql(Q_MEMBER_ADD);
        bind_text(st, 1, uuid);
        bind_text(st, 2, users[i]);
        sqlite3_step(st);
    }
    for (i = 0; i < n; i++) {
        jbuf d;
        jbuf_init(&d);
        w_conversation(&d, uuid, users[i]);
        jbuf_putc(&d, 0);
        emit_conv(users[i], "create", uuid, d.data);
        jbuf_free(&d);
    }
    store_commit();
}

void act_conv_create(const char *user, const jv *data, srv_resp *r)
{
    const jv *parts, *meta;
    char uuid[37], u[160], **users = NULL, *key = NULL;
    int n = 0, i, distinct = 1;
    jbuf mb;

    if (!check_conv_create(data, r, &distinct, uuid)) return;
    parts = jv_get(data, "participants");
    meta = jv_get(data, "metadata");
    for (i = 0; i < (int)parts->len; i++) {
        if (!participant_user_jv(&parts->u.items[i], u, sizeof u)) {
            err_resp(r, 422, "invalid_property", 105, "participants holds an invalid identity", NULL);
            free_list(users, n);
            return;
        }
        add_unique(&users, &n, u);
    }
    add_unique(&users, &n, user);
    if (n > MAX_PARTICIPANTS) {
        err_resp(r, 422, "invalid_property", 105, "a conversation has at most 25 participants", NULL);
        free_list(users, n);
        return;
    }
    jbuf_init(&mb);
    if (meta && meta->type == JV_OBJECT)
        jv_write(&mb, meta);
    else
        jbuf_puts(&mb, "{}");
    if (meta && meta->type == JV_OBJECT) {
        const char *over = metadata_over_limits(meta, mb.len);
        if (over) {
            err_resp(r, 422, "invalid_property", 105, over, NULL);
            jbuf_free(&mb);
            free_list(users, n);
            return;
        }
    }
    jbuf_putc(&mb, 0);
    if (answer_id_in_use(uuid, user, r)) goto out;
    key = participant_key(users, n);
    if (distinct && key && answer_distinct_exists(key, meta, user, r)) goto out;
    store_new_conv(uuid, distinct, key, mb.data, users, n);
    conv_body(r, uuid, user, 201);
out:
    free(key);
    jbuf_free(&mb);
    free_list(users, n);
}

/* Length of a UTF-8 string in UTF-16 code units, as JavaScript counts it. */
static size_t utf16_len(const char *s, size_t n)
{
    size_t i, units = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue;
        units += (c >= 0xF0) ? 2 : 1;
    }
    return units;
}

/* Validates parts and writes their normalized form; returns an error message or NULL. */
static const char *normalize_parts(const jv *parts, const char *user, jbuf *out)
{
    uint32_t i;
    if (!parts || parts->type != JV_ARRAY || parts->len == 0) return "parts must be a non-empty array";
    if (parts->len > 64) return "too many parts";
    jbuf_putc(out, '[');
    for (i = 0; i < parts->len; i++) {
        const jv *p = &parts->u.items[i];
        const jv *mt = jv_get(p, "mime_type"), *body = jv_get(p, "body"), *enc = jv_get(p, "encoding");
        const jv *content = jv_get(p, "content");
        if (p->type != JV_OBJECT) return "each part must be an object";
        if (!mt || mt->type != JV_STRING || mt->len == 0 || mt->len > 255) return "part mime_type is required";
        if (i) jbuf_putc(out, ',');
        jbuf_puts(out, "{\"mime_type\":");
        jv_write(out, mt);
        if (enc && enc->type != JV_NULL) {
            if (enc->type != JV_STRING || strcmp(enc->u.s, "base64") != 0) return "part encoding must be base64";
            jbuf_puts(out, ",\"encoding\":\"base64\"");
        }
        if (content && content->type != JV_NULL) {
            const jv *cid = jv_get(content, "id");
            char u[37];
            sqlite3_stmt *st;
            if (content->type != JV_OBJECT || !cid || cid->type != JV_STRING ||
                !parse_layer_uuid(cid->u.s, cid->len, "content", u))
                return "part content must carry a layer:///content/<uuid> id";
            /* Content the sender may not see is refused exactly as an unknown id. */
            if (!content_visible(u, user)) return "part content is unknown or not uploaded";
            st = sql(Q_CONTENT_SIZE);
            bind_text(st, 1, u);
            if (sqlite3_step(st) != SQLITE_ROW) return "part content is unknown or not uploaded";
            jbuf_puts(out, ",\"content\":{\"id\":\"layer:///content/");
            jbuf_puts(out, u);
            jbuf_puts(out, "\",\"size\":");
            jbuf_int(out, sqlite3_column_int64(st, 0));
            jbuf_putc(out, '}');
        } else {
            if (!body || body->type != JV_STRING) return "part body must be a string";
            if (utf16_len(body->u.s, body->len) > MAX_PART_CHARS)
                return "part body over 2048 characters: use rich content";
            jbuf_puts(out, ",\"body\":");
            jv_write(out, body);
        }
        jbuf_putc(out, '}');
    }
    jbuf_putc(out, ']');
    jbuf_putc(out, 0);
    return NULL;
}

/* Deduplication: the same create sent twice. Returns 1 after answering 409. */
static int answer_msg_id_in_use(const char *uuid, const char *user, srv_resp *r)
{
    sqlite3_stmt *st = sql(Q_MSG_EXISTS);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    if (msg_visible(uuid, user, NULL, NULL)) {
        jbuf d;
        jbuf_init(&d);
        w_message(&d, uuid, user);
        jbuf_putc(&d, 0);
        err_resp(r, 409, "id_in_use", 111, "The message already exists", d.data);
        jbuf_free(&d);
    } else {
        err_resp(r, 409, "id_in_use", 111, "The id is in use", NULL);
    }
    return 1;
}

/* Store the message at the conversation's next position, with the content it refers to. */
static void store_new_message(const char *conv, const char *uuid, const char *user, const char *parts)
{
    int64_t pos;
    sqlite3_stmt *st = sql(Q_CONV_TAKE_POS);
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, srv_now_ms());
    pos = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    sqlite3_reset(st);
    st = sql(Q_MSG_INSERT);
    bind_text(st, 1, uuid);
    bind_text(st, 2, conv);
    sqlite3_bind_int64(st, 3, pos);
    bind_text(st, 4, user);
    sqlite3_bind_int64(st, 5, srv_now_ms());
    bind_text(st, 6, parts);
    sqlite3_step(st);
    /* From now on the content belongs to this message's conversation (see content_visible). */
    st = sql(Q_CONTENT_REFS_ADD);
    bind_text(st, 1, uuid);
    bind_text(st, 2, parts);
    sqlite3_step(st);
}

/* Receipt rows for every member: read for the sender, unread (and counted) for the others. */
static void store_new_receipts(const char *conv, const char *uuid, const char *user, char **mem, int n)
{
    sqlite3_stmt *st;
    int i;
    for (i = 0; i < n; i++) {
        st = sql(Q_RSTATUS_SET);
        bind_text(st, 1, uuid);
        bind_text(st, 2, mem[i]);
        sqlite3_bind_int(st, 3, strcmp(mem[i], user) == 0 ? 2 : 0);
        sqlite3_step(st);
        if (strcmp(mem[i], user) != 0) {
            st = sql(Q_MEMBER_UNREAD_INC);
            bind_text(st, 1, conv);
            bind_text(st, 2, mem[i]);
            sqlite3_step(st);
        }
    }
}

/* Each member gets the message's create and the conversation's last_message patch. */
static void emit_new_message(const char *conv, const char *uuid, const char *user, char **mem, int n)
{
    /* Two renderings serve everyone: only is_unread differs (sender vs recipients). */
    jbuf mine, theirs, patch;
    int i;
    jbuf_init(&mine);
    jbuf_init(&theirs);
    jbuf_init(&patch);
    w_message(&mine, uuid, user);
    jbuf_putc(&mine, 0);
    for (i = 0; i < n; i++) {
        if (strcmp(mem[i], user) != 0) {
            w_message(&theirs, uuid, mem[i]);
            break;
        }
    }
    jbuf_putc(&theirs, 0);
    for (i = 0; i < n; i++) {
        const char *text = strcmp(mem[i], user) == 0 || theirs.len <= 1 ? mine.data : theirs.data;
        emit_msg(mem[i], "create", uuid, text);
        patch.len = 0;
        jbuf_puts(&patch, "[{\"operation\":\"set\",\"property\":\"last_message\",\"id\":\"layer:///messages/");
        jbuf_puts(&patch, uuid);
        jbuf_puts(&patch, "\",\"value\":");
        jbuf_puts(&patch, text);
        jbuf_puts(&patch, "},{\"operation\":\"set\",\"property\":\"unread_message_count\",\"value\":");
        jbuf_int(&patch, conv_unread(conv, mem[i], 0));
        jbuf_puts(&patch, "}]");
        jbuf_putc(&patch, 0);
        emit_conv(mem[i], "patch", conv, patch.data);
    }
    jbuf_free(&mine);
    jbuf_free(&theirs);
    jbuf_free(&patch);
}

void act_msg_create(const char *user, const char *conv, const jv *data, srv_resp *r)
{
    const jv *idv;
    const char *bad;
    char uuid[37], **mem;
    int n;
    jbuf parts;

    if (!conv_member(conv, user, NULL)) {
        err_resp(r, 404, "not_found", 102, "No such conversation", NULL);
        return;
    }
    if (!data || data->type != JV_OBJECT) {
        err_resp(r, 422, "invalid_property", 105, "Body must be a JSON object", NULL);
        return;
    }
    idv = jv_get(data, "id");
    if (idv && idv->type != JV_NULL) {
        if (idv->type != JV_STRING || !parse_layer_uuid(idv->u.s, idv->len, "messages", uuid)) {
            err_resp(r, 422, "invalid_property", 105, "id must be layer:///messages/<uuid>", NULL);
            return;
        }
    } else {
        srv_uuid(uuid);
    }
    if (!jv_get(data, "parts")) {
        err_resp(r, 422, "missing_property", 104, "parts is required", NULL);
        return;
    }
    if (answer_msg_id_in_use(uuid, user, r)) return;
    jbuf_init(&parts);
    if ((bad = normalize_parts(jv_get(data, "parts"), user, &parts)) != NULL) {
        err_resp(r, 422, "invalid_property", 105, bad, NULL);
        jbuf_free(&parts);
        return;
    }
    store_begin();
    store_new_message(conv, uuid, user, parts.data);
    jbuf_free(&parts);
    n = conv_members(conv, &mem);
    store_new_receipts(conv, uuid, user, mem, n);
    emit_new_message(conv, uuid, user, mem, n);
    free_list(mem, n);
    store_commit();
    r->status = 201;
    r->body.len = 0;
    w_message(&r->body, uuid, user);
}
