/* api.h - what the server's request handler files (api.c routing, auth.c, admin.c, ws.c, ...) share. */
#ifndef LAYER_SRV_API_H
#define LAYER_SRV_API_H
#include "srv.h"

extern const jv_limits srv_body_limits; /* JSON bodies and WebSocket messages */

#endif
