/* resp.h - HTTP answers shared by every handler (resp.c). */
#ifndef LAYER_SRV_RESP_H
#define LAYER_SRV_RESP_H
#include "srv.h"

extern const jv_limits srv_body_limits; /* JSON bodies and WebSocket messages */

/* Layer's error body {"id","code","message","url","data"}; data is JSON text or NULL. */
void err_resp(srv_resp *r, int status, const char *id, int code, const char *msg, const char *data);
void ok_empty(srv_resp *r);                    /* 204 */
void not_found(srv_resp *r, const char *what); /* 404 not_found */
#endif
