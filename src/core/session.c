/*
 * session.c - the Layer client protocol engine (see session.h).
 *
 * Everything is driven by the inputs; time comes in as a number, so tests
 * control the clock. Outputs wait in queues (frames, HTTP requests, events)
 * until the driver takes them.
 */
#define _GNU_SOURCE /* gmtime_r, also under the fuzzers' -std=c99 */
#include "session.h"
#include "fifo.h"
#include "strcopy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAG_MAX 4096 /* fingerprints per bag: more packets at one timestamp than this, and a replay may repeat some */
#define MAX_RETRIES 5
#define MAX_REAUTHS 5 /* logins in a row answered by another 401 before giving up */
#define TYPING_EXPIRY_MS 6000

typedef enum { AUTH_NONE, AUTH_NONCE, AUTH_CHALLENGED, AUTH_SESSION, AUTH_OK } auth_state;

typedef enum { REQ_APP, REQ_REPLAY, REQ_KEEPALIVE } ws_req_kind;

typedef struct ws_req {
    uint64_t id;
    ws_req_kind kind;
    char *frame; /* kept to resend after a reconnect */
    size_t frame_len;
    int64_t deadline;
    int sent_on;            /* connection number it was last sent on */
    struct ls_event *reply; /* REQ_APP: made with the request, see take_reply */
    struct ws_req *next;
} ws_req;

typedef enum { HTTP_APP, HTTP_NONCE, HTTP_SESSION, HTTP_VALIDATE, HTTP_REFETCH } http_kind;

typedef struct rest_req {
    uint64_t id;
    http_kind kind;
    const char *method;
    char *path, *body;
    size_t body_len;
    const char *content_type;
    int authenticated;
    char *headers;
    int raw;
    int attempts;
    int64_t retry_at; /* -1: not waiting */
    int64_t deadline; /* an app request resolves by then, sent or not; -1: not set yet */
    int in_flight;
    pkt_object_type refetch_type;
    struct ls_event *reply; /* HTTP_APP: made with the request, see take_reply */
    struct rest_req *next;
} rest_req;

typedef struct typist {
    char *conversation, *identity;
    char *sender; /* the last signal's sender as JSON, so the expiry event carries it whole */
    int64_t expires;
    struct typist *next;
} typist;

typedef struct frame_out {
    char *text;
    size_t len;
    struct frame_out *next;
} frame_out;

/* A multiset of packet fingerprints (body and timestamp), small and unordered. */
typedef struct {
    uint64_t *fps;
    size_t n, cap;
} fp_bag;

typedef struct {
    uint64_t seq;
    int64_t ms;
    uint64_t fp;
} cursor_mark;

struct ls_session {
    ls_config cfg;
    lc_cache *cache;
    int closed;
    auth_state auth;
    char *token;
    char *app_id;
    char subprotocol[16];

    /* WebSocket */
    int want_ws, ws_open, connection;
    int64_t last_packet, last_sent;
    int64_t expected_counter; /* -1: anything goes (first packet of a connection is 0) */
    int saw_zero;
    /* Replay cursor: the newest change timestamp applied, and the packets
     * applied at exactly that time. Event.replay from the cursor re-sends
     * those; they (and packets applied while the replay runs) are the only
     * ones skipped as duplicates, once per copy seen. */
    char last_timestamp[48];
    int64_t cursor_ms;
    fp_bag at_cursor;
    /* The newest packet at the cursor, not fingerprinted yet (held_doc holds
     * it): most packets move the cursor on, so their fingerprints would be
     * dropped unread; it is computed when a packet with the same timestamp
     * follows or a replay needs the bag. NULL body: none. */
    const jv *pending_body;
    const char *pending_ts;
    size_t pending_ts_len;
    jv_doc *held_doc;
    fp_bag overlap;
    int64_t replay_from_ms;
    /* durable cursor: applied changes not yet finished by the host wait in
     * marks (oldest first); finished ones fold into durable_ms/durable */
    int track_cursor;
    uint64_t change_seq, applying_seq, applying_fp;
    cursor_mark *marks;
    size_t marks_head, marks_n, marks_cap;
    int64_t durable_ms;
    fp_bag durable;
    int replaying;
    uint64_t replay_packets;
    int attempt;
    int64_t reconnect_at; /* -1: none */
    /* re-authentication after a 401: backs off when each login is answered
     * with another 401, and gives up after MAX_REAUTHS */
    int reauths;
    int64_t reauth_at; /* -1: none pending */
    char *reauth_nonce;
    int keepalive_pending;

    uint64_t next_id;
    uint64_t rng;
    ws_req *ws_reqs;
    rest_req *rest_reqs;
    typist *typists;
    frame_out *frames, *frames_tail;
    ls_http_request *http, *http_tail;
    ls_event *events, *events_tail;
    size_t n_events;
    ls_stats stats;
    int no_change_lists;
    unsigned interest; /* LS_INTEREST bits */
    /* out-of-memory reports: a spare event set aside for the next one, the
     * one queued (failures after it was queued are counted into it), and
     * failures not reported yet because not even the spare was there */
    ls_event *oom_spare, *oom_queued;
    uint64_t oom_count, oom_unreported;
    /* lifecycle events that could not be allocated, oldest first: queued
     * before any later event as soon as memory allows (emit_lifecycle) */
    struct owed_event {
        ls_event_type type;
        double number;
        int text_is_token; /* the text is the session token current at delivery */
        int has_text;
        char text[120];
    } owed[8];
    unsigned n_owed;
    jv_doc *scratch; /* each frame is parsed here: no allocation per frame */
};

/* ===== small utilities ===== */

static uint64_t rng_next(ls_session *s)
{
    /* xorshift64*: jitter only needs to differ between clients */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ull;
}

void ls_config_defaults(ls_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->api_version = 3;
    cfg->keepalive_ms = 30000;
    cfg->dead_ms = 45000;
    cfg->request_timeout_ms = 45000;
    cfg->backoff_base_ms = 1600;
    cfg->backoff_cap_ms = 480000;
    cfg->backoff_jitter = 0.5;
}

/* ===== events ===== */

static void event_push(ls_session *s, ls_event *ev);
static int64_t schedule_reconnect(ls_session *s, int64_t now, const char *reason);

/* Queue the out-of-memory report if one is owed and none is queued. */
static void report_oom(ls_session *s)
{
    ls_event *ev = s->oom_spare;
    if (!s->oom_unreported || s->oom_queued) return;
    if (!ev && !(ev = calloc(1, sizeof *ev))) return; /* owed still: the next event tries again */
    s->oom_spare = NULL;
    ev->type = LS_EV_ERROR;
    ev->number = LS_ERROR_OUT_OF_MEMORY;
    s->oom_queued = ev;
    s->oom_count = s->oom_unreported;
    s->oom_unreported = 0;
    event_push(s, ev);
}

/* An allocation failed and something was dropped or put off: never silently.
 * The queued report counts it, or one is queued now. */
static void out_of_memory(ls_session *s)
{
    s->stats.out_of_memory++;
    if (s->oom_queued) {
        s->oom_count++;
        return;
    }
    s->oom_unreported++;
    report_oom(s);
}

/* An event that could not be made whole is dropped and reported, never
 * delivered with a field missing. ev may be NULL (it was not allocated). */
static void event_lost(ls_session *s, ls_event *ev)
{
    ls_event_free(s, ev);
    out_of_memory(s);
}

static int flush_owed(ls_session *s);
#define OWED_RETRY_MS 100 /* how soon ls_tick tries again to queue owed events */

static ls_event *event_new(ls_session *s, ls_event_type type)
{
    ls_event *ev;
    if (s->oom_unreported) report_oom(s);         /* the report goes before what follows it */
    if (s->n_owed && !flush_owed(s)) return NULL; /* nothing may overtake an owed event */
    ev = calloc(1, sizeof *ev);
    if (!ev) return NULL;
    ev->type = type;
    ev->change_seq = s->applying_seq;
    ev->change_fp = s->applying_fp;
    return ev;
}

static jv_doc *ev_doc(ls_event *ev)
{
    if (!ev->doc) ev->doc = jv_doc_new(0);
    return ev->doc;
}

static void event_push(ls_session *s, ls_event *ev)
{
    if (!ev) return;
    FIFO_PUSH(s->events, s->events_tail, ev);
    s->n_events++;
}

/* The setters below return 0 when memory ran out (nothing to set is success). */
static int event_text(ls_event *ev, const char *text, size_t len)
{
    if (!ev || !text) return 1;
    if (!ev_doc(ev)) return 0;
    ev->text = jv_intern(ev->doc, text, len, 0);
    ev->text_len = ev->text ? len : 0;
    return ev->text != NULL;
}

static int event_id(ls_event *ev, const char *id, size_t len)
{
    if (!ev || !id) return 1;
    if (len < sizeof ev->id_buf) {
        memcpy(ev->id_buf, id, len);
        ev->id_buf[len] = '\0';
        ev->id = ev->id_buf;
    } else {
        ev->id = ev_doc(ev) ? jv_intern(ev->doc, id, len, 0) : NULL;
    }
    ev->id_len = ev->id ? len : 0;
    return ev->id != NULL;
}

static int event_value(ls_event *ev, const jv *v)
{
    jv *copy;
    if (!ev || !v) return 1;
    if (!ev_doc(ev)) return 0;
    copy = jv_alloc(ev->doc, sizeof *copy);
    if (copy && jv_copy_into(ev->doc, copy, v)) ev->value = copy;
    return ev->value != NULL;
}

/* Queue ev if it was made whole (ok), else drop and report it. */
static void event_finish(ls_session *s, ls_event *ev, int ok)
{
    if (ev && ok)
        event_push(s, ev);
    else
        event_lost(s, ev);
}

static void emit_simple(ls_session *s, ls_event_type type, const char *text, double number)
{
    ls_event *ev = event_new(s, type);
    if (ev) ev->number = number;
    event_finish(s, ev, ev && (!text || event_text(ev, text, strlen(text))));
}

/* Lifecycle events (authenticated, connected, disconnected, reconnecting,
 * synced) say what state the session is in: one dropped for want of memory
 * would leave a program waiting for `ready` for good. One that cannot be made
 * is owed instead, kept in the session, and queued before any later event as
 * soon as memory allows. When more are owed than the session keeps, the
 * oldest goes: the latest states are the ones that still hold. */
static void emit_lifecycle(ls_session *s, ls_event_type type, const char *text, double number)
{
    ls_event *ev = event_new(s, type);
    struct owed_event *o;
    if (ev) ev->number = number;
    if (ev && (!text || event_text(ev, text, strlen(text)))) {
        event_push(s, ev);
        return;
    }
    ls_event_free(s, ev);
    out_of_memory(s);
    if (s->n_owed == sizeof s->owed / sizeof s->owed[0]) {
        memmove(s->owed, s->owed + 1, sizeof s->owed - sizeof s->owed[0]);
        s->n_owed--;
    }
    o = &s->owed[s->n_owed++];
    o->type = type;
    o->number = number;
    o->text_is_token = type == LS_EV_AUTHENTICATED;
    o->has_text = text != NULL;
    snprintf(o->text, sizeof o->text, "%s", text && !o->text_is_token ? text : "");
}

/* Queues the owed lifecycle events, oldest first; 1 when none is left. */
static int flush_owed(ls_session *s)
{
    unsigned done = 0;
    while (done < s->n_owed) {
        const struct owed_event *o = &s->owed[done];
        const char *text = o->text_is_token ? s->token : o->has_text ? o->text : NULL;
        ls_event *ev = calloc(1, sizeof *ev);
        if (!ev) break;
        ev->type = o->type;
        ev->number = o->number;
        if (text && !event_text(ev, text, strlen(text))) {
            ls_event_free(s, ev);
            break;
        }
        event_push(s, ev);
        done++;
    }
    memmove(s->owed, s->owed + done, (s->n_owed - done) * sizeof s->owed[0]);
    s->n_owed -= done;
    return s->n_owed == 0;
}

static void emit_error(ls_session *s, const jv *error, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    ls_event *ev = event_new(s, LS_EV_ERROR);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    event_finish(s, ev, ev && event_text(ev, msg, strlen(msg)) && event_value(ev, error));
}

/* A request's answer event is allocated when the request is made, so that
 * running out of memory later cannot lose the answer a caller waits for. */
static ls_event *reply_new(void)
{
    ls_event *ev = calloc(1, sizeof *ev);
    if (ev) ev->type = LS_EV_RESPONSE;
    return ev;
}

static ls_event *take_reply(ls_session *s, ls_event **slot, uint64_t request_id)
{
    ls_event *ev = *slot;
    *slot = NULL;
    if (!ev) return NULL;
    ev->change_seq = s->applying_seq;
    ev->change_fp = s->applying_fp;
    ev->request_id = request_id;
    return ev;
}

/* The answer's body could not be copied: it fails, saying why. */
static void reply_out_of_memory(ls_event *ev)
{
    ev->success = 0;
    ev->out_of_memory = 1;
    ev->value = NULL;
    ev->text = "out of memory"; /* static: event_free frees only ev->doc */
    ev->text_len = 13;
}

static void reply_value(ls_event *ev, const jv *v)
{
    event_value(ev, v);
    if (v && !ev->value) reply_out_of_memory(ev);
}

static void reply_text(ls_event *ev, const char *text, size_t len)
{
    event_text(ev, text, len);
    if (text && !ev->text) reply_out_of_memory(ev);
}

/* The answer to a request the engine makes itself, from a Layer error JSON text. */
static void reply_error_json(ls_event *ev, const char *error_json, size_t len)
{
    jv_doc *d = jv_parse(error_json, len, NULL, NULL);
    if (d)
        reply_value(ev, jv_root(d));
    else
        reply_out_of_memory(ev);
    jv_doc_free(d);
}

ls_event *ls_next_event(ls_session *s)
{
    ls_event *ev;
    FIFO_POP(s->events, s->events_tail, ev);
    if (!ev) return NULL;
    s->n_events--;
    if (ev == s->oom_queued) { /* its count is final now; the text lives in the event itself */
        snprintf(ev->id_buf, sizeof ev->id_buf,
                 "out of memory: %llu allocation failure%s dropped events or put off work",
                 (unsigned long long)s->oom_count, s->oom_count == 1 ? "" : "s");
        ev->text = ev->id_buf;
        ev->text_len = strlen(ev->id_buf);
        s->oom_queued = NULL;
        if (!s->oom_spare) s->oom_spare = calloc(1, sizeof *s->oom_spare);
    }
    return ev;
}

void ls_event_free(ls_session *s, ls_event *ev)
{
    if (!ev) return;
    if (ev->ref && s) lc_unpin(s->cache, ev->ref);
    lc_release(ev->hold);
    free(ev->changes);
    jv_doc_free(ev->doc);
    free(ev);
}

size_t ls_pending_events(const ls_session *s) { return s->n_events; }

/* ===== outputs ===== */

/* 0 when memory ran out (reported): the frame is not sent; a request it
 * carried still resolves, by its timeout. */
static int queue_frame(ls_session *s, const char *text, size_t len, int64_t now)
{
    frame_out *f = calloc(1, sizeof *f);
    if (!f || !(f->text = str_dupn(text, len))) {
        free(f);
        out_of_memory(s);
        return 0;
    }
    f->len = len;
    FIFO_PUSH(s->frames, s->frames_tail, f);
    s->last_sent = now;
    return 1;
}

char *ls_take_frame(ls_session *s, size_t *len)
{
    frame_out *f;
    char *text;
    FIFO_POP(s->frames, s->frames_tail, f);
    if (!f) return NULL;
    text = f->text;
    *len = f->len;
    free(f);
    return text;
}

static void drop_frames(ls_session *s)
{
    size_t n;
    while (s->frames) free(ls_take_frame(s, &n));
}

/* On no memory the request stays unsent (reported) and the next flush tries again. */
static void queue_http(ls_session *s, rest_req *r)
{
    ls_http_request *h = calloc(1, sizeof *h);
    if (!h) {
        out_of_memory(s);
        return;
    }
    h->id = r->id;
    h->method = r->method;
    h->path = str_dup0(r->path);
    if (r->body) h->body = str_dupn(r->body, r->body_len);
    h->body_len = r->body_len;
    h->content_type = r->content_type;
    h->authenticated = r->authenticated;
    if (r->headers) h->headers = str_dup0(r->headers);
    if (!h->path || (r->body && !h->body) || (r->headers && !h->headers)) {
        ls_http_request_free(h);
        out_of_memory(s);
        return;
    }
    FIFO_PUSH(s->http, s->http_tail, h);
    r->in_flight = 1;
    r->retry_at = -1;
    r->attempts++;
}

ls_http_request *ls_take_http(ls_session *s)
{
    ls_http_request *h;
    FIFO_POP(s->http, s->http_tail, h);
    return h;
}

void ls_http_request_free(ls_http_request *r)
{
    if (!r) return;
    free(r->headers);
    free(r->path);
    free(r->body);
    free(r);
}

int ls_ws_wanted(const ls_session *s) { return s->want_ws && !s->closed; }
const char *ls_subprotocol(const ls_session *s) { return s->subprotocol; }
const char *ls_session_token(const ls_session *s) { return s->auth == AUTH_OK ? s->token : NULL; }
lc_cache *ls_cache(ls_session *s) { return s->cache; }
void ls_set_change_lists(ls_session *s, int on) { s->no_change_lists = !on; }
int ls_change_lists(const ls_session *s) { return !s->no_change_lists; }
void ls_set_interest(ls_session *s, unsigned mask) { s->interest = mask; }

static int wanted(const ls_session *s, ls_event_type ev, pkt_object_type type)
{
    return (s->interest & LS_INTEREST(ev, type)) != 0;
}
void ls_stats_get(const ls_session *s, ls_stats *out) { *out = s->stats; }

/* ===== REST requests ===== */

static rest_req *rest_new(ls_session *s, http_kind kind, const char *method, const char *path, const char *body,
                          size_t body_len, const char *content_type, int authenticated)
{
    rest_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->id = ++s->next_id;
    r->kind = kind;
    r->method = method;
    r->path = str_dup0(path);
    if (body) r->body = str_dupn(body, body_len);
    r->body_len = body_len;
    r->content_type = content_type;
    r->authenticated = authenticated;
    r->retry_at = -1;
    r->deadline = -1;
    if (kind == HTTP_APP) r->reply = reply_new();
    if (!r->path || (body && !r->body) || (kind == HTTP_APP && !r->reply)) {
        free(r->path);
        free(r->body);
        free(r->reply);
        free(r);
        return NULL;
    }
    r->next = s->rest_reqs;
    s->rest_reqs = r;
    return r;
}

static void rest_free(ls_session *s, rest_req *r)
{
    rest_req **pp;
    for (pp = &s->rest_reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    free(r->path);
    free(r->body);
    free(r->headers);
    ls_event_free(s, r->reply);
    free(r);
}

/* Send what can be sent: authenticated requests wait for a session. */
static void flush_rest(ls_session *s, int64_t now)
{
    rest_req *r;
    for (r = s->rest_reqs; r; r = r->next) {
        if (r->kind == HTTP_APP && r->deadline < 0) r->deadline = now + s->cfg.request_timeout_ms;
        if (r->in_flight || (r->retry_at >= 0 && r->retry_at > now)) continue;
        if (r->authenticated && s->auth != AUTH_OK) continue;
        queue_http(s, r);
    }
}

/* A login step that could not be made for want of memory: reported, and the
 * reconnect backoff starts the login again. */
static void login_out_of_memory(ls_session *s, int64_t now)
{
    out_of_memory(s);
    s->auth = AUTH_NONE;
    schedule_reconnect(s, now, "out of memory");
}

static uint64_t start_nonce(ls_session *s, int64_t now)
{
    rest_req *r = rest_new(s, HTTP_NONCE, "POST", "/nonces", NULL, 0, NULL, 0);
    s->auth = AUTH_NONCE;
    if (!r) {
        login_out_of_memory(s, now);
        return 0;
    }
    flush_rest(s, now);
    return r->id;
}

void ls_start(ls_session *s, int64_t now, const char *session_token)
{
    s->closed = 0;
    if (session_token && *session_token) {
        free(s->token);
        if (!(s->token = str_dup0(session_token))) {
            login_out_of_memory(s, now); /* logs in afresh after the backoff */
            return;
        }
        s->auth = AUTH_OK;
        s->want_ws = 1;
        emit_lifecycle(s, LS_EV_AUTHENTICATED, s->token, 0);
        flush_rest(s, now);
    } else {
        start_nonce(s, now);
    }
}

void ls_answer_challenge(ls_session *s, int64_t now, const char *identity_token, const char *app_id)
{
    jbuf b;
    if (s->closed) return;
    if (app_id) {
        free(s->app_id);
        if (!(s->app_id = str_dup0(app_id))) {
            login_out_of_memory(s, now);
            return;
        }
    }
    jbuf_init(&b);
    jbuf_puts(&b, "{\"identity_token\":");
    jbuf_string(&b, identity_token, strlen(identity_token));
    jbuf_puts(&b, ",\"app_id\":");
    jbuf_string(&b, s->app_id ? s->app_id : "", s->app_id ? strlen(s->app_id) : 0);
    jbuf_putc(&b, '}');
    if (!b.oom && rest_new(s, HTTP_SESSION, "POST", "/sessions", b.data, b.len, "application/json", 0)) {
        s->auth = AUTH_SESSION;
        flush_rest(s, now);
    } else {
        login_out_of_memory(s, now);
    }
    jbuf_free(&b);
}

uint64_t ls_rest_request(ls_session *s, int64_t now, const char *method, const char *path, const char *body,
                         size_t body_len, const char *content_type)
{
    rest_req *r;
    if (s->closed) return 0;
    r = rest_new(s, HTTP_APP, method, path, body, body_len,
                 content_type ? content_type : (body ? "application/json" : NULL), 1);
    if (!r) return 0;
    flush_rest(s, now);
    return r->id;
}

uint64_t ls_http(ls_session *s, int64_t now, const ls_http_spec *spec)
{
    rest_req *r;
    if (s->closed) return 0;
    r = rest_new(s, HTTP_APP, spec->method, spec->path_or_url, spec->body, spec->body_len, spec->content_type,
                 spec->authenticated);
    if (!r) return 0;
    r->raw = spec->raw;
    if (spec->headers && !(r->headers = str_dup0(spec->headers))) {
        rest_free(s, r);
        return 0;
    }
    flush_rest(s, now);
    return r->id;
}

/* ===== reconnecting ===== */

/* The one backoff rule, for reconnects, re-logins and request retries alike:
 * the base doubled per attempt after the first, at most the cap, plus up to
 * the jitter fraction at random so clients do not retry in step. */
static int64_t backoff_delay(ls_session *s, int attempt)
{
    int64_t delay = s->cfg.backoff_base_ms;
    int i;
    for (i = 1; i < attempt && delay < s->cfg.backoff_cap_ms; i++) delay *= 2;
    if (delay > s->cfg.backoff_cap_ms) delay = s->cfg.backoff_cap_ms;
    if (s->cfg.backoff_jitter > 0)
        delay += (int64_t)((double)delay * s->cfg.backoff_jitter * (double)(rng_next(s) % 10001) / 10000.0);
    return delay;
}

/* The next delay of the backoff reconnects and re-logins share. */
static int64_t next_backoff(ls_session *s) { return backoff_delay(s, s->attempt++); }

static int64_t schedule_reconnect(ls_session *s, int64_t now, const char *reason)
{
    int64_t delay = next_backoff(s);
    s->reconnect_at = now + delay;
    s->stats.reconnects++;
    emit_lifecycle(s, LS_EV_DISCONNECTED, reason, (double)delay);
    return delay;
}

/* A login step could not reach the server (refused, no such host, TLS...):
 * say so at once in an error, the disconnect reason and the log; the
 * reconnect backoff retries the login. */
static void login_unreachable(ls_session *s, int64_t now, const char *step, const char *why, size_t why_len)
{
    char reason[360], line[420];
    int64_t delay;
    ls_event *ev;
    snprintf(reason, sizeof reason, "cannot reach the server: %.*s", (int)(why_len > 300 ? 300 : why_len),
             why ? why : "transport error");
    ev = event_new(s, LS_EV_ERROR);
    snprintf(line, sizeof line, "%s failed: %s", step, reason);
    if (ev) ev->number = LS_ERROR_TRANSPORT;
    event_finish(s, ev, ev && event_text(ev, line, strlen(line)));
    delay = schedule_reconnect(s, now, reason);
    snprintf(line, sizeof line, "%s; retrying in %.1f s", reason, (double)delay / 1000.0);
    emit_simple(s, LS_EV_LOG, line, LS_LOG_WARN);
}

/* The socket should go away now; a reconnect follows after the backoff. */
static void drop_socket(ls_session *s, int64_t now, const char *reason)
{
    s->want_ws = 0;
    if (!s->ws_open) schedule_reconnect(s, now, reason);
    /* else: ls_ws_closed will schedule it */
}

/* Resolve an app request now, with an error of our own (status, Layer error JSON). */
static void fail_rest(ls_session *s, rest_req *r, int status, const char *error_json)
{
    ls_event *ev = take_reply(s, &r->reply, r->id);
    if (ev) {
        ev->success = 0;
        ev->http_status = status;
        reply_error_json(ev, error_json, strlen(error_json));
        event_push(s, ev);
    }
    rest_free(s, r);
}

/* The login a 401 asked for, once its backoff has passed. */
static void start_reauth(ls_session *s, int64_t now)
{
    s->reauth_at = -1;
    if (s->reauth_nonce) {
        ls_event *ev = event_new(s, LS_EV_CHALLENGE);
        if (!ev || !event_text(ev, s->reauth_nonce, strlen(s->reauth_nonce))) {
            event_lost(s, ev); /* the nonce stays: this challenge goes again after the backoff */
            s->reauth_at = now + backoff_delay(s, s->reauths);
            return;
        }
        event_push(s, ev);
        free(s->reauth_nonce);
        s->reauth_nonce = NULL;
    } else {
        start_nonce(s, now);
    }
}

static void begin_reauth(ls_session *s, int64_t now, const char *nonce, size_t nonce_len)
{
    rest_req *r, *next;
    int64_t delay = 0;
    s->want_ws = 0;
    if (++s->reauths > MAX_REAUTHS) {
        /* a server that refuses every session it issues: stop, tell once, and let
         * the reconnect backoff decide when to log in again */
        if (s->reauths == MAX_REAUTHS + 1)
            emit_error(s, NULL,
                       "re-authentication keeps failing: %d logins in a row were answered with 401; "
                       "waiting requests fail and the client logs in again after the reconnect backoff",
                       MAX_REAUTHS);
        s->auth = AUTH_NONE;
        for (r = s->rest_reqs; r; r = next) {
            next = r->next;
            if (r->kind == HTTP_APP && r->authenticated && !r->in_flight)
                fail_rest(s, r, 401,
                          "{\"id\":\"authentication_required\",\"code\":4,"
                          "\"message\":\"the server refused every new session\"}");
        }
        drop_socket(s, now, "authentication keeps failing");
        return;
    }
    /* the first re-login is immediate (a session that simply expired); then it backs off */
    if (s->reauths > 1) delay = next_backoff(s);
    free(s->reauth_nonce);
    s->reauth_nonce = nonce ? str_dupn(nonce, nonce_len) : NULL;
    s->auth = AUTH_CHALLENGED; /* nothing authenticated goes out meanwhile */
    s->reauth_at = now + delay;
    if (!delay) start_reauth(s, now);
}

/* ===== WebSocket requests ===== */

/* data, or data_json (JSON text written as is), or neither. */
static uint64_t ws_send_request(ls_session *s, int64_t now, ws_req_kind kind, const char *method, const char *object_id,
                                const jv *data, const char *data_json)
{
    jbuf b;
    char idbuf[24];
    ws_req *r;
    if (s->closed) return 0;
    r = calloc(1, sizeof *r);
    if (!r || (kind == REQ_APP && !(r->reply = reply_new()))) {
        free(r);
        if (kind != REQ_APP) out_of_memory(s); /* an app request's caller gets 0 and says so */
        return 0;
    }
    r->id = ++s->next_id;
    r->kind = kind;
    r->deadline = now + s->cfg.request_timeout_ms;
    snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)r->id);
    jbuf_init(&b);
    jbuf_puts(&b, "{\"type\":\"request\",\"body\":{\"method\":");
    jbuf_string(&b, method, strlen(method));
    jbuf_puts(&b, ",\"request_id\":");
    jbuf_string(&b, idbuf, strlen(idbuf));
    if (object_id) {
        jbuf_puts(&b, ",\"object_id\":");
        jbuf_string(&b, object_id, strlen(object_id));
    }
    if (data || data_json) {
        jbuf_puts(&b, ",\"data\":");
        if (data)
            jv_write(&b, data);
        else
            jbuf_puts(&b, data_json);
    }
    jbuf_puts(&b, "}}");
    if (b.oom) {
        jbuf_free(&b);
        free(r->reply);
        free(r);
        if (kind != REQ_APP) out_of_memory(s);
        return 0;
    }
    r->frame = b.data;
    r->frame_len = b.len;
    r->next = s->ws_reqs;
    s->ws_reqs = r;
    if (s->ws_open) {
        queue_frame(s, r->frame, r->frame_len, now);
        r->sent_on = s->connection;
    }
    return r->id;
}

uint64_t ls_ws_request(ls_session *s, int64_t now, const char *method, const char *object_id, const jv *data)
{
    return ws_send_request(s, now, REQ_APP, method, object_id, data, NULL);
}

static ws_req *take_ws_req(ls_session *s, uint64_t id)
{
    ws_req **pp;
    for (pp = &s->ws_reqs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            ws_req *r = *pp;
            *pp = r->next;
            return r;
        }
    }
    return NULL;
}

static void ws_req_free(ws_req *r)
{
    free(r->frame);
    ls_event_free(NULL, r->reply); /* never pinned: no session needed */
    free(r);
}

int ls_send_typing(ls_session *s, const char *conversation_id, const char *action)
{
    jbuf b;
    int ok;
    if (!s->ws_open || s->closed) return 0;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"type\":\"signal\",\"body\":{\"type\":\"typing_indicator\",\"object\":{\"id\":");
    jbuf_string(&b, conversation_id, strlen(conversation_id));
    jbuf_puts(&b, "},\"data\":{\"action\":");
    jbuf_string(&b, action, strlen(action));
    jbuf_puts(&b, "}}}");
    ok = b.oom ? (out_of_memory(s), 0) : queue_frame(s, b.data, b.len, s->last_sent);
    jbuf_free(&b);
    return ok;
}

/* ===== duplicate suppression ===== */

/* A change packet's fingerprint: each child is hashed from a fixed seed and
 * folded into its parent in order, so siblings' chains overlap in the CPU
 * while order and nesting still count. */
static uint64_t hash_value(const jv *v)
{
    uint32_t i;
    uint64_t h = jv_hash_word(0x9E3779B97F4A7C15ull, (uint64_t)v->type | (uint64_t)v->len << 8);
    switch (v->type) {
    case JV_INT: return jv_hash_word(h, (uint64_t)v->u.i);
    case JV_REAL: return jv_hash_bytes(h, &v->u.d, sizeof v->u.d);
    case JV_STRING: return jv_hash_bytes(h, v->u.s, v->len);
    case JV_ARRAY:
        for (i = 0; i < v->len; i++) h = jv_hash_word(h, hash_value(&v->u.items[i]));
        return h;
    case JV_OBJECT:
        for (i = 0; i < v->len; i++) {
            const char *k = v->u.members[i].key;
            uint32_t klen = jv_key_len(k);
            h = jv_hash_word(jv_hash_word(h, jv_hash_id(k, klen)), hash_value(&v->u.members[i].value));
        }
        return h;
    default: return h;
    }
}

/* 0 when memory ran out: fp is not kept (a duplicate it would catch may pass). */
static int bag_put(fp_bag *b, uint64_t fp)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        uint64_t *nf;
        if (cap > BAG_MAX) { /* full: forget the oldest half */
            memmove(b->fps, b->fps + b->n / 2, (b->n - b->n / 2) * sizeof *b->fps);
            b->n -= b->n / 2;
        } else if ((nf = realloc(b->fps, cap * sizeof *nf))) {
            b->fps = nf;
            b->cap = cap;
        } else {
            return 0;
        }
    }
    b->fps[b->n++] = fp;
    return 1;
}

/* Remove one copy of fp; 1 if there was one. */
static int bag_take(fp_bag *b, uint64_t fp)
{
    size_t i;
    for (i = 0; i < b->n; i++)
        if (b->fps[i] == fp) {
            b->fps[i] = b->fps[--b->n];
            return 1;
        }
    return 0;
}

/* bag_put, reporting a fingerprint it could not keep. */
static void bag_add(ls_session *s, fp_bag *b, uint64_t fp)
{
    if (!bag_put(b, fp)) out_of_memory(s);
}

static void bag_copy(ls_session *s, fp_bag *dst, const fp_bag *src)
{
    size_t i;
    dst->n = 0;
    for (i = 0; i < src->n; i++) bag_add(s, dst, src->fps[i]);
}

/* ===== applying changes ===== */

/* Copy the change list into ev, leaving out properties whose value did not
 * really change (a replayed or duplicated patch). Returns entries kept. */
static int really_changed(const lp_change *c)
{
    if (!c->old_value && !c->new_value) return 0;
    return !(c->old_value && c->new_value && jv_deep_equal(c->old_value, c->new_value));
}

/* hold: the changes point into a cache doc held for this event, which keeps
 * them (and frees them when released); else they are copied into ev's doc.
 * -1 when memory ran out: the event cannot be made whole. */
static long copy_changes(ls_event *ev, const lp_change *changes, size_t n, lc_hold *hold)
{
    size_t i, kept = 0;
    if (!hold && !ev_doc(ev)) return -1;
    ev->changes = calloc(n ? n : 1, sizeof *ev->changes);
    if (!ev->changes) return -1;
    for (i = 0; i < n; i++) {
        const lp_change *c = &changes[i];
        ls_change *d = &ev->changes[kept];
        jv *o = NULL, *nv = NULL, *paths;
        if (!really_changed(c)) continue;
        if (hold) {
            *d = *c;
            kept++;
            continue;
        }
        paths = jv_alloc(ev->doc, sizeof *paths);
        if (!paths || !jv_copy_into(ev->doc, paths, c->paths)) return -1;
        if (c->old_value && !((o = jv_alloc(ev->doc, sizeof *o)) && jv_copy_into(ev->doc, o, c->old_value))) return -1;
        if (c->new_value && !((nv = jv_alloc(ev->doc, sizeof *nv)) && jv_copy_into(ev->doc, nv, c->new_value)))
            return -1;
        d->property = jv_intern(ev->doc, c->property, c->property_len, 0);
        if (!d->property) return -1;
        d->property_len = c->property_len;
        d->paths = paths;
        d->old_value = o;
        d->new_value = nv;
        kept++;
    }
    ev->n_changes = kept;
    if (hold && kept) ev->hold = hold;
    return (long)kept;
}

/* Top-level differences between two versions of an object (a create for an
 * object already cached); -1 when memory ran out. */
static long diff_objects(ls_event *ev, const jv *old, const jv *nv)
{
    lp_change *list;
    size_t n = 0;
    long kept;
    int oom = 0;
    jv *paths;
    uint32_t i;
    if (!ev_doc(ev)) return -1;
    list = calloc((size_t)old->len + nv->len + 1, sizeof *list);
    paths = jv_alloc(ev->doc, ((size_t)old->len + nv->len + 1) * sizeof *paths);
    if (!list || !paths) {
        free(list);
        return -1;
    }
    for (i = 0; i < nv->len; i++) {
        const char *k = nv->u.members[i].key;
        size_t kl = jv_key_len(k);
        list[n].property = k;
        list[n].property_len = kl;
        list[n].old_value = jv_getn(old, k, kl);
        list[n].new_value = &nv->u.members[i].value;
        if (!jv_string(ev->doc, &paths[n], k, kl)) oom = 1;
        list[n].paths = NULL;
        n++;
    }
    for (i = 0; i < old->len; i++) {
        const char *k = old->u.members[i].key;
        size_t kl = jv_key_len(k);
        if (jv_getn(nv, k, kl)) continue;
        list[n].property = k;
        list[n].property_len = kl;
        list[n].old_value = &old->u.members[i].value;
        list[n].new_value = NULL;
        if (!jv_string(ev->doc, &paths[n], k, kl)) oom = 1;
        n++;
    }
    for (i = 0; i < n; i++) { /* each path list is the one property itself */
        jv *arr = jv_alloc(ev->doc, sizeof *arr);
        if (arr) {
            memset(arr, 0, sizeof *arr);
            arr->type = JV_ARRAY;
            arr->len = 1;
            arr->u.items = &paths[i];
        } else {
            oom = 1;
        }
        list[i].paths = arr;
    }
    kept = oom ? -1 : copy_changes(ev, list, n, NULL);
    free(list);
    return kept;
}

static void refetch(ls_session *s, int64_t now, pkt_object_type type, const char *id, size_t len)
{
    const char *slash = NULL;
    char path[300];
    size_t i;
    rest_req *r;
    for (i = len; i > 0; i--)
        if (id[i - 1] == '/') {
            slash = id + i;
            break;
        }
    if (!slash || len > 250) return;
    if (!pkt_object_type_collection(type)) return;
    snprintf(path, sizeof path, "/%s/%.*s", pkt_object_type_collection(type), (int)(id + len - slash), slash);
    for (r = s->rest_reqs; r; r = r->next) /* one fetch answers every packet of a burst */
        if (r->kind == HTTP_REFETCH && strcmp(r->path, path) == 0) return;
    r = rest_new(s, HTTP_REFETCH, "GET", path, NULL, 0, NULL, 1);
    if (!r) {
        out_of_memory(s); /* the object stays as it is until it changes again */
        return;
    }
    r->refetch_type = type;
    flush_rest(s, now);
}

/* An Identity patch touching more than presence: worth fetching the identity
 * when it is not cached (presence alone would fetch every peer on every change). */
static int profile_patch(const pkt *p)
{
    uint32_t i;
    if (p->type != PKT_CHANGE || p->change_op != CHG_PATCH || p->object_type != OBJ_IDENTITY || !p->data ||
        p->data->type != JV_ARRAY)
        return 0;
    for (i = 0; i < p->data->len; i++) {
        const jv *prop = jv_get(&p->data->u.items[i], "property");
        if (prop && prop->type == JV_STRING && !(prop->len >= 8 && !memcmp(prop->u.s, "presence", 8))) return 1;
    }
    return 0;
}

static void apply_change(ls_session *s, int64_t now, const pkt *p)
{
    lc_event lev;
    lc_error err;
    ls_event *ev;
    lc_ref *ref = NULL;
    const jv *old = NULL;
    long kept = 0; /* change-list entries copied; -1: out of memory */
    if (p->type == PKT_CHANGE && p->change_op == CHG_DELETE && !p->has_from_position &&
        wanted(s, LS_EV_DELETE, p->object_type))
        ref = lc_pin(s->cache, p->object_id->u.s, p->object_id->len); /* readable after the delete */
    if (p->type == PKT_CHANGE && p->change_op == CHG_CREATE && wanted(s, LS_EV_UPDATE, p->object_type))
        old = lc_get(s->cache, p->object_id->u.s, p->object_id->len);
    /* Change lists need the old values tracked; telling a real update from a
     * replayed one does not (lev.changed), so the patch may run in place. */
    if (!lc_apply(s->cache, p, wanted(s, LS_EV_UPDATE, p->object_type) && !s->no_change_lists, &lev, &err)) {
        if (ref) lc_unpin(s->cache, ref);
        if (err.out_of_memory)
            out_of_memory(s);
        else
            emit_error(s, NULL, "%s", err.message);
        if (p->type == PKT_CHANGE && p->change_op == CHG_PATCH)
            refetch(s, now, p->object_type, p->object_id->u.s, p->object_id->len);
        return;
    }
    s->stats.changes_applied++;
    switch (lev.outcome) {
    case LC_CREATED:
    case LC_REPLACED:
    case LC_PATCHED: {
        const jv *nv;
        ls_event_type type = lev.outcome == LC_CREATED ? LS_EV_CREATE : LS_EV_UPDATE;
        if (!wanted(s, type, p->object_type)) { /* applied; nobody listens */
            lc_release(lev.hold);
            return;
        }
        nv = lev.entry ? lc_ref_value(lev.entry) : NULL;
        ev = event_new(s, type);
        if (!ev) {
            lc_release(lev.hold);
            event_lost(s, NULL);
            return;
        }
        if (lev.outcome == LC_REPLACED && old && nv && !s->no_change_lists) kept = diff_objects(ev, old, nv);
        if (lev.outcome == LC_PATCHED && !s->no_change_lists)
            kept = copy_changes(ev, lev.changes, lev.n_changes, lev.hold);
        if (!ev->hold) lc_release(lev.hold); /* the event kept no pointer into it */
        if (kept < 0) {                      /* the change list could not be copied */
            event_lost(s, ev);
            return;
        }
        if (lev.outcome == LC_REPLACED && (!old || !nv || (s->no_change_lists ? jv_deep_equal(old, nv) : !kept))) {
            s->stats.duplicates_suppressed++;
            ls_event_free(s, ev);
            return;
        }
        if (lev.outcome == LC_PATCHED && !(s->no_change_lists ? lev.changed : kept)) {
            s->stats.duplicates_suppressed++;
            ls_event_free(s, ev);
            return;
        }
        ev->ref = lev.entry ? lc_pin_ref(s->cache, lev.entry) : NULL;
        break;
    }
    case LC_DELETED:
        if (!wanted(s, LS_EV_DELETE, p->object_type)) return;
        ev = event_new(s, LS_EV_DELETE);
        if (!ev) {
            if (ref) lc_unpin(s->cache, ref);
            event_lost(s, NULL);
            return;
        }
        ev->ref = ref;
        ref = NULL;
        if (p->mode && !event_text(ev, p->mode->u.s, p->mode->len)) {
            event_lost(s, ev);
            return;
        }
        break;
    case LC_TRUNCATED:
        ev = event_new(s, LS_EV_TRUNCATE);
        if (ev) ev->number = (double)lev.removed;
        break;
    case LC_MARKED_READ:
        ev = event_new(s, LS_EV_MARK_READ);
        if (ev) ev->number = (double)lev.removed;
        break;
    default: /* LC_IGNORED: replayed delete or patch of an object we do not hold */
        if (ref) lc_unpin(s->cache, ref);
        if (profile_patch(p)) { /* someone we talk to changed their name: fetch who they are now */
            refetch(s, now, p->object_type, p->object_id->u.s, p->object_id->len);
            return;
        }
        s->stats.duplicates_suppressed++;
        return;
    }
    if (ref) lc_unpin(s->cache, ref);
    if (ev) ev->object_type = p->type == PKT_OPERATION ? OBJ_CONVERSATION : p->object_type;
    event_finish(s, ev, ev && event_id(ev, p->object_id->u.s, p->object_id->len));
}

/* ===== typing ===== */

static void typist_free(typist *t)
{
    free(t->conversation);
    free(t->identity);
    free(t->sender);
    free(t);
}

/* Keeps the sender object of the typist's latest signal; on no memory the old one stays. */
static void typist_remember_sender(typist *t, const jv *sender)
{
    jbuf b;
    char *text;
    jbuf_init(&b);
    jv_write(&b, sender);
    if (!b.oom && (text = malloc(b.len + 1))) {
        memcpy(text, b.data, b.len);
        text[b.len] = 0;
        free(t->sender);
        t->sender = text;
    }
    jbuf_free(&b);
}

static void typing_signal(ls_session *s, int64_t now, const pkt *p)
{
    const jv *sender_id = p->sender ? jv_get(p->sender, "id") : NULL;
    typist *t, **pp;
    ls_event *ev = event_new(s, LS_EV_TYPING);
    event_finish(s, ev, ev && event_id(ev, p->object_id->u.s, p->object_id->len) && event_value(ev, p->data));
    if (!sender_id || sender_id->type != JV_STRING) return;
    for (pp = &s->typists; (t = *pp); pp = &t->next)
        if (!strcmp(t->conversation, p->object_id->u.s) && !strcmp(t->identity, sender_id->u.s)) break;
    if (!strcmp(p->action->u.s, "finished")) {
        if (t) {
            *pp = t->next;
            typist_free(t);
        }
        return;
    }
    if (!t) {
        t = calloc(1, sizeof *t);
        if (t) {
            t->conversation = str_dup0(p->object_id->u.s);
            t->identity = str_dup0(sender_id->u.s);
        }
        if (!t || !t->conversation || !t->identity) { /* no "finished" will come when it expires */
            if (t) typist_free(t);
            out_of_memory(s);
            return;
        }
        t->next = s->typists;
        s->typists = t;
    }
    typist_remember_sender(t, p->sender);
    t->expires = now + TYPING_EXPIRY_MS;
}

/* A typist not heard from for 6 s has finished (PROTOCOL.md 5). */
static void expire_typists(ls_session *s, int64_t now)
{
    typist **pp = &s->typists, *t;
    while ((t = *pp)) {
        if (t->expires > now) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        {
            ls_event *ev = event_new(s, LS_EV_TYPING);
            if (!ev) {
                event_lost(s, NULL);
            } else {
                jbuf b;
                jv_doc *d;
                int ok;
                jbuf_init(&b);
                jbuf_puts(&b, "{\"action\":\"finished\",\"expired\":true,\"sender\":");
                if (t->sender) {
                    jbuf_puts(&b, t->sender);
                } else {
                    jbuf_puts(&b, "{\"id\":");
                    jbuf_string(&b, t->identity, strlen(t->identity));
                    jbuf_putc(&b, '}');
                }
                jbuf_putc(&b, '}');
                d = b.oom ? NULL : jv_parse(b.data, b.len, NULL, NULL);
                ok = d && event_value(ev, jv_root(d)) && event_id(ev, t->conversation, strlen(t->conversation));
                jv_doc_free(d);
                jbuf_free(&b);
                event_finish(s, ev, ok);
            }
        }
        typist_free(t);
    }
}

/* ===== incoming frames ===== */

static uint64_t fingerprint(const jv *body, const char *timestamp, size_t len)
{
    return jv_hash_word(hash_value(body), jv_hash_id(timestamp, len));
}

static void flush_pending_fp(ls_session *s)
{
    if (!s->pending_body) return;
    bag_add(s, &s->at_cursor, fingerprint(s->pending_body, s->pending_ts, s->pending_ts_len));
    s->pending_body = NULL;
}

/* Count p as seen at the cursor: its fingerprint now when it is known, else
 * later (it becomes the pending packet, and its doc is kept by swapping the
 * scratch docs). */
static void cursor_add(ls_session *s, const pkt *p, int have_fp, uint64_t fp)
{
    jv_doc *spare;
    if (!have_fp) {
        spare = s->held_doc ? s->held_doc : jv_doc_new(4096);
        if (spare) {
            s->pending_body = p->body;
            s->pending_ts = p->timestamp->u.s;
            s->pending_ts_len = p->timestamp->len;
            s->held_doc = s->scratch; /* p lives there */
            s->scratch = spare;
            return;
        }
        fp = fingerprint(p->body, p->timestamp->u.s, p->timestamp->len);
    }
    bag_add(s, &s->at_cursor, fp);
}

static void request_replay(ls_session *s, int64_t now)
{
    jbuf b;
    if (s->replaying || !s->last_timestamp[0] || !s->ws_open) return;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"from_timestamp\":");
    jbuf_string(&b, s->last_timestamp, strlen(s->last_timestamp));
    jbuf_putc(&b, '}');
    jbuf_putc(&b, '\0');
    if (b.oom) { /* ws_send_request reports its own failures */
        jbuf_free(&b);
        out_of_memory(s);
        return;
    }
    if (ws_send_request(s, now, REQ_REPLAY, "Event.replay", NULL, NULL, b.data)) {
        s->replaying = 1;
        s->replay_packets = 0;
        s->replay_from_ms = s->cursor_ms;
        flush_pending_fp(s);
        bag_copy(s, &s->overlap, &s->at_cursor);
        s->stats.replays++;
    }
    jbuf_free(&b);
}

/* ===== the durable cursor ===== */

/* The same rule as the replay cursor: a newer time starts a new bag. */
static void cursor_fold(ls_session *s, int64_t *ms, fp_bag *bag, int64_t at, uint64_t fp)
{
    if (at > *ms) {
        *ms = at;
        bag->n = 0;
        bag_add(s, bag, fp);
    } else if (at == *ms) {
        bag_add(s, bag, fp);
    }
}

static void mark_change(ls_session *s, int64_t ms, uint64_t fp)
{
    cursor_mark *m;
    if (s->marks_head + s->marks_n == s->marks_cap) {
        if (s->marks_head > s->marks_n) { /* mostly consumed: slide down */
            memmove(s->marks, s->marks + s->marks_head, s->marks_n * sizeof *m);
            s->marks_head = 0;
        } else {
            size_t cap = s->marks_cap ? s->marks_cap * 2 : 64;
            cursor_mark *nm = realloc(s->marks, cap * sizeof *nm);
            if (!nm) { /* cannot wait for it: count it finished now */
                cursor_fold(s, &s->durable_ms, &s->durable, ms, fp);
                return;
            }
            s->marks = nm;
            s->marks_cap = cap;
        }
    }
    m = &s->marks[s->marks_head + s->marks_n++];
    m->seq = s->change_seq;
    m->ms = ms;
    m->fp = fp;
}

void ls_track_cursor(ls_session *s) { s->track_cursor = 1; }

uint64_t ls_oldest_queued_change(const ls_session *s)
{
    const ls_event *ev;
    for (ev = s->events; ev; ev = ev->next)
        if (ev->change_seq) return ev->change_seq;
    return 0;
}

int ls_finish_changes(ls_session *s, uint64_t below)
{
    int moved = 0;
    while (s->marks_n && (!below || s->marks[s->marks_head].seq < below)) {
        const cursor_mark *m = &s->marks[s->marks_head++];
        s->marks_n--;
        cursor_fold(s, &s->durable_ms, &s->durable, m->ms, m->fp);
        moved = 1;
    }
    if (!s->marks_n) s->marks_head = 0;
    return moved;
}

void ls_durable_cursor(const ls_session *s, ls_cursor *out)
{
    out->ms = s->durable_ms;
    out->fps = s->durable.fps;
    out->n = s->durable.n;
}

static void format_timestamp(char *out, size_t len, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int ls_restore_cursor(ls_session *s, const ls_cursor *c)
{
    size_t i;
    if (c->ms <= 0) return 1;
    s->cursor_ms = s->durable_ms = c->ms;
    format_timestamp(s->last_timestamp, sizeof s->last_timestamp, c->ms);
    s->at_cursor.n = s->durable.n = 0;
    s->pending_body = NULL;
    for (i = 0; i < c->n; i++) {
        bag_put(&s->at_cursor, c->fps[i]);
        bag_put(&s->durable, c->fps[i]);
    }
    return s->at_cursor.n == c->n && s->durable.n == c->n;
}

static void replay_end(ls_session *s)
{
    s->replaying = 0;
    s->overlap.n = 0;
}

static uint64_t parse_request_id(const jv *v)
{
    if (!v) return 0;
    if (v->type == JV_INT) return v->u.i > 0 ? (uint64_t)v->u.i : 0;
    if (v->type == JV_STRING) return strtoull(v->u.s, NULL, 10);
    return 0;
}

static void handle_response(ls_session *s, int64_t now, const pkt *p)
{
    ws_req *r = take_ws_req(s, parse_request_id(p->request_id));
    ls_event *ev;
    if (!r) return; /* timed out earlier, or not ours */
    if (r->kind == REQ_KEEPALIVE) {
        s->keepalive_pending = 0;
        ws_req_free(r);
        return;
    }
    if (r->kind == REQ_REPLAY) {
        replay_end(s);
        if (!p->success) emit_error(s, p->error, "Event.replay failed");
        emit_lifecycle(s, LS_EV_SYNCED, NULL, (double)s->replay_packets);
        ws_req_free(r);
        return;
    }
    ev = take_reply(s, &r->reply, r->id);
    if (ev) {
        const jv *eid = p->error ? jv_get(p->error, "id") : NULL;
        ev->success = p->success;
        /* A create that already happened (a resend) succeeded. */
        if (!p->success && eid && eid->type == JV_STRING && eid->len == 9 && !memcmp(eid->u.s, "id_in_use", 9) &&
            jv_get(p->error, "data")) {
            ev->success = 1;
            reply_value(ev, jv_get(p->error, "data"));
        } else {
            reply_value(ev, p->success ? p->data : p->error);
        }
        event_push(s, ev);
    }
    ws_req_free(r);
}

void ls_ws_frame(ls_session *s, int64_t now, const char *text, size_t len)
{
    pkt p;
    pkt_error perr;
    if (s->closed) return;
    s->last_packet = now;
    s->attempt = 0; /* any packet resets the backoff */
    /* a packet lost for want of memory is reported; the next packet's
     * counter shows the gap and a replay brings it back */
    if (!s->scratch && !(s->scratch = jv_doc_new(4096))) {
        out_of_memory(s);
        return;
    }
    if (!pkt_decode_reuse(s->scratch, text, len, NULL, &p, &perr)) {
        if (perr.out_of_memory)
            out_of_memory(s);
        else
            emit_error(s, NULL, "bad packet from server: %s", perr.message);
        return;
    }
    s->stats.packets++;
    if (p.type == PKT_REQUEST) {
        emit_error(s, NULL, "bad packet from server: a request packet");
        pkt_free(&p);
        return;
    }
    /* counters: 0 first on a connection, then +1 each; a gap or a second 0 means lost packets */
    if (p.counter == 0 && s->saw_zero) {
        s->stats.gaps++;
        request_replay(s, now);
    } else if (s->expected_counter >= 0 && p.counter != s->expected_counter) {
        s->stats.gaps++;
        request_replay(s, now);
    }
    if (p.counter == 0) s->saw_zero = 1;
    s->expected_counter = p.counter + 1;
    s->stats.last_counter = p.counter;

    switch (p.type) {
    case PKT_CHANGE:
    case PKT_OPERATION: {
        int in_overlap = s->replaying && p.time_ms >= s->replay_from_ms;
        int have_fp = in_overlap || s->track_cursor; /* else only the cursor may need it, later */
        uint64_t fp = have_fp ? fingerprint(p.body, p.timestamp->u.s, p.timestamp->len) : 0;
        if (s->replaying) s->replay_packets++;
        if (in_overlap && bag_take(&s->overlap, fp)) { /* the replay's copy of a packet already applied */
            s->stats.duplicates_suppressed++;
            break;
        }
        if (s->track_cursor) {
            s->applying_seq = ++s->change_seq;
            s->applying_fp = fp;
            mark_change(s, p.time_ms, fp);
        }
        apply_change(s, now, &p);
        s->applying_seq = s->applying_fp = 0;
        if (in_overlap) bag_add(s, &s->overlap, fp); /* seen live: its replay copy is skipped */
        if (p.time_ms > s->cursor_ms || !s->last_timestamp[0]) {
            if (p.timestamp->len < sizeof s->last_timestamp) {
                memcpy(s->last_timestamp, p.timestamp->u.s, p.timestamp->len);
                s->last_timestamp[p.timestamp->len] = '\0';
                s->cursor_ms = p.time_ms;
                s->at_cursor.n = 0;
                s->pending_body = NULL; /* no longer at the cursor */
                cursor_add(s, &p, have_fp, fp);
            }
        } else if (p.time_ms == s->cursor_ms) {
            flush_pending_fp(s);
            cursor_add(s, &p, have_fp, fp);
        }
        break;
    }
    case PKT_RESPONSE: handle_response(s, now, &p); break;
    case PKT_SIGNAL: typing_signal(s, now, &p); break;
    default: break;
    }
    pkt_free(&p);
}

void ls_ws_opened(ls_session *s, int64_t now)
{
    ws_req *r;
    s->ws_open = 1;
    s->connection++;
    s->expected_counter = 0;
    s->saw_zero = 0;
    s->last_packet = now;
    s->keepalive_pending = 0;
    replay_end(s);
    emit_lifecycle(s, LS_EV_CONNECTED, NULL, s->connection);
    request_replay(s, now); /* after every reconnect, once anything was seen */
    /* resend what never got an answer; creates carry their own ids */
    for (r = s->ws_reqs; r; r = r->next) {
        if (r->kind == REQ_APP && r->sent_on != s->connection) {
            queue_frame(s, r->frame, r->frame_len, now);
            r->sent_on = s->connection;
        }
    }
}

void ls_ws_closed(ls_session *s, int64_t now, const char *reason)
{
    ws_req **pp, *r;
    s->ws_open = 0;
    replay_end(s);
    /* keepalive and replay requests die with the socket; app requests wait for the next one */
    for (pp = &s->ws_reqs; (r = *pp);) {
        if (r->kind != REQ_APP) {
            *pp = r->next;
            ws_req_free(r);
        } else {
            pp = &r->next;
        }
    }
    drop_frames(s); /* unsent frames of a dead socket */
    if (s->closed) return;
    s->want_ws = 0;
    if (s->auth == AUTH_OK) schedule_reconnect(s, now, reason ? reason : "closed");
}

/* ===== HTTP responses ===== */

static const jv *error_object(jv_doc *d) { return d && jv_root(d)->type == JV_OBJECT ? jv_root(d) : NULL; }

static int retryable_status(int status)
{
    return status == 0 || status == 408 || status == 502 || status == 503 || status == 504;
}

/* An HTTP answer, as the per-kind handlers below read it. */
typedef struct {
    int status;       /* 0: the transport failed */
    jv_doc *doc;      /* the parsed body, or NULL */
    const jv *root;   /* its root, or NULL */
    const char *body; /* the raw body */
    size_t body_len;
    int64_t layer_count; /* the Layer-Count header, -1 when absent */
} http_answer;

static int answer_ok(const http_answer *a) { return a->status >= 200 && a->status < 300; }

static void answer_nonce(ls_session *s, int64_t now, const http_answer *a)
{
    const jv *nonce = a->root ? jv_get(a->root, "nonce") : NULL;
    if (answer_ok(a) && nonce && nonce->type == JV_STRING) {
        ls_event *ev = event_new(s, LS_EV_CHALLENGE);
        if (!ev || !event_text(ev, nonce->u.s, nonce->len)) {
            ls_event_free(s, ev);
            login_out_of_memory(s, now); /* nobody could answer it: log in again after the backoff */
            return;
        }
        s->auth = AUTH_CHALLENGED;
        event_push(s, ev);
    } else {
        s->auth = AUTH_NONE;
        if (a->status == 0) {
            login_unreachable(s, now, "POST /nonces", a->body, a->body_len);
        } else {
            emit_error(s, error_object(a->doc), "POST /nonces failed with status %d", a->status);
            schedule_reconnect(s, now, "authentication failed");
        }
    }
}

static void answer_session(ls_session *s, int64_t now, const http_answer *a)
{
    const jv *token = a->root ? jv_get(a->root, "session_token") : NULL;
    if (answer_ok(a) && token && token->type == JV_STRING) {
        free(s->token);
        if (!(s->token = str_dupn(token->u.s, token->len))) {
            login_out_of_memory(s, now);
            return;
        }
        s->auth = AUTH_OK;
        s->want_ws = 1;
        s->reconnect_at = -1;
        emit_lifecycle(s, LS_EV_AUTHENTICATED, s->token, 0);
    } else {
        s->auth = AUTH_NONE;
        if (a->status == 0) {
            login_unreachable(s, now, "POST /sessions", a->body, a->body_len);
        } else {
            emit_error(s, error_object(a->doc), "POST /sessions failed with status %d: the identity token was refused",
                       a->status);
            schedule_reconnect(s, now, "authentication failed");
        }
    }
}

static void answer_validate(ls_session *s, int64_t now, const http_answer *a)
{
    if (answer_ok(a))
        s->want_ws = 1;
    else if (a->status == 0)
        login_unreachable(s, now, "session validation", a->body, a->body_len);
    else
        schedule_reconnect(s, now, "session validation failed");
}

static void answer_refetch(ls_session *s, int64_t now, const rest_req *r, const http_answer *a)
{
    if (a->status == 200 && a->root && a->root->type == JV_OBJECT) {
        pkt fake;
        const jv *obj_id = jv_get(a->root, "id");
        memset(&fake, 0, sizeof fake);
        if (obj_id && obj_id->type == JV_STRING) {
            /* treat the fetched object as a create: the diff becomes an update event */
            fake.type = PKT_CHANGE;
            fake.change_op = CHG_CREATE;
            fake.object_type = r->refetch_type;
            fake.object_id = obj_id;
            fake.data = a->root;
            apply_change(s, now, &fake);
        }
    } else if (a->status == 404) {
        emit_error(s, error_object(a->doc), "re-fetch of %s: not found", r->path);
    }
}

static void answer_app(ls_session *s, rest_req *r, const http_answer *a)
{
    ls_event *ev = take_reply(s, &r->reply, r->id);
    if (!ev) return;
    ev->http_status = a->status;
    ev->number = (double)a->layer_count;
    ev->success = answer_ok(a);
    if (a->status == 0) {
        reply_text(ev, a->body ? a->body : "transport error", a->body ? a->body_len : 15);
    } else if (r->raw && ev->success) {
        reply_text(ev, a->body ? a->body : "", a->body ? a->body_len : 0);
    } else if (!a->root && a->body_len && ev->success) {
        /* a 2xx that is not JSON is not a Layer answer */
        static const char not_json[] =
            "{\"id\":\"invalid_response\",\"code\":0,\"message\":\"the server answered with a body that is not JSON\"}";
        ev->success = 0;
        reply_error_json(ev, not_json, sizeof not_json - 1);
    } else if (a->root) {
        reply_value(ev, a->root);
    } else if (a->body_len && !ev->success) {
        reply_text(ev, a->body, a->body_len);
    }
    event_push(s, ev);
}

/* An answer that could not be parsed for want of memory: an app request
 * fails saying so, a login step starts over after the backoff. */
static void answer_out_of_memory(ls_session *s, int64_t now, rest_req *r)
{
    ls_event *ev;
    switch (r->kind) {
    case HTTP_APP:
        if ((ev = take_reply(s, &r->reply, r->id)) != NULL) {
            reply_out_of_memory(ev);
            event_push(s, ev);
        }
        break;
    case HTTP_NONCE:
    case HTTP_SESSION: login_out_of_memory(s, now); break;
    case HTTP_VALIDATE:
        out_of_memory(s);
        schedule_reconnect(s, now, "out of memory");
        break;
    case HTTP_REFETCH: out_of_memory(s); break;
    }
}

/* How long a failed request waits before it goes again: the backoff (at
 * most MAX_RETRIES attempts), or what a 429's Retry-After asks. */
static int64_t request_retry_delay(ls_session *s, const rest_req *r, int status, const char *retry_after)
{
    int64_t wait = backoff_delay(s, r->attempts);
    if (status == 429 && retry_after) {
        double secs = atof(retry_after);
        if (secs >= 0 && secs < 3600) wait = (int64_t)(secs * 1000);
    }
    return wait;
}

void ls_http_response(ls_session *s, int64_t now, uint64_t id, int status, const char *retry_after, int64_t layer_count,
                      const char *body, size_t body_len)
{
    rest_req *r;
    jv_doc *d = NULL;
    const jv *root = NULL;
    jv_error perr;
    int unreachable_login, parse_oom = 0;
    for (r = s->rest_reqs; r && r->id != id; r = r->next) {}
    if (!r) return;
    r->in_flight = 0;
    if (status < 0) { /* permanent transport failure: report it, do not retry */
        status = 0;
        r->attempts = MAX_RETRIES;
    }
    if (status != 0 && body && body_len && !(r->raw && status >= 200 && status < 300)) {
        d = jv_parse(body, body_len, NULL, &perr);
        if (d)
            root = jv_root(d);
        else
            parse_oom = perr.out_of_memory;
    }
    /* an expired session: re-authenticate, then this request goes again */
    if (status == 401 && r->authenticated) {
        const jv *nonce = root ? jv_get(jv_get(root, "data"), "nonce") : NULL;
        int validate = r->kind == HTTP_VALIDATE; /* giving up on re-logins may free r */
        if (s->auth == AUTH_OK) {
            if (nonce && nonce->type == JV_STRING)
                begin_reauth(s, now, nonce->u.s, nonce->len);
            else
                begin_reauth(s, now, NULL, 0);
        }
        jv_doc_free(d);
        if (validate) rest_free(s, r);
        return;
    }
    /* a login step that cannot reach the server is retried by the reconnect
     * backoff, loudly (login_unreachable), not silently here */
    unreachable_login = status == 0 && (r->kind == HTTP_NONCE || r->kind == HTTP_SESSION || r->kind == HTTP_VALIDATE);
    if (!unreachable_login && (status == 429 || retryable_status(status)) && r->attempts < MAX_RETRIES && !s->closed) {
        r->retry_at = now + request_retry_delay(s, r, status, retry_after);
        jv_doc_free(d);
        return;
    }
    if (r->authenticated && status >= 200 && status < 300) s->reauths = 0; /* the session works */
    if (parse_oom) { /* the answer could not be read: not the server's fault, and never silent */
        answer_out_of_memory(s, now, r);
        rest_free(s, r);
        flush_rest(s, now);
        return;
    }
    {
        const http_answer a = {status, d, root, body, body_len, layer_count};
        switch (r->kind) {
        case HTTP_NONCE: answer_nonce(s, now, &a); break;
        case HTTP_SESSION: answer_session(s, now, &a); break;
        case HTTP_VALIDATE: answer_validate(s, now, &a); break;
        case HTTP_REFETCH: answer_refetch(s, now, r, &a); break;
        case HTTP_APP: answer_app(s, r, &a); break;
        }
    }
    jv_doc_free(d);
    rest_free(s, r);
    flush_rest(s, now);
}

/* ===== time ===== */

void ls_tick(ls_session *s, int64_t now)
{
    ws_req **pp, *r;
    if (s->closed) return;
    lc_settle(s->cache);
    if (s->n_owed) flush_owed(s); /* memory may be back, and no new event need come first */
    /* request timeouts */
    for (pp = &s->ws_reqs; (r = *pp);) {
        if (r->deadline > now) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (r->kind == REQ_APP) {
            ls_event *ev = take_reply(s, &r->reply, r->id);
            if (ev) {
                static const char timeout_error[] =
                    "{\"id\":\"request_timeout\",\"code\":8,\"message\":\"no response in time\"}";
                ev->success = 0;
                ev->http_status = 408;
                reply_error_json(ev, timeout_error, sizeof timeout_error - 1);
                event_push(s, ev);
            }
        } else if (r->kind == REQ_REPLAY) {
            replay_end(s);
        } else {
            s->keepalive_pending = 0;
        }
        ws_req_free(r);
    }
    if (s->ws_open) {
        if (now - s->last_packet >= s->cfg.dead_ms) {
            drop_socket(s, now, "no packet from the server in time: the socket is dead");
        } else if (now - s->last_packet >= s->cfg.keepalive_ms && !s->keepalive_pending) {
            if (ws_send_request(s, now, REQ_KEEPALIVE, "Counter.read", NULL, NULL, NULL)) s->keepalive_pending = 1;
        }
    }
    {
        rest_req *rr, *next;
        for (rr = s->rest_reqs; rr; rr = next) {
            next = rr->next;
            if (rr->kind == HTTP_APP && !rr->in_flight && rr->deadline >= 0 && now >= rr->deadline)
                fail_rest(s, rr, 408,
                          "{\"id\":\"request_timeout\",\"code\":8,"
                          "\"message\":\"no response in time (the client could not send it)\"}");
        }
    }
    if (s->reauth_at >= 0 && now >= s->reauth_at) start_reauth(s, now);
    /* reconnect: validate the session first (PROTOCOL.md 3.6) */
    if (s->reconnect_at >= 0 && now >= s->reconnect_at && !s->ws_open) {
        s->reconnect_at = -1;
        emit_lifecycle(s, LS_EV_RECONNECTING, NULL, s->attempt);
        if (s->auth == AUTH_OK) {
            if (!rest_new(s, HTTP_VALIDATE, "GET", "/?action=validateConnectionForWebsocket", NULL, 0, NULL, 1)) {
                out_of_memory(s);
                schedule_reconnect(s, now, "out of memory"); /* else no reconnect would ever come */
            }
        } else if (s->auth == AUTH_NONE) {
            start_nonce(s, now);
        }
    }
    flush_rest(s, now); /* sends retries that are due */
    expire_typists(s, now);
}

static int64_t min_deadline(int64_t a, int64_t b) { return a < 0 ? b : (b < 0 ? a : (a < b ? a : b)); }

int64_t ls_next_deadline(const ls_session *s, int64_t now)
{
    int64_t at = -1;
    ws_req *r;
    rest_req *rr;
    typist *t;
    if (s->closed) return -1;
    if (s->events || s->frames || s->http) return 0;
    for (r = s->ws_reqs; r; r = r->next) at = min_deadline(at, r->deadline);
    if (s->ws_open) {
        at = min_deadline(at, s->last_packet + s->cfg.dead_ms);
        if (!s->keepalive_pending) at = min_deadline(at, s->last_packet + s->cfg.keepalive_ms);
    }
    if (s->reconnect_at >= 0) at = min_deadline(at, s->reconnect_at);
    for (rr = s->rest_reqs; rr; rr = rr->next) {
        if (rr->retry_at >= 0 && !rr->in_flight) at = min_deadline(at, rr->retry_at);
        if (rr->deadline >= 0 && !rr->in_flight) at = min_deadline(at, rr->deadline);
    }
    if (s->reauth_at >= 0) at = min_deadline(at, s->reauth_at);
    if (s->n_owed) at = min_deadline(at, now + OWED_RETRY_MS);
    for (t = s->typists; t; t = t->next) at = min_deadline(at, t->expires);
    if (at < 0) return -1;
    return at <= now ? 0 : at - now;
}

/* ===== lifetime ===== */

ls_session *ls_new(const ls_config *cfg)
{
    ls_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (cfg)
        s->cfg = *cfg;
    else
        ls_config_defaults(&s->cfg);
    if (s->cfg.api_version != 2) s->cfg.api_version = 3;
    snprintf(s->subprotocol, sizeof s->subprotocol, "layer-%d.0", s->cfg.api_version);
    s->rng = s->cfg.random_seed ? s->cfg.random_seed : ((uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull) | 1;
    s->expected_counter = -1;
    s->reconnect_at = -1;
    s->reauth_at = -1;
    s->interest = ~0u;
    s->cache = lc_new(&s->cfg.cache_limits);
    s->oom_spare = calloc(1, sizeof *s->oom_spare); /* the first out-of-memory report */
    if (!s->cache || !s->oom_spare) {
        lc_free(s->cache);
        free(s->oom_spare);
        free(s);
        return NULL;
    }
    lc_keep_created(s->cache, 1); /* every create is dispatched with its object */
    return s;
}

void ls_close(ls_session *s, int64_t now)
{
    s->closed = 1;
    s->want_ws = 0;
    s->reconnect_at = -1;
    s->reauth_at = -1;
}

void ls_free(ls_session *s)
{
    ls_event *ev;
    ls_http_request *h;
    if (!s) return;
    while ((ev = ls_next_event(s))) ls_event_free(s, ev);
    while ((h = ls_take_http(s))) ls_http_request_free(h);
    drop_frames(s);
    while (s->ws_reqs) {
        ws_req *r = s->ws_reqs;
        s->ws_reqs = r->next;
        ws_req_free(r);
    }
    while (s->rest_reqs) rest_free(s, s->rest_reqs);
    while (s->typists) {
        typist *t = s->typists;
        s->typists = t->next;
        typist_free(t);
    }
    free(s->oom_spare);
    free(s->reauth_nonce);
    free(s->at_cursor.fps);
    free(s->durable.fps);
    free(s->marks);
    free(s->overlap.fps);
    jv_doc_free(s->scratch);
    jv_doc_free(s->held_doc);
    lc_free(s->cache);
    free(s->token);
    free(s->app_id);
    free(s);
}
