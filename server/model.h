/* model.h - rendering and change-packet helpers shared by the request handlers. */
#ifndef LAYER_SRV_MODEL_H
#define LAYER_SRV_MODEL_H
#include "srv.h"

void w_str(jbuf *b, const char *s);
void w_key(jbuf *b, const char *k);
void w_iso(jbuf *b, int64_t ms);
const char *col_text(sqlite3_stmt *st, int i);
void bind_text(sqlite3_stmt *st, int i, const char *s);
void w_identity_id(jbuf *b, const char *user);
void w_url(jbuf *b, const char *kind, const char *id);
int parse_layer_uuid(const char *s, size_t n, const char *kind, char out[37]);
int parse_identity(const char *s, size_t n, char *out, size_t osz);
void ensure_identity(const char *user);
int identity_exists(const char *user);
void w_basic_identity(jbuf *b, const char *user);
int w_full_identity(jbuf *b, const char *user);
int conv_member(const char *conv, const char *user, int64_t *from_pos);
int conv_members(const char *conv, char ***out);
void free_list(char **v, int n);
void w_content(jbuf *b, const char *uuid, int64_t size);
int w_message(jbuf *b, const char *uuid, const char *viewer);
int msg_visible(const char *uuid, const char *viewer, char conv[37], int64_t *pos);
int content_visible(const char *uuid, const char *user);
int conv_last_message(const char *conv, const char *viewer, int64_t from, char out[37]);
int64_t conv_unread(const char *conv, const char *viewer, int64_t from);
void conv_unread_recount(const char *conv, const char *viewer);
int w_conversation(jbuf *b, const char *uuid, const char *viewer);
int w_announcement(jbuf *b, const char *uuid, const char *viewer);
void conn_send(srv_conn *c, const char *type, const char *body);
/* ts_ms: the event's logged time, so a replay re-sends the same timestamp */
void send_event(srv_conn *c, const char *kind, const char *op, const char *otype, const char *oid, const char *data,
                int64_t ts_ms);
void emit(const char *user, const char *kind, const char *op, const char *otype, const char *oid, const char *data);
void emit_conv(const char *user, const char *op, const char *uuid, const char *data);
void emit_msg(const char *user, const char *op, const char *uuid, const char *data);
/* One change of a conversation or message (otype, uuid) for every member of conv. */
void emit_members(const char *conv, const char *kind, const char *op, const char *otype, const char *uuid,
                  const char *data);
/* A read receipt's patch: to the other members of conv (NULL: none), and to the reader
 * with is_unread set false. */
void emit_read_receipt(const char *conv, const char *reader, const char *otype, const char *uuid,
                       const char *status_patch);
void emit_conv_summary(const char *user, const char *conv, int with_last);
/* A JSON string: recipient_status.<identity id of user>, dots escaped for Layer-Patch. */
void escaped_identity_prop(jbuf *b, const char *user);
/* A receipt's type: 1 for "delivery", 2 for "read", 0 for anything else. */
int receipt_level(const jv *type);
/* The NUL-terminated patch setting user's recipient_status to level's word. */
void receipt_status_patch(jbuf *b, const char *user, int level);

/* identities.c: store the profile fields src sets (all of them, or only those an
 * identity token may set) and push what changed as an Identity patch to the user,
 * their followers and their conversation peers. Returns the fields changed. */
int identity_update(const char *user, const jv *src, int all_fields);
/* The first profile field an identity token may set that claims hold as anything but a string, or NULL. */
const char *identity_token_bad_field(const jv *claims);

/* actions.c: mutations shared by REST and WebSocket */
void act_conv_create(const char *user, const jv *data, srv_resp *r);
void act_msg_create(const char *user, const char *conv, const jv *data, srv_resp *r);
void update_pkey_pub(const char *conv);
/* Why metadata (json_bytes as compact JSON) exceeds what a conversation may hold, or NULL. */
const char *metadata_over_limits(const jv *meta, size_t json_bytes);
int participant_user_jv(const jv *p, char *out, size_t osz);
void err_resp(srv_resp *r, int status, const char *id, int code, const char *msg, const char *data);
#endif
