/*
 * fuzz_common.h - invariant checks shared by the libFuzzer targets: a value
 * must serialize, re-parse to an equal value, and serialize identically again.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print what broke and abort, so libFuzzer records the input as a crash. */
static void fz_fail(const char *what, const char *detail, size_t detail_len)
{
    fprintf(stderr, "\n*** invariant violated: %s\n", what);
    if (detail) fprintf(stderr, "*** text: %.*s\n", (int)(detail_len > 2000 ? 2000 : detail_len), detail);
    abort();
}

/* jv_deep_equal, except that a non-finite number in `a` matches null in `b`:
 * the writer turns Infinity into null on purpose (JSON.stringify does), and
 * "1e400" parses to Infinity as in JSON.parse. Nothing else is excused. */
static int fz_equiv(const jv *a, const jv *b)
{
    uint32_t i;
    if (a->type == JV_REAL && !isfinite(a->u.d)) return b->type == JV_NULL;
    if (a->type == JV_ARRAY && b->type == JV_ARRAY) {
        if (a->len != b->len) return 0;
        for (i = 0; i < a->len; i++)
            if (!fz_equiv(&a->u.items[i], &b->u.items[i])) return 0;
        return 1;
    }
    if (a->type == JV_OBJECT && b->type == JV_OBJECT) {
        if (a->len != b->len) return 0;
        for (i = 0; i < a->len; i++) {
            const char *k = a->u.members[i].key;
            const jv *o = jv_getn(b, k, jv_key_len(k));
            if (!o || !fz_equiv(&a->u.members[i].value, o)) return 0;
        }
        return 1;
    }
    return jv_deep_equal(a, b);
}

/* Write v, parse it back (depth limit max_depth), compare, write again and
 * compare the texts byte for byte. */
static void fz_roundtrip(const jv *v, uint32_t max_depth)
{
    jbuf b1, b2;
    jv_limits lim = {0, max_depth};
    jv_error err;
    jv_doc *back;
    jbuf_init(&b1);
    jbuf_init(&b2);
    jv_write(&b1, v);
    if (b1.oom) fz_fail("jv_write ran out of memory", NULL, 0);
    back = jv_parse(b1.data, b1.len, &lim, &err);
    if (!back) {
        fprintf(stderr, "*** parser: %s\n", err.message);
        fz_fail("jv_write produced text that jv_parse rejects", b1.data, b1.len);
    }
    if (!fz_equiv(v, jv_root(back))) fz_fail("re-parsed value differs from the written one", b1.data, b1.len);
    jv_write(&b2, jv_root(back));
    if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)
        fz_fail("writing the re-parsed value gives different text", b2.data, b2.len);
    jv_doc_free(back);
    jbuf_free(&b1);
    jbuf_free(&b2);
}

/* jv_doc_compact must give an equal value in one exactly-sized block. */
static void fz_compact(const jv *v)
{
    jv_doc *tmp = jv_doc_new(0), *packed, *ref;
    size_t hint = jv_value_bytes(v) + 16;
    if (!tmp) abort();
    jv_set_root(tmp, v);
    packed = jv_doc_compact(tmp);
    if (!packed) fz_fail("jv_doc_compact failed", NULL, 0);
    if (!jv_deep_equal(v, jv_root(packed))) fz_fail("compacted value differs", NULL, 0);
    /* A fresh doc with the same hint holds exactly one chunk: compaction
     * must not have needed a second one. */
    ref = jv_doc_new(hint);
    if (!ref) abort();
    if (jv_doc_bytes(packed) != jv_doc_bytes(ref)) fz_fail("jv_value_bytes underestimates the compact size", NULL, 0);
    jv_doc_free(ref);
    jv_doc_free(packed);
    jv_doc_free(tmp);
}

#endif
