/* ws.c - the WebSocket side: a socket's opening and closing, the requests and signals it sends
 * (a table by method), Event.replay and presence. The registry itself is fanout.c's. */
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

static void presence_follow_sockets(const srv_ctx *x, srv_conn *c, int opened);

void srv_conn_open(srv_ctx *x, srv_conn *c)
{
    sqlite3_stmt *st = sql(Q_SESSION_EXPIRES);
    bind_text(st, 1, c->token);
    c->session_expires_ms = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    registry_add(c);
    presence_follow_sockets(x, c, 1);
}

void srv_conn_closed(srv_ctx *x, srv_conn *c)
{
    if (registry_remove(c)) presence_follow_sockets(x, c, 0);
}

/* rid_json: the request_id as JSON text, or "" for null */
static void ws_response_raw(srv_conn *c, const char *method, const char *rid_json, int ok, const char *data,
                            size_t dlen)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"method\":");
    w_str(&b, method);
    jbuf_puts(&b, ",\"request_id\":");
    jbuf_puts(&b, rid_json[0] ? rid_json : "null");
    jbuf_puts(&b, ",\"success\":");
    jbuf_puts(&b, ok ? "true" : "false");
    jbuf_puts(&b, ",\"data\":");
    if (data && dlen)
        jbuf_putn(&b, data, dlen);
    else
        jbuf_puts(&b, "{}");
    jbuf_putc(&b, '}');
    jbuf_putc(&b, 0);
    if (!b.oom) conn_send(c, "response", b.data);
    jbuf_free(&b);
}

/* The request_id as JSON text into out (n bytes); "" when absent or too long. */
static void rid_text(const jv *rid, char *out, size_t n)
{
    jbuf r;
    out[0] = 0;
    if (!rid || rid->type != JV_STRING || rid->len > 128) return;
    jbuf_init(&r);
    jv_write(&r, rid);
    if (!r.oom && r.len < n) {
        memcpy(out, r.data, r.len);
        out[r.len] = 0;
    }
    jbuf_free(&r);
}

static void ws_response(srv_conn *c, const char *method, const jv *rid, int ok, const char *data, size_t dlen)
{
    char rj[136];
    rid_text(rid, rj, sizeof rj);
    ws_response_raw(c, method, rj, ok, data, dlen);
}

/* Event.replay sends the log in batches while the socket's queue is short,
 * so a large backlog never trips the per-socket limit, and answers once it
 * has caught up with the log (live events of the user included). */
#define REPLAY_QUEUE_LOW (1u << 20)
#define REPLAY_BATCH 64

void srv_replay_pump(srv_conn *c)
{
    int rows = 0;
    sqlite3_stmt *st;
    char d[64];
    if (!c->replaying || c->close_pending) return;
    while (c->qbytes < REPLAY_QUEUE_LOW) {
        st = sql(Q_EVENT_BATCH);
        bind_text(st, 1, c->user);
        sqlite3_bind_int64(st, 2, c->replay_from);
        sqlite3_bind_int64(st, 3, c->replay_seq);
        sqlite3_bind_int(st, 4, REPLAY_BATCH);
        rows = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            c->replay_seq = sqlite3_column_int64(st, 0);
            send_event(c, col_text(st, 2), col_text(st, 3), col_text(st, 4), col_text(st, 5), col_text(st, 6),
                       sqlite3_column_int64(st, 1));
            c->replay_count++;
            rows++;
        }
        if (rows < REPLAY_BATCH) break;
    }
    if (rows >= REPLAY_BATCH || c->qbytes >= REPLAY_QUEUE_LOW) return; /* more after the queue drains */
    c->replaying = 0;
    snprintf(d, sizeof d, "{\"count\":%d}", c->replay_count);
    ws_response_raw(c, "Event.replay", c->replay_rid, 1, d, strlen(d));
}

static void ws_error(srv_conn *c, const char *method, const jv *rid, const char *id, int code, const char *msg)
{
    srv_resp r;
    srv_resp_init(&r);
    err_resp(&r, 400, id, code, msg, NULL);
    ws_response(c, method, rid, 0, r.body.data, r.body.len);
    srv_resp_free(&r);
}

/* Whether user has an open socket other than `except`. */
static int user_online(const char *user, const srv_conn *except)
{
    srv_conn *o;
    for (o = srv_user_conns(user); o; o = o->hnext)
        if (o != except && strcmp(o->user, user) == 0) return 1;
    return 0;
}

/* The status others see for a stored choice: `auto` is available while the user has a
 * socket open (other than `except`) and offline otherwise; invisible shows offline. */
static const char *presence_shown(const char *stored, const char *user, const srv_conn *except)
{
    if (!stored || strcmp(stored, "invisible") == 0) return "offline";
    if (strcmp(stored, "auto") == 0) return user_online(user, except) ? "available" : "offline";
    return stored;
}

static void presence_push(const char *user, const char *status);

/* A user whose presence is auto goes offline with their last socket, and comes back
 * with their first one; peers get the patch. */
static void presence_follow_sockets(const srv_ctx *x, srv_conn *c, int opened)
{
    sqlite3_stmt *st;
    if (x->stopping || !c->user[0] || user_online(c->user, c)) return;
    if (!store_is_open() || !(st = sql(Q_IDENTITY_PRESENCE))) return;
    bind_text(st, 1, c->user);
    if (sqlite3_step(st) != SQLITE_ROW || !col_text(st, 0) || strcmp(col_text(st, 0), "auto")) return;
    st = sql(Q_IDENTITY_SET_LAST_SEEN);
    sqlite3_bind_int64(st, 1, srv_now_ms());
    bind_text(st, 2, c->user);
    sqlite3_step(st);
    presence_push(c->user, opened ? "available" : "offline");
}

static void presence_sync(srv_conn *c, const jv *data, const jv *rid)
{
    const jv *ids = data ? jv_get(data, "ids") : NULL;
    jbuf b;
    uint32_t i;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"changes\":[");
    for (i = 0; ids && ids->type == JV_ARRAY && i < ids->len && i < 500; i++) {
        char u[160];
        sqlite3_stmt *st;
        const jv *e = &ids->u.items[i];
        if (e->type != JV_STRING || !parse_identity(e->u.s, e->len, u, sizeof u)) continue;
        st = sql(Q_IDENTITY_PRESENCE_SEEN);
        bind_text(st, 1, u);
        if (sqlite3_step(st) != SQLITE_ROW) continue;
        if (b.data[b.len - 1] != '[') jbuf_putc(&b, ',');
        jbuf_puts(&b, "{\"operation\":");
        w_str(&b, c->api == 2 ? "update" : "patch");
        jbuf_puts(&b, ",\"object\":{\"type\":\"Identity\",\"id\":");
        w_identity_id(&b, u);
        jbuf_puts(&b, ",\"url\":");
        w_url(&b, "identities", u);
        jbuf_puts(&b, "},\"data\":[{\"operation\":\"set\",\"property\":\"presence.status\",\"value\":");
        w_str(&b, presence_shown(col_text(st, 0), u, NULL));
        jbuf_puts(&b, "},{\"operation\":\"set\",\"property\":\"presence.last_seen_at\",\"value\":");
        w_iso(&b, sqlite3_column_int64(st, 1));
        jbuf_puts(&b, "}]}");
    }
    jbuf_puts(&b, "]}");
    ws_response(c, "Presence.sync", rid, 1, b.data, b.len);
    jbuf_free(&b);
}

/* Presence is not logged for replay (Presence.sync covers a reconnect): the
 * patch goes live to the user and everyone sharing a conversation with them. */
static void presence_push(const char *user, const char *status)
{
    jbuf d, oid;
    char **peers = NULL;
    int n = 0, i;
    sqlite3_stmt *st = sql(Q_PRESENCE_PEERS);
    bind_text(st, 1, user);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nv = realloc(peers, sizeof *peers * (size_t)(n + 1));
        if (!nv) break;
        peers = nv;
        peers[n++] = strdup(col_text(st, 0));
    }
    jbuf_init(&d);
    jbuf_init(&oid);
    jbuf_puts(&d, "[{\"operation\":\"set\",\"property\":\"presence.status\",\"value\":");
    w_str(&d, strcmp(status, "invisible") == 0 ? "offline" : status);
    jbuf_puts(&d, "},{\"operation\":\"set\",\"property\":\"presence.last_seen_at\",\"value\":");
    w_iso(&d, srv_now_ms());
    jbuf_puts(&d, "}]");
    jbuf_putc(&d, 0);
    w_identity_id(&oid, user);
    jbuf_putc(&oid, 0);
    oid.data[oid.len - 2] = 0; /* drop the closing quote */
    for (i = 0; i < n; i++) {
        srv_conn *o;
        for (o = srv_user_conns(peers[i]); o; o = o->hnext)
            if (strcmp(o->user, peers[i]) == 0)
                send_event(o, "change", "patch", "Identity", oid.data + 1, d.data, srv_now_ms());
    }
    free_list(peers, n);
    jbuf_free(&d);
    jbuf_free(&oid);
}

/* ---------- requests, by method ---------- */

/* One request: its method name m (for the response), request_id, data and object_id. */
typedef struct {
    srv_conn *c;
    const char *m;
    const jv *rid, *data, *obj;
} ws_req;

static void ws_counter_read(const ws_req *q)
{
    char d[64];
    snprintf(d, sizeof d, "{\"counter\":%lld}", (long long)(q->c->counter > 0 ? q->c->counter - 1 : 0));
    ws_response(q->c, q->m, q->rid, 1, d, strlen(d));
}

static void ws_event_replay(const ws_req *q)
{
    srv_conn *c = q->c;
    const jv *ts = q->data ? jv_get(q->data, "from_timestamp") : NULL;
    int64_t from;
    if (!ts || ts->type != JV_STRING || !srv_parse_iso(ts->u.s, &from)) {
        ws_error(c, q->m, q->rid, "invalid_property", 105, "data.from_timestamp must be an ISO-8601 UTC time");
        return;
    }
    if (c->replaying) {
        ws_error(c, q->m, q->rid, "invalid_request", 107, "an Event.replay is already in progress on this socket");
        return;
    }
    c->replaying = 1;
    c->replay_from = from;
    c->replay_seq = 0;
    c->replay_count = 0;
    rid_text(q->rid, c->replay_rid, sizeof c->replay_rid);
    srv_replay_pump(c);
}

/* Conversation.create and Message.create answer as their REST forms would, in a response. */
static void ws_create(const ws_req *q)
{
    srv_resp r;
    srv_resp_init(&r);
    if (q->m[0] == 'C') {
        act_conv_create(q->c->user, q->data, &r);
    } else {
        char conv[37];
        if (!q->obj || q->obj->type != JV_STRING || !parse_layer_uuid(q->obj->u.s, q->obj->len, "conversations", conv))
            err_resp(&r, 404, "not_found", 102, "object_id must be a conversation you take part in", NULL);
        else
            act_msg_create(q->c->user, conv, q->data, &r);
    }
    ws_response(q->c, q->m, q->rid, r.status < 300, r.body.data, r.body.len);
    srv_resp_free(&r);
}

static void ws_presence_subscribe(const ws_req *q) { ws_response(q->c, q->m, q->rid, 1, NULL, 0); }

static void ws_presence_update(const ws_req *q)
{
    const jv *data = q->data;
    uint32_t i;
    for (i = 0; data && data->type == JV_ARRAY && i < data->len; i++) {
        const jv *prop = jv_get(&data->u.items[i], "property"), *val = jv_get(&data->u.items[i], "value");
        if (prop && prop->type == JV_STRING && strcmp(prop->u.s, "status") == 0 && val && val->type == JV_STRING) {
            const char *s = val->u.s;
            sqlite3_stmt *st;
            if (strcmp(s, "auto") && strcmp(s, "available") && strcmp(s, "away") && strcmp(s, "busy") &&
                strcmp(s, "offline") && strcmp(s, "invisible")) {
                ws_error(q->c, q->m, q->rid, "invalid_property", 105, "unknown presence status");
                return;
            }
            st = sql(Q_IDENTITY_SET_PRESENCE);
            bind_text(st, 1, s);
            sqlite3_bind_int64(st, 2, srv_now_ms());
            bind_text(st, 3, q->c->user);
            sqlite3_step(st);
            presence_push(q->c->user, presence_shown(s, q->c->user, NULL));
        }
    }
    ws_response(q->c, q->m, q->rid, 1, NULL, 0);
}

static void ws_presence_sync(const ws_req *q) { presence_sync(q->c, q->data, q->rid); }

static const struct {
    const char *method;
    void (*run)(const ws_req *q);
} ws_methods[] = {
    {"Counter.read", ws_counter_read},
    {"Event.replay", ws_event_replay},
    {"Conversation.create", ws_create},
    {"Message.create", ws_create},
    {"Presence.subscribe", ws_presence_subscribe},
    {"Presence.update", ws_presence_update},
    {"Presence.sync", ws_presence_sync},
};

static void ws_request(const srv_ctx *x, srv_conn *c, const jv *body)
{
    const jv *method = jv_get(body, "method");
    ws_req q;
    size_t i;
    q.c = c;
    q.rid = jv_get(body, "request_id");
    q.data = jv_get(body, "data");
    q.obj = jv_get(body, "object_id");
    if (!method || method->type != JV_STRING) {
        ws_error(c, NULL, q.rid, "missing_property", 104, "request needs a method");
        return;
    }
    q.m = method->u.s;
    if (x->log_level >= 2) fprintf(stderr, "layer-server: WS %.64s %.64s\n", c->user, q.m);
    for (i = 0; i < sizeof ws_methods / sizeof ws_methods[0]; i++) {
        if (strcmp(q.m, ws_methods[i].method) == 0) {
            ws_methods[i].run(&q);
            return;
        }
    }
    ws_error(c, q.m, q.rid, "invalid_endpoint", 106, "unknown method");
}

static void ws_signal(srv_conn *c, const jv *body)
{
    const jv *type = jv_get(body, "type"), *obj = jv_get(body, "object"), *data = jv_get(body, "data");
    const jv *oid = obj ? jv_get(obj, "id") : NULL, *action = data ? jv_get(data, "action") : NULL;
    char conv[37], **mem;
    int n, i;
    jbuf b;
    if (!type || type->type != JV_STRING || strcmp(type->u.s, "typing_indicator") != 0) return;
    if (!oid || oid->type != JV_STRING || !parse_layer_uuid(oid->u.s, oid->len, "conversations", conv)) return;
    if (!action || action->type != JV_STRING ||
        (strcmp(action->u.s, "started") && strcmp(action->u.s, "paused") && strcmp(action->u.s, "finished")))
        return;
    if (!conv_member(conv, c->user, NULL)) return;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"type\":\"typing_indicator\",\"object\":{\"id\":\"layer:///conversations/");
    jbuf_puts(&b, conv);
    jbuf_puts(&b, "\"},\"data\":{\"action\":");
    w_str(&b, action->u.s);
    jbuf_puts(&b, ",\"sender\":");
    w_basic_identity(&b, c->user);
    jbuf_puts(&b, "}}");
    jbuf_putc(&b, 0);
    n = conv_members(conv, &mem);
    for (i = 0; i < n; i++) {
        srv_conn *o;
        if (strcmp(mem[i], c->user) == 0) continue;
        for (o = srv_user_conns(mem[i]); o; o = o->hnext)
            if (strcmp(o->user, mem[i]) == 0) conn_send(o, "signal", b.data);
    }
    free_list(mem, n);
    jbuf_free(&b);
}

int srv_ws_frame(srv_ctx *x, srv_conn *c, const char *data, size_t len)
{
    jv_error je;
    jv_doc *d;
    const jv *root, *type, *body;
    /* a frame already in flight when the session ended is not acted on */
    if (c->close_pending || c->session_expires_ms <= srv_now_ms()) {
        c->close_pending = 1;
        conn_wake(c);
        return 0;
    }
    d = jv_parse(data, len, &srv_body_limits, &je);
    if (!d) return 1007; /* not JSON: invalid frame payload data */
    root = jv_root(d);
    type = jv_get(root, "type");
    body = jv_get(root, "body");
    if (root->type != JV_OBJECT || !type || type->type != JV_STRING || !body || body->type != JV_OBJECT) {
        ws_error(c, NULL, NULL, "invalid_property", 105,
                 "a packet is {\"type\":\"request\"|\"signal\",\"body\":{...}}");
    } else if (strcmp(type->u.s, "request") == 0) {
        ws_request(x, c, body);
    } else if (strcmp(type->u.s, "signal") == 0) {
        ws_signal(c, body);
    } else {
        ws_error(c, NULL, jv_get(body, "request_id"), "invalid_property", 105, "unknown packet type");
    }
    jv_doc_free(d);
    return 0;
}
