/*
 * lconv.h - conversion between Lua values and core JSON values.
 *
 * JSON null is a NULL lightuserdata (the same value as cjson.null); JSON
 * arrays come out as tables with the metatable registered as "layer.array",
 * and tables with that metatable go back in as arrays, empty ones included.
 */
#ifndef LAYER_LCONV_H
#define LAYER_LCONV_H

#include "compat.h"
#include "json.h"
#include "patch.h"

LAYER_HIDDEN_BEGIN

#define LAYER_ARRAY_MT "layer.array"
#define LCONV_MAX_DEPTH 128

/* Push v (and everything below it) as plain Lua values. */
void lconv_push(lua_State *L, const jv *v);
/* t[k] = v for the table on top of the stack; nothing when v is NULL. */
void lconv_setfield(lua_State *L, const char *k, const jv *v);

/* Convert the Lua value at idx into doc; raises a Lua error naming the
 * offending value. Callers keep doc reachable from a userdata with __gc so
 * that the error leaks nothing. */
void lconv_to_jv(lua_State *L, int idx, jv_doc *doc, jv *out);

/* Push the text of JSON value v as a Lua string (raises on OOM). */
void lconv_push_json_text(lua_State *L, const jv *v);

/* Push a change list {{property=, paths=, old=, new=}, ...}; with json_text,
 * old and new are JSON text (so [] and {} stay apart). */
void lconv_push_changes(lua_State *L, const lp_change *changes, size_t n, int json_text);

LAYER_HIDDEN_END

#endif
