/* render.h - JSON output of the server's objects (render.c). */
#ifndef LAYER_SRV_RENDER_H
#define LAYER_SRV_RENDER_H
#include "srv.h"

const char *render_base_url(void); /* what render_configure set (srv.h) */
/* The hex HMAC a download URL of content uuid, valid until expires (ms, decimal), carries. */
void content_signature(const char *uuid, const char *expires, char hex[65]);
void w_str(jbuf *b, const char *s); /* NULL: null */
void w_key(jbuf *b, const char *k);
void w_iso(jbuf *b, int64_t ms);
void w_identity_id(jbuf *b, const char *user);
void w_url(jbuf *b, const char *kind, const char *id);
void w_basic_identity(jbuf *b, const char *user);
int w_full_identity(jbuf *b, const char *user);
void w_content(jbuf *b, const char *uuid, int64_t size);
/* The object as viewer sees it; 0 if there is none. */
int w_message(jbuf *b, const char *uuid, const char *viewer);
int w_conversation(jbuf *b, const char *uuid, const char *viewer);
int w_announcement(jbuf *b, const char *uuid, const char *viewer);
/* A JSON string: recipient_status.<identity id of user>, dots escaped for Layer-Patch. */
void escaped_identity_prop(jbuf *b, const char *user);
/* The NUL-terminated patch setting user's recipient_status to level's word. */
void receipt_status_patch(jbuf *b, const char *user, int level);
#endif
