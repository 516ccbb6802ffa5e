/*
 * lpacket.c - layer.decode_packet(text [, limits]): one WebSocket frame to a
 * typed Lua table, or nil, message.
 */
#include "bindings.h"
#include "lconv.h"
#include "packet.h"
#include "scratch.h"

#include <string.h>

static void set_string(lua_State *L, const char *field, const char *s)
{
    lua_pushstring(L, s);
    lua_setfield(L, -2, field);
}

/* Positions are integers on the wire; keep them integers on 5.3+. */
static void set_number(lua_State *L, const char *field, double d)
{
    if (d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d)
        layer_pushint64(L, (int64_t)d);
    else
        lua_pushnumber(L, (lua_Number)d);
    lua_setfield(L, -2, field);
}

static size_t opt_size(lua_State *L, int idx, const char *name)
{
    size_t v = 0;
    if (!lua_istable(L, idx)) return 0;
    lua_getfield(L, idx, name);
    if (lua_isnumber(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (n < 1) luaL_error(L, "limit %s must be positive", name);
        v = (size_t)n;
    }
    lua_pop(L, 1);
    return v;
}

int layer_l_decode_packet(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    pkt_limits lim;
    pkt_error err;
    pkt p;
    scratch *s;

    luaL_argcheck(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "limits table expected");
    lim.max_bytes = opt_size(L, 2, "max_bytes");
    lim.max_depth = (uint32_t)opt_size(L, 2, "max_depth");
    s = scratch_push(L);
    if (!pkt_decode(text, len, &lim, &p, &err)) {
        lua_pushnil(L);
        lua_pushstring(L, err.message);
        return 2;
    }
    scratch_adopt(L, s, p.doc);

    lua_createtable(L, 0, 10);
    set_string(L, "type", pkt_type_name(p.type));
    if (p.type != PKT_REQUEST) {
        layer_pushint64(L, p.counter);
        lua_setfield(L, -2, "counter");
        lconv_setfield(L, "timestamp", p.timestamp);
        lua_pushnumber(L, (lua_Number)p.time_ms / 1000.0);
        lua_setfield(L, -2, "time");
    }
    switch (p.type) {
    case PKT_CHANGE:
        lconv_setfield(L, "operation", p.change_op_name);
        lconv_setfield(L, "object", p.object);
        set_string(L, "object_type", pkt_object_type_name(p.object_type));
        lconv_setfield(L, "object_id", p.object_id);
        lconv_setfield(L, "data", p.data);
        if (p.change_op == CHG_PATCH) lconv_setfield(L, "operations", p.data);
        if (p.change_op == CHG_DELETE) {
            lconv_setfield(L, "mode", p.mode);
            if (p.has_from_position) {
                set_number(L, "from_position", p.from_position);
            }
        }
        break;
    case PKT_RESPONSE:
        lconv_setfield(L, "request_id", p.request_id);
        lconv_setfield(L, "method", p.method);
        lua_pushboolean(L, p.success);
        lua_setfield(L, -2, "success");
        lconv_setfield(L, "data", p.data);
        lconv_setfield(L, "error", p.error);
        break;
    case PKT_SIGNAL:
        lconv_setfield(L, "signal", p.signal_type);
        lconv_setfield(L, "object", p.object);
        lconv_setfield(L, "object_id", p.object_id);
        lconv_setfield(L, "action", p.action);
        lconv_setfield(L, "sender", p.sender);
        lconv_setfield(L, "data", p.data);
        break;
    case PKT_OPERATION:
        lconv_setfield(L, "method", p.method);
        lconv_setfield(L, "object", p.object);
        lconv_setfield(L, "object_id", p.object_id);
        lconv_setfield(L, "data", p.data);
        set_number(L, "position", p.position);
        lconv_setfield(L, "identity", p.identity);
        break;
    case PKT_REQUEST:
        lconv_setfield(L, "method", p.method);
        lconv_setfield(L, "request_id", p.request_id);
        lconv_setfield(L, "object_id", p.object_id);
        lconv_setfield(L, "data", p.data);
        break;
    }
    scratch_release(s);
    return 1;
}
