/* main.c - layer-server: command line, the libwebsockets service loop, and HTTP/WebSocket glue. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <libwebsockets.h>
#include "srv.h"

typedef struct pss pss_t;
struct pss {
    srv_conn conn; /* first: wake() gets a srv_conn* that is this struct */
    int is_ws;
    struct lws *wsi;
    /* While a body is awaited: its deadline, on the list tick() checks. */
    int64_t body_deadline;
    pss_t *bnext, *bprev;
    int in_body_list;
    srv_req *req;
    char *body;
    size_t body_len, body_cap, body_max;
    srv_resp *resp;
    size_t sent;
    int headers_done;
    int64_t t0;
};

static volatile sig_atomic_t stop_flag;
static int64_t deadline_ms;
static pid_t watch_pid;
static struct lws_context *ctx;
static srv_ctx server; /* the server context every srv_* call gets */
static lws_sorted_usec_list_t tick_sul;
static char pending_user[160], pending_token[80];

/* Slow clients. lws gives a connection request_timeout seconds from accept
 * to the end of its request head (timeout_secs_ah_idle), but restarts its
 * body timer at every chunk: the body's deadline is kept here, whole. */
static int request_timeout_s = 10;
static pss_t *body_waiters;

/* Connections per peer address: one address may hold at most this many of
 * the 4096 connections (and header slots) the server serves at once. */
static int max_conns_per_ip = 64;
typedef struct peer {
    struct peer *next;
    uint32_t addr; /* IPv4, network order; IPv6 is disabled */
    int conns;
} peer;
static peer *peers[1024];

static peer **peer_slot(uint32_t addr)
{
    peer **pp = &peers[(addr * 2654435761u) >> 22];
    while (*pp && (*pp)->addr != addr) pp = &(*pp)->next;
    return pp;
}

static int peer_conns(uint32_t addr)
{
    peer *e = *peer_slot(addr);
    return e ? e->conns : 0;
}

/* The connection's address is kept in the wsi's opaque pointer (never 0:
 * 0.0.0.0 is not a peer), so its close counts it out. */
static void peer_opened(struct lws *wsi)
{
    struct sockaddr_in sa;
    socklen_t n = sizeof sa;
    peer **pp, *e;
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&sa, &n) != 0 || sa.sin_family != AF_INET ||
        sa.sin_addr.s_addr == 0)
        return;
    pp = peer_slot(sa.sin_addr.s_addr);
    if (!*pp) {
        if (!(e = calloc(1, sizeof *e))) return;
        e->addr = sa.sin_addr.s_addr;
        *pp = e;
    }
    (*pp)->conns++;
    lws_set_opaque_user_data(wsi, (void *)(uintptr_t)sa.sin_addr.s_addr);
}

static void peer_closed(struct lws *wsi)
{
    uint32_t addr = (uint32_t)(uintptr_t)lws_get_opaque_user_data(wsi);
    peer **pp, *e;
    if (!addr) return;
    lws_set_opaque_user_data(wsi, NULL);
    pp = peer_slot(addr);
    if (!(e = *pp)) return;
    if (--e->conns <= 0) {
        *pp = e->next;
        free(e);
    }
}

static void body_wait(pss_t *p)
{
    if (p->in_body_list) return;
    p->body_deadline = srv_now_ms() + (int64_t)request_timeout_s * 1000;
    p->bprev = NULL;
    p->bnext = body_waiters;
    if (body_waiters) body_waiters->bprev = p;
    body_waiters = p;
    p->in_body_list = 1;
}

static void body_done(pss_t *p)
{
    if (!p->in_body_list) return;
    if (p->bprev)
        p->bprev->bnext = p->bnext;
    else
        body_waiters = p->bnext;
    if (p->bnext) p->bnext->bprev = p->bprev;
    p->bnext = p->bprev = NULL;
    p->in_body_list = 0;
}

/* Closes connections whose body is overdue. */
static void reap_slow_bodies(void)
{
    int64_t now = srv_now_ms();
    pss_t *p = body_waiters, *next;
    for (; p; p = next) {
        next = p->bnext;
        if (now < p->body_deadline) continue;
        body_done(p);
        if (server.log_level >= 2) fprintf(stderr, "layer-server: request body too slow, connection closed\n");
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    srv_tick();
    reap_slow_bodies();
    if (deadline_ms && srv_now_ms() >= deadline_ms) stop_flag = 1;
    if (watch_pid > 1 && kill(watch_pid, 0) != 0) stop_flag = 1;
    lws_sul_schedule(ctx, 0, sul, tick, 100 * LWS_US_PER_MS);
}

static void wake(srv_conn *c)
{
    if (c->wsi) lws_callback_on_writable((struct lws *)c->wsi);
}

static void log_request(pss_t *p)
{
    const char *path = p->req ? p->req->path : "?";
    static const char *mn[] = {"?", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    if (server.log_level < 2 || !p->req || !p->resp) return;
    /* Paths that embed a secret are shortened: session tokens never reach the log. */
    if (strncmp(path, "/sessions/", 10) == 0)
        path = "/sessions/<token>";
    else if (strncmp(path, "/content-upload/", 16) == 0)
        path = "/content-upload/<key>";
    fprintf(stderr, "layer-server: %s %s %d %lldms\n", mn[p->req->method < 8 ? p->req->method : 0], path,
            p->resp->status, (long long)(srv_now_ms() - p->t0));
}

static void http_reset(pss_t *p)
{
    int i;
    body_done(p);
    if (p->req) {
        for (i = 0; i < p->req->nargs; i++) free(p->req->args[i]);
        free(p->req);
    }
    if (p->resp) {
        srv_resp_free(p->resp);
        free(p->resp);
    }
    free(p->body);
    p->req = NULL;
    p->resp = NULL;
    p->body = NULL;
    p->body_len = p->body_cap = 0;
    p->sent = 0;
    p->headers_done = 0;
}

static void hdr(struct lws *wsi, char *dst, int len, enum lws_token_indexes t)
{
    dst[0] = 0;
    if (lws_hdr_total_length(wsi, t) < len) lws_hdr_copy(wsi, dst, len, t);
    if (lws_hdr_total_length(wsi, t) >= len) dst[0] = 0;
}

static void custom_hdr(struct lws *wsi, char *dst, int len, const char *name)
{
    int n = (int)strlen(name);
    dst[0] = 0;
    if (lws_hdr_custom_length(wsi, name, n) > 0 && lws_hdr_custom_length(wsi, name, n) < len)
        lws_hdr_custom_copy(wsi, dst, len, name, n);
}

static int run_request(struct lws *wsi, pss_t *p)
{
    body_done(p);
    p->resp = calloc(1, sizeof *p->resp);
    if (!p->resp) return -1;
    srv_resp_init(p->resp);
    p->req->body = p->body;
    p->req->body_len = p->body_len;
    srv_handle_http(&server, p->req, p->resp);
    lws_callback_on_writable(wsi);
    return 0;
}

static int begin_http(struct lws *wsi, pss_t *p, const char *uri)
{
    char *u;
    int ulen, meth, i;
    char buf[1024], cl[32];
    static const int map[] = {M_GET, M_POST, M_OPTIONS, M_PUT, M_PATCH, M_DELETE, 0, M_HEAD};
    http_reset(p);
    p->wsi = wsi;
    p->t0 = srv_now_ms();
    p->req = calloc(1, sizeof *p->req);
    if (!p->req) return -1;
    meth = lws_http_get_uri_and_method(wsi, &u, &ulen);
    p->req->method = (meth >= 0 && meth < 8) ? map[meth] : 0;
    snprintf(p->req->path, sizeof p->req->path, "%s", uri ? uri : "/");

    for (i = 0; i < SRV_MAX_ARGS; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;
        p->req->args[p->req->nargs++] = strdup(buf);
    }
    hdr(wsi, p->req->accept, sizeof p->req->accept, WSI_TOKEN_HTTP_ACCEPT);
    hdr(wsi, p->req->content_type, sizeof p->req->content_type, WSI_TOKEN_HTTP_CONTENT_TYPE);
    hdr(wsi, p->req->authorization, sizeof p->req->authorization, WSI_TOKEN_HTTP_AUTHORIZATION);
    hdr(wsi, p->req->host, sizeof p->req->host, WSI_TOKEN_HOST);
    custom_hdr(wsi, p->req->upload_type, sizeof p->req->upload_type, "upload-content-type:");
    custom_hdr(wsi, p->req->upload_len, sizeof p->req->upload_len, "upload-content-length:");
    hdr(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    p->body_max = strncmp(p->req->path, "/content-upload/", 16) == 0 ? SRV_MAX_UPLOAD : SRV_MAX_BODY;
    if (p->req->method == 0) {
        p->resp = calloc(1, sizeof *p->resp);
        if (!p->resp) return -1;
        srv_resp_init(p->resp);
        p->resp->status = 405;
        jbuf_puts(&p->resp->body, "{\"id\":\"method_not_allowed\",\"code\":109,\"message\":\"Method not "
                                  "allowed\",\"url\":null,\"data\":null}");
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (cl[0] && atoll(cl) > 0) { /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
        body_wait(p);
        return 0;
    }
    return run_request(wsi, p);
}

static int write_http(struct lws *wsi, pss_t *p)
{
    unsigned char buf[LWS_PRE + 16384], *start = buf + LWS_PRE, *q = start, *end = buf + sizeof buf - 1;
    srv_resp *r = p->resp;
    const unsigned char *body;
    size_t blen;
    if (!r) return 0;
    body = r->raw ? r->raw : (const unsigned char *)r->body.data;
    blen = r->raw ? r->raw_len : r->body.len;
    if (r->status == 204 || p->req->method == M_HEAD) blen = r->status == 204 ? 0 : blen;
    if (!p->headers_done) {
        char v[32];
        const char *ct = r->content_type ? r->content_type : "application/json";
        if (lws_add_http_common_headers(wsi, (unsigned)r->status, blen ? ct : NULL, p->req->method == M_HEAD ? 0 : blen,
                                        &q, end))
            return -1;
        if (r->layer_count >= 0) {
            snprintf(v, sizeof v, "%ld", r->layer_count);
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)"layer-count:", (unsigned char *)v,
                                            (int)strlen(v), &q, end))
                return -1;
        }
        if (r->retry_after > 0) {
            snprintf(v, sizeof v, "%d", r->retry_after);
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:", (unsigned char *)v,
                                            (int)strlen(v), &q, end))
                return -1;
        }
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"access-control-allow-origin:", (unsigned char *)"*", 1, &q, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-expose-headers:",
                                        (unsigned char *)"Layer-Count", 11, &q, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
                                        (unsigned char *)"GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD", 44, &q, end) ||
            lws_add_http_header_by_name(
                wsi, (const unsigned char *)"access-control-allow-headers:",
                (unsigned char *)"accept, content-type, authorization, client-id, layer-xdk-version, "
                                 "upload-content-type, upload-content-length, upload-origin",
                124, &q, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &q, end)) return -1;
        p->headers_done = 1;
        if (p->req->method == M_HEAD || blen == 0) goto complete;
        lws_callback_on_writable(wsi);
        return 0;
    }
    {
        size_t n = blen - p->sent > 16384 ? 16384 : blen - p->sent;
        int last = p->sent + n >= blen;
        memcpy(start, body + p->sent, n);
        if (lws_write(wsi, start, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n) return -1;
        p->sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
complete:
    log_request(p);
    http_reset(p);
    if (lws_http_transaction_completed(wsi)) return -1;
    return 0;
}

static int ws_path_ok(struct lws *wsi)
{
    char uri[256];
    hdr(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    return strcmp(uri, "/") == 0 || strcmp(uri, "/websocket") == 0 || strcmp(uri, "/ws/") == 0 ||
           strcmp(uri, "/ws") == 0 || strcmp(uri, "/websocket/") == 0;
}

/* ---------- HTTP reasons ---------- */

static int http_body(pss_t *p, const void *in, size_t len)
{
    if (!p->req) return -1;
    if (p->resp) return 0;
    if (p->body_len + len > p->body_max) {
        p->req->body_too_large = 1;
        return 0;
    }
    if (p->body_len + len + 1 > p->body_cap) {
        size_t cap = (p->body_len + len + 1) * 2;
        char *nb;
        if (cap > p->body_max + 1) cap = p->body_max + 1;
        nb = realloc(p->body, cap);
        if (!nb) return -1;
        p->body = nb;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, in, len);
    p->body_len += len;
    p->body[p->body_len] = 0;
    return 0;
}

static int http_body_complete(struct lws *wsi, pss_t *p)
{
    if (!p->req) return -1;
    if (p->resp) return 0; /* lws also reports completion of a zero-length body */
    return run_request(wsi, p);
}

/* ---------- connection reasons ---------- */

/* 1 (refuse) when the new connection's address already holds its share. */
static int crowded_peer(const struct lws_filter_network_conn_args *f)
{
    const struct sockaddr_in *sa = (const struct sockaddr_in *)&f->cli_addr;
    if (max_conns_per_ip <= 0 || sa->sin_family != AF_INET) return 0;
    if (peer_conns(sa->sin_addr.s_addr) < max_conns_per_ip) return 0;
    if (server.log_level >= 2) fprintf(stderr, "layer-server: connection refused: too many from one address\n");
    return 1;
}

/* ---------- WebSocket reasons ---------- */

/* The upgrade: a layer-* subprotocol on a socket path with a valid session, else refused (1). */
static int ws_filter(struct lws *wsi)
{
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    char buf[256];
    const char *tok;
    if (!pr || strncmp(pr->name, "layer-", 6) != 0 || !ws_path_ok(wsi)) return 1;
    tok = lws_get_urlarg_by_name(wsi, "session_token=", buf, sizeof buf);
    if (!tok || !srv_ws_authorize(tok, pending_user, sizeof pending_user)) {
        if (server.log_level >= 2) fprintf(stderr, "layer-server: WS upgrade refused (bad session)\n");
        return 1;
    }
    snprintf(pending_token, sizeof pending_token, "%s", tok);
    return 0;
}

static int ws_established(struct lws *wsi, pss_t *p)
{
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    memset(p, 0, sizeof *p);
    p->is_ws = 1;
    p->conn.wsi = wsi;
    p->conn.api = strcmp(pr->name, "layer-2.0") == 0 ? 2 : 3;
    snprintf(p->conn.user, sizeof p->conn.user, "%s", pending_user);
    snprintf(p->conn.token, sizeof p->conn.token, "%s", pending_token);
    pending_user[0] = pending_token[0] = 0;
    srv_conn_open(&server, &p->conn);
    if (server.log_level >= 2) fprintf(stderr, "layer-server: WS open %s (layer-%d.0)\n", p->conn.user, p->conn.api);
    return 0;
}

/* A fragment: reassembled, and a whole text message handed to srv_ws_frame. */
static int ws_receive(struct lws *wsi, pss_t *p, const void *in, size_t len)
{
    srv_conn *c = &p->conn;
    int code;
    char *nb;
    if (lws_frame_is_binary(wsi)) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *)"text JSON only", 14);
        return -1;
    }
    if (c->rx_len + len > SRV_MAX_BODY) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"too large", 9);
        return -1;
    }
    nb = realloc(c->rx, c->rx_len + len + 1);
    if (!nb) return -1;
    c->rx = nb;
    if (len) memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    code = srv_ws_frame(&server, c, c->rx, c->rx_len);
    c->rx_len = 0;
    if (code) {
        lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)"not JSON", 8);
        return -1;
    }
    return 0;
}

static int ws_writeable(struct lws *wsi, pss_t *p)
{
    srv_conn *c = &p->conn;
    srv_pkt *pk;
    if (c->close_pending) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"closed by server", 16);
        return -1;
    }
    if (c->stall_until) return 0;
    /* Several packets per wakeup while the socket takes them: one poll
     * round per packet would cap fan-out throughput. */
    while (c->qhead && !lws_send_pipe_choked(wsi)) {
        pk = srv_conn_pop(c);
        if (lws_write(wsi, pk->data + LWS_PRE, pk->len, LWS_WRITE_TEXT) < (int)pk->len) {
            free(pk);
            return -1;
        }
        free(pk);
    }
    if (c->replaying) srv_replay_pump(c); /* the next batch, now that the queue has drained */
    if (c->qhead) lws_callback_on_writable(wsi);
    return 0;
}

static void ws_closed(pss_t *p)
{
    if (!p || !p->is_ws) return;
    if (server.log_level >= 2) fprintf(stderr, "layer-server: WS close %s\n", p->conn.user);
    srv_conn_closed(&server, &p->conn);
    p->conn.wsi = NULL;
}

/* One function per reason; anything else goes to lws's default HTTP handling. */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    pss_t *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: return begin_http(wsi, p, in);
    case LWS_CALLBACK_HTTP_BODY: return http_body(p, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return http_body_complete(wsi, p);
    case LWS_CALLBACK_HTTP_WRITEABLE: return write_http(wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (p && !p->is_ws) http_reset(p);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: /* user is the connection's arguments here */
        return crowded_peer(user);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: peer_opened(wsi); return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        peer_closed(wsi);
        if (p && !p->is_ws) body_done(p);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return ws_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED: return ws_established(wsi, p);
    case LWS_CALLBACK_RECEIVE: return ws_receive(wsi, p, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE: return ws_writeable(wsi, p);
    case LWS_CALLBACK_CLOSED: ws_closed(p); return 0;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {{"http", callback, sizeof(pss_t), 0, 0, NULL, 0},
                                                 {"layer-2.0", callback, sizeof(pss_t), 65536, 0, NULL, 0},
                                                 {"layer-3.0", callback, sizeof(pss_t), 65536, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

static void usage(void)
{
    fprintf(stderr, "usage: layer-server [--port 7480] [--bind 127.0.0.1] [--db layer.db|:memory:]\n"
                    "                    [--identity-secret SECRET] [--admin-token TOKEN] [--allow-unsigned]\n"
                    "                    [--log-level quiet|error|info|debug] [--max-lifetime SECONDS]\n"
                    "                    [--session-ttl SECONDS] [--base-url URL] [--parent-pid PID]\n"
                    "                    [--request-timeout SECONDS] [--max-conns-per-ip N]\n");
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    const char *db = "layer.db", *bind_addr = "127.0.0.1", *base = NULL;
    char base_url[256], content_key[65];
    int port = 7480, i, parent_given = 0;
    double lifetime = 0;
    struct lws_vhost *vh;

    server.session_ttl_ms = 30LL * 24 * 3600 * 1000;
    server.log_level = 2;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--allow-unsigned") == 0) {
            server.allow_unsigned = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--bind") == 0)
            bind_addr = v;
        else if (strcmp(a, "--db") == 0)
            db = v;
        else if (strcmp(a, "--identity-secret") == 0)
            snprintf(server.secret, sizeof server.secret, "%s", v);
        else if (strcmp(a, "--admin-token") == 0)
            snprintf(server.admin_token, sizeof server.admin_token, "%s", v);
        else if (strcmp(a, "--max-lifetime") == 0)
            lifetime = atof(v);
        else if (strcmp(a, "--session-ttl") == 0)
            server.session_ttl_ms = (int64_t)(atof(v) * 1000);
        else if (strcmp(a, "--base-url") == 0)
            base = v;
        else if (strcmp(a, "--request-timeout") == 0)
            request_timeout_s = atoi(v);
        else if (strcmp(a, "--max-conns-per-ip") == 0)
            max_conns_per_ip = atoi(v);
        else if (strcmp(a, "--parent-pid") == 0) {
            watch_pid = (pid_t)atoi(v);
            parent_given = 1;
        } else if (strcmp(a, "--log-level") == 0) {
            server.log_level = strcmp(v, "quiet") == 0   ? 0
                               : strcmp(v, "error") == 0 ? 1
                               : strcmp(v, "debug") == 0 ? 3
                                                         : 2;
        } else {
            usage();
            return 2;
        }
        i++;
    }
    if (port < 0 || port > 65535 || request_timeout_s < 1 || max_conns_per_ip < 0) {
        usage();
        return 2;
    }
    if (!server.secret[0]) srv_random_hex(server.secret, 32); /* nothing verifies without --identity-secret */
    if (!parent_given) watch_pid = getppid();
    /* Stop with the parent: servers started by tests must never outlive them. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (watch_pid > 1 && kill(watch_pid, 0) != 0) return 1;
    if (lifetime > 0) deadline_ms = srv_now_ms() + (int64_t)(lifetime * 1000);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (!store_open(db)) return 1;
    lws_set_log_level(server.log_level >= 3 ? (LLL_ERR | LLL_WARN) : server.log_level >= 1 ? LLL_ERR : 0, NULL);

    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = bind_addr;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.max_http_header_data = 8192;
    /* A header slot for every connection (allocated on demand, ~9 kB each):
     * a fixed pool of 64 let 64 half-open connections starve everyone else.
     * What bounds them now is the per-address cap and request_timeout. */
    info.fd_limit_per_thread = 4096;
    info.max_http_header_pool2 = info.fd_limit_per_thread;
    info.timeout_secs = 30;
    info.timeout_secs_ah_idle = (unsigned)request_timeout_s;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "layer-server: cannot listen on %s:%d\n", bind_addr, port);
        store_close();
        return 1;
    }
    vh = lws_get_vhost_by_name(ctx, "default");
    if (vh) port = lws_get_vhost_listen_port(vh);
    if (base)
        snprintf(base_url, sizeof base_url, "%s", base);
    else
        snprintf(base_url, sizeof base_url, "http://%s:%d", bind_addr, port);
    srv_random_hex(content_key, 32); /* download URLs of an earlier run stop working */
    render_configure(base_url, content_key);
    fanout_set_network(wake, LWS_PRE);
    printf("layer-server listening on %s port %d pid %d\n", base_url, port, (int)getpid());
    fflush(stdout);

    lws_sul_schedule(ctx, 0, &tick_sul, tick, 100 * LWS_US_PER_MS);
    while (!stop_flag)
        if (lws_service(ctx, 0) < 0) break;
    if (server.log_level >= 2) fprintf(stderr, "layer-server: stopping\n");
    server.stopping = 1;
    lws_context_destroy(ctx);
    store_close();
    return 0;
}
