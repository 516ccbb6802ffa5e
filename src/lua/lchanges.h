/*
 * lchanges.h - an update event's change list for Lua, its values converted
 * when first read (lchanges.c).
 */
#ifndef LAYER_LCHANGES_H
#define LAYER_LCHANGES_H

#include "cache.h"
#include "compat.h"
#include "json.h"
#include "patch.h"

LAYER_HIDDEN_BEGIN

/* Once, at module load: the metatables and the entry -> values table. */
void lchanges_open(lua_State *L);

/* Push the list of n changes and the holder of their values (call its
 * release() once the handlers are done), taking over what keeps the values
 * (*doc, their copy, or *hold, the cache doc they are in) and the *changes
 * array; all three are set to NULL. */
void lchanges_push(lua_State *L, jv_doc **doc, lc_hold **hold, lp_change **changes, size_t n);

LAYER_HIDDEN_END

#endif
