/*
 * session.h - the Layer client protocol engine, without I/O.
 *
 * It is fed what the network and the clock did (frames received, socket
 * opened or closed, HTTP responses, the time) and answers with what to do
 * (frames to send, HTTP requests to make, when to be called again) and with
 * events for the application. The transport driver (driver.c) connects it to
 * libcurl and libwebsockets; tests and other transports (lua/layer/ngx.lua on
 * OpenResty cosockets) drive it directly. Nothing here blocks, starts threads
 * or calls Lua.
 *
 * It implements docs/protocol.md: authentication through a challenge, WebSocket
 * counters with Event.replay on gaps and after every reconnect, Counter.read
 * keepalive, dead-socket detection, reconnect with backoff and jitter after
 * validating the session, request ids with timeouts, and the object cache
 * kept current from change packets, with events that fire once per change.
 */
#ifndef LAYER_SESSION_H
#define LAYER_SESSION_H

#include "api.h"

#include "cache.h"
#include "json.h"

LAYER_BEGIN_DECLS

typedef struct ls_session ls_session;

typedef struct {
    int api_version;            /* 2 or 3 (default 3) */
    int64_t keepalive_ms;       /* Counter.read after this much silence (30000) */
    int64_t dead_ms;            /* no packet for this long: reconnect (45000) */
    int64_t request_timeout_ms; /* socket requests fail after this (45000) */
    int64_t backoff_base_ms;    /* first reconnect delay (1600) */
    int64_t backoff_cap_ms;     /* largest delay (480000) */
    double backoff_jitter;      /* up to this fraction added at random (0.5) */
    uint64_t random_seed;       /* for jitter; 0 picks one */
    lc_limits cache_limits;
} ls_config;

void ls_config_defaults(ls_config *cfg);

/* ----- events for the application -----
 * When memory runs out, an event that cannot be made is reported by an
 * LS_ERROR_OUT_OF_MEMORY error. The lifecycle events (authenticated,
 * connected, disconnected, reconnecting, synced) are not lost even then:
 * they are owed and queued, in order and before any later event, at the
 * first ls_tick that can allocate them (ls_next_deadline asks for one). */

typedef enum {
    LS_EV_CHALLENGE = 1, /* text: nonce. Answer with ls_answer_challenge. */
    LS_EV_AUTHENTICATED, /* text: session token */
    LS_EV_CONNECTED,     /* WebSocket open */
    LS_EV_DISCONNECTED,  /* text: reason; number: retry in ms (-1: not retrying) */
    LS_EV_RECONNECTING,  /* number: attempt */
    LS_EV_SYNCED,        /* a replay completed; number: packets replayed */
    LS_EV_CREATE,        /* object_type, id, ref */
    LS_EV_UPDATE,        /* object_type, id, ref, changes */
    LS_EV_DELETE,        /* object_type, id, ref (deleted; NULL if it was not cached), text: mode */
    LS_EV_TRUNCATE,      /* id: conversation, number: messages removed */
    LS_EV_MARK_READ,     /* id: conversation, number: messages marked */
    LS_EV_TYPING,        /* id: conversation, value: {action, sender} */
    LS_EV_RESPONSE,      /* request_id, success, value: data or error, http_status, number: Layer-Count or -1;
                          * out_of_memory: it failed because the answer could not be copied */
    LS_EV_ERROR,         /* text: message; value: error object when there is one; number: LS_ERROR_* */
    LS_EV_LOG            /* text: message; number: LS_LOG_* level */
} ls_event_type;

/* What an LS_EV_ERROR without a value is about. LS_ERROR_OUT_OF_MEMORY: an
 * allocation failed and something was dropped (events that could not be
 * made, a frame that could not be queued) or put off (a login or request
 * step, retried after the backoff); text counts the failures since the last
 * such report. It is made from memory set aside beforehand, so it arrives
 * even when nothing else can be allocated. */
enum {
    LS_ERROR_CLIENT = 0,
    LS_ERROR_TRANSPORT = 1, /* the server could not be reached */
    LS_ERROR_OUT_OF_MEMORY = 2
};
enum { LS_LOG_ERROR = 1, LS_LOG_WARN = 2, LS_LOG_INFO = 3 };

/* One changed top-level property: the engine's lp_change, with values
 * copied into the event's own document. */
typedef lp_change ls_change;

typedef struct ls_event {
    ls_event_type type;
    pkt_object_type object_type;
    const char *id; /* object or conversation id */
    size_t id_len;
    uint64_t request_id;
    int success;
    int http_status;
    int out_of_memory; /* LS_EV_RESPONSE: failed for want of memory (text says so, no value) */
    double number;
    const char *text;
    size_t text_len;
    const jv *value;
    ls_change *changes;
    size_t n_changes;
    lc_hold *hold;       /* the cache doc changes point into, or NULL (then they live in doc) */
    lc_ref *ref;         /* the object, pinned; NULL for non-object events */
    uint64_t change_seq; /* the change packet behind it, with ls_track_cursor; else 0 */
    uint64_t change_fp;  /* that packet's fingerprint: stable across replays */
    jv_doc *doc;         /* owns text, value and changes (created on first use) */
    char id_buf[112];    /* short ids live here, saving an allocation per event */
    struct ls_event *next;
} ls_event;

/* Pop the next event (NULL if none); free it with ls_event_free. Object
 * events pin their object (ref) until freed, so it is readable at dispatch
 * even if it was deleted or the cache moved on. */
ls_event *ls_next_event(ls_session *s);
void ls_event_free(ls_session *s, ls_event *ev);
size_t ls_pending_events(const ls_session *s);

/* ----- the durable cursor (for a state file) -----
 * The replay cursor moves as packets are applied; the durable cursor moves
 * only over changes whose events the host says it has finished with, so a
 * host that saves it and crashes sees again just the unfinished ones. */
typedef struct {
    int64_t ms;          /* newest finished change's time; 0: none yet */
    const uint64_t *fps; /* fingerprints of the finished changes at ms */
    size_t n;
} ls_cursor;

void ls_track_cursor(ls_session *s);
/* The oldest change still queued as an event, or 0. */
uint64_t ls_oldest_queued_change(const ls_session *s);
/* Fold in every applied change with seq < below (0: all applied). 1 if the
 * durable cursor moved. */
int ls_finish_changes(ls_session *s, uint64_t below);
void ls_durable_cursor(const ls_session *s, ls_cursor *out);
/* Start from a saved cursor: the next connection replays from it and skips
 * the saved fingerprints once each. 0 if out of memory. */
int ls_restore_cursor(ls_session *s, const ls_cursor *c);

/* ----- outputs for the transport ----- */

typedef struct ls_http_request {
    uint64_t id;
    const char *method; /* static string */
    char *path;         /* "/conversations?page_size=10" relative to the base URL, or an
                         * absolute http(s) URL (rich content upload and download) */
    char *body;         /* JSON text or NULL */
    size_t body_len;
    const char *content_type;
    int authenticated; /* add the session token */
    char *headers;     /* extra "Name: value" lines, '\n'-separated, or NULL */
    struct ls_http_request *next;
} ls_http_request;

/* 1 while a WebSocket should exist. The transport opens one when it has none
 * (URL: base + "/?session_token=" + ls_session_token()), closes it when this
 * turns 0, and reports with ls_ws_opened / ls_ws_closed. */
int ls_ws_wanted(const ls_session *s);
const char *ls_subprotocol(const ls_session *s); /* "layer-3.0" */
/* The session token (the socket URL's session_token value); NULL before login. */
const char *ls_session_token(const ls_session *s);

/* Next frame to send (NULL if none); free with free(). */
char *ls_take_frame(ls_session *s, size_t *len);
/* Next HTTP request to perform (NULL if none); free with ls_http_request_free. */
ls_http_request *ls_take_http(ls_session *s);
void ls_http_request_free(ls_http_request *r);

/* Milliseconds from now until ls_tick must run (-1: nothing scheduled). */
int64_t ls_next_deadline(const ls_session *s, int64_t now_ms);

/* ----- inputs ----- */

ls_session *ls_new(const ls_config *cfg);
void ls_free(ls_session *s);

/* Start: authenticate (or use a known session token), then connect. */
void ls_start(ls_session *s, int64_t now_ms, const char *session_token);
void ls_answer_challenge(ls_session *s, int64_t now_ms, const char *identity_token, const char *app_id);
void ls_close(ls_session *s, int64_t now_ms); /* no reconnects after this */

void ls_ws_opened(ls_session *s, int64_t now_ms);
void ls_ws_closed(ls_session *s, int64_t now_ms, const char *reason);
void ls_ws_frame(ls_session *s, int64_t now_ms, const char *text, size_t len);
void ls_tick(ls_session *s, int64_t now_ms);

/* A transport-level HTTP failure has status 0 and the reason in body; -1
 * marks one that retrying cannot fix (a refused TLS certificate).
 * layer_count is the Layer-Count header (-1 when absent). */
void ls_http_response(ls_session *s, int64_t now_ms, uint64_t id, int status, const char *retry_after,
                      int64_t layer_count, const char *body, size_t body_len);

/* ----- application requests ----- */

/* A request over the WebSocket; completion arrives as LS_EV_RESPONSE with the
 * returned id. data may be NULL. Returns 0 if the engine is closed. */
uint64_t ls_ws_request(ls_session *s, int64_t now_ms, const char *method, const char *object_id, const jv *data);
/* A REST request with the session token; completion as LS_EV_RESPONSE.
 * A 401 carrying a nonce re-authenticates and retries it transparently. */
uint64_t ls_rest_request(ls_session *s, int64_t now_ms, const char *method, const char *path, const char *body,
                         size_t body_len, const char *content_type);

/* Any HTTP request: extra headers ('\n'-separated lines), with or without
 * the session token, and with the raw body as the response text (binary
 * safe) instead of parsed JSON. Used for rich content. */
typedef struct {
    const char *method, *path_or_url, *body, *content_type, *headers;
    size_t body_len;
    int authenticated, raw;
} ls_http_spec;
uint64_t ls_http(ls_session *s, int64_t now_ms, const ls_http_spec *spec);
/* Typing indicator signal for a conversation: "started", "paused", "finished". */
int ls_send_typing(ls_session *s, const char *conversation_id, const char *action);

lc_cache *ls_cache(ls_session *s);

/* Change lists cost a copy of every changed value; without them update
 * events still fire (only for real changes) but carry no list. On by default. */
void ls_set_change_lists(ls_session *s, int on);
int ls_change_lists(const ls_session *s);

/* Which object events to build: a change nobody listens to is still applied
 * to the cache, but no event is allocated, pinned or queued for it. A bit per
 * (LS_EV_CREATE | LS_EV_UPDATE | LS_EV_DELETE) x object type; all by default. */
#define LS_INTEREST(ev_type, object_type) (1u << (((ev_type)-LS_EV_CREATE) * 5 + (object_type)))
void ls_set_interest(ls_session *s, unsigned mask);

typedef struct {
    uint64_t packets, changes_applied, duplicates_suppressed, replays, reconnects, gaps;
    uint64_t out_of_memory; /* allocation failures reported as LS_ERROR_OUT_OF_MEMORY */
    int64_t last_counter;
} ls_stats;
void ls_stats_get(const ls_session *s, ls_stats *out);

LAYER_END_DECLS
#endif
