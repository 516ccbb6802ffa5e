/* ctx.c - holds the server's one context (configuration, faults): set up by main() before the
 * first request, read through srv() everywhere else. */
#include "srv.h"

static srv_ctx the_ctx;

srv_ctx *srv(void) { return &the_ctx; }
