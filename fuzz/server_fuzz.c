/* server_fuzz.c - libFuzzer target for layer-server's REST request handler and WebSocket frame handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv_ctx server;
static srv_conn conn;
static const char *token = "fuzz-session-token-0123456789abcdef";
static const char *paths[] = {
    "/nonces", "/sessions", "/conversations", "/conversations/11111111-1111-4111-8111-111111111111",
    "/conversations/11111111-1111-4111-8111-111111111111/messages",
    "/conversations/11111111-1111-4111-8111-111111111111/mark_all_read",
    "/messages/22222222-2222-4222-8222-222222222222", "/messages/22222222-2222-4222-8222-222222222222/receipts",
    "/identities/alice", "/identities", "/following/users/bob", "/announcements", "/content",
    "/admin/faults", "/admin/identities", "/admin/announcements", "/", "/ping"};

static void setup(void)
{
    static int done;
    sqlite3_stmt *st;
    if (done) return;
    done = 1;
    if (!store_open(":memory:")) abort();
    render_configure("http://127.0.0.1:1", "k");
    strcpy(server.secret, "fuzz");
    strcpy(server.admin_token, "adm");
    server.session_ttl_ms = 1000000000;
    server.log_level = 0;
    st = store_prep("INSERT INTO sessions(token, user_id, created_ms, expires_ms) VALUES(?, 'alice', 0, 9e15)");
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_step(st);
    store_exec("INSERT INTO identities(user_id, display_name) VALUES('alice','alice'),('bob','bob');"
               "INSERT INTO conversations(uuid, created_ms, is_distinct, pkey, metadata, last_ms)"
               " VALUES('11111111-1111-4111-8111-111111111111', 1, 1, 'alice\nbob\n', '{}', 1);"
               "INSERT INTO members(conv, user_id) VALUES('11111111-1111-4111-8111-111111111111','alice'),"
               "('11111111-1111-4111-8111-111111111111','bob');"
               "INSERT INTO messages(uuid, conv, pos, sender, sent_ms, parts) VALUES('22222222-2222-4222-8222-222222222222',"
               "'11111111-1111-4111-8111-111111111111', 1, 'bob', 1, '[{\"mime_type\":\"text/plain\",\"body\":\"x\"}]');"
               "UPDATE conversations SET next_pos=2;"
               "INSERT INTO rstatus(msg, user_id, status) VALUES('22222222-2222-4222-8222-222222222222','alice',0);");
    strcpy(conn.user, "alice");
    conn.api = 3;
    srv_conn_open(&server, &conn);
}

/* Inputs must not poison later ones: restore the session and faults, and
 * keep the in-memory database small. */
static void reset(void)
{
    static unsigned long n;
    sqlite3_stmt *st = store_prep("INSERT OR REPLACE INTO sessions(token, user_id, created_ms, expires_ms) VALUES(?, 'alice', 0, 9e15)");
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_step(st);
    server.fault_left = 0;
    conn.skip = 0;
    conn.stall_until = 0;
    conn.close_pending = 0;
    if (++n % 2000 == 0)
        store_exec("DELETE FROM events; DELETE FROM nonces; DELETE FROM content; DELETE FROM announcements;"
                   "DELETE FROM ann_rcpt; DELETE FROM following;"
                   "DELETE FROM messages WHERE uuid<>'22222222-2222-4222-8222-222222222222';"
                   "DELETE FROM rstatus WHERE msg<>'22222222-2222-4222-8222-222222222222';"
                   "DELETE FROM conversations WHERE uuid<>'11111111-1111-4111-8111-111111111111';"
                   "DELETE FROM members WHERE conv<>'11111111-1111-4111-8111-111111111111';");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_pkt *p;
    setup();
    reset();
    if (size < 3) return 0;
    if (data[0] % 3 == 0) {
        srv_ws_frame(&server, &conn, (const char *)data + 1, size - 1);
    } else {
        srv_req q;
        srv_resp r;
        char *body;
        const uint8_t *b = data + 3;
        size_t bl = size - 3;
        memset(&q, 0, sizeof q);
        q.method = data[1] % 7 + 1;
        if (data[0] % 3 == 1) {
            snprintf(q.path, sizeof q.path, "%s", paths[data[2] % (sizeof paths / sizeof *paths)]);
        } else {
            /* the path itself comes from the input, up to a newline */
            const uint8_t *nl = memchr(b, '\n', bl);
            size_t n = nl ? (size_t)(nl - b) : bl;
            if (n >= sizeof q.path) n = sizeof q.path - 1;
            memcpy(q.path, b, n);
            q.path[n] = 0;
            if (strlen(q.path) != n) return 0; /* lws never hands over a NUL inside a path */
            b += nl ? n + 1 : n;
            bl -= nl ? n + 1 : n;
        }
        strcpy(q.accept, data[2] & 1 ? "application/vnd.layer+json; version=2.0" : "application/vnd.layer+json; version=3.0");
        strcpy(q.content_type, q.method == M_PATCH ? "application/vnd.layer-patch+json" : "application/json");
        snprintf(q.authorization, sizeof q.authorization, data[2] & 2 ? "Bearer adm" : "Layer session-token=\"%s\"", token);
        strcpy(q.upload_type, "text/plain");
        strcpy(q.upload_len, "5");
        body = malloc(bl + 1);
        if (!body) return 0;
        memcpy(body, b, bl);
        body[bl] = 0;
        q.body = body;
        q.body_len = bl;
        srv_resp_init(&r);
        srv_handle_http(&server, &q, &r);
        if (r.status < 100 || r.status > 599) abort();
        srv_resp_free(&r);
        free(body);
    }
    while ((p = srv_conn_pop(&conn)) != NULL) free(p);
    return 0;
}
