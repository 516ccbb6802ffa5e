/*
 * packet.c - validation of WebSocket frames into typed packets (see packet.h).
 * Every rejection names the offending field, so a server bug shows up as a
 * readable error event rather than as a silently dropped change.
 */
#include "packet.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int bad(pkt_error *err, const char *fmt, ...)
{
    va_list ap;
    if (!err) return 0;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return 0;
}

static int bad_json(pkt_error *err, const jv_error *jerr)
{
    if (err) err->out_of_memory = jerr->out_of_memory;
    return jerr->out_of_memory ? bad(err, "%s", jerr->message) : bad(err, "invalid JSON: %s", jerr->message);
}

/* Field names and expected values are literals: their lengths are known at
 * compile time, so lookups need no strlen and compare whole words inline. */
static inline int str_is_n(const jv *v, const char *s, size_t n)
{
    return v && v->type == JV_STRING && v->len == n && jv_same_bytes(v->u.s, s, n);
}
#define str_is(v, lit) str_is_n((v), "" lit, sizeof(lit) - 1)

static inline const jv *field_n(const jv *obj, const char *key, size_t klen)
{
    uint32_t i;
    if (!obj || obj->type != JV_OBJECT) return NULL;
    for (i = 0; i < obj->len; i++) {
        const char *k = obj->u.members[i].key;
        if (jv_key_len(k) == klen && jv_same_bytes(k, key, klen)) return &obj->u.members[i].value;
    }
    return NULL;
}
#define field(obj, lit) field_n((obj), "" lit, sizeof(lit) - 1)

/* An object id: the prefix, a name, and no NUL byte (the engine keeps ids as
 * C strings, e.g. for typists and event ids). */
static int is_object_id_n(const jv *v, const char *prefix, size_t n)
{
    return v && v->type == JV_STRING && v->len > n && jv_same_bytes(v->u.s, prefix, n) && !memchr(v->u.s, 0, v->len);
}
#define is_object_id(v, lit) is_object_id_n((v), "" lit, sizeof(lit) - 1)

/* Field of an object with a required JSON type; NULL + error otherwise.
 * The lookup is inline (the key's length is a constant there); reporting
 * a problem is not. */
static int type_fits(int want, int got)
{
    return want < 0 || got == want || (want == JV_TRUE && got == JV_FALSE) || (want == JV_INT && got == JV_REAL);
}

#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static const jv *
need_failed(const jv *v, const char *where, const char *key, int type, pkt_error *err)
{
    if (!v) {
        bad(err, "%s: missing field '%s'", where, key);
        return NULL;
    }
    bad(err, "%s: field '%s' must be %s %s, got %s", where, key, type == JV_ARRAY || type == JV_OBJECT ? "an" : "a",
        jv_type_name(type), jv_type_name(v->type));
    return NULL;
}

static inline const jv *need_n(const jv *obj, const char *where, const char *key, size_t klen, int type, pkt_error *err)
{
    const jv *v = field_n(obj, key, klen);
    if (v && type_fits(type, v->type)) return v;
    return need_failed(v, where, key, type, err);
}
#define need(obj, where, lit, type, err) need_n((obj), (where), "" lit, sizeof(lit) - 1, (type), (err))

#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static const jv *
optional_failed(const jv *v, const char *where, const char *key, int type, pkt_error *err, int *ok)
{
    *ok = 0;
    bad(err, "%s: field '%s' must be a %s, got %s", where, key, jv_type_name(type), jv_type_name(v->type));
    return NULL;
}

static inline const jv *optional_n(const jv *obj, const char *where, const char *key, size_t klen, int type,
                                   pkt_error *err, int *ok)
{
    const jv *v = field_n(obj, key, klen);
    *ok = 1;
    if (!v || v->type == JV_NULL) return NULL;
    if (v->type != type && !(type == JV_INT && v->type == JV_REAL))
        return optional_failed(v, where, key, type, err, ok);
    return v;
}
#define optional(obj, where, lit, type, err, ok)                                                                       \
    optional_n((obj), (where), "" lit, sizeof(lit) - 1, (type), (err), (ok))

const char *pkt_type_name(pkt_type t)
{
    switch (t) {
    case PKT_CHANGE: return "change";
    case PKT_RESPONSE: return "response";
    case PKT_SIGNAL: return "signal";
    case PKT_OPERATION: return "operation";
    case PKT_REQUEST: return "request";
    }
    return "?";
}

#define PREFIX(lit) "" lit, sizeof(lit) - 1
static const struct {
    const char *name, *prefix;
    size_t prefix_len;
    const char *collection; /* the REST path segment */
} object_types[] = {
    {NULL, NULL, 0, NULL},
    {"Conversation", PREFIX("layer:///conversations/"), "conversations"},
    {"Message", PREFIX("layer:///messages/"), "messages"},
    {"Announcement", PREFIX("layer:///announcements/"), "announcements"},
    {"Identity", PREFIX("layer:///identities/"), "identities"},
};
#undef PREFIX

const char *pkt_object_type_name(pkt_object_type t) { return object_types[t].name; }
const char *pkt_object_type_collection(pkt_object_type t) { return object_types[t].collection; }

/* ===== time ===== */

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int64_t days_from_civil(int y, int m, int d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian date to days since 1970-01-01. */
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int pkt_parse_time(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, fdigits = 0, off = 0;
    size_t i = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
        !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return 0;
    if (s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (fdigits < 3) frac = frac * 10 + (s[i] - '0'), fdigits++;
            i++;
        }
        if (fdigits == 0) return 0;
        while (fdigits < 3) frac *= 10, fdigits++;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) return 0;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return 0;
    }
    if (i != len) return 0;
    *ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)off * 60) * 1000 + frac;
    return 1;
}

/* ===== per type ===== */

/* The id decides the object type: ids are authoritative, and Layer's own
 * docs show an Identity create whose object.type says "Message". */
static int decode_object_ref(const jv *body, pkt *p, pkt_error *err)
{
    int t, ok;
    if (!(p->object = need(body, "change body", "object", JV_OBJECT, err))) return 0;
    if (!need(p->object, "change object", "type", JV_STRING, err)) return 0;
    if (!(p->object_id = need(p->object, "change object", "id", JV_STRING, err))) return 0;
    optional(p->object, "change object", "url", JV_STRING, err, &ok);
    if (!ok) return 0;
    for (t = OBJ_CONVERSATION; t <= OBJ_IDENTITY; t++) {
        if (is_object_id_n(p->object_id, object_types[t].prefix, object_types[t].prefix_len)) {
            p->object_type = (pkt_object_type)t;
            return 1;
        }
    }
    return bad(err,
               "change object: id '%.60s' is not a Layer object id (expected layer:///conversations/, "
               "layer:///messages/, layer:///announcements/ or layer:///identities/ and a name)",
               p->object_id->u.s);
}

static int decode_change(const jv *body, pkt *p, pkt_error *err)
{
    const jv *op = need(body, "change body", "operation", JV_STRING, err);
    if (!op) return 0;
    p->change_op_name = op;
    if (str_is(op, "create"))
        p->change_op = CHG_CREATE;
    else if (str_is(op, "delete"))
        p->change_op = CHG_DELETE;
    else if (str_is(op, "update") || str_is(op, "patch"))
        p->change_op = CHG_PATCH;
    else
        return bad(err, "change body: unknown operation '%.40s' (expected create, delete, update or patch)", op->u.s);
    if (!decode_object_ref(body, p, err)) return 0;
    p->data = field(body, "data");
    switch (p->change_op) {
    case CHG_CREATE: {
        const jv *id;
        if (!(p->data = need(body, "create", "data", JV_OBJECT, err))) return 0;
        id = field(p->data, "id");
        if (id && !jv_strict_equal(id, p->object_id))
            return bad(err, "create: data.id '%.60s' differs from object.id", id->type == JV_STRING ? id->u.s : "?");
        return 1;
    }
    case CHG_DELETE: {
        const jv *fp;
        int ok;
        if (!p->data || p->data->type == JV_NULL) {
            if (p->object_type == OBJ_IDENTITY) return 1; /* identities are deleted with data: null */
            return bad(err, "delete: missing field 'data' with a 'mode'");
        }
        if (p->data->type != JV_OBJECT)
            return bad(err, "delete: field 'data' must be an object, got %s", jv_type_name(p->data->type));
        if (!(p->mode = need(p->data, "delete", "mode", JV_STRING, err))) return 0;
        if (!str_is(p->mode, "all_participants") && !str_is(p->mode, "my_devices"))
            return bad(err, "delete: unknown mode '%.40s' (expected all_participants or my_devices)", p->mode->u.s);
        fp = optional(p->data, "delete", "from_position", JV_INT, err, &ok);
        if (!ok) return 0;
        if (fp) {
            if (p->object_type != OBJ_CONVERSATION || !str_is(p->mode, "my_devices"))
                return bad(err, "delete: from_position is only valid for a Conversation deleted with mode my_devices");
            p->has_from_position = 1;
            p->from_position = jv_to_double(fp);
        }
        return 1;
    }
    case CHG_PATCH: {
        uint32_t i;
        if (!(p->data = need(body, "patch", "data", JV_ARRAY, err))) return 0;
        for (i = 0; i < p->data->len; i++) {
            const jv *o = &p->data->u.items[i];
            if (o->type != JV_OBJECT)
                return bad(err, "patch: operation %u must be an object, got %s", i, jv_type_name(o->type));
            if (!need(o, "patch operation", "operation", JV_STRING, err)) return 0;
            if (!need(o, "patch operation", "property", JV_STRING, err)) return 0;
        }
        return 1;
    }
    }
    return 0;
}

static int decode_response(const jv *body, pkt *p, pkt_error *err)
{
    const jv *success;
    int ok;
    p->request_id = field(body, "request_id");
    if (!p->request_id) return bad(err, "response body: missing field 'request_id'");
    if (p->request_id->type != JV_STRING && !jv_is_number(p->request_id))
        return bad(err, "response body: field 'request_id' must be a string, got %s",
                   jv_type_name(p->request_id->type));
    p->method = optional(body, "response body", "method", JV_STRING, err, &ok);
    if (!ok) return 0;
    if (!(success = need(body, "response body", "success", JV_TRUE, err))) return 0;
    p->success = success->type == JV_TRUE;
    p->data = field(body, "data");
    if (!p->success) {
        if (!p->data || p->data->type != JV_OBJECT)
            return bad(err, "response body: a failed response needs an error object in 'data'");
        if (!need(p->data, "response error", "id", JV_STRING, err)) return 0;
        if (!need(p->data, "response error", "code", JV_INT, err)) return 0;
        p->error = p->data;
    }
    return 1;
}

static int decode_signal(const jv *body, pkt *p, pkt_error *err)
{
    const jv *obj, *data;
    int ok;
    if (!(p->signal_type = need(body, "signal body", "type", JV_STRING, err))) return 0;
    if (!str_is(p->signal_type, "typing_indicator"))
        return bad(err, "signal body: unknown signal type '%.40s' (expected typing_indicator)", p->signal_type->u.s);
    if (!(obj = need(body, "typing_indicator", "object", JV_OBJECT, err))) return 0;
    if (!(p->object_id = need(obj, "typing_indicator object", "id", JV_STRING, err))) return 0;
    if (!is_object_id(p->object_id, "layer:///conversations/") && !is_object_id(p->object_id, "layer:///channels/"))
        return bad(err, "typing_indicator: object id '%.60s' is not a conversation id", p->object_id->u.s);
    p->object = obj;
    if (!(data = need(body, "typing_indicator", "data", JV_OBJECT, err))) return 0;
    p->data = data;
    if (!(p->action = need(data, "typing_indicator data", "action", JV_STRING, err))) return 0;
    if (!str_is(p->action, "started") && !str_is(p->action, "paused") && !str_is(p->action, "finished"))
        return bad(err, "typing_indicator: unknown action '%.40s' (expected started, paused or finished)",
                   p->action->u.s);
    p->sender = optional(data, "typing_indicator data", "sender", JV_OBJECT, err, &ok);
    return ok;
}

static int decode_operation(const jv *body, pkt *p, pkt_error *err)
{
    const jv *pos, *obj;
    if (!(p->method = need(body, "operation body", "method", JV_STRING, err))) return 0;
    if (!str_is(p->method, "Conversation.mark_all_read"))
        return bad(err, "operation body: unknown method '%.60s' (expected Conversation.mark_all_read)", p->method->u.s);
    if (!(obj = need(body, "Conversation.mark_all_read", "object", JV_OBJECT, err))) return 0;
    if (!(p->object_id = need(obj, "Conversation.mark_all_read object", "id", JV_STRING, err))) return 0;
    if (!is_object_id(p->object_id, "layer:///conversations/"))
        return bad(err, "Conversation.mark_all_read: object id '%.60s' is not a conversation id", p->object_id->u.s);
    p->object = obj;
    if (!(p->data = need(body, "Conversation.mark_all_read", "data", JV_OBJECT, err))) return 0;
    if (!(pos = need(p->data, "Conversation.mark_all_read data", "position", JV_INT, err))) return 0;
    p->position = jv_to_double(pos);
    p->identity = field(p->data, "identity");
    if (!p->identity || (p->identity->type != JV_OBJECT && p->identity->type != JV_STRING))
        return bad(err, "Conversation.mark_all_read data: field 'identity' must be an object or an id string");
    return 1;
}

static int decode_request(const jv *body, pkt *p, pkt_error *err)
{
    int ok;
    if (!(p->method = need(body, "request body", "method", JV_STRING, err))) return 0;
    p->request_id = field(body, "request_id");
    if (!p->request_id || (p->request_id->type != JV_STRING && !jv_is_number(p->request_id)))
        return bad(err, "request body: field 'request_id' must be a string");
    p->object_id = optional(body, "request body", "object_id", JV_STRING, err, &ok);
    if (!ok) return 0;
    p->data = field(body, "data");
    return 1;
}

static int decode(jv_doc *scratch, const char *text, size_t len, const pkt_limits *limits, pkt *out, pkt_error *err)
{
    jv_limits jl;
    jv_error jerr;
    const jv *root, *type, *counter, *body;
    int ok;
    memset(out, 0, sizeof *out);
    if (err) err->message[0] = '\0', err->out_of_memory = 0;
    jl.max_bytes = limits && limits->max_bytes ? limits->max_bytes : PKT_DEFAULT_MAX_BYTES;
    jl.max_depth = limits && limits->max_depth ? limits->max_depth : PKT_DEFAULT_MAX_DEPTH;
    if (len > jl.max_bytes)
        return bad(err, "frame of %lu bytes exceeds the limit of %lu bytes", (unsigned long)len,
                   (unsigned long)jl.max_bytes);
    if (scratch) {
        if (!jv_parse_reuse(scratch, text, len, &jl, &jerr)) return bad_json(err, &jerr);
        root = jv_root(scratch);
    } else {
        out->doc = jv_parse(text, len, &jl, &jerr);
        if (!out->doc) return bad_json(err, &jerr);
        root = jv_root(out->doc);
    }
    if (root->type != JV_OBJECT) {
        bad(err, "packet must be a JSON object, got %s", jv_type_name(root->type));
        goto fail;
    }
    if (!(type = need(root, "packet", "type", JV_STRING, err))) goto fail;
    if (str_is(type, "change"))
        out->type = PKT_CHANGE;
    else if (str_is(type, "response"))
        out->type = PKT_RESPONSE;
    else if (str_is(type, "signal"))
        out->type = PKT_SIGNAL;
    else if (str_is(type, "operation"))
        out->type = PKT_OPERATION;
    else if (str_is(type, "request"))
        out->type = PKT_REQUEST;
    else {
        bad(err, "unknown packet type '%.40s' (expected change, response, signal, operation or request)", type->u.s);
        goto fail;
    }
    out->counter = -1;
    if (out->type != PKT_REQUEST) {
        if (!(counter = need(root, "packet", "counter", JV_INT, err))) goto fail;
        if (counter->type != JV_INT || counter->u.i < 0) {
            bad(err, "packet: field 'counter' must be a non-negative integer");
            goto fail;
        }
        out->counter = counter->u.i;
        if (!(out->timestamp = need(root, "packet", "timestamp", JV_STRING, err))) goto fail;
        if (!pkt_parse_time(out->timestamp->u.s, out->timestamp->len, &out->time_ms)) {
            bad(err, "packet: field 'timestamp' is not an ISO-8601 time: '%.40s'", out->timestamp->u.s);
            goto fail;
        }
    }
    if (!(body = need(root, "packet", "body", JV_OBJECT, err))) goto fail;
    out->body = body;
    switch (out->type) {
    case PKT_CHANGE: ok = decode_change(body, out, err); break;
    case PKT_RESPONSE: ok = decode_response(body, out, err); break;
    case PKT_SIGNAL: ok = decode_signal(body, out, err); break;
    case PKT_OPERATION: ok = decode_operation(body, out, err); break;
    default: ok = decode_request(body, out, err); break;
    }
    if (ok) return 1;
fail:
    pkt_free(out);
    return 0;
}

int pkt_decode(const char *text, size_t len, const pkt_limits *limits, pkt *out, pkt_error *err)
{
    return decode(NULL, text, len, limits, out, err);
}

int pkt_decode_reuse(jv_doc *scratch, const char *text, size_t len, const pkt_limits *limits, pkt *out, pkt_error *err)
{
    return decode(scratch, text, len, limits, out, err);
}

void pkt_free(pkt *p)
{
    jv_doc_free(p->doc);
    memset(p, 0, sizeof *p);
}
