/* state.h - a client's sync state in a SQLite file: named values (the
 * durable cursor) and the outbox of mutations not yet acknowledged.
 *
 * One process owns a state file at a time (SQLite exclusive locking); every
 * change between ls_state_begin and ls_state_commit lands together or not at
 * all. WAL with synchronous=NORMAL: a commit survives the process being
 * killed at any moment; a power cut may lose the last commits, never
 * consistency. Errors are 0 returns with a message in err (ERR_LEN bytes). */
#ifndef LAYER_STATE_H
#define LAYER_STATE_H

#include <stddef.h>

#define LS_STATE_ERR_LEN 256

typedef struct ls_state ls_state;

ls_state *ls_state_open(const char *path, char *err);
void ls_state_close(ls_state *st);

/* A named value, or NULL (with *len 0) if absent. Valid until the next call. */
const void *ls_state_get(ls_state *st, const char *name, size_t *len, char *err);

int ls_state_begin(ls_state *st, char *err);
int ls_state_put(ls_state *st, const char *name, const void *value, size_t len, char *err);
int ls_state_outbox_add(ls_state *st, const char *id, const char *method, const char *object_id, const char *data,
                        char *err);
int ls_state_outbox_remove(ls_state *st, const char *id, char *err);
int ls_state_commit(ls_state *st, char *err);
void ls_state_rollback(ls_state *st);

/* Each outbox row in the order it was added; stops early when fn returns 0. */
typedef int (*ls_outbox_fn)(void *ud, const char *id, const char *method, const char *object_id, const char *data);
int ls_state_outbox_each(ls_state *st, ls_outbox_fn fn, void *ud, char *err);

#endif
