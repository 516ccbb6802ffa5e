/* scratch.c - per-call ownership of core allocations (see scratch.h). */
#include "scratch.h"

#include <string.h>

#define SCRATCH_MT "layer.scratch"

void scratch_release(scratch *s)
{
    int i;
    for (i = 0; i < SCRATCH_DOCS; i++) {
        jv_doc_free(s->docs[i]);
        s->docs[i] = NULL;
    }
    if (s->has_result) lp_result_free(&s->result);
    s->has_result = 0;
}

static int scratch_gc(lua_State *L)
{
    scratch_release((scratch *)luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

scratch *scratch_push(lua_State *L)
{
    scratch *s = (scratch *)layer_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SCRATCH_MT);
    lua_setmetatable(L, -2);
    return s;
}

void scratch_adopt(lua_State *L, scratch *s, jv_doc *doc)
{
    int i;
    for (i = 0; i < SCRATCH_DOCS; i++) {
        if (!s->docs[i]) {
            s->docs[i] = doc;
            return;
        }
    }
    jv_doc_free(doc);
    luaL_error(L, "internal error: too many documents in one call");
}

jv_doc *scratch_doc(lua_State *L, scratch *s, size_t hint)
{
    jv_doc *doc = jv_doc_new(hint);
    if (!doc) luaL_error(L, "not enough memory");
    scratch_adopt(L, s, doc);
    return doc;
}

void scratch_open(lua_State *L)
{
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
