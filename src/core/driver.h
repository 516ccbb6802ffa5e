/*
 * driver.h - connects the protocol engine (session.h) to the transport
 * (loop.h, http.h, ws.h): the engine's HTTP requests and frames go out over
 * libcurl and libwebsockets, and their callbacks feed the engine. It adds no
 * behaviour of its own beyond URLs and headers; the engine decides.
 */
#ifndef LAYER_DRIVER_H
#define LAYER_DRIVER_H

#include "api.h"

#include "session.h"

LAYER_BEGIN_DECLS

typedef struct ld_driver ld_driver;

typedef struct {
    const char *url;            /* REST base, "http://127.0.0.1:7480" */
    const char *websocket_url;  /* NULL: the REST base with ws(s):// */
    const char *ca_file, *ca_path;
    int insecure;               /* skip certificate checks: explicit only */
    const char *proxy;          /* http:// proxy for REST and WebSocket; NULL: the environment, "": none */
    long connect_timeout_ms;    /* 0: 15 s */
    long request_timeout_ms;    /* whole HTTP request; 0: 60 s */
} ld_options;

/* The driver borrows s; free the driver before the session. */
ld_driver *ld_new(ls_session *s, const ld_options *o, char *err, size_t err_len);
void ld_free(ld_driver *d);

int ld_fd(const ld_driver *d);          /* stable epoll fd for external loops */
int ld_timeout_ms(ld_driver *d);        /* -1: nothing scheduled by the transport */
void ld_wake(ld_driver *d);             /* makes ld_fd readable: work queued outside a pass */
/* One pass of I/O (waits up to timeout_ms; 0 never blocks), then moves the
 * engine's outputs onto the transport. */
void ld_service(ld_driver *d, int timeout_ms);
/* Without waiting: start the engine's HTTP requests, open or drop the
 * WebSocket as ls_ws_wanted says, send its frames. */
void ld_pump(ld_driver *d);
int64_t ld_now_ms(void);

LAYER_END_DECLS
#endif
