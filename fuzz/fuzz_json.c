/*
 * fuzz_json.c - libFuzzer target for jv_parse: round trip through jv_write,
 * compaction, and acceptance compared with a small independent validator.
 */
#include "fuzz_common.h"

#include <stdint.h>

/* ===== independent RFC 8259 validator (accept/reject only) ===== */

typedef struct {
    const unsigned char *p, *end;
    int depth;
} vs;

#define VAL_MAX_DEPTH 64 /* same as JV_DEFAULT_MAX_DEPTH */

static void v_ws(vs *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int v_hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 32) >= 'a' && (c | 32) <= 'f') d = (c | 32) - 'a' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* One UTF-8 character by its code point ranges (Unicode table 3-7). */
static int v_utf8(vs *s)
{
    const unsigned char *p = s->p;
    unsigned c = p[0], cp, n, i;
    if (c < 0x80) { s->p++; return 1; }
    if (c >= 0xC0 && c < 0xE0) n = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c < 0xF0) n = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c < 0xF8) n = 3, cp = c & 0x07;
    else return 0;
    if ((size_t)(s->end - p) <= n) return 0;
    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return 0; /* overlong */
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    s->p += n + 1;
    return 1;
}

static int v_string(vs *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') { s->p++; return 1; }
        if (c < 0x20) return 0;
        if (c == '\\') {
            unsigned cp, lo;
            if (s->end - s->p < 2) return 0;
            c = s->p[1];
            if (c != 'u') {
                if (!strchr("\"\\/bfnrt", (int)c) || !c) return 0;
                s->p += 2;
                continue;
            }
            if (s->end - s->p < 6 || !v_hex4(s->p + 2, &cp)) return 0;
            s->p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !v_hex4(s->p + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return 0;
                s->p += 6;
            }
            continue;
        }
        if (!v_utf8(s)) return 0;
    }
    return 0;
}

static int v_digits(vs *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > start;
}

static int v_number(vs *s)
{
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p >= s->end) return 0;
    if (*s->p == '0') s->p++;
    else if (!v_digits(s)) return 0;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!v_digits(s)) return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!v_digits(s)) return 0;
    }
    return 1;
}

static int v_lit(vs *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return 0;
    s->p += n;
    return 1;
}

static int v_value(vs *s)
{
    v_ws(s);
    if (s->p >= s->end) return 0;
    switch (*s->p) {
    case '"': return v_string(s);
    case 't': return v_lit(s, "true");
    case 'f': return v_lit(s, "false");
    case 'n': return v_lit(s, "null");
    case '[':
    case '{': {
        int obj = *s->p == '{';
        if (++s->depth > VAL_MAX_DEPTH) return 0;
        s->p++;
        v_ws(s);
        if (s->p < s->end && *s->p == (obj ? '}' : ']')) { s->p++; s->depth--; return 1; }
        for (;;) {
            if (obj) {
                v_ws(s);
                if (s->p >= s->end || *s->p != '"' || !v_string(s)) return 0;
                v_ws(s);
                if (s->p >= s->end || *s->p != ':') return 0;
                s->p++;
            }
            if (!v_value(s)) return 0;
            v_ws(s);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            if (s->p < s->end && *s->p == (obj ? '}' : ']')) { s->p++; s->depth--; return 1; }
            return 0;
        }
    }
    default: return v_number(s);
    }
}

static int v_document(const uint8_t *data, size_t size)
{
    vs s;
    s.p = data;
    s.end = data + size;
    s.depth = 0;
    if (!v_value(&s)) return 0;
    v_ws(&s);
    return s.p == s.end;
}

/* ===== target ===== */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_error err;
    jv_doc *doc = jv_parse((const char *)data, size, NULL, &err);
    int expect = v_document(data, size);
    if (!doc != !expect) {
        fprintf(stderr, "*** jv_parse %s, validator %s (%s)\n", doc ? "accepts" : "rejects",
                expect ? "accepts" : "rejects", doc ? "" : err.message);
        fz_fail("jv_parse and the independent validator disagree", (const char *)data, size);
    }
    if (!doc) {
        if (!err.message[0] || err.offset > size) fz_fail("rejection without a message or with a bad offset", NULL, 0);
        return 0;
    }
    fz_roundtrip(jv_root(doc), JV_DEFAULT_MAX_DEPTH);
    fz_compact(jv_root(doc));
    jv_doc_free(doc);
    return 0;
}
