/*
 * scratch.h - a userdata that owns core allocations during one Lua call.
 *
 * Lua errors longjmp; anything the core allocated for the call is parked
 * here, so the userdata's __gc frees it even when a conversion raises.
 */
#ifndef LAYER_SCRATCH_H
#define LAYER_SCRATCH_H

#include "compat.h"
#include "json.h"
#include "patch.h"

LAYER_HIDDEN_BEGIN

#define SCRATCH_DOCS 6

typedef struct {
    jv_doc *docs[SCRATCH_DOCS];
    lp_result result;
    int has_result;
} scratch;

/* Push a new, empty scratch userdata and return it. */
scratch *scratch_push(lua_State *L);
/* A new doc owned by s (raises on OOM or when s is full). */
jv_doc *scratch_doc(lua_State *L, scratch *s, size_t hint);
/* Take ownership of an existing doc. */
void scratch_adopt(lua_State *L, scratch *s, jv_doc *doc);
/* Free everything now (the userdata stays valid and empty). */
void scratch_release(scratch *s);
void scratch_open(lua_State *L);

LAYER_HIDDEN_END

#endif
