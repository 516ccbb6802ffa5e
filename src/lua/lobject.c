/* lobject.c - cache-backed object userdata (see lobject.h). */
#include "bindings.h"
#include "lobject.h"

#include "lconv.h"

#include <string.h>

#define OBJECT_MT "layer.object"

typedef struct {
    lc_ref *ref;
    lobject_owner *owner;
} lobject;

void lobject_push_type_name(lua_State *L, pkt_object_type type)
{
    const char *name = pkt_object_type_name(type);
    lua_pushstring(L, name ? name : "?");
}

lc_ref *lobject_test(lua_State *L, int idx, lobject_owner **owner)
{
    lobject *o = (lobject *)layer_testudata(L, idx, OBJECT_MT);
    if (!o || !o->owner->cache) return NULL;
    if (owner) *owner = o->owner;
    return o->ref;
}

/* The object at 1 for l_index, whose upvalue 1 is the objects' metatable:
 * compared by identity, not looked up by name on every field read. */
static lobject *check_live_index(lua_State *L)
{
    lobject *o = (lobject *)lua_touserdata(L, 1);
    if (o && lua_getmetatable(L, 1) && lua_rawequal(L, -1, lua_upvalueindex(1)))
        lua_pop(L, 1);
    else
        o = (lobject *)luaL_checkudata(L, 1, OBJECT_MT); /* raises the usual message */
    if (!o->owner->cache) luaL_error(L, "the client of this object is closed");
    return o;
}

static lobject *check_live(lua_State *L, int idx)
{
    lobject *o = (lobject *)luaL_checkudata(L, idx, OBJECT_MT);
    if (!o->owner->cache) luaL_error(L, "the client of this object is closed");
    return o;
}

/* An object's uservalue is its client's table ({client=, objects=, methods=}):
 * a table, because on Lua 5.1 the uservalue is the environment. */
static void push_owner_table(lua_State *L, int idx) { layer_getuservalue(L, idx); }

/* The identity map is keyed by the pinned entry itself: one entry is one
 * object (a deleted and re-created id gets a new entry, so a new userdata),
 * and a light userdata key costs no allocation, unlike a long id string. */
void lobject_push_ref(lua_State *L, int owner_idx, lobject_owner *owner, lc_ref *ref)
{
    lobject *o;
    int objects;
    if (owner_idx < 0) owner_idx = lua_gettop(L) + owner_idx + 1;
    layer_getuservalue(L, owner_idx);
    lua_getfield(L, -1, "objects");
    objects = lua_gettop(L);
    lua_pushlightuserdata(L, ref);
    lua_rawget(L, objects);
    o = (lobject *)lua_touserdata(L, -1); /* only this function stores there: an object or nil */
    if (o && o->ref == ref) {             /* the live userdata of this very entry */
        lua_replace(L, objects - 1);
        lua_settop(L, objects - 1);
        return;
    }
    lua_pop(L, 1);
    o = (lobject *)layer_newuserdata(L, sizeof *o);
    o->ref = NULL;
    o->owner = owner;
    lua_rawgeti(L, objects - 1, 1);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, objects - 1); /* the client's table keeps the client alive */
    layer_setuservalue(L, -2);
    lc_pin_again(ref);
    o->ref = ref;
    lua_pushlightuserdata(L, ref);
    lua_pushvalue(L, -2);
    lua_rawset(L, objects);
    lua_replace(L, objects - 1);
    lua_settop(L, objects - 1);
}

void lobject_push_id(lua_State *L, int owner_idx, lobject_owner *owner, const char *id, size_t len)
{
    lc_ref *ref = lc_pin(owner->cache, id, len);
    if (!ref) {
        lua_pushnil(L);
        return;
    }
    lobject_push_ref(L, owner_idx, owner, ref);
    lc_unpin(owner->cache, ref); /* the userdata holds its own pin */
}

/* A field holding {id=...} or an id string, as an object when it is cached. */
static int push_linked(lua_State *L, lobject *o, const jv *v)
{
    const jv *id = v->type == JV_OBJECT ? jv_get(v, "id") : v;
    if (!id || id->type != JV_STRING || !lc_get(o->owner->cache, id->u.s, id->len)) return 0;
    push_owner_table(L, 1);
    lua_getfield(L, -1, "client");
    lobject_push_id(L, -1, o->owner, id->u.s, id->len);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 1;
}

/* A linked object that is not cached yet: its {id, url} table gets the metatable the
 * Lua layer installed as "<Type>Ref", so its methods work at once (send needs only
 * the id) and its other fields are looked up when read. */
static void give_reference_methods(lua_State *L, const char *ref_name)
{
    int ref = lua_gettop(L);
    if (!lua_istable(L, ref)) return;
    push_owner_table(L, 1);
    lua_getfield(L, -1, "methods");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, ref_name);
        if (lua_istable(L, -1)) lua_setmetatable(L, ref);
    }
    lua_settop(L, ref);
}

/* Message parts get the "Part" metatable the Lua layer installed (download()). */
static void give_parts_methods(lua_State *L)
{
    int parts = lua_gettop(L), i, n = (int)layer_rawlen(L, parts);
    push_owner_table(L, 1);
    lua_getfield(L, -1, "methods");
    if (!lua_istable(L, -1)) {
        lua_settop(L, parts);
        return;
    }
    lua_getfield(L, -1, "Part");
    if (lua_istable(L, -1)) {
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, parts, i);
            if (lua_istable(L, -1)) {
                lua_pushvalue(L, -2);
                lua_setmetatable(L, -2);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, parts);
}

/* A conversation's participants: the cached Identity for each one the cache
 * holds (so names follow Identity patches), the plain {id, user_id} otherwise. */
static void push_participants(lua_State *L, lobject *o, const jv *list)
{
    size_t i;
    lua_createtable(L, (int)list->len, 0);
    for (i = 0; i < list->len; i++) {
        const jv *p = &list->u.items[i];
        if (!push_linked(L, o, p)) lconv_push(L, p);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* Data fields first (the hot path: handlers read fields), then the two
 * synthetic fields, then the methods the Lua layer installed per type. */
static int l_index(lua_State *L)
{
    lobject *o = check_live_index(L);
    const jv *value = lc_ref_value(o->ref), *field;
    size_t klen;
    const char *key = lua_tolstring(L, 2, &klen);
    pkt_object_type type = lc_ref_type(o->ref);
    if (!key) return 0;
    field = jv_getn(value, key, klen);
    if (field) {
        int linked_conversation = type == OBJ_MESSAGE && klen == 12 && !memcmp(key, "conversation", 12);
        int linked_message = type == OBJ_CONVERSATION && klen == 12 && !memcmp(key, "last_message", 12);
        /* a cached sender is the live Identity: its profile follows Identity patches */
        int linked_sender = type == OBJ_MESSAGE && klen == 6 && !memcmp(key, "sender", 6);
        if ((linked_conversation || linked_message || linked_sender) && push_linked(L, o, field)) return 1;
        if (type == OBJ_CONVERSATION && field->type == JV_ARRAY && klen == 12 && !memcmp(key, "participants", 12)) {
            push_participants(L, o, field);
            return 1;
        }
        lconv_push(L, field);
        if (linked_conversation || linked_message)
            give_reference_methods(L, linked_conversation ? "ConversationRef" : "MessageRef");
        if (type == OBJ_MESSAGE && field->type == JV_ARRAY && klen == 5 && !memcmp(key, "parts", 5))
            give_parts_methods(L);
        return 1;
    }
    if (klen == 7 && !memcmp(key, "deleted", 7)) {
        lua_pushboolean(L, lc_ref_deleted(o->ref));
        return 1;
    }
    if (klen == 11 && !memcmp(key, "object_type", 11)) {
        lobject_push_type_name(L, type);
        return 1;
    }
    push_owner_table(L, 1);
    lua_getfield(L, -1, "methods");
    if (lua_istable(L, -1)) {
        lobject_push_type_name(L, type);
        lua_gettable(L, -2);
        if (lua_istable(L, -1)) {
            lua_pushvalue(L, 2);
            lua_rawget(L, -2);
            return 1;
        }
    }
    return 0;
}

static int l_newindex(lua_State *L)
{
    return luaL_error(L, "layer objects are read-only: change them through their methods");
}

static int l_gc(lua_State *L)
{
    lobject *o = (lobject *)luaL_checkudata(L, 1, OBJECT_MT);
    if (o->ref && o->owner->cache) lc_unpin(o->owner->cache, o->ref);
    o->ref = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lobject *o = (lobject *)luaL_checkudata(L, 1, OBJECT_MT);
    const jv *id;
    if (!o->owner->cache || !o->ref) {
        lua_pushliteral(L, "layer object (client closed)");
        return 1;
    }
    id = jv_get(lc_ref_value(o->ref), "id");
    lobject_push_type_name(L, lc_ref_type(o->ref));
    lua_pushfstring(L, "%s: %s%s", lua_tostring(L, -1), id && id->type == JV_STRING ? id->u.s : "?",
                    lc_ref_deleted(o->ref) ? " (deleted)" : "");
    return 1;
}

/* layer.core.object_table(obj): a plain snapshot of every field */
static int l_totable(lua_State *L)
{
    lobject *o = check_live(L, 1);
    lconv_push(L, lc_ref_value(o->ref));
    return 1;
}

static int l_tojson(lua_State *L)
{
    lobject *o = check_live(L, 1);
    lconv_push_json_text(L, lc_ref_value(o->ref));
    return 1;
}

void lobject_open(lua_State *L)
{
    if (luaL_newmetatable(L, OBJECT_MT)) {
        lua_pushvalue(L, -1);
        lua_pushcclosure(L, l_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "layer object");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

void lobject_push_metatable(lua_State *L) { luaL_getmetatable(L, OBJECT_MT); }

int layer_l_object_table(lua_State *L) { return l_totable(L); }
int layer_l_object_json(lua_State *L) { return l_tojson(L); }
