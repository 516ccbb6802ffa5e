/*
 * lchanges.c - the change list of an update event, converted lazily.
 *
 * An update's change list is {{property=, paths=, old=, new=}, ...}. Most
 * handlers read the object, some read which properties changed, few read the
 * old and new values (for a receipt, two 25-entry recipient_status maps). So
 * the list and each entry's property are plain Lua values at once, and paths,
 * old and new are converted when an entry is first indexed for one of them,
 * from the versions of the cached object the patch left behind (held in the
 * cache: no copy), or from the event's copy. They are let go once every
 * entry has been converted, or when the dispatcher releases them after the
 * event's handlers have finished (client.lua): Lua's collector does not see
 * C memory, so leaving it to __gc let RSS grow by twice the values. Reading an unconverted
 * value after the release raises an error that says so.
 */
#include "lchanges.h"
#include "lconv.h"

#include <stdlib.h>
#include <string.h>

#define HOLDER_MT "layer.change_values"
#define ENTRY_MT "layer.change"
#define SOURCES "layer.change_sources" /* entry -> holder, weak keys */

typedef struct {
    jv_doc *doc;   /* the values, copied (or NULL) */
    lc_hold *hold; /* or the cache doc they are in, held */
    lp_change *changes;
    size_t n;
    size_t unread; /* entries not converted yet */
    int released;  /* by the dispatcher, with entries unread */
} holder;

static void holder_free(holder *h)
{
    jv_doc_free(h->doc);
    lc_release(h->hold);
    free(h->changes);
    h->doc = NULL;
    h->hold = NULL;
    h->changes = NULL;
    h->n = h->unread = 0;
}

static int holder_gc(lua_State *L)
{
    holder_free((holder *)lua_touserdata(L, 1));
    return 0;
}

/* values:release(): the event's handlers have finished. */
static int holder_release(lua_State *L)
{
    holder *h = (holder *)luaL_checkudata(L, 1, HOLDER_MT);
    if (h->unread) h->released = 1;
    holder_free(h);
    return 0;
}

/* Convert entry t (index 1) from its change, then forget the source. */
static void convert_entry(lua_State *L, const lp_change *ch)
{
    if (ch->paths) {
        lconv_push(L, ch->paths);
        lua_setfield(L, 1, "paths");
    }
    if (ch->old_value) {
        lconv_push(L, ch->old_value);
        lua_setfield(L, 1, "old");
    }
    if (ch->new_value) {
        lconv_push(L, ch->new_value);
        lua_setfield(L, 1, "new");
    }
}

/* __index(entry, key), upvalue 1 the sources table. Only paths, old and new
 * are lazy; a converted entry answers with rawget and never comes here again
 * (but for an absent old or new, which stays nil). */
static int entry_index(lua_State *L)
{
    size_t klen = 0, plen, i;
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : NULL, *property;
    holder *h;
    if (!key ||
        !((klen == 3 && (!memcmp(key, "old", 3) || !memcmp(key, "new", 3))) || (klen == 5 && !memcmp(key, "paths", 5))))
        return 0;
    lua_pushvalue(L, 1);
    lua_rawget(L, lua_upvalueindex(1));
    h = (holder *)lua_touserdata(L, -1);
    if (h && h->released)
        return luaL_error(L,
                          "the change list's %s values were released when its handlers finished; "
                          "read them in the handler (or copy them there)",
                          key);
    if (!h || !h->changes) return 0; /* converted already */
    lua_getfield(L, 1, "property");
    property = lua_tolstring(L, -1, &plen);
    for (i = 0; property && i < h->n; i++) {
        lp_change *ch = &h->changes[i];
        if (ch->property && ch->property_len == plen && !memcmp(ch->property, property, plen)) {
            convert_entry(L, ch);
            ch->property = NULL; /* converted */
            if (--h->unread == 0) holder_free(h);
            break;
        }
    }
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

void lchanges_open(lua_State *L)
{
    luaL_newmetatable(L, HOLDER_MT);
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, holder_release);
    lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_newtable(L); /* sources */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    luaL_newmetatable(L, ENTRY_MT);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, entry_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SOURCES);
}

void lchanges_push(lua_State *L, jv_doc **doc, lc_hold **hold, lp_change **changes, size_t n)
{
    holder *h = (holder *)lua_newuserdata(L, sizeof *h);
    size_t i;
    int list, sources;
    /* Taken over only now that nothing can fail before the holder frees them. */
    h->doc = *doc;
    h->hold = *hold;
    h->changes = *changes;
    h->n = h->unread = n;
    h->released = 0;
    *doc = NULL;
    *hold = NULL;
    *changes = NULL;
    luaL_getmetatable(L, HOLDER_MT);
    lua_setmetatable(L, -2);
    lua_getfield(L, LUA_REGISTRYINDEX, SOURCES);
    sources = lua_gettop(L);
    lua_createtable(L, (int)n, 0);
    list = lua_gettop(L);
    luaL_getmetatable(L, ENTRY_MT);
    for (i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushlstring(L, h->changes[i].property, h->changes[i].property_len);
        lua_setfield(L, -2, "property");
        lua_pushvalue(L, list + 1);
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_pushvalue(L, sources - 1);
        lua_rawset(L, sources);
        lua_rawseti(L, list, (int)i + 1);
    }
    lua_pop(L, 1);              /* entry metatable */
    lua_insert(L, sources - 1); /* list, holder, sources */
    lua_pop(L, 1);
    if (!n) holder_free(h);
}
