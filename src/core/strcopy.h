/*
 * strcopy.h - copying strings into malloc'd memory: the one copy of these
 * helpers the core's files share, instead of one per file. Binary-safe
 * (str_dupn) and NULL-tolerant (str_dup0), which strdup is not; both return
 * NULL when memory runs out.
 */
#ifndef LAYER_STRCOPY_H
#define LAYER_STRCOPY_H

#include <stdlib.h>
#include <string.h>

/* The first n bytes of s, NUL-terminated (s may hold NULs: binary bodies). */
static inline char *str_dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A copy of s; NULL for NULL. */
static inline char *str_dup0(const char *s) { return s ? str_dupn(s, strlen(s)) : NULL; }

#endif
