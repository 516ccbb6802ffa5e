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

#include "model.h"
#include "api.h"

/* store_prep keys statements by the literal's address: one literal per field. */
static const struct {
    const char *name, *get, *set;
} fields[] = {
    {"display_name", "SELECT display_name FROM identities WHERE user_id=?",
     "UPDATE identities SET display_name=? WHERE user_id=?"},
    {"avatar_url", "SELECT avatar_url FROM identities WHERE user_id=?",
     "UPDATE identities SET avatar_url=? WHERE user_id=?"},
    {"first_name", "SELECT first_name FROM identities WHERE user_id=?",
     "UPDATE identities SET first_name=? WHERE user_id=?"},
    {"last_name", "SELECT last_name FROM identities WHERE user_id=?",
     "UPDATE identities SET last_name=? WHERE user_id=?"},
    {"email_address", "SELECT email_address FROM identities WHERE user_id=?",
     "UPDATE identities SET email_address=? WHERE user_id=?"},
    {"phone_number", "SELECT phone_number FROM identities WHERE user_id=?",
     "UPDATE identities SET phone_number=? WHERE user_id=?"},
    {"public_key", "SELECT public_key FROM identities WHERE user_id=?",
     "UPDATE identities SET public_key=? WHERE user_id=?"},
    {"type", "SELECT type FROM identities WHERE user_id=?", "UPDATE identities SET type=? WHERE user_id=?"},
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
    sqlite3_stmt *st = store_prep(
        "SELECT ?1 UNION SELECT user_id FROM following WHERE target=?1"
        " UNION SELECT m2.user_id FROM members m1 JOIN members m2 ON m2.conv=m1.conv AND m2.active=1"
        " WHERE m1.user_id=?1 AND m1.active=1 LIMIT 100000");
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
        st = store_prep(fields[i].get);
        bind_text(st, 1, user);
        same = sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) && strcmp(col_text(st, 0), v->u.s) == 0;
        if (same) continue;
        st = store_prep(fields[i].set);
        bind_text(st, 1, v->u.s);
        bind_text(st, 2, user);
        sqlite3_step(st);
        put_set_op(&ops, &n, fields[i].name, v);
    }
    if (meta && meta->type == JV_OBJECT) {
        jbuf m;
        sqlite3_stmt *st = store_prep("SELECT metadata FROM identities WHERE user_id=?");
        int same;
        jbuf_init(&m);
        jv_write(&m, meta);
        jbuf_putc(&m, 0);
        bind_text(st, 1, user);
        same = !m.oom && sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) && strcmp(col_text(st, 0), m.data) == 0;
        if (!same && !m.oom) {
            st = store_prep("UPDATE identities SET metadata=? WHERE user_id=?");
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
    st = store_prep("SELECT target FROM following WHERE user_id=? ORDER BY target LIMIT ?");
    bind_text(st, 1, user);
    sqlite3_bind_int(st, 2, ps);
    ids = page_ids(st, &n);
    st = store_prep("SELECT count(*) FROM following WHERE user_id=?");
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
        st = store_prep("INSERT OR IGNORE INTO following(user_id, target) VALUES(?,?)");
        bind_text(st, 1, user);
        bind_text(st, 2, target);
        sqlite3_step(st);
        if (sqlite3_changes(S.db)) {
            jbuf d;
            jbuf_init(&d);
            w_full_identity(&d, target);
            jbuf_putc(&d, 0);
            emit(user, "change", "create", "Identity", oid, d.data);
            jbuf_free(&d);
        }
    } else {
        st = store_prep("DELETE FROM following WHERE user_id=? AND target=?");
        bind_text(st, 1, user);
        bind_text(st, 2, target);
        sqlite3_step(st);
        if (sqlite3_changes(S.db)) emit(user, "change", "delete", "Identity", oid, "null");
    }
    store_commit();
    ok_empty(r);
}
