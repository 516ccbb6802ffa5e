/* fanout.h - the socket registry and change fan-out (fanout.c). */
#ifndef LAYER_SRV_FANOUT_H
#define LAYER_SRV_FANOUT_H
#include "srv.h"

void registry_add(srv_conn *c);
int registry_remove(srv_conn *c);           /* 1 if c was registered; drops its queue */
srv_conn *registry_first(void);             /* every socket: walk ->next */
srv_conn *srv_user_conns(const char *user); /* walk ->hnext, compare ->user */
void conn_wake(srv_conn *c);                /* ask the network layer to flush c */
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
#endif
