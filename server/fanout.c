/* fanout.c - the registry of open sockets by user, and fan-out: change packets queued on
 * sockets and logged per recipient for Event.replay. The only file that walks the registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "fanout.h"

#define NBUCKETS 4096
static srv_conn *conns;              /* every open socket */
static srv_conn *buckets[NBUCKETS];  /* sockets by user */
static void (*wake_fn)(srv_conn *c); /* the network layer's "flush c" */
static size_t headroom;              /* bytes before each packet's text (LWS_PRE) */

/* ---------- registry ---------- */

void fanout_set_network(void (*wake)(srv_conn *c), size_t pkt_headroom)
{
    wake_fn = wake;
    headroom = pkt_headroom;
}

void conn_wake(srv_conn *c)
{
    if (wake_fn) wake_fn(c);
}

static unsigned user_hash(const char *u)
{
    unsigned h = 2166136261u;
    for (; *u; u++) h = (h ^ (unsigned char)*u) * 16777619u;
    return h % NBUCKETS;
}

srv_conn *srv_user_conns(const char *user) { return buckets[user_hash(user)]; }

srv_conn *registry_first(void) { return conns; }

void registry_add(srv_conn *c)
{
    c->hash = user_hash(c->user);
    c->hprev = NULL;
    c->hnext = buckets[c->hash];
    if (c->hnext) c->hnext->hprev = c;
    buckets[c->hash] = c;
    c->next = conns;
    c->prev = NULL;
    if (conns) conns->prev = c;
    conns = c;
}

int registry_remove(srv_conn *c)
{
    srv_pkt *p;
    int was_open = c->next || c->prev || conns == c;
    if (c->prev)
        c->prev->next = c->next;
    else if (conns == c)
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else if (buckets[c->hash] == c)
        buckets[c->hash] = c->hnext;
    if (c->hnext) c->hnext->hprev = c->hprev;
    c->hnext = c->hprev = NULL;
    while ((p = srv_conn_pop(c)) != NULL) free(p);
    free(c->rx);
    c->rx = NULL;
    return was_open;
}

void srv_tick(void)
{
    srv_conn *c;
    int64_t now = srv_now_ms();
    for (c = conns; c; c = c->next) {
        if (c->stall_until && c->stall_until <= now) {
            c->stall_until = 0;
            conn_wake(c);
        }
        if (!c->close_pending && c->session_expires_ms <= now) { /* the session ran out */
            c->close_pending = 1;
            conn_wake(c);
        }
    }
}

/* ---------- packets ---------- */

static void conn_enqueue(srv_conn *c, const char *type, const char *body, size_t blen, int64_t ts_ms)
{
    jbuf b;
    srv_pkt *p;
    if (c->close_pending) return;
    if (c->qbytes > 16u * 1024 * 1024) { /* a reader that never reads: drop it */
        c->close_pending = 1;
        conn_wake(c);
        return;
    }
    c->counter += c->skip;
    c->skip = 0;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"type\":\"");
    jbuf_puts(&b, type);
    jbuf_puts(&b, "\",\"counter\":");
    jbuf_int(&b, c->counter++);
    jbuf_puts(&b, ",\"timestamp\":");
    w_iso(&b, ts_ms);
    jbuf_puts(&b, ",\"body\":");
    jbuf_putn(&b, body, blen);
    jbuf_putc(&b, '}');
    if (b.oom || !(p = malloc(sizeof *p + headroom + b.len))) {
        jbuf_free(&b);
        return;
    }
    p->next = NULL;
    p->len = b.len;
    memcpy(p->data + headroom, b.data, b.len);
    jbuf_free(&b);
    if (c->qtail)
        c->qtail->next = p;
    else
        c->qhead = p;
    c->qtail = p;
    c->qbytes += p->len;
    conn_wake(c);
}

void conn_send(srv_conn *c, const char *type, const char *body)
{
    conn_enqueue(c, type, body, strlen(body), srv_now_ms());
}

srv_pkt *srv_conn_pop(srv_conn *c)
{
    srv_pkt *p = c->qhead;
    if (!p) return NULL;
    c->qhead = p->next;
    if (!c->qhead) c->qtail = NULL;
    c->qbytes -= p->len;
    return p;
}

/* Body of a change/operation packet for one socket's API version. */
static void build_body(jbuf *b, int api, const char *kind, const char *op, const char *otype, const char *oid,
                       const char *data)
{
    jbuf_putc(b, '{');
    if (strcmp(kind, "operation") == 0) {
        jbuf_puts(b, "\"method\":");
        w_str(b, op);
        jbuf_puts(b, ",\"object\":{\"id\":");
        w_str(b, oid);
        jbuf_putc(b, '}');
    } else {
        jbuf_puts(b, "\"operation\":");
        w_str(b, (strcmp(op, "patch") == 0 && api == 2) ? "update" : op);
        jbuf_puts(b, ",\"object\":{\"type\":");
        w_str(b, otype);
        jbuf_puts(b, ",\"id\":");
        w_str(b, oid);
        jbuf_puts(b, ",\"url\":");
        if (strncmp(oid, "layer://", 8) == 0) {
            jbuf_putc(b, '"');
            jbuf_puts(b, render_base_url());
            jbuf_puts(b, oid + 8);
            jbuf_putc(b, '"');
        } else {
            jbuf_puts(b, "null");
        }
        jbuf_putc(b, '}');
    }
    jbuf_puts(b, ",\"data\":");
    jbuf_puts(b, data);
    jbuf_putc(b, '}');
}

void send_event(srv_conn *c, const char *kind, const char *op, const char *otype, const char *oid, const char *data,
                int64_t ts_ms)
{
    jbuf b;
    jbuf_init(&b);
    build_body(&b, c->api, kind, op, otype, oid, data);
    if (!b.oom) conn_enqueue(c, kind, b.data, b.len, ts_ms);
    jbuf_free(&b);
}

/* Each recipient's events get strictly increasing timestamps (the clock, or
 * one past the last logged one), so Event.replay from a timestamp is exact
 * and two identical changes in one millisecond stay two packets. The last
 * stamp is read from the log, so a restarted server continues it. */
static int64_t next_event_ts(const char *user)
{
    int64_t now = srv_now_ms(), last = 0;
    sqlite3_stmt *st = sql(Q_EVENT_LAST_TS);
    bind_text(st, 1, user);
    if (sqlite3_step(st) == SQLITE_ROW) last = sqlite3_column_int64(st, 0);
    return last >= now ? last + 1 : now;
}

/* Record a change in the user's event log and push it to their sockets
 * (except those catching up through Event.replay: the log reaches them). */
void emit(const char *user, const char *kind, const char *op, const char *otype, const char *oid, const char *data)
{
    srv_conn *c;
    int64_t ts = next_event_ts(user);
    sqlite3_stmt *st = sql(Q_EVENT_INSERT);
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, ts);
    bind_text(st, 3, kind);
    bind_text(st, 4, op);
    bind_text(st, 5, otype);
    bind_text(st, 6, oid);
    bind_text(st, 7, data);
    sqlite3_step(st);
    for (c = srv_user_conns(user); c; c = c->hnext)
        if (strcmp(c->user, user) == 0 && !c->replaying) send_event(c, kind, op, otype, oid, data, ts);
}

static void object_id(char *out, size_t n, const char *otype, const char *uuid)
{
    const char *kind = strcmp(otype, "Message") == 0        ? "messages"
                       : strcmp(otype, "Announcement") == 0 ? "announcements"
                                                            : "conversations";
    snprintf(out, n, "layer:///%s/%s", kind, uuid);
}

void emit_conv(const char *user, const char *op, const char *uuid, const char *data)
{
    char oid[64];
    object_id(oid, sizeof oid, "Conversation", uuid);
    emit(user, "change", op, "Conversation", oid, data);
}

void emit_msg(const char *user, const char *op, const char *uuid, const char *data)
{
    char oid[64];
    object_id(oid, sizeof oid, "Message", uuid);
    emit(user, "change", op, "Message", oid, data);
}

void emit_members(const char *conv, const char *kind, const char *op, const char *otype, const char *uuid,
                  const char *data)
{
    char oid[64], **mem;
    int i, n = conv_members(conv, &mem);
    object_id(oid, sizeof oid, otype, uuid);
    for (i = 0; i < n; i++) emit(mem[i], kind, op, otype, oid, data);
    free_list(mem, n);
}

/* A read receipt: everyone else learns the reader's recipient_status; the reader's
 * own copy also stops being unread, so its cached is_unread is never stale. */
void emit_read_receipt(const char *conv, const char *reader, const char *otype, const char *uuid,
                       const char *status_patch)
{
    char oid[64], **mem;
    int i, n = conv ? conv_members(conv, &mem) : 0;
    jbuf own;
    jbuf_init(&own);
    jbuf_puts(&own, status_patch);
    if (own.len) own.len--; /* drop the closing ']' */
    jbuf_puts(&own, ",{\"operation\":\"set\",\"property\":\"is_unread\",\"value\":false}]");
    jbuf_putc(&own, 0);
    object_id(oid, sizeof oid, otype, uuid);
    for (i = 0; i < n; i++)
        if (strcmp(mem[i], reader)) emit(mem[i], "change", "patch", otype, oid, status_patch);
    if (conv) free_list(mem, n);
    if (!own.oom) emit(reader, "change", "patch", otype, oid, own.data);
    jbuf_free(&own);
}

/* Conversation patch telling `user` its last_message and unread count. */
void emit_conv_summary(const char *user, const char *conv, int with_last)
{
    jbuf b;
    int64_t from = 0;
    char last[37];
    if (!conv_member(conv, user, &from)) return;
    jbuf_init(&b);
    jbuf_putc(&b, '[');
    if (with_last) {
        if (conv_last_message(conv, user, from, last)) {
            jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"last_message\",\"id\":\"layer:///messages/");
            jbuf_puts(&b, last);
            jbuf_puts(&b, "\",\"value\":");
            w_message(&b, last, user);
            jbuf_puts(&b, "},");
        } else {
            jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"last_message\",\"value\":null},");
        }
    }
    jbuf_puts(&b, "{\"operation\":\"set\",\"property\":\"unread_message_count\",\"value\":");
    jbuf_int(&b, conv_unread(conv, user, from));
    jbuf_puts(&b, "}]");
    if (!b.oom) emit_conv(user, "patch", conv, b.data);
    jbuf_free(&b);
}
