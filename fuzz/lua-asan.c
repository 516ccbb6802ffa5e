/*
 * lua-asan.c - a minimal `lua script args...` for `make asan`: linked with
 * ASan+UBSan so the sanitized layer/core.so can be loaded without LD_PRELOAD.
 * (A preloaded runtime is inherited by every child the specs start - curl,
 * the local server - and curl hangs under it.) Only what busted needs: the
 * `arg` table, the script's `...`, a traceback on error, lua_close at exit.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int i, status;
    if (argc < 2) {
        fprintf(stderr, "usage: %s script [args]\n", argv[0]);
        return 2;
    }
    L = luaL_newstate();
    if (!L) return 1;
    luaL_openlibs(L);
    /* arg[-1] = interpreter, arg[0] = script, arg[1..] = its arguments */
    lua_createtable(L, argc - 2, 2);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    status = luaL_loadfile(L, argv[1]);
    if (status == LUA_OK) {
        for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc - 2, 0, 1);
    }
    if (status != LUA_OK) fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
