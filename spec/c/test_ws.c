/* test_ws.c - lt_ws (and HTTPS via lt_http) against an lws server run by a thread of this test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "loop.h"
#include "tap.h"
#include "ws.h"

/* ---- server: plain vhost + TLS vhost, protocol "layer-3.0" ------------ */

typedef struct smsg {
    struct smsg *next;
    size_t len, off;
    unsigned char *buf; /* LWS_PRE + len */
} smsg;

typedef struct {
    char *in;
    size_t len, cap;
    smsg *q;
    int closeme;
} pss;

static struct lws_context *srv_ctx;
static int srv_port, srv_tls_port, srv_stop, srv_peer_close_code, srv_established;
static char cert_dir[128], cert_file[192], key_file[192], ca_dir[192];

static void srv_queue(struct lws *wsi, pss *p, const char *data, size_t len)
{
    smsg *m = calloc(1, sizeof *m), **pp = &p->q;
    m->buf = malloc(LWS_PRE + len + 1);
    memcpy(m->buf + LWS_PRE, data, len);
    m->len = len;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    lws_callback_on_writable(wsi);
}

static void srv_message(struct lws *wsi, pss *p)
{
    if (p->len == 8 && memcmp(p->in, "close-me", 8) == 0) {
        p->closeme = 1;
        lws_callback_on_writable(wsi);
    } else if (p->len > 4 && memcmp(p->in, "big:", 4) == 0) {
        size_t n = strtoul(p->in + 4, NULL, 10);
        char *b = malloc(n);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)('A' + i % 26);
        srv_queue(wsi, p, b, n);
        free(b);
    } else {
        srv_queue(wsi, p, p->in, p->len); /* echo; "frag" replies are split below */
    }
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(p, 0, sizeof *p);
        __atomic_add_fetch(&srv_established, 1, __ATOMIC_SEQ_CST);
        break;
    case LWS_CALLBACK_RECEIVE:
        if (p->len + len + 1 > p->cap) {
            p->cap = (p->len + len + 1) * 2;
            p->in = realloc(p->in, p->cap);
        }
        memcpy(p->in + p->len, in, len);
        p->len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            p->in[p->len] = 0;
            srv_message(wsi, p);
            p->len = 0;
        }
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (p->closeme) {
            lws_close_reason(wsi, (enum lws_close_status)4001, (unsigned char *)"bye", 3);
            return -1;
        }
        smsg *m = p->q;
        if (!m)
            break;
        /* "frag" and big replies go out as several frames of one message */
        size_t chunk = m->len == 4 && memcmp(m->buf + LWS_PRE, "frag", 4) == 0 ? 2 : 16384;
        if (chunk > m->len - m->off)
            chunk = m->len - m->off;
        int first = m->off == 0, last = m->off + chunk == m->len;
        int flags = lws_write_ws_flags(LWS_WRITE_TEXT, first, last);
        /* earlier fragments are sent, so their bytes can serve as LWS_PRE room */
        if (lws_write(wsi, m->buf + LWS_PRE + m->off, chunk, (enum lws_write_protocol)flags) < (int)chunk)
            return -1;
        m->off += chunk;
        if (last) {
            p->q = m->next;
            free(m->buf);
            free(m);
        }
        if (p->q)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2)
            __atomic_store_n(&srv_peer_close_code, ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1],
                             __ATOMIC_SEQ_CST);
        break;
    case LWS_CALLBACK_CLOSED:
        free(p->in);
        p->in = NULL;
        while (p->q) {
            smsg *m = p->q;
            p->q = m->next;
            free(m->buf);
            free(m);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int srv_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason == LWS_CALLBACK_HTTP) {
        if (lws_return_http_status(wsi, HTTP_STATUS_OK, NULL))
            return -1;
        return lws_http_transaction_completed(wsi);
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols srv_protocols[] = {
    {"http", srv_http_cb, 0, 0, 0, NULL, 0},
    {"layer-3.0", srv_cb, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *server(void *arg)
{
    while (!__atomic_load_n(&srv_stop, __ATOMIC_SEQ_CST))
        lws_service(srv_ctx, 100);
    return NULL;
}

static int server_start(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = info.uid = -1;
    srv_ctx = lws_create_context(&info);
    if (!srv_ctx)
        return -1;
    memset(&info, 0, sizeof info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = srv_protocols;
    info.vhost_name = "plain";
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.gid = info.uid = -1;
    struct lws_vhost *vh = lws_create_vhost(srv_ctx, &info);
    if (!vh)
        return -1;
    srv_port = lws_get_vhost_listen_port(vh);
    info.vhost_name = "tls";
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = cert_file;
    info.ssl_private_key_filepath = key_file;
    info.alpn = "http/1.1";
    vh = lws_create_vhost(srv_ctx, &info);
    if (!vh)
        return -1;
    srv_tls_port = lws_get_vhost_listen_port(vh);
    return 0;
}

static int make_cert(void)
{
    snprintf(cert_dir, sizeof cert_dir, "/tmp/lt-ctest-XXXXXX");
    if (!mkdtemp(cert_dir))
        return -1;
    snprintf(cert_file, sizeof cert_file, "%s/cert.pem", cert_dir);
    snprintf(key_file, sizeof key_file, "%s/key.pem", cert_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1",
             key_file, cert_file);
    if (system(cmd) != 0)
        return -1;
    /* a hashed CA directory for the ca_path options */
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", cert_dir);
    snprintf(cmd, sizeof cmd, "mkdir %s && cp %s %s/ && openssl rehash %s >/dev/null 2>&1", ca_dir, cert_file, ca_dir,
             ca_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- client side -------------------------------------------------------- */

typedef struct {
    int open, closed, errored, texts, clean, code;
    char reason[128], err[256], proto[32];
    char *last;
    size_t last_len;
    int close_in_text, free_in_text, send_in_open;
    lt_loop *L;
} cstate;

static void c_open(lt_ws *ws, void *ud)
{
    cstate *c = ud;
    c->open++;
    const char *p = lt_ws_protocol(ws);
    snprintf(c->proto, sizeof c->proto, "%s", p ? p : "");
    if (c->send_in_open)
        lt_ws_send_text(ws, "from-open", 9, NULL);
}

static void c_text(lt_ws *ws, const char *data, size_t len, void *ud)
{
    cstate *c = ud;
    c->texts++;
    free(c->last);
    c->last = malloc(len + 1);
    memcpy(c->last, data, len + 1);
    c->last_len = len;
    if (c->close_in_text) {
        lt_ws_close(ws, 4002, "from on_text", NULL);
        lt_ws_send_text(ws, "late", 4, NULL); /* refused: closing */
    }
    if (c->free_in_text)
        lt_ws_free(ws);
}

static void c_close(lt_ws *ws, int code, const char *reason, int clean, void *ud)
{
    cstate *c = ud;
    c->closed++;
    c->code = code;
    c->clean = clean;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
}

static void c_error(lt_ws *ws, const char *msg, void *ud)
{
    cstate *c = ud;
    c->errored++;
    snprintf(c->err, sizeof c->err, "%s", msg);
}

static lt_ws_opts mkopts(cstate *c, const char *url)
{
    lt_ws_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.protocol = "layer-3.0";
    o.on_open = c_open;
    o.on_text = c_text;
    o.on_close = c_close;
    o.on_error = c_error;
    o.ud = c;
    return o;
}

static void wait_until(lt_loop *L, const int *flag, int want, int ms)
{
    double t0 = tap_now();
    while (*flag < want && tap_now() - t0 < ms)
        lt_loop_step(L, 50, NULL);
}

static void pump(lt_loop *L, int ms)
{
    double t0 = tap_now();
    while (tap_now() - t0 < ms)
        lt_loop_step(L, 10, NULL);
}

static char ubuf[256];
static const char *url(const char *scheme, const char *host, int port, const char *path)
{
    snprintf(ubuf, sizeof ubuf, "%s://%s:%d%s", scheme, host, port, path);
    return ubuf;
}

typedef struct {
    int done;
    long status;
    lt_http_err err;
    char msg[256];
} hres;
static void h_cb(const lt_http_resp *r, void *ud)
{
    hres *h = ud;
    h->done = 1;
    h->status = r->status;
    h->err = r->error;
    snprintf(h->msg, sizeof h->msg, "%s", r->error_msg ? r->error_msg : "");
}


/* ---- a CONNECT proxy thread: records each request head, then relays ---- */

static int proxy_lfd, proxy_port, proxy_stop, proxy_connects;
static char proxy_head[1024]; /* the last CONNECT request head */

static void relay(int a, int b)
{
    struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    char buf[16384];
    while (!__atomic_load_n(&proxy_stop, __ATOMIC_SEQ_CST)) {
        if (poll(p, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
                return;
        }
    }
}

static void *proxy_thread(void *arg)
{
    while (!__atomic_load_n(&proxy_stop, __ATOMIC_SEQ_CST)) {
        struct pollfd lp = {.fd = proxy_lfd, .events = POLLIN};
        if (poll(&lp, 1, 100) <= 0)
            continue;
        int c = accept(proxy_lfd, NULL, NULL);
        if (c < 0)
            continue;
        char head[1024] = "";
        size_t len = 0;
        while (len < sizeof head - 1 && !strstr(head, "\r\n\r\n")) {
            if (read(c, head + len, 1) != 1) /* byte by byte: nothing past the head */
                break;
            head[++len] = 0;
        }
        memcpy(proxy_head, head, len + 1);
        __atomic_add_fetch(&proxy_connects, 1, __ATOMIC_SEQ_CST);
        char target[160];
        int port = 0, up = -1;
        char *colon = NULL;
        if (sscanf(head, "CONNECT %159s ", target) == 1 && (colon = strrchr(target, ':')) != NULL)
            port = atoi(colon + 1);
        if (port > 0) {
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* every target of these tests is local */
            up = socket(AF_INET, SOCK_STREAM, 0);
            if (up >= 0 && connect(up, (struct sockaddr *)&sa, sizeof sa) < 0) {
                close(up);
                up = -1;
            }
        }
        const char *reply = up >= 0 ? "HTTP/1.1 200 Connection established\r\n\r\n" : "HTTP/1.1 502 Bad Gateway\r\n\r\n";
        if (write(c, reply, strlen(reply)) > 0 && up >= 0)
            relay(c, up);
        if (up >= 0)
            close(up);
        close(c);
    }
    return NULL;
}

static int proxy_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    proxy_lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (proxy_lfd < 0 || bind(proxy_lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(proxy_lfd, 8) < 0 ||
        getsockname(proxy_lfd, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    proxy_port = ntohs(sa.sin_port);
    return 0;
}

/* wss to localhost with the test CA, through whatever proxy applies; 1 if it opened. */
static int wss_opens(lt_loop *L, const char *proxy)
{
    cstate c = {0};
    lt_ws_opts o = mkopts(&c, url("wss", "localhost", srv_tls_port, "/"));
    o.ca_file = cert_file;
    o.proxy = proxy;
    lt_ws *ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &c.open, 1, 5000);
    if (!c.open)
        DIAG("wss did not open: %s", c.err);
    lt_ws_free(ws);
    return c.open == 1;
}

static int nlog;
static void log_cb(void *ud, int level, const char *msg) { __atomic_add_fetch(&nlog, 1, __ATOMIC_SEQ_CST); }

int main(void)
{
    tap_watchdog(90);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL); /* quiet test server until lt_ws routes logs */
    int have_cert = make_cert() == 0;
    OK(have_cert, "self-signed certificate generated with openssl req");
    OK(server_start() == 0, "lws test server on 127.0.0.1 (ws %d, wss %d)", srv_port, srv_tls_port);
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);

    lt_loop *L = lt_loop_new(NULL);
    lt_loop_set_log(L, log_cb, NULL);
    int epfd = lt_loop_fd(L);

    /* refused at once: NULL and an lt_error saying why, no callback later */
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"http://127.0.0.1:1/", "url must be ws:// or wss://"},
        {"ws:///path", "no host"},
        {"ws://127.0.0.1:99999/", "port"},
        {"ws://[::1/", "']'"},
        {"ws://host name/", "' '"},
    };
    cstate bc = {0};
    lt_error err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        lt_ws_opts bo = mkopts(&bc, bad[i].url);
        lt_ws *bw = lt_ws_connect(L, &bo, &err);
        OK(bw == NULL && err.code == LT_E_INVAL && strstr(err.msg, bad[i].says), "%s: NULL, LT_E_INVAL (%s)", bad[i].url,
           err.msg);
        OK(lt_ws_check_url(bad[i].url, NULL) == -1, "lt_ws_check_url refuses %s too", bad[i].url);
    }
    OK(lt_ws_check_url("wss://[::1]:8443/ws?x=1", &err) == 0 && lt_ws_check_url("ws://h", &err) == 0,
       "lt_ws_check_url takes good urls");
    lt_ws_opts bo = mkopts(&bc, url("ws", "127.0.0.1", srv_port, "/"));
    const char *crlf[] = {"X-Ok: 1", "X-Bad: 1\r\nX-Injected: 2"};
    bo.headers = crlf;
    bo.nheaders = 2;
    memset(&err, 0, sizeof err);
    OK(lt_ws_connect(L, &bo, &err) == NULL && err.code == LT_E_INVAL && strstr(err.msg, "header 2"),
       "a header with CR LF: NULL, LT_E_INVAL (%s)", err.msg);
    bo.url = NULL;
    memset(&err, 0, sizeof err);
    OK(lt_ws_connect(L, &bo, &err) == NULL && err.code == LT_E_INVAL, "no url: LT_E_INVAL (%s)", err.msg);
    OK(lt_ws_connect(L, &bo, NULL) == NULL, "err may be NULL");
    pump(L, 20);
    OK(bc.open == 0 && bc.errored == 0 && bc.closed == 0, "refused connects call nothing");

    /* connect + subprotocol + echo */
    cstate a = {0};
    a.send_in_open = 1;
    lt_ws_opts o = mkopts(&a, url("ws", "127.0.0.1", srv_port, "/websocket?session_token=abc"));
    const char *extra[] = {"X-Client: lt-test"};
    o.headers = extra;
    o.nheaders = 1;
    lt_ws *ws = lt_ws_connect(L, &o, NULL);
    OK(ws != NULL && lt_ws_state(ws) == LT_WS_CONNECTING, "lt_ws_connect returns a connecting ws");
    OK(lt_ws_send_text(ws, "queued-early", 12, NULL) == 0, "send while connecting is queued");
    wait_until(L, &a.open, 1, 5000);
    OK(a.open == 1 && lt_ws_state(ws) == LT_WS_OPEN, "on_open");
    OK(strcmp(a.proto, "layer-3.0") == 0, "subprotocol negotiated (%s)", a.proto);
    wait_until(L, &a.texts, 2, 5000);
    OK(a.texts == 2, "both queued messages echoed (%d)", a.texts);
    lt_ws_send_text(ws, "hello", 5, NULL);
    wait_until(L, &a.texts, 3, 5000);
    OK(a.last && strcmp(a.last, "hello") == 0, "text echo");
    int tmo = lt_loop_timeout_ms(L);
    OK(tmo > 0 && tmo <= 250, "idle open ws caps the loop timeout (%d ms)", tmo);
    int idle_steps = 0;
    double i0 = tap_now();
    while (tap_now() - i0 < 1000) {
        lt_loop_step(L, -1, NULL);
        idle_steps++;
    }
    OK(idle_steps >= 2 && idle_steps <= 12, "idle open ws: step(-1) sleeps, no busy loop (%d steps in 1 s)", idle_steps);

    /* fragmented and large messages */
    lt_ws_send_text(ws, "frag", 4, NULL);
    wait_until(L, &a.texts, 4, 5000);
    OK(a.last_len == 4 && strcmp(a.last, "frag") == 0, "a message in 2-byte fragments is reassembled");
    lt_ws_send_text(ws, "big:600000", 10, NULL);
    wait_until(L, &a.texts, 5, 10000);
    int same = a.last_len == 600000;
    for (size_t i = 0; same && i < a.last_len; i += 997)
        same = a.last[i] == (char)('A' + i % 26);
    OK(same, "600 kB message in 16 kB frames arrives whole (%zu)", a.last_len);
    /* a host pumping once a frame reads what the kernel holds, not 4 kB a step */
    lt_ws_send_text(ws, "big:100000", 10, NULL);
    lt_loop_step(L, 0, NULL);
    usleep(300 * 1000); /* the server's frames wait in the socket buffers */
    int read_steps = 0;
    while (a.texts < 6 && read_steps < 1000) {
        lt_loop_step(L, 0, NULL);
        read_steps++;
    }
    OK(a.texts == 6 && a.last_len == 100000 && read_steps <= 4, "100 kB already buffered is read in %d step(s)",
       read_steps);
    size_t n = 300000;
    char *bigmsg = malloc(n);
    for (size_t i = 0; i < n; i++)
        bigmsg[i] = (char)('a' + i % 23);
    lt_ws_send_text(ws, bigmsg, n, NULL);
    OK(lt_ws_buffered(ws) == n, "lt_ws_buffered counts queued bytes");
    wait_until(L, &a.texts, 7, 10000);
    OK(a.last_len == n && memcmp(a.last, bigmsg, n) == 0, "300 kB sent and echoed intact");
    free(bigmsg);

    /* client close */
    OK(lt_ws_close(ws, 1000, "done", NULL) == 0, "lt_ws_close");
    memset(&err, 0, sizeof err);
    OK(lt_ws_send_text(ws, "x", 1, &err) == -1 && err.code == LT_E_STATE, "send after close is refused: LT_E_STATE (%s)",
       err.msg);
    memset(&err, 0, sizeof err);
    OK(lt_ws_close(ws, 1000, "again", &err) == -1 && err.code == LT_E_STATE, "a second close: LT_E_STATE (%s)", err.msg);
    wait_until(L, &a.closed, 1, 5000);
    OK(a.closed == 1 && a.code == 1000 && strcmp(a.reason, "done") == 0 && a.clean, "on_close after client close");
    double t0 = tap_now();
    while (__atomic_load_n(&srv_peer_close_code, __ATOMIC_SEQ_CST) == 0 && tap_now() - t0 < 2000)
        lt_loop_step(L, 10, NULL);
    OK(srv_peer_close_code == 1000, "server saw close code %d", srv_peer_close_code);
    OK(a.errored == 0, "no on_error");
    lt_ws_free(ws);
    free(a.last);

    /* server close */
    cstate b = {0};
    o = mkopts(&b, url("ws", "127.0.0.1", srv_port, "/"));
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &b.open, 1, 5000);
    lt_ws_send_text(ws, "close-me", 8, NULL);
    wait_until(L, &b.closed, 1, 5000);
    OK(b.closed == 1 && b.code == 4001 && strcmp(b.reason, "bye") == 0 && b.clean,
       "server close: code %d reason '%s' clean %d", b.code, b.reason, b.clean);
    OK(lt_ws_state(ws) == LT_WS_CLOSED, "state CLOSED");
    lt_ws_free(ws);

    /* close from inside on_text */
    cstate c = {0};
    c.close_in_text = 1;
    o = mkopts(&c, url("ws", "127.0.0.1", srv_port, "/"));
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &c.open, 1, 5000);
    lt_ws_send_text(ws, "one", 3, NULL);
    lt_ws_send_text(ws, "two", 3, NULL);
    wait_until(L, &c.closed, 1, 5000);
    OK(c.closed == 1 && c.code == 4002 && strcmp(c.reason, "from on_text") == 0, "lt_ws_close inside on_text");
    pump(L, 100);
    OK(c.texts <= 2 && c.closed == 1 && c.errored == 0, "exactly one terminal callback (%d texts)", c.texts);
    lt_ws_free(ws);
    free(c.last);

    /* free from inside on_text */
    cstate d = {0};
    d.free_in_text = 1;
    o = mkopts(&d, url("ws", "127.0.0.1", srv_port, "/"));
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &d.open, 1, 5000);
    lt_ws_send_text(ws, "one", 3, NULL);
    lt_ws_send_text(ws, "two", 3, NULL);
    wait_until(L, &d.texts, 1, 5000);
    pump(L, 200);
    OK(d.texts == 1 && d.closed == 0 && d.errored == 0, "lt_ws_free inside on_text: no further callbacks");
    free(d.last);

    /* message cap */
    cstate e = {0};
    o = mkopts(&e, url("ws", "127.0.0.1", srv_port, "/"));
    o.max_message = 1000;
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &e.open, 1, 5000);
    lt_ws_send_text(ws, "big:999", 7, NULL);
    lt_ws_send_text(ws, "big:5000", 8, NULL);
    wait_until(L, &e.errored, 1, 5000);
    pump(L, 100);
    OK(e.texts == 1 && e.errored == 1 && e.closed == 0 && strstr(e.err, "too big"),
       "message over max_message: on_error (%s), no on_close", e.err);
    OK(__atomic_load_n(&srv_peer_close_code, __ATOMIC_SEQ_CST) == 1009, "server saw close code 1009 (got %d)",
       __atomic_load_n(&srv_peer_close_code, __ATOMIC_SEQ_CST));
    lt_ws_free(ws);
    free(e.last);

    /* failure, then reconnect with a new lt_ws */
    int tmpfd = socket(AF_INET, SOCK_STREAM, 0), dead_port;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    bind(tmpfd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(tmpfd, (struct sockaddr *)&sa, &sl);
    dead_port = ntohs(sa.sin_port);
    close(tmpfd);
    cstate f = {0};
    o = mkopts(&f, url("ws", "127.0.0.1", dead_port, "/"));
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &f.errored, 1, 5000);
    OK(f.errored == 1 && f.open == 0 && f.closed == 0, "refused connect: on_error (%s)", f.err);
    lt_ws_free(ws);
    cstate g = {0};
    o = mkopts(&g, url("ws", "localhost", srv_port, "/"));
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &g.open, 1, 5000);
    OK(g.open == 1, "reconnect with a new lt_ws (by hostname, resolved off-thread)");
    lt_ws_send_text(ws, "again", 5, NULL);
    wait_until(L, &g.texts, 1, 5000);
    OK(g.last && strcmp(g.last, "again") == 0, "echo on the new connection");
    lt_ws_free(ws);
    free(g.last);

    /* step(0) never blocks: a listener whose backlog is full leaves connect pending */
    int lfd = socket(AF_INET, SOCK_STREAM, 0), stuck_port;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(lfd, 0);
    sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    stuck_port = ntohs(sa.sin_port);
    int fillers[4];
    for (int i = 0; i < 4; i++) { /* fill the accept queue */
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sa, sizeof sa);
    }
    cstate h = {0}, h2 = {0};
    o = mkopts(&h, url("ws", "127.0.0.1", stuck_port, "/"));
    o.connect_timeout_ms = 700;
    ws = lt_ws_connect(L, &o, NULL);
    o = mkopts(&h2, url("ws", "localhost", stuck_port, "/"));
    o.connect_timeout_ms = 700;
    lt_ws *ws2 = lt_ws_connect(L, &o, NULL);
    double worst = 0;
    int steps = 0, maxto = -2;
    t0 = tap_now();
    while ((!h.errored || !h2.errored) && tap_now() - t0 < 5000) {
        double s0 = tap_now();
        lt_loop_step(L, 0, NULL);
        double el = tap_now() - s0;
        if (el > worst)
            worst = el;
        steps++;
        int to = lt_loop_timeout_ms(L);
        if (to > maxto)
            maxto = to;
        usleep(2000);
    }
    OK(h.errored && strstr(h.err, "timeout") && h2.errored && strstr(h2.err, "timeout"),
       "pending connects end with on_error (%s / %s)", h.err, h2.err);
    OK(worst < 5 * tap_slow(), "%d x step(0) while connecting: worst %.2f ms", steps, worst);
    OK(maxto >= 0 && maxto <= 10, "timeout capped at 10 ms while connecting (max seen %d)", maxto);
    lt_ws_free(ws);
    lt_ws_free(ws2);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);

    /* TLS: refused by default, accepted with the CA file, or with insecure */
    cstate t1 = {0}, t2 = {0}, t3 = {0};
    o = mkopts(&t1, url("wss", "localhost", srv_tls_port, "/"));
    lt_ws *w1 = lt_ws_connect(L, &o, NULL);
    wait_until(L, &t1.errored, 1, 5000);
    OK(t1.errored == 1 && t1.open == 0, "wss with an untrusted cert fails (%s)", t1.err);
    o = mkopts(&t2, url("wss", "localhost", srv_tls_port, "/"));
    o.ca_file = cert_file;
    lt_ws *w2 = lt_ws_connect(L, &o, NULL);
    wait_until(L, &t2.open, 1, 5000);
    OK(t2.open == 1, "wss with ca_file opens (%s)", t2.err);
    lt_ws_send_text(w2, "tls-echo", 8, NULL);
    wait_until(L, &t2.texts, 1, 5000);
    OK(t2.last && strcmp(t2.last, "tls-echo") == 0, "echo over wss");
    o = mkopts(&t3, url("wss", "127.0.0.1", srv_tls_port, "/"));
    o.insecure = 1;
    lt_ws *w3 = lt_ws_connect(L, &o, NULL);
    wait_until(L, &t3.open, 1, 5000);
    OK(t3.open == 1, "wss with insecure=1 opens");
    cstate t4 = {0};
    o = mkopts(&t4, url("wss", "localhost", srv_tls_port, "/"));
    o.ca_path = ca_dir;
    lt_ws *w4 = lt_ws_connect(L, &o, NULL);
    wait_until(L, &t4.open, 1, 5000);
    OK(t4.open == 1, "wss with ca_path (hashed directory) opens (%s)", t4.err);
    lt_ws_free(w1);
    lt_ws_free(w2);
    lt_ws_free(w3);
    lt_ws_free(w4);
    free(t2.last);


    /* proxies: the WebSocket follows the proxy settings libcurl follows for REST */
    OK(proxy_start() == 0, "CONNECT proxy on 127.0.0.1:%d", proxy_port);
    pthread_t pth;
    pthread_create(&pth, NULL, proxy_thread, NULL);
    char purl[128];
    cstate p1 = {0};
    snprintf(purl, sizeof purl, "http://bot:p%%40ss@127.0.0.1:%d", proxy_port);
    o = mkopts(&p1, url("ws", "localhost", srv_port, "/via-proxy"));
    o.proxy = purl;
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &p1.open, 1, 5000);
    OK(p1.open == 1 && proxy_connects == 1, "ws through an explicit proxy opens (%s)", p1.err);
    char want[64];
    snprintf(want, sizeof want, "CONNECT localhost:%d HTTP/1.1\r\n", srv_port);
    OK(strncmp(proxy_head, want, strlen(want)) == 0, "the proxy is asked for the host by name, not a resolved address");
    OK(strstr(proxy_head, "Proxy-authorization: basic Ym90OnBAc3M=\r\n") != NULL,
       "credentials from the proxy URL, percent-decoded (bot:p@ss)");
    lt_ws_send_text(ws, "proxied", 7, NULL);
    wait_until(L, &p1.texts, 1, 5000);
    OK(p1.last && strcmp(p1.last, "proxied") == 0, "echo through the proxy");
    lt_ws_free(ws);
    free(p1.last);

    char target6[64];
    cstate p6 = {0};
    lt_ws_opts o6 = mkopts(&p6, url("ws", "[::1]", srv_port, "/"));
    o6.proxy = purl;
    lt_ws *ws6 = lt_ws_connect(L, &o6, NULL);
    wait_until(L, &p6.open, 1, 5000);
    snprintf(target6, sizeof target6, "CONNECT [::1]:%d HTTP/1.1\r\n", srv_port);
    OK(p6.open == 1 && strncmp(proxy_head, target6, strlen(target6)) == 0,
       "an IPv6 literal host goes into the CONNECT line in brackets (%s)", p6.err);
    lt_ws_free(ws6);

    snprintf(purl, sizeof purl, "127.0.0.1:%d", proxy_port);
    setenv("https_proxy", purl, 1);
    OK(wss_opens(L, NULL) && proxy_connects == 3, "wss through https_proxy from the environment, certificate checked");
    setenv("no_proxy", "example.org, .localhost,127.0.0.1", 1);
    OK(wss_opens(L, NULL) && proxy_connects == 3, "a host in no_proxy connects directly");
    unsetenv("no_proxy");
    OK(wss_opens(L, "") && proxy_connects == 3, "proxy \"\" ignores the environment");
    unsetenv("https_proxy");

    cstate p5 = {0};
    o = mkopts(&p5, url("ws", "localhost", srv_port, "/"));
    o.proxy = "socks5://127.0.0.1:1080";
    ws = lt_ws_connect(L, &o, NULL);
    wait_until(L, &p5.errored, 1, 5000);
    OK(p5.errored == 1 && p5.open == 0 && strstr(p5.err, "only http:// proxies"), "a socks proxy is refused with a reason (%s)",
       p5.err);
    lt_ws_free(ws);
    __atomic_store_n(&proxy_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(pth, NULL);
    close(proxy_lfd);

    /* HTTPS through curl against the same TLS vhost */
    hres h1 = {0}, hh2 = {0}, hh3 = {0};
    char hu[128];
    snprintf(hu, sizeof hu, "https://localhost:%d/", srv_tls_port);
    lt_http_req q;
    memset(&q, 0, sizeof q);
    q.url = hu;
    lt_http_request(L, &q, h_cb, &h1, NULL);
    q.ca_file = cert_file;
    lt_http_request(L, &q, h_cb, &hh2, NULL);
    q.ca_file = NULL;
    q.insecure = 1;
    lt_http_request(L, &q, h_cb, &hh3, NULL);
    hres hh4 = {0};
    q.insecure = 0;
    q.ca_path = ca_dir;
    lt_http_request(L, &q, h_cb, &hh4, NULL);
    t0 = tap_now();
    while ((!h1.done || !hh2.done || !hh3.done || !hh4.done) && tap_now() - t0 < 5000)
        lt_loop_step(L, 50, NULL);
    OK(h1.done && h1.err == LT_HTTP_ETLS && h1.status == 0, "https with an untrusted cert: TLS error (%s)", h1.msg);
    OK(hh2.done && hh2.err == LT_HTTP_OK && hh2.status == 200, "https with ca_file: status %ld", hh2.status);
    OK(hh3.done && hh3.err == LT_HTTP_OK && hh3.status == 200, "https with insecure=1: status %ld", hh3.status);

    OK(hh4.done && hh4.err == LT_HTTP_OK && hh4.status == 200, "https with ca_path: status %ld (%s)", hh4.status, hh4.msg);
    OK(lt_loop_fd(L) == epfd, "epoll fd unchanged after all of that");
    pump(L, 100);

    /* teardown with live connections and one still resolving */
    cstate z1 = {0}, z2 = {0};
    o = mkopts(&z1, url("ws", "127.0.0.1", srv_port, "/"));
    lt_ws_connect(L, &o, NULL);
    wait_until(L, &z1.open, 1, 5000);
    o = mkopts(&z2, url("ws", "localhost", srv_port, "/"));
    lt_ws_connect(L, &o, NULL);
    lt_loop_free(L);
    OK(z1.open == 1 && z1.closed == 0 && z2.open == 0, "lt_loop_free with open and resolving ws calls nothing");

    __atomic_store_n(&srv_stop, 1, __ATOMIC_SEQ_CST);
    lws_cancel_service(srv_ctx);
    pthread_join(th, NULL);
    lws_context_destroy(srv_ctx);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
    if (system(cmd) != 0)
        DIAG("could not remove %s", cert_dir);
    DIAG("%d lws log lines routed to the loop's log callback", nlog);
    return tap_done();
}
