/* api.c - REST routing: the checks every request passes (path, body, Accept, faults, session), then
 * dispatch to the file of its resource (auth.c, conversations.c, messages.c, identities.c,
 * announcements.c, content.c, admin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "srv.h"
#include "model.h"
#include "api.h"

const jv_limits srv_body_limits = {SRV_MAX_BODY, 32};

void srv_resp_init(srv_resp *r)
{
    memset(r, 0, sizeof *r);
    jbuf_init(&r->body);
    r->layer_count = -1;
}

void srv_resp_free(srv_resp *r)
{
    jbuf_free(&r->body);
    free(r->raw);
    r->raw = NULL;
}

const char *srv_arg(const srv_req *r, const char *name)
{
    size_t n = strlen(name);
    int i;
    for (i = 0; i < r->nargs; i++)
        if (strncmp(r->args[i], name, n) == 0 && r->args[i][n] == '=') return r->args[i] + n + 1;
    return NULL;
}

void ok_empty(srv_resp *r)
{
    r->status = 204;
    r->body.len = 0;
}

void not_found(srv_resp *r, const char *what)
{
    err_resp(r, 404, "not_found", 102, what, NULL);
}

/* ---------- HTTP routing ---------- */

static int split_path(char *p, char **seg, int max)
{
    int n = 0;
    while (*p == '/') p++;
    while (*p && n < max) {
        seg[n++] = p;
        while (*p && *p != '/') p++;
        if (*p) *p++ = 0;
    }
    if (*p) return -1;
    return n;
}

static int path_ok(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

static int api_version(const char *accept)
{
    const char *v = strstr(accept, "application/vnd.layer+json");
    if (!v) return 0;
    v = strstr(v, "version=");
    if (!v) return 0;
    v += 8;
    if (strncmp(v, "2.0", 3) == 0) return 2;
    if (strncmp(v, "3.0", 3) == 0) return 3;
    return 0;
}

static int want_uuid(const char *s, char out[37], srv_resp *r, const char *what)
{
    if (!srv_is_uuid(s, strlen(s))) {
        err_resp(r, 404, "not_found", 102, what, NULL);
        return 0;
    }
    memcpy(out, s, 37);
    return 1;
}

#define METHOD_NA() err_resp(r, 405, "method_not_allowed", 109, "Method not allowed on this resource", NULL)

void srv_handle_http(const srv_req *q, srv_resp *r)
{
    char pathbuf[1024], *seg[8], user[160], tok[160], id[37];
    int n, json_body, m = q->method;
    jv_doc *bd = NULL;
    const jv *body = NULL;
    jv_error je;

    r->status = 500;
    if (!path_ok(q->path) || strlen(q->path) >= sizeof pathbuf) {
        err_resp(r, 404, "invalid_endpoint", 106, "Invalid path", NULL);
        return;
    }
    strcpy(pathbuf, q->path);
    n = split_path(pathbuf, seg, 8);
    if (n < 0) {
        err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL);
        return;
    }
    if (m == M_OPTIONS) {
        ok_empty(r);
        return;
    }
    if (n >= 1 && strcmp(seg[0], "ping") == 0) {
        ok_empty(r);
        return;
    }
    if (q->body_too_large) {
        err_resp(r, 413, "invalid_property", 105, "Request body too large", NULL);
        if (!(n == 3 && strcmp(seg[0], "content-upload") == 0)) return;
    }
    /* Raw content transfer: no Layer headers, authorised by the URL itself. */
    if (n == 3 && strcmp(seg[0], "content-upload") == 0) {
        if (m != M_PUT) METHOD_NA();
        else if (want_uuid(seg[1], id, r, "No such upload")) content_upload(q, id, seg[2], r);
        return;
    }
    if (n == 2 && strcmp(seg[0], "content-download") == 0) {
        if (m != M_GET && m != M_HEAD) METHOD_NA();
        else if (want_uuid(seg[1], id, r, "No such content")) content_download(q, id, r);
        return;
    }
    /* JSON bodies: the SDK sends application/json (or the patch type); empty bodies are allowed. */
    json_body = q->body_len > 0;
    if (json_body) {
        int is_patch = strncasecmp(q->content_type, "application/vnd.layer-patch+json", 32) == 0;
        int is_json = strncasecmp(q->content_type, "application/json", 16) == 0;
        if (m == M_PATCH ? !is_patch : !is_json) {
            err_resp(r, 415, "invalid_header", 107,
                     m == M_PATCH ? "PATCH needs Content-Type: application/vnd.layer-patch+json"
                                  : "Content-Type must be application/json",
                     NULL);
            return;
        }
        if (m != M_PATCH) {
            bd = jv_parse(q->body, q->body_len, &srv_body_limits, &je);
            if (!bd) {
                char msg[220];
                snprintf(msg, sizeof msg, "Malformed JSON: %s", je.message);
                err_resp(r, 400, "invalid_property", 105, msg, NULL);
                return;
            }
            body = jv_root(bd);
        }
    }
    if (n >= 1 && strcmp(seg[0], "admin") == 0) {
        admin_request(q, seg, n, body, r);
        goto done;
    }
    if (S.fault_left > 0) {
        S.fault_left--;
        if (S.fault_status == 429) {
            r->retry_after = S.fault_retry_after;
            err_resp(r, 429, "rate_limit_exceeded", 7, "Rate limit exceeded (injected)", NULL);
        } else {
            r->retry_after = S.fault_retry_after;
            err_resp(r, 503, "service_unavailable", 1, "Service unavailable (injected)", NULL);
        }
        goto done;
    }
    if (!api_version(q->accept)) {
        err_resp(r, 406, "invalid_header", 107,
                 "Accept must be application/vnd.layer+json; version=2.0 or 3.0", NULL);
        goto done;
    }
    if (n == 1 && strcmp(seg[0], "nonces") == 0) {
        char nonce[65];
        if (m != M_POST) { METHOD_NA(); goto done; }
        new_nonce(nonce);
        r->status = 201;
        jbuf_puts(&r->body, "{\"nonce\":\"");
        jbuf_puts(&r->body, nonce);
        jbuf_puts(&r->body, "\"}");
        goto done;
    }
    if (n == 1 && strcmp(seg[0], "sessions") == 0) {
        if (m != M_POST) METHOD_NA();
        else if (!body) err_resp(r, 422, "missing_property", 104, "identity_token is required", NULL);
        else do_sessions(body, r);
        goto done;
    }
    if (n == 2 && strcmp(seg[0], "sessions") == 0) {
        sqlite3_stmt *st;
        if (m != M_DELETE) { METHOD_NA(); goto done; }
        st = store_prep("DELETE FROM sessions WHERE token=?");
        bind_text(st, 1, seg[1]);
        sqlite3_step(st);
        close_session_sockets(seg[1], NULL); /* logged out means no more packets, not just no new logins */
        ok_empty(r);
        goto done;
    }
    if (!req_user(q, user, sizeof user, tok, sizeof tok)) {
        auth_required(r, tok[0] || q->authorization[0] ? "Session expired or invalid" : "Authentication required");
        goto done;
    }
    if (n == 0) {
        const char *action = srv_arg(q, "action");
        if (m == M_GET && action && strcmp(action, "validateConnectionForWebsocket") == 0) {
            r->status = 200;
            jbuf_puts(&r->body, "{}");
        } else {
            err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL);
        }
        goto done;
    }
    if (strcmp(seg[0], "conversations") == 0) {
        if (n == 1) {
            if (m == M_GET) list_conversations(q, user, r);
            else if (m == M_POST) act_conv_create(user, body, r);
            else METHOD_NA();
            goto done;
        }
        if (!want_uuid(seg[1], id, r, "No such conversation")) goto done;
        if (n == 2) {
            if (m == M_GET) {
                if (!conv_member(id, user, NULL)) not_found(r, "No such conversation");
                else { r->status = 200; w_conversation(&r->body, id, user); }
            } else if (m == M_PATCH) {
                patch_conversation(user, id, q, r);
            } else if (m == M_DELETE) {
                delete_conversation(user, id, q, r);
            } else {
                METHOD_NA();
            }
        } else if (n == 3 && strcmp(seg[2], "messages") == 0) {
            if (m == M_GET) list_messages(q, user, id, r);
            else if (m == M_POST) act_msg_create(user, id, body, r);
            else METHOD_NA();
        } else if (n == 3 && strcmp(seg[2], "mark_all_read") == 0) {
            if (m == M_POST) mark_all_read(user, id, body, r);
            else METHOD_NA();
        } else {
            err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL);
        }
        goto done;
    }
    if (strcmp(seg[0], "messages") == 0 && (n == 2 || n == 3)) {
        if (!want_uuid(seg[1], id, r, "No such message")) goto done;
        if (n == 2) {
            if (m == M_GET) {
                if (!msg_visible(id, user, NULL, NULL)) not_found(r, "No such message");
                else { r->status = 200; w_message(&r->body, id, user); }
            } else if (m == M_DELETE) {
                delete_message(user, id, q, r);
            } else {
                METHOD_NA();
            }
        } else if (strcmp(seg[2], "receipts") == 0) {
            if (m == M_POST) message_receipt(user, id, body, r);
            else METHOD_NA();
        } else {
            err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL);
        }
        goto done;
    }
    if (strcmp(seg[0], "identities") == 0 && n <= 2) {
        if (m != M_GET) METHOD_NA();
        else if (n == 1) list_identities(q, user, r);
        else if (!srv_valid_user_id(seg[1], strlen(seg[1]))) not_found(r, "No such identity");
        else get_identity(seg[1], r);
        goto done;
    }
    if (n == 3 && strcmp(seg[0], "following") == 0 && strcmp(seg[1], "users") == 0) {
        if (!srv_valid_user_id(seg[2], strlen(seg[2]))) not_found(r, "No such identity");
        else if (m == M_PUT) follow(user, seg[2], 1, r);
        else if (m == M_DELETE) follow(user, seg[2], 0, r);
        else METHOD_NA();
        goto done;
    }
    if (strcmp(seg[0], "announcements") == 0 && n <= 3) {
        if (n == 1) {
            if (m == M_GET) list_announcements(q, user, r);
            else METHOD_NA();
        } else if (want_uuid(seg[1], id, r, "No such announcement")) {
            announcement_action(m, user, id, n == 3 ? seg[2] : NULL, body, r);
        }
        goto done;
    }
    if (strcmp(seg[0], "content") == 0 && n <= 2) {
        if (n == 1) {
            if (m == M_POST) content_create(q, user, r);
            else METHOD_NA();
        } else if (want_uuid(seg[1], id, r, "No such content")) {
            if (m == M_GET) content_refresh(user, id, r);
            else METHOD_NA();
        }
        goto done;
    }
    if (strcmp(seg[0], "push_tokens") == 0 && n <= 2) {
        ok_empty(r); /* accepted and ignored: there is no push service here */
        goto done;
    }
    err_resp(r, 404, "invalid_endpoint", 106, "Unknown endpoint", NULL);
done:
    jv_doc_free(bd);
}
