/*
 * cache.h - the object cache: Layer objects by id, each in its own compact
 * document, kept current by applying decoded change packets.
 *
 * create is an upsert, delete of an unknown object is ignored, a patch is
 * applied atomically (a failed patch leaves the object as it was and reports
 * why), and a Conversation delete with from_position drops that
 * conversation's messages at or before the position.
 *
 * Bounds: messages per conversation and total bytes. The oldest messages of a
 * conversation, then the least recently changed objects, are evicted first;
 * pinned objects (held by Lua code) never are. A pinned object that is
 * deleted stays readable through its pin and reports itself deleted.
 */
#ifndef LAYER_CACHE_H
#define LAYER_CACHE_H

#include "api.h"

#include "json.h"
#include "packet.h"
#include "patch.h"

LAYER_BEGIN_DECLS

typedef struct lc_cache lc_cache;
typedef struct lc_entry lc_ref; /* a pinned object */
typedef struct lc_hold lc_hold; /* a document held for a change list */

typedef struct {
    size_t max_messages_per_conversation; /* 0: no limit */
    size_t max_bytes;                     /* 0: no limit */
} lc_limits;

typedef enum {
    LC_CREATED = 1, /* new object */
    LC_REPLACED,    /* create for a known id: upsert */
    LC_PATCHED,
    LC_DELETED,
    LC_TRUNCATED,  /* from_position: messages removed, conversation kept */
    LC_IGNORED,    /* delete or patch of an unknown object */
    LC_MARKED_READ /* Conversation.mark_all_read */
} lc_outcome;

typedef struct {
    lc_outcome outcome;
    pkt_object_type type;
    const char *id; /* valid until the next lc_apply */
    size_t id_len;
    /* LC_PATCHED: valid until the next lc_apply */
    const lp_change *changes;
    size_t n_changes;
    int changed; /* LC_PATCHED: the object differs from before (with or without tracking) */
    /* LC_PATCHED with track_changes: the doc the changes point into, held
     * for the caller until lc_release (NULL if holding failed: then they
     * are valid until the next lc_apply, as without it). */
    lc_hold *hold;
    /* LC_CREATED / LC_REPLACED / LC_PATCHED: the object's entry, alive until
     * the next change to the cache (lc_ref_value, lc_pin_ref): no second
     * lookup by id. A create's entry only with lc_keep_created: without it
     * the conversation bound may have evicted it already. */
    lc_ref *entry;
    size_t removed; /* LC_TRUNCATED / LC_MARKED_READ: messages affected */
} lc_event;

typedef struct {
    size_t objects, conversations, messages, identities, announcements;
    size_t bytes;   /* heap held by cached documents, entries and indexes */
    size_t pinned;  /* objects held through lc_pin, deleted ones included */
    size_t evicted; /* objects dropped by the bounds so far */
} lc_stats;

lc_cache *lc_new(const lc_limits *limits); /* NULL limits: unbounded */
void lc_free(lc_cache *c);
/* For a cache whose creates become events: a created message is not evicted
 * by max_messages_per_conversation before its event pins it. */
void lc_keep_created(lc_cache *c, int on);

typedef struct {
    int out_of_memory; /* 1: the packet may be fine, an allocation failed */
    char message[320];
} lc_error;

/* Apply a change or operation packet. Returns 1 with ev filled, or 0 with
 * err filled (a failed patch, a packet the cache cannot apply, or no memory).
 * ev->changes is filled only with track_changes: tracking costs a copy of
 * every patched path, wasted when nobody reads the list (ev->changed says
 * whether anything changed either way). */
int lc_apply(lc_cache *c, const pkt *p, int track_changes, lc_event *ev, lc_error *err);
/* Let go of an lc_event.hold; safe after lc_free and with NULL. */
void lc_release(lc_hold *h);

/* Insert or replace an object fetched over REST (copied). */
int lc_put(lc_cache *c, pkt_object_type type, const jv *object);

/* Current value of an object, or NULL. Valid until the next mutation. */
const jv *lc_get(const lc_cache *c, const char *id, size_t len);

void lc_stats_get(const lc_cache *c, lc_stats *out);

/* Idle-time work: repack patched entries that still carry garbage, looking
 * at up to max_slots table slots from where the last call stopped. Returns
 * the entries repacked. A pass over every slot leaves no garbage. */
size_t lc_maintain(lc_cache *c, size_t max_slots);
size_t lc_slots(const lc_cache *c);

/* Bring the cache, and conversations, that pinned objects held over their
 * bounds back under them once those pins are gone. Cheap when nothing was released; the session
 * calls it every tick. Never call it from inside a pin holder's release. */
void lc_settle(lc_cache *c);

/* Pinning: a pinned object is never evicted, and its ref stays valid after a
 * delete (lc_ref_deleted says so) until the last lc_unpin. Pins count. */
lc_ref *lc_pin(lc_cache *c, const char *id, size_t len); /* NULL if not cached */
void lc_pin_again(lc_ref *r);
lc_ref *lc_pin_ref(lc_cache *c, lc_ref *r); /* pin an entry at hand (lc_event.entry) */
void lc_unpin(lc_cache *c, lc_ref *r);
const jv *lc_ref_value(const lc_ref *r); /* valid until the next mutation */
int lc_ref_deleted(const lc_ref *r);
pkt_object_type lc_ref_type(const lc_ref *r);

/* A conversation's cached messages, ordered by position (oldest first).
 * Returns the count; *out points at internal storage valid until the next
 * mutation. */
size_t lc_conversation_messages(const lc_cache *c, const char *conversation_id, size_t len, lc_ref *const **out);

LAYER_END_DECLS
#endif
