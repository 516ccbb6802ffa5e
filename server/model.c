/* model.c - questions about the server's objects: Layer ids parsed, identities, membership,
 * who may see a message or content, last message and unread counts, receipt types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "sql.h"
#include "model.h"

int parse_layer_uuid(const char *s, size_t n, const char *kind, char out[37])
{
    char prefix[64];
    size_t pl;
    snprintf(prefix, sizeof prefix, "layer:///%s/", kind);
    pl = strlen(prefix);
    if (n > pl && memcmp(s, prefix, pl) == 0) {
        s += pl;
        n -= pl;
    }
    if (!srv_is_uuid(s, n)) return 0;
    memcpy(out, s, 36);
    out[36] = 0;
    return 1;
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Accepts "layer:///identities/<enc>" or a bare user id. */
int parse_identity(const char *s, size_t n, char *out, size_t osz)
{
    static const char pre[] = "layer:///identities/";
    size_t i, o = 0;
    int enc = 0;
    if (n > sizeof pre - 1 && memcmp(s, pre, sizeof pre - 1) == 0) {
        s += sizeof pre - 1;
        n -= sizeof pre - 1;
        enc = 1;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (enc && c == '%' && i + 2 < n + 0 && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            c = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= osz) return 0;
        out[o++] = c;
    }
    out[o] = 0;
    return srv_valid_user_id(out, o);
}

/* ---------- identities ---------- */

void ensure_identity(const char *user)
{
    sqlite3_stmt *st = sql(Q_IDENTITY_ENSURE);
    bind_text(st, 1, user);
    sqlite3_step(st);
}

int identity_exists(const char *user)
{
    sqlite3_stmt *st = sql(Q_IDENTITY_EXISTS);
    bind_text(st, 1, user);
    return sqlite3_step(st) == SQLITE_ROW;
}

/* ---------- membership ---------- */

int conv_member(const char *conv, const char *user, int64_t *from_pos)
{
    sqlite3_stmt *st = sql(Q_MEMBER_FROM_POS);
    bind_text(st, 1, conv);
    bind_text(st, 2, user);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    if (from_pos) *from_pos = sqlite3_column_int64(st, 0);
    return 1;
}

int conv_members(const char *conv, char ***out)
{
    sqlite3_stmt *st = sql(Q_MEMBERS_ACTIVE);
    char **v = NULL;
    int n = 0;
    bind_text(st, 1, conv);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nv = realloc(v, sizeof *v * (size_t)(n + 1));
        if (!nv) break;
        v = nv;
        v[n++] = strdup(col_text(st, 0));
    }
    *out = v;
    return n;
}

void free_list(char **v, int n)
{
    int i;
    for (i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* A message the viewer may see: its conversation is theirs, it is past their
 * from_position and not hidden for them. Fills conv if given. */
int msg_visible(const char *uuid, const char *viewer, char conv[37], int64_t *pos)
{
    char c[37];
    int64_t p, from = 0;
    sqlite3_stmt *st = sql(Q_MSG_PLACE);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(c, sizeof c, "%s", col_text(st, 0));
    p = sqlite3_column_int64(st, 1);
    if (!conv_member(c, viewer, &from) || p <= from) return 0;
    st = sql(Q_RSTATUS_HIDDEN);
    bind_text(st, 1, uuid);
    bind_text(st, 2, viewer);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0)) return 0;
    if (conv) memcpy(conv, c, 37);
    if (pos) *pos = p;
    return 1;
}

/* Rich content belongs to its uploader until a message carries it, then to the
 * conversations of the messages that do: a user sees it through one of those
 * messages they may see. Unknown and unfinished uploads are seen by nobody. */
int content_visible(const char *uuid, const char *user)
{
    char owner[160];
    int attached = 0;
    sqlite3_stmt *st = sql(Q_CONTENT_OWNER);
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(owner, sizeof owner, "%s", col_text(st, 0) ? col_text(st, 0) : "");
    st = sql(Q_CONTENT_REFS_OF);
    bind_text(st, 1, uuid);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char msg[37];
        attached = 1;
        snprintf(msg, sizeof msg, "%s", col_text(st, 0) ? col_text(st, 0) : "");
        if (msg_visible(msg, user, NULL, NULL)) {
            sqlite3_reset(st);
            return 1;
        }
    }
    return !attached && strcmp(owner, user) == 0;
}

/* ---------- conversations ---------- */

int conv_last_message(const char *conv, const char *viewer, int64_t from, char out[37])
{
    sqlite3_stmt *st = sql(Q_MSG_LAST_VISIBLE);
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, from);
    bind_text(st, 3, viewer);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(out, 37, "%s", col_text(st, 0));
    return 1;
}

/* Unread counts are kept in members.unread: bumped on each new message,
 * recounted exactly after receipts, deletes and mark_all_read. */
int64_t conv_unread(const char *conv, const char *viewer, int64_t from)
{
    sqlite3_stmt *st = sql(Q_MEMBER_UNREAD);
    (void)from;
    bind_text(st, 1, conv);
    bind_text(st, 2, viewer);
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    return sqlite3_column_int64(st, 0);
}

void conv_unread_recount(const char *conv, const char *viewer)
{
    sqlite3_stmt *st = sql(Q_MEMBER_UNREAD_RECOUNT);
    bind_text(st, 1, viewer);
    bind_text(st, 2, conv);
    sqlite3_step(st);
}

int receipt_level(const jv *type)
{
    if (!type || type->type != JV_STRING) return 0;
    if (strcmp(type->u.s, "read") == 0) return 2;
    return strcmp(type->u.s, "delivery") == 0 ? 1 : 0;
}
