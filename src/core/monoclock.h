/*
 * monoclock.h - the monotonic clock, once: the event loop's timers
 * (lt_now_ms), the Lua binding's core.clock() and the C tests read it here.
 * Needs clock_gettime: an including file that builds under strict C defines
 * _POSIX_C_SOURCE (or _GNU_SOURCE) before its first include.
 */
#ifndef LAYER_MONOCLOCK_H
#define LAYER_MONOCLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an arbitrary fixed point; never goes back. */
static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t mono_ms(void) { return mono_ns() / 1000000; }

#endif
