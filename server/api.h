/* api.h - what the server's request handler files (api.c routing, auth.c, admin.c, ws.c, ...) share. */
#ifndef LAYER_SRV_API_H
#define LAYER_SRV_API_H
#include "srv.h"

extern const jv_limits srv_body_limits; /* JSON bodies and WebSocket messages */
/* POST /admin/<what> with the admin bearer token; seg[1] names what. */
void admin_request(const srv_req *q, char **seg, int nseg, const jv *body, srv_resp *r);
/* Close the sockets opened with a session token, or (token NULL) all of a user's. */
int close_session_sockets(const char *token, const char *user);
/* A new session for user, answered as 201 {"session_token"}. */
void respond_new_session(const char *user, srv_resp *r);

#endif
