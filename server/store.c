/* store.c - the server's SQLite database: its one handle, the schema, a prepared-statement cache
 * (sql.c names the statements), transactions. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "srv.h"

#define NCACHE 256
static struct {
    const char *text;
    sqlite3_stmt *st;
} cache[NCACHE];
static int ncache;
static sqlite3 *db;

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA foreign_keys=OFF;"
    "CREATE TABLE IF NOT EXISTS identities(user_id TEXT PRIMARY KEY, display_name TEXT, avatar_url TEXT,"
    " first_name TEXT, last_name TEXT, email_address TEXT, phone_number TEXT, public_key TEXT,"
    " type TEXT DEFAULT 'user', metadata TEXT DEFAULT '{}', presence TEXT DEFAULT 'offline',"
    " last_seen_ms INTEGER DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS nonces(nonce TEXT PRIMARY KEY, created_ms INTEGER, used INTEGER DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sessions(token TEXT PRIMARY KEY, user_id TEXT, created_ms INTEGER,"
    " expires_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS conversations(uuid TEXT PRIMARY KEY, created_ms INTEGER, is_distinct INTEGER,"
    " pkey TEXT, metadata TEXT DEFAULT '{}', next_pos INTEGER DEFAULT 1, last_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS conv_pkey ON conversations(pkey);"
    "CREATE TABLE IF NOT EXISTS members(conv TEXT, user_id TEXT, active INTEGER DEFAULT 1,"
    " from_pos INTEGER DEFAULT 0, unread INTEGER DEFAULT 0, PRIMARY KEY(conv, user_id));"
    "CREATE INDEX IF NOT EXISTS members_user ON members(user_id, active);"
    "CREATE TABLE IF NOT EXISTS messages(uuid TEXT PRIMARY KEY, conv TEXT, pos INTEGER, sender TEXT,"
    " sent_ms INTEGER, parts TEXT, deleted INTEGER DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS messages_conv ON messages(conv, pos);"
    "CREATE TABLE IF NOT EXISTS rstatus(msg TEXT, user_id TEXT, status INTEGER, hidden INTEGER DEFAULT 0,"
    " PRIMARY KEY(msg, user_id));"
    "CREATE TABLE IF NOT EXISTS following(user_id TEXT, target TEXT, PRIMARY KEY(user_id, target));"
    "CREATE TABLE IF NOT EXISTS announcements(uuid TEXT PRIMARY KEY, sent_ms INTEGER, sender_name TEXT,"
    " parts TEXT, pos INTEGER);"
    "CREATE TABLE IF NOT EXISTS ann_rcpt(ann TEXT, user_id TEXT, status INTEGER DEFAULT 0,"
    " deleted INTEGER DEFAULT 0, PRIMARY KEY(ann, user_id));"
    "CREATE TABLE IF NOT EXISTS content(uuid TEXT PRIMARY KEY, owner TEXT, mime TEXT, size INTEGER,"
    " upload_key TEXT, data BLOB, complete INTEGER DEFAULT 0);"
    /* Which messages carry which content: attached content belongs to their conversations. */
    "CREATE TABLE IF NOT EXISTS content_refs(content TEXT, msg TEXT, PRIMARY KEY(content, msg));"
    "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT, ts_ms INTEGER,"
    " kind TEXT, op TEXT, otype TEXT, oid TEXT, data TEXT);"
    "CREATE INDEX IF NOT EXISTS events_user ON events(user_id, ts_ms);"
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER);";

/* Databases written before content_refs existed: record the content their messages carry. */
static const char *content_refs_backfill =
    "INSERT OR IGNORE INTO content_refs(content, msg)"
    " SELECT substr(json_extract(p.value, '$.content.id'), 18), m.uuid FROM messages m, json_each(m.parts) p"
    " WHERE json_valid(m.parts) AND json_extract(p.value, '$.content.id') LIKE 'layer:///content/%'";

static int table_exists(const char *name)
{
    sqlite3_stmt *st;
    int found;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int store_open(const char *path)
{
    char *err = NULL;
    int had_content_refs;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        fprintf(stderr, "layer-server: cannot open database %s: %s\n", path, sqlite3_errmsg(db));
        return 0;
    }
    sqlite3_busy_timeout(db, 2000);
    had_content_refs = table_exists("content_refs");
    if (sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK ||
        (!had_content_refs && sqlite3_exec(db, content_refs_backfill, NULL, NULL, &err) != SQLITE_OK)) {
        fprintf(stderr, "layer-server: schema: %s\n", err ? err : "?");
        sqlite3_free(err);
        return 0;
    }
    /* Replay reaches back 30 days at most (layer-websdk gives up after 30 hours offline). */
    {
        sqlite3_stmt *st = store_prep("DELETE FROM events WHERE ts_ms<?");
        sqlite3_bind_int64(st, 1, srv_now_ms() - 30LL * 24 * 3600 * 1000);
        sqlite3_step(st);
    }
    return 1;
}

void store_close(void)
{
    int i;
    for (i = 0; i < ncache; i++) sqlite3_finalize(cache[i].st);
    ncache = 0;
    if (db) sqlite3_close(db);
    db = NULL;
}

sqlite3_stmt *store_prep(const char *text)
{
    /* Keyed by the literal's address: every call site passes a constant. */
    int i;
    for (i = 0; i < ncache; i++) {
        if (cache[i].text == text) {
            sqlite3_reset(cache[i].st);
            sqlite3_clear_bindings(cache[i].st);
            return cache[i].st;
        }
    }
    if (ncache == NCACHE) abort();
    if (sqlite3_prepare_v2(db, text, -1, &cache[ncache].st, NULL) != SQLITE_OK) {
        fprintf(stderr, "layer-server: SQL error %s in: %s\n", sqlite3_errmsg(db), text);
        abort();
    }
    cache[ncache].text = text;
    return cache[ncache++].st;
}

int store_exec(const char *text) { return sqlite3_exec(db, text, NULL, NULL, NULL) == SQLITE_OK; }

int store_is_open(void) { return db != NULL; }
int store_changes(void) { return sqlite3_changes(db); }

int store_begin(void) { return store_exec("BEGIN IMMEDIATE"); }
int store_commit(void) { return store_exec("COMMIT"); }
void store_rollback(void) { store_exec("ROLLBACK"); }
