/*
 * driver.c - the engine on the transport (see driver.h).
 *
 * Transport callbacks only translate: an HTTP completion becomes
 * ls_http_response, a WebSocket event ls_ws_opened / ls_ws_frame /
 * ls_ws_closed. They never call Lua; the Lua layer reads the engine's event
 * queue after the step. On a hub the same inputs are queued on the driver
 * (ld_input) and fed to the engine by its own ld_service, and the driver is
 * put in line (make_ready) for the hub's round.
 */
#include "driver.h"

#include "http.h"
#include "loop.h"
#include "strcopy.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_http {
    ld_driver *d;
    uint64_t session_id;
    uint64_t transport_id;
    struct pending_http *next;
} pending_http;

/* An input for the engine, held until its client's step (hub drivers). */
enum { IN_HTTP, IN_OPEN, IN_FRAME, IN_CLOSED };
typedef struct ld_input {
    struct ld_input *next;
    int kind, status;
    uint64_t id;
    int64_t layer_count;
    char *retry_after; /* inside this allocation, or NULL */
    size_t len;
    char data[]; /* body, frame or reason, NUL-terminated */
} ld_input;

/* Where a hub driver is: in no list, waiting for the next round, in the
 * round being dispatched, or handed out and not yet settled. */
enum { AT_NONE, AT_READY, AT_ROUND, AT_STEPPING };

typedef struct {
    ld_driver *head, *tail;
} dlist;

struct ld_hub {
    lt_loop *loop;
    size_t n;     /* drivers on it */
    int released; /* the owner let go */
    dlist ready, round, stepping;
    ld_driver *current; /* the last ld_hub_next */
    uint64_t next_id;
};

struct ld_driver {
    ls_session *s;
    lt_loop *loop;
    ld_hub *hub; /* NULL: loop is private */
    uint64_t id;
    int at;
    ld_driver *lprev, *lnext;
    uint64_t timer; /* the engine's deadline on the loop, or 0 */
    int64_t timer_at;
    ld_input *in_head, *in_tail;
    lt_ws *ws;
    char *base, *ws_base;
    char *ca_file, *ca_path, *proxy;
    int insecure;
    long connect_timeout_ms, request_timeout_ms;
    char accept[64];
    pending_http *http;
};

static void make_ready(ld_driver *d);
static void unlist(ld_driver *d);
static void hub_destroy(ld_hub *h);

int64_t ld_now_ms(void) { return lt_now_ms(); }

/* "http://h:p/base/" -> "http://h:p/base" ; ws base from http base */
static char *trim_slash(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && s[n - 1] == '/') s[--n] = '\0';
    return s;
}

static char *ws_from_http(const char *base)
{
    char *out;
    const char *rest;
    const char *scheme;
    if (!strncmp(base, "https://", 8))
        scheme = "wss://", rest = base + 8;
    else if (!strncmp(base, "http://", 7))
        scheme = "ws://", rest = base + 7;
    else
        return NULL;
    out = malloc(strlen(scheme) + strlen(rest) + 1);
    if (!out) return NULL;
    strcpy(out, scheme);
    strcat(out, rest);
    return out;
}

ld_driver *ld_new(ls_session *s, const ld_options *o, char *err, size_t err_len)
{
    ld_driver *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    d->s = s;
    d->base = trim_slash(str_dup0(o->url));
    d->ws_base = o->websocket_url ? trim_slash(str_dup0(o->websocket_url)) : (d->base ? ws_from_http(d->base) : NULL);
    d->ca_file = str_dup0(o->ca_file);
    d->ca_path = str_dup0(o->ca_path);
    d->proxy = str_dup0(o->proxy);
    d->insecure = o->insecure;
    d->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 15000;
    d->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 60000;
    snprintf(d->accept, sizeof d->accept, "Accept: application/vnd.layer+json; version=%s",
             strcmp(ls_subprotocol(s), "layer-2.0") ? "3.0" : "2.0");
    if (!d->base || !d->ws_base) {
        snprintf(err, err_len, "url must start with http:// or https://");
        ld_free(d);
        return NULL;
    }
    lt_error e;
    if (lt_ws_check_url(d->ws_base, &e) < 0) { /* said now, not at every reconnect */
        snprintf(err, err_len, "%s: %s", o->websocket_url ? "websocket_url" : "url", e.msg);
        ld_free(d);
        return NULL;
    }
    if (o->hub) {
        d->hub = o->hub;
        d->loop = o->hub->loop;
        d->id = ++o->hub->next_id;
        o->hub->n++;
        make_ready(d); /* the engine's first request waits for a step */
        return d;
    }
    d->loop = lt_loop_new(&e);
    if (!d->loop) {
        snprintf(err, err_len, "could not create the event loop: %s", e.msg);
        ld_free(d);
        return NULL;
    }
    return d;
}

void ld_free(ld_driver *d)
{
    if (!d) return;
    if (d->hub) {
        /* The loop goes on for the others: take back all that points at d. */
        ld_hub *h = d->hub;
        if (d->ws) {
            lt_ws_close(d->ws, 1000, "client closing", NULL); /* refused if already closing: no matter */
            lt_ws_free(d->ws);
        }
        for (pending_http *p = d->http; p; p = p->next) lt_http_cancel(d->loop, p->transport_id);
        if (d->timer) lt_timer_cancel(d->loop, d->timer);
        unlist(d);
        if (h->current == d) h->current = NULL;
        while (d->in_head) {
            ld_input *in = d->in_head;
            d->in_head = in->next;
            free(in);
        }
        h->n--;
        if (h->released && !h->n) hub_destroy(h);
    } else {
        if (d->ws) lt_ws_free(d->ws);
        if (d->loop) lt_loop_free(d->loop); /* runs no callbacks */
    }
    while (d->http) {
        pending_http *p = d->http;
        d->http = p->next;
        free(p);
    }
    free(d->base);
    free(d->ws_base);
    free(d->ca_file);
    free(d->ca_path);
    free(d->proxy);
    free(d);
}

int ld_fd(const ld_driver *d) { return lt_loop_fd(d->loop); }
int ld_timeout_ms(ld_driver *d) { return d->hub ? ld_hub_timeout_ms(d->hub) : lt_loop_timeout_ms(d->loop); }
uint64_t ld_id(const ld_driver *d) { return d->id; }
int ld_shared(const ld_driver *d) { return d->hub != NULL; }

/* A failed wake only costs a host waiting on the fd its next step: log it. */
static void wake(lt_loop *loop)
{
    lt_error e;
    if (lt_loop_wake(loop, &e) < 0) lt_loop_log(loop, LT_LOG_ERR, "%s", e.msg);
}

void ld_wake(ld_driver *d)
{
    if (d->hub)
        make_ready(d);
    else
        wake(d->loop);
}

/* ===== inputs held for a hub driver's own step ===== */

static void hold(ld_driver *d, int kind, uint64_t id, int status, const char *retry_after, int64_t layer_count,
                 const char *data, size_t len)
{
    size_t ra = retry_after ? strlen(retry_after) + 1 : 0;
    ld_input *in = malloc(sizeof *in + len + 1 + ra);
    if (!in) {
        /* nothing better to do than the engine's own timeouts: it never hears */
        lt_loop_log(d->loop, LT_LOG_ERR, "out of memory: an input for the engine is lost");
        return;
    }
    in->next = NULL;
    in->kind = kind;
    in->status = status;
    in->id = id;
    in->layer_count = layer_count;
    in->len = len;
    if (len) memcpy(in->data, data, len);
    in->data[len] = '\0';
    in->retry_after = ra ? memcpy(in->data + len + 1, retry_after, ra) : NULL;
    if (d->in_tail)
        d->in_tail->next = in;
    else
        d->in_head = in;
    d->in_tail = in;
    make_ready(d);
}

static void feed(ld_driver *d)
{
    ld_input *in;
    while ((in = d->in_head) != NULL) {
        int64_t now = lt_now_ms();
        d->in_head = in->next;
        if (!d->in_head) d->in_tail = NULL;
        switch (in->kind) {
        case IN_HTTP:
            ls_http_response(d->s, now, in->id, in->status, in->retry_after, in->layer_count, in->data, in->len);
            break;
        case IN_OPEN: ls_ws_opened(d->s, now); break;
        case IN_FRAME: ls_ws_frame(d->s, now, in->data, in->len); break;
        case IN_CLOSED: ls_ws_closed(d->s, now, in->data); break;
        }
        free(in);
    }
}

/* ===== HTTP ===== */

static void forget_http(ld_driver *d, pending_http *p)
{
    pending_http **pp;
    for (pp = &d->http; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p);
}

/* What went wrong, in words a user can act on: "connection refused", "host
 * name not found", "TLS failure", then libcurl's own message. */
static void describe_failure(const lt_http_resp *resp, char *out, size_t n)
{
    const char *what;
    const char *detail = resp->error_msg ? resp->error_msg : "";
    switch (resp->error) {
    case LT_HTTP_EDNS: what = "host name not found"; break;
    case LT_HTTP_ECONNECT:
        what = resp->os_errno == ECONNREFUSED ? "connection refused"
               : resp->os_errno               ? strerror(resp->os_errno)
                                              : "could not connect";
        break;
    case LT_HTTP_ETIMEOUT: what = "timed out"; break;
    case LT_HTTP_ETLS: what = "TLS failure"; break;
    case LT_HTTP_ETOOBIG: what = "response too large"; break;
    case LT_HTTP_EPROTO: what = "broken HTTP exchange"; break;
    default: what = "transport error"; break;
    }
    snprintf(out, n, "%s (%s)", what, detail);
}

static void on_http(const lt_http_resp *resp, void *ud)
{
    pending_http *p = ud;
    ld_driver *d = p->d;
    const char *count = lt_http_header(resp, "Layer-Count");
    int64_t layer_count = count ? (int64_t)strtoll(count, NULL, 10) : -1;
    if (resp->status == 0) {
        char msg[300];
        /* a refused certificate will be refused again: no point retrying (status -1) */
        int status = resp->error == LT_HTTP_ETLS ? -1 : 0;
        describe_failure(resp, msg, sizeof msg);
        if (d->hub)
            hold(d, IN_HTTP, p->session_id, status, NULL, -1, msg, strlen(msg));
        else
            ls_http_response(d->s, lt_now_ms(), p->session_id, status, NULL, -1, msg, strlen(msg));
    } else if (d->hub) {
        hold(d, IN_HTTP, p->session_id, (int)resp->status, lt_http_header(resp, "Retry-After"), layer_count, resp->body,
             resp->body_len);
    } else {
        ls_http_response(d->s, lt_now_ms(), p->session_id, (int)resp->status, lt_http_header(resp, "Retry-After"),
                         layer_count, resp->body, resp->body_len);
    }
    forget_http(d, p);
}

static void send_http(ld_driver *d, ls_http_request *r)
{
    lt_http_req req;
    const char *headers[12];
    char auth[400], ctype[160], *url, *extra = NULL;
    size_t nh = 0;
    pending_http *p;
    const char *token = ls_session_token(d->s);
    int absolute = !strncmp(r->path, "http://", 7) || !strncmp(r->path, "https://", 8);
    url = malloc(strlen(d->base) + strlen(r->path) + 1);
    p = calloc(1, sizeof *p);
    if (!url || !p) {
        free(url);
        free(p);
        ls_http_response(d->s, lt_now_ms(), r->id, 0, NULL, -1, "out of memory", 13);
        return;
    }
    if (absolute) {
        strcpy(url, r->path); /* rich content: the server's own upload or download URL */
    } else {
        strcpy(url, d->base);
        strcat(url, r->path);
    }
    headers[nh++] = d->accept;
    if (r->authenticated && token) {
        snprintf(auth, sizeof auth, "Authorization: Layer session-token=\"%s\"", token);
        headers[nh++] = auth;
    }
    if (r->content_type) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", r->content_type);
        headers[nh++] = ctype;
    }
    if (r->headers && (extra = str_dup0(r->headers)) != NULL) {
        char *line = extra, *nl;
        while (line && *line && nh < sizeof headers / sizeof headers[0]) {
            nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            if (*line) headers[nh++] = line;
            line = nl ? nl + 1 : NULL;
        }
    }
    memset(&req, 0, sizeof req);
    req.method = r->method;
    req.url = url;
    req.headers = headers;
    req.nheaders = nh;
    req.body = r->body;
    req.body_len = r->body_len;
    req.timeout_ms = d->request_timeout_ms;
    req.connect_timeout_ms = d->connect_timeout_ms;
    req.ca_file = d->ca_file;
    req.ca_path = d->ca_path;
    req.insecure = d->insecure;
    req.proxy = d->proxy;
    req.user_agent = "layer-lua";
    p->d = d;
    p->session_id = r->id;
    p->next = d->http;
    d->http = p;
    lt_error e;
    p->transport_id = lt_http_request(d->loop, &req, on_http, p, &e);
    free(url);
    free(extra); /* lt_http_request copied what it keeps */
    if (!p->transport_id) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not start the request: %s", e.msg);
        forget_http(d, p);
        /* only memory may be there on a retry (status 0); a refused option will be refused again (-1) */
        ls_http_response(d->s, lt_now_ms(), r->id, e.code == LT_E_OOM ? 0 : -1, NULL, -1, msg, strlen(msg));
    }
}

/* ===== WebSocket ===== */

static void on_open(lt_ws *ws, void *ud)
{
    ld_driver *d = ud;
    (void)ws;
    if (d->hub)
        hold(d, IN_OPEN, 0, 0, NULL, -1, NULL, 0);
    else
        ls_ws_opened(d->s, lt_now_ms());
}

static void on_text(lt_ws *ws, const char *data, size_t len, void *ud)
{
    ld_driver *d = ud;
    (void)ws;
    if (d->hub)
        hold(d, IN_FRAME, 0, 0, NULL, -1, data, len);
    else
        ls_ws_frame(d->s, lt_now_ms(), data, len);
}

static void ws_gone(ld_driver *d, lt_ws *ws, const char *reason)
{
    if (d->ws == ws) d->ws = NULL;
    lt_ws_free(ws); /* allowed from its own callback */
    if (d->hub)
        hold(d, IN_CLOSED, 0, 0, NULL, -1, reason, strlen(reason));
    else
        ls_ws_closed(d->s, lt_now_ms(), reason);
}

static void on_close(lt_ws *ws, int code, const char *reason, int was_clean, void *ud)
{
    char msg[200];
    (void)was_clean;
    snprintf(msg, sizeof msg, "the server closed the socket (%d%s%s)", code, reason && *reason ? ": " : "",
             reason ? reason : "");
    ws_gone(ud, ws, msg);
}

static void on_error(lt_ws *ws, const char *message, void *ud)
{
    char msg[300];
    snprintf(msg, sizeof msg, "WebSocket error: %s", message ? message : "unknown");
    ws_gone(ud, ws, msg);
}

static void open_ws(ld_driver *d)
{
    lt_ws_opts o;
    const char *token = ls_session_token(d->s);
    char *url;
    size_t n;
    if (!token) return;
    n = strlen(d->ws_base) + strlen(token) * 3 + 32;
    url = malloc(n);
    if (!url) {
        ls_ws_closed(d->s, lt_now_ms(), "could not start a WebSocket connection: out of memory");
        return;
    }
    {
        /* tokens are URL-safe in practice; escape anything else anyway */
        static const char hex[] = "0123456789ABCDEF";
        char *w = url + snprintf(url, n, "%s/?session_token=", d->ws_base);
        const unsigned char *t = (const unsigned char *)token;
        for (; *t; t++) {
            if ((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
                strchr("-._~", *t)) {
                *w++ = (char)*t;
            } else {
                *w++ = '%';
                *w++ = hex[*t >> 4];
                *w++ = hex[*t & 15];
            }
        }
        *w = '\0';
    }
    memset(&o, 0, sizeof o);
    o.url = url;
    o.protocol = ls_subprotocol(d->s);
    o.ca_file = d->ca_file;
    o.ca_path = d->ca_path;
    o.insecure = d->insecure;
    o.proxy = d->proxy;
    o.connect_timeout_ms = d->connect_timeout_ms;
    o.on_open = on_open;
    o.on_text = on_text;
    o.on_close = on_close;
    o.on_error = on_error;
    o.ud = d;
    lt_error e;
    d->ws = lt_ws_connect(d->loop, &o, &e);
    free(url);
    if (!d->ws) {
        char msg[256];
        snprintf(msg, sizeof msg, "could not start a WebSocket connection: %s", e.msg);
        ls_ws_closed(d->s, lt_now_ms(), msg);
    }
}

/* ===== the pass ===== */

void ld_pump(ld_driver *d)
{
    ls_http_request *r;
    char *frame;
    size_t len;
    lt_ws *unsent = NULL;
    lt_error e;
    while ((r = ls_take_http(d->s)) != NULL) {
        send_http(d, r);
        ls_http_request_free(r);
    }
    if (ls_ws_wanted(d->s)) {
        if (!d->ws) open_ws(d);
    } else if (d->ws) {
        /* the engine gave up on this socket (dead, or closing): drop it now */
        lt_ws *ws = d->ws;
        d->ws = NULL;
        lt_ws_close(ws, 1000, "client closing", NULL);
        lt_ws_free(ws);
        ls_ws_closed(d->s, lt_now_ms(), "closed by the client");
    }
    while ((frame = ls_take_frame(d->s, &len)) != NULL) {
        if (d->ws && lt_ws_state(d->ws) == LT_WS_OPEN && lt_ws_send_text(d->ws, frame, len, &e) < 0) unsent = d->ws;
        free(frame); /* unsent requests are resent by the engine after a reconnect */
    }
    if (unsent) { /* a frame that cannot be queued (memory) is not dropped quietly: reconnect, resend */
        char msg[256];
        snprintf(msg, sizeof msg, "WebSocket error: could not send a frame: %s", e.msg);
        lt_ws_close(unsent, 1011, "client could not send", NULL);
        ws_gone(d, unsent, msg);
    }
}

int ld_service(ld_driver *d, int timeout_ms, char *err, size_t err_len)
{
    int64_t due;
    lt_error e;
    int rc;
    if (d->hub) { /* the hub's pass did the I/O: hand over what it brought */
        feed(d);
        ld_pump(d);
        return 0;
    }
    ld_pump(d);                                /* start what the engine asked for before waiting */
    due = ls_next_deadline(d->s, lt_now_ms()); /* never sleep past the engine's own timers */
    if (due >= 0 && (timeout_ms < 0 || due < timeout_ms)) timeout_ms = (int)due;
    rc = lt_loop_step(d->loop, timeout_ms, &e);
    ld_pump(d);
    if (rc < 0) snprintf(err, err_len, "the event loop failed: %s", e.msg);
    return rc;
}

/* ===== the hub ===== */

static dlist *list_of(ld_hub *h, int at)
{
    return at == AT_READY ? &h->ready : at == AT_ROUND ? &h->round : at == AT_STEPPING ? &h->stepping : NULL;
}

static void unlist(ld_driver *d)
{
    dlist *l = list_of(d->hub, d->at);
    if (!l) return;
    if (d->lprev)
        d->lprev->lnext = d->lnext;
    else
        l->head = d->lnext;
    if (d->lnext)
        d->lnext->lprev = d->lprev;
    else
        l->tail = d->lprev;
    d->lprev = d->lnext = NULL;
    d->at = AT_NONE;
}

static void enlist(ld_driver *d, int at)
{
    dlist *l = list_of(d->hub, at);
    unlist(d);
    d->at = at;
    d->lprev = l->tail;
    d->lnext = NULL;
    if (l->tail)
        l->tail->lnext = d;
    else
        l->head = d;
    l->tail = d;
}

/* In line for the next round; one already in this round stays there. */
static void make_ready(ld_driver *d)
{
    ld_hub *h = d->hub;
    if (d->at == AT_READY || d->at == AT_ROUND) return;
    /* a host waiting on the fd must see it: once, when the first work appears */
    if (!h->ready.head && !h->round.head && !lt_loop_in_step(h->loop)) wake(h->loop);
    enlist(d, AT_READY);
}

static void on_deadline(lt_loop *loop, void *ud)
{
    ld_driver *d = ud;
    (void)loop;
    d->timer = 0;
    make_ready(d);
}

void ld_settle(ld_driver *d)
{
    int64_t now, due, at;
    if (!d->hub) return;
    if (d->at == AT_STEPPING) unlist(d);
    if (d->in_head || ls_pending_events(d->s)) {
        make_ready(d);
        return;
    }
    now = lt_now_ms();
    due = ls_next_deadline(d->s, now);
    if (due < 0) return; /* a timer still armed fires early: a spare step, no harm */
    if (due == 0) {
        make_ready(d);
        return;
    }
    at = now + due;
    if (d->timer && d->timer_at <= at) return; /* deadlines mostly move later: keep the earlier one */
    if (d->timer) lt_timer_cancel(d->loop, d->timer);
    d->timer = lt_timer_start(d->loop, due, on_deadline, d, NULL);
    d->timer_at = at;
    if (!d->timer) make_ready(d); /* out of memory for the timer: poll it instead */
}

ld_hub *ld_hub_new(char *err, size_t err_len)
{
    ld_hub *h = calloc(1, sizeof *h);
    lt_error e;
    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (!(h->loop = lt_loop_new(&e))) {
        free(h);
        snprintf(err, err_len, "could not create the event loop: %s", e.msg);
        return NULL;
    }
    lt_loop_set_shared(h->loop);
    return h;
}

static void hub_destroy(ld_hub *h)
{
    lt_loop_free(h->loop);
    free(h);
}

void ld_hub_release(ld_hub *h)
{
    if (!h || h->released) return;
    h->released = 1;
    if (!h->n) hub_destroy(h);
}

int ld_hub_fd(ld_hub *h) { return lt_loop_fd(h->loop); }
size_t ld_hub_drivers(const ld_hub *h) { return h->n; }
void ld_hub_wake(ld_hub *h) { wake(h->loop); }

int ld_hub_timeout_ms(ld_hub *h)
{
    if (h->ready.head || h->round.head || h->stepping.head) return 0;
    return lt_loop_timeout_ms(h->loop);
}

int ld_hub_step(ld_hub *h, int timeout_ms, char *err, size_t err_len)
{
    lt_error e;
    int rc;
    /* handed out and never settled (its step raised): it may still have work */
    while (h->stepping.head) enlist(h->stepping.head, AT_READY);
    if (h->ready.head || h->round.head) timeout_ms = 0;
    rc = lt_loop_step(h->loop, timeout_ms, &e);
    /* this pass's drivers join what is left of the last round */
    while (h->ready.head) enlist(h->ready.head, AT_ROUND);
    if (rc < 0) snprintf(err, err_len, "the event loop failed: %s", e.msg);
    return rc;
}

ld_driver *ld_hub_next(ld_hub *h)
{
    ld_driver *d = h->round.head;
    h->current = d;
    if (d) enlist(d, AT_STEPPING);
    return d;
}

void ld_hub_skip(ld_hub *h)
{
    if (h->current && h->current->at == AT_STEPPING) unlist(h->current);
    h->current = NULL;
}
