/* content.c - rich content: creating an upload, the raw upload and download (signed URLs) and refreshing a download
 * URL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "handlers.h"

void content_create(const srv_req *q, const char *user, srv_resp *r)
{
    char uuid[37], key[65];
    long long size;
    char *end;
    sqlite3_stmt *st;
    if (!q->upload_type[0] || !q->upload_len[0]) {
        err_resp(r, 422, "missing_property", 104, "Upload-Content-Type and Upload-Content-Length are required", NULL);
        return;
    }
    size = strtoll(q->upload_len, &end, 10);
    if (*end || size < 0 || size > SRV_MAX_UPLOAD) {
        err_resp(r, 422, "invalid_property", 105, "Upload-Content-Length must be 0..8388608", NULL);
        return;
    }
    srv_uuid(uuid);
    srv_random_hex(key, 32);
    st = sql(Q_CONTENT_INSERT);
    bind_text(st, 1, uuid);
    bind_text(st, 2, user);
    bind_text(st, 3, q->upload_type);
    sqlite3_bind_int64(st, 4, size);
    bind_text(st, 5, key);
    sqlite3_step(st);
    r->status = 201;
    jbuf_puts(&r->body, "{\"id\":\"layer:///content/");
    jbuf_puts(&r->body, uuid);
    jbuf_puts(&r->body, "\",\"size\":");
    jbuf_int(&r->body, size);
    jbuf_puts(&r->body, ",\"upload_url\":\"");
    jbuf_puts(&r->body, render_base_url());
    jbuf_puts(&r->body, "/content-upload/");
    jbuf_puts(&r->body, uuid);
    jbuf_putc(&r->body, '/');
    jbuf_puts(&r->body, key);
    jbuf_puts(&r->body, "\",\"refresh_url\":");
    w_url(&r->body, "content", uuid);
    jbuf_puts(&r->body, ",\"download_url\":null,\"expiration\":null}");
}

void content_upload(const srv_req *q, const char *uuid, const char *key, srv_resp *r)
{
    sqlite3_stmt *st = sql(Q_CONTENT_PENDING);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW || strlen(key) != 64 || !col_text(st, 0) ||
        !srv_ct_equal(col_text(st, 0), key, 64)) {
        not_found(r, "No such upload");
        return;
    }
    if (q->body_too_large || (long long)q->body_len != sqlite3_column_int64(st, 1)) {
        err_resp(r, 422, "invalid_property", 105, "Body length differs from Upload-Content-Length", NULL);
        return;
    }
    st = sql(Q_CONTENT_SET_DATA);
    sqlite3_bind_blob(st, 1, q->body ? q->body : "", (int)q->body_len, SQLITE_TRANSIENT);
    bind_text(st, 2, uuid);
    sqlite3_step(st);
    r->status = 200;
    jbuf_puts(&r->body, "{}");
}

void content_refresh(const char *user, const char *uuid, srv_resp *r)
{
    sqlite3_stmt *st;
    jbuf c;
    jv_doc *d;
    if (!content_visible(uuid, user)) {
        not_found(r, "No such content");
        return;
    }
    st = sql(Q_CONTENT_SIZE);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        not_found(r, "No such content");
        return;
    }
    jbuf_init(&c);
    w_content(&c, uuid, sqlite3_column_int64(st, 0));
    d = jv_parse(c.data, c.len, NULL, NULL);
    r->status = 200;
    jbuf_puts(&r->body, "{\"download_url\":");
    jv_write(&r->body, jv_get(jv_root(d), "download_url"));
    jbuf_puts(&r->body, ",\"expiration\":");
    jv_write(&r->body, jv_get(jv_root(d), "expiration"));
    jbuf_putc(&r->body, '}');
    jv_doc_free(d);
    jbuf_free(&c);
}

void content_download(const srv_req *q, const char *uuid, srv_resp *r)
{
    const char *exp = srv_arg(q, "expires"), *sig = srv_arg(q, "sig");
    char hex[65];
    sqlite3_stmt *st;
    if (!exp || !sig || strlen(sig) != 64 || strlen(exp) > 20 || atoll(exp) < srv_now_ms()) {
        err_resp(r, 403, "access_denied", 101, "Download URL expired or invalid", NULL);
        return;
    }
    content_signature(uuid, exp, hex);
    if (!srv_ct_equal(hex, sig, 64)) {
        err_resp(r, 403, "access_denied", 101, "Download URL expired or invalid", NULL);
        return;
    }
    st = sql(Q_CONTENT_DATA);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        not_found(r, "No such content");
        return;
    }
    r->raw_len = (size_t)sqlite3_column_bytes(st, 0);
    r->raw = malloc(r->raw_len + 1);
    if (r->raw && r->raw_len) memcpy(r->raw, sqlite3_column_blob(st, 0), r->raw_len);
    r->content_type = "application/octet-stream";
    r->status = 200;
}
