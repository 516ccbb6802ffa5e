/*
 * json.h - compact, immutable JSON documents for the Layer core.
 *
 * A jv_doc owns an arena; every jv value of a tree lives in one doc and is
 * not mutated after it is built, so subtrees can be shared between versions
 * of an object (the patch engine copies only the path it changes, unless its
 * caller owns the only version: lp_options.in_place). Parsing is
 * strict RFC 8259 with UTF-8 validation, size and depth limits, and no
 * dependency on the C locale. No Lua header is included: the local server
 * links this too.
 */
#ifndef LAYER_JSON_H
#define LAYER_JSON_H

#include "api.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

LAYER_BEGIN_DECLS

typedef enum {
    JV_NULL = 0,
    JV_FALSE,
    JV_TRUE,
    JV_INT,    /* integer literal that fits int64 */
    JV_REAL,   /* any other number */
    JV_STRING, /* UTF-8, NUL-terminated, len bytes */
    JV_ARRAY,
    JV_OBJECT
} jv_type;

typedef struct jv jv;
typedef struct jv_member jv_member;

struct jv {
    uint8_t type; /* jv_type */
    uint8_t spare[3];
    uint32_t len; /* string bytes, array items or object members */
    union {
        int64_t i;
        double d;
        const char *s;
        const jv *items;
        const jv_member *members;
    } u;
};

/* Keys carry their length in the 4 bytes before the first character. */
struct jv_member {
    const char *key;
    jv value;
};

typedef struct jv_doc jv_doc;

typedef struct {
    size_t max_bytes;   /* reject texts longer than this (0: no limit) */
    uint32_t max_depth; /* nesting limit (0: JV_DEFAULT_MAX_DEPTH) */
} jv_limits;

#define JV_DEFAULT_MAX_DEPTH 64

typedef struct {
    size_t offset;     /* byte offset of the problem in the input */
    int out_of_memory; /* 1: the text may be fine, an allocation failed */
    char message[160]; /* e.g. "invalid UTF-8 in string at byte 17" */
} jv_error;

/* Parsing. Returns NULL and fills err (if given) on failure. */
jv_doc *jv_parse(const char *text, size_t len, const jv_limits *limits, jv_error *err);
const jv *jv_root(const jv_doc *doc);
void jv_doc_free(jv_doc *doc);
/* Parse into an existing doc, dropping what it held (a per-connection
 * scratch doc saves two allocations per frame). Returns 1, or 0 with err. */
int jv_parse_reuse(jv_doc *doc, const char *text, size_t len, const jv_limits *limits, jv_error *err);
void jv_doc_reset(jv_doc *doc, size_t need);

/* Building. A new doc is empty; values are allocated in its arena. */
jv_doc *jv_doc_new(size_t size_hint);
void jv_set_root(jv_doc *doc, const jv *root);
void *jv_alloc(jv_doc *doc, size_t bytes); /* 8-aligned, NULL on OOM */
/* Copy a string (or key, with key=1) into the doc. */
const char *jv_intern(jv_doc *doc, const char *s, size_t len, int key);
/* Deep-copy a value from anywhere into doc. Returns 0 on OOM. */
int jv_copy_into(jv_doc *doc, jv *dst, const jv *src);
/* Repack the root into one exactly-sized block, dropping garbage. */
jv_doc *jv_doc_compact(jv_doc *doc);
size_t jv_doc_bytes(const jv_doc *doc); /* heap bytes held */
size_t jv_doc_used(const jv_doc *doc);  /* bytes allocated from the arena (live + garbage) */
/* The repacking policy for documents that are patched in place: packed_used
 * is jv_doc_used right after the last jv_doc_compact. */
int jv_doc_wants_repack(const jv_doc *doc, size_t packed_used);
size_t jv_value_bytes(const jv *v); /* bytes a compact copy needs */

/* Scalars. */
static inline jv jv_null(void)
{
    jv v = {JV_NULL, {0}, 0, {0}};
    return v;
}
static inline jv jv_bool(int b)
{
    jv v = {b ? JV_TRUE : JV_FALSE, {0}, 0, {0}};
    return v;
}
static inline jv jv_int(int64_t i)
{
    jv v = {JV_INT, {0}, 0, {0}};
    v.u.i = i;
    return v;
}
jv jv_number(double d);                                         /* JV_INT when d is integral and in range */
int jv_string(jv_doc *doc, jv *out, const char *s, size_t len); /* copies */

/* Access. */
static inline uint32_t jv_key_len(const char *key)
{
    uint32_t n;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&n, key - 4, 4); /* one load: member lookups read this for every key */
#else
    const unsigned char *p = (const unsigned char *)key - 4;
    n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
    return n;
}
/* memcmp(a, b, n) == 0 for the short keys and ids of Layer objects, inline:
 * whole words, the last one overlapping, never reading past n bytes. */
static inline int jv_same_bytes(const void *a, const void *b, size_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    uint64_t u, v;
    uint32_t s, t;
    if (n >= 8) {
        size_t i;
        for (i = 0; i + 8 < n; i += 8) {
            memcpy(&u, x + i, 8);
            memcpy(&v, y + i, 8);
            if (u != v) return 0;
        }
        memcpy(&u, x + n - 8, 8);
        memcpy(&v, y + n - 8, 8);
        return u == v;
    }
    if (n >= 4) {
        memcpy(&s, x, 4);
        memcpy(&t, y, 4);
        if (s != t) return 0;
        memcpy(&s, x + n - 4, 4);
        memcpy(&t, y + n - 4, 4);
        return s == t;
    }
    return n == 0 || (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
}
/* Word-at-a-time hashing for ids and fingerprints. jv_hash_bytes reads the
 * tail as overlapping loads (as wyhash does), which is unambiguous only
 * when the length is mixed in too: jv_hash_id does that. */
static inline uint64_t jv_hash_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static inline uint64_t jv_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    uint64_t w;
    uint32_t lo, hi;
    while (n >= 8) {
        memcpy(&w, c, 8);
        h = jv_hash_word(h, w);
        c += 8;
        n -= 8;
    }
    if (n >= 4) {
        memcpy(&lo, c, 4);
        memcpy(&hi, c + n - 4, 4);
        h = jv_hash_word(h, (uint64_t)lo | (uint64_t)hi << 32);
    } else if (n) {
        h = jv_hash_word(h, (uint64_t)c[0] | (uint64_t)c[n / 2] << 8 | (uint64_t)c[n - 1] << 16);
    }
    return h;
}

static inline uint64_t jv_hash_id(const char *s, size_t n)
{
    return jv_hash_bytes(jv_hash_word(0x243F6A8885A308D3ull, n), s, n);
}

const jv *jv_getn(const jv *obj, const char *key, size_t klen);
/* NUL-terminated key; inline, so a literal's length is known at compile time. */
static inline const jv *jv_get(const jv *obj, const char *key) { return jv_getn(obj, key, strlen(key)); }
/* Position of key among obj's members, or -1 (also when obj is not an object). */
long jv_member_index(const jv *obj, const char *key, size_t klen);
int jv_is_number(const jv *v);
double jv_to_double(const jv *v);
const char *jv_type_name(int type);

/* Equality: strict is JavaScript ===, used by set add/remove on scalars
 * (objects and arrays are never strictly equal to a different node);
 * deep compares structure, ignoring object key order. */
int jv_strict_equal(const jv *a, const jv *b);
int jv_deep_equal(const jv *a, const jv *b);

/* Serialization into a growable buffer. */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} jbuf;

void jbuf_init(jbuf *b);
void jbuf_free(jbuf *b);
void jbuf_putn(jbuf *b, const char *s, size_t n);
void jbuf_puts(jbuf *b, const char *s);
void jbuf_putc(jbuf *b, char c);
void jbuf_string(jbuf *b, const char *s, size_t n); /* quoted, escaped */
void jbuf_number(jbuf *b, double d);                /* shortest round-trip, locale-free */
void jbuf_int(jbuf *b, int64_t i);
void jv_write(jbuf *b, const jv *v);

/* Locale-independent number text -> double; returns 0 if not a JSON number. */
int jv_parse_number(const char *s, size_t len, jv *out);

/* UTF-8 validation of a whole buffer (no surrogates, no overlongs). */
int jv_utf8_valid(const char *s, size_t len, size_t *bad_offset);

LAYER_END_DECLS
#endif
