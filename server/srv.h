/* srv.h - shared declarations of the local Layer-compatible server (logic, store, network glue). */
#ifndef LAYER_SRV_H
#define LAYER_SRV_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "json.h"

#define SRV_MAX_BODY (256 * 1024)        /* JSON bodies and WebSocket messages */
#define SRV_MAX_UPLOAD (8 * 1024 * 1024) /* rich content PUT */
#define SRV_MAX_ARGS 16

enum { M_GET = 1, M_POST, M_PUT, M_PATCH, M_DELETE, M_HEAD, M_OPTIONS };

/* ---- util.c ---- */
int64_t srv_now_ms(void);               /* wall clock, never decreasing */
void srv_iso(int64_t ms, char out[32]); /* 2026-01-01T00:00:00.000Z */
int srv_parse_iso(const char *s, int64_t *ms);
void srv_random_hex(char *out, size_t bytes); /* out gets 2*bytes+1 chars */
void srv_uuid(char out[37]);
int srv_is_uuid(const char *s, size_t n);
int srv_valid_user_id(const char *s, size_t n);
void srv_url_encode(jbuf *b, const char *s); /* exactly layer-websdk's strictEncodeURI */
void srv_hmac256(const char *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32]);
int srv_ct_equal(const void *a, const void *b, size_t n);

/* ---- request / response ---- */
typedef struct {
    int method;
    char path[1024];
    char *args[SRV_MAX_ARGS]; /* decoded "k=v" fragments */
    int nargs;
    char accept[256], content_type[128], authorization[512];
    char upload_type[128], upload_len[32], host[128];
    const char *body;
    size_t body_len;
    int body_too_large;
} srv_req;

typedef struct {
    int status;
    jbuf body;
    const char *content_type; /* static string; default application/json */
    long layer_count;         /* -1: no header */
    int retry_after;          /* 0: no header */
    unsigned char *raw;       /* malloc'd raw body instead of body (downloads) */
    size_t raw_len;
    char location[256];
} srv_resp;

const char *srv_arg(const srv_req *r, const char *name);

/* ---- WebSocket connections ---- */
typedef struct srv_pkt {
    struct srv_pkt *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then text */
} srv_pkt;

typedef struct srv_conn {
    struct srv_conn *next, *prev;
    struct srv_conn *hnext, *hprev; /* same-user bucket */
    unsigned hash;
    void *wsi;
    char user[160];
    char token[80];
    int api;             /* 2 or 3 */
    int64_t counter;     /* next counter to send */
    int skip;            /* fault: counters to skip before the next packet */
    int64_t stall_until; /* fault: hold output until this ms */
    int close_pending;
    int64_t session_expires_ms; /* the socket closes then; a revoked session closes it at once */
    srv_pkt *qhead, *qtail;
    size_t qbytes;
    /* Event.replay in progress: the log is sent in batches as the queue
     * drains, and live events wait in the log until it has caught up. */
    int replaying;
    int64_t replay_from; /* from_timestamp, ms */
    int64_t replay_seq;  /* last events.seq sent */
    int replay_count;
    char replay_rid[136]; /* request_id as JSON text; "" is null */
    char *rx;             /* fragment reassembly */
    size_t rx_len;
    int rx_bad;
} srv_conn;

/* The server context: configuration and injected faults, owned by main() (or a fuzzer) and
 * passed to every entry point below, and from there to the handlers that need it. The
 * database handle is store.c's, the socket registry fanout.c's, URLs and the content key
 * render.c's (render_configure). */
typedef struct {
    char secret[512];
    char admin_token[256];
    int allow_unsigned;
    int64_t session_ttl_ms;
    int log_level; /* 0 quiet, 1 errors, 2 requests, 3 debug */
    int stopping;  /* set while the server shuts down: no more fan-out */
    /* faults */
    int fault_left, fault_status, fault_retry_after;
} srv_ctx;

/* ---- store.c ---- */
int store_open(const char *path);
void store_close(void);
sqlite3_stmt *store_prep(const char *text); /* cached prepared statement, reset */
int store_exec(const char *text);
int store_is_open(void);
int store_changes(void); /* rows the last statement changed */
int store_begin(void);
int store_commit(void);
void store_rollback(void);

/* ---- what the network glue (main.c) and the fuzzer call ---- */
void srv_handle_http(srv_ctx *x, const srv_req *req, srv_resp *resp); /* api.c */
void srv_resp_init(srv_resp *r);                                      /* resp.c */
void srv_resp_free(srv_resp *r);
int srv_ws_authorize(const char *token, char *user, size_t usz); /* auth.c; 1 if valid */
/* The network layer's "flush c" and the headroom it needs before each packet (fanout.c). */
void fanout_set_network(void (*wake)(srv_conn *c), size_t pkt_headroom);
/* The URL prefix of every url in a response, and the key download URLs are signed with (render.c). */
void render_configure(const char *base_url, const char *content_key);
/* ws.c */
void srv_conn_open(srv_ctx *x, srv_conn *c);
void srv_conn_closed(srv_ctx *x, srv_conn *c);
/* Handle one complete text frame; returns 0, or a close code to close the socket. */
int srv_ws_frame(srv_ctx *x, srv_conn *c, const char *data, size_t len);
void srv_replay_pump(srv_conn *c); /* queue the next replay batch, if the queue has room */
/* fanout.c */
void srv_tick(void); /* periodic: release stalled sockets, close expired ones */
srv_pkt *srv_conn_pop(srv_conn *c);

#endif
