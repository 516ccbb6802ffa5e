/*
 * fuzz_patch.c - libFuzzer target for lp_apply. Input: object JSON, NUL,
 * operations JSON, optionally NUL and a JSON map of ids to objects (the
 * lookup). Without any NUL the whole input is the operations on {}.
 * Every input runs under five option sets; on success the input object must
 * be unchanged and the result must round-trip, compact and match its changes.
 * A sixth run edits in place and must agree with the copying one.
 */
#include "fuzz_common.h"
#include "patch.h"

#include <stdint.h>

static const jv *lookup_in_map(void *ud, const char *id, size_t len) { return jv_getn((const jv *)ud, id, len); }

static jv_doc *parse_part(const uint8_t *p, size_t n)
{
    jv_error err;
    return jv_parse((const char *)p, n, NULL, &err);
}

static void check_success(const jv *object, const jv *before, const lp_result *res, const lp_options *opt)
{
    size_t i;
    if (!jv_deep_equal(object, before)) fz_fail("lp_apply modified its input object", NULL, 0);
    if (res->root.type != JV_OBJECT) fz_fail("patched value is not an object", NULL, 0);
    /* Paths may nest up to LP_MAX_DEPTH (256) below the root. */
    fz_roundtrip(&res->root, 1024);
    fz_compact(&res->root);
    if (opt && !opt->track_changes && res->n_changes) fz_fail("changes reported without track_changes", NULL, 0);
    for (i = 0; i < res->n_changes; i++) {
        const lp_change *ch = &res->changes[i];
        const jv *now = jv_getn(&res->root, ch->property, ch->property_len);
        const jv *was = jv_getn(before, ch->property, ch->property_len);
        if (!ch->paths || ch->paths->type != JV_ARRAY || !ch->paths->len) fz_fail("change without paths", NULL, 0);
        if (!now != !ch->new_value || (now && !jv_deep_equal(now, ch->new_value)))
            fz_fail("change.new_value is not the result's property", ch->property, ch->property_len);
        if (!was != !ch->old_value || (was && !jv_deep_equal(was, ch->old_value)))
            fz_fail("change.old_value is not the input's property", ch->property, ch->property_len);
    }
    if (res->n_registered && !(opt && opt->register_values)) fz_fail("values registered without register_values", NULL, 0);
    for (i = 0; i < res->n_registered; i++) {
        if (!res->registered[i].value) fz_fail("registration without a value", NULL, 0);
        fz_roundtrip(res->registered[i].value, 1024);
    }
}

static void run(const uint8_t *obj_text, size_t obj_len, const jv *ops, const lp_options *opt)
{
    jv_doc *doc = parse_part(obj_text, obj_len), *copy;
    jv object;
    lp_result res;
    lp_error err;
    if (!doc) return;
    object = *jv_root(doc);
    copy = jv_doc_compact(doc);
    if (!copy) abort();
    if (lp_apply(doc, &object, ops, opt, &res, &err)) {
        check_success(&object, jv_root(copy), &res, opt);
        lp_result_free(&res);
    } else {
        if (!jv_deep_equal(&object, jv_root(copy))) fz_fail("failed lp_apply modified its input object", NULL, 0);
        if (!err.message[0] || err.op_index < -1 || (ops->type == JV_ARRAY && err.op_index >= (long)ops->len))
            fz_fail("bad lp_error", err.message, strlen(err.message));
        if (res.changes || res.registered || res.n_changes || res.n_registered)
            fz_fail("failed lp_apply returned a result", NULL, 0);
    }
    jv_doc_free(copy);
    jv_doc_free(doc);
}

/* opt->in_place edits the input: it must reach the same result as a copying
 * run and, when the patch fails, leave the input as it was. */
static void run_in_place(const uint8_t *obj_text, size_t obj_len, const jv *ops, const lp_options *opt)
{
    jv_doc *doc = parse_part(obj_text, obj_len), *mine, *before;
    jv object, mine_object;
    lp_options in_place = *opt;
    lp_result res, mine_res;
    lp_error err, mine_err;
    int ok, mine_ok;
    if (!doc) return;
    if (!(mine = jv_doc_compact(doc)) || !(before = jv_doc_compact(doc))) abort();
    object = *jv_root(doc);
    mine_object = *jv_root(mine);
    in_place.in_place = 1;
    ok = lp_apply(doc, &object, ops, opt, &res, &err);
    mine_ok = lp_apply(mine, &mine_object, ops, &in_place, &mine_res, &mine_err);
    if (ok != mine_ok) fz_fail("in_place and copying patches disagree on success", mine_err.message, strlen(mine_err.message));
    if (ok) {
        if (!jv_deep_equal(&res.root, &mine_res.root)) fz_fail("in_place patch reached another result", NULL, 0);
        fz_roundtrip(&mine_res.root, 1024);
        lp_result_free(&res);
        lp_result_free(&mine_res);
    } else if (!jv_deep_equal(&mine_object, jv_root(before))) {
        fz_fail("failed in_place patch left its input changed", mine_err.message, strlen(mine_err.message));
    }
    jv_doc_free(before);
    jv_doc_free(mine);
    jv_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty_obj[] = "{}";
    const uint8_t *nul = memchr(data, 0, size), *obj = empty_obj, *ops_text = data, *map_text = NULL;
    size_t obj_len = 2, ops_len = size, map_len = 0;
    jv_doc *ops_doc, *map_doc = NULL;
    jv empty_map;
    const jv *map;
    lp_options opt;
    if (nul) {
        const uint8_t *rest = nul + 1, *nul2 = memchr(rest, 0, size - (size_t)(rest - data));
        obj = data;
        obj_len = (size_t)(nul - data);
        ops_text = rest;
        ops_len = nul2 ? (size_t)(nul2 - rest) : size - (size_t)(rest - data);
        if (nul2) {
            map_text = nul2 + 1;
            map_len = size - (size_t)(map_text - data);
        }
    }
    ops_doc = parse_part(ops_text, ops_len);
    if (!ops_doc) return 0;
    if (map_text) map_doc = parse_part(map_text, map_len);
    memset(&empty_map, 0, sizeof empty_map);
    empty_map.type = JV_OBJECT;
    map = map_doc && jv_root(map_doc)->type == JV_OBJECT ? jv_root(map_doc) : &empty_map;

    run(obj, obj_len, jv_root(ops_doc), NULL);

    memset(&opt, 0, sizeof opt);
    opt.track_changes = 1;
    run(obj, obj_len, jv_root(ops_doc), &opt); /* ids fail without a lookup */

    opt.lookup = lookup_in_map;
    opt.lookup_ud = (void *)map;
    run(obj, obj_len, jv_root(ops_doc), &opt);

    opt.register_values = 1;
    opt.return_ids = 1;
    run(obj, obj_len, jv_root(ops_doc), &opt);

    opt.register_values = 0;
    opt.track_changes = 0;
    run(obj, obj_len, jv_root(ops_doc), &opt);
    run_in_place(obj, obj_len, jv_root(ops_doc), &opt);

    jv_doc_free(map_doc);
    jv_doc_free(ops_doc);
    return 0;
}
