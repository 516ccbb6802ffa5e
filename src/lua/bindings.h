/*
 * bindings.h - the Lua-facing entry points each binding file provides to
 * lmodule.c, which assembles them into layer.core.
 */
#ifndef LAYER_BINDINGS_H
#define LAYER_BINDINGS_H

#include "cache.h"
#include "compat.h"

LAYER_HIDDEN_BEGIN

/* A userdata class: registry metatable `name` with the methods as __index and
 * gc as __gc. Leaves the metatable on the stack; 1 if it was created just now
 * (add further metamethods then). lclass.c */
int layer_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

int layer_l_patch(lua_State *L);         /* lpatch.c */
int layer_l_decode_packet(lua_State *L); /* lpacket.c */
int layer_l_cache_new(lua_State *L);     /* lcache.c */
void layer_cache_open(lua_State *L);
/* Set the cache counters (lc_stats) as fields of the table on top. */
void layer_push_cache_stats(lua_State *L, const lc_stats *s);
int layer_l_client_new(lua_State *L); /* lclient.c */
void layer_client_open(lua_State *L);
int layer_l_interest_bit(lua_State *L);
int layer_l_object_table(lua_State *L); /* lobject.c */
int layer_l_object_json(lua_State *L);
int layer_l_transport_new(lua_State *L); /* ltransport.c */
void layer_transport_open(lua_State *L);
int layer_l_loop_new(lua_State *L); /* lloop.c */
void layer_loop_open(lua_State *L);
int layer_l_uuid(lua_State *L); /* ldev.c */
int layer_l_dev_token(lua_State *L);
int layer_l_clock(lua_State *L);
int layer_l_base64url_decode(lua_State *L);
int layer_l_state_open(lua_State *L); /* lstate.c */
void layer_state_open(lua_State *L);

LAYER_HIDDEN_END

#endif
