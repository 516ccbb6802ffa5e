/* actions.h - conversation and message creation, shared by REST and WebSocket (actions.c). */
#ifndef LAYER_SRV_ACTIONS_H
#define LAYER_SRV_ACTIONS_H
#include "srv.h"

void act_conv_create(const char *user, const jv *data, srv_resp *r);
void act_msg_create(const char *user, const char *conv, const jv *data, srv_resp *r);
void update_pkey_pub(const char *conv);
/* Why metadata (json_bytes as compact JSON) exceeds what a conversation may hold, or NULL. */
const char *metadata_over_limits(const jv *meta, size_t json_bytes);
int participant_user_jv(const jv *p, char *out, size_t osz);
#endif
