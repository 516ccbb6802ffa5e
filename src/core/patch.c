/*
 * patch.c - Layer-Patch operations applied by path copying.
 *
 * Values are immutable, so an operation rebuilds only the objects on its
 * path and shares everything else with the previous version. That gives
 * atomicity for free (the input object is never touched), old values for the
 * change list without cloning, and O(depth x width) work per operation.
 * Arrays this call allocated are edited in place and grow by doubling, so a
 * patch that adds n keys to one object allocates O(n), not O(n^2).
 * Rule numbers (P1, W2, V3, ...) refer to docs/layer-patch.md.
 */
#include "patch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LP_MAX_SEGMENTS 64
#define LP_MAX_DEPTH JV_DEFAULT_MAX_DEPTH /* results must parse again */
#define MARK 0xFF                         /* stands for an escaped dot between P1 and P4; never valid UTF-8 */

typedef enum { OP_SET, OP_DELETE, OP_ADD, OP_REMOVE } op_kind;
static const char *const op_names[] = {"set", "delete", "add", "remove"};

typedef struct {
    const char *key;
    size_t key_len;
    jv old_value; /* by value: its slot may be in a fresh array edited later */
    int had_old;
    jv *paths; /* grows in ctx scratch, copied out at the end */
    size_t n_paths, cap_paths;
} tracked;

/* An array allocated by this call, and how many slots it has. */
typedef struct {
    const void *ptr;
    uint32_t cap;
} fresh_array;

typedef struct {
    jv_doc *doc;
    const lp_options *opt;
    lp_error *err;
    long op_index;
    op_kind kind;
    const char *property; /* raw, for messages */
    size_t property_len;
    tracked *tracks;
    size_t n_tracks, cap_tracks;
    lp_registration *regs;
    size_t n_regs, cap_regs;
    /* Arrays allocated by this call: nobody else can see them yet, so later
     * operations of the same patch may edit them in place, and append into
     * their spare slots. An open-addressing set, by pointer (power-of-two size). */
    fresh_array *fresh;
    size_t n_fresh, cap_fresh;
    /* lp_options.in_place: members replaced where they were, and what they
     * held, to put back if a later operation fails. When the log is full,
     * object_with copies as it otherwise does. */
    int in_place;
    /* Old values are tracked per base property: for the caller's change list,
     * or to judge `changed` when one operation's path leads into another's. */
    int track;
    int op_changed; /* the current operation changed something */
    int changed;    /* some operation did (without track) */
    struct {
        jv *slot;
        jv old;
    } undo[32];
    int n_undo;
} ctx;

static size_t fresh_hash(const void *p, size_t mask)
{
    return (size_t)(((uint64_t)(uintptr_t)p >> 3) * 0x9E3779B97F4A7C15ull >> 32) & mask;
}

static fresh_array *find_fresh(const ctx *c, const void *p)
{
    size_t i;
    if (!p || !c->cap_fresh) return NULL;
    for (i = fresh_hash(p, c->cap_fresh - 1); c->fresh[i].ptr; i = (i + 1) & (c->cap_fresh - 1))
        if (c->fresh[i].ptr == p) return &c->fresh[i];
    return NULL;
}

/* Without memory for the set, p is simply not fresh: it will be copied. */
static void mark_fresh(ctx *c, const void *p, uint32_t cap)
{
    size_t i;
    if (!p) return;
    if ((c->n_fresh + 1) * 2 > c->cap_fresh) {
        size_t ncap = c->cap_fresh ? c->cap_fresh * 2 : 64, j;
        fresh_array *nf = calloc(ncap, sizeof *nf);
        if (!nf) return;
        for (j = 0; j < c->cap_fresh; j++) {
            if (!c->fresh[j].ptr) continue;
            for (i = fresh_hash(c->fresh[j].ptr, ncap - 1); nf[i].ptr; i = (i + 1) & (ncap - 1)) {}
            nf[i] = c->fresh[j];
        }
        free(c->fresh);
        c->fresh = nf;
        c->cap_fresh = ncap;
    }
    for (i = fresh_hash(p, c->cap_fresh - 1); c->fresh[i].ptr; i = (i + 1) & (c->cap_fresh - 1))
        if (c->fresh[i].ptr == p) break;
    if (!c->fresh[i].ptr) c->n_fresh++;
    c->fresh[i].ptr = p;
    c->fresh[i].cap = cap;
}

static int is_fresh(const ctx *c, const void *p) { return find_fresh(c, p) != NULL; }

/* Slots for an array of n elements that grows by one: exactly n for a copy
 * of a shared array (most patches add one key), doubling once this call has
 * already grown it (a patch adding many). */
static uint32_t grown_cap(const fresh_array *f, uint32_t n)
{
    uint32_t cap;
    if (!f) return n;
    cap = n < 4 ? 8 : n * 2;
    return cap < n ? n : cap; /* overflow: uint32 lengths cannot exceed it anyway */
}

/* Whether slot may be overwritten in place, logging its value for undo. */
static int may_overwrite(ctx *c, const jv_member *members, jv *slot)
{
    if (is_fresh(c, members)) return 1; /* nobody else sees it yet: nothing to undo */
    if (!c->in_place || c->n_undo == (int)(sizeof c->undo / sizeof c->undo[0])) return 0;
    c->undo[c->n_undo].slot = slot;
    c->undo[c->n_undo].old = *slot;
    c->n_undo++;
    return 1;
}

static void undo_all(ctx *c)
{
    while (c->n_undo > 0) {
        c->n_undo--;
        *c->undo[c->n_undo].slot = c->undo[c->n_undo].old;
    }
}

/* ===== errors ===== */

static int op_fail(ctx *c, const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (c->err) {
        c->err->op_index = c->op_index;
        if (c->property)
            snprintf(c->err->message, sizeof c->err->message, "operation %ld (%s '%.*s'): %s", c->op_index + 1,
                     op_names[c->kind], (int)(c->property_len > 80 ? 80 : c->property_len), c->property, detail);
        else
            snprintf(c->err->message, sizeof c->err->message, "operation %ld: %s", c->op_index + 1, detail);
    }
    return 0;
}

static int oom(ctx *c)
{
    if (c->err) c->err->out_of_memory = 1;
    return op_fail(c, "out of memory");
}

/* ===== paths (P1-P5) ===== */

typedef struct {
    char *buf; /* segments back to back, NUL-separated */
    const char *seg[LP_MAX_SEGMENTS];
    size_t seg_len[LP_MAX_SEGMENTS];
    int n;
    char small[256];
} split_path;

static int is_line_terminator(const unsigned char *p, const unsigned char *end)
{
    if (*p == '\n' || *p == '\r') return 1;
    return end - p >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9);
}

static size_t utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xF0) return 4;
    if (c >= 0xE0) return 3;
    return 2;
}

static int add_segment(split_path *sp, const char *start, size_t len, int *too_many)
{
    if (sp->n == LP_MAX_SEGMENTS) {
        *too_many = 1;
        return 0;
    }
    sp->seg[sp->n] = start;
    sp->seg_len[sp->n] = len;
    sp->n++;
    return 1;
}

/* The usual path in one pass: its only escapes are "\." (ids with dots), so
 * P2 has nothing left to do. Returns 0 to leave anything else to the general
 * passes (another escape, or a MARK byte, which P4 would turn into a dot). */
static int split_simple(const char *raw, size_t len, split_path *sp, int *too_many)
{
    const unsigned char *p = (const unsigned char *)raw, *end = p + len;
    char *w = sp->buf, *start = w;
    sp->n = 0;
    for (; p < end; p++) {
        if (*p == '\\') {
            if (p + 1 == end || p[1] != '.') return 0;
            *w++ = '.';
            p++;
        } else if (*p == '.') {
            if (!add_segment(sp, start, (size_t)(w - start), too_many)) return 0;
            *w++ = '\0';
            start = w;
        } else if (*p == MARK) {
            return 0;
        } else {
            *w++ = (char)*p;
        }
    }
    return add_segment(sp, start, (size_t)(w - start), too_many);
}

/* Returns 1, or 0 with *too_many set when the path has too many segments. */
static int split(const char *raw, size_t len, split_path *sp, int *too_many)
{
    const unsigned char *p = (const unsigned char *)raw, *end = p + len;
    unsigned char *tmp, *w;
    size_t i, n;
    *too_many = 0;
    sp->buf = len + 1 <= sizeof sp->small ? sp->small : malloc(len + 1);
    if (!sp->buf) return 0;
    if (split_simple(raw, len, sp, too_many)) return 1;
    if (*too_many) return 0;
    tmp = (unsigned char *)sp->buf;
    /* P1: every "\." becomes MARK. */
    for (w = tmp; p < end;) {
        if (*p == '\\' && p + 1 < end && p[1] == '.') {
            *w++ = MARK;
            p += 2;
        } else {
            *w++ = *p++;
        }
    }
    n = (size_t)(w - tmp);
    /* P2: "\X" -> X unless X is a line terminator; in place, output never longer. */
    for (i = 0, w = tmp; i < n;) {
        if (tmp[i] == '\\' && i + 1 < n && !is_line_terminator(tmp + i + 1, tmp + n)) {
            size_t k = tmp[i + 1] == MARK ? 1 : utf8_len(tmp[i + 1]);
            if (i + 1 + k > n) k = n - i - 1;
            memmove(w, tmp + i + 1, k);
            w += k;
            i += 1 + k;
        } else {
            *w++ = tmp[i++];
        }
    }
    n = (size_t)(w - tmp);
    /* P3 + P4: split on '.', then MARK becomes '.'. */
    sp->n = 0;
    {
        size_t start = 0;
        for (i = 0; i <= n; i++) {
            if (i == n || tmp[i] == '.') {
                if (!add_segment(sp, (const char *)tmp + start, i - start, too_many)) return 0;
                start = i + 1;
            } else if (tmp[i] == MARK) {
                tmp[i] = '.';
            }
        }
    }
    return 1;
}

static void split_free(split_path *sp)
{
    if (sp->buf && sp->buf != sp->small) free(sp->buf);
    sp->buf = NULL;
}

void lp_escape_segment(jbuf *b, const char *segment, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (segment[i] == '.' || segment[i] == '\\') jbuf_putc(b, '\\');
        jbuf_putc(b, segment[i]);
    }
}

int lp_split_path(jv_doc *doc, const char *path, size_t len, jv *segments)
{
    split_path sp;
    int too_many, i;
    jv *items;
    if (!split(path, len, &sp, &too_many)) {
        split_free(&sp);
        return 0;
    }
    items = jv_alloc(doc, (size_t)sp.n * sizeof(jv));
    if (!items) {
        split_free(&sp);
        return 0;
    }
    for (i = 0; i < sp.n; i++) {
        if (!jv_string(doc, &items[i], sp.seg[i], sp.seg_len[i])) {
            split_free(&sp);
            return 0;
        }
    }
    memset(segments, 0, sizeof *segments);
    segments->type = JV_ARRAY;
    segments->len = (uint32_t)sp.n;
    segments->u.items = items;
    split_free(&sp);
    return 1;
}

/* ===== helpers ===== */

/* JavaScript truthiness of a JSON value. */
static int truthy(const jv *v)
{
    switch (v->type) {
    case JV_NULL:
    case JV_FALSE: return 0;
    case JV_INT: return v->u.i != 0;
    case JV_REAL: return v->u.d != 0.0 && v->u.d == v->u.d;
    case JV_STRING: return v->len != 0;
    default: return 1;
    }
}

static int depth_of(const jv *v)
{
    int d = 0, sub;
    uint32_t i;
    if (v->type == JV_ARRAY) {
        for (i = 0; i < v->len; i++)
            if ((sub = depth_of(&v->u.items[i])) > d) d = sub;
        return d + 1;
    }
    if (v->type == JV_OBJECT) {
        for (i = 0; i < v->len; i++)
            if ((sub = depth_of(&v->u.members[i].value)) > d) d = sub;
        return d + 1;
    }
    return 0;
}

/* New object = obj with key set to value (appended when new); at is the
 * key's member index in obj, or -1. */
static int object_with(ctx *c, const jv *obj, long at, const char *key, size_t klen, const jv *value, jv *out)
{
    uint32_t n = obj->len + (at < 0 ? 1 : 0), cap = n;
    jv_member *m;
    fresh_array *f;
    if (at >= 0 && may_overwrite(c, obj->u.members, &((jv_member *)obj->u.members)[at].value)) {
        ((jv_member *)obj->u.members)[at].value = *value;
        *out = *obj;
        return 1;
    }
    f = at < 0 ? find_fresh(c, obj->u.members) : NULL;
    if (f && f->cap >= n) { /* a spare slot past the end: no version of obj can see it */
        m = (jv_member *)obj->u.members;
    } else {
        cap = grown_cap(f, n);
        m = jv_alloc(c->doc, (size_t)cap * sizeof *m);
        if (!m) return oom(c);
        mark_fresh(c, m, cap);
        if (obj->len) memcpy(m, obj->u.members, obj->len * sizeof *m);
    }
    if (at < 0) {
        m[obj->len].key = jv_intern(c->doc, key, klen, 1);
        if (!m[obj->len].key) return oom(c);
        at = (long)obj->len;
    }
    m[at].value = *value;
    *out = *obj;
    out->type = JV_OBJECT;
    out->len = n;
    out->u.members = m;
    return 1;
}

static int object_without(ctx *c, const jv *obj, long at, jv *out)
{
    jv_member *m = NULL;
    *out = *obj;
    if (is_fresh(c, obj->u.members)) {
        m = (jv_member *)obj->u.members;
        memmove(m + at, m + at + 1, (size_t)(obj->len - (uint32_t)at - 1) * sizeof *m);
        out->len = obj->len - 1;
        return 1;
    }
    if (obj->len > 1) {
        m = jv_alloc(c->doc, (size_t)(obj->len - 1) * sizeof *m);
        if (!m) return oom(c);
        mark_fresh(c, m, obj->len - 1);
        memcpy(m, obj->u.members, (size_t)at * sizeof *m);
        memcpy(m + at, obj->u.members + at + 1, (size_t)(obj->len - (uint32_t)at - 1) * sizeof *m);
    }
    out->len = obj->len - 1;
    out->u.members = m;
    return 1;
}

static int array_with_appended(ctx *c, const jv *arr, const jv *value, jv *out)
{
    fresh_array *f = find_fresh(c, arr->u.items);
    jv *items;
    if (f && f->cap > arr->len) {
        items = (jv *)arr->u.items;
    } else {
        uint32_t cap = grown_cap(f, arr->len + 1);
        items = jv_alloc(c->doc, (size_t)cap * sizeof *items);
        if (!items) return oom(c);
        mark_fresh(c, items, cap);
        if (arr->len) memcpy(items, arr->u.items, arr->len * sizeof *items);
    }
    items[arr->len] = *value;
    *out = *arr;
    out->len = arr->len + 1;
    out->u.items = items;
    return 1;
}

static int array_without(ctx *c, const jv *arr, uint32_t at, jv *out)
{
    jv *items = NULL;
    *out = *arr;
    if (is_fresh(c, arr->u.items)) {
        items = (jv *)arr->u.items;
        memmove(items + at, items + at + 1, (arr->len - at - 1) * sizeof *items);
        out->len = arr->len - 1;
        return 1;
    }
    if (arr->len > 1) {
        items = jv_alloc(c->doc, (size_t)(arr->len - 1) * sizeof *items);
        if (!items) return oom(c);
        mark_fresh(c, items, arr->len - 1);
        memcpy(items, arr->u.items, at * sizeof *items);
        memcpy(items + at, arr->u.items + at + 1, (arr->len - at - 1) * sizeof *items);
    }
    out->len = arr->len - 1;
    out->u.items = items;
    return 1;
}

/* layer-patch's default matcher: el.id == id, for object elements. */
static int id_matches(ctx *c, const jv *el, const jv *id, int *failed)
{
    const jv *eid;
    if (el->type == JV_NULL) {
        *failed = 1;
        return op_fail(c, "the set holds a null element, which cannot be matched by id");
    }
    if (el->type != JV_OBJECT) return 0;
    eid = jv_get(el, "id");
    return eid && eid->type == JV_STRING && eid->len == id->len && memcmp(eid->u.s, id->u.s, id->len) == 0;
}

/* ===== the four operations, on the parent of the last segment ===== */

typedef struct {
    op_kind kind;
    const jv *value; /* resolved; NULL when the op has none */
    const jv *id;    /* truthy id string, or NULL */
} resolved_op;

static int apply_leaf(ctx *c, const jv *parent, const char *key, size_t klen, const resolved_op *op, jv *out)
{
    long at = jv_member_index(parent, key, klen);
    jv container;
    switch (op->kind) {
    case OP_SET:
        if (at >= 0 && jv_deep_equal(&parent->u.members[at].value, op->value)) {
            *out = *parent; /* nothing to write */
            return 1;
        }
        c->op_changed = 1;
        return object_with(c, parent, at, key, klen, op->value, out);
    case OP_DELETE:
        if (at < 0) {
            *out = *parent;
            return 1;
        }
        c->op_changed = 1;
        return object_without(c, parent, at, out);
    case OP_ADD:
    case OP_REMOVE: {
        int is_add = op->kind == OP_ADD;
        uint32_t i, len_before;
        if (at < 0) {
            memset(&container, 0, sizeof container);
            container.type = JV_ARRAY; /* created before the checks, as the library does */
        } else {
            container = parent->u.members[at].value;
        }
        if (container.type != JV_ARRAY)
            return op_fail(c, is_add ? "The add operation requires an array or new structure to add to."
                                     : "The remove operation requires an array or new structure to remove from.");
        len_before = container.len;
        if (is_add) {
            if (!op->value) return op_fail(c, "add needs a value or an id");
            if (op->value->type == JV_ARRAY) return op_fail(c, "The add operation will not add arrays to sets.");
            if (op->id) {
                int failed = 0;
                for (i = 0; i < container.len; i++) {
                    if (id_matches(c, &container.u.items[i], op->id, &failed)) break;
                    if (failed) return 0;
                }
                if (i == container.len && !array_with_appended(c, &container, op->value, &container)) return 0;
            } else {
                if (op->value->type == JV_OBJECT) return op_fail(c, "The add operation will not add objects to sets.");
                for (i = 0; i < container.len; i++)
                    if (jv_strict_equal(&container.u.items[i], op->value)) break;
                if (i == container.len && !array_with_appended(c, &container, op->value, &container)) return 0;
            }
        } else if (op->id) {
            int failed = 0;
            for (i = 0; i < container.len; i++) {
                if (id_matches(c, &container.u.items[i], op->id, &failed)) break;
                if (failed) return 0;
            }
            if (i < container.len && !array_without(c, &container, i, &container)) return 0;
        } else if (op->value) {
            if (op->value->type == JV_ARRAY)
                return op_fail(c, "The remove operation will not remove arrays from sets.");
            if (op->value->type == JV_OBJECT)
                return op_fail(c, "The remove operation will not remove objects from sets.");
            for (i = 0; i < container.len; i++)
                if (jv_strict_equal(&container.u.items[i], op->value)) break;
            if (i < container.len && !array_without(c, &container, i, &container)) return 0;
        }
        if (at >= 0 && container.len == len_before) { /* the set already held it (or lacked it) */
            *out = *parent;
            return 1;
        }
        c->op_changed = 1; /* a new (even empty) array, or one element more or less */
        return object_with(c, parent, at, key, klen, &container, out);
    }
    }
    return 0;
}

/* Rebuild obj along segments [i..n): missing intermediates become {} (W2),
 * scalars, null and arrays on the path are errors (W1). */
static int rebuild(ctx *c, const jv *obj, const split_path *sp, int i, const resolved_op *op, jv *out)
{
    const jv *child;
    jv empty, new_child;
    long at;
    if (i == sp->n - 1) return apply_leaf(c, obj, sp->seg[i], sp->seg_len[i], op, out);
    at = jv_member_index(obj, sp->seg[i], sp->seg_len[i]);
    child = at < 0 ? NULL : &obj->u.members[at].value;
    if (!child) {
        memset(&empty, 0, sizeof empty);
        empty.type = JV_OBJECT;
        child = &empty;
    } else if (child->type != JV_OBJECT) {
        return op_fail(c, "Can not access property '%.*s'", (int)(c->property_len > 120 ? 120 : c->property_len),
                       c->property);
    }
    if (!rebuild(c, child, sp, i + 1, op, &new_child)) return 0;
    if (at < 0) c->op_changed = 1; /* a missing intermediate is created, even by a delete */
    if (!c->op_changed) {
        *out = *obj;
        return 1;
    }
    return object_with(c, obj, at, sp->seg[i], sp->seg_len[i], &new_child, out);
}

/* ===== change tracking (CB1-CB3) ===== */

static tracked *track(ctx *c, const jv *root, const char *base, size_t base_len)
{
    size_t i;
    tracked *t;
    for (i = 0; i < c->n_tracks; i++)
        if (c->tracks[i].key_len == base_len && memcmp(c->tracks[i].key, base, base_len) == 0) return &c->tracks[i];
    if (c->n_tracks == c->cap_tracks) {
        size_t ncap = c->cap_tracks ? c->cap_tracks * 2 : 4;
        tracked *nt = realloc(c->tracks, ncap * sizeof *nt);
        if (!nt) return NULL;
        c->tracks = nt;
        c->cap_tracks = ncap;
    }
    t = &c->tracks[c->n_tracks];
    memset(t, 0, sizeof *t);
    t->key = jv_intern(c->doc, base, base_len, 0);
    if (!t->key) return NULL;
    t->key_len = base_len;
    {
        const jv *old = jv_getn(root, base, base_len);
        t->had_old = old != NULL;
        if (old) t->old_value = *old;
    }
    c->n_tracks++;
    return t;
}

static int track_path(ctx *c, tracked *t, const jv *property)
{
    size_t i;
    for (i = 0; i < t->n_paths; i++)
        if (jv_strict_equal(&t->paths[i], property)) return 1;
    if (t->n_paths == t->cap_paths) {
        size_t ncap = t->cap_paths ? t->cap_paths * 2 : 2;
        jv *np = realloc(t->paths, ncap * sizeof *np);
        if (!np) return 0;
        t->paths = np;
        t->cap_paths = ncap;
    }
    return jv_copy_into(c->doc, &t->paths[t->n_paths++], property);
}

/* ===== value resolution (V1-V5) ===== */

static const jv *find_registered(ctx *c, const jv *id)
{
    size_t i;
    for (i = 0; i < c->n_regs; i++)
        if (c->regs[i].id_len == id->len && memcmp(c->regs[i].id, id->u.s, id->len) == 0) return c->regs[i].value;
    return NULL;
}

static int register_value(ctx *c, const jv *id, const jv *value)
{
    lp_registration *r;
    jv *copy;
    if (c->n_regs == c->cap_regs) {
        size_t ncap = c->cap_regs ? c->cap_regs * 2 : 2;
        lp_registration *nr = realloc(c->regs, ncap * sizeof *nr);
        if (!nr) return 0;
        c->regs = nr;
        c->cap_regs = ncap;
    }
    copy = jv_alloc(c->doc, sizeof *copy);
    if (!copy || !jv_copy_into(c->doc, copy, value)) return 0;
    r = &c->regs[c->n_regs++];
    r->id = jv_intern(c->doc, id->u.s, id->len, 0);
    r->id_len = id->len;
    r->value = copy;
    return r->id != NULL;
}

static int resolve(ctx *c, const jv *op, resolved_op *out, jv *scratch)
{
    const jv *id = jv_get(op, "id");
    const jv *value = jv_get(op, "value");
    out->id = NULL;
    out->value = NULL;
    if (id && truthy(id)) { /* V2-V4 */
        const jv *found = NULL;
        if (id->type != JV_STRING) return op_fail(c, "'id' must be a string, got %s", jv_type_name(id->type));
        if (!c->opt || !c->opt->lookup) return op_fail(c, "Must provide getObjectCallback in constructor to use ids");
        found = find_registered(c, id);
        if (!found) found = c->opt->lookup(c->opt->lookup_ud, id->u.s, id->len);
        if (found && !truthy(found)) found = NULL;
        if (!found && value && truthy(value)) {
            if (c->opt->register_values && !register_value(c, id, value)) return oom(c);
            found = value;
        }
        if (found) {
            if (!jv_copy_into(c->doc, scratch, found)) return oom(c);
        } else if (c->opt->return_ids) {
            *scratch = *id; /* lives in the ops doc until copied below */
            if (!jv_copy_into(c->doc, scratch, id)) return oom(c);
        } else {
            *scratch = jv_null();
        }
        out->id = id;
        out->value = scratch;
        return 1;
    }
    if (value) { /* V1 */
        if (!jv_copy_into(c->doc, scratch, value)) return oom(c);
        out->value = scratch;
    }
    return 1;
}

/* ===== driver ===== */

static int parse_kind(const jv *name, op_kind *kind)
{
    int k;
    if (!name || name->type != JV_STRING) return 0;
    for (k = 0; k < 4; k++)
        if (strlen(op_names[k]) == name->len && memcmp(op_names[k], name->u.s, name->len) == 0) {
            *kind = (op_kind)k;
            return 1;
        }
    return 0;
}

static int apply_one(ctx *c, jv *root, const jv *op)
{
    const jv *property, *name;
    split_path sp;
    resolved_op rop;
    jv value_copy, new_root;
    int too_many, ok;
    tracked *t;

    c->property = NULL;
    c->kind = OP_SET;
    if (op->type != JV_OBJECT) return op_fail(c, "an operation must be an object, got %s", jv_type_name(op->type));
    property = jv_get(op, "property");
    if (!property || property->type != JV_STRING)
        return op_fail(c, "'property' must be a string, got %s", property ? jv_type_name(property->type) : "nothing");
    name = jv_get(op, "operation");
    if (!parse_kind(name, &c->kind)) {
        if (name && name->type == JV_STRING)
            return op_fail(c, "unknown operation '%.*s' (expected set, delete, add or remove)",
                           (int)(name->len > 40 ? 40 : name->len), name->u.s);
        return op_fail(c, "'operation' must be one of set, delete, add or remove");
    }
    c->property = property->u.s;
    c->property_len = property->len;
    if (!split(property->u.s, property->len, &sp, &too_many)) {
        split_free(&sp);
        return too_many ? op_fail(c, "the property path has more than %d segments", LP_MAX_SEGMENTS) : oom(c);
    }
    if (c->track) {
        t = track(c, root, sp.seg[0], sp.seg_len[0]);
        if (!t || !track_path(c, t, property)) {
            split_free(&sp);
            return oom(c);
        }
    }
    ok = resolve(c, op, &rop, &value_copy);
    if (ok && (c->kind == OP_SET) && !rop.value && !rop.id) ok = op_fail(c, "set needs a value or an id");
    if (ok && rop.value && sp.n + depth_of(rop.value) > LP_MAX_DEPTH)
        ok = op_fail(c, "the result would nest deeper than %d levels", LP_MAX_DEPTH);
    rop.kind = c->kind;
    c->op_changed = 0;
    if (ok) ok = rebuild(c, root, &sp, 0, &rop, &new_root);
    split_free(&sp);
    if (ok) {
        *root = new_root;
        c->changed |= c->op_changed;
    }
    return ok;
}

/* A property path whose only escapes are "\." (and no MARK byte): then its
 * raw text is the one spelling of its segments, so raw prefixes are segment
 * prefixes. */
static int plain_path(const jv *op, const char **raw, size_t *len)
{
    const jv *property = op->type == JV_OBJECT ? jv_get(op, "property") : NULL;
    size_t i;
    if (!property || property->type != JV_STRING) return 0;
    for (i = 0; i < property->len; i++) {
        unsigned char ch = (unsigned char)property->u.s[i];
        if (ch == MARK) return 0;
        if (ch == '\\' && (i + 1 == property->len || property->u.s[++i] != '.')) return 0;
    }
    *raw = property->u.s;
    *len = property->len;
    return 1;
}

/* Whether one path equals the other or leads into it (a.b and a.b.c): only
 * then can a later operation undo an earlier one (set x=1, set x=0), and only
 * old against new values tells whether the patch changed anything. Receipts
 * that set two members of recipient_status do not overlap. */
static int paths_overlap(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > lb) {
        const char *t = a;
        size_t lt = la;
        a = b, la = lb, b = t, lb = lt;
    }
    return memcmp(a, b, la) == 0 && (la == lb || b[la] == '.');
}

static int ops_overlap(const jv *ops)
{
    const char *a, *b;
    size_t la, lb;
    uint32_t i, j;
    if (ops->len < 2) return 0;
    if (ops->len > 16) return 1;
    for (i = 0; i < ops->len; i++) {
        if (!plain_path(&ops->u.items[i], &a, &la)) return 1;
        for (j = 0; j < i; j++) {
            if (!plain_path(&ops->u.items[j], &b, &lb)) return 1;
            if (paths_overlap(a, la, b, lb)) return 1;
        }
    }
    return 0;
}

static int tracked_changed(const tracked *t, const jv *root)
{
    const jv *now = jv_getn(root, t->key, t->key_len);
    if (!t->had_old || !now) return t->had_old || now;
    return !jv_deep_equal(&t->old_value, now);
}

static void ctx_free(ctx *c)
{
    size_t i;
    for (i = 0; i < c->n_tracks; i++) free(c->tracks[i].paths);
    free(c->tracks);
    free(c->regs);
    free(c->fresh);
}

int lp_apply(jv_doc *doc, const jv *object, const jv *ops, const lp_options *opt, lp_result *out, lp_error *err)
{
    ctx c;
    jv root;
    uint32_t i;
    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    c.doc = doc;
    c.opt = opt;
    c.err = err;
    c.op_index = -1;
    c.track = (opt && opt->track_changes) || (ops->type == JV_ARRAY && ops_overlap(ops));
    c.in_place = opt && opt->in_place && !c.track;
    if (err) err->op_index = -1, err->out_of_memory = 0, err->message[0] = '\0';
    if (object->type != JV_OBJECT) {
        op_fail(&c, "the patched value must be an object, got %s", jv_type_name(object->type));
        return 0;
    }
    if (ops->type != JV_ARRAY) {
        op_fail(&c, "operations must be an array, got %s", jv_type_name(ops->type));
        return 0;
    }
    root = *object;
    for (i = 0; i < ops->len; i++) {
        c.op_index = (long)i;
        if (!apply_one(&c, &root, &ops->u.items[i])) {
            undo_all(&c);
            ctx_free(&c);
            return 0;
        }
    }
    out->root = root;
    out->changed = c.changed;
    if (c.track) {
        out->changed = 0;
        for (i = 0; i < c.n_tracks; i++) out->changed |= tracked_changed(&c.tracks[i], &root);
    }
    if (c.n_tracks && opt && opt->track_changes) {
        out->changes = calloc(c.n_tracks, sizeof *out->changes);
        if (!out->changes) goto nomem;
        for (i = 0; i < c.n_tracks; i++) {
            tracked *t = &c.tracks[i];
            lp_change *ch = &out->changes[i];
            jv *paths = jv_alloc(doc, sizeof *paths), *items = jv_alloc(doc, t->n_paths * sizeof(jv));
            if (!paths || !items) goto nomem;
            memcpy(items, t->paths, t->n_paths * sizeof(jv));
            memset(paths, 0, sizeof *paths);
            paths->type = JV_ARRAY;
            paths->len = (uint32_t)t->n_paths;
            paths->u.items = items;
            ch->property = t->key;
            ch->property_len = t->key_len;
            ch->paths = paths;
            if (t->had_old) {
                jv *old = jv_alloc(doc, sizeof *old);
                if (!old) goto nomem;
                *old = t->old_value;
                ch->old_value = old;
            }
            ch->new_value = jv_getn(&root, t->key, t->key_len);
        }
        out->n_changes = c.n_tracks;
    }
    out->registered = c.regs;
    out->n_registered = c.n_regs;
    c.regs = NULL;
    ctx_free(&c);
    return 1;
nomem:
    undo_all(&c);
    ctx_free(&c);
    lp_result_free(out);
    c.op_index = -1;
    oom(&c);
    return 0;
}

void lp_result_free(lp_result *res)
{
    free(res->changes);
    free(res->registered);
    memset(res, 0, sizeof *res);
}
