/* handlers.h - what the request handler files (auth.c, admin.c, conversations.c, ...) offer the
 * router (api.c), the WebSocket side (ws.c) and each other. */
#ifndef LAYER_SRV_HANDLERS_H
#define LAYER_SRV_HANDLERS_H
#include "srv.h"

/* POST /admin/<what> with the admin bearer token; seg[1] names what. */
void admin_request(srv_ctx *x, const srv_req *q, char **seg, int nseg, const jv *body, srv_resp *r);
/* Close the sockets opened with a session token, or (token NULL) all of a user's. */
int close_session_sockets(const char *token, const char *user);
/* A new session for user, answered as 201 {"session_token"}. */
void respond_new_session(const srv_ctx *x, const char *user, srv_resp *r);
void new_nonce(char out[65]);
/* 401 with a fresh nonce, as Layer answers an unauthenticated request. */
void auth_required(srv_resp *r, const char *msg);
/* The user of the request's session token into user (1), or 0; tok gets the token sent. */
int req_user(const srv_req *q, char *user, size_t usz, char *tok, size_t tsz);
/* POST /sessions: an identity token for a session token. */
void do_sessions(const srv_ctx *x, const jv *body, srv_resp *r);
void content_create(const srv_req *q, const char *user, srv_resp *r);
void content_upload(const srv_req *q, const char *uuid, const char *key, srv_resp *r);
void content_refresh(const char *user, const char *uuid, srv_resp *r);
void content_download(const srv_req *q, const char *uuid, srv_resp *r);
/* page_size of the request, at most max; -1 after answering 422. */
int page_size(const srv_req *q, srv_resp *r, int max);
char **page_ids(sqlite3_stmt *st, int *n);
typedef int (*page_writer)(jbuf *b, const char *id, const char *viewer);
int w_identity_row(jbuf *b, const char *id, const char *viewer);
void respond_page(srv_resp *r, char **ids, int n, page_writer w, const char *viewer);
/* The mode argument of a delete, or NULL after answering 422. */
const char *delete_mode(const srv_req *q, srv_resp *r);
void list_announcements(const srv_req *q, const char *user, srv_resp *r);
void announcement_action(int method, const char *user, const char *uuid, const char *sub, const jv *body, srv_resp *r);
void get_identity(const char *uid, srv_resp *r);
void list_identities(const srv_req *q, const char *user, srv_resp *r);
/* PUT (on) or DELETE /following/users/<target>. */
void follow(const char *user, const char *target, int on, srv_resp *r);
void list_messages(const srv_req *q, const char *user, const char *conv, srv_resp *r);
void delete_message(const char *user, const char *msg, const srv_req *q, srv_resp *r);
void message_receipt(const char *user, const char *msg, const jv *body, srv_resp *r);
void list_conversations(const srv_req *q, const char *user, srv_resp *r);
void patch_conversation(const char *user, const char *conv, const srv_req *q, srv_resp *r);
void delete_conversation(const char *user, const char *conv, const srv_req *q, srv_resp *r);
void mark_all_read(const char *user, const char *conv, const jv *body, srv_resp *r);

/* identities.c: store the profile fields src sets (all of them, or only those an
 * identity token may set) and push what changed as an Identity patch to the user,
 * their followers and their conversation peers. Returns the fields changed. */
int identity_update(const char *user, const jv *src, int all_fields);
/* The first profile field an identity token may set that claims hold as anything but a string, or NULL. */
const char *identity_token_bad_field(const jv *claims);
#endif
