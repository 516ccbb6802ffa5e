/* query.c - query arguments the REST list and delete endpoints share: paging and the delete mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"
#include "render.h"
#include "resp.h"
#include "handlers.h"

/* ---------- paging ---------- */

int page_size(const srv_req *q, srv_resp *r, int max)
{
    const char *s = srv_arg(q, "page_size");
    char *end;
    long v;
    if (!s) return max;
    v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < 1) {
        err_resp(r, 422, "invalid_property", 105, "page_size must be a positive integer", NULL);
        return -1;
    }
    return v > max ? max : (int)v;
}

/* The first column of each row of st: the ids of one page. */
char **page_ids(sqlite3_stmt *st, int *n)
{
    char **ids = NULL;
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nv = realloc(ids, sizeof *ids * (size_t)(*n + 1));
        char *id = strdup(col_text(st, 0));
        if (!nv || !id) {
            free(id);
            if (nv) ids = nv;
            break;
        }
        ids = nv;
        ids[(*n)++] = id;
    }
    return ids;
}

int w_identity_row(jbuf *b, const char *id, const char *viewer)
{
    (void)viewer;
    return w_full_identity(b, id);
}

/* 200 with the page as a JSON array, each object written by w; frees ids. */
void respond_page(srv_resp *r, char **ids, int n, page_writer w, const char *viewer)
{
    int i;
    r->status = 200;
    jbuf_putc(&r->body, '[');
    for (i = 0; i < n; i++) {
        if (i) jbuf_putc(&r->body, ',');
        w(&r->body, ids[i], viewer);
    }
    jbuf_putc(&r->body, ']');
    free_list(ids, n);
}
const char *delete_mode(const srv_req *q, srv_resp *r)
{
    const char *mode = srv_arg(q, "mode");
    if (!mode) {
        err_resp(r, 422, "missing_property", 104, "mode is required (all_participants or my_devices)", NULL);
        return NULL;
    }
    if (strcmp(mode, "all_participants") != 0 && strcmp(mode, "my_devices") != 0) {
        err_resp(r, 422, "invalid_property", 105, "mode must be all_participants or my_devices", NULL);
        return NULL;
    }
    return mode;
}
