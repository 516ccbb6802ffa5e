/* failalloc.h - allocation failure injection for the C tests: every
 * malloc/calloc/realloc of the test process goes through the wrappers below;
 * fail_at(n) makes the n-th one from now on return NULL, once (-1: never).
 * `live` counts blocks not yet freed, so a run can check it leaked nothing.
 * Include it in one test file per binary: it defines malloc. */
#ifndef LAYER_TEST_FAILALLOC_H
#define LAYER_TEST_FAILALLOC_H

#include <stdlib.h> /* the prototypes the wrappers below define */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long allocs_left = -1; /* -1: never fail */
static long injected;         /* allocations failed so far (none under valgrind, which owns malloc) */

static int should_fail(void)
{
    if (allocs_left < 0) return 0;
    if (allocs_left-- != 0) return 0;
    injected++;
    return 1;
}

/* Blocks allocated and not freed: a run that frees its session must end
 * where it started, or an allocation failure leaked something. */
static long live;

void *malloc(size_t n)
{
    void *p = should_fail() ? NULL : __libc_malloc(n);
    if (p) live++;
    return p;
}
void *calloc(size_t k, size_t n)
{
    void *p = should_fail() ? NULL : __libc_calloc(k, n);
    if (p) live++;
    return p;
}
void *realloc(void *p, size_t n)
{
    void *q;
    if (should_fail()) return NULL;
    q = __libc_realloc(p, n);
    if (q && !p) live++;
    if (!q && p && !n) live--; /* realloc(p, 0) freed p */
    return q;
}
void free(void *p)
{
    if (p) live--;
    __libc_free(p);
}

static void fail_at(long n) { allocs_left = n; }

#endif
