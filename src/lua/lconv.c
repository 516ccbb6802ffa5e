/* lconv.c - Lua <-> JSON value conversion (see lconv.h). */
#include "lconv.h"

#include <math.h>
#include <string.h>

void lconv_push(lua_State *L, const jv *v)
{
    uint32_t i;
    luaL_checkstack(L, 3, "JSON value nested too deeply");
    switch (v->type) {
    case JV_NULL: lua_pushlightuserdata(L, NULL); break;
    case JV_FALSE: lua_pushboolean(L, 0); break;
    case JV_TRUE: lua_pushboolean(L, 1); break;
    case JV_INT: layer_pushint64(L, v->u.i); break;
    case JV_REAL: lua_pushnumber(L, (lua_Number)v->u.d); break;
    case JV_STRING: lua_pushlstring(L, v->u.s, v->len); break;
    case JV_ARRAY:
        lua_createtable(L, (int)v->len, 0);
        for (i = 0; i < v->len; i++) {
            lconv_push(L, &v->u.items[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        luaL_getmetatable(L, LAYER_ARRAY_MT);
        lua_setmetatable(L, -2);
        break;
    case JV_OBJECT:
        lua_createtable(L, 0, (int)v->len);
        for (i = 0; i < v->len; i++) {
            const char *k = v->u.members[i].key;
            lua_pushlstring(L, k, jv_key_len(k));
            lconv_push(L, &v->u.members[i].value);
            lua_rawset(L, -3);
        }
        break;
    }
}

static int has_array_mt(lua_State *L, int idx)
{
    int yes;
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, LAYER_ARRAY_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

/* Array length if every key is an integer 1..n, else -1 (or 0 for {}). */
static long sequence_length(lua_State *L, int idx)
{
    long count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -1);
            if (k >= 1 && k == floor(k) && k <= 2147483647.0) {
                if ((long)k > max) max = (long)k;
                count++;
                continue;
            }
        }
        lua_pop(L, 1);
        return -1;
    }
    return count == max ? count : -1;
}

static void to_jv(lua_State *L, int idx, jv_doc *doc, jv *out, int depth);

/* Largest positive integer key of a marked array; other keys are an error. */
static long array_extent(lua_State *L, int idx)
{
    long max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_Number k = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 || k != floor(k) || k > 16777216.0) {
            lua_pop(L, 1);
            luaL_error(L, "a table marked as array has a key that is not an index from 1 to 2^24");
        }
        if ((long)k > max) max = (long)k;
    }
    return max;
}

static void table_to_jv(lua_State *L, int idx, jv_doc *doc, jv *out, int depth)
{
    long n, i;
    memset(out, 0, sizeof *out);
    if (depth > LCONV_MAX_DEPTH) luaL_error(L, "table nested deeper than %d levels (a cycle?)", LCONV_MAX_DEPTH);
    luaL_checkstack(L, 4, "table nested too deeply");
    if (has_array_mt(L, idx)) {
        n = array_extent(L, idx); /* not rawlen: # of a table with holes is any border */
    } else {
        n = sequence_length(L, idx);
        if (n == 0) n = -1; /* a plain {} is an object */
    }
    if (n >= 0) {
        jv *items = jv_alloc(doc, (size_t)n * sizeof(jv));
        if (!items) luaL_error(L, "not enough memory");
        for (i = 0; i < n; i++) {
            lua_rawgeti(L, idx, (int)i + 1);
            if (lua_isnil(L, -1))
                items[i] = jv_null();
            else
                to_jv(L, lua_gettop(L), doc, &items[i], depth + 1);
            lua_pop(L, 1);
        }
        out->type = JV_ARRAY;
        out->len = (uint32_t)n;
        out->u.items = items;
        return;
    }
    {
        size_t count = 0, k = 0;
        jv_member *m;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                const char *tn = luaL_typename(L, -2);
                lua_pop(L, 2);
                luaL_error(L,
                           "cannot convert a table with %s keys to JSON (object keys must be strings; "
                           "mark arrays with layer.array)",
                           tn);
            }
            lua_pop(L, 1);
            count++;
        }
        m = jv_alloc(doc, count * sizeof *m);
        if (!m) luaL_error(L, "not enough memory");
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            size_t klen;
            const char *key = lua_tolstring(L, -2, &klen);
            if (!jv_utf8_valid(key, klen, NULL)) luaL_error(L, "object key is not valid UTF-8");
            m[k].key = jv_intern(doc, key, klen, 1);
            if (!m[k].key) luaL_error(L, "not enough memory");
            to_jv(L, lua_gettop(L), doc, &m[k].value, depth + 1);
            lua_pop(L, 1);
            k++;
        }
        out->type = JV_OBJECT;
        out->len = (uint32_t)count;
        out->u.members = m;
    }
}

static void to_jv(lua_State *L, int idx, jv_doc *doc, jv *out, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: *out = jv_null(); return;
    case LUA_TBOOLEAN: *out = jv_bool(lua_toboolean(L, idx)); return;
    case LUA_TNUMBER:
        if (layer_isinteger(L, idx)) {
            *out = jv_int((int64_t)lua_tointeger(L, idx));
        } else {
            double d = (double)lua_tonumber(L, idx);
            if (d != d || isinf(d)) luaL_error(L, "cannot convert %s to JSON", d != d ? "NaN" : "an infinite number");
            *out = jv_number(d);
        }
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        size_t bad;
        if (!jv_utf8_valid(s, len, &bad)) luaL_error(L, "string is not valid UTF-8 (byte %d)", (int)bad + 1);
        if (!jv_string(doc, out, s, len)) luaL_error(L, "not enough memory");
        return;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            *out = jv_null();
            return;
        }
        break;
    case LUA_TTABLE: table_to_jv(L, idx, doc, out, depth); return;
    }
    luaL_error(L, "cannot convert a %s to JSON", luaL_typename(L, idx));
}

void lconv_to_jv(lua_State *L, int idx, jv_doc *doc, jv *out)
{
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    to_jv(L, idx, doc, out, 0);
}

void lconv_push_json_text(lua_State *L, const jv *v)
{
    jbuf b;
    jbuf_init(&b);
    jv_write(&b, v);
    if (b.oom) {
        jbuf_free(&b);
        luaL_error(L, "not enough memory");
    }
    lua_pushlstring(L, b.data ? b.data : "", b.len);
    jbuf_free(&b);
}

static void push_value(lua_State *L, const jv *v, int json_text)
{
    if (json_text)
        lconv_push_json_text(L, v);
    else
        lconv_push(L, v);
}

void lconv_push_changes(lua_State *L, const lp_change *changes, size_t n, int json_text)
{
    size_t i;
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        const lp_change *ch = &changes[i];
        lua_createtable(L, 0, 4);
        lua_pushlstring(L, ch->property, ch->property_len);
        lua_setfield(L, -2, "property");
        if (ch->paths) {
            lconv_push(L, ch->paths);
            lua_setfield(L, -2, "paths");
        }
        if (ch->old_value) {
            push_value(L, ch->old_value, json_text);
            lua_setfield(L, -2, "old");
        }
        if (ch->new_value) {
            push_value(L, ch->new_value, json_text);
            lua_setfield(L, -2, "new");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
}

void lconv_setfield(lua_State *L, const char *k, const jv *v)
{
    if (!v) return;
    lconv_push(L, v);
    lua_setfield(L, -2, k);
}
