/* tap.h - tiny TAP helpers shared by the C transport tests (spec/c). */
#ifndef LT_TAP_H
#define LT_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "monoclock.h"

static int tap_n, tap_failed;

#define OK(cond, ...)                                    \
    do {                                                 \
        int ok_ = !!(cond);                              \
        tap_n++;                                         \
        if (!ok_)                                        \
            tap_failed++;                                \
        printf("%sok %d - ", ok_ ? "" : "not ", tap_n);  \
        printf(__VA_ARGS__);                             \
        printf("\n");                                    \
        if (!ok_)                                        \
            printf("#   failed at %s:%d\n", __FILE__, __LINE__); \
        fflush(stdout);                                  \
    } while (0)

#define DIAG(...) (printf("# "), printf(__VA_ARGS__), printf("\n"), fflush(stdout))

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed)
        printf("# %d of %d failed\n", tap_failed, tap_n);
    return tap_failed ? 1 : 0;
}

static inline double tap_now(void) { return (double)mono_ns() / 1e6; } /* ms */

/* Time budgets stretch under valgrind (LT_TEST_SLOW=1), which is ~20x slower. */
static inline double tap_slow(void)
{
    const char *v = getenv("LT_TEST_SLOW");
    return v && *v ? 10.0 : 1.0;
}

/* Every test binary kills itself if it hangs (slower under valgrind). */
static inline void tap_watchdog(unsigned secs)
{
    const char *v = getenv("LT_TEST_SLOW");
    alarm(v && *v ? secs * 4 : secs);
}

#endif
