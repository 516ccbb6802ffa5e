/* conversations.c - the conversations endpoints: listing, Layer-Patch of a conversation, deleting or leaving one,
 * mark_all_read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "fanout.h"
#include "actions.h"
#include "handlers.h"
#include "patch.h"

void list_conversations(const srv_req *q, const char *user, srv_resp *r)
{
    char **ids;
    int ps = page_size(q, r, 100), n = 0;
    const char *from = srv_arg(q, "from_id"), *sort = srv_arg(q, "sort_by");
    int by_last = sort && strcmp(sort, "last_message") == 0;
    char fu[37];
    int64_t fkey = INT64_MAX;
    sqlite3_stmt *st;
    if (ps < 0) return;
    if (sort && !by_last && strcmp(sort, "created_at") != 0) {
        err_resp(r, 422, "invalid_property", 105, "sort_by must be created_at or last_message", NULL);
        return;
    }
    strcpy(fu, "~");
    if (from) {
        if (!parse_layer_uuid(from, strlen(from), "conversations", fu)) {
            err_resp(r, 422, "invalid_property", 105, "from_id must be a conversation id", NULL);
            return;
        }
        st = sql(Q_CONV_TIMES);
        bind_text(st, 1, fu);
        if (sqlite3_step(st) == SQLITE_ROW) fkey = sqlite3_column_int64(st, by_last ? 1 : 0);
    }
    st = sql(Q_CONV_COUNT_FOR_USER);
    bind_text(st, 1, user);
    if (sqlite3_step(st) == SQLITE_ROW) r->layer_count = (long)sqlite3_column_int64(st, 0);
    st = by_last ? sql(Q_CONV_PAGE_BY_LAST) : sql(Q_CONV_PAGE_BY_CREATED);
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, fkey);
    bind_text(st, 3, fu);
    sqlite3_bind_int(st, 4, ps);
    ids = page_ids(st, &n);
    respond_page(r, ids, n, w_conversation, user);
}

/* ---------- conversation patch and deletes ---------- */

static const jv *lookup_identity(void *ud, const char *id, size_t len)
{
    jv_doc *scratch = ud;
    char user[160];
    jbuf b;
    jv_doc *d;
    const jv *res = NULL;
    if (!parse_identity(id, len, user, sizeof user)) return NULL;
    jbuf_init(&b);
    w_basic_identity(&b, user);
    d = jv_parse(b.data, b.len, NULL, NULL);
    if (d) {
        jv *v = jv_alloc(scratch, sizeof *v);
        if (v && jv_copy_into(scratch, v, jv_root(d))) res = v;
        jv_doc_free(d);
    }
    jbuf_free(&b);
    return res;
}

static int in_list(char **v, int n, const char *u)
{
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(v[i], u) == 0) return 1;
    return 0;
}

/* The Layer-Patch body of a conversation PATCH, or NULL after answering 400/422:
 * an array of operations on participants and metadata only. */
static jv_doc *parse_patch_ops(const srv_req *q, srv_resp *r)
{
    jv_error je;
    const jv *ops;
    uint32_t k;
    jv_doc *opsd = jv_parse(q->body ? q->body : "", q->body_len, &srv_body_limits, &je);
    if (!opsd) {
        err_resp(r, 400, "invalid_property", 105, "Body is not valid JSON", NULL);
        return NULL;
    }
    ops = jv_root(opsd);
    if (ops->type != JV_ARRAY) {
        err_resp(r, 422, "invalid_property", 105, "A Layer-Patch body is an array of operations", NULL);
        jv_doc_free(opsd);
        return NULL;
    }
    for (k = 0; k < ops->len; k++) {
        const jv *prop = jv_get(&ops->u.items[k], "property");
        if (!prop || prop->type != JV_STRING ||
            !(strcmp(prop->u.s, "participants") == 0 || strcmp(prop->u.s, "metadata") == 0 ||
              strncmp(prop->u.s, "metadata.", 9) == 0)) {
            err_resp(r, 422, "invalid_property", 105, "Only participants and metadata can be patched", NULL);
            jv_doc_free(opsd);
            return NULL;
        }
    }
    return opsd;
}

/* What a patch applies to: {"participants":[basic identities],"metadata":{...}}, parsed. */
static jv_doc *patchable_state(const char *conv, char **old, int on)
{
    jbuf cur;
    jv_doc *doc;
    int i;
    sqlite3_stmt *st;
    jbuf_init(&cur);
    jbuf_puts(&cur, "{\"participants\":[");
    for (i = 0; i < on; i++) {
        if (i) jbuf_putc(&cur, ',');
        w_basic_identity(&cur, old[i]);
    }
    st = sql(Q_CONV_METADATA);
    bind_text(st, 1, conv);
    jbuf_puts(&cur, "],\"metadata\":");
    jbuf_puts(&cur, sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) ? col_text(st, 0) : "{}");
    jbuf_putc(&cur, '}');
    doc = jv_parse(cur.data, cur.len, NULL, NULL);
    jbuf_free(&cur);
    return doc;
}

/* The patched participants as distinct user ids into *nu; 0 after answering 422 (or out of memory). */
static int patched_participants(const jv *np, char ***nu, int *nn, srv_resp *r)
{
    char u[160];
    uint32_t k;
    for (k = 0; k < np->len; k++) {
        if (!np->u.items[k].type || !participant_user_jv(&np->u.items[k], u, sizeof u)) {
            err_resp(r, 422, "invalid_property", 105, "participants holds an invalid identity", NULL);
            return 0;
        }
        if (!in_list(*nu, *nn, u)) {
            char **v = realloc(*nu, sizeof **nu * (size_t)(*nn + 1));
            if (!v) return 0;
            *nu = v;
            (*nu)[(*nn)++] = strdup(u);
        }
    }
    if (*nn > 25) {
        err_resp(r, 422, "invalid_property", 105, "a conversation has at most 25 participants", NULL);
        return 0;
    }
    if (*nn == 0) { /* nobody could see it, nor delete it */
        err_resp(r, 422, "invalid_property", 105,
                 "participants cannot become empty: leave or delete the conversation instead", NULL);
        return 0;
    }
    return 1;
}

/* Store the new metadata and membership: old members not in nu leave, new ones join. */
static void store_patched(const char *conv, const char *metadata, char **old, int on, char **nu, int nn)
{
    sqlite3_stmt *st = sql(Q_CONV_SET_METADATA);
    int i;
    bind_text(st, 1, metadata);
    bind_text(st, 2, conv);
    sqlite3_step(st);
    for (i = 0; i < on; i++) {
        if (!in_list(nu, nn, old[i])) {
            st = sql(Q_MEMBER_DEACTIVATE);
            bind_text(st, 1, conv);
            bind_text(st, 2, old[i]);
            sqlite3_step(st);
        }
    }
    for (i = 0; i < nn; i++) {
        if (!in_list(old, on, nu[i])) {
            ensure_identity(nu[i]);
            st = sql(Q_MEMBER_ADD);
            bind_text(st, 1, conv);
            bind_text(st, 2, nu[i]);
            sqlite3_step(st);
            conv_unread_recount(conv, nu[i]); /* a returning member still has receipts */
        }
    }
}

/* What the others see: metadata ops as sent, participant changes with full values. */
static void write_peer_ops(jbuf *b, const jv *ops, char **old, int on, char **nu, int nn)
{
    int first = 1, i;
    uint32_t k;
    jbuf_putc(b, '[');
    for (k = 0; k < ops->len; k++) {
        const jv *prop = jv_get(&ops->u.items[k], "property");
        if (strcmp(prop->u.s, "participants") == 0) continue;
        if (!first) jbuf_putc(b, ',');
        first = 0;
        jv_write(b, &ops->u.items[k]);
    }
    for (i = 0; i < on; i++) {
        if (in_list(nu, nn, old[i])) continue;
        if (!first) jbuf_putc(b, ',');
        first = 0;
        jbuf_puts(b, "{\"operation\":\"remove\",\"property\":\"participants\",\"id\":");
        w_identity_id(b, old[i]);
        jbuf_putc(b, '}');
    }
    for (i = 0; i < nn; i++) {
        if (in_list(old, on, nu[i])) continue;
        if (!first) jbuf_putc(b, ',');
        first = 0;
        jbuf_puts(b, "{\"operation\":\"add\",\"property\":\"participants\",\"id\":");
        w_identity_id(b, nu[i]);
        jbuf_puts(b, ",\"value\":");
        w_basic_identity(b, nu[i]);
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ']');
    jbuf_putc(b, 0);
}

/* Staying members get the patch, new ones a create, those who left a delete. */
static void emit_patched(const char *conv, const char *peer_ops, char **old, int on, char **nu, int nn)
{
    int i;
    for (i = 0; i < nn; i++) {
        if (in_list(old, on, nu[i])) {
            emit_conv(nu[i], "patch", conv, peer_ops);
        } else {
            jbuf d;
            jbuf_init(&d);
            w_conversation(&d, conv, nu[i]);
            jbuf_putc(&d, 0);
            emit_conv(nu[i], "create", conv, d.data);
            jbuf_free(&d);
        }
    }
    for (i = 0; i < on; i++)
        if (!in_list(nu, nn, old[i]))
            emit_conv(old[i], "delete", conv, "{\"mode\":\"my_devices\",\"from_position\":null}");
}

void patch_conversation(const char *user, const char *conv, const srv_req *q, srv_resp *r)
{
    jbuf out, ops_out;
    jv_doc *doc = NULL, *opsd = NULL, *scratch = NULL;
    lp_options opt;
    lp_result res;
    lp_error le;
    const jv *ops, *np, *nm;
    char **old = NULL, **nu = NULL;
    int on = 0, nn = 0;
    const char *over;

    if (!conv_member(conv, user, NULL)) {
        not_found(r, "No such conversation");
        return;
    }
    if (!(opsd = parse_patch_ops(q, r))) return;
    ops = jv_root(opsd);
    jbuf_init(&out);
    jbuf_init(&ops_out);
    on = conv_members(conv, &old);
    doc = patchable_state(conv, old, on);
    scratch = jv_doc_new(1024);
    memset(&opt, 0, sizeof opt);
    opt.lookup = lookup_identity;
    opt.lookup_ud = scratch;
    opt.return_ids = 0;
    memset(&res, 0, sizeof res);
    if (!doc || !scratch || !lp_apply(doc, jv_root(doc), ops, &opt, &res, &le)) {
        err_resp(r, 422, "invalid_property", 105, doc ? le.message : "out of memory", NULL);
        goto out;
    }
    np = jv_get(&res.root, "participants");
    nm = jv_get(&res.root, "metadata");
    if (!np || np->type != JV_ARRAY || !nm || nm->type != JV_OBJECT) {
        err_resp(r, 422, "invalid_property", 105, "participants must stay an array and metadata an object", NULL);
        goto out;
    }
    if (!patched_participants(np, &nu, &nn, r)) goto out;
    jv_write(&out, nm);
    if ((over = metadata_over_limits(nm, out.len)) != NULL) {
        err_resp(r, 422, "invalid_property", 105, over, NULL);
        goto out;
    }
    jbuf_putc(&out, 0);
    store_begin();
    store_patched(conv, out.data, old, on, nu, nn);
    update_pkey_pub(conv);
    write_peer_ops(&ops_out, ops, old, on, nu, nn);
    emit_patched(conv, ops_out.data, old, on, nu, nn);
    store_commit();
    ok_empty(r);
out:
    lp_result_free(&res);
    free_list(old, on);
    free_list(nu, nn);
    jv_doc_free(doc);
    jv_doc_free(scratch);
    jv_doc_free(opsd);
    jbuf_free(&out);
    jbuf_free(&ops_out);
}

void delete_conversation(const char *user, const char *conv, const srv_req *q, srv_resp *r)
{
    const char *mode, *leave = srv_arg(q, "leave");
    sqlite3_stmt *st;
    if (!conv_member(conv, user, NULL)) {
        not_found(r, "No such conversation");
        return;
    }
    if (!(mode = delete_mode(q, r))) return;
    store_begin();
    if (strcmp(mode, "all_participants") == 0) {
        emit_members(conv, "change", "delete", "Conversation", conv, "{\"mode\":\"all_participants\"}");
        st = sql(Q_RSTATUS_DELETE_CONV);
        bind_text(st, 1, conv);
        sqlite3_step(st);
        st = sql(Q_MSG_DELETE_CONV);
        bind_text(st, 1, conv);
        sqlite3_step(st);
        st = sql(Q_MEMBER_DELETE_CONV);
        bind_text(st, 1, conv);
        sqlite3_step(st);
        st = sql(Q_CONV_DELETE);
        bind_text(st, 1, conv);
        sqlite3_step(st);
    } else if (leave && strcmp(leave, "true") == 0) {
        char data[256];
        jbuf d;
        st = sql(Q_MEMBER_DEACTIVATE);
        bind_text(st, 1, conv);
        bind_text(st, 2, user);
        sqlite3_step(st);
        update_pkey_pub(conv);
        snprintf(data, sizeof data, "{\"mode\":\"my_devices\",\"from_position\":null}");
        emit_conv(user, "delete", conv, data);
        jbuf_init(&d);
        jbuf_puts(&d, "[{\"operation\":\"remove\",\"property\":\"participants\",\"id\":");
        w_identity_id(&d, user);
        jbuf_puts(&d, "}]");
        jbuf_putc(&d, 0);
        emit_members(conv, "change", "patch", "Conversation", conv, d.data);
        jbuf_free(&d);
    } else {
        int64_t last = 0;
        char data[128];
        st = sql(Q_CONV_LAST_POS);
        bind_text(st, 1, conv);
        if (sqlite3_step(st) == SQLITE_ROW) last = sqlite3_column_int64(st, 0);
        st = sql(Q_MEMBER_SET_FROM_POS);
        sqlite3_bind_int64(st, 1, last);
        bind_text(st, 2, conv);
        bind_text(st, 3, user);
        sqlite3_step(st);
        conv_unread_recount(conv, user);
        snprintf(data, sizeof data, "{\"mode\":\"my_devices\",\"from_position\":%lld}", (long long)last);
        emit_conv(user, "delete", conv, data);
    }
    store_commit();
    ok_empty(r);
}

void mark_all_read(const char *user, const char *conv, const jv *body, srv_resp *r)
{
    const jv *pos = body ? jv_get(body, "position") : NULL;
    int64_t p = INT64_MAX, from = 0;
    jbuf d;
    sqlite3_stmt *st;
    if (!conv_member(conv, user, &from)) {
        not_found(r, "No such conversation");
        return;
    }
    if (pos && pos->type != JV_NULL) {
        if (pos->type != JV_INT) {
            err_resp(r, 422, "invalid_property", 105, "position must be an integer", NULL);
            return;
        }
        p = pos->u.i;
    }
    if (p == INT64_MAX) {
        st = sql(Q_CONV_LAST_POS);
        bind_text(st, 1, conv);
        if (sqlite3_step(st) == SQLITE_ROW) p = sqlite3_column_int64(st, 0);
    }
    store_begin();
    st = sql(Q_RSTATUS_MARK_ALL_READ);
    bind_text(st, 1, user);
    bind_text(st, 2, conv);
    sqlite3_bind_int64(st, 3, p);
    sqlite3_step(st);
    jbuf_init(&d);
    jbuf_puts(&d, "{\"position\":");
    jbuf_int(&d, p);
    jbuf_puts(&d, ",\"identity\":{\"id\":");
    w_identity_id(&d, user);
    jbuf_puts(&d, "}}");
    jbuf_putc(&d, 0);
    emit_members(conv, "operation", "Conversation.mark_all_read", "Conversation", conv, d.data);
    jbuf_free(&d);
    conv_unread_recount(conv, user);
    emit_conv_summary(user, conv, 0);
    store_commit();
    ok_empty(r);
}
