/*
 * lstate.c - layer.core.state(path): the SQLite state file (core/state.h) as
 * a userdata, for lua/layer/state.lua.
 *
 *   local st, err = core.state(path)
 *   st:get(name) -> string | nil          st:put(name, value)
 *   st:begin()  st:commit()  st:rollback()
 *   st:outbox_add(id, method, object_id, data_json)   st:outbox_remove(id)
 *   st:outbox() -> { {id=, method=, object_id=, data=}, ... }   st:close()
 * Failures raise, with the file's name in the message.
 */
#include "bindings.h"
#include "state.h"

#define STATE_MT "layer.state"

typedef struct {
    ls_state *st;
} lstate_box;

static ls_state *check_state(lua_State *L)
{
    lstate_box *b = (lstate_box *)luaL_checkudata(L, 1, STATE_MT);
    if (!b->st) luaL_error(L, "attempt to use a closed state file");
    return b->st;
}

static int check(lua_State *L, int ok, const char *err)
{
    if (!ok) return luaL_error(L, "%s", err);
    return 0;
}

int layer_l_state_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[LS_STATE_ERR_LEN];
    lstate_box *b = (lstate_box *)lua_newuserdata(L, sizeof *b);
    b->st = NULL;
    luaL_getmetatable(L, STATE_MT);
    lua_setmetatable(L, -2);
    if (!(b->st = ls_state_open(path, err))) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

static int l_get(lua_State *L)
{
    ls_state *st = check_state(L);
    char err[LS_STATE_ERR_LEN] = "";
    size_t len;
    const void *v = ls_state_get(st, luaL_checkstring(L, 2), &len, err);
    check(L, !err[0], err);
    if (!v) return 0;
    lua_pushlstring(L, (const char *)v, len);
    return 1;
}

static int l_put(lua_State *L)
{
    ls_state *st = check_state(L);
    char err[LS_STATE_ERR_LEN];
    size_t len;
    const char *v = luaL_checklstring(L, 3, &len);
    return check(L, ls_state_put(st, luaL_checkstring(L, 2), v, len, err), err);
}

static int l_begin(lua_State *L)
{
    char err[LS_STATE_ERR_LEN];
    return check(L, ls_state_begin(check_state(L), err), err);
}

static int l_commit(lua_State *L)
{
    char err[LS_STATE_ERR_LEN];
    return check(L, ls_state_commit(check_state(L), err), err);
}

static int l_rollback(lua_State *L)
{
    ls_state_rollback(check_state(L));
    return 0;
}

static int l_outbox_add(lua_State *L)
{
    ls_state *st = check_state(L);
    char err[LS_STATE_ERR_LEN];
    return check(L,
                 ls_state_outbox_add(st, luaL_checkstring(L, 2), luaL_checkstring(L, 3), luaL_optstring(L, 4, NULL),
                                     luaL_checkstring(L, 5), err),
                 err);
}

static int l_outbox_remove(lua_State *L)
{
    ls_state *st = check_state(L);
    char err[LS_STATE_ERR_LEN];
    return check(L, ls_state_outbox_remove(st, luaL_checkstring(L, 2), err), err);
}

static void set_field(lua_State *L, const char *name, const char *value)
{
    if (!value) return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
}

static int add_row(void *ud, const char *id, const char *method, const char *object_id, const char *data)
{
    lua_State *L = (lua_State *)ud;
    int n = (int)layer_rawlen(L, -1);
    lua_createtable(L, 0, 4);
    set_field(L, "id", id);
    set_field(L, "method", method);
    set_field(L, "object_id", object_id);
    set_field(L, "data", data);
    lua_rawseti(L, -2, n + 1);
    return 1;
}

static int l_outbox(lua_State *L)
{
    ls_state *st = check_state(L);
    char err[LS_STATE_ERR_LEN];
    lua_newtable(L);
    check(L, ls_state_outbox_each(st, add_row, L, err), err);
    return 1;
}

static int l_close(lua_State *L)
{
    lstate_box *b = (lstate_box *)luaL_checkudata(L, 1, STATE_MT);
    ls_state_close(b->st);
    b->st = NULL;
    return 0;
}

static const luaL_Reg methods[] = {
    {"get", l_get},
    {"put", l_put},
    {"begin", l_begin},
    {"commit", l_commit},
    {"rollback", l_rollback},
    {"outbox_add", l_outbox_add},
    {"outbox_remove", l_outbox_remove},
    {"outbox", l_outbox},
    {"close", l_close},
    {NULL, NULL},
};

void layer_state_open(lua_State *L)
{
    layer_new_class(L, STATE_MT, methods, l_close);
    lua_pop(L, 1);
}
