/*
 * lmodule.c - luaopen_layer_core: the C half of require "layer".
 *
 * Registers the data-plane functions (patch, decode_packet, JSON helpers),
 * the null sentinel and the array metatable. lua/layer/init.lua builds the
 * public module on top of this table.
 */
#include "bindings.h"
#include "lconv.h"
#include "scratch.h"

#include <string.h>

#define LAYER_CORE_VERSION "0.1.0"

#if defined(__GNUC__)
#define LAYER_EXPORT __attribute__((visibility("default")))
#else
#define LAYER_EXPORT
#endif
LAYER_EXPORT int luaopen_layer_core(lua_State *L);

static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    jv_error err;
    scratch *s = scratch_push(L);
    jv_doc *doc = jv_parse(text, len, NULL, &err);
    if (!doc) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON: %s", err.message);
        return 2;
    }
    scratch_adopt(L, s, doc);
    lconv_push(L, jv_root(doc));
    scratch_release(s);
    return 1;
}

static int l_json_encode(lua_State *L)
{
    scratch *s;
    jv_doc *doc;
    jv v;
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    s = scratch_push(L);
    doc = scratch_doc(L, s, 0);
    lconv_to_jv(L, 1, doc, &v);
    lconv_push_json_text(L, &v);
    scratch_release(s);
    return 1;
}

/* layer.array([t]): mark t (or a new table) as a JSON array. */
static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    luaL_getmetatable(L, LAYER_ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

static const luaL_Reg functions[] = {
    {"patch", layer_l_patch},
    {"decode_packet", layer_l_decode_packet},
    {"json_decode", l_json_decode},
    {"json_encode", l_json_encode},
    {"array", l_array},
    {"cache", layer_l_cache_new},
    {"client", layer_l_client_new},
    {"interest_bit", layer_l_interest_bit},
    {"object_table", layer_l_object_table},
    {"object_json", layer_l_object_json},
    {"uuid", layer_l_uuid},
    {"transport", layer_l_transport_new},
    {"loop", layer_l_loop_new},
    {"dev_token", layer_l_dev_token},
    {"clock", layer_l_clock},
    {"base64url_decode", layer_l_base64url_decode},
    {"state", layer_l_state_open},
    {NULL, NULL},
};

int luaopen_layer_core(lua_State *L)
{
    scratch_open(L);
    layer_cache_open(L);
    layer_client_open(L);
    layer_transport_open(L);
    layer_loop_open(L);
    layer_state_open(L);
    luaL_newmetatable(L, LAYER_ARRAY_MT);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    layer_newlibtable(L, functions);
    layer_setfuncs(L, functions, 0);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    luaL_getmetatable(L, LAYER_ARRAY_MT);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, LAYER_CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
