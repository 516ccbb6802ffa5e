/* auth.c - authentication: nonces, identity-token verification, session tokens and who a request is from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base64url.h"
#include "srv.h"
#include "sql.h"
#include "resp.h"
#include "fanout.h"
#include "handlers.h"

/* ---------- authentication ---------- */

void new_nonce(char out[65])
{
    static unsigned n;
    sqlite3_stmt *st;
    if (++n % 256 == 0) { /* nonces live ten minutes: keep the table small under nonce spam */
        st = sql(Q_NONCE_PRUNE);
        sqlite3_bind_int64(st, 1, srv_now_ms() - 600000);
        sqlite3_step(st);
    }
    srv_random_hex(out, 32);
    st = sql(Q_NONCE_INSERT);
    bind_text(st, 1, out);
    sqlite3_bind_int64(st, 2, srv_now_ms());
    sqlite3_step(st);
}

void auth_required(srv_resp *r, const char *msg)
{
    char nonce[65], data[96];
    new_nonce(nonce);
    snprintf(data, sizeof data, "{\"nonce\":\"%s\"}", nonce);
    err_resp(r, 401, "authentication_required", 4, msg, data);
}

static int session_user(const char *token, char *user, size_t usz)
{
    sqlite3_stmt *st;
    if (!token || !*token || strlen(token) > 128) return 0;
    st = sql(Q_SESSION_USER);
    bind_text(st, 1, token);
    sqlite3_bind_int64(st, 2, srv_now_ms());
    if (sqlite3_step(st) != SQLITE_ROW) return 0;
    snprintf(user, usz, "%s", col_text(st, 0));
    return 1;
}

int srv_ws_authorize(const char *token, char *user, size_t usz) { return session_user(token, user, usz); }

/* Close the sockets opened with a session token, or (token NULL) all of a user's.
 * Nothing more is queued to them, and their requests are refused from now on. */
int close_session_sockets(const char *token, const char *user)
{
    srv_conn *c;
    int n = 0;
    for (c = registry_first(); c; c = c->next)
        if (token ? strcmp(c->token, token) == 0 : strcmp(c->user, user) == 0) {
            c->close_pending = 1;
            c->session_expires_ms = 0;
            conn_wake(c);
            n++;
        }
    return n;
}

/* Authorization: Layer session-token="<token>" */
int req_user(const srv_req *q, char *user, size_t usz, char *tok, size_t tsz)
{
    const char *a = q->authorization, *p;
    size_t n = 0;
    static const char pre[] = "Layer session-token=";
    if (strncasecmp(a, pre, sizeof pre - 1) != 0) return 0;
    p = a + sizeof pre - 1;
    if (*p == '"') p++;
    while (p[n] && p[n] != '"' && n + 1 < tsz) n++;
    memcpy(tok, p, n);
    tok[n] = 0;
    return session_user(tok, user, usz);
}

/* RFC 7519 NumericDate claims: seconds since 1970, at most 9999-12-31T23:59:59Z. */
#define MAX_NUMERIC_DATE 253402300799.0

/* Refuses a time claim that is present but no NumericDate in range, an exp that is past and an
 * nbf still to come; returns an error message or NULL. */
static const char *check_time_claims(const jv *claims)
{
    static const struct {
        const char *name, *bad;
    } dates[] = {
        {"exp", "identity_token claim exp must be a number of seconds since 1970 (0..253402300799)"},
        {"nbf", "identity_token claim nbf must be a number of seconds since 1970 (0..253402300799)"},
        {"iat", "identity_token claim iat must be a number of seconds since 1970 (0..253402300799)"},
    };
    double now = (double)srv_now_ms() / 1000.0, d;
    const jv *v;
    size_t i;
    for (i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        v = jv_get(claims, dates[i].name);
        if (!v) continue;
        d = jv_to_double(v);
        /* written so that NaN fails too */
        if (!jv_is_number(v) || !(d >= 0.0 && d <= MAX_NUMERIC_DATE)) return dates[i].bad;
    }
    if ((v = jv_get(claims, "exp")) && jv_to_double(v) < now) return "identity_token has expired (exp)";
    if ((v = jv_get(claims, "nbf")) && jv_to_double(v) > now) return "identity_token is not valid yet (nbf)";
    return NULL;
}

/* HS256 JWT with prn and nce; returns an error message or NULL. */
static const char *verify_identity_token(const srv_ctx *x, const char *tok, size_t len, char *user, size_t usz,
                                         jv_doc **claims)
{
    const char *d1 = memchr(tok, '.', len), *d2;
    unsigned char hdr[1024], pay[4096], sig[64], mac[32];
    size_t hn, pn, sn;
    jv_doc *hd = NULL, *pd = NULL;
    const jv *alg, *prn, *nce;
    const char *err = NULL, *bad_field;
    sqlite3_stmt *st;
    int unsigned_ok;

    if (!d1) return "identity_token is not a JWT";
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) return "identity_token is not a JWT";
    if ((size_t)(d1 - tok) * 3 / 4 + 3 > sizeof hdr || (size_t)(d2 - d1) * 3 / 4 + 3 > sizeof pay ||
        (size_t)(tok + len - d2) * 3 / 4 + 3 > sizeof sig)
        return "identity_token is too large";
    if (!b64url_decode(tok, (size_t)(d1 - tok), hdr, &hn) || !b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), pay, &pn) ||
        !b64url_decode(d2 + 1, (size_t)(tok + len - d2 - 1), sig, &sn))
        return "identity_token is not base64url";
    hd = jv_parse((const char *)hdr, hn, NULL, NULL);
    pd = jv_parse((const char *)pay, pn, NULL, NULL);
    if (!hd || !pd || jv_root(hd)->type != JV_OBJECT || jv_root(pd)->type != JV_OBJECT) {
        err = "identity_token header or claims are not JSON objects";
        goto out;
    }
    alg = jv_get(jv_root(hd), "alg");
    unsigned_ok = x->allow_unsigned && alg && alg->type == JV_STRING && strcmp(alg->u.s, "none") == 0;
    if (!unsigned_ok) {
        if (!alg || alg->type != JV_STRING || strcmp(alg->u.s, "HS256") != 0) {
            err = "identity_token must be signed with HS256";
            goto out;
        }
        srv_hmac256(x->secret, strlen(x->secret), tok, (size_t)(d2 - tok), mac);
        if (sn != 32 || !srv_ct_equal(mac, sig, 32)) {
            err = "identity_token signature does not verify";
            goto out;
        }
    }
    prn = jv_get(jv_root(pd), "prn");
    nce = jv_get(jv_root(pd), "nce");
    if (!prn || prn->type != JV_STRING || !srv_valid_user_id(prn->u.s, prn->len) || prn->len >= usz) {
        err = "identity_token has no valid prn";
        goto out;
    }
    if ((err = check_time_claims(jv_root(pd))) != NULL) goto out;
    if (!nce || nce->type != JV_STRING) {
        err = "identity_token has no nce";
        goto out;
    }
    if ((bad_field = identity_token_bad_field(jv_root(pd))) != NULL) {
        /* one request at a time on the event loop, so a static buffer is safe */
        static char msg[96];
        snprintf(msg, sizeof msg, "identity_token claim %s must be a string", bad_field);
        err = msg;
        goto out;
    }
    /* A nonce is good once, for ten minutes. */
    st = sql(Q_NONCE_USE);
    bind_text(st, 1, nce->u.s);
    sqlite3_bind_int64(st, 2, srv_now_ms() - 600000);
    sqlite3_step(st);
    if (store_changes() != 1) {
        err = "identity_token nonce is unknown, used or expired";
        goto out;
    }
    memcpy(user, prn->u.s, prn->len + 1);
    *claims = pd;
    pd = NULL;
out:
    jv_doc_free(hd);
    jv_doc_free(pd);
    return err;
}

/* A new session for user, answered as 201 {"session_token"}. */
void respond_new_session(const srv_ctx *x, const char *user, srv_resp *r)
{
    char token[65];
    sqlite3_stmt *st;
    srv_random_hex(token, 32);
    st = sql(Q_SESSION_INSERT);
    bind_text(st, 1, token);
    bind_text(st, 2, user);
    sqlite3_bind_int64(st, 3, srv_now_ms());
    sqlite3_bind_int64(st, 4, srv_now_ms() + x->session_ttl_ms);
    sqlite3_step(st);
    r->status = 201;
    jbuf_puts(&r->body, "{\"session_token\":\"");
    jbuf_puts(&r->body, token);
    jbuf_puts(&r->body, "\"}");
}

void do_sessions(const srv_ctx *x, const jv *body, srv_resp *r)
{
    const jv *tok = body ? jv_get(body, "identity_token") : NULL;
    char user[160];
    jv_doc *claims = NULL;
    const char *e;
    if (!tok) {
        err_resp(r, 422, "missing_property", 104, "identity_token is required", NULL);
        return;
    }
    if (tok->type != JV_STRING) {
        err_resp(r, 422, "invalid_property", 105, "identity_token must be a string", NULL);
        return;
    }
    if ((e = verify_identity_token(x, tok->u.s, tok->len, user, sizeof user, &claims)) != NULL) {
        auth_required(r, e);
        return;
    }
    identity_update(user, jv_root(claims), 0);
    jv_doc_free(claims);
    respond_new_session(x, user, r);
}
