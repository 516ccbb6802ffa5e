/*
 * cache.c - object cache keyed by Layer id (see cache.h).
 *
 * An open-addressing table (linear probing, backward-shift deletion) maps ids
 * to entries; each entry owns one document. Patches allocate into the entry's
 * document and the document is repacked once garbage outweighs live data, so
 * an object costs about its compact size however often it is patched.
 */
#include "cache.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lc_entry {
    uint64_t hash;
    pkt_object_type type;
    jv_doc *doc;
    size_t packed_bytes; /* doc size right after the last repack */
    const char *id;      /* inside doc */
    size_t id_len;
} lc_entry;

struct lc_cache {
    lc_entry **slots;
    size_t cap, count;
    size_t by_type[5];
    size_t bytes;
    jv_doc *retired[8]; /* docs that the last event may still point into */
    size_t n_retired;
    lp_result last; /* change list of the last patch */
};

static uint64_t hash_id(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (err && len) {
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return 0;
}

lc_cache *lc_new(void)
{
    lc_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = 64;
    c->slots = calloc(c->cap, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    return c;
}

static size_t entry_bytes(const lc_entry *e) { return sizeof *e + jv_doc_bytes(e->doc); }

static void entry_free(lc_entry *e)
{
    jv_doc_free(e->doc);
    free(e);
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
    if (c->n_retired < sizeof c->retired / sizeof c->retired[0]) c->retired[c->n_retired++] = doc;
    else jv_doc_free(doc);
}

void lc_free(lc_cache *c)
{
    size_t i;
    if (!c) return;
    release_retired(c);
    for (i = 0; i < c->cap; i++)
        if (c->slots[i]) entry_free(c->slots[i]);
    free(c->slots);
    free(c);
}

static size_t find_slot(const lc_cache *c, const char *id, size_t len, uint64_t h)
{
    size_t mask = c->cap - 1, i = (size_t)h & mask;
    for (;;) {
        lc_entry *e = c->slots[i];
        if (!e || (e->hash == h && e->id_len == len && memcmp(e->id, id, len) == 0)) return i;
        i = (i + 1) & mask;
    }
}

static int grow(lc_cache *c)
{
    size_t i, ncap = c->cap * 2;
    lc_entry **old = c->slots, **ns = calloc(ncap, sizeof *ns);
    size_t ocap = c->cap;
    if (!ns) return 0;
    c->slots = ns;
    c->cap = ncap;
    for (i = 0; i < ocap; i++) {
        if (old[i]) {
            size_t mask = ncap - 1, j = (size_t)old[i]->hash & mask;
            while (ns[j]) j = (j + 1) & mask;
            ns[j] = old[i];
        }
    }
    free(old);
    return 1;
}

static void remove_slot(lc_cache *c, size_t i)
{
    size_t mask = c->cap - 1, j = i;
    lc_entry *e = c->slots[i];
    c->bytes -= entry_bytes(e);
    c->by_type[e->type]--;
    c->count--;
    retire(c, e->doc);
    free(e);
    c->slots[i] = NULL;
    /* backward shift keeps probe chains intact without tombstones */
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (!c->slots[j]) break;
        home = (size_t)c->slots[j]->hash & mask;
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            c->slots[i] = c->slots[j];
            c->slots[j] = NULL;
            i = j;
        }
    }
}

const jv *lc_get(const lc_cache *c, const char *id, size_t len)
{
    size_t i = find_slot(c, id, len, hash_id(id, len));
    return c->slots[i] ? jv_root(c->slots[i]->doc) : NULL;
}

/* Store a copy of object under its id; sets *replaced. */
static lc_entry *store(lc_cache *c, pkt_object_type type, const jv *object, int *replaced)
{
    const jv *id = jv_get(object, "id");
    uint64_t h;
    size_t i;
    lc_entry *e;
    jv_doc *doc;
    jv copy;
    if (!id || id->type != JV_STRING) return NULL;
    if ((c->count + 1) * 10 > c->cap * 7 && !grow(c)) return NULL;
    doc = jv_doc_new(jv_value_bytes(object) + 16);
    if (!doc) return NULL;
    if (!jv_copy_into(doc, &copy, object)) {
        jv_doc_free(doc);
        return NULL;
    }
    jv_set_root(doc, &copy);
    h = hash_id(id->u.s, id->len);
    i = find_slot(c, id->u.s, id->len, h);
    *replaced = c->slots[i] != NULL;
    if (*replaced) {
        e = c->slots[i];
        c->bytes -= entry_bytes(e);
        c->by_type[e->type]--;
        retire(c, e->doc);
    } else {
        e = calloc(1, sizeof *e);
        if (!e) {
            jv_doc_free(doc);
            return NULL;
        }
        c->slots[i] = e;
        c->count++;
    }
    e->hash = h;
    e->type = type;
    e->doc = doc;
    e->packed_bytes = jv_doc_bytes(doc);
    e->id = jv_get(jv_root(doc), "id")->u.s;
    e->id_len = id->len;
    c->bytes += entry_bytes(e);
    c->by_type[type]++;
    return e;
}

int lc_put(lc_cache *c, pkt_object_type type, const jv *object)
{
    int replaced;
    release_retired(c);
    return store(c, type, object, &replaced) != NULL;
}

/* Ids in operations (last_message, participants) resolve against the cache
 * itself, as Layer's clients did; the engine copies what it finds. */
static const jv *lookup_cached(void *ud, const char *id, size_t len) { return lc_get((const lc_cache *)ud, id, len); }

/* Apply ops to entry e; on success the entry holds the new version. */
static int patch_entry(lc_cache *c, lc_entry *e, const jv *ops, lp_result *res, char *err, size_t err_len)
{
    lp_options opt;
    lp_error perr;
    jv_doc *doc = e->doc;
    memset(&opt, 0, sizeof opt);
    opt.track_changes = 1;
    opt.lookup = lookup_cached;
    opt.lookup_ud = c;
    opt.return_ids = 1; /* last_message by id: keep the id if the message is not cached */
    c->bytes -= entry_bytes(e);
    if (!lp_apply(doc, jv_root(doc), ops, &opt, res, &perr)) {
        c->bytes += entry_bytes(e);
        return fail(err, err_len, "patch of %.*s failed: %s", (int)e->id_len, e->id, perr.message);
    }
    jv_set_root(doc, &res->root);
    /* Repack once garbage outweighs live data; the old doc stays alive for the event. */
    if (jv_doc_bytes(doc) > 2 * e->packed_bytes + 512) {
        jv_doc *packed = jv_doc_compact(doc);
        if (packed) {
            retire(c, doc);
            e->doc = packed;
            e->packed_bytes = jv_doc_bytes(packed);
        }
    }
    e->id = jv_get(jv_root(e->doc), "id")->u.s;
    c->bytes += entry_bytes(e);
    return 1;
}

static int message_in(const lc_entry *e, const jv *conversation_id, double max_position)
{
    const jv *root = jv_root(e->doc), *conv, *cid, *pos;
    if (e->type != OBJ_MESSAGE) return 0;
    conv = jv_get(root, "conversation");
    cid = jv_get(conv, "id");
    pos = jv_get(root, "position");
    return cid && jv_strict_equal(cid, conversation_id) && pos && jv_is_number(pos) &&
           jv_to_double(pos) <= max_position;
}

/* Drop a conversation's messages at or before a position. The scan is over
 * all entries; the client cache keeps a per-conversation index instead. */
static size_t truncate_messages(lc_cache *c, const jv *conversation_id, double position)
{
    size_t i = 0, removed = 0;
    while (i < c->cap) {
        if (c->slots[i] && message_in(c->slots[i], conversation_id, position)) {
            remove_slot(c, i);
            removed++;
            continue; /* backward shift may have moved another entry here */
        }
        i++;
    }
    return removed;
}

/* recipient_status.<id with dots and backslashes escaped> = "read" */
static size_t mark_read(lc_cache *c, const jv *conversation_id, double position, const jv *identity, char *err,
                        size_t err_len)
{
    const jv *iid = identity->type == JV_STRING ? identity : jv_get(identity, "id");
    jv_doc *ops_doc;
    jbuf path;
    size_t i, marked = 0;
    uint32_t k;
    if (!iid || iid->type != JV_STRING) return 0;
    jbuf_init(&path);
    jbuf_puts(&path, "recipient_status.");
    for (k = 0; k < iid->len; k++) {
        if (iid->u.s[k] == '.' || iid->u.s[k] == '\\') jbuf_putc(&path, '\\');
        jbuf_putc(&path, iid->u.s[k]);
    }
    ops_doc = jv_doc_new(256);
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
        for (i = 0; i < c->cap; i++) {
            lp_result res;
            if (!c->slots[i] || !message_in(c->slots[i], conversation_id, position)) continue;
            if (patch_entry(c, c->slots[i], &ops, &res, err, err_len)) {
                lp_result_free(&res);
                marked++;
            }
        }
    }
done:
    jv_doc_free(ops_doc);
    jbuf_free(&path);
    return marked;
}

int lc_apply(lc_cache *c, const pkt *p, lc_event *ev, char *err, size_t err_len)
{
    size_t i;
    int replaced;
    lc_entry *e;
    release_retired(c);
    memset(ev, 0, sizeof *ev);
    if (p->type == PKT_OPERATION) {
        ev->outcome = LC_MARKED_READ;
        ev->type = OBJ_CONVERSATION;
        ev->id = p->object_id->u.s;
        ev->id_len = p->object_id->len;
        ev->removed = mark_read(c, p->object_id, p->position, p->identity, err, err_len);
        return 1;
    }
    if (p->type != PKT_CHANGE) return fail(err, err_len, "only change and operation packets change the cache");
    ev->type = p->object_type;
    ev->id = p->object_id->u.s;
    ev->id_len = p->object_id->len;
    switch (p->change_op) {
    case CHG_CREATE:
        if (!(e = store(c, p->object_type, p->data, &replaced))) return fail(err, err_len, "out of memory");
        ev->outcome = replaced ? LC_REPLACED : LC_CREATED;
        ev->id = e->id;
        return 1;
    case CHG_DELETE:
        if (p->has_from_position) {
            ev->outcome = LC_TRUNCATED;
            ev->removed = truncate_messages(c, p->object_id, p->from_position);
            return 1;
        }
        i = find_slot(c, p->object_id->u.s, p->object_id->len, hash_id(p->object_id->u.s, p->object_id->len));
        if (!c->slots[i]) {
            ev->outcome = LC_IGNORED;
            return 1;
        }
        if (p->object_type == OBJ_CONVERSATION) truncate_messages(c, p->object_id, 1e308);
        i = find_slot(c, p->object_id->u.s, p->object_id->len, hash_id(p->object_id->u.s, p->object_id->len));
        remove_slot(c, i);
        ev->outcome = LC_DELETED;
        return 1;
    case CHG_PATCH:
        i = find_slot(c, p->object_id->u.s, p->object_id->len, hash_id(p->object_id->u.s, p->object_id->len));
        if (!(e = c->slots[i])) {
            ev->outcome = LC_IGNORED;
            return 1;
        }
        if (!patch_entry(c, e, p->data, &c->last, err, err_len)) return 0;
        ev->outcome = LC_PATCHED;
        ev->id = e->id;
        ev->changes = c->last.changes;
        ev->n_changes = c->last.n_changes;
        return 1;
    }
    return fail(err, err_len, "unknown change");
}

void lc_stats_get(const lc_cache *c, lc_stats *out)
{
    memset(out, 0, sizeof *out);
    out->objects = c->count;
    out->conversations = c->by_type[OBJ_CONVERSATION];
    out->messages = c->by_type[OBJ_MESSAGE];
    out->announcements = c->by_type[OBJ_ANNOUNCEMENT];
    out->identities = c->by_type[OBJ_IDENTITY];
    out->bytes = c->bytes + c->cap * sizeof(lc_entry *) + sizeof *c;
}
