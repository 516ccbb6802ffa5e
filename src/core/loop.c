/*
 * loop.c - the transport event loop (see loop.h): epoll fd, eventfd wake,
 * min-heap timers and dispatch to the http/ws services.
 *
 * epoll data carries (slot << 32 | fd), never a pointer, so a service may
 * drop a watch while events for it are still in the batch being dispatched.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LT_MAX_SERVICES 4
#define LT_WAKE_SLOT 0xffffffffu

typedef struct {
    int64_t deadline;
    uint64_t id; /* also the tie-break: start order */
    lt_timer_cb cb;
    void *ud;
} lt_timer;

struct lt_loop {
    int epfd, wakefd;
    int depth;   /* >0 while inside lt_loop_step */
    int closing; /* lt_loop_free called during a step */
    struct {
        const lt_service_vt *vt;
        void *ud;
    } svc[LT_MAX_SERVICES];
    int nsvc;
    lt_timer *heap;
    size_t nheap, capheap;
    uint64_t next_timer_id;
    lt_log_cb log;
    void *log_ud;
};

int64_t lt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

lt_loop *lt_loop_new(void)
{
    lt_loop *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    L->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (L->epfd < 0 || L->wakefd < 0)
        goto fail;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)LT_WAKE_SLOT << 32 | (uint32_t)L->wakefd;
    if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->wakefd, &ev) < 0)
        goto fail;
    L->next_timer_id = 1;
    return L;
fail: {
    int e = errno;
    if (L->epfd >= 0)
        close(L->epfd);
    if (L->wakefd >= 0)
        close(L->wakefd);
    free(L);
    errno = e;
    return NULL;
}
}

static void loop_destroy(lt_loop *L)
{
    /* Services go in reverse order of registration (ws may use timers). */
    for (int i = L->nsvc - 1; i >= 0; i--)
        if (L->svc[i].vt && L->svc[i].vt->destroy)
            L->svc[i].vt->destroy(L->svc[i].ud);
    close(L->wakefd);
    close(L->epfd);
    free(L->heap);
    free(L);
}

void lt_loop_free(lt_loop *L)
{
    if (!L)
        return;
    if (L->depth) {
        L->closing = 1;
        return;
    }
    loop_destroy(L);
}

int lt_loop_fd(lt_loop *L) { return L->epfd; }
int lt_loop_in_step(lt_loop *L) { return L->depth > 0; }
int lt_loop_closing(lt_loop *L) { return L->closing; }

int lt_loop_wake(lt_loop *L)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already huge: still readable, so fine. */
    if (write(L->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
        return -1;
    return 0;
}

void lt_loop_set_log(lt_loop *L, lt_log_cb cb, void *ud)
{
    L->log = cb;
    L->log_ud = ud;
}

void lt_loop_log(lt_loop *L, int level, const char *fmt, ...)
{
    if (!L || !L->log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    L->log(L->log_ud, level, buf);
}

/* ---- services -------------------------------------------------------- */

int lt_loop_add_service(lt_loop *L, const lt_service_vt *vt, void *ud)
{
    if (L->nsvc >= LT_MAX_SERVICES)
        return -1;
    L->svc[L->nsvc].vt = vt;
    L->svc[L->nsvc].ud = ud;
    return L->nsvc++;
}

void *lt_loop_service(lt_loop *L, const lt_service_vt *vt)
{
    for (int i = 0; i < L->nsvc; i++)
        if (L->svc[i].vt == vt)
            return L->svc[i].ud;
    return NULL;
}

int lt_loop_watch(lt_loop *L, int slot, int fd, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    if (!events) {
        if (epoll_ctl(L->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF)
            return -1;
        return 0;
    }
    ev.events = events;
    ev.data.u64 = (uint64_t)(uint32_t)slot << 32 | (uint32_t)fd;
    if (epoll_ctl(L->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    return epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- timers: binary min-heap on (deadline, id) ------------------------ */

static int timer_less(const lt_timer *a, const lt_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void heap_up(lt_loop *L, size_t i)
{
    lt_timer t = L->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(&t, &L->heap[p]))
            break;
        L->heap[i] = L->heap[p];
        i = p;
    }
    L->heap[i] = t;
}

static void heap_down(lt_loop *L, size_t i)
{
    lt_timer t = L->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= L->nheap)
            break;
        if (c + 1 < L->nheap && timer_less(&L->heap[c + 1], &L->heap[c]))
            c++;
        if (!timer_less(&L->heap[c], &t))
            break;
        L->heap[i] = L->heap[c];
        i = c;
    }
    L->heap[i] = t;
}

static void heap_remove(lt_loop *L, size_t i)
{
    L->nheap--;
    if (i == L->nheap)
        return;
    L->heap[i] = L->heap[L->nheap];
    heap_up(L, i);
    heap_down(L, i);
}

uint64_t lt_timer_start(lt_loop *L, int64_t ms, lt_timer_cb cb, void *ud)
{
    if (L->nheap == L->capheap) {
        size_t cap = L->capheap ? L->capheap * 2 : 16;
        lt_timer *h = realloc(L->heap, cap * sizeof *h);
        if (!h)
            return 0;
        L->heap = h;
        L->capheap = cap;
    }
    if (ms < 0)
        ms = 0;
    lt_timer *t = &L->heap[L->nheap++];
    t->deadline = lt_now_ms() + ms;
    t->id = L->next_timer_id++;
    t->cb = cb;
    t->ud = ud;
    heap_up(L, L->nheap - 1);
    return t->id;
}

int lt_timer_cancel(lt_loop *L, uint64_t id)
{
    if (!id)
        return 0;
    for (size_t i = 0; i < L->nheap; i++)
        if (L->heap[i].id == id) {
            heap_remove(L, i);
            return 1;
        }
    return 0;
}

static void run_timers(lt_loop *L)
{
    int64_t now = lt_now_ms();
    uint64_t last = L->next_timer_id; /* timers started by callbacks wait for the next step */
    while (L->nheap && !L->closing && L->heap[0].deadline <= now && L->heap[0].id < last) {
        lt_timer t = L->heap[0];
        heap_remove(L, 0);
        t.cb(L, t.ud);
    }
}

/* ---- step ------------------------------------------------------------ */

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

int lt_loop_timeout_ms(lt_loop *L)
{
    int t = -1;
    if (L->nheap) {
        int64_t d = L->heap[0].deadline - lt_now_ms();
        t = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
    }
    for (int i = 0; i < L->nsvc && t != 0; i++)
        if (L->svc[i].vt->timeout_ms)
            t = min_timeout(t, L->svc[i].vt->timeout_ms(L->svc[i].ud));
    return t;
}

int lt_loop_step(lt_loop *L, int timeout_ms)
{
    if (L->depth) {
        errno = EBUSY;
        return -1;
    }
    int t = lt_loop_timeout_ms(L);
    if (timeout_ms < 0)
        timeout_ms = t;
    else
        timeout_ms = min_timeout(timeout_ms, t);

    L->depth++;
    struct epoll_event evs[64];
    int n = epoll_wait(L->epfd, evs, 64, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) {
            L->depth--;
            return -1;
        }
        n = 0;
    }
    for (int i = 0; i < n && !L->closing; i++) {
        uint32_t slot = (uint32_t)(evs[i].data.u64 >> 32);
        int fd = (int)(uint32_t)evs[i].data.u64;
        if (slot == LT_WAKE_SLOT) {
            uint64_t v;
            while (read(L->wakefd, &v, sizeof v) > 0)
                ;
        } else if ((int)slot < L->nsvc && L->svc[slot].vt->on_fd) {
            L->svc[slot].vt->on_fd(L->svc[slot].ud, fd, evs[i].events);
        }
    }
    for (int i = 0; i < L->nsvc && !L->closing; i++)
        if (L->svc[i].vt->run)
            L->svc[i].vt->run(L->svc[i].ud);
    run_timers(L);
    L->depth--;
    if (L->closing)
        loop_destroy(L);
    return 0;
}
