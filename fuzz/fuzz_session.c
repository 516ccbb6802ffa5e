/*
 * fuzz_session.c - libFuzzer target for the client protocol engine: the input
 * is a script of frames, socket events, HTTP answers and clock jumps fed to
 * one session. Nothing may crash or leak, events must stay well formed, and
 * the cache's counts must agree with what it reports.
 *
 * Script lines: "F<frame>" a WebSocket frame, "O" socket opened, "C" socket
 * closed, "H<status> <body>" answer the oldest HTTP request, "T<ms>" advance
 * the clock, "R" a socket request, anything else is skipped.
 */
#include "fuzz_common.h"
#include "session.h"

#include <stdint.h>

static void drain(ls_session *s)
{
    ls_event *ev;
    char *f;
    size_t n;
    while ((ev = ls_next_event(s)) != NULL) {
        if (ev->type < LS_EV_CHALLENGE || ev->type > LS_EV_LOG) fz_fail("event type out of range", NULL, 0);
        if ((ev->type == LS_EV_CREATE || ev->type == LS_EV_UPDATE) && !ev->ref) fz_fail("object event without its object", NULL, 0);
        if (ev->ref && lc_ref_value(ev->ref)->type != JV_OBJECT) fz_fail("event object is not an object", NULL, 0);
        if (ev->id && strlen(ev->id) != ev->id_len) fz_fail("event id length", ev->id, ev->id_len);
        ls_event_free(s, ev);
    }
    while ((f = ls_take_frame(s, &n)) != NULL) {
        jv_doc *d = jv_parse(f, n, NULL, NULL);
        if (!d) fz_fail("the engine sent a frame that is not JSON", f, n);
        jv_doc_free(d);
        free(f);
    }
}

/* Digits at p (at most len bytes): the input is not NUL-terminated. */
static long number(const char *p, size_t len)
{
    long v = 0;
    size_t i;
    for (i = 0; i < len && i < 9 && p[i] >= '0' && p[i] <= '9'; i++) v = v * 10 + (p[i] - '0');
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ls_config cfg;
    ls_session *s;
    int64_t now = 1000;
    const char *p = (const char *)data, *end = p + size;
    ls_http_request *pending[64];
    size_t npending = 0, i;
    ls_config_defaults(&cfg);
    cfg.random_seed = 7;
    cfg.cache_limits.max_messages_per_conversation = 8;
    cfg.cache_limits.max_bytes = 1 << 20;
    s = ls_new(&cfg);
    if (!s) return 0;
    ls_start(s, now, "token");
    ls_ws_opened(s, now);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        ls_http_request *h;
        if (len) {
            switch (p[0]) {
            case 'F': ls_ws_frame(s, now, p + 1, len - 1); break;
            case 'O': ls_ws_opened(s, now); break;
            case 'C': ls_ws_closed(s, now, "fuzz"); break;
            case 'T': now += number(p + 1, len - 1) & 0xFFFFF; ls_tick(s, now); break;
            case 'R': ls_ws_request(s, now, "Counter.read", NULL, NULL); break;
            case 'H':
                if (npending) {
                    const char *sp = memchr(p, ' ', len);
                    int status = (int)(number(p + 1, len - 1) % 600);
                    h = pending[0];
                    memmove(pending, pending + 1, --npending * sizeof *pending);
                    ls_http_response(s, now, h->id, status, "1", -1, sp ? sp + 1 : NULL,
                                     sp ? len - (size_t)(sp + 1 - p) : 0);
                    ls_http_request_free(h);
                }
                break;
            default: break;
            }
        }
        while (npending < 64 && (h = ls_take_http(s)) != NULL) pending[npending++] = h;
        drain(s);
        p += len + (nl ? 1 : 0);
    }
    for (i = 0; i < npending; i++) ls_http_request_free(pending[i]);
    {
        lc_stats st;
        lc_stats_get(ls_cache(s), &st);
        if (st.conversations + st.messages + st.identities + st.announcements != st.objects)
            fz_fail("cache counts disagree", NULL, 0);
    }
    ls_free(s);
    return 0;
}
