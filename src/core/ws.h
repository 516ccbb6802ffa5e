/*
 * ws.h - WebSocket client connections on an lt_loop, over libwebsockets
 * 4.1.6 (client role, one lws context per loop, created lazily).
 *
 * Never blocks: hostnames are resolved off-thread (resolve.h) and lws gets
 * the numeric address. Callbacks run from lt_loop_step, never from inside
 * lws, so they may send, close or free any connection (their own included),
 * open new ones, or free the loop.
 */
#ifndef LAYER_WS_H
#define LAYER_WS_H

#include "api.h"

#include <stddef.h>

#include "loop.h"

LAYER_BEGIN_DECLS

typedef struct lt_ws lt_ws;

enum { LT_WS_CONNECTING = 0, LT_WS_OPEN, LT_WS_CLOSING, LT_WS_CLOSED };

typedef struct lt_ws_opts {
    const char *url;            /* ws://host[:port]/path?query or wss://... */
    const char *protocol;       /* requested subprotocol, e.g. "layer-3.0"; NULL = none */
    const char *origin;         /* Origin header; NULL = none */
    const char *const *headers; /* extra handshake headers, "Name: value" */
    size_t nheaders;
    const char *ca_file;     /* PEM bundle to trust instead of the system store */
    const char *ca_path;     /* directory of hashed CA certs */
    int insecure;            /* 1 = accept any certificate / hostname (explicit only) */
    const char *proxy;       /* http:// proxy URL; NULL = environment as libcurl reads it, "" = none */
    size_t max_message;      /* reassembled message cap; 0 = 1 MiB */
    long connect_timeout_ms; /* DNS + TCP + TLS + handshake; 0 = 15000 */

    /* Exactly one of on_close / on_error ends a connection, unless lt_ws_free
     * came first (then nothing more is called). */
    void (*on_open)(lt_ws *ws, void *ud);
    void (*on_text)(lt_ws *ws, const char *data, size_t len, void *ud);   /* data NUL-terminated */
    void (*on_binary)(lt_ws *ws, const char *data, size_t len, void *ud); /* NULL = dropped */
    /* code 1005 = peer sent no code, 1006 = dropped without a close frame;
     * was_clean = a close frame was exchanged. */
    void (*on_close)(lt_ws *ws, int code, const char *reason, int was_clean, void *ud);
    /* Failed before open (DNS, refused, TLS, bad handshake, timeout, an
     * unusable proxy setting) or a local failure once open (message over
     * max_message: sent close 1009; out of memory). msg says which. */
    void (*on_error)(lt_ws *ws, const char *msg, void *ud);
    void *ud;
} lt_ws_opts;

/* Starts connecting (from the next lt_loop_step); opts strings are copied.
 * NULL on failure, err filled: LT_E_INVAL (no url, a url lt_ws_check_url
 * refuses, CR or LF in a header or the protocol), LT_E_STATE (the loop is
 * being freed), LT_E_OOM, LT_E_LIB (lws cannot be set up), LT_E_SYS (the
 * resolver's eventfd or thread). What fails later comes through on_error. */
lt_ws *lt_ws_connect(lt_loop *loop, const lt_ws_opts *opts, lt_error *err);
/* 0 if lt_ws_connect would take url, else -1 and LT_E_INVAL (or LT_E_OOM)
 * saying what is wrong with it. */
int lt_ws_check_url(const char *url, lt_error *err);
/* Queues one text message (copied); allowed while connecting. 0, or -1:
 * LT_E_STATE (closing or closed), LT_E_OOM. */
int lt_ws_send_text(lt_ws *ws, const char *data, size_t len, lt_error *err);
/* Flushes queued messages, then sends a close frame with code/reason
 * (reason cut to 123 bytes). Before open it aborts: on_close(code, reason, 0).
 * 0, or -1 with LT_E_STATE when it is already closing or closed. */
int lt_ws_close(lt_ws *ws, int code, const char *reason, lt_error *err);
/* Drops the connection (no further callbacks); memory goes at the next step.
 * Call it for every lt_ws, also after on_close/on_error (lt_loop_free does it
 * for any left, after which the pointers are invalid). */
void lt_ws_free(lt_ws *ws);
int lt_ws_state(const lt_ws *ws);
const char *lt_ws_protocol(const lt_ws *ws); /* negotiated subprotocol, or NULL */
size_t lt_ws_buffered(const lt_ws *ws);      /* bytes queued, not yet given to lws */

LAYER_END_DECLS
#endif
