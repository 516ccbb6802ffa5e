/*
 * patch.h - the Layer-Patch engine: applies set/delete/add/remove operations
 * to an immutable JSON document, atomically, and reports what changed.
 *
 * Semantics are those of layer-patch 1.2.1 (docs/layer-patch.md), minus
 * camelCase, propertyNameMap and abort callbacks, and with one deliberate
 * difference: a patch either applies whole or not at all.
 */
#ifndef LAYER_PATCH_H
#define LAYER_PATCH_H

#include "api.h"

#include "json.h"

LAYER_BEGIN_DECLS

/* Resolves an operation's `id` (layer-patch's getObjectCallback). Returns NULL
 * when the id is unknown. The value may live in any doc; it is copied. */
typedef const jv *(*lp_lookup_fn)(void *ud, const char *id, size_t len);

typedef struct {
    lp_lookup_fn lookup; /* NULL: operations with an id fail */
    void *lookup_ud;
    int register_values; /* unknown id + value: remember value under id */
    int return_ids;      /* unknown id, no value: use the id string itself */
    int track_changes;   /* fill lp_result.changes */
    /* Replace members of `object` where they are (no copy of the path to
     * them), undone if the patch fails. Only for a caller that holds no
     * other reference into object; ignored with track_changes, whose old
     * values point into it, and for a patch where one operation's path leads
     * into another's (lp_result.changed then needs the old values). */
    int in_place;
} lp_options;

typedef struct {
    const char *property; /* base (top-level) property, in the result doc */
    size_t property_len;
    const jv *paths;     /* JSON array of the raw property strings, in order of first use */
    const jv *old_value; /* NULL when the property was absent */
    const jv *new_value; /* NULL when the property is now absent */
} lp_change;

typedef struct {
    const char *id;
    size_t id_len;
    const jv *value;
} lp_registration;

typedef struct {
    jv root; /* the new object, in doc */
    /* Whether root differs from the object (JSON equality, so a replayed
     * patch reports 0), judged operation by operation: a set to an equal
     * value, a delete of an absent key, an add of a present element or a
     * remove of an absent one changes nothing and writes nothing. */
    int changed;
    lp_change *changes; /* malloc'd, n_changes entries */
    size_t n_changes;
    lp_registration *registered; /* values stored under new ids (register_values) */
    size_t n_registered;
} lp_result;

typedef struct {
    long op_index;     /* 0-based index of the failing operation, -1 if none */
    int out_of_memory; /* 1: the patch may be fine, an allocation failed */
    char message[256]; /* "operation 3 (add 'participants'): ..." (counted from 1) */
} lp_error;

/*
 * Apply `ops` (a JSON array of operations) to `object`. New nodes are
 * allocated in `doc`, which must own `object` or outlive the result; values
 * from `ops` and from lookups are copied into `doc`. `object` itself is not
 * modified (unless opt->in_place), so on failure nothing has changed.
 * Returns 1 on success, 0 with err filled on failure. Free the result with
 * lp_result_free.
 */
int lp_apply(jv_doc *doc, const jv *object, const jv *ops, const lp_options *opt, lp_result *out, lp_error *err);
void lp_result_free(lp_result *res);

/* Split a property path by layer-patch's escaping rules into segments
 * allocated in doc (a JSON array of strings). Returns 0 on OOM. */
int lp_split_path(jv_doc *doc, const char *path, size_t len, jv *segments);

/* Append one path segment to b escaped so lp_split_path reads it back whole:
 * a backslash before every '.' and every backslash (ids may hold both). */
void lp_escape_segment(jbuf *b, const char *segment, size_t len);

LAYER_END_DECLS
#endif
