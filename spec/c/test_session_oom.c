/* test_session_oom.c - the session engine under allocation failure: an
 * answered request still resolves (one LS_EV_RESPONSE per request id), so a
 * coroutine waiting on it cannot hang because an event could not be made.
 *
 * Every malloc/calloc/realloc of this process goes through the wrappers
 * below; fail_at makes the n-th one from now on return NULL, once. */
#include "session.h"
#include "tap.h"

#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static long allocs_left = -1; /* -1: never fail */

static int should_fail(void)
{
    if (allocs_left < 0) return 0;
    return allocs_left-- == 0;
}

void *malloc(size_t n) { return should_fail() ? NULL : __libc_malloc(n); }
void *calloc(size_t k, size_t n) { return should_fail() ? NULL : __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { return should_fail() ? NULL : __libc_realloc(p, n); }

static void fail_at(long n) { allocs_left = n; }

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

int main(void)
{
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
    return tap_done();
}
