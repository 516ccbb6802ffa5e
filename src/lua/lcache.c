/*
 * lcache.c - layer.cache(): the C object cache as a Lua userdata.
 *
 *   local cache = layer.cache{max_messages_per_conversation=, max_bytes=}
 *   local outcome, id, changes = cache:apply(frame_text [, want_changes])
 *   cache:get(id) -> Lua table | nil      cache:get_json(id) -> text | nil
 *   cache:stats() -> {objects=, conversations=, messages=, bytes=, ...}
 */
#include "bindings.h"
#include "cache.h"
#include "lconv.h"
#include "scratch.h"

#include <string.h>

#define CACHE_MT "layer.cache"

typedef struct {
    lc_cache *cache;
} lcache_box;

static lc_cache *check_cache(lua_State *L)
{
    lcache_box *b = (lcache_box *)luaL_checkudata(L, 1, CACHE_MT);
    if (!b->cache) luaL_error(L, "attempt to use a closed cache");
    return b->cache;
}

static const char *const outcome_names[] = {
    "?", "created", "replaced", "patched", "deleted", "truncated", "ignored", "marked_read",
};

static int l_apply(lua_State *L)
{
    lc_cache *c = check_cache(L);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int want_changes = lua_toboolean(L, 3);
    pkt_error perr;
    lc_error err;
    lc_event ev;
    pkt p;
    int ok;
    if (!pkt_decode(text, len, NULL, &p, &perr)) {
        lua_pushnil(L);
        lua_pushstring(L, perr.message);
        return 2;
    }
    ok = lc_apply(c, &p, want_changes, &ev, &err);
    pkt_free(&p); /* the event points into the cache, not into the packet */
    if (!ok) {
        lua_pushnil(L);
        lua_pushstring(L, err.message);
        return 2;
    }
    lua_pushstring(L, outcome_names[ev.outcome]);
    lua_pushlstring(L, ev.id, ev.id_len);
    if (!want_changes) return 2;
    if (ev.outcome == LC_PATCHED) {
        lconv_push_changes(L, ev.changes, ev.n_changes, 0); /* (raising on OOM, it leaks the hold) */
        lc_release(ev.hold);
    } else if (ev.outcome == LC_TRUNCATED || ev.outcome == LC_MARKED_READ)
        lua_pushinteger(L, (lua_Integer)ev.removed);
    else
        lua_pushnil(L);
    return 3;
}

/* cache:get(id) / cache:get_json(id): the object pushed by push, or nothing */
static int push_object(lua_State *L, void (*push)(lua_State *, const jv *))
{
    lc_cache *c = check_cache(L);
    size_t len;
    const char *id = luaL_checklstring(L, 2, &len);
    const jv *v = lc_get(c, id, len);
    if (!v) return 0;
    push(L, v);
    return 1;
}

static int l_get(lua_State *L) { return push_object(L, lconv_push); }
static int l_get_json(lua_State *L) { return push_object(L, lconv_push_json_text); }

static void set_size(lua_State *L, const char *k, size_t v)
{
    lua_pushinteger(L, (lua_Integer)v); /* a count: an integer on Lua 5.3+ */
    lua_setfield(L, -2, k);
}

void layer_push_cache_stats(lua_State *L, const lc_stats *s)
{
    set_size(L, "objects", s->objects);
    set_size(L, "conversations", s->conversations);
    set_size(L, "messages", s->messages);
    set_size(L, "identities", s->identities);
    set_size(L, "announcements", s->announcements);
    set_size(L, "bytes", s->bytes);
    set_size(L, "pinned", s->pinned);
    set_size(L, "evicted", s->evicted);
}

static int l_stats(lua_State *L)
{
    lc_cache *c = check_cache(L);
    lc_stats s;
    lc_stats_get(c, &s);
    lua_createtable(L, 0, 8);
    layer_push_cache_stats(L, &s);
    return 1;
}

/* cache:compact([max_slots]): idle-time repacking; all of it by default */
static int l_compact(lua_State *L)
{
    lc_cache *c = check_cache(L);
    size_t slots = (size_t)luaL_optnumber(L, 2, (lua_Number)lc_slots(c));
    lua_pushinteger(L, (lua_Integer)lc_maintain(c, slots));
    return 1;
}

static int l_close(lua_State *L)
{
    lcache_box *b = (lcache_box *)luaL_checkudata(L, 1, CACHE_MT);
    lc_free(b->cache);
    b->cache = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lcache_box *b = (lcache_box *)luaL_checkudata(L, 1, CACHE_MT);
    lua_pushfstring(L, "layer.cache: %p%s", (void *)b, b->cache ? "" : " (closed)");
    return 1;
}

int layer_l_cache_new(lua_State *L)
{
    lcache_box *b = (lcache_box *)layer_newuserdata(L, sizeof *b);
    b->cache = NULL;
    luaL_getmetatable(L, CACHE_MT);
    lua_setmetatable(L, -2);
    {
        lc_limits lim;
        memset(&lim, 0, sizeof lim);
        if (lua_istable(L, 1)) {
            lua_getfield(L, 1, "max_messages_per_conversation");
            lim.max_messages_per_conversation = (size_t)luaL_optnumber(L, -1, 0);
            lua_getfield(L, 1, "max_bytes");
            lim.max_bytes = (size_t)luaL_optnumber(L, -1, 0);
            lua_pop(L, 2);
        }
        b->cache = lc_new(&lim);
    }
    if (!b->cache) luaL_error(L, "not enough memory");
    return 1;
}

static const luaL_Reg methods[] = {
    {"apply", l_apply}, {"get", l_get}, {"get_json", l_get_json}, {"stats", l_stats}, {"compact", l_compact},
    {"close", l_close}, {NULL, NULL},
};

void layer_cache_open(lua_State *L)
{
    if (layer_new_class(L, CACHE_MT, methods, l_close)) {
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
