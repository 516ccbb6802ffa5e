/*
 * compat.h - the one place where Lua 5.1/LuaJIT, 5.2, 5.3 and 5.4 differ for us.
 *
 * Shims get a layer_ prefix and hidden visibility: LuaJIT 2.1 exports its own
 * luaL_setfuncs and friends, and a second definition would clash at load time.
 */
#ifndef LAYER_COMPAT_H
#define LAYER_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* Binding internals stay hidden even where the build has no -fvisibility
 * (LuaRocks' builtin backend); only luaopen_layer_core is exported. Placed
 * after the Lua headers, whose functions live in the interpreter. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#if LUA_VERSION_NUM < 502
#define layer_rawlen(L, i) lua_objlen((L), (i))
void layer_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *layer_testudata(lua_State *L, int idx, const char *tname);
#define layer_newlibtable(L, l) lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#else
#define layer_rawlen(L, i) lua_rawlen((L), (i))
#define layer_setfuncs(L, l, n) luaL_setfuncs((L), (l), (n))
#define layer_testudata(L, i, t) luaL_testudata((L), (i), (t))
#define layer_newlibtable(L, l) luaL_newlibtable((L), (l))
#endif

#if LUA_VERSION_NUM >= 503
#define layer_isinteger(L, i) lua_isinteger((L), (i))
#else
#define layer_isinteger(L, i) 0
#endif

/* 64-bit integers: exact on 5.3+, doubles (53 bits) before. */
#if LUA_VERSION_NUM >= 503
#define layer_pushint64(L, v) lua_pushinteger((L), (lua_Integer)(v))
#else
#define layer_pushint64(L, v) lua_pushnumber((L), (lua_Number)(v))
#endif

#if LUA_VERSION_NUM >= 504
#define layer_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define layer_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#endif
