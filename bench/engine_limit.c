/*
 * engine_limit.c - the protocol engine alone, without Lua: frames fed to an
 * ls_session exactly as the binding's engine:feed(frame) does (ls_ws_frame:
 * decode, counters, apply to the cache), in MB/s and µs per packet. Run by
 * bench/run-engine-limit next to bench/simdjson_parse.cpp on the same bytes.
 *
 *   engine_limit FRAMES [passes [mode]]     (mode: only that one, for a profiler)
 *
 * Modes, alternated pass by pass, each on a fresh session per pass:
 *   quiet   no interest (layer.client with no handlers): no events are built
 *   events  every object event wanted, no change lists (handlers function(obj)
 *           on everything); events are popped and freed every 200 frames,
 *           as client:step() does between socket bursts
 *   parse   jv_parse_reuse of each frame into one scratch doc: json.c alone,
 *           the counterpart of simdjson's DOM parse
 * Time is process CPU time; each mode prints the median of its passes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "session.h"

#define BATCH 200 /* frames per burst, bench/client_ingest.lua's default */

typedef struct {
    char **text;
    size_t *len;
    size_t n, bytes;
} frames;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
    fprintf(stderr, "engine_limit: %s\n", msg);
    exit(1);
}

static void load(const char *path, frames *f)
{
    FILE *fp = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0, have = 0;
    ssize_t n;
    if (!fp) die("cannot open the frame file (make bench-streams)");
    memset(f, 0, sizeof *f);
    while ((n = getline(&line, &cap, fp)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        if (f->n == have) {
            have = have ? have * 2 : 1024;
            f->text = realloc(f->text, have * sizeof *f->text);
            f->len = realloc(f->len, have * sizeof *f->len);
            if (!f->text || !f->len) die("out of memory");
        }
        /* each frame in its own block, as a socket hands it over */
        if (!(f->text[f->n] = malloc((size_t)n + 1))) die("out of memory");
        memcpy(f->text[f->n], line, (size_t)n);
        f->text[f->n][n] = '\0';
        f->len[f->n++] = (size_t)n;
        f->bytes += (size_t)n;
    }
    free(line);
    fclose(fp);
    if (!f->n) die("no frames in the file");
}

typedef struct {
    size_t events, errors;
} drained;

static void drain(ls_session *s, drained *d)
{
    ls_event *ev;
    char *out;
    size_t len;
    ls_http_request *r;
    while ((ev = ls_next_event(s))) {
        if (ev->type == LS_EV_ERROR) {
            if (d->errors++ < 3) fprintf(stderr, "engine_limit: error event: %.*s\n", (int)ev->text_len, ev->text);
        } else if (ev->type >= LS_EV_CREATE) {
            d->events++;
        }
        ls_event_free(s, ev);
    }
    while ((out = ls_take_frame(s, &len))) free(out); /* Counter.read, Event.replay: must not happen */
    while ((r = ls_take_http(s))) ls_http_request_free(r);
}

/* One pass of the engine over every frame; returns CPU seconds. */
static double engine_pass(const frames *f, int events_on, drained *d, ls_stats *st)
{
    ls_config cfg;
    ls_session *s;
    size_t i;
    double t0, t;
    const int64_t now = 1000;
    ls_config_defaults(&cfg);
    cfg.random_seed = 1;
    if (!(s = ls_new(&cfg))) die("out of memory");
    ls_set_interest(s, events_on ? ~0u : 0u);
    ls_set_change_lists(s, 0);
    ls_start(s, now, "bench");
    if (!ls_ws_wanted(s)) die("the engine should want its socket");
    ls_ws_opened(s, now);
    memset(d, 0, sizeof *d);
    drain(s, d);
    d->events = 0;
    t0 = cpu_now();
    for (i = 0; i < f->n; i++) {
        ls_ws_frame(s, now, f->text[i], f->len[i]);
        if (events_on && (i + 1) % BATCH == 0) drain(s, d);
    }
    drain(s, d);
    t = cpu_now() - t0;
    ls_stats_get(s, st);
    ls_free(s);
    return t;
}

static double parse_pass(const frames *f, jv_doc *scratch, size_t *values)
{
    size_t i;
    jv_error err;
    double t0 = cpu_now();
    for (i = 0; i < f->n; i++) {
        if (!jv_parse_reuse(scratch, f->text[i], f->len[i], NULL, &err)) die(err.message);
        *values += jv_root(scratch)->len; /* top-level members: keeps the result live */
    }
    return cpu_now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    frames f;
    int passes, p, m;
    double *times[3];
    static const char *names[3] = {"quiet", "events", "parse"};
    size_t events = 0, values = 0;
    jv_doc *scratch;
    const char *only;
    if (argc < 2) die("usage: engine_limit FRAMES [passes]");
    passes = argc > 2 ? atoi(argv[2]) : 5;
    if (passes < 1) die("passes must be positive");
    only = argc > 3 ? argv[3] : NULL;
    load(argv[1], &f);
    for (m = 0; m < 3; m++)
        if (!(times[m] = calloc((size_t)passes, sizeof(double)))) die("out of memory");
    if (!(scratch = jv_doc_new(4096))) die("out of memory");
    for (p = 0; p < passes; p++) {
        for (m = 0; m < 3; m++) {
            int mode = (m + p) % 3; /* rotate which mode goes first */
            drained d;
            ls_stats st;
            if (only && strcmp(only, names[mode]) != 0) continue;
            if (mode == 2) {
                times[mode][p] = parse_pass(&f, scratch, &values);
                continue;
            }
            times[mode][p] = engine_pass(&f, mode == 1, &d, &st);
            /* the stream must apply cleanly, or the figure means nothing */
            if (d.errors || st.packets != f.n || st.changes_applied != f.n || st.gaps || st.replays)
                die("the stream did not apply cleanly (errors, gaps or replays)");
            if (mode == 1) {
                if (!d.events) die("events mode produced no events");
                events = d.events;
            }
        }
    }
    for (m = 0; m < 3; m++) {
        double t = median(times[m], passes);
        if (only && strcmp(only, names[m]) != 0) continue;
        printf("impl=engine mode=%s frames=%lu bytes=%lu passes=%d events=%lu mb_per_s=%.1f us_per_packet=%.3f\n",
               names[m], (unsigned long)f.n, (unsigned long)f.bytes, passes, (unsigned long)(m == 1 ? events : 0),
               (double)f.bytes / t / 1e6, t / (double)f.n * 1e6);
    }
    if (!values && (!only || !strcmp(only, "parse"))) die("nothing parsed");
    jv_doc_free(scratch);
    return 0;
}
