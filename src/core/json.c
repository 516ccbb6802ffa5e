/*
 * json.c - arena-backed JSON documents: strict parser, writer, copy, compare.
 *
 * Why our own and not cJSON: a Layer cache holds thousands of small documents,
 * and a cJSON tree costs two to three heap blocks per value (about 5 KB for a
 * 1.3 KB Message, twice what Lua 5.4 tables take). Here a document is a few
 * arena chunks, 16 bytes per value, 24 per member, keys length-prefixed, and
 * immutable values can be shared between versions. docs/design.md has the
 * measurements behind this choice.
 */
#define _GNU_SOURCE
#include "json.h"

#include <locale.h>
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== arena ===== */

typedef struct jv_chunk {
    struct jv_chunk *next;
    size_t cap;
    size_t used;
} jv_chunk;

struct jv_doc {
    jv root;
    int has_root;
    jv_chunk *chunks; /* newest first; allocation happens in chunks */
    size_t heap;      /* bytes malloc'd, headers included */
    size_t used;      /* bytes handed out: what repacking would keep at most */
    size_t grow;      /* size of the next chunk */
    int doubling;     /* grow geometrically (docs built without a size hint) */
};

#define CHUNK_DATA(c) ((char *)((c) + 1))
#define MIN_CHUNK 256
#define MAX_GROW_CHUNK (64u << 10)

static jv_chunk *chunk_new(jv_doc *doc, size_t cap)
{
    jv_chunk *c = malloc(sizeof(jv_chunk) + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = doc->chunks;
    doc->chunks = c;
    doc->heap += sizeof(jv_chunk) + cap;
    return c;
}

/* A doc sized from a hint (parsed text, a repacked cache entry) grows by
 * steps of half that size; one built from nothing grows by 2x. */
static void *arena_grow(jv_doc *doc, size_t n)
{
    size_t cap = doc->grow;
    jv_chunk *c;
    if (cap < n) cap = n;
    if (doc->doubling && doc->grow < MAX_GROW_CHUNK) doc->grow *= 2;
    c = chunk_new(doc, cap);
    if (!c) return NULL;
    c->used = n;
    doc->used += n;
    return CHUNK_DATA(c);
}

/* Inline: the parser allocates once per string and container. */
static inline void *arena_alloc(jv_doc *doc, size_t n, size_t align)
{
    jv_chunk *c = doc->chunks;
    if (c) {
        size_t at = (c->used + (align - 1)) & ~(align - 1);
        if (at <= c->cap && n <= c->cap - at) {
            doc->used += at + n - c->used;
            c->used = at + n;
            return CHUNK_DATA(c) + at;
        }
    }
    return arena_grow(doc, n);
}

void *jv_alloc(jv_doc *doc, size_t bytes) { return arena_alloc(doc, bytes ? bytes : 1, 8); }

jv_doc *jv_doc_new(size_t size_hint)
{
    jv_doc *doc = calloc(1, sizeof *doc);
    if (!doc) return NULL;
    doc->heap = sizeof *doc;
    doc->root = jv_null();
    doc->grow =
        size_hint / 2 < MIN_CHUNK ? MIN_CHUNK : (size_hint / 2 > MAX_GROW_CHUNK ? MAX_GROW_CHUNK : size_hint / 2);
    doc->doubling = size_hint == 0;
    if (size_hint && !chunk_new(doc, size_hint)) {
        free(doc);
        return NULL;
    }
    return doc;
}

void jv_doc_free(jv_doc *doc)
{
    jv_chunk *c, *next;
    if (!doc) return;
    for (c = doc->chunks; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

const jv *jv_root(const jv_doc *doc) { return &doc->root; }
void jv_set_root(jv_doc *doc, const jv *root)
{
    doc->root = *root;
    doc->has_root = 1;
}
size_t jv_doc_bytes(const jv_doc *doc) { return doc->heap; }
size_t jv_doc_used(const jv_doc *doc) { return doc->used; }

/* Repack once garbage outweighs live data: a patched object then costs at
 * most about twice its compact size, and repacks stay rare. */
int jv_doc_wants_repack(const jv_doc *doc, size_t packed_used) { return doc->used > 2 * packed_used + 512; }

/* ===== well-known keys =====
 * Layer objects repeat a few dozen keys; pointing at one static copy saves
 * about 400 bytes per cached Message and the copying while parsing. The
 * table is read-only after its one-time build. */

#define KNOWN_KEY_MAX 28 /* with the length, 32 bytes an entry: has_duplicates indexes by shift */
typedef struct {
    unsigned char len[4]; /* little-endian, right before the text: jv_key_len */
    char text[KNOWN_KEY_MAX];
} known_key;

#define K(s)                                                                                                           \
    {                                                                                                                  \
        {(unsigned char)(sizeof(s) - 1), 0, 0, 0}, s                                                                   \
    }
static const known_key known_keys[] = {
    K("id"),
    K("url"),
    K("type"),
    K("position"),
    K("conversation"),
    K("parts"),
    K("body"),
    K("mime_type"),
    K("encoding"),
    K("content"),
    K("size"),
    K("download_url"),
    K("expiration"),
    K("refresh_url"),
    K("sent_at"),
    K("sender"),
    K("user_id"),
    K("display_name"),
    K("avatar_url"),
    K("first_name"),
    K("last_name"),
    K("email_address"),
    K("phone_number"),
    K("metadata"),
    K("is_unread"),
    K("updated_at"),
    K("recipient_status"),
    K("receipts_url"),
    K("messages_url"),
    K("created_at"),
    K("participants"),
    K("distinct"),
    K("unread_message_count"),
    K("last_message"),
    K("operation"),
    K("property"),
    K("value"),
    K("object"),
    K("data"),
    K("counter"),
    K("timestamp"),
    K("mode"),
    K("from_position"),
    K("request_id"),
    K("method"),
    K("success"),
    K("code"),
    K("message"),
    K("identity_type"),
    K("public_key"),
    K("presence"),
    K("status"),
    K("last_seen_at"),
    K("notification"),
    K("title"),
    K("text"),
    K("sound"),
    K("action"),
    K("identity"),
    K("object_id"),
    K("name"),
    K("is_replaced"),
};
#undef K

#define KNOWN_SLOTS 256
#define KNOWN_COUNT (sizeof known_keys / sizeof known_keys[0])
/* has_duplicates keeps one bit per static key in a uint64_t */
typedef char known_keys_fit_in_a_word[KNOWN_COUNT <= 64 && sizeof(known_key) == 32 ? 1 : -1];
static unsigned char known_slots[KNOWN_SLOTS]; /* index + 1, 0 = empty */
static uint64_t known_heads[KNOWN_COUNT];      /* key_head of each, compared before the text */
static pthread_once_t known_once = PTHREAD_ONCE_INIT;
static int known_ready; /* set, with release order, once known_slots is complete */

/* The first (up to) 8 bytes of a key as a little-endian word, zero above len:
 * one load when avail (readable bytes at s) allows, as in the parser. */
static inline uint64_t key_head(const char *s, size_t len, size_t avail)
{
    uint64_t w = 0;
    size_t i, n = len < 8 ? len : 8;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (avail >= 8) {
        memcpy(&w, s, 8);
        return n == 8 ? w : w & ((1ull << (8 * n)) - 1);
    }
#endif
    for (i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    return w;
}

static inline unsigned known_hash(uint64_t head, size_t len)
{
    return (unsigned)(((head ^ len) * 0x9E3779B97F4A7C15ull) >> 56) & (KNOWN_SLOTS - 1);
}

static void known_init(void)
{
    size_t i;
    for (i = 0; i < KNOWN_COUNT; i++) {
        size_t len = known_keys[i].len[0];
        unsigned h;
        known_heads[i] = key_head(known_keys[i].text, len, len + 1);
        h = known_hash(known_heads[i], len);
        while (known_slots[h]) h = (h + 1) & (KNOWN_SLOTS - 1);
        known_slots[h] = (unsigned char)(i + 1);
    }
    __atomic_store_n(&known_ready, 1, __ATOMIC_RELEASE);
}

/* The static copy of key s (len bytes, avail readable from s), or NULL. */
static const char *known_key_find(const char *s, size_t len, size_t avail)
{
    unsigned h, slot;
    uint64_t head;
    if (len == 0 || len >= KNOWN_KEY_MAX) return NULL;
    if (!__atomic_load_n(&known_ready, __ATOMIC_ACQUIRE)) pthread_once(&known_once, known_init);
    head = key_head(s, len, avail);
    for (h = known_hash(head, len); (slot = known_slots[h]) != 0; h = (h + 1) & (KNOWN_SLOTS - 1)) {
        const known_key *k = &known_keys[slot - 1];
        if (known_heads[slot - 1] == head && k->len[0] == len &&
            (len <= 8 || jv_same_bytes(k->text + 8, s + 8, len - 8)))
            return k->text;
    }
    return NULL;
}

/* Keys already pointing into the static table need no copy. */
static int is_known_key(const char *k)
{
    uintptr_t p = (uintptr_t)k, lo = (uintptr_t)known_keys,
              hi = (uintptr_t)(known_keys + sizeof known_keys / sizeof known_keys[0]);
    return p >= lo && p < hi;
}

static void put_len4(char *p, uint32_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &n, 4); /* one store, which jv_key_len's one load can forward from */
#else
    p[0] = (char)(n & 0xff);
    p[1] = (char)((n >> 8) & 0xff);
    p[2] = (char)((n >> 16) & 0xff);
    p[3] = (char)((n >> 24) & 0xff);
#endif
}

const char *jv_intern(jv_doc *doc, const char *s, size_t len, int key)
{
    char *p;
    if (len > UINT32_MAX - 8) return NULL;
    if (key && (p = (char *)known_key_find(s, len, len)) != NULL) return p;
    p = arena_alloc(doc, len + 1 + (key ? 4 : 0), 1);
    if (!p) return NULL;
    if (key) {
        put_len4(p, (uint32_t)len);
        p += 4;
    }
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int jv_string(jv_doc *doc, jv *out, const char *s, size_t len)
{
    const char *copy = jv_intern(doc, s, len, 0);
    if (!copy) return 0;
    memset(out, 0, sizeof *out);
    out->type = JV_STRING;
    out->len = (uint32_t)len;
    out->u.s = copy;
    return 1;
}

jv jv_number(double d)
{
    jv v;
    memset(&v, 0, sizeof v);
    if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        v.type = JV_INT;
        v.u.i = (int64_t)d;
    } else {
        v.type = JV_REAL;
        v.u.d = d;
    }
    return v;
}

/* ===== copy and compaction ===== */

size_t jv_value_bytes(const jv *v)
{
    size_t n = 0;
    uint32_t i;
    switch (v->type) {
    case JV_STRING: return v->len + 1;
    case JV_ARRAY:
        n = (size_t)v->len * sizeof(jv) + 7; /* alignment slack */
        for (i = 0; i < v->len; i++) {
            const jv *item = &v->u.items[i];
            if (item->type == JV_STRING)
                n += item->len + 1;
            else if (item->type > JV_STRING)
                n += jv_value_bytes(item);
        }
        return n;
    case JV_OBJECT:
        n = (size_t)v->len * sizeof(jv_member) + 7;
        for (i = 0; i < v->len; i++) {
            const char *k = v->u.members[i].key;
            const jv *value = &v->u.members[i].value;
            if (!is_known_key(k)) n += jv_key_len(k) + 5; /* length prefix and NUL */
            if (value->type == JV_STRING)
                n += value->len + 1;
            else if (value->type > JV_STRING)
                n += jv_value_bytes(value);
        }
        return n;
    default: return 0;
    }
}

/* A string or (key=1) a length-prefixed key, copied into doc. */
static inline const char *copy_text(jv_doc *doc, const char *s, uint32_t len, int key)
{
    char *p = arena_alloc(doc, (size_t)len + 1 + (key ? 4 : 0), 1);
    if (!p) return NULL;
    if (key) {
        put_len4(p, len);
        p += 4;
    }
    if (len) memcpy(p, s, len); /* s may be NULL for "" built by hand */
    p[len] = '\0';
    return p;
}

/* The cache copies every created object: scalars are copied in the loops,
 * only containers recurse, and a key that is not a static one cannot become
 * one (jv_intern and the parser already map every static spelling to it). */
int jv_copy_into(jv_doc *doc, jv *dst, const jv *src)
{
    uint32_t i;
    *dst = *src;
    switch (src->type) {
    case JV_STRING: return (dst->u.s = copy_text(doc, src->u.s, src->len, 0)) != NULL;
    case JV_ARRAY: {
        jv *items;
        if (!src->len) {
            dst->u.items = NULL;
            return 1;
        }
        items = arena_alloc(doc, (size_t)src->len * sizeof(jv), 8);
        if (!items) return 0;
        for (i = 0; i < src->len; i++) {
            const jv *v = &src->u.items[i];
            if (v->type < JV_STRING)
                items[i] = *v;
            else if (!jv_copy_into(doc, &items[i], v))
                return 0;
        }
        dst->u.items = items;
        return 1;
    }
    case JV_OBJECT: {
        jv_member *m;
        if (!src->len) {
            dst->u.members = NULL;
            return 1;
        }
        m = arena_alloc(doc, (size_t)src->len * sizeof(jv_member), 8);
        if (!m) return 0;
        for (i = 0; i < src->len; i++) {
            const char *k = src->u.members[i].key;
            const jv *v = &src->u.members[i].value;
            m[i].key = is_known_key(k) ? k : copy_text(doc, k, jv_key_len(k), 1);
            if (!m[i].key) return 0;
            if (v->type < JV_STRING)
                m[i].value = *v;
            else if (!jv_copy_into(doc, &m[i].value, v))
                return 0;
        }
        dst->u.members = m;
        return 1;
    }
    default: return 1;
    }
}

jv_doc *jv_doc_compact(jv_doc *doc)
{
    jv_doc *fresh = jv_doc_new(jv_value_bytes(&doc->root) + 16);
    jv root;
    if (!fresh) return NULL;
    if (!jv_copy_into(fresh, &root, &doc->root)) {
        jv_doc_free(fresh);
        return NULL;
    }
    jv_set_root(fresh, &root);
    return fresh;
}

/* ===== access ===== */

long jv_member_index(const jv *obj, const char *key, size_t klen)
{
    uint32_t i;
    if (!obj || obj->type != JV_OBJECT) return -1;
    for (i = 0; i < obj->len; i++) {
        const char *k = obj->u.members[i].key;
        /* ids share long prefixes (layer:///identities/...): test the end first */
        if (jv_key_len(k) == klen && (klen == 0 || (k[klen - 1] == key[klen - 1] && jv_same_bytes(k, key, klen))))
            return (long)i;
    }
    return -1;
}

const jv *jv_getn(const jv *obj, const char *key, size_t klen)
{
    long at = jv_member_index(obj, key, klen);
    return at < 0 ? NULL : &obj->u.members[at].value;
}

int jv_is_number(const jv *v) { return v->type == JV_INT || v->type == JV_REAL; }

double jv_to_double(const jv *v)
{
    if (v->type == JV_INT) return (double)v->u.i;
    if (v->type == JV_REAL) return v->u.d;
    return 0.0;
}

const char *jv_type_name(int type)
{
    static const char *names[] = {"null", "boolean", "boolean", "number", "number", "string", "array", "object"};
    return (type >= 0 && type <= JV_OBJECT) ? names[type] : "?";
}

static int num_equal(const jv *a, const jv *b)
{
    if (a->type == JV_INT && b->type == JV_INT) return a->u.i == b->u.i;
    if (a->type == JV_REAL && b->type == JV_REAL) return a->u.d == b->u.d;
    {
        const jv *i = a->type == JV_INT ? a : b, *r = a->type == JV_INT ? b : a;
        double d = r->u.d;
        if (d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return 0;
        return (int64_t)d == i->u.i;
    }
}

int jv_strict_equal(const jv *a, const jv *b)
{
    if (jv_is_number(a) && jv_is_number(b)) return num_equal(a, b);
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JV_STRING: return a->len == b->len && jv_same_bytes(a->u.s, b->u.s, a->len);
    case JV_ARRAY: return a->u.items == b->u.items && a->len == b->len;
    case JV_OBJECT: return a->u.members == b->u.members && a->len == b->len;
    default: return 1;
    }
}

int jv_deep_equal(const jv *a, const jv *b)
{
    uint32_t i;
    if (jv_is_number(a) && jv_is_number(b)) return num_equal(a, b);
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JV_STRING: return a->len == b->len && jv_same_bytes(a->u.s, b->u.s, a->len);
    case JV_ARRAY:
        if (a->len != b->len) return 0;
        for (i = 0; i < a->len; i++)
            if (!jv_deep_equal(&a->u.items[i], &b->u.items[i])) return 0;
        return 1;
    case JV_OBJECT:
        if (a->len != b->len) return 0;
        for (i = 0; i < a->len; i++) {
            const char *k = a->u.members[i].key;
            const jv *other = jv_getn(b, k, jv_key_len(k));
            if (!other || !jv_deep_equal(&a->u.members[i].value, other)) return 0;
        }
        return 1;
    default: return 1;
    }
}

/* ===== locale-free numbers ===== */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static double strtod_c(const char *s, char **end)
{
    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale) return strtod_l(s, end, c_locale);
    return strtod(s, end); /* only if newlocale failed: best effort */
}

/* Length of a JSON number at s (0 if none); sets *integral when it has no
 * fraction or exponent. */
static size_t scan_number(const char *s, const char *end, int *integral)
{
    const char *p = s;
    *integral = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        *integral = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return (size_t)(p - s);
}

static int number_value(const char *s, size_t n, int integral, jv *out)
{
    memset(out, 0, sizeof *out);
    if (integral) {
        const char *p = s;
        int neg = 0;
        uint64_t acc = 0;
        if (*p == '-') {
            neg = 1;
            p++;
        }
        for (; p < s + n; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (acc > (UINT64_MAX - d) / 10) goto real;
            acc = acc * 10 + d;
        }
        if (neg ? acc <= (uint64_t)INT64_MAX + 1 : acc <= (uint64_t)INT64_MAX) {
            out->type = JV_INT;
            out->u.i = neg ? (int64_t)(0 - acc) : (int64_t)acc;
            return 1;
        }
    }
real : {
    char small[64], *buf = small, *end;
    if (n >= sizeof small && !(buf = malloc(n + 1))) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    out->type = JV_REAL;
    out->u.d = strtod_c(buf, &end);
    if (buf != small) free(buf);
    return 1;
}
}

int jv_parse_number(const char *s, size_t len, jv *out)
{
    int integral;
    if (scan_number(s, s + len, &integral) != len || !len) return 0;
    return number_value(s, len, integral, out);
}

/* ===== UTF-8 ===== */

/* Length of the valid UTF-8 sequence at p (0 if invalid). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (end - p < 2 || (p[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

int jv_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n;
        if (*p < 0x80) {
            p++;
            continue;
        }
        n = utf8_seq(p, end);
        if (!n) {
            if (bad_offset) *bad_offset = (size_t)(p - (const unsigned char *)s);
            return 0;
        }
        p += n;
    }
    return 1;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ===== parser ===== */

typedef struct {
    const char *start, *p, *end;
    jv_doc *doc;
    jv_error *err;
    uint32_t depth, max_depth;
    jv_member *stack; /* open containers' entries; key NULL for array items */
    size_t sp, scap;
    jv_member inline_stack[64];
} parser;

static int fail(parser *ps, const char *at, const char *fmt, const char *detail)
{
    if (ps->err && !ps->err->message[0]) {
        ps->err->offset = (size_t)(at - ps->start);
        snprintf(ps->err->message, sizeof ps->err->message, fmt, detail, (unsigned long)ps->err->offset);
    }
    return 0;
}

static int fail_oom(parser *ps, const char *at)
{
    if (ps->err && !ps->err->message[0]) ps->err->out_of_memory = 1;
    return fail(ps, at, "%sout of memory at byte %lu", "");
}

static void skip_ws(parser *ps)
{
    const char *p = ps->p, *end = ps->end;
    /* frames rarely hold whitespace: one test for the usual next byte */
    if (p < end && (unsigned char)*p > ' ') return;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

/* Consume c, after any blanks; 0 (blanks skipped) if something else comes.
 * The usual case, c right there, costs one test. */
static inline int eat(parser *ps, char c)
{
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

static int push_entry(parser *ps, const char *key, const jv *v)
{
    if (ps->sp == ps->scap) {
        size_t ncap = ps->scap * 2;
        jv_member *ns;
        if (ps->stack == ps->inline_stack) {
            ns = malloc(ncap * sizeof *ns);
            if (ns) memcpy(ns, ps->stack, ps->sp * sizeof *ns);
        } else {
            ns = realloc(ps->stack, ncap * sizeof *ns);
        }
        if (!ns) return fail_oom(ps, ps->p);
        ps->stack = ns;
        ps->scap = ncap;
    }
    {
        /* Field by field: *v was just written by narrower stores, and one
         * 16-byte load of it would stall until they retire. */
        jv_member *m = &ps->stack[ps->sp++];
        m->key = key;
        m->value.type = v->type;
        memset(m->value.spare, 0, sizeof m->value.spare);
        m->value.len = v->len;
        m->value.u = v->u;
    }
    return 1;
}

static uint32_t hex4(const char *p)
{
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0xFFFFFFFFu;
    }
    return v;
}

/* Parse a string starting at the opening quote. as_key: 0 a value, 1 a key,
 * 2 a key known not to be a static one (key_fast looked). */
/* Write the validated string body..q with its escapes decoded into dst;
 * returns the end written, or NULL (failed) on an unpaired surrogate. Out of
 * line: escapes are rare in Layer's traffic. */
static char *unescape(parser *ps, const char *body, const char *q, char *dst)
{
    const char *r = body;
    char *w = dst;
    while (r < q) {
        if (*r != '\\') {
            *w++ = *r++;
            continue;
        }
        r++;
        switch (*r) {
        case 'b':
            *w++ = '\b';
            r++;
            break;
        case 'f':
            *w++ = '\f';
            r++;
            break;
        case 'n':
            *w++ = '\n';
            r++;
            break;
        case 'r':
            *w++ = '\r';
            r++;
            break;
        case 't':
            *w++ = '\t';
            r++;
            break;
        case 'u': {
            uint32_t cp = hex4(r + 1);
            r += 5;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (q - r < 6 || r[0] != '\\' || r[1] != 'u' || (lo = hex4(r + 2)) < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, r - 6, "%sunpaired surrogate in \\u escape at byte %lu", "");
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                r += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(ps, r - 6, "%sunpaired surrogate in \\u escape at byte %lu", "");
                return NULL;
            }
            w += utf8_put(w, cp);
            break;
        }
        default: *w++ = *r++; break; /* " \ / */
        }
    }
    return w;
}

static int parse_string(parser *ps, int as_key, const char **out, uint32_t *out_len)
{
    const char *q = ps->p + 1, *end = ps->end, *body = q;
    int escapes = 0;
    char *dst, *w;
    /* pass 1: find the end and validate */
    for (;;) {
        unsigned char c;
#ifdef __SSE2__
        /* 16 plain ASCII bytes at a time (SSE2 is part of x86-64): the mask
         * has a bit for each quote, backslash, control or high-bit byte */
        while (end - q >= 16) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
            const __m128i special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F)));
            unsigned mask = (unsigned)_mm_movemask_epi8(special) | (unsigned)_mm_movemask_epi8(v);
            if (mask) {
                q += __builtin_ctz(mask);
                goto special;
            }
            q += 16;
        }
#endif
        /* 8 plain ASCII bytes at a time: no quote, backslash, control or high bit */
        while (end - q >= 8) {
            uint64_t word, flags;
            memcpy(&word, q, 8);
            /* Never misses a byte; may flag plain bytes above the first special one (borrows run
             * upwards), so on little-endian the lowest flag is exact and q can jump to it. */
            flags = ((word - 0x2020202020202020ull) | word | ((word ^ 0x2222222222222222ull) - 0x0101010101010101ull) |
                     ((word ^ 0x5C5C5C5C5C5C5C5Cull) - 0x0101010101010101ull)) &
                    0x8080808080808080ull;
            if (flags) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                q += __builtin_ctzll(flags) >> 3;
#endif
                break;
            }
            q += 8;
        }
        if (q >= end) return fail(ps, ps->p, "%sunterminated string starting at byte %lu", "");
#ifdef __SSE2__
    special:
#endif
        c = (unsigned char)*q;
        if (c == '"') break;
        if (c == '\\') {
            escapes = 1;
            q++;
            if (q >= end) return fail(ps, q, "%sunterminated string at byte %lu", "");
            if (*q == 'u') {
                if (end - q < 5 || hex4(q + 1) == 0xFFFFFFFFu)
                    return fail(ps, q - 1, "%sinvalid \\u escape at byte %lu", "");
                q += 5;
            } else if (strchr("\"\\/bfnrt", *q) && *q) {
                q++;
            } else {
                return fail(ps, q - 1, "%sinvalid escape in string at byte %lu", "");
            }
            continue;
        }
        if (c < 0x20) return fail(ps, q, "%sunescaped control character in string at byte %lu", "");
        if (c < 0x80) {
            q++;
            continue;
        }
        {
            size_t n = utf8_seq((const unsigned char *)q, (const unsigned char *)end);
            if (!n) return fail(ps, q, "%sinvalid UTF-8 in string at byte %lu", "");
            q += n;
        }
    }
    if ((size_t)(q - body) > UINT32_MAX - 8) return fail(ps, body, "%sstring too long at byte %lu", "");
    if (as_key == 1 && !escapes) {
        const char *known = known_key_find(body, (size_t)(q - body), (size_t)(end - body));
        if (known) {
            *out = known;
            *out_len = (uint32_t)(q - body);
            ps->p = q + 1;
            return 1;
        }
    }
    dst = arena_alloc(ps->doc, (size_t)(q - body) + 1 + (as_key ? 4 : 0), 1);
    if (!dst) return fail_oom(ps, body);
    if (as_key) dst += 4;
    if (!escapes) {
        memcpy(dst, body, (size_t)(q - body));
        w = dst + (q - body);
    } else if (!(w = unescape(ps, body, q, dst))) {
        return 0;
    }
    *w = '\0';
    if (escapes) { /* give back what unescaping saved */
        ps->doc->chunks->used -= (size_t)((dst + (q - body)) - w);
        ps->doc->used -= (size_t)((dst + (q - body)) - w);
    }
    if (as_key && escapes) {
        /* "i\u0064" is "id": parsed keys equal to a static key are always that
         * pointer, which lets has_duplicates tell static keys apart by address */
        const char *known = known_key_find(dst, (size_t)(w - dst), (size_t)(w - dst));
        if (known) {
            ps->doc->chunks->used -= (size_t)(w - dst) + 5;
            ps->doc->used -= (size_t)(w - dst) + 5;
            *out = known;
            *out_len = (uint32_t)(w - dst);
            ps->p = q + 1;
            return 1;
        }
    }
    if (as_key) put_len4(dst - 4, (uint32_t)(w - dst));
    *out = dst;
    *out_len = (uint32_t)(w - dst);
    ps->p = q + 1;
    return 1;
}

static int parse_value(parser *ps, jv *out);

#ifdef __SSE2__
/* Most keys are static ones shorter than 16 bytes: one load finds the closing
 * quote and gives the first word, one compare checks the rest. Returns the
 * static key and moves past it, or NULL (then *looked says whether the lookup
 * ran and failed, so parse_string need not repeat it). */
static inline const char *key_fast(parser *ps, int *looked)
{
    const char *p = ps->p + 1;
    __m128i v, t;
    unsigned mask, len, h, slot;
    uint64_t head;
    *looked = 0;
    if (ps->end - p < 16) return NULL;
    v = _mm_loadu_si128((const __m128i *)(const void *)p);
    mask = (unsigned)_mm_movemask_epi8(
               _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                            _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F)))) |
           (unsigned)_mm_movemask_epi8(v);
    if (!mask) return NULL; /* 16 plain bytes or more: the general path */
    len = (unsigned)__builtin_ctz(mask);
    if (p[len] != '"' || len == 0) return NULL; /* escapes, controls, UTF-8 */
    if (!__atomic_load_n(&known_ready, __ATOMIC_ACQUIRE)) pthread_once(&known_once, known_init);
    memcpy(&head, p, 8);
    if (len < 8) head &= (1ull << (8 * len)) - 1;
    *looked = 1;
    for (h = known_hash(head, len); (slot = known_slots[h]) != 0; h = (h + 1) & (KNOWN_SLOTS - 1)) {
        const known_key *k = &known_keys[slot - 1];
        if (known_heads[slot - 1] != head || k->len[0] != len) continue;
        if (len > 8) { /* text is zero-padded to KNOWN_KEY_MAX: a 16-byte load stays inside */
            unsigned want = (1u << len) - 1;
            t = _mm_loadu_si128((const __m128i *)(const void *)k->text);
            if (((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, t)) & want) != want) continue;
        }
        ps->p = p + len + 1;
        return k->text;
    }
    return NULL;
}
#endif

#ifdef __SSE2__
/* A value string shorter than 16 bytes ("read", "text/plain"), with room for
 * a 16-byte store in the arena's chunk: one load, one store, no call. Returns
 * 0 for anything else, which the general path takes. */
static inline int string_fast(parser *ps, jv *out)
{
    const char *p = ps->p + 1;
    jv_chunk *c = ps->doc->chunks;
    __m128i v;
    unsigned mask, len;
    char *dst;
    if (ps->end - p < 16 || !c || c->cap - c->used < 16) return 0;
    v = _mm_loadu_si128((const __m128i *)(const void *)p);
    mask = (unsigned)_mm_movemask_epi8(
               _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                            _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F)))) |
           (unsigned)_mm_movemask_epi8(v);
    if (!mask) return 0;
    len = (unsigned)__builtin_ctz(mask);
    if (p[len] != '"') return 0;
    dst = CHUNK_DATA(c) + c->used;
    _mm_storeu_si128((__m128i *)(void *)dst, v); /* the bytes past len land in free space */
    dst[len] = '\0';
    c->used += len + 1;
    ps->doc->used += len + 1;
    out->type = JV_STRING;
    out->len = len;
    out->u.s = dst;
    ps->p = p + len + 1;
    return 1;
}
#endif

/* JSON.parse keeps the last of duplicate keys, at the first one's place. */
static uint32_t dedupe_members(jv_member *m, uint32_t n)
{
    uint32_t i, j, kept = 0;
    for (i = 0; i < n; i++) {
        uint32_t li = jv_key_len(m[i].key);
        int dup = 0;
        for (j = 0; j < kept; j++) {
            if (jv_key_len(m[j].key) == li && memcmp(m[j].key, m[i].key, li) == 0) {
                m[j].value = m[i].value;
                dup = 1;
                break;
            }
        }
        if (!dup) m[kept++] = m[i];
    }
    return kept;
}

/* Hash of a key that is not a static one: ids share long prefixes
 * (layer:///identities/...), so their last 8 bytes and length. */
static inline uint32_t other_key_hash(const char *k, uint32_t len)
{
    uint64_t w = len;
    if (len >= 8) {
        uint64_t tail;
        memcpy(&tail, k + len - 8, 8);
        w ^= tail;
    } else {
        w ^= key_head(k, len, len);
    }
    return (uint32_t)((w * 0x9E3779B97F4A7C15ull) >> 32);
}

static int has_duplicates(const jv_member *m, uint32_t n)
{
    /* Static keys are equal only as the same pointer (parse_string maps even
     * escaped spellings to it): a bit each. The rest are compared among
     * themselves, through a hash set once there are more than a few. */
    uint64_t seen = 0;
    uint32_t i, j, others = 0;
    uint32_t inline_slots[64], *slots = inline_slots;
    size_t cap, mask;
    int dup = 0;
    if (n < 2) return 0;
    for (i = 0; i < n; i++) {
        const char *k = m[i].key;
        if (is_known_key(k)) {
            uint64_t bit = 1ull << (((uintptr_t)k - (uintptr_t)known_keys[0].text) / sizeof(known_key));
            if (seen & bit) return 1;
            seen |= bit;
        } else {
            others++;
        }
    }
    if (others < 2) return 0;
    if (others <= 8) {
        for (i = 1; i < n; i++) {
            const char *ki = m[i].key;
            uint32_t li;
            if (is_known_key(ki)) continue;
            li = jv_key_len(ki);
            for (j = 0; j < i; j++) {
                const char *kj = m[j].key;
                if (jv_key_len(kj) == li && !is_known_key(kj) && jv_same_bytes(ki, kj, li)) return 1;
            }
        }
        return 0;
    }
    for (cap = 64; cap < (size_t)others * 2; cap <<= 1) {}
    mask = cap - 1;
    if (cap > sizeof inline_slots / sizeof inline_slots[0] && !(slots = malloc(cap * sizeof *slots)))
        return 1; /* no memory for the set: dedupe_members does the exact work */
    memset(slots, 0xff, cap * sizeof *slots);
    for (i = 0; i < n && !dup; i++) {
        const char *k = m[i].key;
        uint32_t len;
        size_t at;
        if (is_known_key(k)) continue;
        len = jv_key_len(k);
        for (at = other_key_hash(k, len) & mask; slots[at] != 0xFFFFFFFFu; at = (at + 1) & mask) {
            const char *o = m[slots[at]].key;
            if (jv_key_len(o) == len && jv_same_bytes(o, k, len)) {
                dup = 1;
                break;
            }
        }
        slots[at] = i;
    }
    if (slots != inline_slots) free(slots);
    return dup;
}

static int close_container(parser *ps, size_t base, int is_object, jv *out)
{
    size_t n = ps->sp - base;
    memset(out, 0, sizeof *out);
    if (n > UINT32_MAX) return fail(ps, ps->p, "%scontainer too large at byte %lu", "");
    if (is_object) {
        jv_member *m = NULL;
        uint32_t count = (uint32_t)n;
        if (has_duplicates(ps->stack + base, count)) count = dedupe_members(ps->stack + base, count);
        if (count) {
            m = arena_alloc(ps->doc, count * sizeof *m, 8);
            if (!m) return fail_oom(ps, ps->p);
            memcpy(m, ps->stack + base, count * sizeof *m);
        }
        out->type = JV_OBJECT;
        out->len = count;
        out->u.members = m;
    } else {
        jv *items = NULL;
        size_t i;
        if (n) {
            items = arena_alloc(ps->doc, n * sizeof *items, 8);
            if (!items) return fail_oom(ps, ps->p);
            for (i = 0; i < n; i++) items[i] = ps->stack[base + i].value;
        }
        out->type = JV_ARRAY;
        out->len = (uint32_t)n;
        out->u.items = items;
    }
    ps->sp = base;
    return 1;
}

static int parse_container(parser *ps, jv *out)
{
    int is_object = *ps->p == '{';
    char close = is_object ? '}' : ']';
    size_t base = ps->sp;
    if (++ps->depth > ps->max_depth) return fail(ps, ps->p, "%snesting deeper than the limit at byte %lu", "");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return close_container(ps, base, is_object, out);
    }
    for (;;) {
        const char *key = NULL;
        jv v;
        if (is_object) {
            uint32_t klen;
            int looked = 0;
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, ps->p, "%sexpected a string key at byte %lu", "");
#ifdef __SSE2__
            key = key_fast(ps, &looked);
#endif
            if (!key && !parse_string(ps, looked ? 2 : 1, &key, &klen)) return 0;
            if (!eat(ps, ':')) return fail(ps, ps->p, "%sexpected ':' at byte %lu", "");
            skip_ws(ps);
        }
        if (!parse_value(ps, &v)) return 0;
        if (!push_entry(ps, key, &v)) return 0;
        if (eat(ps, ',')) {
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) { /* eat skipped the blanks */
            ps->p++;
            ps->depth--;
            return close_container(ps, base, is_object, out);
        }
        return fail(ps, ps->p, is_object ? "%sexpected ',' or '}' at byte %lu" : "%sexpected ',' or ']' at byte %lu",
                    "");
    }
}

static int parse_value(parser *ps, jv *out)
{
    const char *p = ps->p;
    memset(out, 0, sizeof *out);
    if (p >= ps->end) return fail(ps, p, "%sunexpected end of input at byte %lu", "");
    switch (*p) {
    case '{':
    case '[': return parse_container(ps, out);
    case '"': {
        const char *s;
        uint32_t n;
#ifdef __SSE2__
        if (string_fast(ps, out)) return 1;
#endif
        if (!parse_string(ps, 0, &s, &n)) return 0;
        out->type = JV_STRING;
        out->len = n;
        out->u.s = s;
        return 1;
    }
    case 't':
        if (ps->end - p >= 4 && memcmp(p, "true", 4) == 0) {
            out->type = JV_TRUE;
            ps->p += 4;
            return 1;
        }
        break;
    case 'f':
        if (ps->end - p >= 5 && memcmp(p, "false", 5) == 0) {
            out->type = JV_FALSE;
            ps->p += 5;
            return 1;
        }
        break;
    case 'n':
        if (ps->end - p >= 4 && memcmp(p, "null", 4) == 0) {
            out->type = JV_NULL;
            ps->p += 4;
            return 1;
        }
        break;
    default: {
        int integral;
        size_t n = scan_number(p, ps->end, &integral);
        if (n) {
            if (!number_value(p, n, integral, out)) return fail_oom(ps, p);
            ps->p += n;
            return 1;
        }
    }
    }
    return fail(ps, p, "%sunexpected character at byte %lu", "");
}

/* Empty doc for reuse: keeps its largest chunk if it can hold `need`. */
void jv_doc_reset(jv_doc *doc, size_t need)
{
    jv_chunk *c, *next, *keep = NULL;
    for (c = doc->chunks; c; c = c->next)
        if (!keep || c->cap > keep->cap) keep = c;
    /* too small, or far larger than needed (one huge frame must not pin memory) */
    if (keep && (keep->cap < need || keep->cap > 4 * need + (64u << 10))) keep = NULL;
    for (c = doc->chunks; c; c = next) {
        next = c->next;
        if (c != keep) {
            doc->heap -= sizeof(jv_chunk) + c->cap;
            free(c);
        }
    }
    doc->chunks = keep;
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    } else {
        /* One chunk of the whole need, which the next frames of up to this
         * size reuse: growing by halves would leave the largest chunk too
         * small for the next frame like this one, and malloc again each time.
         * On no memory the parse grows the doc as it goes. */
        chunk_new(doc, need);
    }
    doc->used = 0;
    doc->root = jv_null();
    doc->has_root = 0;
    doc->grow = need / 2 < MIN_CHUNK ? MIN_CHUNK : (need / 2 > MAX_GROW_CHUNK ? MAX_GROW_CHUNK : need / 2);
    doc->doubling = 0;
}

static int parse_into(jv_doc *doc, const char *text, size_t len, const jv_limits *limits, jv_error *err)
{
    parser ps;
    jv root;
    memset(&ps, 0, offsetof(parser, inline_stack)); /* not the 1.5 KB stack: written before read */
    ps.start = ps.p = text;
    ps.end = text + len;
    ps.doc = doc;
    ps.err = err;
    ps.max_depth = (limits && limits->max_depth) ? limits->max_depth : JV_DEFAULT_MAX_DEPTH;
    ps.stack = ps.inline_stack;
    ps.scap = sizeof ps.inline_stack / sizeof ps.inline_stack[0];
    skip_ws(&ps);
    if (!parse_value(&ps, &root)) goto bad;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, ps.p, "%strailing characters after the JSON value at byte %lu", "");
        goto bad;
    }
    if (ps.stack != ps.inline_stack) free(ps.stack);
    jv_set_root(doc, &root);
    return 1;
bad:
    if (ps.stack != ps.inline_stack) free(ps.stack);
    return 0;
}

static int within_limit(size_t len, const jv_limits *limits, jv_error *err)
{
    if (err) err->message[0] = '\0', err->offset = 0, err->out_of_memory = 0;
    if (limits && limits->max_bytes && len > limits->max_bytes) {
        if (err)
            snprintf(err->message, sizeof err->message, "text of %lu bytes exceeds the limit of %lu bytes",
                     (unsigned long)len, (unsigned long)limits->max_bytes);
        return 0;
    }
    return 1;
}

jv_doc *jv_parse(const char *text, size_t len, const jv_limits *limits, jv_error *err)
{
    jv_doc *doc;
    if (!within_limit(len, limits, err)) return NULL;
    /* Layer objects need about 1.6 times their text in nodes and strings. */
    doc = jv_doc_new(len * 2 + 64);
    if (!doc) {
        if (err) snprintf(err->message, sizeof err->message, "out of memory"), err->out_of_memory = 1;
        return NULL;
    }
    if (parse_into(doc, text, len, limits, err)) return doc;
    jv_doc_free(doc);
    return NULL;
}

int jv_parse_reuse(jv_doc *doc, const char *text, size_t len, const jv_limits *limits, jv_error *err)
{
    if (!within_limit(len, limits, err)) return 0;
    jv_doc_reset(doc, len * 2 + 64);
    return parse_into(doc, text, len, limits, err);
}

/* ===== writer ===== */

void jbuf_init(jbuf *b) { memset(b, 0, sizeof *b); }
void jbuf_free(jbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int jbuf_reserve(jbuf *b, size_t extra)
{
    size_t need;
    char *nd;
    if (b->oom) return 0;
    need = b->len + extra + 1;
    if (need <= b->cap) return 1;
    {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < need) ncap *= 2;
        nd = realloc(b->data, ncap);
        if (!nd) {
            b->oom = 1;
            return 0;
        }
        b->data = nd;
        b->cap = ncap;
    }
    return 1;
}

void jbuf_putn(jbuf *b, const char *s, size_t n)
{
    if (!jbuf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jbuf_puts(jbuf *b, const char *s) { jbuf_putn(b, s, strlen(s)); }
void jbuf_putc(jbuf *b, char c) { jbuf_putn(b, &c, 1); }

void jbuf_string(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;
    if (!jbuf_reserve(b, n + 2)) return;
    jbuf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (i > run) jbuf_putn(b, s + run, i - run);
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            jbuf_putn(b, u, 6);
        }
        if (esc) jbuf_puts(b, esc);
        run = i + 1;
    }
    if (n > run) jbuf_putn(b, s + run, n - run);
    jbuf_putc(b, '"');
}

void jbuf_int(jbuf *b, int64_t i)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0) *--p = '-';
    jbuf_putn(b, p, (size_t)(tmp + sizeof tmp - p));
}

void jbuf_number(jbuf *b, double d)
{
    char tmp[40];
    int prec;
    locale_t old;
    if (!isfinite(d)) {
        jbuf_puts(b, "null");
        return;
    } /* as JSON.stringify */
    if (d == floor(d) && fabs(d) < 1e17) {
        jbuf_int(b, (int64_t)d);
        return;
    }
    pthread_once(&c_locale_once, c_locale_init);
    old = c_locale ? uselocale(c_locale) : (locale_t)0;
    for (prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod_c(tmp, NULL) == d) break;
    }
    if (c_locale) uselocale(old);
    {
        /* JavaScript writes exponents without leading zeros: 2.5e-7, not 2.5e-07 */
        char *e = strchr(tmp, 'e');
        if (e) {
            char *digits = e + 1, *first;
            if (*digits == '+' || *digits == '-') digits++;
            first = digits;
            while (*first == '0' && first[1]) first++;
            if (first != digits) memmove(digits, first, strlen(first) + 1);
        }
    }
    jbuf_puts(b, tmp);
}

void jv_write(jbuf *b, const jv *v)
{
    uint32_t i;
    switch (v->type) {
    case JV_NULL: jbuf_putn(b, "null", 4); break;
    case JV_TRUE: jbuf_putn(b, "true", 4); break;
    case JV_FALSE: jbuf_putn(b, "false", 5); break;
    case JV_INT: jbuf_int(b, v->u.i); break;
    case JV_REAL: jbuf_number(b, v->u.d); break;
    case JV_STRING: jbuf_string(b, v->u.s, v->len); break;
    case JV_ARRAY:
        jbuf_putc(b, '[');
        for (i = 0; i < v->len; i++) {
            if (i) jbuf_putc(b, ',');
            jv_write(b, &v->u.items[i]);
        }
        jbuf_putc(b, ']');
        break;
    case JV_OBJECT:
        jbuf_putc(b, '{');
        for (i = 0; i < v->len; i++) {
            const char *k = v->u.members[i].key;
            if (i) jbuf_putc(b, ',');
            jbuf_string(b, k, jv_key_len(k));
            jbuf_putc(b, ':');
            jv_write(b, &v->u.members[i].value);
        }
        jbuf_putc(b, '}');
        break;
    }
}
