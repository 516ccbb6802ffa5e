/* api.c - REST routing: the checks every request passes (path, body, Accept, faults, session), then
 * dispatch to the file of its resource (auth.c, conversations.c, messages.c, identities.c,
 * announcements.c, content.c, admin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "actions.h"
#include "handlers.h"

/* ---------- HTTP routing ---------- */

static int split_path(char *p, char **seg, int max)
{
    int n = 0;
    while (*p == '/') p++;
    while (*p && n < max) {
        seg[n++] = p;
        while (*p && *p != '/') p++;
        if (*p) *p++ = 0;
    }
    if (*p) return -1;
    return n;
}

static int path_ok(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

static int api_version(const char *accept)
{
    const char *v = strstr(accept, "application/vnd.layer+json");
    if (!v) return 0;
    v = strstr(v, "version=");
    if (!v) return 0;
    v += 8;
    if (strncmp(v, "2.0", 3) == 0) return 2;
    if (strncmp(v, "3.0", 3) == 0) return 3;
    return 0;
}

static int want_uuid(const char *s, char out[37], srv_resp *r, const char *what)
{
    if (!srv_is_uuid(s, strlen(s))) {
        err_resp(r, 404, "not_found", 102, what, NULL);
        return 0;
    }
    memcpy(out, s, 37);
    return 1;
}

/* One request on its way to a handler: what the routing has checked and parsed. */
typedef struct {
    srv_ctx *x;
    const srv_req *q;
    srv_resp *r;
    char **seg;
    int n;            /* path segments */
    const jv *body;   /* parsed JSON body, or NULL */
    const char *user; /* the session's user; NULL on routes without a session */
} route_ctx;

static void method_na(srv_resp *r)
{
    err_resp(r, 405, "method_not_allowed", 109, "Method not allowed on this resource", NULL);
}

static void unknown_endpoint(srv_resp *r) { err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL); }

static void route_nonces(const route_ctx *c)
{
    char nonce[65];
    if (c->q->method != M_POST) {
        method_na(c->r);
        return;
    }
    new_nonce(nonce);
    c->r->status = 201;
    jbuf_puts(&c->r->body, "{\"nonce\":\"");
    jbuf_puts(&c->r->body, nonce);
    jbuf_puts(&c->r->body, "\"}");
}

static void route_sessions(const route_ctx *c)
{
    int m = c->q->method;
    sqlite3_stmt *st;
    if (c->n == 1) {
        if (m != M_POST)
            method_na(c->r);
        else if (!c->body)
            err_resp(c->r, 422, "missing_property", 104, "identity_token is required", NULL);
        else
            do_sessions(c->x, c->body, c->r);
        return;
    }
    if (m != M_DELETE) {
        method_na(c->r);
        return;
    }
    st = sql(Q_SESSION_DELETE);
    bind_text(st, 1, c->seg[1]);
    sqlite3_step(st);
    close_session_sockets(c->seg[1], NULL); /* logged out means no more packets, not just no new logins */
    ok_empty(c->r);
}

static void route_conversations(const route_ctx *c)
{
    const srv_req *q = c->q;
    srv_resp *r = c->r;
    int m = q->method;
    char id[37];
    if (c->n == 1) {
        if (m == M_GET)
            list_conversations(q, c->user, r);
        else if (m == M_POST)
            act_conv_create(c->user, c->body, r);
        else
            method_na(r);
        return;
    }
    if (!want_uuid(c->seg[1], id, r, "No such conversation")) return;
    if (c->n == 2) {
        if (m == M_GET) {
            if (!conv_member(id, c->user, NULL))
                not_found(r, "No such conversation");
            else {
                r->status = 200;
                w_conversation(&r->body, id, c->user);
            }
        } else if (m == M_PATCH) {
            patch_conversation(c->user, id, q, r);
        } else if (m == M_DELETE) {
            delete_conversation(c->user, id, q, r);
        } else {
            method_na(r);
        }
    } else if (c->n == 3 && strcmp(c->seg[2], "messages") == 0) {
        if (m == M_GET)
            list_messages(q, c->user, id, r);
        else if (m == M_POST)
            act_msg_create(c->user, id, c->body, r);
        else
            method_na(r);
    } else if (c->n == 3 && strcmp(c->seg[2], "mark_all_read") == 0) {
        if (m == M_POST)
            mark_all_read(c->user, id, c->body, r);
        else
            method_na(r);
    } else {
        unknown_endpoint(r);
    }
}

static void route_messages(const route_ctx *c)
{
    srv_resp *r = c->r;
    int m = c->q->method;
    char id[37];
    if (!want_uuid(c->seg[1], id, r, "No such message")) return;
    if (c->n == 2) {
        if (m == M_GET) {
            if (!msg_visible(id, c->user, NULL, NULL))
                not_found(r, "No such message");
            else {
                r->status = 200;
                w_message(&r->body, id, c->user);
            }
        } else if (m == M_DELETE) {
            delete_message(c->user, id, c->q, r);
        } else {
            method_na(r);
        }
    } else if (strcmp(c->seg[2], "receipts") == 0) {
        if (m == M_POST)
            message_receipt(c->user, id, c->body, r);
        else
            method_na(r);
    } else {
        unknown_endpoint(r);
    }
}

static void route_identities(const route_ctx *c)
{
    if (c->q->method != M_GET)
        method_na(c->r);
    else if (c->n == 1)
        list_identities(c->q, c->user, c->r);
    else if (!srv_valid_user_id(c->seg[1], strlen(c->seg[1])))
        not_found(c->r, "No such identity");
    else
        get_identity(c->seg[1], c->r);
}

static void route_following(const route_ctx *c)
{
    const char *target = c->seg[2];
    int m = c->q->method;
    if (strcmp(c->seg[1], "users") != 0)
        unknown_endpoint(c->r);
    else if (!srv_valid_user_id(target, strlen(target)))
        not_found(c->r, "No such identity");
    else if (m == M_PUT)
        follow(c->user, target, 1, c->r);
    else if (m == M_DELETE)
        follow(c->user, target, 0, c->r);
    else
        method_na(c->r);
}

static void route_announcements(const route_ctx *c)
{
    char id[37];
    if (c->n == 1) {
        if (c->q->method == M_GET)
            list_announcements(c->q, c->user, c->r);
        else
            method_na(c->r);
    } else if (want_uuid(c->seg[1], id, c->r, "No such announcement")) {
        announcement_action(c->q->method, c->user, id, c->n == 3 ? c->seg[2] : NULL, c->body, c->r);
    }
}

static void route_content(const route_ctx *c)
{
    char id[37];
    if (c->n == 1) {
        if (c->q->method == M_POST)
            content_create(c->q, c->user, c->r);
        else
            method_na(c->r);
    } else if (want_uuid(c->seg[1], id, c->r, "No such content")) {
        if (c->q->method == M_GET)
            content_refresh(c->user, id, c->r);
        else
            method_na(c->r);
    }
}

static void route_push_tokens(const route_ctx *c)
{
    ok_empty(c->r); /* accepted and ignored: there is no push service here */
}

/* The Layer API by first path segment, for paths of min_seg..max_seg segments;
 * a route with needs_session 0 is served before the session is checked. */
static const struct {
    const char *name;
    int min_seg, max_seg, needs_session;
    void (*handle)(const route_ctx *c);
} routes[] = {
    {"nonces", 1, 1, 0, route_nonces},
    {"sessions", 1, 2, 0, route_sessions},
    {"conversations", 1, 8, 1, route_conversations},
    {"messages", 2, 3, 1, route_messages},
    {"identities", 1, 2, 1, route_identities},
    {"following", 3, 3, 1, route_following},
    {"announcements", 1, 3, 1, route_announcements},
    {"content", 1, 2, 1, route_content},
    {"push_tokens", 1, 2, 1, route_push_tokens},
};

static int find_route(char **seg, int n)
{
    size_t i;
    if (n < 1) return -1;
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (n >= routes[i].min_seg && n <= routes[i].max_seg && strcmp(seg[0], routes[i].name) == 0) return (int)i;
    return -1;
}

/* content-upload and content-download: raw bytes, no Layer headers, authorised by the URL
 * itself. Returns 1 when the path was one of them (and is answered). */
static int raw_transfer(const srv_req *q, char **seg, int n, srv_resp *r)
{
    char id[37];
    if (n == 3 && strcmp(seg[0], "content-upload") == 0) {
        if (q->method != M_PUT)
            method_na(r);
        else if (want_uuid(seg[1], id, r, "No such upload"))
            content_upload(q, id, seg[2], r);
        return 1;
    }
    if (n == 2 && strcmp(seg[0], "content-download") == 0) {
        if (q->method != M_GET && q->method != M_HEAD)
            method_na(r);
        else if (want_uuid(seg[1], id, r, "No such content"))
            content_download(q, id, r);
        return 1;
    }
    return 0;
}

/* JSON bodies: the SDK sends application/json (or the patch type); empty bodies are allowed.
 * Returns 0 after answering 415 or 400; *doc gets the parsed body (PATCH bodies stay raw). */
static int parse_body(const srv_req *q, srv_resp *r, jv_doc **doc)
{
    int m = q->method;
    int is_patch = strncasecmp(q->content_type, "application/vnd.layer-patch+json", 32) == 0;
    int is_json = strncasecmp(q->content_type, "application/json", 16) == 0;
    jv_error je;
    *doc = NULL;
    if (q->body_len == 0) return 1;
    if (m == M_PATCH ? !is_patch : !is_json) {
        err_resp(r, 415, "invalid_header", 107,
                 m == M_PATCH ? "PATCH needs Content-Type: application/vnd.layer-patch+json"
                              : "Content-Type must be application/json",
                 NULL);
        return 0;
    }
    if (m == M_PATCH) return 1;
    *doc = jv_parse(q->body, q->body_len, &srv_body_limits, &je);
    if (!*doc) {
        char msg[220];
        snprintf(msg, sizeof msg, "Malformed JSON: %s", je.message);
        err_resp(r, 400, "invalid_property", 105, msg, NULL);
        return 0;
    }
    return 1;
}

/* An injected 429 or 503 (admin faults), if one is pending: returns 1 after answering. */
static int injected_fault(srv_ctx *x, srv_resp *r)
{
    if (x->fault_left <= 0) return 0;
    x->fault_left--;
    r->retry_after = x->fault_retry_after;
    if (x->fault_status == 429)
        err_resp(r, 429, "rate_limit_exceeded", 7, "Rate limit exceeded (injected)", NULL);
    else
        err_resp(r, 503, "service_unavailable", 1, "Service unavailable (injected)", NULL);
    return 1;
}

/* The Layer API proper, once the body is parsed: Accept, then the session, then the route. */
static void layer_api(srv_ctx *x, const srv_req *q, char **seg, int n, const jv *body, srv_resp *r)
{
    char user[160], tok[160];
    int i = find_route(seg, n);
    route_ctx c = {x, q, r, seg, n, body, NULL};
    if (!api_version(q->accept)) {
        err_resp(r, 406, "invalid_header", 107, "Accept must be application/vnd.layer+json; version=2.0 or 3.0", NULL);
        return;
    }
    if (i >= 0 && !routes[i].needs_session) {
        routes[i].handle(&c);
        return;
    }
    if (!req_user(q, user, sizeof user, tok, sizeof tok)) {
        auth_required(r, tok[0] || q->authorization[0] ? "Session expired or invalid" : "Authentication required");
        return;
    }
    c.user = user;
    if (n == 0) {
        const char *action = srv_arg(q, "action");
        if (q->method == M_GET && action && strcmp(action, "validateConnectionForWebsocket") == 0) {
            r->status = 200;
            jbuf_puts(&r->body, "{}");
        } else {
            unknown_endpoint(r);
        }
    } else if (i >= 0) {
        routes[i].handle(&c);
    } else {
        unknown_endpoint(r);
    }
}

void srv_handle_http(srv_ctx *x, const srv_req *q, srv_resp *r)
{
    char pathbuf[1024], *seg[8];
    int n;
    jv_doc *bd = NULL;
    const jv *body;

    r->status = 500;
    if (!path_ok(q->path) || strlen(q->path) >= sizeof pathbuf) {
        err_resp(r, 404, "invalid_endpoint", 106, "Invalid path", NULL);
        return;
    }
    strcpy(pathbuf, q->path);
    n = split_path(pathbuf, seg, 8);
    if (n < 0) {
        unknown_endpoint(r);
        return;
    }
    if (q->method == M_OPTIONS || (n >= 1 && strcmp(seg[0], "ping") == 0)) {
        ok_empty(r);
        return;
    }
    if (q->body_too_large) {
        err_resp(r, 413, "invalid_property", 105, "Request body too large", NULL);
        if (!(n == 3 && strcmp(seg[0], "content-upload") == 0)) return;
    }
    if (raw_transfer(q, seg, n, r) || !parse_body(q, r, &bd)) return;
    body = bd ? jv_root(bd) : NULL;
    if (n >= 1 && strcmp(seg[0], "admin") == 0)
        admin_request(x, q, seg, n, body, r);
    else if (!injected_fault(x, r))
        layer_api(x, q, seg, n, body, r);
    jv_doc_free(bd);
}
