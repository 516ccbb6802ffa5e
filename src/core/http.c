/*
 * http.c - HTTP requests over libcurl's multi SOCKET API (see http.h).
 *
 * curl's socket and timer callbacks only touch epoll and a stored deadline;
 * every curl_multi_socket_action call happens from lt_loop_step, and user
 * callbacks run only after completions have been drained from the multi.
 */
#define _GNU_SOURCE
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)

typedef struct hreq {
    struct hreq *prev, *next; /* the service's list of unreported requests */
    struct hreq *done_next;
    uint64_t id;
    CURL *easy;
    struct curl_slist *hdrs;
    lt_http_cb cb;
    void *ud;
    char *body;
    size_t len, cap, max;
    char *hstore; /* "name\0value\0" pairs of the final response */
    size_t hlen, hcap, nh;
    int done, cancelled, toobig, oom;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
} hreq;

typedef struct {
    lt_loop *loop;
    int slot;
    CURLM *multi;
    int64_t deadline; /* curl's timer, -1 = none */
    hreq *head;
    uint64_t next_id;
} hsvc;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

/* Global init once per process; never cleaned up (other users may share it). */
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void hreq_free(hreq *r)
{
    if (r->easy) curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r->hstore);
    free(r);
}

static void unlink_req(hsvc *svc, hreq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        svc->head = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* ---- curl callbacks: bookkeeping only ---------------------------------- */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    hsvc *svc = userp;
    uint32_t ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= EPOLLOUT;
    lt_error err;
    /* unwatched, the transfer still ends: at curl's timeout, with its error */
    if (lt_loop_watch(svc->loop, svc->slot, s, what == CURL_POLL_REMOVE ? 0 : ev, &err) < 0)
        lt_loop_log(svc->loop, LT_LOG_ERR, "http: %s", err.msg);
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    hsvc *svc = userp;
    svc->deadline = timeout_ms < 0 ? -1 : lt_now_ms() + timeout_ms;
    return 0;
}

static size_t write_cb(char *p, size_t sz, size_t n, void *ud)
{
    hreq *r = ud;
    size_t k = sz * n;
    if (r->len + k > r->max) {
        r->toobig = 1;
        return 0;
    }
    if (r->len + k + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + k + 1) cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            r->oom = 1;
            return 0;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = 0;
    return k;
}

static int hstore_put(hreq *r, const char *s, size_t n)
{
    if (r->hlen + n + 1 > r->hcap) {
        size_t cap = r->hcap ? r->hcap : 512;
        while (cap < r->hlen + n + 1) cap *= 2;
        char *b = realloc(r->hstore, cap);
        if (!b) return -1;
        r->hstore = b;
        r->hcap = cap;
    }
    memcpy(r->hstore + r->hlen, s, n);
    r->hstore[r->hlen + n] = 0;
    r->hlen += n + 1;
    return 0;
}

static size_t header_cb(char *p, size_t sz, size_t n, void *ud)
{
    hreq *r = ud;
    size_t k = sz * n, len = k;
    while (len && (p[len - 1] == '\r' || p[len - 1] == '\n')) len--;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response: keep only the last */
        r->hlen = 0;
        r->nh = 0;
        return k;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon) return k;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (hstore_put(r, p, nl) < 0 || hstore_put(r, v, (size_t)(end - v)) < 0) {
        r->oom = 1;
        return 0;
    }
    r->nh++;
    return k;
}

/* ---- service ------------------------------------------------------------ */

static void svc_on_fd(void *ud, int fd, uint32_t ev)
{
    hsvc *svc = ud;
    int flags = 0, running;
    if (ev & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (ev & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(svc->multi, fd, flags, &running);
}

static lt_http_err map_error(const hreq *r)
{
    if (r->toobig) return LT_HTTP_ETOOBIG;
    switch (r->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return LT_HTTP_EDNS;
    case CURLE_COULDNT_CONNECT: return LT_HTTP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT: return LT_HTTP_ETIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED: return LT_HTTP_ETLS;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS: return LT_HTTP_EPROTO;
    default: return LT_HTTP_EOTHER;
    }
}

const char *lt_http_strerror(lt_http_err e)
{
    switch (e) {
    case LT_HTTP_OK: return "ok";
    case LT_HTTP_EDNS: return "dns";
    case LT_HTTP_ECONNECT: return "connect";
    case LT_HTTP_ETIMEOUT: return "timeout";
    case LT_HTTP_ETLS: return "tls";
    case LT_HTTP_ETOOBIG: return "too big";
    case LT_HTTP_EPROTO: return "protocol";
    default: return "other";
    }
}

static void report(hsvc *svc, hreq *r)
{
    lt_http_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = r->id;
    resp.priv_ = r;
    resp.curl_code = (int)r->result;
    if (r->result == CURLE_OK && !r->oom) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        resp.body = r->body ? r->body : "";
        resp.body_len = r->len;
    } else {
        long os_errno = 0;
        resp.error = r->oom ? LT_HTTP_EOTHER : map_error(r);
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
        resp.os_errno = (int)os_errno;
        if (r->toobig) snprintf(r->errbuf, sizeof r->errbuf, "response body over max_body (%zu bytes)", r->max);
        resp.error_msg = r->oom         ? "out of memory for the response"
                         : r->errbuf[0] ? r->errbuf
                                        : curl_easy_strerror(r->result);
        resp.body = "";
        r->nh = 0;
    }
    r->cb(&resp, r->ud);
}

static void svc_run(void *ud)
{
    hsvc *svc = ud;
    int running, q;
    if (svc->deadline >= 0 && lt_now_ms() >= svc->deadline) {
        svc->deadline = -1;
        curl_multi_socket_action(svc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    /* Drain completions first: callbacks may add or remove handles. */
    hreq *done = NULL, **tail = &done;
    CURLMsg *m;
    while ((m = curl_multi_info_read(svc->multi, &q))) {
        if (m->msg != CURLMSG_DONE) continue;
        hreq *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->result = m->data.result;
        r->done = 1;
        r->done_next = NULL;
        *tail = r;
        tail = &r->done_next;
    }
    for (hreq *r = done; r; r = r->done_next) curl_multi_remove_handle(svc->multi, r->easy);
    while (done && !lt_loop_closing(svc->loop)) {
        hreq *r = done;
        done = r->done_next;
        unlink_req(svc, r);
        if (!r->cancelled) report(svc, r);
        hreq_free(r);
    }
    /* If the loop is being freed, leftovers stay listed and svc_destroy frees them. */
}

static int svc_timeout(void *ud)
{
    hsvc *svc = ud;
    if (svc->deadline < 0) return -1;
    int64_t d = svc->deadline - lt_now_ms();
    return d <= 0 ? 0 : d > 0x7fffffff ? 0x7fffffff : (int)d;
}

static void svc_destroy(void *ud)
{
    hsvc *svc = ud;
    while (svc->head) {
        hreq *r = svc->head;
        unlink_req(svc, r);
        if (!r->done) curl_multi_remove_handle(svc->multi, r->easy);
        hreq_free(r);
    }
    curl_multi_cleanup(svc->multi); /* may still call sock_cb: the epoll fd is open */
    free(svc);
}

static const lt_service_vt http_vt = {svc_on_fd, svc_run, svc_timeout, svc_destroy};

static hsvc *get_svc(lt_loop *loop, lt_error *err)
{
    hsvc *svc = lt_loop_service(loop, &http_vt);
    if (svc) return svc;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        lt_error_set(err, LT_E_LIB, "http: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    svc = calloc(1, sizeof *svc);
    if (!svc) {
        lt_error_oom(err);
        return NULL;
    }
    svc->loop = loop;
    svc->deadline = -1;
    svc->next_id = 1;
    svc->multi = curl_multi_init();
    if (!svc->multi) {
        lt_error_set(err, LT_E_LIB, "http: curl_multi_init failed");
        free(svc);
        return NULL;
    }
    curl_multi_setopt(svc->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(svc->multi, CURLMOPT_SOCKETDATA, svc);
    curl_multi_setopt(svc->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(svc->multi, CURLMOPT_TIMERDATA, svc);
    svc->slot = lt_loop_add_service(loop, &http_vt, svc, err);
    if (svc->slot < 0) {
        curl_multi_cleanup(svc->multi);
        free(svc);
        return NULL;
    }
    return svc;
}

/* ---- public ------------------------------------------------------------- */

/* CURLE_OK, or the first code libcurl refused an option with (*what names it). */
static CURLcode setup(hreq *r, const lt_http_req *q, const char **what)
{
    CURL *e = r->easy;
    const char *method = q->method ? q->method : q->body ? "POST" : "GET";
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        CURLcode c_ = curl_easy_setopt(e, opt, val);                                                                   \
        if (c_ != CURLE_OK && rc == CURLE_OK) rc = c_, *what = #opt;                                                   \
    } while (0)
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, r);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    if (q->timeout_ms > 0) SET(CURLOPT_TIMEOUT_MS, q->timeout_ms);
    if (q->connect_timeout_ms > 0) SET(CURLOPT_CONNECTTIMEOUT_MS, q->connect_timeout_ms);
    if (q->follow_redirects) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, 5L);
    }
    if (q->insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (q->ca_file) SET(CURLOPT_CAINFO, q->ca_file);
    if (q->ca_path) SET(CURLOPT_CAPATH, q->ca_path);
    if (q->proxy) SET(CURLOPT_PROXY, q->proxy);
    if (q->user_agent) SET(CURLOPT_USERAGENT, q->user_agent);

    if (strcmp(method, "GET") == 0 && !q->body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, method);
        if (q->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
            SET(CURLOPT_COPYPOSTFIELDS, q->body ? q->body : "");
        }
    }
    for (size_t i = 0; i < q->nheaders; i++) {
        struct curl_slist *s = curl_slist_append(r->hdrs, q->headers[i]);
        if (!s) return CURLE_OUT_OF_MEMORY;
        r->hdrs = s;
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    struct curl_slist *s = curl_slist_append(r->hdrs, "Expect:");
    if (!s) return CURLE_OUT_OF_MEMORY;
    r->hdrs = s;
    SET(CURLOPT_HTTPHEADER, r->hdrs);
#undef SET
    return rc;
}

uint64_t lt_http_request(lt_loop *loop, const lt_http_req *q, lt_http_cb cb, void *ud, lt_error *err)
{
    if (!loop || !q || !q->url || !cb) {
        lt_error_set(err, LT_E_INVAL, "http: a request needs a loop, a url and a callback");
        return 0;
    }
    if (lt_loop_closing(loop)) {
        lt_error_set(err, LT_E_STATE, "http: the loop is being freed");
        return 0;
    }
    hsvc *svc = get_svc(loop, err);
    if (!svc) return 0;
    hreq *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) { /* curl_easy_init fails only for memory once curl is set up */
        lt_error_oom(err);
        free(r);
        return 0;
    }
    r->cb = cb;
    r->ud = ud;
    r->max = q->max_body ? q->max_body : HTTP_DEFAULT_MAX_BODY;
    const char *what = "a header";
    CURLcode rc = setup(r, q, &what);
    CURLMcode mrc = rc == CURLE_OK ? curl_multi_add_handle(svc->multi, r->easy) : CURLM_OK;
    if (rc != CURLE_OK || mrc != CURLM_OK) {
        if (rc == CURLE_OUT_OF_MEMORY || mrc == CURLM_OUT_OF_MEMORY)
            lt_error_oom(err);
        else if (rc != CURLE_OK)
            lt_error_set(err, LT_E_INVAL, "http: libcurl refused %s: %s", what, curl_easy_strerror(rc));
        else
            lt_error_set(err, LT_E_LIB, "http: curl_multi_add_handle: %s", curl_multi_strerror(mrc));
        hreq_free(r);
        return 0;
    }
    r->id = svc->next_id++;
    r->next = svc->head;
    if (svc->head) svc->head->prev = r;
    svc->head = r;
    return r->id;
}

int lt_http_cancel(lt_loop *loop, uint64_t id)
{
    hsvc *svc = lt_loop_service(loop, &http_vt);
    if (!svc || !id) return 0;
    for (hreq *r = svc->head; r; r = r->next) {
        if (r->id != id) continue;
        if (r->cancelled) return 0;
        if (r->done) { /* completion already drained: svc_run frees it */
            r->cancelled = 1;
            return 1;
        }
        curl_multi_remove_handle(svc->multi, r->easy);
        unlink_req(svc, r);
        hreq_free(r);
        return 1;
    }
    return 0;
}

size_t lt_http_active(lt_loop *loop)
{
    hsvc *svc = lt_loop_service(loop, &http_vt);
    size_t n = 0;
    if (svc)
        for (hreq *r = svc->head; r; r = r->next) n += !r->cancelled;
    return n;
}

int lt_http_header_at(const lt_http_resp *resp, size_t i, const char **name, const char **value)
{
    const hreq *r = resp->priv_;
    if (!r || i >= r->nh) return 0;
    const char *p = r->hstore;
    for (size_t k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *name = p;
    *value = p + strlen(p) + 1;
    return 1;
}

size_t lt_http_header_count(const lt_http_resp *resp)
{
    const hreq *r = resp->priv_;
    return r ? r->nh : 0;
}

const char *lt_http_header(const lt_http_resp *resp, const char *name)
{
    const hreq *r = resp->priv_;
    if (!r) return NULL;
    const char *p = r->hstore;
    for (size_t k = 0; k < r->nh; k++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0) return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}
