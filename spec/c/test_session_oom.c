/* test_session_oom.c - the session engine under allocation failure: an
 * answered request still resolves (one LS_EV_RESPONSE per request id), so a
 * coroutine waiting on it cannot hang because an event could not be made;
 * an object, typing or login event is either delivered whole or replaced by
 * an LS_ERROR_OUT_OF_MEMORY error, never lost silently; a login step that
 * could not be made is retried, not left hanging; a lifecycle event
 * (authenticated, connected, disconnected) is delivered late, never lost.
 * Allocation failures are injected by failalloc.h. */
#include "session.h"
#include "failalloc.h"
#include "tap.h"

#include <string.h>


/* Drains the queue; counts the responses to id. */
static int last_success; /* of the last response counted */

static int responses_to(ls_session *s, uint64_t id)
{
    ls_event *ev;
    int n = 0;
    while ((ev = ls_next_event(s))) {
        if (ev->type == LS_EV_RESPONSE && ev->request_id == id) {
            n++;
            last_success = ev->success;
        }
        ls_event_free(s, ev);
    }
    return n;
}

static ls_session *open_session(void)
{
    ls_config cfg;
    ls_session *s;
    ls_config_defaults(&cfg);
    s = ls_new(&cfg);
    if (!s) return NULL;
    ls_start(s, 0, "token");
    ls_ws_opened(s, 0);
    responses_to(s, 0);
    return s;
}

/* A WebSocket answer arrives while the n-th allocation fails. */
static int ws_answer_resolves(long n, int *reached_end)
{
    ls_session *s = open_session();
    uint64_t id;
    char frame[200];
    int got;
    size_t len;
    char *f;
    if (!s) return 0;
    id = ls_ws_request(s, 0, "Conversation.create", NULL, NULL);
    while ((f = ls_take_frame(s, &len))) free(f);
    snprintf(frame, sizeof frame,
             "{\"type\":\"response\",\"counter\":0,\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"body\":{\"request_id\":\"%llu\",\"success\":true,"
             "\"data\":{\"id\":\"layer:///conversations/c1\",\"participants\":[]}}}",
             (unsigned long long)id);
    fail_at(n);
    ls_ws_frame(s, 1, frame, strlen(frame));
    *reached_end = allocs_left >= 0; /* the failure point was never reached */
    fail_at(-1);
    got = responses_to(s, id);
    if (!got) { /* the frame itself could not be read: the timeout answers */
        ls_tick(s, 1 + 60 * 1000);
        got = responses_to(s, id);
    }
    ls_free(s);
    return got;
}

/* A REST answer arrives while the n-th allocation fails. */
static int rest_answer_resolves(long n, int *reached_end)
{
    ls_session *s = open_session();
    uint64_t id;
    ls_http_request *h;
    static const char body[] = "{\"id\":\"layer:///conversations/c1\",\"participants\":[]}";
    int got;
    if (!s) return 0;
    id = ls_rest_request(s, 0, "GET", "/conversations/c1", NULL, 0, NULL);
    while ((h = ls_take_http(s))) ls_http_request_free(h);
    fail_at(n);
    ls_http_response(s, 1, id, 200, NULL, -1, body, sizeof body - 1);
    *reached_end = allocs_left >= 0;
    fail_at(-1);
    got = responses_to(s, id);
    ls_free(s);
    return got;
}

#define TS "\"timestamp\":\"2026-01-01T00:00:01.000Z\""
#define CONV "layer:///conversations/c1"
static const char *const conv_create =
    "{\"type\":\"change\",\"counter\":%d," TS ",\"body\":{\"operation\":\"create\",\"object\":{\"type\":"
    "\"Conversation\",\"id\":\"" CONV "\"},\"data\":{\"id\":\"" CONV "\",\"participants\":[],"
    "\"metadata\":{\"title\":\"t\"}}}}";

/* What one packet, fed while an allocation fails, left in the queue. */
typedef struct {
    int events;     /* of the expected type, made whole */
    int broken;     /* of the expected type with a field missing */
    int oom_errors; /* LS_EV_ERROR, LS_ERROR_OUT_OF_MEMORY, with its text */
    int other_errors;
} outcome;

static int whole(const ls_event *ev, int want_changes)
{
    switch (ev->type) {
    case LS_EV_CREATE: return ev->id && ev->ref && ev->object_type == OBJ_CONVERSATION;
    case LS_EV_UPDATE: return ev->id && ev->ref && (!want_changes || (ev->changes && ev->n_changes == 1));
    case LS_EV_DELETE: return ev->id && ev->ref && ev->text && !strcmp(ev->text, "all_participants");
    case LS_EV_TYPING: return ev->id && ev->value;
    case LS_EV_MARK_READ: return ev->id != NULL;
    case LS_EV_CHALLENGE: return ev->text && !strcmp(ev->text, "n1");
    default: return 0;
    }
}

static outcome drain(ls_session *s, ls_event_type want)
{
    outcome o = {0, 0, 0, 0};
    ls_event *ev;
    while ((ev = ls_next_event(s))) {
        if (ev->type == want) {
            if (whole(ev, ls_change_lists(s))) o.events++;
            else o.broken++;
        } else if (ev->type == LS_EV_ERROR) {
            if (ev->number == LS_ERROR_OUT_OF_MEMORY && ev->text && strstr(ev->text, "out of memory")) o.oom_errors++;
            else o.other_errors++;
        }
        ls_event_free(s, ev);
    }
    return o;
}

static void feed(ls_session *s, int64_t now, const char *frame, int counter)
{
    char buf[1024];
    snprintf(buf, sizeof buf, frame, counter);
    ls_ws_frame(s, now, buf, strlen(buf));
}

/* setup[] (fed normally), then `packet` while the n-th allocation fails. */
static long leaked; /* blocks left over by runs, summed */

static outcome object_event(long n, const char *const *setup, const char *packet, ls_event_type want, int lists,
                            int *reached_end)
{
    long before = live;
    ls_session *s = open_session();
    outcome o = {0, 0, 0, 0};
    int i = 0;
    if (!s) return o;
    ls_set_change_lists(s, lists);
    for (; setup && setup[i]; i++) feed(s, 1, setup[i], i);
    drain(s, want);
    fail_at(n);
    feed(s, 2, packet, i);
    *reached_end = allocs_left >= 0;
    fail_at(-1);
    o = drain(s, want);
    ls_free(s);
    leaked += live - before;
    return o;
}

/* Runs one packet over every failing allocation; 1 if each run delivered the
 * event whole or reported running out of memory as such, and never a broken
 * event or an error that blames something else. */
static int never_lost(const char *what, const char *const *setup, const char *packet, ls_event_type want, int lists)
{
    long n;
    int end = 0, ok = 1, tried = 0, reported = 0;
    for (n = 0; !end && n < 300; n++, tried++) {
        outcome o = object_event(n, setup, packet, want, lists, &end);
        if (o.broken || o.other_errors || o.events + o.oom_errors == 0 || o.events > 1) {
            DIAG("%s, allocation %ld failing: %d whole, %d broken, %d out-of-memory errors, %d other errors", what, n,
                 o.events, o.broken, o.oom_errors, o.other_errors);
            ok = 0;
        }
        if (!o.events && !o.other_errors && o.oom_errors) reported++;
    }
    OK(ok && end, "%s: delivered whole or reported, whichever of %d allocations fails", what, tried);
    OK(leaked == 0, "%s: nothing leaked on any of those paths (%ld blocks)", what, leaked);
    leaked = 0;
    /* valgrind replaces malloc, so nothing fails there and nothing needs reporting */
    OK(reported > 0 || !injected, "%s: %d of them were reported as out_of_memory errors", what, reported);
    return ok;
}

/* POST /nonces is answered while the n-th allocation fails: a challenge
 * comes, or the failure is reported and a new login starts after the backoff. */
static int login_continues(long n, int *reached_end)
{
    ls_config cfg;
    ls_session *s;
    ls_http_request *h;
    static const char body[] = "{\"nonce\":\"n1\"}";
    outcome o;
    int ok = 0, tick;
    long before = live;
    ls_config_defaults(&cfg);
    cfg.backoff_jitter = 0;
    if (!(s = ls_new(&cfg))) return 0;
    ls_start(s, 0, NULL);
    h = ls_take_http(s);
    if (!h) goto out;
    fail_at(n);
    ls_http_response(s, 1, h->id, 200, NULL, -1, body, sizeof body - 1);
    *reached_end = allocs_left >= 0;
    fail_at(-1);
    ls_http_request_free(h);
    o = drain(s, LS_EV_CHALLENGE);
    if (o.broken) goto out;
    if (o.events == 1) {
        ok = 1;
        goto out;
    }
    if (!o.oom_errors) goto out;
    for (tick = 1; tick <= 600 && !ok; tick++) { /* ten minutes: past the longest first backoff */
        ls_tick(s, 1 + tick * 1000);
        while ((h = ls_take_http(s))) {
            if (!strcmp(h->path, "/nonces")) ok = 1;
            ls_http_request_free(h);
        }
    }
out:
    ls_free(s);
    leaked += live - before;
    return ok;
}

/* Counts the events of one type in the queue, draining it. */
static int count_events(ls_session *s, ls_event_type type, const char **text)
{
    ls_event *ev;
    int n = 0;
    while ((ev = ls_next_event(s))) {
        if (ev->type == type) {
            n++;
            if (text && *text && (!ev->text || strcmp(ev->text, *text))) *text = NULL; /* wrong text */
        }
        ls_event_free(s, ev);
    }
    return n;
}

/* One lifecycle step happens while the n-th allocation fails; afterwards,
 * its event must arrive once, in order: at once or at a later tick. */
static int lifecycle_delivered(long n, int which, int *reached_end)
{
    ls_config cfg;
    ls_session *s;
    long before = live;
    int got = 0, tick, order_ok = 1;
    const char *want_text = which == 0 ? "tok" : which == 2 ? "gone" : NULL;
    const char *text = want_text;
    ls_event_type type = which == 0 ? LS_EV_AUTHENTICATED : which == 1 ? LS_EV_CONNECTED : LS_EV_DISCONNECTED;
    ls_config_defaults(&cfg);
    if (!(s = ls_new(&cfg))) return 0;
    if (which > 0) {
        ls_start(s, 0, "tok");
        ls_ws_opened(s, 0);
        count_events(s, type, NULL);
    }
    fail_at(n);
    if (which == 0) ls_start(s, 0, "tok");
    else if (which == 1) ls_ws_opened(s, 0);
    else ls_ws_closed(s, 0, "gone");
    *reached_end = allocs_left >= 0;
    fail_at(-1);
    got = count_events(s, type, &text);
    for (tick = 1; tick <= 5 && got == 0; tick++) {
        ls_tick(s, tick * 200);
        got += count_events(s, type, &text);
    }
    if (which == 0 && got == 0) { /* the token itself could not be kept: a new login, after the backoff */
        ls_http_request *h;
        int relogin = 0;
        for (tick = 1; tick <= 600 && !relogin; tick++) {
            ls_tick(s, 1 + tick * 1000);
            while ((h = ls_take_http(s))) {
                if (!strcmp(h->path, "/nonces")) relogin = 1;
                ls_http_request_free(h);
            }
        }
        ls_free(s);
        leaked += live - before;
        return relogin;
    }
    if (which == 1 && got == 1) { /* a later event comes after it, not before */
        ls_ws_closed(s, 2000, "x");
        order_ok = count_events(s, LS_EV_DISCONNECTED, NULL) == 1;
    }
    ls_free(s);
    leaked += live - before;
    return got == 1 && order_ok && text == want_text;
}

int main(void)
{
    void *(*volatile alloc)(size_t) = malloc; /* called for real, not folded away by the compiler */
    void *probe;
    fail_at(0);
    probe = alloc(8);
    fail_at(-1);
    if (probe) DIAG("allocation failures cannot be injected here (valgrind?): the runs below fail nothing");
    free(probe);
    long n;
    int end = 0, all_ws = 1, all_rest = 1, tried = 0;
    tap_watchdog(60);
    for (n = 0; !end && n < 200; n++, tried++) {
        int got = ws_answer_resolves(n, &end);
        if (got != 1) {
            DIAG("WebSocket answer, allocation %ld failing: %d responses", n, got);
            all_ws = 0;
        }
    }
    OK(all_ws, "a WebSocket answer resolves its request once, whichever of %d allocations fails", tried);
    OK(end && last_success, "the WebSocket run reached an answer with no failing allocation, a success");
    end = 0;
    tried = 0;
    for (n = 0; !end && n < 200; n++, tried++) {
        int got = rest_answer_resolves(n, &end);
        if (got != 1) {
            DIAG("REST answer, allocation %ld failing: %d responses", n, got);
            all_rest = 0;
        }
    }
    OK(all_rest, "a REST answer resolves its request once, whichever of %d allocations fails", tried);
    OK(end && last_success, "the REST run reached an answer with no failing allocation, a success");
    {
        static const char patch[] =
            "{\"type\":\"change\",\"counter\":%d," TS ",\"body\":{\"operation\":\"patch\",\"object\":{\"type\":"
            "\"Conversation\",\"id\":\"" CONV "\"},\"data\":[{\"operation\":\"set\",\"property\":"
            "\"metadata.title\",\"value\":\"u\"}]}}";
        static const char del[] =
            "{\"type\":\"change\",\"counter\":%d," TS ",\"body\":{\"operation\":\"delete\",\"object\":{\"type\":"
            "\"Conversation\",\"id\":\"" CONV "\"},\"data\":{\"mode\":\"all_participants\"}}}";
        static const char typing[] =
            "{\"type\":\"signal\",\"counter\":%d," TS ",\"body\":{\"type\":\"typing_indicator\",\"object\":{\"id\":"
            "\"" CONV "\"},\"data\":{\"action\":\"started\",\"sender\":{\"id\":\"layer:///identities/bob\"}}}}";
        static const char mark[] =
            "{\"type\":\"operation\",\"counter\":%d," TS ",\"body\":{\"method\":\"Conversation.mark_all_read\","
            "\"object\":{\"id\":\"" CONV "\"},\"data\":{\"position\":5,\"identity\":{\"id\":"
            "\"layer:///identities/alice\"}}}}";
        const char *after_create[2];
        after_create[0] = conv_create;
        after_create[1] = NULL;
        never_lost("a created conversation", NULL, conv_create, LS_EV_CREATE, 1);
        never_lost("a patched conversation, with change lists", after_create, patch, LS_EV_UPDATE, 1);
        never_lost("a patched conversation, without change lists", after_create, patch, LS_EV_UPDATE, 0);
        never_lost("a deleted conversation", after_create, del, LS_EV_DELETE, 1);
        never_lost("a typing signal", after_create, typing, LS_EV_TYPING, 1);
        never_lost("a conversation marked read", after_create, mark, LS_EV_MARK_READ, 1);
    }
    {
        int all = 1;
        end = 0;
        tried = 0;
        for (n = 0; !end && n < 200; n++, tried++) {
            if (!login_continues(n, &end)) {
                DIAG("login, allocation %ld failing: neither a challenge nor a new login", n);
                all = 0;
            }
        }
        OK(all && end, "an answered nonce gives a challenge or, reported, a new login, whichever of %d allocations fails",
           tried);
        OK(leaked == 0, "the login runs leaked nothing (%ld blocks)", leaked);
    }
    {
        static const char *const names[] = {"authenticated", "connected", "disconnected"};
        int which;
        for (which = 0; which < 3; which++) {
            int all = 1;
            end = 0;
            tried = 0;
            for (n = 0; !end && n < 200; n++, tried++) {
                if (!lifecycle_delivered(n, which, &end)) {
                    DIAG("%s, allocation %ld failing: not delivered exactly once, whole", names[which], n);
                    all = 0;
                }
            }
            OK(all && end, "the %s event arrives once, whole, whichever of %d allocations fails", names[which], tried);
            OK(leaked == 0, "the %s runs leaked nothing (%ld blocks)", names[which], leaked);
            leaked = 0;
        }
    }
    return tap_done();
}
