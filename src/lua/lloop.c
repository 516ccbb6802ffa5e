/*
 * lloop.c - layer.core.loop(): one transport loop (driver.h's ld_hub: one
 * epoll set, lws context and curl multi) that many clients' transports share.
 * lua/layer/loop.lua drives it: step() runs one I/O pass, next() hands out
 * the ids of the transports that have work. The hub outlives this userdata
 * while transports are still on it (they hold it, and free it last).
 */
#include "bindings.h"
#include "driver.h"
#include "lloop.h"

#define LOOP_MT "layer.loop_core"

typedef struct {
    ld_hub *h;
} lloop;

static ld_hub *check(lua_State *L)
{
    lloop *l = (lloop *)luaL_checkudata(L, 1, LOOP_MT);
    if (!l->h) luaL_error(L, "attempt to use a closed loop");
    return l->h;
}

ld_hub *lloop_hub(lua_State *L, int idx)
{
    lloop *l = (lloop *)luaL_checkudata(L, idx, LOOP_MT);
    if (!l->h) luaL_error(L, "layer: the loop is closed");
    return l->h;
}

int layer_l_loop_new(lua_State *L)
{
    char err[200];
    lloop *l = (lloop *)layer_newuserdata(L, sizeof *l);
    l->h = NULL;
    luaL_getmetatable(L, LOOP_MT);
    lua_setmetatable(L, -2);
    l->h = ld_hub_new(err, sizeof err);
    if (!l->h) return luaL_error(L, "layer: %s", err);
    return 1;
}

/* loop:step(timeout_seconds): negative waits until there is work */
static int l_step(lua_State *L)
{
    ld_hub *h = check(L);
    double timeout = luaL_optnumber(L, 2, 0);
    char err[200];
    if (ld_hub_step(h, timeout < 0 ? -1 : (int)(timeout * 1000), err, sizeof err) < 0)
        return luaL_error(L, "layer: %s", err);
    return 0;
}

/* The id of the next transport of this round with work, or nothing. */
static int l_next(lua_State *L)
{
    ld_driver *d = ld_hub_next(check(L));
    if (!d) return 0;
    lua_pushnumber(L, (lua_Number)ld_id(d));
    return 1;
}

static int l_skip(lua_State *L)
{
    ld_hub_skip(check(L));
    return 0;
}

static int l_pollfd(lua_State *L)
{
    lua_pushinteger(L, ld_hub_fd(check(L)));
    return 1;
}

static int l_timeout(lua_State *L)
{
    int ms = ld_hub_timeout_ms(check(L));
    if (ms < 0) return 0;
    lua_pushnumber(L, (lua_Number)ms / 1000.0);
    return 1;
}

static int l_wake(lua_State *L)
{
    ld_hub_wake(check(L));
    return 0;
}

static int l_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ld_hub_drivers(check(L)));
    return 1;
}

static int l_closed(lua_State *L)
{
    lloop *l = (lloop *)luaL_checkudata(L, 1, LOOP_MT);
    lua_pushboolean(L, l->h == NULL);
    return 1;
}

/* Also __gc. Transports still on the hub keep it until the last one closes. */
static int l_close(lua_State *L)
{
    lloop *l = (lloop *)luaL_checkudata(L, 1, LOOP_MT);
    ld_hub_release(l->h);
    l->h = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    {"step", l_step}, {"next", l_next},   {"skip", l_skip},     {"pollfd", l_pollfd}, {"timeout", l_timeout},
    {"wake", l_wake}, {"count", l_count}, {"closed", l_closed}, {"close", l_close},   {NULL, NULL},
};

void layer_loop_open(lua_State *L)
{
    layer_new_class(L, LOOP_MT, methods, l_close);
    lua_pop(L, 1);
}
