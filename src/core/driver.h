/*
 * driver.h - connects the protocol engine (session.h) to the transport
 * (loop.h, http.h, ws.h): the engine's HTTP requests and frames go out over
 * libcurl and libwebsockets, and their callbacks feed the engine. It adds no
 * behaviour of its own beyond URLs and headers; the engine decides.
 *
 * A hub (ld_hub) is one transport loop shared by many drivers: one epoll
 * set, one libwebsockets context, one curl multi. Its drivers never touch
 * their engine from a callback: inputs wait on the driver until that
 * driver's own service call, so an engine is only ever used from its own
 * client's step. A pass tells which drivers have work (ld_hub_next).
 */
#ifndef LAYER_DRIVER_H
#define LAYER_DRIVER_H

#include "api.h"

#include "session.h"

LAYER_BEGIN_DECLS

typedef struct ld_driver ld_driver;
typedef struct ld_hub ld_hub;

typedef struct {
    const char *url;           /* REST base, "http://127.0.0.1:7480" */
    const char *websocket_url; /* NULL: the REST base with ws(s):// */
    const char *ca_file, *ca_path;
    int insecure;            /* skip certificate checks: explicit only */
    const char *proxy;       /* http:// proxy for REST and WebSocket; NULL: the environment, "": none */
    long connect_timeout_ms; /* 0: 15 s */
    long request_timeout_ms; /* whole HTTP request; 0: 60 s */
    ld_hub *hub;             /* NULL: a private loop of its own */
} ld_options;

/* The driver borrows s; free the driver before the session. NULL on failure,
 * err says why (a url that is not http(s)://, a WebSocket url ws.h refuses,
 * no event loop: "could not create the event loop: epoll_create1: ..."). */
ld_driver *ld_new(ls_session *s, const ld_options *o, char *err, size_t err_len);
void ld_free(ld_driver *d);

int ld_fd(const ld_driver *d);   /* stable epoll fd for external loops */
int ld_timeout_ms(ld_driver *d); /* -1: nothing scheduled by the transport */
void ld_wake(ld_driver *d);      /* makes ld_fd readable: work queued outside a pass */
/* One pass of I/O (waits up to timeout_ms; 0 never blocks), then moves the
 * engine's outputs onto the transport. 0, or -1 when the loop cannot be
 * stepped (err: "the event loop failed: epoll_wait: ..."). Failures of the
 * requests and the socket reach the engine as its inputs (a failed
 * ls_http_response, ls_ws_closed with the reason), which it turns into
 * failed responses, disconnects and LS_EV_ERROR events. */
int ld_service(ld_driver *d, int timeout_ms, char *err, size_t err_len);
/* Without waiting: start the engine's HTTP requests, open or drop the
 * WebSocket as ls_ws_wanted says, send its frames. */
void ld_pump(ld_driver *d);
int64_t ld_now_ms(void);

/* ---- the shared loop ------------------------------------------------- */
ld_hub *ld_hub_new(char *err, size_t err_len);
/* The owner lets go: the loop itself goes with the last driver on it. */
void ld_hub_release(ld_hub *h);
int ld_hub_fd(ld_hub *h);         /* stable epoll fd for external loops */
int ld_hub_timeout_ms(ld_hub *h); /* 0 while a driver has work */
void ld_hub_wake(ld_hub *h);
size_t ld_hub_drivers(const ld_hub *h);
/* One I/O pass for every driver (waits up to timeout_ms, <0: until work),
 * then starts a round of the drivers with work. 0, or -1 with err filled, as
 * for ld_service. */
int ld_hub_step(ld_hub *h, int timeout_ms, char *err, size_t err_len);
/* The next driver of the round (NULL: the round is over). Its client steps
 * it (ld_service, ld_pump) and then calls ld_settle; one that is not settled
 * by the next ld_hub_step is taken to still have work. */
ld_driver *ld_hub_next(ld_hub *h);
void ld_hub_skip(ld_hub *h); /* the last ld_hub_next has no client: forget it */
/* After its client's step: arms the engine's next deadline on the loop, or
 * keeps the driver in line when events are still queued. */
void ld_settle(ld_driver *d);
uint64_t ld_id(const ld_driver *d); /* never 0; unique within its hub */
int ld_shared(const ld_driver *d);

LAYER_END_DECLS
#endif
