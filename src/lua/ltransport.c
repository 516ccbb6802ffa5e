/*
 * ltransport.c - layer.core.transport(engine, options): the driver (driver.c)
 * as a userdata, with the methods layer.client's loop calls: service, pump,
 * pollfd, wake, timeout, close. It keeps its engine alive and is closed first.
 * With options.loop (a layer.core.loop) the driver sits on that shared hub:
 * service then only hands the hub's inputs to the engine (the loop did the
 * I/O), and settle tells the hub what the engine waits for next.
 */
#include "bindings.h"
#include "driver.h"
#include "lclient.h"
#include "lloop.h"

#include <string.h>

#define TRANSPORT_MT "layer.transport"

typedef struct {
    ld_driver *d;
} ltransport;

static ld_driver *check(lua_State *L)
{
    ltransport *t = (ltransport *)luaL_checkudata(L, 1, TRANSPORT_MT);
    if (!t->d) luaL_error(L, "attempt to use a closed transport");
    return t->d;
}

/* The driver, for methods that reach into the engine: refused once the
 * engine is closed, since the driver would read the session it freed. */
static ld_driver *check_engine(lua_State *L)
{
    ld_driver *d = check(L);
    int open;
    layer_getuservalue(L, 1);
    lua_getfield(L, -1, "engine");
    open = lclient_is_open(L, -1);
    lua_pop(L, 2);
    if (!open) luaL_error(L, "attempt to use a transport whose engine is closed");
    return d;
}

static const char *opt_str(lua_State *L, int t, const char *k)
{
    const char *v;
    lua_getfield(L, t, k);
    v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays referenced by the options table */
    return v;
}

int layer_l_transport_new(lua_State *L)
{
    ls_session *s = lclient_session(L, 1);
    ld_options o;
    ltransport *t;
    char err[200];
    luaL_checktype(L, 2, LUA_TTABLE);
    memset(&o, 0, sizeof o);
    o.url = opt_str(L, 2, "url");
    o.websocket_url = opt_str(L, 2, "websocket_url");
    o.ca_file = opt_str(L, 2, "ca_file");
    o.ca_path = opt_str(L, 2, "ca_path");
    o.proxy = opt_str(L, 2, "proxy");
    lua_getfield(L, 2, "insecure");
    o.insecure = lua_toboolean(L, -1);
    lua_getfield(L, 2, "connect_timeout");
    o.connect_timeout_ms = (long)(luaL_optnumber(L, -1, 15) * 1000);
    lua_getfield(L, 2, "request_timeout");
    o.request_timeout_ms = (long)(luaL_optnumber(L, -1, 60) * 1000);
    lua_pop(L, 3);
    luaL_argcheck(L, o.url != NULL, 2, "url is required");
    lua_getfield(L, 2, "loop");
    if (!lua_isnil(L, -1)) o.hub = lloop_hub(L, lua_gettop(L));
    t = (ltransport *)layer_newuserdata(L, sizeof *t);
    t->d = NULL;
    luaL_getmetatable(L, TRANSPORT_MT);
    lua_setmetatable(L, -2);
    lua_newtable(L); /* keeps the engine (and the loop) alive while the transport borrows them */
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "engine");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "loop");
    layer_setuservalue(L, -2);
    t->d = ld_new(s, &o, err, sizeof err);
    if (!t->d) return luaL_error(L, "layer: %s", err);
    return 1;
}

/* transport:service(client, timeout_seconds) */
static int l_service(lua_State *L)
{
    ld_driver *d = check_engine(L);
    double timeout = luaL_optnumber(L, 3, 0);
    char err[200];
    if (ld_service(d, timeout < 0 ? -1 : (int)(timeout * 1000), err, sizeof err) < 0)
        return luaL_error(L, "layer: %s", err);
    return 0;
}

static int l_pump(lua_State *L)
{
    ld_pump(check_engine(L));
    return 0;
}

static int l_pollfd(lua_State *L)
{
    lua_pushinteger(L, ld_fd(check(L)));
    return 1;
}

/* transport:wake(): a request queued outside step() makes the fd readable,
 * so a host loop waiting on it steps and sends it. */
static int l_wake(lua_State *L)
{
    ld_wake(check(L));
    return 0;
}

static int l_timeout(lua_State *L)
{
    int ms = ld_timeout_ms(check(L));
    if (ms < 0) return 0;
    lua_pushnumber(L, (lua_Number)ms / 1000.0);
    return 1;
}

/* transport:settle(): after its client's step on a shared loop (a no-op on
 * a private one, or once closed). */
static int l_settle(lua_State *L)
{
    ltransport *t = (ltransport *)luaL_checkudata(L, 1, TRANSPORT_MT);
    int open;
    if (!t->d) return 0;
    layer_getuservalue(L, 1);
    lua_getfield(L, -1, "engine");
    open = lclient_is_open(L, -1);
    lua_pop(L, 2);
    if (open) ld_settle(t->d);
    return 0;
}

/* transport:id(): its number on a shared loop, or nil on a private one. */
static int l_id(lua_State *L)
{
    ld_driver *d = check(L);
    if (!ld_shared(d)) return 0;
    lua_pushnumber(L, (lua_Number)ld_id(d));
    return 1;
}

static int l_close(lua_State *L)
{
    ltransport *t = (ltransport *)luaL_checkudata(L, 1, TRANSPORT_MT);
    ld_free(t->d);
    t->d = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    {"service", l_service}, {"pump", l_pump},     {"pollfd", l_pollfd}, {"wake", l_wake}, {"timeout", l_timeout},
    {"close", l_close},     {"settle", l_settle}, {"id", l_id},         {NULL, NULL},
};

void layer_transport_open(lua_State *L)
{
    layer_new_class(L, TRANSPORT_MT, methods, l_close);
    lua_pop(L, 1);
}
