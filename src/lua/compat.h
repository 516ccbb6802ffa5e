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
 * (LuaRocks' builtin backend); only luaopen_layer_core is exported. Every
 * binding header wraps its declarations in these, after its includes. */
#if defined(__GNUC__)
#define LAYER_HIDDEN_BEGIN _Pragma("GCC visibility push(hidden)")
#define LAYER_HIDDEN_END _Pragma("GCC visibility pop")
#else
#define LAYER_HIDDEN_BEGIN
#define LAYER_HIDDEN_END
#endif

LAYER_HIDDEN_BEGIN

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

/* The one Lua value a userdata keeps alive (a table on 5.1, where it is the
 * environment). */
#if LUA_VERSION_NUM >= 504
#define layer_setuservalue(L, i) lua_setiuservalue((L), (i), 1)
#define layer_getuservalue(L, i) ((void)lua_getiuservalue((L), (i), 1))
#elif LUA_VERSION_NUM >= 502
#define layer_setuservalue(L, i) lua_setuservalue((L), (i))
#define layer_getuservalue(L, i) lua_getuservalue((L), (i))
#else
#define layer_setuservalue(L, i) lua_setfenv((L), (i))
#define layer_getuservalue(L, i) lua_getfenv((L), (i))
#endif

LAYER_HIDDEN_END

#endif
