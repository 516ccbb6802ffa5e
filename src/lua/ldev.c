/*
 * ldev.c - layer.uuid(), layer.dev_token{...}, base64url_decode and the monotonic clock: random
 * ids for client-chosen object ids, HS256 identity tokens for the local
 * server (so a bot can log in with no application server of its own), and
 * time for step budgets.
 */
#define _GNU_SOURCE /* getrandom */
#include "base64url.h"
#include "bindings.h"
#include "monoclock.h"
#include "lconv.h"
#include "scratch.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int random_bytes(unsigned char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r <= 0) return 0;
        got += (size_t)r;
    }
    return 1;
}

/* layer.core.clock() -> monotonic seconds (for step budgets) */
int layer_l_clock(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)mono_ns() / 1e9);
    return 1;
}

/* layer.uuid() -> "2d6c...-....-4...-[89ab]...-............" (version 4);
 * layer.uuid(name) -> the same uuid for the same name (SHA-256 based, version
 * 5 layout), so a re-run handler issues the ids it issued the first time */
int layer_l_uuid(lua_State *L)
{
    unsigned char b[SHA256_DIGEST_LENGTH];
    char text[37];
    int version = 0x40;
    if (lua_isnoneornil(L, 1)) {
        if (!random_bytes(b, 16)) return luaL_error(L, "the system random source failed");
    } else {
        size_t len;
        const char *name = luaL_checklstring(L, 1, &len);
        SHA256((const unsigned char *)name, len, b);
        version = 0x50;
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | version);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    lua_pushlstring(L, text, 36);
    return 1;
}

/* Appends the base64url encoding of n bytes (the core's b64url_encode). */
static void base64url(luaL_Buffer *B, const unsigned char *p, size_t n)
{
    char chunk[4 * 64 + 1];
    size_t i;
    for (i = 0; i < n; i += 3 * 64) { /* whole 3-byte groups per chunk: no padding bits mid-string */
        size_t k = n - i < 3 * 64 ? n - i : 3 * 64;
        luaL_addlstring(B, chunk, b64url_encode(p + i, k, chunk));
    }
}

/* layer.core.base64url_decode(text) -> bytes, or nil when text is not base64url */
int layer_l_base64url_decode(lua_State *L)
{
    size_t n, outn;
    const char *text = luaL_checklstring(L, 1, &n);
    unsigned char *out = lua_newuserdata(L, n * 3 / 4 + 1); /* collected: no leak on a raise */
    if (!b64url_decode(text, n, out, &outn))
        lua_pushnil(L);
    else
        lua_pushlstring(L, (const char *)out, outn);
    return 1;
}

/* layer.dev_token{secret=, user_id=, nonce= [, display_name=, avatar_url=,
 * first_name=, last_name=, ttl=seconds]} -> JWT signed with HMAC-SHA256 */
int layer_l_dev_token(lua_State *L)
{
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";
    static const char *const optional[] = {"display_name", "avatar_url", "first_name", "last_name", NULL};
    size_t secret_len, claims_len, signing_len, i;
    int signing_idx;
    const char *secret, *claims, *signing;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    long now = (long)time(NULL), ttl;
    luaL_Buffer B;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "secret");
    secret = luaL_checklstring(L, -1, &secret_len);
    luaL_argcheck(L, secret_len > 0, 1, "secret must not be empty");
    lua_getfield(L, 1, "ttl");
    ttl = (long)luaL_optnumber(L, -1, 3600);
    /* claims: build a Lua table and let the JSON writer quote everything */
    lua_createtable(L, 0, 8);
    lua_getfield(L, 1, "user_id");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "user_id (a string) is required");
    lua_setfield(L, -2, "prn");
    lua_getfield(L, 1, "nonce");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "nonce (a string) is required");
    lua_setfield(L, -2, "nce");
    lua_pushnumber(L, (lua_Number)now);
    lua_setfield(L, -2, "iat");
    lua_pushnumber(L, (lua_Number)(now + ttl));
    lua_setfield(L, -2, "exp");
    for (i = 0; optional[i]; i++) {
        lua_getfield(L, 1, optional[i]);
        if (!lua_isnil(L, -1)) luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "profile fields must be strings");
        lua_setfield(L, -2, optional[i]);
    }
    {
        scratch *s = scratch_push(L);
        jv_doc *doc = scratch_doc(L, s, 0);
        jv v;
        lconv_to_jv(L, -2, doc, &v);
        lconv_push_json_text(L, &v);
        scratch_release(s);
    }
    claims = lua_tolstring(L, -1, &claims_len);
    luaL_buffinit(L, &B);
    base64url(&B, (const unsigned char *)header, sizeof header - 1);
    luaL_addchar(&B, '.');
    base64url(&B, (const unsigned char *)claims, claims_len);
    luaL_pushresult(&B);
    signing_idx = lua_gettop(L); /* absolute: luaL_buffinit may push (5.4) or not (5.1-5.3) */
    signing = lua_tolstring(L, signing_idx, &signing_len);
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)signing, signing_len, mac, &mac_len))
        return luaL_error(L, "HMAC-SHA256 failed");
    luaL_buffinit(L, &B);
    lua_pushvalue(L, signing_idx);
    luaL_addvalue(&B);
    luaL_addchar(&B, '.');
    base64url(&B, mac, mac_len);
    luaL_pushresult(&B);
    return 1;
}
