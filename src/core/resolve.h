/*
 * resolve.h - one hostname lookup off the caller's thread (for ws.c: lws
 * 4.1.6 on this build resolves with a blocking getaddrinfo, so we hand it a
 * numeric address instead).
 *
 * A detached thread runs getaddrinfo and touches only its own request; an
 * eventfd becomes readable when the answer is ready. The owner may release
 * the request at any time, even while the lookup still runs.
 */
#ifndef LAYER_RESOLVE_H
#define LAYER_RESOLVE_H

#include "api.h"

#include <stddef.h>

#include "loop.h"

LAYER_BEGIN_DECLS

typedef struct lt_resolve lt_resolve;

/* Starts resolving host (IPv4 preferred); *fd becomes readable when done.
 * NULL on failure (LT_E_OOM, LT_E_SYS: eventfd or pthread_create). */
lt_resolve *lt_resolve_start(const char *host, int *fd, lt_error *err);
/* 1 = done (addr filled, or *err set on failure), 0 = still running. */
int lt_resolve_poll(lt_resolve *r, char *addr, size_t addrlen, const char **err);
/* Drops the owner's reference; remove the fd from epoll first. */
void lt_resolve_release(lt_resolve *r);
/* 1 if host is a numeric IPv4/IPv6 literal (no lookup needed). */
int lt_resolve_is_numeric(const char *host);

LAYER_END_DECLS

#endif
