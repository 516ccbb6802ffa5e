/*
 * lloop.h - what the transport binding may know of the loop userdata
 * (lloop.c): the hub it wraps.
 */
#ifndef LAYER_LLOOP_H
#define LAYER_LLOOP_H

#include "compat.h"
#include "driver.h"

LAYER_HIDDEN_BEGIN

/* The hub of the loop userdata at idx (raises if closed or not one). */
ld_hub *lloop_hub(lua_State *L, int idx);

LAYER_HIDDEN_END

#endif
