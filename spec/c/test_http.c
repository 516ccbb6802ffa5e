/* test_http.c - lt_http over a loopback HTTP/1.1 server run by a thread of this test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http.h"
#include "loop.h"
#include "tap.h"

/* ---- the test server: one thread, poll(), Connection: close ----------- */

#define MAXC 128
typedef struct {
    int fd;
    char *in;
    size_t len, cap;
    int slow; /* never answer */
} conn;

static int srv_fd, srv_port, srv_stop_pipe[2];
static conn conns[MAXC];
static int srv_accepted; /* atomic */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {fd, POLLOUT, 0};
                poll(&pf, 1, 100);
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static const char *find_header(const char *req, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = strstr(req, "\r\n");
    while (p && p[2] != '\r') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            *vlen = strcspn(v, "\r");
            return v;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void respond(int fd, int status, const char *extra, const char *body, size_t blen)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status, blen,
                     extra);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, blen);
}

/* Returns 1 when the connection should be closed. */
static int handle(conn *c)
{
    char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - c->in) + 4, vlen = 0, clen = 0;
    *end = 0;
    const char *cl = find_header(c->in, "Content-Length", &vlen);
    if (cl)
        clen = strtoul(cl, NULL, 10);
    if (c->len < hlen + clen) {
        *end = '\r';
        return 0;
    }
    char method[16] = "", path[256] = "";
    sscanf(c->in, "%15s %255s", method, path);
    const char *body = c->in + hlen;
    if (strcmp(path, "/echo") == 0) {
        const char *xt = find_header(c->in, "X-Test", &vlen);
        size_t xl = xt ? vlen : 0;
        size_t olen = strlen(method) + 1 + xl + 1 + clen;
        char *out = malloc(olen + 1);
        snprintf(out, olen + 1, "%s|%.*s|", method, (int)xl, xt ? xt : "");
        memcpy(out + strlen(method) + 1 + xl + 1, body, clen);
        respond(c->fd, 200, "Content-Type: application/json\r\nLayer-Count: 42\r\nX-Multi: a\r\n", out, olen);
        free(out);
    } else if (strncmp(path, "/status/", 8) == 0) {
        respond(c->fd, atoi(path + 8), "Retry-After: 7\r\n", "status", 6);
    } else if (strcmp(path, "/slow") == 0) {
        c->slow = 1;
        return 0;
    } else if (strncmp(path, "/big/", 5) == 0) {
        size_t n = strtoul(path + 5, NULL, 10);
        char *b = malloc(n);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)('a' + i % 26);
        respond(c->fd, 200, "", b, n);
        free(b);
    } else if (strcmp(path, "/drop") == 0) {
        return 1; /* close with no response */
    } else {
        respond(c->fd, 404, "", "nope", 4);
    }
    return 1;
}

static void *server(void *arg)
{
    for (;;) {
        struct pollfd pf[MAXC + 2];
        int idx[MAXC + 2], n = 0;
        pf[n].fd = srv_stop_pipe[0];
        pf[n++].events = POLLIN;
        pf[n].fd = srv_fd;
        pf[n++].events = POLLIN;
        for (int i = 0; i < MAXC; i++)
            if (conns[i].fd > 0) {
                idx[n] = i;
                pf[n].fd = conns[i].fd;
                pf[n++].events = POLLIN;
            }
        if (poll(pf, (nfds_t)n, 1000) < 0)
            continue;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN) {
            int c = accept4(srv_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            for (int i = 0; c >= 0 && i < MAXC; i++)
                if (conns[i].fd <= 0) {
                    memset(&conns[i], 0, sizeof conns[i]);
                    conns[i].fd = c;
                    c = -1;
                    __atomic_add_fetch(&srv_accepted, 1, __ATOMIC_SEQ_CST);
                }
            if (c >= 0)
                close(c);
        }
        for (int k = 2; k < n; k++) {
            if (!pf[k].revents)
                continue;
            conn *c = &conns[idx[k]];
            if (c->cap - c->len < 65536) {
                c->cap = c->cap ? c->cap * 2 : 131072;
                c->in = realloc(c->in, c->cap);
            }
            ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len - 1, 0);
            int done = r <= 0;
            if (r > 0) {
                c->len += (size_t)r;
                c->in[c->len] = 0;
                if (!c->slow)
                    done = handle(c);
            }
            if (done) {
                close(c->fd);
                free(c->in);
                memset(c, 0, sizeof *c);
            }
        }
    }
    for (int i = 0; i < MAXC; i++)
        if (conns[i].fd > 0) {
            close(conns[i].fd);
            free(conns[i].in);
        }
    return NULL;
}

static int listen_on(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog) < 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- client side ------------------------------------------------------- */

typedef struct {
    int done;
    long status;
    lt_http_err err;
    char msg[256];
    char *body;
    size_t blen;
    char ctype[64], count[16], retry[16];
    size_t nh;
} result;

static void on_resp(const lt_http_resp *r, void *ud)
{
    result *x = ud;
    x->done++;
    x->status = r->status;
    x->err = r->error;
    snprintf(x->msg, sizeof x->msg, "%s", r->error_msg ? r->error_msg : "");
    x->body = malloc(r->body_len + 1);
    memcpy(x->body, r->body, r->body_len + 1);
    x->blen = r->body_len;
    const char *v;
    snprintf(x->ctype, sizeof x->ctype, "%s", (v = lt_http_header(r, "content-type")) ? v : "");
    snprintf(x->count, sizeof x->count, "%s", (v = lt_http_header(r, "Layer-Count")) ? v : "");
    snprintf(x->retry, sizeof x->retry, "%s", (v = lt_http_header(r, "retry-after")) ? v : "");
    x->nh = lt_http_header_count(r);
}

static void wait_for(lt_loop *L, int *flag, int want, int ms)
{
    double t0 = tap_now();
    while (*flag < want && tap_now() - t0 < ms)
        lt_loop_step(L, 50, NULL);
}

static char url[256];
static const char *U(const char *path)
{
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv_port, path);
    return url;
}

/* callbacks that re-enter the transport */
static lt_loop *gL;
static uint64_t victim;
static int victim_cb_ran;
static result chained;
static void cancel_other(const lt_http_resp *r, void *ud)
{
    *(int *)ud = 1;
    lt_http_cancel(gL, victim); /* may already be complete in the same step */
    lt_http_req q;
    memset(&q, 0, sizeof q);
    q.url = U("/echo");
    q.body = "again";
    q.body_len = 5;
    lt_http_request(gL, &q, on_resp, &chained, NULL); /* start a new one from a callback */
}
static void victim_cb(const lt_http_resp *r, void *ud) { victim_cb_ran = 1; }
static lt_error after_free_err;
static uint64_t after_free_id = 1;
static void free_loop_cb(const lt_http_resp *r, void *ud)
{
    (*(int *)ud)++;
    lt_loop_free(gL);
    lt_http_req q;
    memset(&q, 0, sizeof q);
    q.url = U("/echo");
    after_free_id = lt_http_request(gL, &q, on_resp, NULL, &after_free_err); /* refused: the loop is going */
}

int main(void)
{
    tap_watchdog(60);
    srv_fd = listen_on(64, &srv_port);
    pipe(srv_stop_pipe);
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);

    lt_loop *L = lt_loop_new(NULL);
    gL = L;
    int epfd = lt_loop_fd(L);

    /* GET with headers */
    result a = {0};
    const char *hdrs[] = {"X-Test: hello", "Accept: application/json"};
    lt_http_req q;
    memset(&q, 0, sizeof q);
    q.url = U("/echo");
    q.headers = hdrs;
    q.nheaders = 2;
    uint64_t id = lt_http_request(L, &q, on_resp, &a, NULL);
    OK(id != 0, "lt_http_request returns an id");
    OK(lt_loop_timeout_ms(L) == 0, "a new request makes timeout 0 (curl wants a kick)");
    wait_for(L, &a.done, 1, 5000);
    OK(a.done == 1 && a.status == 200 && a.err == LT_HTTP_OK, "GET completes with 200");
    OK(a.body && strcmp(a.body, "GET|hello|") == 0, "request header reached the server (%s)", a.body);
    OK(strcmp(a.ctype, "application/json") == 0 && strcmp(a.count, "42") == 0,
       "response header lookup is case-insensitive (Content-Type, Layer-Count)");
    OK(a.nh >= 4, "header_count sees all headers (%zu)", a.nh);
    free(a.body);

    /* refused at once: 0 and an lt_error saying why */
    lt_error err;
    memset(&err, 0, sizeof err);
    q.url = NULL;
    OK(lt_http_request(L, &q, on_resp, &a, &err) == 0 && err.code == LT_E_INVAL && strstr(err.msg, "url"),
       "no url: 0 and LT_E_INVAL (%s)", err.msg);
    q.url = U("/echo");
    memset(&err, 0, sizeof err);
    OK(lt_http_request(L, &q, NULL, NULL, &err) == 0 && err.code == LT_E_INVAL && strstr(err.msg, "callback"),
       "no callback: 0 and LT_E_INVAL (%s)", err.msg);
    OK(lt_http_request(L, &q, NULL, NULL, NULL) == 0, "err may be NULL");
    size_t hugelen = (size_t)9 << 20; /* over libcurl's 8 MB limit for a string option */
    char *huge = malloc(hugelen + 1);
    memcpy(huge, "http://127.0.0.1/", 17);
    memset(huge + 17, 'a', hugelen - 17);
    huge[hugelen] = 0;
    q.url = huge;
    memset(&err, 0, sizeof err);
    OK(lt_http_request(L, &q, on_resp, &a, &err) == 0 && err.code == LT_E_INVAL && strstr(err.msg, "CURLOPT_URL"),
       "a url libcurl refuses: 0 and LT_E_INVAL naming the option (%s)", err.msg);
    free(huge);
    OK(lt_http_active(L) == 0 && a.done == 1, "refused requests are not active and call nothing");

    /* POST body + PATCH + DELETE */
    result b = {0}, c = {0}, d = {0};
    memset(&q, 0, sizeof q);
    q.url = U("/echo");
    q.method = "POST";
    q.body = "{\"a\":1}\0tail";
    q.body_len = 12; /* embedded NUL travels */
    lt_http_request(L, &q, on_resp, &b, NULL);
    q.method = "PATCH";
    q.body = "[]";
    q.body_len = 2;
    lt_http_request(L, &q, on_resp, &c, NULL);
    q.method = "DELETE";
    q.body = NULL;
    q.body_len = 0;
    lt_http_request(L, &q, on_resp, &d, NULL);
    int all = 0;
    double t0 = tap_now();
    while ((b.done + c.done + d.done) < 3 && tap_now() - t0 < 5000)
        lt_loop_step(L, 50, NULL);
    (void)all;
    OK(b.status == 200 && b.blen == 18 && memcmp(b.body, "POST||{\"a\":1}\0tail", 18) == 0, "POST body is sent verbatim");
    OK(c.status == 200 && strcmp(c.body, "PATCH||[]") == 0, "PATCH with body");
    OK(d.status == 200 && strcmp(d.body, "DELETE||") == 0, "DELETE without body");
    free(b.body);
    free(c.body);
    free(d.body);

    /* status codes and Retry-After */
    result s = {0};
    memset(&q, 0, sizeof q);
    q.url = U("/status/429");
    lt_http_request(L, &q, on_resp, &s, NULL);
    wait_for(L, &s.done, 1, 5000);
    OK(s.status == 429 && s.err == LT_HTTP_OK && strcmp(s.retry, "7") == 0, "429 is a status, not an error; Retry-After: %s", s.retry);
    free(s.body);
    memset(&s, 0, sizeof s);
    q.url = U("/status/500");
    lt_http_request(L, &q, on_resp, &s, NULL);
    wait_for(L, &s.done, 1, 5000);
    OK(s.status == 500 && s.err == LT_HTTP_OK, "500 is reported as status");
    free(s.body);

    /* big body */
    result big = {0};
    q.url = U("/big/3000000");
    lt_http_request(L, &q, on_resp, &big, NULL);
    wait_for(L, &big.done, 1, 10000);
    int same = big.blen == 3000000;
    for (size_t i = 0; same && i < big.blen; i += 4099)
        same = big.body[i] == (char)('a' + i % 26);
    OK(same, "3 MB response body arrives intact");
    free(big.body);
    memset(&big, 0, sizeof big);
    q.max_body = 1000;
    lt_http_request(L, &q, on_resp, &big, NULL);
    wait_for(L, &big.done, 1, 10000);
    OK(big.err == LT_HTTP_ETOOBIG && big.status == 0 && strstr(big.msg, "max_body"), "max_body is enforced (%s)", big.msg);
    free(big.body);
    q.max_body = 0;

    /* connection refused */
    int port2;
    int tmp = listen_on(1, &port2);
    close(tmp);
    result r = {0};
    char u2[128];
    snprintf(u2, sizeof u2, "http://127.0.0.1:%d/", port2);
    q.url = u2;
    lt_http_request(L, &q, on_resp, &r, NULL);
    wait_for(L, &r.done, 1, 5000);
    OK(r.done && r.err == LT_HTTP_ECONNECT && r.status == 0, "connection refused is a transport error (%s)", r.msg);
    free(r.body);

    /* dropped connection */
    memset(&r, 0, sizeof r);
    q.url = U("/drop");
    lt_http_request(L, &q, on_resp, &r, NULL);
    wait_for(L, &r.done, 1, 5000);
    OK(r.done && r.err == LT_HTTP_EPROTO, "empty reply is a protocol error (%s)", r.msg);
    free(r.body);

    /* timeout, while step(0) never blocks */
    memset(&r, 0, sizeof r);
    q.url = U("/slow");
    q.timeout_ms = 300;
    lt_http_request(L, &q, on_resp, &r, NULL);
    double worst = 0;
    t0 = tap_now();
    while (!r.done && tap_now() - t0 < 5000) {
        double s0 = tap_now();
        lt_loop_step(L, 0, NULL);
        double el = tap_now() - s0;
        if (el > worst)
            worst = el;
        int to = lt_loop_timeout_ms(L);
        usleep(to > 0 && to < 2 ? (unsigned)to * 1000 : 1000);
    }
    double took = tap_now() - t0;
    OK(r.done && r.err == LT_HTTP_ETIMEOUT, "request timeout is a transport error (%s)", r.msg);
    OK(took >= 250 && took < 2000 * tap_slow(), "... after about timeout_ms (%.0f ms)", took);
    OK(worst < 5 * tap_slow(), "step(0) never blocked while a request was pending (worst %.2f ms)", worst);
    free(r.body);
    q.timeout_ms = 0;

    /* localhost goes through curl's own async resolver */
    memset(&r, 0, sizeof r);
    snprintf(u2, sizeof u2, "http://localhost:%d/echo", srv_port);
    q.url = u2;
    lt_http_request(L, &q, on_resp, &r, NULL);
    wait_for(L, &r.done, 1, 5000);
    OK(r.status == 200, "hostname URL (localhost) works");
    free(r.body);

    /* many concurrent requests */
    enum { NREQ = 60 };
    static result many[NREQ];
    memset(many, 0, sizeof many);
    int ndone = 0;
    q.url = U("/echo");
    q.method = "POST";
    char bodies[NREQ][16];
    for (int i = 0; i < NREQ; i++) {
        snprintf(bodies[i], sizeof bodies[i], "n%d", i);
        q.body = bodies[i];
        q.body_len = strlen(bodies[i]);
        lt_http_request(L, &q, on_resp, &many[i], NULL);
    }
    OK(lt_http_active(L) == NREQ, "%d requests active", NREQ);
    t0 = tap_now();
    while (ndone < NREQ && tap_now() - t0 < 10000) {
        lt_loop_step(L, 50, NULL);
        ndone = 0;
        for (int i = 0; i < NREQ; i++)
            ndone += many[i].done;
    }
    int good = 0;
    for (int i = 0; i < NREQ; i++) {
        char want[32];
        snprintf(want, sizeof want, "POST||n%d", i);
        good += many[i].done == 1 && many[i].status == 200 && strcmp(many[i].body, want) == 0;
        free(many[i].body);
    }
    OK(good == NREQ, "all %d concurrent requests got their own response (%d)", NREQ, good);
    q.method = NULL;
    q.body = NULL;
    q.body_len = 0;

    /* cancel */
    memset(&r, 0, sizeof r);
    q.url = U("/slow");
    uint64_t cid = lt_http_request(L, &q, on_resp, &r, NULL);
    for (int i = 0; i < 20; i++)
        lt_loop_step(L, 5, NULL);
    OK(lt_http_cancel(L, cid) == 1 && lt_http_cancel(L, cid) == 0, "cancel by id, once");
    for (int i = 0; i < 20; i++)
        lt_loop_step(L, 5, NULL);
    OK(r.done == 0 && lt_http_active(L) == 0, "cancelled request never calls back");

    /* callbacks that cancel another completed request and start a new one */
    int first = 0;
    memset(&chained, 0, sizeof chained);
    q.url = U("/status/204");
    lt_http_request(L, &q, cancel_other, &first, NULL);
    victim = lt_http_request(L, &q, victim_cb, NULL, NULL);
    wait_for(L, &chained.done, 1, 5000);
    OK(first == 1 && chained.done == 1 && strcmp(chained.body, "POST||again") == 0,
       "a callback can start a request");
    DIAG("victim callback %s (cancel raced completion)", victim_cb_ran ? "ran" : "suppressed");
    free(chained.body);
    OK(lt_http_active(L) == 0, "nothing left active");
    OK(lt_loop_fd(L) == epfd, "epoll fd unchanged");

    /* free the loop from inside a callback while others are in flight */
    int freed_calls = 0;
    q.url = U("/status/200");
    lt_http_request(L, &q, free_loop_cb, &freed_calls, NULL);
    lt_http_request(L, &q, free_loop_cb, &freed_calls, NULL);
    q.url = U("/slow");
    lt_http_request(L, &q, on_resp, &r, NULL);
    t0 = tap_now();
    while (freed_calls == 0 && tap_now() - t0 < 5000)
        lt_loop_step(L, 50, NULL);
    OK(freed_calls == 1, "lt_loop_free inside a response callback: no more callbacks, no crash");
    OK(after_free_id == 0 && after_free_err.code == LT_E_STATE && strstr(after_free_err.msg, "freed"),
       "a request on a loop being freed: 0 and LT_E_STATE (%s)", after_free_err.msg);

    /* free a loop with requests still running */
    lt_loop *L2 = lt_loop_new(NULL);
    memset(&r, 0, sizeof r);
    q.url = U("/slow");
    lt_http_request(L2, &q, on_resp, &r, NULL);
    lt_http_request(L2, &q, on_resp, &r, NULL);
    for (int i = 0; i < 10; i++)
        lt_loop_step(L2, 5, NULL);
    lt_loop_free(L2);
    OK(r.done == 0, "lt_loop_free with active requests calls nothing");

    write(srv_stop_pipe[1], "x", 1);
    pthread_join(th, NULL);
    close(srv_fd);
    close(srv_stop_pipe[0]);
    close(srv_stop_pipe[1]);
    return tap_done();
}
