/* test_core_oom.c - the core's error structs tell running out of memory
 * from bad input by a flag, not by their text: jv_parse, pkt_decode,
 * lp_apply and lc_apply, each run over every allocation failing in turn,
 * fail with out_of_memory set (or succeed), and bad input never sets it.
 * Allocation failures are injected by failalloc.h. */
#include "cache.h"
#include "failalloc.h"
#include "json.h"
#include "packet.h"
#include "patch.h"
#include "tap.h"

#include <string.h>

static const char conv_create[] =
    "{\"type\":\"change\",\"counter\":1,\"timestamp\":\"2026-01-01T00:00:01.000Z\",\"body\":{\"operation\":"
    "\"create\",\"object\":{\"type\":\"Conversation\",\"id\":\"layer:///conversations/c1\"},\"data\":{\"id\":"
    "\"layer:///conversations/c1\",\"participants\":[\"a\",\"b\"],\"metadata\":{\"title\":\"\\u00e9t\\u00e9\"}}}}";
static const char conv_patch[] =
    "{\"type\":\"change\",\"counter\":2,\"timestamp\":\"2026-01-01T00:00:02.000Z\",\"body\":{\"operation\":"
    "\"patch\",\"object\":{\"type\":\"Conversation\",\"id\":\"layer:///conversations/c1\"},\"data\":["
    "{\"operation\":\"set\",\"property\":\"metadata.title\",\"value\":\"a new title, longer than before\"},"
    "{\"operation\":\"add\",\"property\":\"participants\",\"value\":\"c\"}]}}";

/* Counts runs: failed with the flag, failed without it (wrong), succeeded. */
typedef struct {
    int oom, unflagged, ok, tried, reached_end;
} runs;

static void count(runs *r, int ok, int flagged, const char *what, long n, const char *msg)
{
    r->tried++;
    if (ok) r->ok++;
    else if (flagged) r->oom++;
    else {
        r->unflagged++;
        DIAG("%s, allocation %ld failing: failed without the flag: %s", what, n, msg);
    }
}

static void report(const char *what, const runs *r)
{
    OK(r->unflagged == 0 && r->reached_end && r->ok > 0,
       "%s: %d failing allocations each fail it with out_of_memory set (%d did) or not at all", what, r->tried,
       r->oom);
    OK(r->oom > 0 || injected == 0, "%s: running out of memory was seen at all (%d runs)", what, r->oom);
}

static void json_runs(void)
{
    runs r = {0, 0, 0, 0, 0};
    long n;
    jv_error err;
    for (n = 0; n < 100 && !r.reached_end; n++) {
        jv_doc *d;
        fail_at(n);
        d = jv_parse(conv_create, sizeof conv_create - 1, NULL, &err);
        r.reached_end = allocs_left >= 0;
        fail_at(-1);
        count(&r, d != NULL, err.out_of_memory, "jv_parse", n, err.message);
        jv_doc_free(d);
    }
    report("jv_parse", &r);
    OK(!jv_parse("{\"a\":", 5, NULL, &err) && !err.out_of_memory, "jv_parse: truncated text is not out of memory (%s)",
       err.message);
}

static void packet_runs(void)
{
    runs r = {0, 0, 0, 0, 0};
    long n;
    pkt_error err;
    pkt p;
    for (n = 0; n < 100 && !r.reached_end; n++) {
        int ok;
        fail_at(n);
        ok = pkt_decode(conv_create, sizeof conv_create - 1, NULL, &p, &err);
        r.reached_end = allocs_left >= 0;
        fail_at(-1);
        count(&r, ok, err.out_of_memory, "pkt_decode", n, err.message);
        if (ok) pkt_free(&p);
    }
    report("pkt_decode", &r);
    OK(!pkt_decode("{\"type\":1}", 10, NULL, &p, &err) && !err.out_of_memory,
       "pkt_decode: a bad packet is not out of memory (%s)", err.message);
}

static void patch_runs(void)
{
    runs r = {0, 0, 0, 0, 0};
    long n;
    lp_error err;
    static const char object[] = "{\"metadata\":{\"title\":\"t\"},\"participants\":[\"a\"]}";
    static const char ops[] = "[{\"operation\":\"set\",\"property\":\"metadata.title\",\"value\":\"u\"},"
                              "{\"operation\":\"add\",\"property\":\"participants\",\"value\":\"b\"}]";
    static const char bad_ops[] = "[{\"operation\":\"frobnicate\",\"property\":\"x\"}]";
    jv_doc *od = jv_parse(object, sizeof object - 1, NULL, NULL);
    jv_doc *pd = jv_parse(ops, sizeof ops - 1, NULL, NULL);
    jv_doc *bd = jv_parse(bad_ops, sizeof bad_ops - 1, NULL, NULL);
    lp_options opt;
    lp_result res;
    memset(&opt, 0, sizeof opt);
    opt.track_changes = 1;
    for (n = 0; n < 100 && !r.reached_end; n++) {
        int ok;
        jv_doc *work = jv_doc_new(0);
        fail_at(n);
        ok = work && lp_apply(work, jv_root(od), jv_root(pd), &opt, &res, &err);
        r.reached_end = allocs_left >= 0;
        fail_at(-1);
        if (work) count(&r, ok, err.out_of_memory, "lp_apply", n, err.message);
        if (ok) lp_result_free(&res);
        jv_doc_free(work);
    }
    report("lp_apply", &r);
    {
        jv_doc *work = jv_doc_new(0);
        OK(!lp_apply(work, jv_root(od), jv_root(bd), &opt, &res, &err) && !err.out_of_memory,
           "lp_apply: an unknown operation is not out of memory (%s)", err.message);
        jv_doc_free(work);
    }
    jv_doc_free(od);
    jv_doc_free(pd);
    jv_doc_free(bd);
}

static void cache_runs(void)
{
    runs r = {0, 0, 0, 0, 0};
    long n;
    lc_error err;
    pkt create, patch;
    lc_event ev;
    pkt_decode(conv_create, sizeof conv_create - 1, NULL, &create, NULL);
    pkt_decode(conv_patch, sizeof conv_patch - 1, NULL, &patch, NULL);
    for (n = 0; n < 200 && !r.reached_end; n++) {
        int ok;
        lc_cache *c = lc_new(NULL);
        if (!c || !lc_apply(c, &create, 0, &ev, &err)) {
            lc_free(c);
            break;
        }
        fail_at(n);
        ok = lc_apply(c, &patch, 1, &ev, &err);
        r.reached_end = allocs_left >= 0;
        fail_at(-1);
        count(&r, ok, err.out_of_memory, "lc_apply", n, err.message);
        if (ok) lc_release(ev.hold);
        lc_free(c);
    }
    report("lc_apply, a tracked patch", &r);
    {
        lc_cache *c = lc_new(NULL);
        pkt_error perr;
        pkt bad;
        static const char bad_patch[] =
            "{\"type\":\"change\",\"counter\":3,\"timestamp\":\"2026-01-01T00:00:03.000Z\",\"body\":{\"operation\":"
            "\"patch\",\"object\":{\"type\":\"Conversation\",\"id\":\"layer:///conversations/c1\"},\"data\":["
            "{\"operation\":\"remove\",\"property\":\"metadata.title.x\",\"value\":1}]}}";
        int decoded = pkt_decode(bad_patch, sizeof bad_patch - 1, NULL, &bad, &perr);
        OK(decoded && lc_apply(c, &create, 0, &ev, &err) && !lc_apply(c, &bad, 0, &ev, &err) && !err.out_of_memory,
           "lc_apply: a patch that cannot apply is not out of memory (%s)", decoded ? err.message : perr.message);
        if (decoded) pkt_free(&bad);
        lc_free(c);
    }
    pkt_free(&create);
    pkt_free(&patch);
}

int main(void)
{
    long before;
    tap_watchdog(60);
    printf("# start\n"); /* stdout's buffer is allocated now, not inside a counted run */
    before = live;
    json_runs();
    OK(live == before, "jv_parse: nothing leaked on any failing path (%ld blocks)", live - before);
    before = live;
    packet_runs();
    OK(live == before, "pkt_decode: nothing leaked on any failing path (%ld blocks)", live - before);
    before = live;
    patch_runs();
    OK(live == before, "lp_apply: nothing leaked on any failing path (%ld blocks)", live - before);
    before = live;
    cache_runs();
    OK(live == before, "lc_apply: nothing leaked on any failing path (%ld blocks)", live - before);
    return tap_done();
}
