/*
 * fuzz_packet.c - libFuzzer target for pkt_decode on arbitrary frames; on
 * success the body must round-trip and the typed fields must be consistent.
 */
#include "fuzz_common.h"
#include "packet.h"

#include <stdint.h>

static int is_str(const jv *v) { return v && v->type == JV_STRING; }

static void check_fields(const pkt *p)
{
    if (!p->doc || !p->body || p->body->type != JV_OBJECT) fz_fail("decoded packet without a doc or an object body", NULL, 0);
    if (p->type < PKT_CHANGE || p->type > PKT_REQUEST) fz_fail("packet type out of range", NULL, 0);
    if (p->type == PKT_REQUEST) {
        if (p->counter != -1 || p->timestamp) fz_fail("request with a counter or timestamp", NULL, 0);
        if (!is_str(p->method) || !p->request_id) fz_fail("request without method or request_id", NULL, 0);
        return;
    }
    if (p->counter < 0 || !is_str(p->timestamp)) fz_fail("packet without counter or timestamp", NULL, 0);
    switch (p->type) {
    case PKT_CHANGE:
        if (p->change_op < CHG_CREATE || p->change_op > CHG_PATCH || !is_str(p->change_op_name))
            fz_fail("change with a bad operation", NULL, 0);
        if (p->object_type < OBJ_CONVERSATION || p->object_type > OBJ_IDENTITY || !pkt_object_type_name(p->object_type))
            fz_fail("change with a bad object type", NULL, 0);
        if (!p->object || !is_str(p->object_id)) fz_fail("change without object id", NULL, 0);
        if (p->change_op == CHG_CREATE && (!p->data || p->data->type != JV_OBJECT)) fz_fail("create without data", NULL, 0);
        if (p->change_op == CHG_PATCH && (!p->data || p->data->type != JV_ARRAY)) fz_fail("patch without operations", NULL, 0);
        break;
    case PKT_RESPONSE:
        if (!p->request_id) fz_fail("response without request_id", NULL, 0);
        if (!p->success && (!p->error || p->error->type != JV_OBJECT)) fz_fail("failed response without error", NULL, 0);
        break;
    case PKT_SIGNAL:
        if (!is_str(p->signal_type) || !is_str(p->action) || !is_str(p->object_id)) fz_fail("incomplete signal", NULL, 0);
        break;
    case PKT_OPERATION:
        if (!is_str(p->method) || !is_str(p->object_id) || !p->identity) fz_fail("incomplete operation", NULL, 0);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkt p;
    pkt_error err;
    /* A tight depth limit too, so that rejection path gets exercised. */
    pkt_limits tight = {size ? size : 1, 4};
    if (pkt_decode((const char *)data, size, NULL, &p, &err)) {
        check_fields(&p);
        fz_roundtrip(jv_root(p.doc), PKT_DEFAULT_MAX_DEPTH);
        fz_roundtrip(p.body, PKT_DEFAULT_MAX_DEPTH);
        if (p.data) fz_roundtrip(p.data, PKT_DEFAULT_MAX_DEPTH);
        pkt_free(&p);
        if (p.doc) fz_fail("pkt_free left a doc behind", NULL, 0);
    } else {
        if (p.doc) fz_fail("failed decode left a doc behind", NULL, 0);
        if (!err.message[0]) fz_fail("failed decode without a message", NULL, 0);
    }
    if (pkt_decode((const char *)data, size, &tight, &p, &err)) pkt_free(&p);
    else if (!err.message[0]) fz_fail("failed decode without a message", NULL, 0);
    return 0;
}
