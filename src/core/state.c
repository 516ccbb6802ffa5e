/* state.c - the client's state file over SQLite (see state.h). */
#include "state.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { Q_GET, Q_PUT, Q_OUT_ADD, Q_OUT_DEL, Q_OUT_ALL, Q_COUNT };

static const char *const queries[Q_COUNT] = {
    "SELECT v FROM kv WHERE k = ?1",
    "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)",
    "INSERT OR IGNORE INTO outbox (id, method, object_id, data) VALUES (?1, ?2, ?3, ?4)",
    "DELETE FROM outbox WHERE id = ?1",
    "SELECT id, method, object_id, data FROM outbox ORDER BY rowid",
};

struct ls_state {
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    char *path;
    void *value; /* the last ls_state_get result */
};

static int fail(ls_state *st, char *err, const char *what)
{
    if (err) snprintf(err, LS_STATE_ERR_LEN, "state file %s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
    return 0;
}

static int exec(ls_state *st, const char *sql, char *err)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        if (err) snprintf(err, LS_STATE_ERR_LEN, "state file %s is in use by another process", st->path);
        return 0;
    }
    return rc == SQLITE_OK || fail(st, err, sql);
}

ls_state *ls_state_open(const char *path, char *err)
{
    ls_state *st = calloc(1, sizeof *st);
    int i;
    if (!st || !(st->path = strdup(path))) {
        free(st);
        if (err) snprintf(err, LS_STATE_ERR_LEN, "state file %s: out of memory", path);
        return NULL;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        fail(st, err, "cannot open");
        ls_state_close(st);
        return NULL;
    }
    /* Exclusive locking: the first write takes the file and keeps it, so a
     * second bot on the same file is refused instead of racing this one. */
    if (!exec(st, "PRAGMA locking_mode = EXCLUSIVE", err) || !exec(st, "PRAGMA journal_mode = WAL", err) ||
        !exec(st, "PRAGMA synchronous = NORMAL", err) || !exec(st, "BEGIN EXCLUSIVE", err) ||
        !exec(st,
              "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL);"
              "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, method TEXT NOT NULL,"
              " object_id TEXT, data TEXT NOT NULL)",
              err) ||
        !exec(st, "COMMIT", err)) {
        ls_state_close(st);
        return NULL;
    }
    for (i = 0; i < Q_COUNT; i++)
        if (sqlite3_prepare_v2(st->db, queries[i], -1, &st->q[i], NULL) != SQLITE_OK) {
            fail(st, err, "prepare");
            ls_state_close(st);
            return NULL;
        }
    return st;
}

void ls_state_close(ls_state *st)
{
    int i;
    if (!st) return;
    for (i = 0; i < Q_COUNT; i++) sqlite3_finalize(st->q[i]);
    sqlite3_close(st->db);
    free(st->value);
    free(st->path);
    free(st);
}

/* Run a statement that returns no rows, with up to four text binds. */
static int run(ls_state *st, int which, const char *a, const char *b, const char *c, const char *d, char *err)
{
    sqlite3_stmt *q = st->q[which];
    const char *args[4] = {a, b, c, d};
    int i, rc;
    for (i = 0; i < 4; i++)
        if (i < sqlite3_bind_parameter_count(q)) sqlite3_bind_text(q, i + 1, args[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE || fail(st, err, "write");
}

const void *ls_state_get(ls_state *st, const char *name, size_t *len, char *err)
{
    sqlite3_stmt *q = st->q[Q_GET];
    int rc;
    *len = 0;
    free(st->value);
    st->value = NULL;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        const void *v = sqlite3_column_blob(q, 0);
        if ((st->value = malloc(n ? n : 1))) {
            if (n) memcpy(st->value, v, n);
            *len = n;
        }
    } else if (rc != SQLITE_DONE) {
        fail(st, err, "read");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return st->value;
}

int ls_state_begin(ls_state *st, char *err) { return exec(st, "BEGIN", err); }
int ls_state_commit(ls_state *st, char *err) { return exec(st, "COMMIT", err); }
void ls_state_rollback(ls_state *st) { sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL); }

int ls_state_put(ls_state *st, const char *name, const void *value, size_t len, char *err)
{
    sqlite3_stmt *q = st->q[Q_PUT];
    int rc;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, len ? value : "", (int)len, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE || fail(st, err, "write");
}

int ls_state_outbox_add(ls_state *st, const char *id, const char *method, const char *object_id, const char *data,
                        char *err)
{
    return run(st, Q_OUT_ADD, id, method, object_id, data, err);
}

int ls_state_outbox_remove(ls_state *st, const char *id, char *err)
{
    return run(st, Q_OUT_DEL, id, NULL, NULL, NULL, err);
}

int ls_state_outbox_each(ls_state *st, ls_outbox_fn fn, void *ud, char *err)
{
    sqlite3_stmt *q = st->q[Q_OUT_ALL];
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (!fn(ud, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
                (const char *)sqlite3_column_text(q, 2), (const char *)sqlite3_column_text(q, 3)))
            break;
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW || fail(st, err, "read");
}
