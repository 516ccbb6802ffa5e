/*
 * lobject.h - conversations, messages, identities and announcements as Lua
 * userdata backed by the C cache.
 *
 * An object pins its cache entry, so it is never evicted while Lua holds it
 * and stays readable (obj.deleted == true) after a delete. One id maps to one
 * userdata while it is referenced, so == and table keys work. Fields read
 * through __index as plain Lua values; assignment is refused.
 */
#ifndef LAYER_LOBJECT_H
#define LAYER_LOBJECT_H

#include "cache.h"
#include "compat.h"

LAYER_HIDDEN_BEGIN

/* Shared with the client userdata, which owns the cache. */
typedef struct {
    lc_cache *cache; /* NULL once the client is closed */
} lobject_owner;

/* Push the object for a pinned ref (pins it once more for the userdata),
 * reusing the live userdata of that id. owner_idx is the client userdata,
 * whose uservalue table holds "objects" (weak values) and "methods". */
void lobject_push_ref(lua_State *L, int owner_idx, lobject_owner *owner, lc_ref *ref);
/* Same by id; pushes nil when the id is not cached. */
void lobject_push_id(lua_State *L, int owner_idx, lobject_owner *owner, const char *id, size_t len);
/* The object at idx, or NULL. */
lc_ref *lobject_test(lua_State *L, int idx, lobject_owner **owner);
void lobject_open(lua_State *L);
/* Push the objects' metatable (lobject_open made it): the client keeps it in
 * its table at [1], so that making an object looks nothing up by name. */
void lobject_push_metatable(lua_State *L);
/* Pushes an object type's name ("Conversation"...; "?" for none), from the
 * core's table (pkt_object_type_name) so the names exist once. */
void lobject_push_type_name(lua_State *L, pkt_object_type type);

LAYER_HIDDEN_END

#endif
