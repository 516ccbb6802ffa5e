/* admin.c - the admin interface (§8): identities, announcements, fault injection and session shortcuts for tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "fanout.h"
#include "handlers.h"

static srv_conn *each_user_conn(srv_conn *from, const char *user)
{
    for (; from; from = from->next)
        if (!user || strcmp(from->user, user) == 0) return from;
    return NULL;
}

/* user: the body's user_id, "" when absent (checked by admin_request). */
static void admin_identities(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    if (!user[0]) {
        err_resp(r, 422, "missing_property", 104, "user_id is required", NULL);
        return;
    }
    identity_update(user, body, 1);
    r->status = 201;
    w_full_identity(&r->body, user);
}

/* Store the announcement and give it to each recipient, who gets a create change. */
static void store_announcement(const char *uuid, const jv *rc, const jv *sender, const char *parts)
{
    char u[160];
    uint32_t i;
    sqlite3_stmt *st;
    int64_t pos;
    store_begin();
    st = sql(Q_ANN_NEXT_POS);
    pos = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    st = sql(Q_ANN_INSERT);
    bind_text(st, 1, uuid);
    sqlite3_bind_int64(st, 2, srv_now_ms());
    bind_text(st, 3, sender && sender->type == JV_STRING ? sender->u.s : "Admin");
    bind_text(st, 4, parts);
    sqlite3_bind_int64(st, 5, pos);
    sqlite3_step(st);
    for (i = 0; i < rc->len; i++) {
        char oid[64];
        jbuf d;
        parse_identity(rc->u.items[i].u.s, rc->u.items[i].len, u, sizeof u);
        ensure_identity(u);
        st = sql(Q_ANN_RCPT_ADD);
        bind_text(st, 1, uuid);
        bind_text(st, 2, u);
        sqlite3_step(st);
        jbuf_init(&d);
        w_announcement(&d, uuid, u);
        jbuf_putc(&d, 0);
        snprintf(oid, sizeof oid, "layer:///announcements/%s", uuid);
        emit(u, "change", "create", "Announcement", oid, d.data);
        jbuf_free(&d);
    }
    store_commit();
}

static void admin_announcements(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    const jv *rc = jv_get(body, "recipients"), *sender = jv_get(body, "sender_name"), *v;
    char uuid[37], u[160];
    jbuf parts;
    const char *bad = NULL;
    uint32_t i;
    if (!rc || rc->type != JV_ARRAY || rc->len == 0) {
        err_resp(r, 422, "missing_property", 104, "recipients (array of user ids) is required", NULL);
        return;
    }
    for (i = 0; i < rc->len; i++) {
        if (rc->u.items[i].type != JV_STRING || !parse_identity(rc->u.items[i].u.s, rc->u.items[i].len, u, sizeof u)) {
            err_resp(r, 422, "invalid_property", 105, "recipients holds an invalid user id", NULL);
            return;
        }
    }
    jbuf_init(&parts);
    v = jv_get(body, "parts");
    if (!v || v->type != JV_ARRAY || v->len == 0)
        bad = "parts must be a non-empty array";
    else
        jv_write(&parts, v);
    jbuf_putc(&parts, 0);
    if (bad) {
        err_resp(r, 422, "invalid_property", 105, bad, NULL);
        jbuf_free(&parts);
        return;
    }
    srv_uuid(uuid);
    store_announcement(uuid, rc, sender, parts.data);
    jbuf_free(&parts);
    r->status = 201;
    jbuf_puts(&r->body, "{\"id\":\"layer:///announcements/");
    jbuf_puts(&r->body, uuid);
    jbuf_puts(&r->body, "\"}");
}

/* The faults below answer {"affected": n}, or return -1 after answering 422. */
static int fault_http_error(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    const jv *stv = jv_get(body, "status"), *cnt = jv_get(body, "count"), *secs = jv_get(body, "seconds");
    int status = stv && stv->type == JV_INT ? (int)stv->u.i : 503;
    if (status != 429 && status != 503) {
        err_resp(r, 422, "invalid_property", 105, "status must be 429 or 503", NULL);
        return -1;
    }
    x->fault_status = status;
    x->fault_left = cnt && cnt->type == JV_INT && cnt->u.i > 0 ? (int)cnt->u.i : 1;
    x->fault_retry_after = secs && secs->type == JV_INT && secs->u.i > 0 ? (int)secs->u.i : 1;
    return x->fault_left;
}

static int fault_expire_session(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    const jv *tok = jv_get(body, "session_token");
    sqlite3_stmt *st;
    int n;
    if (tok && tok->type == JV_STRING) {
        st = sql(Q_SESSION_EXPIRE);
        bind_text(st, 1, tok->u.s);
    } else if (user[0]) {
        st = sql(Q_SESSION_EXPIRE_USER);
        bind_text(st, 1, user);
    } else {
        err_resp(r, 422, "missing_property", 104, "session_token or user_id is required", NULL);
        return -1;
    }
    sqlite3_step(st);
    n = store_changes();
    /* Sockets of an expired session go too: the client then validates, gets 401 and re-authenticates. */
    close_session_sockets(tok && tok->type == JV_STRING ? tok->u.s : NULL, user);
    return n;
}

/* close_sockets, skip_counter and stall_socket act on each open socket of the user. */
static int fault_sockets(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    const jv *t = jv_get(body, "type"), *cnt = jv_get(body, "count"), *secs = jv_get(body, "seconds");
    srv_conn *c;
    int n = 0;
    if (!user[0]) {
        err_resp(r, 422, "missing_property", 104, "user_id is required", NULL);
        return -1;
    }
    for (c = each_user_conn(registry_first(), user); c; c = each_user_conn(c->next, user)) {
        n++;
        if (t->u.s[0] == 'c') {
            c->close_pending = 1;
        } else if (t->u.s[1] == 'k') {
            c->skip += cnt && cnt->type == JV_INT && cnt->u.i > 0 ? (int)cnt->u.i : 1;
        } else {
            c->stall_until = srv_now_ms() + (secs && jv_is_number(secs) ? (int64_t)(jv_to_double(secs) * 1000) : 5000);
        }
        conn_wake(c);
    }
    return n;
}

static const struct {
    const char *type;
    int (*inject)(srv_ctx *x, const jv *body, const char *user, srv_resp *r);
} faults[] = {
    {"http_error", fault_http_error}, {"expire_session", fault_expire_session}, {"close_sockets", fault_sockets},
    {"skip_counter", fault_sockets},  {"stall_socket", fault_sockets},
};

static void admin_faults(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    const jv *t = jv_get(body, "type");
    size_t i;
    int n;
    if (!t || t->type != JV_STRING) {
        err_resp(r, 422, "missing_property", 104, "type is required", NULL);
        return;
    }
    for (i = 0; i < sizeof faults / sizeof faults[0]; i++)
        if (strcmp(t->u.s, faults[i].type) == 0) break;
    if (i == sizeof faults / sizeof faults[0]) {
        err_resp(r, 422, "invalid_property", 105, "unknown fault type", NULL);
        return;
    }
    if ((n = faults[i].inject(x, body, user, r)) < 0) return;
    r->status = 200;
    jbuf_puts(&r->body, "{\"affected\":");
    jbuf_int(&r->body, n);
    jbuf_putc(&r->body, '}');
}

/* Test shortcut: a session without the nonce dance. */
static void admin_sessions(srv_ctx *x, const jv *body, const char *user, srv_resp *r)
{
    if (!user[0]) {
        err_resp(r, 422, "missing_property", 104, "user_id is required", NULL);
        return;
    }
    ensure_identity(user);
    respond_new_session(x, user, r);
}

/* POST /admin/<name>: the body is an object, its user_id (if any) valid. */
static const struct {
    const char *name;
    void (*handle)(srv_ctx *x, const jv *body, const char *user, srv_resp *r);
} admin_routes[] = {
    {"identities", admin_identities},
    {"announcements", admin_announcements},
    {"faults", admin_faults},
    {"sessions", admin_sessions},
};

void admin_request(srv_ctx *x, const srv_req *q, char **seg, int nseg, const jv *body, srv_resp *r)
{
    const char *a = q->authorization;
    static const char pre[] = "Bearer ";
    const jv *v;
    char user[160];
    size_t i;
    if (!x->admin_token[0] || strncmp(a, pre, sizeof pre - 1) != 0 ||
        strlen(a + sizeof pre - 1) != strlen(x->admin_token) ||
        !srv_ct_equal(a + sizeof pre - 1, x->admin_token, strlen(x->admin_token))) {
        err_resp(r, 403, "access_denied", 101, "Admin token required", NULL);
        return;
    }
    if (q->method != M_POST || nseg != 2) {
        err_resp(r, 404, "invalid_endpoint", 106, "Unknown admin endpoint", NULL);
        return;
    }
    if (!body || body->type != JV_OBJECT) {
        err_resp(r, 422, "invalid_property", 105, "Body must be a JSON object", NULL);
        return;
    }
    v = jv_get(body, "user_id");
    user[0] = 0;
    if (v && (v->type != JV_STRING || !parse_identity(v->u.s, v->len, user, sizeof user))) {
        err_resp(r, 422, "invalid_property", 105, "user_id is invalid", NULL);
        return;
    }
    for (i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++)
        if (strcmp(seg[1], admin_routes[i].name) == 0) {
            admin_routes[i].handle(x, body, user, r);
            return;
        }
    err_resp(r, 404, "invalid_endpoint", 106, "Unknown admin endpoint", NULL);
}
