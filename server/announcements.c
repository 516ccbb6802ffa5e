/* announcements.c - the announcements endpoints: listing, reading, deleting and receipts. */
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

void list_announcements(const srv_req *q, const char *user, srv_resp *r)
{
    int ps = page_size(q, r, 100), n = 0;
    const char *from = srv_arg(q, "from_id");
    int64_t fpos = INT64_MAX;
    char **ids = NULL;
    sqlite3_stmt *st;
    if (ps < 0) return;
    if (from) {
        char fu[37];
        if (!parse_layer_uuid(from, strlen(from), "announcements", fu)) {
            err_resp(r, 422, "invalid_property", 105, "from_id must be an announcement id", NULL);
            return;
        }
        st = sql(Q_ANN_POS);
        bind_text(st, 1, fu);
        if (sqlite3_step(st) == SQLITE_ROW) fpos = sqlite3_column_int64(st, 0);
    }
    st = sql(Q_ANN_COUNT_FOR_USER);
    bind_text(st, 1, user);
    if (sqlite3_step(st) == SQLITE_ROW) r->layer_count = (long)sqlite3_column_int64(st, 0);
    st = sql(Q_ANN_PAGE);
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, fpos);
    sqlite3_bind_int(st, 3, ps);
    ids = page_ids(st, &n);
    respond_page(r, ids, n, w_announcement, user);
}

void announcement_action(int method, const char *user, const char *uuid, const char *sub, const jv *body, srv_resp *r)
{
    char oid[64];
    sqlite3_stmt *st;
    jbuf probe;
    int visible;
    jbuf_init(&probe);
    visible = w_announcement(&probe, uuid, user);
    jbuf_free(&probe);
    if (!visible) {
        not_found(r, "No such announcement");
        return;
    }
    snprintf(oid, sizeof oid, "layer:///announcements/%s", uuid);
    if (!sub && method == M_GET) {
        r->status = 200;
        w_announcement(&r->body, uuid, user);
    } else if (!sub && method == M_DELETE) {
        st = sql(Q_ANN_RCPT_DELETE);
        bind_text(st, 1, uuid);
        bind_text(st, 2, user);
        sqlite3_step(st);
        emit(user, "change", "delete", "Announcement", oid, "{\"mode\":\"my_devices\"}");
        ok_empty(r);
    } else if (sub && strcmp(sub, "receipts") == 0 && method == M_POST) {
        int want = receipt_level(body ? jv_get(body, "type") : NULL);
        if (!want) {
            err_resp(r, 422, "invalid_property", 105, "type must be read or delivery", NULL);
            return;
        }
        st = sql(Q_ANN_RCPT_RAISE);
        bind_text(st, 1, uuid);
        bind_text(st, 2, user);
        sqlite3_bind_int(st, 3, want);
        sqlite3_step(st);
        if (store_changes()) {
            jbuf d;
            jbuf_init(&d);
            receipt_status_patch(&d, user, want);
            if (want == 2)
                emit_read_receipt(NULL, user, "Announcement", uuid, d.data);
            else
                emit(user, "change", "patch", "Announcement", oid, d.data);
            jbuf_free(&d);
        }
        ok_empty(r);
    } else {
        err_resp(r, 405, "method_not_allowed", 109, "Method not allowed", NULL);
    }
}
