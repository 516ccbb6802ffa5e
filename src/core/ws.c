/*
 * ws.c - WebSocket client over libwebsockets 4.1.6 driven by an lt_loop
 * (see ws.h).
 *
 * This lws build has no EXTERNAL_POLL, so lws keeps its own pollfd table and
 * lws_service(ctx, -1) is a single non-blocking pass (poll with timeout 0,
 * unix-service.c). We mirror each connection's socket into the loop's epoll
 * set only to be woken, and cap the loop timeout so lws's hidden timers run.
 * lws callbacks only record state and queue events; user callbacks run from
 * the queue after lws_service has returned.
 */
#define _GNU_SOURCE
#include "ws.h"

#include <dlfcn.h>
#include <errno.h>
#include <libwebsockets.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fifo.h"
#include "proxy.h"
#include "resolve.h"
#include "strcopy.h"

#define WS_DEFAULT_MAX_MSG ((size_t)1 << 20)
#define WS_DEFAULT_CONNECT_MS 15000
#define WS_CAP_OPEN_MS 250    /* lws timers we cannot see (no EXTERNAL_POLL) */
#define WS_CAP_BUSY_MS 10     /* while connecting / closing */
#define WS_READ_BUFFER 65536  /* bytes lws reads per socket per pass */
#define WS_PASSES_PER_STEP 16 /* so at most 1 MiB per socket per step */

enum { EV_OPEN, EV_TEXT, EV_BINARY, EV_CLOSE, EV_ERROR };

typedef struct wev {
    struct wev *next;
    lt_ws *ws;
    int type, code, clean;
    int spare;  /* the lt_ws's own (out_of_memory): not freed */
    char *data; /* message, reason or error text (owned) */
    size_t len;
} wev;

typedef struct omsg {
    struct omsg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE headroom + payload */
} omsg;

typedef struct wvhost {
    struct wvhost *next;
    struct lws_vhost *vh;
    int tls;
    char *ca_file, *ca_path;
    char *proxy; /* lws_set_proxy text; ":0" = direct */
} wvhost;

typedef struct wsvc {
    lt_loop *loop;
    int slot;
    struct lws_context *ctx;
    wvhost *vhosts;
    int nvhosts;
    const char *vhost_ca_path; /* read by the CA callback during vhost creation */
    lt_ws *head;
    wev *qhead, *qtail;
    int destroying;
} wsvc;

struct lt_ws {
    wsvc *svc;
    lt_ws *prev, *next;
    lt_ws_opts o; /* callbacks + ud; string fields below are our copies */
    char *host, *hosthdr, *path, *protocol, *origin, *hdrs, *ca_file, *ca_path;
    int port, tls;
    char addr[64]; /* numeric address of the host, or of the proxy */
    int proxied;   /* through px: CONNECT host:port, lws resolves nothing */
    lt_proxy px;
    char vh_proxy[256];
    int state;
    int need_connect; /* address known, lws connect pending */
    struct lws *wsi;
    int fd;
    uint32_t fd_events;
    lt_resolve *res;
    int res_fd;
    uint64_t timer;
    omsg *oq, *oq_tail;
    size_t obytes;
    char *rx;
    size_t rxlen, rxcap;
    int rx_binary;
    int close_requested, close_code, close_sent;
    char close_reason[124];
    int peer_closed, peer_code;
    char peer_reason[124];
    int terminal; /* on_close/on_error queued */
    int freed;
    wev out_of_memory; /* the terminal event when there is no memory for one */
    int killed;
    int touched; /* lws called back for it, or we asked lws for something: resync its fd */
    char proto_neg[64];
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static lt_loop *log_loop; /* lws logging is process-wide */
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void lws_emit(int level, const char *line)
{
    char buf[512];
    size_t n = strlen(line);
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, line, n);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = 0;
    pthread_mutex_lock(&log_mu);
    if (log_loop) lt_loop_log(log_loop, level == LLL_ERR ? LT_LOG_ERR : LT_LOG_WARN, "lws: %s", buf);
    pthread_mutex_unlock(&log_mu);
}

static void log_init(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit); }

/* 0, or -1 when out of memory (the event is not queued). */
static int queue_ev(wsvc *svc, lt_ws *ws, int type, const char *data, size_t len, int code, int clean)
{
    if (svc->destroying) return 0;
    wev *e = calloc(1, sizeof *e);
    if (!e) return -1;
    e->ws = ws;
    e->type = type;
    e->code = code;
    e->clean = clean;
    if (data) {
        e->data = malloc(len + 1);
        if (!e->data) {
            free(e);
            return -1;
        }
        memcpy(e->data, data, len);
        e->data[len] = 0;
        e->len = len;
    }
    FIFO_PUSH(svc->qhead, svc->qtail, e);
    return 0;
}

/* The end of a connection is never lost: without memory for its event, the
 * lt_ws's own spare one says "out of memory" instead. */
static void queue_terminal(lt_ws *ws, int type, const char *data, int code, int clean)
{
    wsvc *svc = ws->svc;
    if (queue_ev(svc, ws, type, data, strlen(data), code, clean) == 0) return;
    wev *e = &ws->out_of_memory;
    memset(e, 0, sizeof *e);
    e->ws = ws;
    e->type = EV_ERROR;
    e->spare = 1;
    e->data = (char *)"out of memory";
    FIFO_PUSH(svc->qhead, svc->qtail, e);
}

static void terminal_error(lt_ws *ws, const char *msg)
{
    if (ws->terminal) return;
    ws->terminal = 1;
    queue_terminal(ws, EV_ERROR, msg, 0, 0);
}

static void terminal_close(lt_ws *ws, int code, const char *reason, int clean)
{
    if (ws->terminal) return;
    ws->terminal = 1;
    queue_terminal(ws, EV_CLOSE, reason, code, clean);
}

static void unwatch(lt_ws *ws)
{
    if (ws->fd >= 0) lt_loop_watch(ws->svc->loop, ws->svc->slot, ws->fd, 0, NULL);
    ws->fd = -1;
    ws->fd_events = 0;
}

static void stop_resolve(lt_ws *ws)
{
    if (!ws->res) return;
    lt_loop_watch(ws->svc->loop, ws->svc->slot, ws->res_fd, 0, NULL);
    lt_resolve_release(ws->res);
    ws->res = NULL;
    ws->res_fd = -1;
}

static void kill_wsi(lt_ws *ws)
{
    if (ws->wsi && !ws->killed) {
        ws->killed = 1;
        lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* Close with a status of our own after a terminal error: the close frame
 * goes out at the next WRITEABLE, unsent messages are dropped. */
static void refuse_connection(lt_ws *ws, int status)
{
    ws->close_requested = 1;
    ws->close_code = status;
    ws->close_reason[0] = 0;
    if (ws->wsi) lws_callback_on_writable(ws->wsi);
}

/* ---- the lws protocol callback ------------------------------------------ */

static int append_rx(lt_ws *ws, const void *in, size_t len)
{
    size_t max = ws->o.max_message;
    if (ws->rxlen + len > max) return -1;
    if (ws->rxlen + len + 1 > ws->rxcap) {
        size_t cap = ws->rxcap ? ws->rxcap : 4096;
        while (cap < ws->rxlen + len + 1) cap *= 2;
        char *b = realloc(ws->rx, cap);
        if (!b) return -2;
        ws->rx = b;
        ws->rxcap = cap;
    }
    memcpy(ws->rx + ws->rxlen, in, len);
    ws->rxlen += len;
    return 0;
}

typedef int (*load_dir_fn)(void *ctx, const char *ca_file, const char *ca_dir);

/* ---- the lws callback, one function per reason ---- */

/* lws 4.1.6 has no client CA-directory option; call OpenSSL (already loaded
 * by lws) by name so we need no extra link dependency. */
static int on_load_verify_certs(wsvc *svc, void *ssl_ctx)
{
    if (svc && svc->vhost_ca_path && ssl_ctx) {
        load_dir_fn f;
        *(void **)&f = dlsym(RTLD_DEFAULT, "SSL_CTX_load_verify_locations"); /* POSIX idiom */
        if (!f || f(ssl_ctx, NULL, svc->vhost_ca_path) != 1)
            lt_loop_log(svc->loop, LT_LOG_WARN, "ws: cannot load CA path %s", svc->vhost_ca_path);
    }
    return 0;
}

static int on_append_headers(lt_ws *ws, void *in, size_t len)
{
    if (ws && ws->hdrs) {
        char **p = in;
        size_t n = strlen(ws->hdrs);
        if (n + 1 > len) return -1;
        memcpy(*p, ws->hdrs, n);
        *p += n;
    }
    return 0;
}

static int on_connection_error(struct lws *wsi, lt_ws *ws, const char *in)
{
    if (ws) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", in ? in : "connection failed");
        ws->wsi = NULL;
        unwatch(ws);
        if (ws->close_requested)
            terminal_close(ws, ws->close_code, ws->close_reason, 0);
        else
            terminal_error(ws, msg);
        ws->state = LT_WS_CLOSED;
        lws_set_opaque_user_data(wsi, NULL);
    }
    return 0;
}

/* An event that could not be queued ends the connection rather than go
 * missing: the owner hears on_error and reconnects. */
static void lost_to_oom(lt_ws *ws, const char *what)
{
    char msg[100];
    snprintf(msg, sizeof msg, "out of memory for %s", what);
    terminal_error(ws, msg);
    ws->state = LT_WS_CLOSED;
    ws->rxlen = 0;
    refuse_connection(ws, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
}

static int on_established(struct lws *wsi, lt_ws *ws, wsvc *svc)
{
    if (!ws) return -1;
    if (ws->timer) {
        lt_timer_cancel(svc->loop, ws->timer);
        ws->timer = 0;
    }
    ws->state = ws->close_requested ? LT_WS_CLOSING : LT_WS_OPEN;
    if (queue_ev(svc, ws, EV_OPEN, NULL, 0, 0, 0) < 0) lost_to_oom(ws, "the open event");
    if (ws->oq || ws->close_requested) lws_callback_on_writable(wsi);
    return 0;
}

static void too_big(lt_ws *ws)
{
    char msg[120];
    snprintf(msg, sizeof msg, "message too big: over max_message (%zu bytes), closing with 1009", ws->o.max_message);
    terminal_error(ws, msg);
}

/* Never returns -1: lws 4.1.6 can corrupt its heap when a receive callback
 * refuses data mid-buffer. Unwanted data is dropped and the close goes out
 * from WRITEABLE (or kill_wsi's timeout). */
static int on_receive(struct lws *wsi, lt_ws *ws, wsvc *svc, const char *in, size_t len)
{
    int r;
    if (!ws || ws->freed || ws->terminal) return 0;
    if (lws_is_first_fragment(wsi)) ws->rx_binary = lws_frame_is_binary(wsi);
    if (!ws->rxlen && lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        /* a whole message in one piece: no reassembly buffer to keep */
        if (len > ws->o.max_message) {
            too_big(ws);
            ws->state = LT_WS_CLOSED;
            refuse_connection(ws, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
            return 0;
        }
        if (queue_ev(svc, ws, ws->rx_binary ? EV_BINARY : EV_TEXT, in ? in : "", len, 0, 0) < 0)
            lost_to_oom(ws, "an incoming message");
        return 0;
    }
    r = append_rx(ws, in, len);
    if (r < 0) {
        if (r == -2) {
            lost_to_oom(ws, "an incoming message");
            return 0;
        }
        too_big(ws);
        ws->state = LT_WS_CLOSED;
        ws->rxlen = 0;
        refuse_connection(ws, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        return 0;
    }
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        int lost = queue_ev(svc, ws, ws->rx_binary ? EV_BINARY : EV_TEXT, ws->rx ? ws->rx : "", ws->rxlen, 0, 0) < 0;
        ws->rxlen = 0;
        if (lost) lost_to_oom(ws, "an incoming message");
        /* most messages come in one piece (above): the buffer is for the rare big one */
        if (ws->rxcap > 65536 || lt_loop_shared(svc->loop)) {
            free(ws->rx);
            ws->rx = NULL;
            ws->rxcap = 0;
        }
    }
    return 0;
}

static int on_writeable(struct lws *wsi, lt_ws *ws)
{
    if (!ws || ws->freed) return -1;
    if (ws->oq && !ws->terminal) {
        omsg *m;
        int n;
        FIFO_POP(ws->oq, ws->oq_tail, m);
        ws->obytes -= m->len;
        n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (n < 0) return -1;
        if (ws->oq || ws->close_requested) lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws->close_requested) {
        ws->close_sent = 1;
        lws_close_reason(wsi, (enum lws_close_status)ws->close_code, (unsigned char *)ws->close_reason,
                         strlen(ws->close_reason));
        return -1;
    }
    return 0;
}

static int on_peer_close(lt_ws *ws, const unsigned char *p, size_t len)
{
    if (ws) {
        ws->peer_closed = 1;
        ws->peer_code = 1005;
        ws->peer_reason[0] = 0;
        if (len >= 2) {
            size_t rl = len - 2 < sizeof ws->peer_reason - 1 ? len - 2 : sizeof ws->peer_reason - 1;
            ws->peer_code = p[0] << 8 | p[1];
            memcpy(ws->peer_reason, p + 2, rl);
            ws->peer_reason[rl] = 0;
        }
    }
    return 0;
}

static int on_closed(struct lws *wsi, lt_ws *ws)
{
    if (ws) {
        ws->wsi = NULL;
        unwatch(ws);
        if (ws->peer_closed)
            terminal_close(ws, ws->peer_code, ws->peer_reason, 1);
        else if (ws->close_requested)
            terminal_close(ws, ws->close_code, ws->close_reason, ws->state != LT_WS_CONNECTING);
        else if (ws->state == LT_WS_CONNECTING)
            terminal_error(ws, "connection closed during handshake");
        else
            terminal_close(ws, 1006, "", 0);
        ws->state = LT_WS_CLOSED;
        lws_set_opaque_user_data(wsi, NULL);
    }
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    lt_ws *ws = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    struct lws_context *cx = wsi ? lws_get_context(wsi) : NULL;
    wsvc *svc = cx ? lws_context_user(cx) : NULL;

    if (ws) ws->touched = 1;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS: return on_load_verify_certs(svc, user);
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: return on_append_headers(ws, in, len);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: return on_connection_error(wsi, ws, in);
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
        /* the handshake headers are gone by CLIENT_ESTABLISHED */
        if (ws && lws_hdr_copy(wsi, ws->proto_neg, sizeof ws->proto_neg, WSI_TOKEN_PROTOCOL) < 0) ws->proto_neg[0] = 0;
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: return on_established(wsi, ws, svc);
    case LWS_CALLBACK_CLIENT_RECEIVE: return on_receive(wsi, ws, svc, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE: return on_writeable(wsi, ws);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: return on_peer_close(ws, in, len);
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY: return on_closed(wsi, ws);
    default: return 0;
    }
}

static const struct lws_protocols ws_protocols[] = {
    {"lt-ws", ws_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws keeps a buffer of rx_buffer_size per connection for ever (0: the 64 KB
 * pt_serv_buf_size) and reads at most that much per socket per pass. A shared
 * loop holds a thousand mostly idle connections: 4 KB still takes a typical
 * packet in one read (64 KB per socket per step), at a sixteenth of the memory.
 * Sends stay up to 64 KB a go. */
#define WS_SHARED_RX 4096
static const struct lws_protocols ws_protocols_shared[] = {
    {"lt-ws", ws_callback, 0, WS_SHARED_RX, 0, NULL, WS_READ_BUFFER},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- connection management ------------------------------------------------ */

/* The option strings lt_ws_connect copied, and the struct itself. */
static void ws_free_copies(lt_ws *ws)
{
    free(ws->host);
    free(ws->hosthdr);
    free(ws->path);
    free(ws->protocol);
    free(ws->origin);
    free(ws->hdrs);
    free(ws->ca_file);
    free(ws->ca_path);
    free(ws);
}

static void ws_release(lt_ws *ws)
{
    wsvc *svc = ws->svc;
    stop_resolve(ws);
    unwatch(ws);
    if (ws->timer) lt_timer_cancel(svc->loop, ws->timer);
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        svc->head = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    while (ws->oq) {
        omsg *m;
        FIFO_POP(ws->oq, ws->oq_tail, m);
        free(m);
    }
    free(ws->rx);
    ws_free_copies(ws);
}

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static struct lws_vhost *get_vhost(wsvc *svc, lt_ws *ws)
{
    for (wvhost *v = svc->vhosts; v; v = v->next)
        if (v->tls == ws->tls && same_str(v->ca_file, ws->ca_file) && same_str(v->ca_path, ws->ca_path) &&
            same_str(v->proxy, ws->vh_proxy))
            return v->vh;
    wvhost *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    char name[32];
    snprintf(name, sizeof name, "lt-%d", svc->nvhosts++);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.vhost_name = name;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = lt_loop_shared(svc->loop) ? ws_protocols_shared : ws_protocols;
    info.gid = -1;
    info.uid = -1;
    /* Never NULL: lws would then read http_proxy itself, ignoring no_proxy
     * and resolving the proxy name with a blocking getaddrinfo. */
    info.http_proxy_address = ws->vh_proxy;
    if (ws->tls) { /* builds the client SSL_CTX (system CAs unless ca_file) */
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = ws->ca_file;
    }
    svc->vhost_ca_path = ws->ca_path;
    v->vh = lws_create_vhost(svc->ctx, &info);
    svc->vhost_ca_path = NULL;
    if (!v->vh) {
        free(v);
        return NULL;
    }
    v->tls = ws->tls;
    v->ca_file = ws->ca_file ? strdup(ws->ca_file) : NULL;
    v->ca_path = ws->ca_path ? strdup(ws->ca_path) : NULL;
    v->proxy = strdup(ws->vh_proxy);
    v->next = svc->vhosts;
    svc->vhosts = v;
    return v->vh;
}

static void start_lws(wsvc *svc, lt_ws *ws)
{
    ws->need_connect = 0;
    ws->touched = 1;
    if (!ws->proxied) {
        snprintf(ws->vh_proxy, sizeof ws->vh_proxy, ":0");
    } else if (snprintf(ws->vh_proxy, sizeof ws->vh_proxy, strchr(ws->addr, ':') ? "%s%s[%s]:%d" : "%s%s%s:%d",
                        ws->px.auth, *ws->px.auth ? "@" : "", ws->addr, ws->px.port) >= (int)sizeof ws->vh_proxy) {
        terminal_error(ws, "proxy setting too long");
        ws->state = LT_WS_CLOSED;
        return;
    }
    struct lws_vhost *vh = get_vhost(svc, ws);
    if (!vh) {
        terminal_error(ws, "cannot create lws vhost (TLS setup failed?)");
        ws->state = LT_WS_CLOSED;
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = svc->ctx;
    ci.vhost = vh;
    /* numeric: lws's own getaddrinfo would block; through a proxy, the name
     * only goes into the CONNECT line (an IPv6 literal in brackets there)
     * and lws connects to the proxy's address */
    char connect_host[300];
    if (ws->proxied) snprintf(connect_host, sizeof connect_host, strchr(ws->host, ':') ? "[%s]" : "%s", ws->host);
    ci.address = ws->proxied ? connect_host : ws->addr;
    ci.port = ws->port;
    ci.path = ws->path;
    ci.host = ws->hosthdr; /* SNI and certificate checks use this name */
    ci.origin = ws->origin;
    ci.protocol = ws->protocol;
    ci.local_protocol_name = "lt-ws";
    ci.ietf_version_or_minus_one = -1;
    ci.opaque_user_data = ws;
    ci.pwsi = &ws->wsi;
    if (ws->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (ws->o.insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    /* Failures may be reported through CONNECTION_ERROR (queued) or only by NULL. */
    if (!lws_client_connect_via_info(&ci)) {
        ws->wsi = NULL;
        if (!ws->terminal) {
            char msg[200];
            snprintf(msg, sizeof msg, "libwebsockets could not start connecting to %.100s port %d", ws->host, ws->port);
            terminal_error(ws, msg);
        }
        ws->state = LT_WS_CLOSED;
    }
}

static void connect_timeout(lt_loop *loop, void *ud)
{
    lt_ws *ws = ud;
    ws->timer = 0;
    if (ws->state != LT_WS_CONNECTING || ws->freed) return;
    stop_resolve(ws);
    ws->need_connect = 0;
    char msg[120];
    snprintf(msg, sizeof msg, "connect timeout: not open after %ld ms", ws->o.connect_timeout_ms);
    terminal_error(ws, msg);
    ws->state = LT_WS_CLOSED;
    kill_wsi(ws);
}

/* Mirror the wsi's socket into epoll; lws may swap it during connect. */
static void sync_fd(wsvc *svc, lt_ws *ws)
{
    int fd = ws->wsi ? lws_get_socket_fd(ws->wsi) : -1;
    if (fd < 0) {
        unwatch(ws);
        return;
    }
    uint32_t ev = EPOLLIN;
    if (lws_send_pipe_choked(ws->wsi) || lws_partial_buffered(ws->wsi)) ev |= EPOLLOUT;
    if (fd != ws->fd) unwatch(ws);
    if (fd != ws->fd || ev != ws->fd_events) {
        lt_error err;
        if (lt_loop_watch(svc->loop, svc->slot, fd, ev, &err) == 0) {
            ws->fd = fd;
            ws->fd_events = ev;
        } else { /* tried again next pass; meanwhile the capped timeout still services it */
            lt_loop_log(svc->loop, LT_LOG_ERR, "ws: %s", err.msg);
        }
    }
}

static void poll_resolve(lt_ws *ws)
{
    const char *err = NULL;
    if (!ws->res || !lt_resolve_poll(ws->res, ws->addr, sizeof ws->addr, &err)) return;
    stop_resolve(ws);
    if (err) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot resolve %s%.200s: %s", ws->proxied ? "proxy " : "",
                 ws->proxied ? ws->px.host : ws->host, err);
        terminal_error(ws, msg);
        ws->state = LT_WS_CLOSED;
    } else {
        ws->need_connect = 1;
    }
}

static void dispatch(wsvc *svc)
{
    while (svc->qhead && !lt_loop_closing(svc->loop)) {
        wev *e;
        lt_ws *ws;
        FIFO_POP(svc->qhead, svc->qtail, e);
        ws = e->ws;
        if (!ws->freed) {
            void *ud = ws->o.ud;
            switch (e->type) {
            case EV_OPEN:
                if (ws->o.on_open && !ws->close_requested) ws->o.on_open(ws, ud);
                break;
            case EV_TEXT:
                if (ws->o.on_text) ws->o.on_text(ws, e->data, e->len, ud);
                break;
            case EV_BINARY:
                if (ws->o.on_binary) ws->o.on_binary(ws, e->data, e->len, ud);
                break;
            case EV_CLOSE:
                ws->state = LT_WS_CLOSED;
                if (ws->o.on_close) ws->o.on_close(ws, e->code, e->data ? e->data : "", e->clean, ud);
                break;
            case EV_ERROR:
                ws->state = LT_WS_CLOSED;
                if (ws->o.on_error) ws->o.on_error(ws, e->data ? e->data : "error", ud);
                break;
            }
        }
        if (!e->spare) {
            free(e->data);
            free(e);
        }
    }
}

static void free_queue(wsvc *svc)
{
    while (svc->qhead) {
        wev *e;
        FIFO_POP(svc->qhead, svc->qtail, e);
        if (!e->spare) {
            free(e->data);
            free(e);
        }
    }
}

/* ---- service ------------------------------------------------------------ */

static void svc_on_fd(void *ud, int fd, uint32_t ev)
{
    /* Nothing to do per fd: lws_service polls its own table in svc_run. */
}

/* Whether one of the sockets lws just served (p, n) has more unread input,
 * or lws holds some (TLS records). Sockets it did not serve had none. */
static int input_waiting(wsvc *svc, struct pollfd *p, nfds_t n)
{
    if (n && poll(p, n, 0) > 0)
        for (nfds_t i = 0; i < n; i++)
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) return 1;
    return svc->ctx && lws_service_adjust_timeout(svc->ctx, 1, 0) == 0;
}

static void svc_run(void *ud)
{
    wsvc *svc = ud;
    for (lt_ws *ws = svc->head; ws; ws = ws->next) {
        if (ws->res) poll_resolve(ws);
        if (ws->need_connect && !ws->freed && ws->state == LT_WS_CONNECTING) start_lws(svc, ws);
    }
    /* A pass reads one buffer per socket: go on while input is waiting, so a
     * host stepping once a frame is not held to 64 kB a frame. */
    for (int pass = 0; svc->head && pass < WS_PASSES_PER_STEP; pass++) {
        struct pollfd served[64];
        nfds_t nserved = 0;
        lws_service(svc->ctx, -1); /* one non-blocking pass: poll(..., 0) + ripe lws timers */
        /* Only sockets lws dealt with can have changed (lws_send_pipe_choked
         * is a poll() each: too dear for a thousand idle ones a pass). */
        for (lt_ws *ws = svc->head; ws; ws = ws->next)
            if (ws->touched || ws->state != LT_WS_OPEN || (ws->fd_events & EPOLLOUT)) {
                int was_touched = ws->touched;
                ws->touched = 0;
                sync_fd(svc, ws);
                if (was_touched && ws->fd >= 0 && !ws->freed && nserved < 64) {
                    served[nserved].fd = ws->fd;
                    served[nserved].events = POLLIN;
                    served[nserved].revents = 0;
                    nserved++;
                }
            }
        if (!input_waiting(svc, served, nserved)) break;
    }
    dispatch(svc);
    if (lt_loop_closing(svc->loop)) return;
    /* Reap freed connections once lws has let go of them. */
    for (lt_ws *ws = svc->head, *next; ws; ws = next) {
        next = ws->next;
        if (ws->freed && !ws->wsi) ws_release(ws);
    }
}

static int svc_timeout(void *ud)
{
    wsvc *svc = ud;
    int t = -1;
    if (svc->qhead) return 0;
    for (lt_ws *ws = svc->head; ws; ws = ws->next) {
        if (ws->need_connect || (ws->freed && !ws->wsi) || (ws->killed && ws->wsi)) return 0;
        if (ws->wsi && ws->oq && ws->state == LT_WS_OPEN && !(ws->fd_events & EPOLLOUT))
            return 0; /* lws_callback_on_writable is pending */
        if (ws->wsi && ws->close_requested && !ws->close_sent && !(ws->fd_events & EPOLLOUT))
            return 0; /* close frame waiting for WRITEABLE */
        if (ws->wsi) {
            int cap = ws->state == LT_WS_OPEN ? WS_CAP_OPEN_MS : WS_CAP_BUSY_MS;
            if (t < 0 || cap < t) t = cap;
        }
    }
    if (svc->ctx && svc->head && lws_service_adjust_timeout(svc->ctx, 1, 0) == 0)
        return 0; /* lws has buffered work (TLS, rx flow) with no fd event */
    return t;
}

static void svc_destroy(void *ud)
{
    wsvc *svc = ud;
    svc->destroying = 1;
    for (lt_ws *ws = svc->head; ws; ws = ws->next) {
        stop_resolve(ws);
        unwatch(ws);
        if (ws->wsi) lws_set_opaque_user_data(ws->wsi, NULL);
        ws->wsi = NULL;
    }
    if (svc->ctx) lws_context_destroy(svc->ctx); /* closes every wsi */
    free_queue(svc);                             /* first: a connection's spare event lives in it */
    while (svc->head) ws_release(svc->head);
    while (svc->vhosts) {
        wvhost *v = svc->vhosts;
        svc->vhosts = v->next;
        free(v->ca_file);
        free(v->ca_path);
        free(v->proxy);
        free(v);
    }
    pthread_mutex_lock(&log_mu);
    if (log_loop == svc->loop) log_loop = NULL;
    pthread_mutex_unlock(&log_mu);
    free(svc);
}

static const lt_service_vt ws_vt = {svc_on_fd, svc_run, svc_timeout, svc_destroy};

static wsvc *get_svc(lt_loop *loop, lt_error *err)
{
    wsvc *svc = lt_loop_service(loop, &ws_vt);
    if (svc) return svc;
    pthread_once(&log_once, log_init);
    svc = calloc(1, sizeof *svc);
    if (!svc) {
        lt_error_oom(err);
        return NULL;
    }
    svc->loop = loop;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    info.user = svc;
    /* One loop holds a socket or two, but lws sizes its fd tables from the
     * process limit: at ulimit -n 8448 that is ~200 KB per client. A shared
     * loop holds many: there the tables follow the limit, which also keeps
     * lws's fd lookup a table index rather than a linear search. */
    long open_max = sysconf(_SC_OPEN_MAX);
    info.fd_limit_per_thread = !lt_loop_shared(loop) ? 64 : open_max > 0 && open_max <= 65536 ? 0 : 65536;
    info.pt_serv_buf_size = WS_READ_BUFFER;
    svc->ctx = lws_create_context(&info);
    if (!svc->ctx) {
        lt_error_set(err, LT_E_LIB, "ws: lws_create_context failed");
        free(svc);
        return NULL;
    }
    svc->slot = lt_loop_add_service(loop, &ws_vt, svc, err);
    if (svc->slot < 0) {
        lws_context_destroy(svc->ctx);
        free(svc);
        return NULL;
    }
    pthread_mutex_lock(&log_mu);
    log_loop = loop;
    pthread_mutex_unlock(&log_mu);
    return svc;
}

/* ---- URL parsing --------------------------------------------------------- */

/* 0, or -1 with err filled (LT_E_INVAL, or LT_E_OOM for the copies). */
static int parse_url(lt_ws *ws, const char *url, lt_error *err)
{
    const char *p;
    if (strncasecmp(url, "ws://", 5) == 0) {
        ws->tls = 0;
        p = url + 5;
        ws->port = 80;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        ws->tls = 1;
        p = url + 6;
        ws->port = 443;
    } else {
        lt_error_set(err, LT_E_INVAL, "ws: url must be ws:// or wss:// (got \"%.80s\")", url);
        return -1;
    }
    const char *hs, *he, *q;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he) {
            lt_error_set(err, LT_E_INVAL, "ws: url has a '[' with no ']' around its host");
            return -1;
        }
        q = he + 1;
    } else {
        hs = p;
        he = p + strcspn(p, ":/?#");
        q = he;
    }
    if (he == hs) {
        lt_error_set(err, LT_E_INVAL, "ws: url has no host");
        return -1;
    }
    if ((size_t)(he - hs) > 253) {
        lt_error_set(err, LT_E_INVAL, "ws: url host is longer than 253 bytes");
        return -1;
    }
    for (const char *c = hs; c < he; c++) /* what would only fail later, at the lookup or in the Host line */
        if ((unsigned char)*c <= ' ' || *c == 0x7f || strchr("@\"<>\\^`{|}[]", *c)) {
            if ((unsigned char)*c >= ' ' && *c != 0x7f)
                lt_error_set(err, LT_E_INVAL, "ws: url host contains '%c'", *c);
            else
                lt_error_set(err, LT_E_INVAL, "ws: url host contains byte 0x%02x", (unsigned char)*c);
            return -1;
        }
    int explicit_port = 0;
    if (*q == ':') {
        char *end;
        long port = strtol(q + 1, &end, 10);
        if (end == q + 1 || port <= 0 || port > 65535) {
            lt_error_set(err, LT_E_INVAL, "ws: url port must be a number from 1 to 65535");
            return -1;
        }
        ws->port = (int)port;
        explicit_port = 1;
        q = end;
    }
    if (*q && *q != '/' && *q != '?') {
        lt_error_set(err, LT_E_INVAL, "ws: url has '%c' where a port, path or query should start", *q);
        return -1;
    }
    ws->host = str_dupn(hs, (size_t)(he - hs));
    size_t plen = strcspn(q, "#");
    if (*q == '?') { /* "ws://h?x" means path "/?x" */
        ws->path = malloc(plen + 2);
        if (ws->path) {
            ws->path[0] = '/';
            memcpy(ws->path + 1, q, plen);
            ws->path[plen + 1] = 0;
        }
    } else {
        ws->path = plen ? str_dupn(q, plen) : strdup("/");
    }
    char hh[300];
    int v6 = *p == '[';
    if (explicit_port && ws->port != (ws->tls ? 443 : 80))
        snprintf(hh, sizeof hh, v6 ? "[%s]:%d" : "%s:%d", ws->host ? ws->host : "", ws->port);
    else
        snprintf(hh, sizeof hh, v6 ? "[%s]" : "%s", ws->host ? ws->host : "");
    ws->hosthdr = strdup(hh);
    if (ws->host && ws->path && ws->hosthdr) return 0;
    lt_error_oom(err);
    return -1;
}

int lt_ws_check_url(const char *url, lt_error *err)
{
    lt_ws ws;
    memset(&ws, 0, sizeof ws);
    int rc = url ? parse_url(&ws, url, err) : -1;
    if (!url) lt_error_set(err, LT_E_INVAL, "ws: no url");
    free(ws.host);
    free(ws.path);
    free(ws.hosthdr);
    return rc;
}

/* ---- public ----------------------------------------------------------------- */

static char *opt_dup(const char *s, int *oom)
{
    if (!s) return NULL;
    char *d = str_dup0(s);
    if (!d) *oom = 1;
    return d;
}

lt_ws *lt_ws_connect(lt_loop *loop, const lt_ws_opts *o, lt_error *err)
{
    if (!loop || !o || !o->url) {
        lt_error_set(err, LT_E_INVAL, "ws: lt_ws_connect needs a loop, options and a url");
        return NULL;
    }
    if (lt_loop_closing(loop)) {
        lt_error_set(err, LT_E_STATE, "ws: the loop is being freed");
        return NULL;
    }
    lt_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        lt_error_oom(err);
        return NULL;
    }
    ws->fd = -1;
    ws->res_fd = -1;
    ws->o = *o;
    ws->o.url = NULL;
    ws->o.headers = NULL;
    if (!ws->o.max_message) ws->o.max_message = WS_DEFAULT_MAX_MSG;
    if (ws->o.connect_timeout_ms <= 0) ws->o.connect_timeout_ms = WS_DEFAULT_CONNECT_MS;
    if (parse_url(ws, o->url, err) < 0) goto fail;
    int oom = 0;
    ws->protocol = opt_dup(o->protocol, &oom);
    ws->origin = opt_dup(o->origin, &oom);
    ws->ca_file = opt_dup(o->ca_file, &oom);
    ws->ca_path = opt_dup(o->ca_path, &oom);
    ws->o.protocol = ws->o.origin = ws->o.ca_file = ws->o.ca_path = NULL;
    if (ws->protocol && strpbrk(ws->protocol, "\r\n")) {
        lt_error_set(err, LT_E_INVAL, "ws: the protocol contains CR or LF");
        goto fail;
    }
    if (o->nheaders) {
        size_t n = 1;
        for (size_t i = 0; i < o->nheaders; i++) {
            if (strpbrk(o->headers[i], "\r\n")) {
                lt_error_set(err, LT_E_INVAL, "ws: header %zu contains CR or LF", i + 1);
                goto fail;
            }
            n += strlen(o->headers[i]) + 2;
        }
        ws->hdrs = malloc(n);
        if (ws->hdrs) {
            ws->hdrs[0] = 0;
            for (size_t i = 0; i < o->nheaders; i++) {
                strcat(ws->hdrs, o->headers[i]);
                strcat(ws->hdrs, "\r\n");
            }
        } else {
            oom = 1;
        }
    }
    if (oom) {
        lt_error_oom(err);
        goto fail;
    }
    wsvc *svc = get_svc(loop, err);
    if (!svc) goto fail;
    ws->svc = svc;
    ws->next = svc->head;
    if (svc->head) svc->head->prev = ws;
    svc->head = ws;
    const char *proxy_err = NULL;
    int px = lt_proxy_for(o->proxy, ws->tls, ws->host, &ws->px, &proxy_err);
    ws->proxied = px > 0;
    const char *dial = ws->proxied ? ws->px.host : ws->host;
    if (px < 0) { /* reported through on_error, like any failure to connect */
        char msg[200];
        snprintf(msg, sizeof msg, "proxy: %s", proxy_err);
        terminal_error(ws, msg);
        ws->state = LT_WS_CLOSED;
        return ws;
    }
    if (lt_resolve_is_numeric(dial)) {
        snprintf(ws->addr, sizeof ws->addr, "%s", dial);
        ws->need_connect = 1;
    } else {
        lt_error e;
        ws->res = lt_resolve_start(dial, &ws->res_fd, &e);
        if (!ws->res || lt_loop_watch(loop, svc->slot, ws->res_fd, EPOLLIN, &e) < 0) {
            if (err) {
                *err = e;
                if (e.code != LT_E_OOM)
                    snprintf(err->msg, sizeof err->msg, "ws: cannot look up %.60s: %.75s", dial, e.msg);
            }
            ws_release(ws);
            return NULL;
        }
    }
    ws->timer = lt_timer_start(loop, ws->o.connect_timeout_ms, connect_timeout, ws, err);
    if (!ws->timer) { /* a connect with no deadline could wait forever */
        ws_release(ws);
        return NULL;
    }
    return ws;
fail:
    ws->svc = NULL;
    ws_free_copies(ws);
    return NULL;
}

int lt_ws_send_text(lt_ws *ws, const char *data, size_t len, lt_error *err)
{
    if (!ws || ws->freed || ws->close_requested || ws->terminal ||
        (ws->state != LT_WS_OPEN && ws->state != LT_WS_CONNECTING)) {
        lt_error_set(err, LT_E_STATE, "ws: the connection is closing or closed");
        return -1;
    }
    omsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) {
        lt_error_oom(err);
        return -1;
    }
    m->len = len;
    if (len) memcpy(m->buf + LWS_PRE, data, len);
    FIFO_PUSH(ws->oq, ws->oq_tail, m);
    ws->obytes += len;
    if (ws->wsi && ws->state == LT_WS_OPEN) {
        lws_callback_on_writable(ws->wsi);
        ws->touched = 1;
    }
    return 0;
}

int lt_ws_close(lt_ws *ws, int code, const char *reason, lt_error *err)
{
    if (!ws || ws->freed || ws->close_requested || ws->terminal || ws->state == LT_WS_CLOSED) {
        lt_error_set(err, LT_E_STATE, "ws: the connection is already closing or closed");
        return -1;
    }
    if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015) code = 1000;
    ws->close_requested = 1;
    ws->touched = 1;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    if (ws->state == LT_WS_OPEN && ws->wsi) {
        ws->state = LT_WS_CLOSING;
        lws_callback_on_writable(ws->wsi);
    } else { /* not open yet: abort */
        stop_resolve(ws);
        ws->need_connect = 0;
        terminal_close(ws, code, ws->close_reason, 0);
        ws->state = LT_WS_CLOSED;
        kill_wsi(ws);
    }
    return 0;
}

void lt_ws_free(lt_ws *ws)
{
    if (!ws || ws->freed) return;
    ws->freed = 1;
    stop_resolve(ws);
    ws->need_connect = 0;
    if (ws->timer) {
        lt_timer_cancel(ws->svc->loop, ws->timer);
        ws->timer = 0;
    }
    kill_wsi(ws); /* lws closes it at the next step; svc_run reaps us after */
}

int lt_ws_state(const lt_ws *ws) { return ws->state; }
const char *lt_ws_protocol(const lt_ws *ws) { return ws->proto_neg[0] ? ws->proto_neg : NULL; }
size_t lt_ws_buffered(const lt_ws *ws) { return ws->obytes; }
