/*
 * json_choice.c - why the core has its own JSON documents: parses per second
 * and heap bytes per parsed document, ours against cJSON, on one input file
 * (default: a 1.4 KB Layer Message). Run by bench/run-json-choice.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#define KEEP 2000

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "bench/data/message.json";
    FILE *f = fopen(path, "rb");
    static char text[1 << 20];
    size_t len;
    int i, rounds = 200000;
    double t0, ours, theirs, ours_compact;
    size_t h0, ours_bytes, ours_compact_bytes, cjson_bytes;
    static jv_doc *docs[KEEP];
    static cJSON *trees[KEEP];
    if (!f) { perror(path); return 1; }
    len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';

    t0 = now();
    for (i = 0; i < rounds; i++) jv_doc_free(jv_parse(text, len, NULL, NULL));
    ours = rounds / (now() - t0);
    t0 = now();
    for (i = 0; i < rounds; i++) {
        jv_doc *d = jv_parse(text, len, NULL, NULL), *c = jv_doc_compact(d);
        jv_doc_free(d);
        jv_doc_free(c);
    }
    ours_compact = rounds / (now() - t0);
    t0 = now();
    for (i = 0; i < rounds; i++) cJSON_Delete(cJSON_ParseWithLength(text, len));
    theirs = rounds / (now() - t0);

    h0 = heap_in_use();
    for (i = 0; i < KEEP; i++) docs[i] = jv_parse(text, len, NULL, NULL);
    ours_bytes = (heap_in_use() - h0) / KEEP;
    for (i = 0; i < KEEP; i++) { jv_doc *c = jv_doc_compact(docs[i]); jv_doc_free(docs[i]); docs[i] = c; }
    ours_compact_bytes = (heap_in_use() - h0) / KEEP;
    for (i = 0; i < KEEP; i++) jv_doc_free(docs[i]);
    h0 = heap_in_use();
    for (i = 0; i < KEEP; i++) trees[i] = cJSON_ParseWithLength(text, len);
    cjson_bytes = (heap_in_use() - h0) / KEEP;
    for (i = 0; i < KEEP; i++) cJSON_Delete(trees[i]);

    printf("input: %s, %zu bytes\n", path, len);
    printf("parses/s   ours %.0f   ours+compact %.0f   cJSON %.0f   ours/cJSON %.2fx\n", ours, ours_compact, theirs, ours / theirs);
    printf("heap bytes per kept document   ours %zu   ours compacted %zu   cJSON %zu\n", ours_bytes, ours_compact_bytes, cjson_bytes);
    return 0;
}
