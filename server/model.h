/* model.h - questions about the server's objects (model.c). */
#ifndef LAYER_SRV_MODEL_H
#define LAYER_SRV_MODEL_H
#include "srv.h"

int parse_layer_uuid(const char *s, size_t n, const char *kind, char out[37]);
int parse_identity(const char *s, size_t n, char *out, size_t osz);
void ensure_identity(const char *user);
int identity_exists(const char *user);
int conv_member(const char *conv, const char *user, int64_t *from_pos);
int conv_members(const char *conv, char ***out);
void free_list(char **v, int n);
int msg_visible(const char *uuid, const char *viewer, char conv[37], int64_t *pos);
int content_visible(const char *uuid, const char *user);
int conv_last_message(const char *conv, const char *viewer, int64_t from, char out[37]);
int64_t conv_unread(const char *conv, const char *viewer, int64_t from);
void conv_unread_recount(const char *conv, const char *viewer);
/* A receipt's type: 1 for "delivery", 2 for "read", 0 for anything else. */
int receipt_level(const jv *type);
#endif
