/*
 * lpatch.c - layer.patch(object, operations [, options]) over the core engine.
 *
 * object/operations/options.objects may each be Lua values or JSON text; a
 * JSON-text object gives a JSON-text result, so [] and {} survive untouched.
 */
#include "bindings.h"
#include "lconv.h"
#include "patch.h"
#include "scratch.h"

#include <string.h>

/* Read argument idx (JSON text or Lua value) into a new doc owned by s.
 * Returns the doc, or NULL after pushing nil, message. */
static jv_doc *input(lua_State *L, scratch *s, int idx, const char *what, jv *out)
{
    jv_doc *doc;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *text = lua_tolstring(L, idx, &len);
        jv_error err;
        doc = jv_parse(text, len, NULL, &err);
        if (!doc) {
            lua_pushnil(L);
            lua_pushfstring(L, "invalid JSON in %s: %s", what, err.message);
            return NULL;
        }
        scratch_adopt(L, s, doc);
        *out = *jv_root(doc);
        return doc;
    }
    doc = scratch_doc(L, s, 0);
    lconv_to_jv(L, idx, doc, out);
    return doc;
}

static const jv *lookup_in_map(void *ud, const char *id, size_t len) { return jv_getn((const jv *)ud, id, len); }

static void push_value(lua_State *L, const jv *v, int json_mode)
{
    if (!v)
        lua_pushnil(L);
    else if (json_mode)
        lconv_push_json_text(L, v);
    else
        lconv_push(L, v);
}

static int opt_bool(lua_State *L, int opts, const char *name, int dflt)
{
    int v = dflt;
    if (!opts) return dflt;
    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

int layer_l_patch(lua_State *L)
{
    int json_mode = lua_type(L, 1) == LUA_TSTRING;
    int opts = lua_istable(L, 3) ? 3 : 0;
    int objects_idx = 0, objects_is_table = 0;
    scratch *s;
    jv_doc *target;
    jv object, ops, objects;
    lp_options lo;
    lp_error err;
    size_t i;

    luaL_argcheck(L, lua_istable(L, 1) || json_mode, 1, "table or JSON text expected");
    luaL_argcheck(L, lua_istable(L, 2) || lua_type(L, 2) == LUA_TSTRING, 2, "table or JSON text expected");
    luaL_argcheck(L, lua_isnoneornil(L, 3) || opts, 3, "options table expected");
    lua_settop(L, 3);
    memset(&lo, 0, sizeof lo);
    if (opts) {
        lua_getfield(L, opts, "objects"); /* stays at index 4 */
        if (!lua_isnil(L, 4)) {
            luaL_argcheck(L, lua_istable(L, 4) || lua_type(L, 4) == LUA_TSTRING, 3,
                          "options.objects must be a table or JSON text");
            objects_idx = 4;
            objects_is_table = lua_istable(L, 4);
        }
        lo.register_values = opt_bool(L, opts, "register", 0);
        lo.return_ids = opt_bool(L, opts, "return_ids", 0);
    }
    lo.track_changes = opt_bool(L, opts, "changes", 1);
    s = scratch_push(L);

    if (!(target = input(L, s, 1, "object", &object))) return 2;
    if (!input(L, s, 2, "operations", &ops)) return 2;
    if (objects_idx) {
        if (!input(L, s, objects_idx, "options.objects", &objects)) return 2;
        if (objects.type != JV_OBJECT) {
            lua_pushnil(L);
            lua_pushliteral(L, "options.objects must map ids to objects");
            return 2;
        }
        lo.lookup = lookup_in_map;
        lo.lookup_ud = &objects;
    }
    if (!lp_apply(target, &object, &ops, &lo, &s->result, &err)) {
        lua_pushnil(L);
        lua_pushstring(L, err.message);
        if (err.op_index >= 0)
            lua_pushinteger(L, (lua_Integer)err.op_index + 1);
        else
            lua_pushnil(L);
        scratch_release(s);
        return 3;
    }
    s->has_result = 1;

    push_value(L, &s->result.root, json_mode);
    lconv_push_changes(L, s->result.changes, s->result.n_changes, json_mode);
    if (!lo.register_values) {
        scratch_release(s);
        return 2;
    }
    /* Registered values: written into a Lua objects table, and returned. */
    if (json_mode) {
        jv_doc *d = scratch_doc(L, s, 0);
        jv map;
        jv_member *m = jv_alloc(d, s->result.n_registered * sizeof *m);
        if (!m && s->result.n_registered) luaL_error(L, "not enough memory");
        for (i = 0; i < s->result.n_registered; i++) {
            m[i].key = jv_intern(d, s->result.registered[i].id, s->result.registered[i].id_len, 1);
            if (!m[i].key) luaL_error(L, "not enough memory");
            m[i].value = *s->result.registered[i].value;
        }
        memset(&map, 0, sizeof map);
        map.type = JV_OBJECT;
        map.len = (uint32_t)s->result.n_registered;
        map.u.members = m;
        lconv_push_json_text(L, &map);
    } else {
        lua_createtable(L, 0, (int)s->result.n_registered);
        for (i = 0; i < s->result.n_registered; i++) {
            const lp_registration *r = &s->result.registered[i];
            lua_pushlstring(L, r->id, r->id_len);
            lconv_push(L, r->value);
            if (objects_is_table) {
                lua_pushvalue(L, -2);
                lua_pushvalue(L, -2);
                lua_settable(L, objects_idx);
            }
            lua_rawset(L, -3);
        }
    }
    scratch_release(s);
    return 3;
}
