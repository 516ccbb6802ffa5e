/*
 * identities.c - profile changes of an identity. A change is stored, then
 * pushed as an Identity patch to the user, their followers and everyone who
 * shares a conversation with them, as Layer did (layer-websdk turns it into
 * identities:change). The patches are logged, so Event.replay re-sends them.
 * Also the identities and following endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "fanout.h"
#include "handlers.h"

/* Each profile field: its name and the named statements reading and writing it. */
static const struct {
    const char *name;
    sql_id get, set;
} fields[] = {
    {"display_name", Q_IDENTITY_GET_DISPLAY_NAME, Q_IDENTITY_SET_DISPLAY_NAME},
    {"avatar_url", Q_IDENTITY_GET_AVATAR_URL, Q_IDENTITY_SET_AVATAR_URL},
    {"first_name", Q_IDENTITY_GET_FIRST_NAME, Q_IDENTITY_SET_FIRST_NAME},
    {"last_name", Q_IDENTITY_GET_LAST_NAME, Q_IDENTITY_SET_LAST_NAME},
    {"email_address", Q_IDENTITY_GET_EMAIL_ADDRESS, Q_IDENTITY_SET_EMAIL_ADDRESS},
    {"phone_number", Q_IDENTITY_GET_PHONE_NUMBER, Q_IDENTITY_SET_PHONE_NUMBER},
    {"public_key", Q_IDENTITY_GET_PUBLIC_KEY, Q_IDENTITY_SET_PUBLIC_KEY},
    {"type", Q_IDENTITY_GET_TYPE, Q_IDENTITY_SET_TYPE},
};
#define N_FIELDS (int)(sizeof fields / sizeof fields[0])
#define N_TOKEN_FIELDS 4 /* an identity token's claims may set the first four */

static void put_set_op(jbuf *ops, int *n, const char *property, const jv *value)
{
    jbuf_puts(ops, *n ? "," : "[");
    jbuf_puts(ops, "{\"operation\":\"set\",\"property\":");
    w_str(ops, property);
    jbuf_puts(ops, ",\"value\":");
    jv_write(ops, value);
    jbuf_putc(ops, '}');
    (*n)++;
}

/* The user, their followers and their conversation peers, once each. */
static int audience(const char *user, char ***out)
{
    sqlite3_stmt *st = sql(Q_IDENTITY_AUDIENCE);
    char **v = NULL;
    int n = 0;
    bind_text(st, 1, user);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nv = realloc(v, sizeof *v * (size_t)(n + 1));
        if (!nv || !(nv[n] = strdup(col_text(st, 0)))) {
            v = nv ? nv : v;
            break;
        }
        v = nv;
        n++;
    }
    *out = v;
    return n;
}

static void push_patch(const char *user, const char *ops)
{
    jbuf oid;
    char **to;
    int n, i;
    jbuf_init(&oid);
    w_identity_id(&oid, user);
    jbuf_putc(&oid, 0);
    if (oid.oom) {
        jbuf_free(&oid);
        return;
    }
    oid.data[oid.len - 2] = 0; /* drop the closing quote; +1 below skips the opening one */
    n = audience(user, &to);
    for (i = 0; i < n; i++) emit(to[i], "change", "patch", "Identity", oid.data + 1, ops);
    free_list(to, n);
    jbuf_free(&oid);
}

const char *identity_token_bad_field(const jv *claims)
{
    int i;
    for (i = 0; i < N_TOKEN_FIELDS; i++) {
        const jv *v = jv_get(claims, fields[i].name);
        if (v && v->type != JV_STRING) return fields[i].name;
    }
    return NULL;
}

int identity_update(const char *user, const jv *src, int all_fields)
{
    jbuf ops;
    int n = 0, i, limit = all_fields ? N_FIELDS : N_TOKEN_FIELDS;
    const jv *meta = all_fields ? jv_get(src, "metadata") : NULL;
    ensure_identity(user);
    jbuf_init(&ops);
    for (i = 0; i < limit; i++) {
        const jv *v = jv_get(src, fields[i].name);
        sqlite3_stmt *st;
        int same;
        if (!v || v->type != JV_STRING) continue;
        st = sql(fields[i].get);
        bind_text(st, 1, user);
        same = sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) && strcmp(col_text(st, 0), v->u.s) == 0;
        if (same) continue;
        st = sql(fields[i].set);
        bind_text(st, 1, v->u.s);
        bind_text(st, 2, user);
        sqlite3_step(st);
        put_set_op(&ops, &n, fields[i].name, v);
    }
    if (meta && meta->type == JV_OBJECT) {
        jbuf m;
        sqlite3_stmt *st = sql(Q_IDENTITY_GET_METADATA);
        int same;
        jbuf_init(&m);
        jv_write(&m, meta);
        jbuf_putc(&m, 0);
        bind_text(st, 1, user);
        same = !m.oom && sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) && strcmp(col_text(st, 0), m.data) == 0;
        if (!same && !m.oom) {
            st = sql(Q_IDENTITY_SET_METADATA);
            bind_text(st, 1, m.data);
            bind_text(st, 2, user);
            sqlite3_step(st);
            put_set_op(&ops, &n, "metadata", meta);
        }
        jbuf_free(&m);
    }
    if (n) {
        jbuf_putc(&ops, ']');
        jbuf_putc(&ops, 0);
        if (!ops.oom) push_patch(user, ops.data);
    }
    jbuf_free(&ops);
    return n;
}

/* ---------- the identities and following endpoints ---------- */

void get_identity(const char *uid, srv_resp *r)
{
    r->status = 200;
    if (!w_full_identity(&r->body, uid)) not_found(r, "No such identity");
}

void list_identities(const srv_req *q, const char *user, srv_resp *r)
{
    int ps = page_size(q, r, 500), n = 0;
    char **ids = NULL;
    sqlite3_stmt *st;
    if (ps < 0) return;
    st = sql(Q_FOLLOWING_PAGE);
    bind_text(st, 1, user);
    sqlite3_bind_int(st, 2, ps);
    ids = page_ids(st, &n);
    st = sql(Q_FOLLOWING_COUNT);
    bind_text(st, 1, user);
    if (sqlite3_step(st) == SQLITE_ROW) r->layer_count = (long)sqlite3_column_int64(st, 0);
    respond_page(r, ids, n, w_identity_row, user);
}

void follow(const char *user, const char *target, int on, srv_resp *r)
{
    sqlite3_stmt *st;
    char oid[256];
    jbuf id;
    jbuf_init(&id);
    w_identity_id(&id, target);
    snprintf(oid, sizeof oid, "%.*s", (int)id.len - 2, id.data + 1);
    jbuf_free(&id);
    store_begin();
    if (on) {
        ensure_identity(target);
        st = sql(Q_FOLLOWING_ADD);
        bind_text(st, 1, user);
        bind_text(st, 2, target);
        sqlite3_step(st);
        if (store_changes()) {
            jbuf d;
            jbuf_init(&d);
            w_full_identity(&d, target);
            jbuf_putc(&d, 0);
            emit(user, "change", "create", "Identity", oid, d.data);
            jbuf_free(&d);
        }
    } else {
        st = sql(Q_FOLLOWING_DELETE);
        bind_text(st, 1, user);
        bind_text(st, 2, target);
        sqlite3_step(st);
        if (store_changes()) emit(user, "change", "delete", "Identity", oid, "null");
    }
    store_commit();
    ok_empty(r);
}
