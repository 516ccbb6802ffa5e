/*
 * lclass.c - layer_new_class, the userdata class helper every binding uses
 * (bindings.h). Its own file so that no binding depends on lmodule.c, which
 * depends on all of them.
 */
#include "bindings.h"

int layer_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    int n = 0;
    if (!luaL_newmetatable(L, name)) return 0;
    while (methods[n].name) n++;
    lua_createtable(L, 0, n);
    layer_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    return 1;
}
