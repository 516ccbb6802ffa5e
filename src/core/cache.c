/*
 * cache.c - object cache keyed by Layer id (see cache.h).
 *
 * Two open-addressing tables (linear probing, backward-shift deletion): ids
 * to entries, and conversation ids to their messages ordered by position.
 * Each entry owns one document; patches allocate into it and it is repacked
 * once garbage outweighs live data, so an object costs about its compact size
 * however often it is patched. Live entries sit on an LRU list for the byte
 * bound; pinned entries are skipped by every eviction.
 */
#include "cache.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv_index conv_index;
typedef struct lc_entry lc_entry;

/* A document that change lists point into (lc_event.hold): it outlives its
 * entry's move to a repacked doc (or the entry) until the last release, and
 * nobody patches it in place meanwhile. */
struct lc_hold {
    jv_doc *doc;
    unsigned refs;
    int orphan; /* no longer an entry's doc: freed by the last release */
};

struct lc_entry {
    uint64_t hash;
    pkt_object_type type;
    jv_doc *doc;
    lc_hold *hold;      /* of doc, while change lists point into it (or NULL) */
    size_t packed_used; /* arena bytes in use right after the last repack */
    const char *id;     /* inside doc */
    size_t id_len;
    unsigned pins;
    int deleted;                    /* out of the table, alive only through pins */
    struct lc_entry *newer, *older; /* LRU list of live entries */
    conv_index *conv;               /* messages: the index they are listed in */
    double position;
};

struct conv_index {
    uint64_t hash;
    char *id;
    size_t id_len;
    lc_entry **msgs; /* ascending position */
    size_t n, cap;
};

/* Open-addressing table of pointers whose first field is the hash. */
typedef struct {
    void **slots;
    size_t cap, count;
} table;

struct lc_cache {
    lc_limits limits;
    table entries; /* lc_entry* */
    table convs;   /* conv_index* */
    size_t by_type[5];
    size_t bytes;
    size_t pinned, evicted;
    lc_entry *newest, *oldest;
    lc_entry *graveyard; /* deleted while pinned; linked through older */
    jv_doc *retired[8];  /* docs that the last event may still point into */
    size_t n_retired;
    lp_result last;     /* change list of the last patch */
    size_t maintain_at; /* slot where lc_maintain resumes */
    int keep_created;   /* a create's object outlives the bound until its event is pinned */
    int over_bound;     /* a released message sits in a conversation over its bound */
    char *ev_id;        /* the last event's id: packets die before events do */
    size_t ev_id_cap;
};

static int fail(lc_error *err, int out_of_memory, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        err->out_of_memory = out_of_memory;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* ===== generic table ===== */

static uint64_t slot_hash(void *p) { return *(uint64_t *)p; }
static const char *entry_key(void *p, size_t *len)
{
    lc_entry *e = p;
    *len = e->id_len;
    return e->id;
}
static const char *conv_key(void *p, size_t *len)
{
    conv_index *x = p;
    *len = x->id_len;
    return x->id;
}

static int table_init(table *t)
{
    t->cap = 64;
    t->count = 0;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots != NULL;
}

static size_t table_find(const table *t, const char *(*key)(void *, size_t *), const char *id, size_t len, uint64_t h)
{
    size_t mask = t->cap - 1, i = (size_t)h & mask;
    for (;;) {
        void *p = t->slots[i];
        size_t klen;
        const char *k;
        if (!p) return i;
        if (slot_hash(p) == h && (k = key(p, &klen), klen == len) && jv_same_bytes(k, id, len)) return i;
        i = (i + 1) & mask;
    }
}

static int table_reserve(table *t)
{
    size_t i, ncap;
    void **ns;
    if ((t->count + 1) * 10 <= t->cap * 7) return 1;
    ncap = t->cap * 2;
    ns = calloc(ncap, sizeof *ns);
    if (!ns) return 0;
    for (i = 0; i < t->cap; i++) {
        if (t->slots[i]) {
            size_t j = (size_t)slot_hash(t->slots[i]) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
        }
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 1;
}

/* Backward shift keeps probe chains intact without tombstones. */
static void table_remove(table *t, size_t i)
{
    size_t mask = t->cap - 1, j = i;
    t->slots[i] = NULL;
    t->count--;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (!t->slots[j]) break;
        home = (size_t)slot_hash(t->slots[j]) & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j] = NULL;
            i = j;
        }
    }
}

/* ===== accounting, LRU, retirement ===== */

static size_t entry_bytes(const lc_entry *e) { return sizeof *e + jv_doc_bytes(e->doc); }

static void lru_unlink(lc_cache *c, lc_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else if (c->newest == e)
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else if (c->oldest == e)
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(lc_cache *c, lc_entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest) c->newest->newer = e;
    c->newest = e;
    if (!c->oldest) c->oldest = e;
}

static void release_retired(lc_cache *c)
{
    size_t i;
    for (i = 0; i < c->n_retired; i++) jv_doc_free(c->retired[i]);
    c->n_retired = 0;
    lp_result_free(&c->last);
}

/* Free now, or after the caller is done with the current event. */
static void retire(lc_cache *c, jv_doc *doc)
{
    if (c->n_retired < sizeof c->retired / sizeof c->retired[0])
        c->retired[c->n_retired++] = doc;
    else
        jv_doc_free(doc);
}

/* e's doc is being replaced or e is going: a held doc passes to its hold. */
static jv_doc *unhold_doc(lc_entry *e)
{
    lc_hold *h = e->hold;
    e->hold = NULL;
    if (h && h->refs) {
        h->orphan = 1;
        return NULL;
    }
    free(h);
    return e->doc;
}

static void retire_doc(lc_cache *c, lc_entry *e)
{
    jv_doc *doc = unhold_doc(e);
    if (doc) retire(c, doc);
}

static void free_doc(lc_entry *e) { jv_doc_free(unhold_doc(e)); }

/* Hold e's current doc for a change list; NULL on OOM (the caller copies). */
static lc_hold *hold_doc(lc_entry *e)
{
    if (!e->hold) {
        if (!(e->hold = calloc(1, sizeof *e->hold))) return NULL;
        e->hold->doc = e->doc;
    }
    e->hold->refs++;
    return e->hold;
}

void lc_release(lc_hold *h)
{
    if (!h || !h->refs || --h->refs || !h->orphan) return;
    jv_doc_free(h->doc);
    free(h);
}

lc_cache *lc_new(const lc_limits *limits)
{
    lc_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (limits) c->limits = *limits;
    if (!table_init(&c->entries) || !table_init(&c->convs)) {
        free(c->entries.slots);
        free(c);
        return NULL;
    }
    return c;
}

void lc_keep_created(lc_cache *c, int on) { c->keep_created = on != 0; }

static void conv_free(conv_index *x)
{
    free(x->msgs);
    free(x->id);
    free(x);
}

void lc_free(lc_cache *c)
{
    size_t i;
    lc_entry *e, *older;
    if (!c) return;
    release_retired(c);
    for (e = c->newest; e; e = older) { /* every live entry is on the LRU list */
        older = e->older;
        free_doc(e);
        free(e);
    }
    for (e = c->graveyard; e; e = older) {
        older = e->older;
        free_doc(e);
        free(e);
    }
    for (i = 0; i < c->convs.cap; i++)
        if (c->convs.slots[i]) conv_free(c->convs.slots[i]);
    free(c->entries.slots);
    free(c->convs.slots);
    free(c->ev_id);
    free(c);
}

/* ===== conversation index ===== */

static conv_index *conv_get(lc_cache *c, const jv *conversation_id, int create)
{
    uint64_t h = jv_hash_id(conversation_id->u.s, conversation_id->len);
    size_t i = table_find(&c->convs, conv_key, conversation_id->u.s, conversation_id->len, h);
    conv_index *x = c->convs.slots[i];
    if (x || !create) return x;
    if (!table_reserve(&c->convs)) return NULL;
    i = table_find(&c->convs, conv_key, conversation_id->u.s, conversation_id->len, h);
    x = calloc(1, sizeof *x);
    if (!x || !(x->id = malloc(conversation_id->len + 1))) {
        free(x);
        return NULL;
    }
    memcpy(x->id, conversation_id->u.s, conversation_id->len);
    x->id[conversation_id->len] = '\0';
    x->id_len = conversation_id->len;
    x->hash = h;
    c->convs.slots[i] = x;
    c->convs.count++;
    c->bytes += sizeof *x + x->id_len + 1;
    return x;
}

static void conv_drop_if_empty(lc_cache *c, conv_index *x)
{
    if (x->n) return;
    c->bytes -= sizeof *x + x->id_len + 1 + x->cap * sizeof *x->msgs;
    table_remove(&c->convs, table_find(&c->convs, conv_key, x->id, x->id_len, x->hash));
    conv_free(x);
}

/* First index with position > p (upper bound). */
static size_t conv_upper(const conv_index *x, double p)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->msgs[mid]->position <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int conv_insert(lc_cache *c, conv_index *x, lc_entry *e)
{
    size_t at;
    if (x->n == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 8;
        lc_entry **nm = realloc(x->msgs, ncap * sizeof *nm);
        if (!nm) return 0;
        c->bytes += (ncap - x->cap) * sizeof *nm;
        x->msgs = nm;
        x->cap = ncap;
    }
    at = (x->n && x->msgs[x->n - 1]->position <= e->position) ? x->n : conv_upper(x, e->position);
    memmove(x->msgs + at + 1, x->msgs + at, (x->n - at) * sizeof *x->msgs);
    x->msgs[at] = e;
    x->n++;
    e->conv = x;
    return 1;
}

static void conv_remove(lc_cache *c, lc_entry *e)
{
    conv_index *x = e->conv;
    size_t i;
    if (!x) return;
    for (i = 0; i < x->n && x->msgs[i] != e; i++) {}
    if (i < x->n) {
        memmove(x->msgs + i, x->msgs + i + 1, (x->n - i - 1) * sizeof *x->msgs);
        x->n--;
    }
    e->conv = NULL;
    conv_drop_if_empty(c, x);
}

/* ===== removal and eviction ===== */

/* Take e out of the table and indexes; free it unless pinned. */
static void unlink_entry(lc_cache *c, lc_entry *e)
{
    table_remove(&c->entries, table_find(&c->entries, entry_key, e->id, e->id_len, e->hash));
    c->bytes -= entry_bytes(e);
    c->by_type[e->type]--;
    lru_unlink(c, e);
    conv_remove(c, e);
    if (e->pins) { /* evictions skip pinned entries, so this is a delete */
        e->deleted = 1;
        e->older = c->graveyard;
        if (c->graveyard) c->graveyard->newer = e;
        c->graveyard = e;
        return;
    }
    retire_doc(c, e);
    free(e);
}

/* keep: the entry just stored, which its event is about to pin; the bound
 * stops there rather than evict it or anything newer. Pinned and kept entries
 * stay, so the bound may be exceeded until lc_settle finds them released. */
static void enforce_conversation_bound(lc_cache *c, conv_index *x, const lc_entry *keep)
{
    size_t max = c->limits.max_messages_per_conversation, i = 0;
    while (max && x->n > max && i < x->n) {
        lc_entry *e = x->msgs[i];
        if (e == keep) return;
        if (e->pins) {
            i++;
            continue;
        }
        c->evicted++;
        if (x->n == 1) { /* unlinking frees x */
            unlink_entry(c, e);
            return;
        }
        unlink_entry(c, e);
    }
}

/* What the cache holds, as lc_stats reports it and the byte bound counts it. */
static size_t total_bytes(const lc_cache *c)
{
    return c->bytes + (c->entries.cap + c->convs.cap) * sizeof(void *) + sizeof *c;
}

static void enforce_byte_bound(lc_cache *c, const lc_entry *keep)
{
    lc_entry *e = c->oldest, *newer;
    while (c->limits.max_bytes && total_bytes(c) > c->limits.max_bytes && e) {
        newer = e->newer;
        if (!e->pins && e != keep) {
            c->evicted++;
            unlink_entry(c, e);
        }
        e = newer;
    }
}

/* ===== lookup ===== */

static lc_entry *find(const lc_cache *c, const char *id, size_t len)
{
    return c->entries.slots[table_find(&c->entries, entry_key, id, len, jv_hash_id(id, len))];
}

const jv *lc_get(const lc_cache *c, const char *id, size_t len)
{
    lc_entry *e = find(c, id, len);
    return e ? jv_root(e->doc) : NULL;
}

/* ===== store ===== */

static const jv *message_conversation(const jv *message)
{
    const jv *cid = jv_get(jv_get(message, "conversation"), "id");
    return cid && cid->type == JV_STRING ? cid : NULL;
}

static double message_position(const jv *message)
{
    const jv *pos = jv_get(message, "position");
    return pos && jv_is_number(pos) ? jv_to_double(pos) : 0.0;
}

/* Store a copy of object under its id; sets *replaced. */
static lc_entry *store(lc_cache *c, pkt_object_type type, const jv *object, int *replaced)
{
    const jv *id = jv_get(object, "id"), *cid;
    uint64_t h;
    size_t i;
    lc_entry *e;
    jv_doc *doc;
    jv copy;
    if (!id || id->type != JV_STRING || !table_reserve(&c->entries)) return NULL;
    doc = jv_doc_new(jv_value_bytes(object) + 16);
    if (!doc) return NULL;
    if (!jv_copy_into(doc, &copy, object)) {
        jv_doc_free(doc);
        return NULL;
    }
    jv_set_root(doc, &copy);
    h = jv_hash_id(id->u.s, id->len);
    i = table_find(&c->entries, entry_key, id->u.s, id->len, h);
    e = c->entries.slots[i];
    *replaced = e != NULL;
    if (e) {
        c->bytes -= entry_bytes(e);
        c->by_type[e->type]--;
        lru_unlink(c, e);
        conv_remove(c, e);
        retire_doc(c, e);
    } else {
        e = calloc(1, sizeof *e);
        if (!e) {
            jv_doc_free(doc);
            return NULL;
        }
        c->entries.slots[i] = e;
        c->entries.count++;
    }
    e->hash = h;
    e->type = type;
    e->doc = doc;
    e->packed_used = jv_doc_used(doc);
    e->id = jv_get(jv_root(doc), "id")->u.s;
    e->id_len = id->len;
    c->bytes += entry_bytes(e);
    c->by_type[type]++;
    lru_push(c, e);
    if (type == OBJ_MESSAGE && (cid = message_conversation(jv_root(doc))) != NULL) {
        conv_index *x = conv_get(c, cid, 1);
        e->position = message_position(jv_root(doc));
        if (x && conv_insert(c, x, e)) enforce_conversation_bound(c, x, c->keep_created ? e : NULL);
    }
    return e;
}

int lc_put(lc_cache *c, pkt_object_type type, const jv *object)
{
    int replaced;
    lc_entry *e;
    release_retired(c);
    if (!(e = store(c, type, object, &replaced))) return 0;
    enforce_byte_bound(c, e);
    return 1;
}

/* Ids in operations (last_message, participants) resolve against the cache
 * itself, as Layer's clients did; the engine copies what it finds. */
static const jv *lookup_cached(void *ud, const char *id, size_t len) { return lc_get((const lc_cache *)ud, id, len); }

/* Apply ops to entry e; on success the entry holds the new version. With
 * hold, the change list's doc is held there (NULL if that failed: then
 * res's values are valid until the next lc_apply only). */
static int patch_entry(lc_cache *c, lc_entry *e, const jv *ops, int track_changes, lp_result *res, lc_hold **hold,
                       lc_error *err)
{
    lp_options opt;
    lp_error perr;
    jv_doc *doc = e->doc;
    memset(&opt, 0, sizeof opt);
    opt.track_changes = track_changes;
    /* The entry's doc is its own, unless a change list still points into it. */
    opt.in_place = !(e->hold && e->hold->refs);
    opt.lookup = lookup_cached;
    opt.lookup_ud = c;
    opt.return_ids = 1; /* last_message by id: keep the id if the message is not cached */
    c->bytes -= entry_bytes(e);
    if (!lp_apply(doc, jv_root(doc), ops, &opt, res, &perr)) {
        c->bytes += entry_bytes(e);
        return fail(err, perr.out_of_memory, "patch of %.*s failed: %s", (int)e->id_len, e->id, perr.message);
    }
    jv_set_root(doc, &res->root);
    if (hold) *hold = hold_doc(e);
    /* Repack once garbage outweighs live data; the old doc stays alive for the
     * event. A tracked patch keeps the values it replaced (its change list
     * points at them), so garbage gathers faster: repacking at 1.5 times the
     * packed size, not 2,
     * keeps RSS under the plain-Lua client's with change lists (bench
     * client_ingest, 1.17 -> 0.99 on 5.4) for 1.3% more instructions. */
    if (hold && *hold ? jv_doc_used(doc) > e->packed_used + e->packed_used / 2
                      : jv_doc_wants_repack(doc, e->packed_used)) {
        jv_doc *packed = jv_doc_compact(doc);
        if (packed) {
            retire_doc(c, e);
            e->doc = packed;
            e->packed_used = jv_doc_used(packed);
        }
    }
    e->id = jv_get(jv_root(e->doc), "id")->u.s;
    c->bytes += entry_bytes(e);
    lru_unlink(c, e);
    lru_push(c, e);
    return 1;
}

/* Drop a conversation's messages at or before a position. */
static size_t truncate_messages(lc_cache *c, const jv *conversation_id, double position)
{
    conv_index *x = conv_get(c, conversation_id, 0);
    size_t removed = 0, n;
    if (!x) return 0;
    n = conv_upper(x, position);
    while (n--) {
        int last = x->n == 1;
        unlink_entry(c, x->msgs[0]);
        removed++;
        if (last) break; /* x was freed with its last message */
    }
    return removed;
}

/* recipient_status.<id, escaped by lp_escape_segment> = "read". *oom is set
 * when memory ran out and some messages may not have been marked. */
static size_t mark_read(lc_cache *c, const jv *conversation_id, double position, const jv *identity, int *oom)
{
    const jv *iid = identity->type == JV_STRING ? identity : jv_get(identity, "id");
    conv_index *x = conv_get(c, conversation_id, 0);
    jv_doc *ops_doc;
    jbuf path;
    size_t i, n, marked = 0;
    if (!iid || iid->type != JV_STRING || !x) return 0;
    jbuf_init(&path);
    jbuf_puts(&path, "recipient_status.");
    lp_escape_segment(&path, iid->u.s, iid->len);
    ops_doc = jv_doc_new(256);
    *oom = 1; /* until the operation is built */
    if (!ops_doc || path.oom) {
        jv_doc_free(ops_doc);
        jbuf_free(&path);
        return 0;
    }
    {
        jv *op = jv_alloc(ops_doc, sizeof *op), ops;
        jv_member *m = jv_alloc(ops_doc, 3 * sizeof *m);
        const char *keys[3] = {"operation", "property", "value"};
        const char *vals[3] = {"set", path.data, "read"};
        int j;
        if (!op || !m) goto done;
        for (j = 0; j < 3; j++) {
            m[j].key = jv_intern(ops_doc, keys[j], strlen(keys[j]), 1);
            if (!m[j].key || !jv_string(ops_doc, &m[j].value, vals[j], strlen(vals[j]))) goto done;
        }
        memset(op, 0, sizeof *op);
        op->type = JV_OBJECT;
        op->len = 3;
        op->u.members = m;
        memset(&ops, 0, sizeof ops);
        ops.type = JV_ARRAY;
        ops.len = 1;
        ops.u.items = op;
        n = conv_upper(x, position);
        *oom = 0;
        for (i = 0; i < n; i++) {
            lp_result res;
            lc_error perr;
            if (patch_entry(c, x->msgs[i], &ops, 0, &res, NULL, &perr)) {
                lp_result_free(&res);
                marked++;
            } else if (perr.out_of_memory) {
                *oom = 1;
            }
        }
    }
done:
    jv_doc_free(ops_doc);
    jbuf_free(&path);
    return marked;
}

static int apply_packet(lc_cache *c, const pkt *p, int track_changes, lc_event *ev, lc_error *err)
{
    int replaced;
    lc_entry *e;
    release_retired(c);
    memset(ev, 0, sizeof *ev);
    if (p->type == PKT_OPERATION) {
        ev->outcome = LC_MARKED_READ;
        ev->type = OBJ_CONVERSATION;
        ev->id = p->object_id->u.s;
        ev->id_len = p->object_id->len;
        int oom = 0;
        ev->removed = mark_read(c, p->object_id, p->position, p->identity, &oom);
        return oom ? fail(err, 1, "out of memory: messages of %.*s left unmarked", (int)ev->id_len, ev->id) : 1;
    }
    if (p->type != PKT_CHANGE) return fail(err, 0, "only change and operation packets change the cache");
    ev->type = p->object_type;
    ev->id = p->object_id->u.s;
    ev->id_len = p->object_id->len;
    switch (p->change_op) {
    case CHG_CREATE:
        if (!(e = store(c, p->object_type, p->data, &replaced))) return fail(err, 1, "out of memory");
        enforce_byte_bound(c, e);
        ev->outcome = replaced ? LC_REPLACED : LC_CREATED;
        ev->entry = e;
        return 1;
    case CHG_DELETE:
        if (p->has_from_position) {
            ev->outcome = LC_TRUNCATED;
            ev->removed = truncate_messages(c, p->object_id, p->from_position);
            return 1;
        }
        if (!(e = find(c, p->object_id->u.s, p->object_id->len))) {
            ev->outcome = LC_IGNORED;
            return 1;
        }
        if (p->object_type == OBJ_CONVERSATION) truncate_messages(c, p->object_id, 1e308);
        unlink_entry(c, e);
        ev->outcome = LC_DELETED;
        return 1;
    case CHG_PATCH:
        if (!(e = find(c, p->object_id->u.s, p->object_id->len))) {
            ev->outcome = LC_IGNORED;
            return 1;
        }
        if (!patch_entry(c, e, p->data, track_changes, &c->last, track_changes ? &ev->hold : NULL, err)) return 0;
        enforce_byte_bound(c, e);
        ev->outcome = LC_PATCHED;
        ev->changes = c->last.changes;
        ev->n_changes = c->last.n_changes;
        ev->changed = c->last.changed;
        ev->entry = e;
        return 1;
    }
    return fail(err, 0, "unknown change");
}

/* ev->id must stay valid until the next lc_apply (cache.h), but it is the
 * packet's, which callers free at once (lcache.c does): copy it into the
 * cache. The buffer is sized first, so a change that was applied is never
 * reported as failed. */
int lc_apply(lc_cache *c, const pkt *p, int track_changes, lc_event *ev, lc_error *err)
{
    size_t need = p->object_id ? (size_t)p->object_id->len + 1 : 0;
    if (need > c->ev_id_cap) {
        char *nb = realloc(c->ev_id, need);
        if (!nb) return fail(err, 1, "out of memory");
        c->ev_id = nb;
        c->ev_id_cap = need;
    }
    if (!apply_packet(c, p, track_changes, ev, err)) return 0;
    if (p->object_id && ev->id == p->object_id->u.s) {
        memcpy(c->ev_id, ev->id, ev->id_len);
        c->ev_id[ev->id_len] = '\0';
        ev->id = c->ev_id;
    }
    return 1;
}

void lc_stats_get(const lc_cache *c, lc_stats *out)
{
    memset(out, 0, sizeof *out);
    out->objects = c->entries.count;
    out->conversations = c->by_type[OBJ_CONVERSATION];
    out->messages = c->by_type[OBJ_MESSAGE];
    out->announcements = c->by_type[OBJ_ANNOUNCEMENT];
    out->identities = c->by_type[OBJ_IDENTITY];
    out->bytes = total_bytes(c);
    out->pinned = c->pinned;
    out->evicted = c->evicted;
}

/* ===== idle maintenance ===== */

size_t lc_slots(const lc_cache *c) { return c->entries.cap; }

size_t lc_maintain(lc_cache *c, size_t max_slots)
{
    size_t done = 0, seen = 0;
    while (seen < max_slots && seen < c->entries.cap) {
        lc_entry *e = c->entries.slots[c->maintain_at];
        c->maintain_at = (c->maintain_at + 1) & (c->entries.cap - 1);
        seen++;
        if (e && jv_doc_used(e->doc) > e->packed_used) {
            jv_doc *packed = jv_doc_compact(e->doc);
            if (!packed) break;
            c->bytes -= entry_bytes(e);
            retire_doc(c, e); /* the last event may still point into it */
            e->doc = packed;
            e->packed_used = jv_doc_used(packed);
            e->id = jv_get(jv_root(packed), "id")->u.s;
            c->bytes += entry_bytes(e);
            done++;
        }
        /* A conversation left over its bound by pinned messages shrinks once
         * they are released; e may be freed here, so it is not used after. */
        if (e && e->conv) enforce_conversation_bound(c, e->conv, NULL);
    }
    return done;
}

void lc_settle(lc_cache *c)
{
    size_t i, max = c->limits.max_messages_per_conversation;
    /* what pins kept over the byte bound when it was stored may go now */
    if (c->limits.max_bytes && total_bytes(c) > c->limits.max_bytes) enforce_byte_bound(c, NULL);
    if (!c->over_bound) return;
    c->over_bound = 0;
    /* max >= 1 here, so trimming never empties (and frees) an index mid-walk */
    for (i = 0; i < c->convs.cap; i++) {
        conv_index *x = c->convs.slots[i];
        if (x && x->n > max) enforce_conversation_bound(c, x, NULL);
    }
}

/* ===== pins ===== */

lc_ref *lc_pin(lc_cache *c, const char *id, size_t len)
{
    lc_entry *e = find(c, id, len);
    if (!e) return NULL;
    if (!e->pins++) c->pinned++;
    return e;
}

void lc_pin_again(lc_ref *r) { r->pins++; }

lc_ref *lc_pin_ref(lc_cache *c, lc_ref *r)
{
    if (!r->pins++) c->pinned++;
    return r;
}

void lc_unpin(lc_cache *c, lc_ref *r)
{
    if (!r->pins || --r->pins) return;
    c->pinned--;
    /* Trimming here could run inside a Lua __gc while a caller walks the
     * conversation's array, so lc_settle does it. */
    if (r->conv && c->limits.max_messages_per_conversation && r->conv->n > c->limits.max_messages_per_conversation)
        c->over_bound = 1;
    if (r->deleted) { /* already out of the table: this was its last holder */
        if (r->newer)
            r->newer->older = r->older;
        else
            c->graveyard = r->older;
        if (r->older) r->older->newer = r->newer;
        free_doc(r);
        free(r);
    }
}

const jv *lc_ref_value(const lc_ref *r) { return jv_root(r->doc); }
int lc_ref_deleted(const lc_ref *r) { return r->deleted != 0; }
pkt_object_type lc_ref_type(const lc_ref *r) { return r->type; }

size_t lc_conversation_messages(const lc_cache *c, const char *conversation_id, size_t len, lc_ref *const **out)
{
    uint64_t h = jv_hash_id(conversation_id, len);
    const conv_index *x = c->convs.slots[table_find(&c->convs, conv_key, conversation_id, len, h)];
    *out = x ? (lc_ref *const *)x->msgs : NULL;
    return x ? x->n : 0;
}
