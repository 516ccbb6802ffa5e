/* server_load.c - load benchmark for layer-server: N concurrent WebSocket sessions in conversations of G participants. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    char user[32];
    char token[80];
    int conv;          /* index of its conversation */
    int sender;        /* sends messages in the load phase */
    int outstanding;
    unsigned char *buf;
    size_t len, cap;
} client;

static int port, nusers = 1000, group = 25, seconds = 10, senders_per_conv = 5, window = 2;
static client *cl;
static char (*convs)[64];
static double *lat;
static size_t nlat, caplat;
static long accepted, failed, changes, sent;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int dial(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EAGAIN) { usleep(100); continue; }
        if (w <= 0) { perror("write"); exit(1); }
        c += w;
        n -= (size_t)w;
    }
}

/* One blocking HTTP request on a fresh connection; returns the body (static buffer). */
static char *http(const char *method, const char *path, const char *auth, const char *body)
{
    static char resp[1 << 16];
    char req[8192];
    size_t got = 0;
    ssize_t r;
    int fd = dial();
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/vnd.layer+json; version=3.0\r\n"
             "Content-Type: application/json\r\n%s\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, auth, strlen(body), body);
    send_all(fd, req, strlen(req));
    while ((r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
    resp[got] = 0;
    close(fd);
    {
        char *b = strstr(resp, "\r\n\r\n");
        return b ? b + 4 : resp;
    }
}

static void ws_frame(int fd, const char *text)
{
    unsigned char h[14];
    size_t n = strlen(text), hl;
    h[0] = 0x81;
    if (n < 126) { h[1] = (unsigned char)(0x80 | n); hl = 2; }
    else { h[1] = 0x80 | 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n; hl = 4; }
    memset(h + hl, 0, 4); /* zero mask: payload goes as is */
    hl += 4;
    {
        char *f = malloc(hl + n);
        memcpy(f, h, hl);
        memcpy(f + hl, text, n);
        send_all(fd, f, hl + n);
        free(f);
    }
}

static void send_message(client *c)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"type\":\"request\",\"body\":{\"method\":\"Message.create\",\"request_id\":\"r%ld\",\"object_id\":\"%s\","
             "\"data\":{\"parts\":[{\"mime_type\":\"text/plain\",\"body\":\"t=%.0f\"}]}}}",
             sent, convs[c->conv], now_us());
    ws_frame(c->fd, buf);
    c->outstanding++;
    sent++;
}

static void on_packet(client *c, const char *p, size_t n, int measuring)
{
    const char *t;
    (void)n;
    if (strncmp(p, "{\"type\":\"response\"", 18) == 0) {
        if (!strstr(p, "\"Message.create\"")) return;
        c->outstanding--;
        if (measuring == 1) {
            if (strstr(p, "\"success\":true")) accepted++;
            else failed++;
        }
        if (measuring == 1 && c->sender) while (c->outstanding < window) send_message(c);
    } else if (strncmp(p, "{\"type\":\"change\"", 16) == 0) {
        if (measuring == 1) changes++;
        if (measuring && strstr(p, "\"operation\":\"create\"") && strstr(p, "\"type\":\"Message\"") &&
            (t = strstr(p, "\"body\":\"t=")) != NULL) {
            double sent_at = atof(t + 10);
            if (nlat == caplat) {
                caplat = caplat ? caplat * 2 : 1 << 16;
                lat = realloc(lat, caplat * sizeof *lat);
            }
            lat[nlat++] = (now_us() - sent_at) / 1000.0;
        }
    }
}

/* Parses complete server frames (unmasked) out of c->buf. */
static void drain(client *c, int measuring)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *f = c->buf + off;
        size_t pl = f[1] & 127, hl = 2;
        if (pl == 126) {
            if (c->len - off < 4) break;
            pl = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (pl == 127) {
            int i;
            if (c->len - off < 10) break;
            pl = 0;
            for (i = 0; i < 8; i++) pl = pl << 8 | f[2 + i];
            hl = 10;
        }
        if (c->len - off < hl + pl) break;
        if ((f[0] & 15) == 1) {
            char save = (char)f[hl + pl];
            f[hl + pl] = 0; /* buffer always has one spare byte */
            on_packet(c, (char *)f + hl, pl, measuring);
            f[hl + pl] = (unsigned char)save;
        }
        off += hl + pl;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key) + 1);
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    const char *bin = "build/layer-server", *db = "/tmp/layer-bench.db";
    int i, ep, pfd[2], nconv;
    pid_t pid;
    char banner[256];
    double t0, t1;
    struct epoll_event ev, evs[256];
    long changes_at_start;

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--users")) nusers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--group")) group = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--senders")) senders_per_conv = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--window")) window = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--server")) bin = argv[i + 1];
        else if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else { fprintf(stderr, "usage: server_load [--users N] [--group G] [--seconds S] [--senders K] [--window W] [--server BIN] [--db FILE]\n"); return 2; }
    }
    signal(SIGPIPE, SIG_IGN);
    unlink(db);
    {
        char wal[300];
        snprintf(wal, sizeof wal, "%s-wal", db); unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", db); unlink(wal);
    }
    if (pipe(pfd)) return 1;
    pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        /* All sessions come from 127.0.0.1: lift the per-address connection cap. */
        execl(bin, bin, "--port", "0", "--db", db, "--admin-token", "bench", "--log-level", "error",
              "--max-lifetime", "600", "--max-conns-per-ip", "0", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    {
        ssize_t r = read(pfd[0], banner, sizeof banner - 1);
        if (r <= 0) { fprintf(stderr, "server did not start\n"); return 1; }
        banner[r] = 0;
        if (!strstr(banner, "port ")) { fprintf(stderr, "bad banner %s\n", banner); return 1; }
        port = atoi(strstr(banner, "port ") + 5);
    }
    cl = calloc((size_t)nusers, sizeof *cl);
    nconv = (nusers + group - 1) / group;
    convs = calloc((size_t)nconv, sizeof *convs);
    for (i = 0; i < nusers; i++) {
        char body[128], *tok;
        snprintf(cl[i].user, sizeof cl[i].user, "u%d", i);
        snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", cl[i].user);
        tok = strstr(http("POST", "/admin/sessions", "Authorization: Bearer bench", body), "\"session_token\":\"");
        if (!tok) { fprintf(stderr, "no session\n"); return 1; }
        snprintf(cl[i].token, sizeof cl[i].token, "%.64s", tok + 17);
        cl[i].conv = i / group;
        cl[i].sender = (i % group) < senders_per_conv;
    }
    for (i = 0; i < nconv; i++) {
        char body[8192], auth[160], *id;
        int j, first = i * group;
        size_t o = (size_t)snprintf(body, sizeof body, "{\"distinct\":false,\"participants\":[");
        for (j = first; j < first + group && j < nusers; j++)
            o += (size_t)snprintf(body + o, sizeof body - o, "%s\"%s\"", j > first ? "," : "", cl[j].user);
        snprintf(body + o, sizeof body - o, "]}");
        snprintf(auth, sizeof auth, "Authorization: Layer session-token=\"%s\"", cl[first].token);
        id = strstr(http("POST", "/conversations", auth, body), "\"id\":\"");
        if (!id) { fprintf(stderr, "no conversation\n"); return 1; }
        snprintf(convs[i], sizeof convs[i], "%.59s", id + 6);
    }
    ep = epoll_create1(0);
    for (i = 0; i < nusers; i++) {
        char req[512], resp[1024];
        ssize_t r;
        cl[i].fd = dial();
        snprintf(req, sizeof req,
                 "GET /?session_token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: layer-3.0\r\n\r\n", cl[i].token);
        send_all(cl[i].fd, req, strlen(req));
        r = read(cl[i].fd, resp, sizeof resp - 1); /* the 101 arrives alone: nothing is sent before a request */
        if (r <= 0 || strncmp(resp, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "upgrade %d failed\n", i); return 1; }
        fcntl(cl[i].fd, F_SETFL, O_NONBLOCK);
        cl[i].cap = 1 << 16;
        cl[i].buf = malloc(cl[i].cap + 1);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev);
    }
    fprintf(stderr, "server_load: %d sessions open, %d conversations of %d, %d senders each, window %d, %ds\n",
            nusers, nconv, group, senders_per_conv, window, seconds);
    for (i = 0; i < nusers; i++)
        if (cl[i].sender) while (cl[i].outstanding < window) send_message(&cl[i]);
    t0 = now_us();
    changes_at_start = changes;
    {
        int measuring = 1;
        double end = t0 + seconds * 1e6, grace = end + 5e6;
        for (;;) {
            int n = epoll_wait(ep, evs, 256, 100), k;
            double t = now_us();
            if (measuring == 1 && t >= end) { measuring = 2; t1 = t; }
            if (measuring == 2) {
                int busy = 0;
                for (i = 0; i < nusers; i++) busy |= cl[i].outstanding > 0;
                if (!busy || t > grace) break;
            }
            for (k = 0; k < n; k++) {
                client *c = &cl[evs[k].data.u32];
                for (;;) {
                    ssize_t r;
                    if (c->cap - c->len < 4096) {
                        c->cap *= 2;
                        c->buf = realloc(c->buf, c->cap + 1);
                    }
                    r = read(c->fd, c->buf + c->len, c->cap - c->len);
                    if (r <= 0) break;
                    c->len += (size_t)r;
                }
                drain(c, measuring);
            }
        }
        if (measuring == 1) t1 = now_us();
    }
    {
        double secs = (t1 - t0) / 1e6;
        double p50 = 0, p99 = 0;
        if (nlat) {
            qsort(lat, nlat, sizeof *lat, cmp);
            p50 = lat[nlat / 2];
            p99 = lat[(size_t)(nlat * 0.99)];
        }
        printf("server_load: users=%d group=%d senders/conv=%d window=%d duration=%.1fs\n", nusers, group,
               senders_per_conv, window, secs);
        printf("  messages accepted: %ld (%.0f/s), failed: %ld\n", accepted, accepted / secs, failed);
        printf("  change packets delivered: %ld (%.0f/s)\n", changes - changes_at_start, (changes - changes_at_start) / secs);
        printf("  delivery latency (Message create to each recipient): p50 %.1f ms, p99 %.1f ms (%zu samples)\n", p50, p99, nlat);
        printf("  server RSS: %ld KB now, %ld KB peak\n", rss_kb(pid, "VmRSS:"), rss_kb(pid, "VmHWM:"));
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
}
