/*
 * lclient.h - what other binding files may know of the client userdata:
 * its engine, for the transport binding.
 */
#ifndef LAYER_LCLIENT_H
#define LAYER_LCLIENT_H

#include "compat.h"
#include "session.h"

LAYER_HIDDEN_BEGIN

/* The engine of the client userdata at idx (raises if closed or not one). */
ls_session *lclient_session(lua_State *L, int idx);

/* Whether the value at idx is a client userdata that is not closed. */
int lclient_is_open(lua_State *L, int idx);

LAYER_HIDDEN_END

#endif
