/*
 * lclient.c - layer.core.client(options): the protocol engine (session.c) as a
 * Lua userdata, with the cache-backed objects of lobject.c.
 *
 * Events come out as Lua tables (client:next_event()); lua/layer/client.lua
 * dispatches them to handlers. In "manual" mode the caller is the transport:
 * it feeds frames and HTTP responses and takes what should be sent, with a
 * clock it sets itself; tests and cosocket transports use that mode.
 */
#include "bindings.h"
#include "lchanges.h"
#include "lclient.h"
#include "lconv.h"
#include "lobject.h"
#include "loop.h"
#include "scratch.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h> /* strcasecmp */
#include <string.h>

#define CLIENT_MT "layer.client_core"

typedef struct {
    lobject_owner owner; /* objects point here; cache NULL once closed */
    ls_session *s;
    int64_t manual_now;         /* -1: real monotonic clock */
    uint64_t last_seq, last_fp; /* the change behind the last event handed out */
} lclient;

static int64_t now_of(const lclient *c) { return c->manual_now >= 0 ? c->manual_now : lt_now_ms(); }

static lclient *check_client(lua_State *L)
{
    lclient *c = (lclient *)luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->s) luaL_error(L, "attempt to use a closed client");
    return c;
}

ls_session *lclient_session(lua_State *L, int idx)
{
    lclient *c = (lclient *)luaL_checkudata(L, idx, CLIENT_MT);
    if (!c->s) luaL_error(L, "attempt to use a closed client");
    return c->s;
}

/* Whole numbers (counts, attempts, Layer-Count) as Lua integers on 5.3+. */
static void push_count(lua_State *L, double v)
{
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, (lua_Number)v);
}

static void set_count(lua_State *L, const char *k, double v)
{
    push_count(L, v);
    lua_setfield(L, -2, k);
}

int lclient_is_open(lua_State *L, int idx)
{
    lclient *c = (lclient *)layer_testudata(L, idx, CLIENT_MT);
    return c && c->s;
}

static double opt_num(lua_State *L, int t, const char *k, double dflt)
{
    double v = dflt;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) v = (double)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int layer_l_client_new(lua_State *L)
{
    ls_config cfg;
    lclient *c;
    luaL_checktype(L, 1, LUA_TTABLE);
    ls_config_defaults(&cfg);
    cfg.api_version = (int)opt_num(L, 1, "api_version", 3);
    luaL_argcheck(L, cfg.api_version == 2 || cfg.api_version == 3, 1, "api_version must be 2 or 3");
    cfg.keepalive_ms = (int64_t)(opt_num(L, 1, "keepalive", 30) * 1000);
    cfg.dead_ms = (int64_t)(opt_num(L, 1, "dead_after", 45) * 1000);
    cfg.request_timeout_ms = (int64_t)(opt_num(L, 1, "request_timeout", 45) * 1000);
    cfg.backoff_base_ms = (int64_t)(opt_num(L, 1, "backoff_base", 1.6) * 1000);
    cfg.backoff_cap_ms = (int64_t)(opt_num(L, 1, "backoff_cap", 480) * 1000);
    cfg.backoff_jitter = opt_num(L, 1, "backoff_jitter", 0.5);
    cfg.random_seed = (uint64_t)opt_num(L, 1, "random_seed", 0);
    cfg.cache_limits.max_messages_per_conversation = (size_t)opt_num(L, 1, "max_messages_per_conversation", 0);
    cfg.cache_limits.max_bytes = (size_t)opt_num(L, 1, "max_bytes", 0);
    luaL_argcheck(L, cfg.backoff_base_ms > 0 && cfg.backoff_cap_ms >= cfg.backoff_base_ms, 1,
                  "backoff_base must be positive and at most backoff_cap");
    luaL_argcheck(L, cfg.backoff_jitter >= 0 && cfg.backoff_jitter <= 10, 1, "backoff_jitter out of range");

    c = (lclient *)layer_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->manual_now = -1;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);
    lua_createtable(L, 1, 3); /* uservalue: objects (weak), methods, client, [1] the objects' metatable */
    lobject_push_metatable(L);
    lua_rawseti(L, -2, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "objects");
    lua_newtable(L);
    lua_setfield(L, -2, "methods");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "client"); /* objects reach their client through this table */
    layer_setuservalue(L, -2);
    lua_getfield(L, 1, "manual_clock");
    if (lua_isnumber(L, -1)) c->manual_now = (int64_t)(lua_tonumber(L, -1) * 1000);
    lua_pop(L, 1);
    c->s = ls_new(&cfg);
    if (!c->s) luaL_error(L, "not enough memory");
    c->owner.cache = ls_cache(c->s);
    return 1;
}

static int l_close(lua_State *L)
{
    lclient *c = (lclient *)luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->s) return 0;
    c->owner.cache = NULL; /* objects stop touching it from now on */
    ls_free(c->s);
    c->s = NULL;
    return 0;
}

static int l_closed(lua_State *L)
{
    lclient *c = (lclient *)luaL_checkudata(L, 1, CLIENT_MT);
    lua_pushboolean(L, c->s == NULL);
    return 1;
}

/* ----- clock ----- */

static int l_set_time(lua_State *L)
{
    lclient *c = check_client(L);
    c->manual_now = (int64_t)(luaL_checknumber(L, 2) * 1000);
    return 0;
}

static int l_now(lua_State *L)
{
    lclient *c = check_client(L);
    lua_pushnumber(L, (lua_Number)now_of(c) / 1000.0);
    return 1;
}

/* ----- lifecycle inputs -----
 * client:http_response(id, status [, body [, retry_after [, layer_count]]]) */

static int l_start(lua_State *L)
{
    lclient *c = check_client(L);
    ls_start(c->s, now_of(c), luaL_optstring(L, 2, NULL));
    return 0;
}

static int l_answer_challenge(lua_State *L)
{
    lclient *c = check_client(L);
    ls_answer_challenge(c->s, now_of(c), luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL));
    return 0;
}

static int l_stop(lua_State *L)
{
    lclient *c = check_client(L);
    ls_close(c->s, now_of(c));
    return 0;
}

static int l_ws_opened(lua_State *L)
{
    lclient *c = check_client(L);
    ls_ws_opened(c->s, now_of(c));
    return 0;
}

static int l_ws_closed(lua_State *L)
{
    lclient *c = check_client(L);
    ls_ws_closed(c->s, now_of(c), luaL_optstring(L, 2, NULL));
    return 0;
}

static int l_feed(lua_State *L)
{
    lclient *c = check_client(L);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    ls_ws_frame(c->s, now_of(c), text, len);
    return 0;
}

static int l_tick(lua_State *L)
{
    lclient *c = check_client(L);
    ls_tick(c->s, now_of(c));
    return 0;
}

static int l_http_response(lua_State *L)
{
    lclient *c = check_client(L);
    uint64_t id = (uint64_t)luaL_checknumber(L, 2);
    int status = (int)luaL_checkinteger(L, 3);
    size_t len = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &len);
    ls_http_response(c->s, now_of(c), id, status, luaL_optstring(L, 5, NULL), (int64_t)luaL_optnumber(L, 6, -1), body,
                     len);
    return 0;
}

/* ----- outputs ----- */

static int l_take_frame(lua_State *L)
{
    lclient *c = check_client(L);
    size_t len;
    char *frame = ls_take_frame(c->s, &len);
    if (!frame) return 0;
    lua_pushlstring(L, frame, len); /* may raise on OOM: frame leaks then, and only then */
    free(frame);
    return 1;
}

static int l_take_http(lua_State *L)
{
    lclient *c = check_client(L);
    ls_http_request *r = ls_take_http(c->s);
    if (!r) return 0;
    lua_createtable(L, 0, 7);
    lua_pushnumber(L, (lua_Number)r->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->path);
    lua_setfield(L, -2, "path");
    if (r->body) {
        lua_pushlstring(L, r->body, r->body_len);
        lua_setfield(L, -2, "body");
    }
    if (r->content_type) {
        lua_pushstring(L, r->content_type);
        lua_setfield(L, -2, "content_type");
    }
    if (r->headers) { /* rich content's Upload-* lines, for transports written in Lua */
        lua_pushstring(L, r->headers);
        lua_setfield(L, -2, "headers");
    }
    lua_pushboolean(L, r->authenticated);
    lua_setfield(L, -2, "authenticated");
    ls_http_request_free(r);
    return 1;
}

static int l_ws_wanted(lua_State *L)
{
    lclient *c = check_client(L);
    lua_pushboolean(L, ls_ws_wanted(c->s));
    return 1;
}

static int l_session_token(lua_State *L)
{
    lclient *c = check_client(L);
    const char *t = ls_session_token(c->s);
    if (!t) return 0;
    lua_pushstring(L, t);
    return 1;
}

static int l_subprotocol(lua_State *L)
{
    lclient *c = check_client(L);
    lua_pushstring(L, ls_subprotocol(c->s));
    return 1;
}

/* Seconds until the engine needs a tick (0: work pending), or nil. */
static int l_deadline(lua_State *L)
{
    lclient *c = check_client(L);
    int64_t ms = ls_next_deadline(c->s, now_of(c));
    if (ms < 0) return 0;
    lua_pushnumber(L, (lua_Number)ms / 1000.0);
    return 1;
}

/* ----- application requests ----- */

static int l_ws_request(lua_State *L)
{
    lclient *c = check_client(L);
    const char *method = luaL_checkstring(L, 2);
    const char *object_id = luaL_optstring(L, 3, NULL);
    uint64_t id;
    lua_settop(L, 4);
    if (lua_isnil(L, 4)) {
        id = ls_ws_request(c->s, now_of(c), method, object_id, NULL);
    } else {
        scratch *s = scratch_push(L);
        jv_doc *doc = scratch_doc(L, s, 0);
        jv data;
        lconv_to_jv(L, 4, doc, &data);
        id = ls_ws_request(c->s, now_of(c), method, object_id, &data);
        scratch_release(s);
    }
    if (!id) return luaL_error(L, "the client is closed or out of memory");
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int l_rest_request(lua_State *L)
{
    lclient *c = check_client(L);
    const char *method = luaL_checkstring(L, 2);
    const char *path = luaL_checkstring(L, 3);
    size_t len = 0;
    const char *body = luaL_optlstring(L, 4, NULL, &len);
    uint64_t id = ls_rest_request(c->s, now_of(c), method, path, body, len, luaL_optstring(L, 5, NULL));
    if (!id) return luaL_error(L, "the client is closed or out of memory");
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static const char *field_str(lua_State *L, int t, const char *k, size_t *len)
{
    const char *v;
    lua_getfield(L, t, k);
    v = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, len);
    lua_pop(L, 1); /* still referenced by the table */
    return v;
}

/* client:http{method=, url=, body=, content_type=, headers=, authenticated=, raw=} -> id */
static int l_http(lua_State *L)
{
    lclient *c = check_client(L);
    ls_http_spec spec;
    uint64_t id;
    luaL_checktype(L, 2, LUA_TTABLE);
    memset(&spec, 0, sizeof spec);
    spec.method = field_str(L, 2, "method", NULL);
    spec.path_or_url = field_str(L, 2, "url", NULL);
    spec.body = field_str(L, 2, "body", &spec.body_len);
    spec.content_type = field_str(L, 2, "content_type", NULL);
    spec.headers = field_str(L, 2, "headers", NULL);
    lua_getfield(L, 2, "authenticated");
    spec.authenticated = lua_toboolean(L, -1);
    lua_getfield(L, 2, "raw");
    spec.raw = lua_toboolean(L, -1);
    lua_pop(L, 2);
    luaL_argcheck(L, spec.method && spec.path_or_url, 2, "method and url are required");
    id = ls_http(c->s, now_of(c), &spec);
    if (!id) return luaL_error(L, "the client is closed or out of memory");
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int l_typing(lua_State *L)
{
    lclient *c = check_client(L);
    lua_pushboolean(L, ls_send_typing(c->s, luaL_checkstring(L, 2), luaL_checkstring(L, 3)));
    return 1;
}

/* ----- objects ----- */

static int l_object(lua_State *L)
{
    lclient *c = check_client(L);
    size_t len;
    const char *id = luaL_checklstring(L, 2, &len);
    lobject_push_id(L, 1, &c->owner, id, len);
    return 1;
}

/* The object type named at arg, by the core's names; errors as luaL_checkoption does. */
static pkt_object_type check_object_type(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    int t;
    for (t = OBJ_CONVERSATION; t <= OBJ_IDENTITY; t++)
        if (!strcmp(pkt_object_type_name((pkt_object_type)t), name)) return (pkt_object_type)t;
    return (pkt_object_type)luaL_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

/* client:put(type, object) stores an object fetched over REST; returns it. */
static int l_put(lua_State *L)
{
    lclient *c = check_client(L);
    pkt_object_type type = check_object_type(L, 2);
    scratch *s;
    jv_doc *doc;
    jv value;
    const jv *id;
    lua_settop(L, 3);
    s = scratch_push(L);
    if (lua_type(L, 3) == LUA_TSTRING) {
        size_t n;
        const char *text = lua_tolstring(L, 3, &n);
        jv_error err;
        doc = jv_parse(text, n, NULL, &err);
        if (!doc) return luaL_error(L, "invalid JSON: %s", err.message);
        scratch_adopt(L, s, doc);
        value = *jv_root(doc);
    } else {
        doc = scratch_doc(L, s, 0);
        lconv_to_jv(L, 3, doc, &value);
    }
    id = jv_get(&value, "id");
    if (value.type != JV_OBJECT || !id || id->type != JV_STRING) return luaL_error(L, "object needs a string id");
    if (!lc_put(c->owner.cache, (pkt_object_type)type, &value)) return luaL_error(L, "not enough memory");
    lobject_push_id(L, 1, &c->owner, id->u.s, id->len);
    scratch_release(s);
    return 1;
}

/* client:messages(conversation_id) -> cached messages, oldest first */
static int l_messages(lua_State *L)
{
    lclient *c = check_client(L);
    size_t len, n, i;
    const char *id = luaL_checklstring(L, 2, &len);
    lc_ref *const *refs;
    n = lc_conversation_messages(c->owner.cache, id, len, &refs);
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        lobject_push_ref(L, 1, &c->owner, refs[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_set_methods(lua_State *L)
{
    check_client(L);
    luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    layer_getuservalue(L, 1);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

/* ----- events ----- */

static const char *const event_names[] = {
    "?",      "challenge", "authenticated", "connected", "disconnected", "reconnecting", "synced", "create",
    "update", "delete",    "truncate",      "mark_read", "typing",       "response",     "error",  "log",
};

static void set_str(lua_State *L, const char *k, const char *v, size_t n)
{
    if (!v) return;
    lua_pushlstring(L, v, n);
    lua_setfield(L, -2, k);
}

/* The error object a failure for want of memory stands for. */
static void set_oom_error(lua_State *L, const char *message)
{
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "out_of_memory");
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_setfield(L, -2, "error");
}

/* A non-object event as a table whose fields say what each one carries,
 * instead of the C struct's number/text/value (whose meaning varies). */
static void push_event(lua_State *L, const ls_event *ev)
{
    static const char *const error_kinds[] = {"client", "transport", "out_of_memory"};
    static const char *const log_levels[] = {"info", "error", "warn", "info"};
    lua_createtable(L, 0, 6);
    lua_pushstring(L, event_names[ev->type]);
    lua_setfield(L, -2, "name");
    switch (ev->type) {
    case LS_EV_CHALLENGE: set_str(L, "nonce", ev->text, ev->text_len); break;
    case LS_EV_AUTHENTICATED: set_str(L, "token", ev->text, ev->text_len); break;
    case LS_EV_CONNECTED: set_count(L, "connection", ev->number); break;
    case LS_EV_DISCONNECTED:
        set_str(L, "reason", ev->text, ev->text_len);
        if (ev->number >= 0) set_count(L, "delay_ms", ev->number); /* absent: not retrying */
        break;
    case LS_EV_RECONNECTING: set_count(L, "attempt", ev->number); break;
    case LS_EV_SYNCED: set_count(L, "replayed", ev->number); break;
    case LS_EV_TRUNCATE:
        set_str(L, "conversation_id", ev->id, ev->id_len);
        set_count(L, "removed", ev->number);
        break;
    case LS_EV_MARK_READ:
        set_str(L, "conversation_id", ev->id, ev->id_len);
        set_count(L, "marked", ev->number);
        break;
    case LS_EV_TYPING:
        set_str(L, "conversation_id", ev->id, ev->id_len);
        lconv_setfield(L, "typing", ev->value); /* {action, sender [, expired]} */
        break;
    case LS_EV_RESPONSE:
        lua_pushnumber(L, (lua_Number)ev->request_id);
        lua_setfield(L, -2, "request_id");
        lua_pushboolean(L, ev->success);
        lua_setfield(L, -2, "success");
        lua_pushinteger(L, ev->http_status);
        lua_setfield(L, -2, "http_status");
        if (ev->number >= 0) set_count(L, "count", ev->number); /* the Layer-Count header */
        lconv_setfield(L, ev->success ? "data" : "error", ev->value);
        /* a raw body (success), or the failure's text when it has no JSON error */
        set_str(L, ev->success ? "body" : "message", ev->text, ev->text_len);
        if (ev->out_of_memory) set_oom_error(L, "out of memory: the answer could not be copied");
        break;
    case LS_EV_ERROR:
        set_str(L, "message", ev->text, ev->text_len);
        lconv_setfield(L, "error", ev->value);
        lua_pushstring(L, error_kinds[ev->number >= 0 && ev->number <= LS_ERROR_OUT_OF_MEMORY ? (int)ev->number : 0]);
        lua_setfield(L, -2, "kind");
        if (ev->number == LS_ERROR_OUT_OF_MEMORY && !ev->value) set_oom_error(L, ev->text ? ev->text : "out of memory");
        break;
    case LS_EV_LOG:
        set_str(L, "message", ev->text, ev->text_len);
        lua_pushstring(L, log_levels[ev->number >= 1 && ev->number <= LS_LOG_INFO ? (int)ev->number : 0]);
        lua_setfield(L, -2, "level");
        break;
    default: break;
    }
}

/* client:next_event() -> name, object_type, object, extra, details
 * Object events, the hot path, come back without a table:
 *   "create", type, obj
 *   "update", type, obj, changes, nil, values (changes and the holder of
 *            their values, whose release() the dispatcher calls; nothing
 *            without change lists)
 *   "delete", type, obj or id, mode
 * every other event as name, nil, nil, nil, {name=, and its named fields
 * (push_event)}. */
static int l_next_event(lua_State *L)
{
    lclient *c = check_client(L);
    ls_event *ev;
    int n = 1;
    if (!ls_pending_events(c->s)) return 0;
    ev = ls_next_event(c->s);
    c->last_seq = ev->change_seq;
    c->last_fp = ev->change_fp;
    lua_settop(L, 1);
    lua_pushstring(L, event_names[ev->type]);
    if (ev->type == LS_EV_CREATE || ev->type == LS_EV_UPDATE || ev->type == LS_EV_DELETE) {
        lobject_push_type_name(L, ev->object_type);
        if (ev->ref)
            lobject_push_ref(L, 1, &c->owner, ev->ref);
        else if (ev->id)
            lua_pushlstring(L, ev->id, ev->id_len);
        else
            lua_pushnil(L);
        n = 3;
        if (ev->type == LS_EV_UPDATE && ev->changes) {
            lua_pushnil(L); /* no details */
            lchanges_push(L, &ev->doc, &ev->hold, &ev->changes, ev->n_changes);
            lua_insert(L, -2);
            lua_insert(L, -3); /* changes, nil, holder */
            n = 6;
        } else if (ev->type == LS_EV_DELETE && ev->text) {
            lua_pushlstring(L, ev->text, ev->text_len);
            n = 4;
        }
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushnil(L);
        push_event(L, ev);
        n = 5;
    }
    ls_event_free(c->s, ev);
    return n;
}

/* ----- the durable cursor, for a state file (client.lua's state.lua) ----- */

static int l_track_cursor(lua_State *L)
{
    ls_track_cursor(check_client(L)->s);
    return 0;
}

/* client:last_change() -> seq, fingerprint (16 hex digits) of the change
 * behind the last event next_event returned; nothing if none */
static int l_last_change(lua_State *L)
{
    lclient *c = check_client(L);
    char hex[17];
    if (!c->last_seq) return 0;
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)c->last_fp);
    lua_pushnumber(L, (lua_Number)c->last_seq);
    lua_pushstring(L, hex);
    return 2;
}

/* client:finish_changes([below]) -> moved: changes before seq below (all if
 * absent), and the oldest still queued as an event, are not finished */
static int l_finish_changes(lua_State *L)
{
    lclient *c = check_client(L);
    uint64_t below = (uint64_t)luaL_optnumber(L, 2, 0), queued = ls_oldest_queued_change(c->s);
    if (queued && (!below || queued < below)) below = queued;
    lua_pushboolean(L, ls_finish_changes(c->s, below));
    return 1;
}

/* client:durable_cursor() -> ms, fingerprints (16 hex digits each, concatenated) */
static int l_durable_cursor(lua_State *L)
{
    lclient *c = check_client(L);
    ls_cursor cur;
    luaL_Buffer b;
    size_t i;
    ls_durable_cursor(c->s, &cur);
    lua_pushnumber(L, (lua_Number)cur.ms);
    luaL_buffinit(L, &b);
    for (i = 0; i < cur.n; i++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)cur.fps[i]);
        luaL_addlstring(&b, hex, 16);
    }
    luaL_pushresult(&b);
    return 2;
}

static int l_restore_cursor(lua_State *L)
{
    lclient *c = check_client(L);
    lua_Number ms = luaL_checknumber(L, 2);
    size_t len, i;
    const char *hex = luaL_checklstring(L, 3, &len);
    ls_cursor cur;
    uint64_t *fps;
    int ok;
    if (len % 16) return luaL_argerror(L, 3, "fingerprints are 16 hex digits each");
    fps = malloc((len / 16 + 1) * sizeof *fps);
    if (!fps) return luaL_error(L, "not enough memory");
    for (i = 0; i < len / 16; i++) {
        char part[17], *end;
        memcpy(part, hex + i * 16, 16);
        part[16] = '\0';
        fps[i] = (uint64_t)strtoull(part, &end, 16);
        if (*end) {
            free(fps);
            return luaL_argerror(L, 3, "fingerprints are 16 hex digits each");
        }
    }
    cur.ms = (int64_t)ms;
    cur.fps = fps;
    cur.n = len / 16;
    ok = ls_restore_cursor(c->s, &cur);
    free(fps);
    if (!ok) return luaL_error(L, "not enough memory");
    return 0;
}

/* layer.core.interest_bit(change, object_type) -> the LS_INTEREST bit for
 * "create" | "update" | "delete" events of "Conversation" ... (any case), or
 * nil for a pair that is no object event; the layout stays in session.h. */
int layer_l_interest_bit(lua_State *L)
{
    static const char *const changes[] = {"create", "update", "delete", NULL};
    const char *change = luaL_checkstring(L, 1), *type = luaL_checkstring(L, 2);
    int e, t;
    for (e = 0; changes[e]; e++)
        if (!strcmp(changes[e], change)) break;
    for (t = OBJ_CONVERSATION; t <= OBJ_IDENTITY; t++)
        if (!strcasecmp(pkt_object_type_name((pkt_object_type)t), type)) break;
    if (!changes[e] || t > OBJ_IDENTITY) return 0;
    lua_pushnumber(L, (lua_Number)LS_INTEREST(LS_EV_CREATE + e, t));
    return 1;
}

/* client:interest(mask): which object events to build (LS_INTEREST bits,
 * from interest_bit, by scheduler.lua from its handlers) */
static int l_interest(lua_State *L)
{
    lclient *c = check_client(L);
    ls_set_interest(c->s, (unsigned)luaL_checknumber(L, 2));
    return 0;
}

/* client:change_lists([on]) -> whether update events carry change lists */
static int l_change_lists(lua_State *L)
{
    lclient *c = check_client(L);
    if (!lua_isnone(L, 2)) ls_set_change_lists(c->s, lua_toboolean(L, 2));
    lua_pushboolean(L, ls_change_lists(c->s));
    return 1;
}

static int l_pending(lua_State *L)
{
    lclient *c = check_client(L);
    lua_pushinteger(L, (lua_Integer)ls_pending_events(c->s));
    return 1;
}

static int l_stats(lua_State *L)
{
    lclient *c = check_client(L);
    ls_stats ss;
    lc_stats cs;
    ls_stats_get(c->s, &ss);
    lc_stats_get(c->owner.cache, &cs);
    lua_createtable(L, 0, 14);
    set_count(L, "packets", (double)ss.packets);
    set_count(L, "changes_applied", (double)ss.changes_applied);
    set_count(L, "duplicates_suppressed", (double)ss.duplicates_suppressed);
    set_count(L, "replays", (double)ss.replays);
    set_count(L, "reconnects", (double)ss.reconnects);
    set_count(L, "gaps", (double)ss.gaps);
    set_count(L, "last_counter", (double)ss.last_counter);
    set_count(L, "out_of_memory", (double)ss.out_of_memory);
    layer_push_cache_stats(L, &cs);
    return 1;
}

/* client:compact([slots]): idle repacking of patched objects (lc_maintain) */
static int l_compact(lua_State *L)
{
    lclient *c = check_client(L);
    size_t slots = (size_t)luaL_optnumber(L, 2, (lua_Number)lc_slots(c->owner.cache));
    lua_pushinteger(L, (lua_Integer)lc_maintain(c->owner.cache, slots));
    return 1;
}

static const luaL_Reg methods[] = {
    {"close", l_close},
    {"closed", l_closed},
    {"set_time", l_set_time},
    {"now", l_now},
    {"start", l_start},
    {"answer_challenge", l_answer_challenge},
    {"stop", l_stop},
    {"ws_opened", l_ws_opened},
    {"ws_closed", l_ws_closed},
    {"feed", l_feed},
    {"tick", l_tick},
    {"http_response", l_http_response},
    {"take_frame", l_take_frame},
    {"take_http", l_take_http},
    {"ws_wanted", l_ws_wanted},
    {"session_token", l_session_token},
    {"subprotocol", l_subprotocol},
    {"deadline", l_deadline},
    {"ws_request", l_ws_request},
    {"rest_request", l_rest_request},
    {"typing", l_typing},
    {"http", l_http},
    {"object", l_object},
    {"put", l_put},
    {"messages", l_messages},
    {"set_methods", l_set_methods},
    {"next_event", l_next_event},
    {"pending", l_pending},
    {"stats", l_stats},
    {"compact", l_compact},
    {"change_lists", l_change_lists},
    {"interest", l_interest},
    {"track_cursor", l_track_cursor},
    {"last_change", l_last_change},
    {"finish_changes", l_finish_changes},
    {"durable_cursor", l_durable_cursor},
    {"restore_cursor", l_restore_cursor},
    {NULL, NULL},
};

void layer_client_open(lua_State *L)
{
    layer_new_class(L, CLIENT_MT, methods, l_close);
    lua_pop(L, 1);
    lobject_open(L);
    lchanges_open(L);
}
