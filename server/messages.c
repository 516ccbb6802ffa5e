/* messages.c - the messages endpoints: listing a conversation's messages, deleting one and its receipts. */
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

void list_messages(const srv_req *q, const char *user, const char *conv, srv_resp *r)
{
    int ps = page_size(q, r, 100), n = 0;
    const char *from = srv_arg(q, "from_id");
    int64_t fpos = INT64_MAX, mfrom = 0;
    char **ids = NULL;
    sqlite3_stmt *st;
    if (ps < 0) return;
    if (!conv_member(conv, user, &mfrom)) {
        not_found(r, "No such conversation");
        return;
    }
    if (from) {
        char fu[37];
        if (!parse_layer_uuid(from, strlen(from), "messages", fu)) {
            err_resp(r, 422, "invalid_property", 105, "from_id must be a message id", NULL);
            return;
        }
        st = sql(Q_MSG_POS_IN_CONV);
        bind_text(st, 1, fu);
        bind_text(st, 2, conv);
        if (sqlite3_step(st) == SQLITE_ROW) fpos = sqlite3_column_int64(st, 0);
    }
    st = sql(Q_MSG_COUNT_VISIBLE);
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, mfrom);
    bind_text(st, 3, user);
    if (sqlite3_step(st) == SQLITE_ROW) r->layer_count = (long)sqlite3_column_int64(st, 0);
    st = sql(Q_MSG_PAGE);
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, mfrom);
    bind_text(st, 3, user);
    sqlite3_bind_int64(st, 4, fpos);
    sqlite3_bind_int(st, 5, ps);
    ids = page_ids(st, &n);
    respond_page(r, ids, n, w_message, user);
}

void delete_message(const char *user, const char *msg, const srv_req *q, srv_resp *r)
{
    const char *mode;
    char conv[37], last_before[37] = "", **mem;
    int64_t from = 0;
    int n, i;
    sqlite3_stmt *st;
    if (!msg_visible(msg, user, conv, NULL)) {
        not_found(r, "No such message");
        return;
    }
    if (!(mode = delete_mode(q, r))) return;
    store_begin();
    if (strcmp(mode, "all_participants") == 0) {
        n = conv_members(conv, &mem);
        st = sql(Q_MSG_DELETE);
        bind_text(st, 1, msg);
        sqlite3_step(st);
        for (i = 0; i < n; i++) {
            emit_msg(mem[i], "delete", msg, "{\"mode\":\"all_participants\"}");
            conv_unread_recount(conv, mem[i]);
            emit_conv_summary(mem[i], conv, 1);
        }
        free_list(mem, n);
    } else {
        conv_member(conv, user, &from);
        conv_last_message(conv, user, from, last_before);
        st = sql(Q_RSTATUS_HIDE);
        bind_text(st, 1, msg);
        bind_text(st, 2, user);
        sqlite3_step(st);
        emit_msg(user, "delete", msg, "{\"mode\":\"my_devices\"}");
        conv_unread_recount(conv, user);
        emit_conv_summary(user, conv, strcmp(last_before, msg) == 0);
    }
    store_commit();
    ok_empty(r);
}

/* ---------- receipts ---------- */

void message_receipt(const char *user, const char *msg, const jv *body, srv_resp *r)
{
    const jv *type = body ? jv_get(body, "type") : NULL;
    char conv[37];
    int want, cur = 0;
    sqlite3_stmt *st;
    if (!msg_visible(msg, user, conv, NULL)) {
        not_found(r, "No such message");
        return;
    }
    if (!type) {
        err_resp(r, 422, "missing_property", 104, "type is required", NULL);
        return;
    }
    want = receipt_level(type);
    if (!want) {
        err_resp(r, 422, "invalid_property", 105, "type must be read or delivery", NULL);
        return;
    }
    st = sql(Q_RSTATUS_GET);
    bind_text(st, 1, msg);
    bind_text(st, 2, user);
    if (sqlite3_step(st) == SQLITE_ROW) cur = sqlite3_column_int(st, 0);
    if (want > cur) {
        jbuf d;
        store_begin();
        st = sql(Q_RSTATUS_RAISE);
        bind_text(st, 1, msg);
        bind_text(st, 2, user);
        sqlite3_bind_int(st, 3, want);
        sqlite3_step(st);
        jbuf_init(&d);
        receipt_status_patch(&d, user, want);
        if (want == 2)
            emit_read_receipt(conv, user, "Message", msg, d.data);
        else
            emit_members(conv, "change", "patch", "Message", msg, d.data);
        jbuf_free(&d);
        if (want == 2) {
            conv_unread_recount(conv, user);
            emit_conv_summary(user, conv, 0);
        }
        store_commit();
    }
    ok_empty(r);
}
