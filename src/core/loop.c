/*
 * loop.c - the transport event loop (see loop.h): epoll fd, eventfd wake,
 * min-heap timers and dispatch to the http/ws services.
 *
 * epoll data carries (slot << 32 | fd), never a pointer, so a service may
 * drop a watch while events for it are still in the batch being dispatched.
 */
#define _GNU_SOURCE
#include "loop.h"
#include "monoclock.h"

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
    int shared;  /* many connections: see lt_loop_set_shared */
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

int64_t lt_now_ms(void) { return mono_ms(); }

/* ---- errors ------------------------------------------------------------ */

static void errno_text(int e, char *buf, size_t n)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    const char *s = strerror_r(e, buf, n); /* GNU: may return a static string */
    if (s != buf) snprintf(buf, n, "%s", s);
#else
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
#endif
}

void lt_error_set(lt_error *err, int code, const char *fmt, ...)
{
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    err->sys_errno = 0;
}

void lt_error_sys(lt_error *err, int sys_errno, const char *fmt, ...)
{
    if (!err) return;
    char text[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    errno_text(sys_errno, text, sizeof text); /* thread-safe: lt_loop_wake reports with it */
    if (n >= 0 && (size_t)n < sizeof err->msg) snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", text);
    err->code = LT_E_SYS;
    err->sys_errno = sys_errno;
}

void lt_error_oom(lt_error *err) { lt_error_set(err, LT_E_OOM, "out of memory"); }

/* ---- the loop ---------------------------------------------------------- */

lt_loop *lt_loop_new(lt_error *err)
{
    lt_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        lt_error_oom(err);
        return NULL;
    }
    loop->wakefd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        lt_error_sys(err, errno, "epoll_create1");
        goto fail;
    }
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wakefd < 0) {
        lt_error_sys(err, errno, "eventfd");
        goto fail;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)LT_WAKE_SLOT << 32 | (uint32_t)loop->wakefd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
        lt_error_sys(err, errno, "epoll_ctl (the wake eventfd)");
        goto fail;
    }
    loop->next_timer_id = 1;
    return loop;
fail:
    if (loop->epfd >= 0) close(loop->epfd);
    if (loop->wakefd >= 0) close(loop->wakefd);
    free(loop);
    return NULL;
}

static void loop_destroy(lt_loop *loop)
{
    /* Services go in reverse order of registration (ws may use timers). */
    for (int i = loop->nsvc - 1; i >= 0; i--)
        if (loop->svc[i].vt && loop->svc[i].vt->destroy) loop->svc[i].vt->destroy(loop->svc[i].ud);
    close(loop->wakefd);
    close(loop->epfd);
    free(loop->heap);
    free(loop);
}

void lt_loop_free(lt_loop *loop)
{
    if (!loop) return;
    if (loop->depth) {
        loop->closing = 1;
        return;
    }
    loop_destroy(loop);
}

int lt_loop_fd(lt_loop *loop) { return loop->epfd; }
int lt_loop_in_step(lt_loop *loop) { return loop->depth > 0; }
int lt_loop_closing(lt_loop *loop) { return loop->closing; }
void lt_loop_set_shared(lt_loop *loop) { loop->shared = 1; }
int lt_loop_shared(const lt_loop *loop) { return loop->shared; }

int lt_loop_wake(lt_loop *loop, lt_error *err)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already huge: still readable, so fine. */
    if (write(loop->wakefd, &one, sizeof one) < 0 && errno != EAGAIN) {
        lt_error_sys(err, errno, "write (the wake eventfd)");
        return -1;
    }
    return 0;
}

void lt_loop_set_log(lt_loop *loop, lt_log_cb cb, void *ud)
{
    loop->log = cb;
    loop->log_ud = ud;
}

void lt_loop_log(lt_loop *loop, int level, const char *fmt, ...)
{
    if (!loop || !loop->log) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    loop->log(loop->log_ud, level, buf);
}

/* ---- services -------------------------------------------------------- */

int lt_loop_add_service(lt_loop *loop, const lt_service_vt *vt, void *ud, lt_error *err)
{
    for (int i = 0; i < loop->nsvc; i++)
        if (loop->svc[i].vt == vt) {
            lt_error_set(err, LT_E_INVAL, "lt_loop_add_service: this service is already registered");
            return -1;
        }
    if (loop->nsvc >= LT_MAX_SERVICES) {
        lt_error_set(err, LT_E_LIMIT, "lt_loop_add_service: all %d service slots are taken", LT_MAX_SERVICES);
        return -1;
    }
    loop->svc[loop->nsvc].vt = vt;
    loop->svc[loop->nsvc].ud = ud;
    return loop->nsvc++;
}

void *lt_loop_service(lt_loop *loop, const lt_service_vt *vt)
{
    for (int i = 0; i < loop->nsvc; i++)
        if (loop->svc[i].vt == vt) return loop->svc[i].ud;
    return NULL;
}

int lt_loop_watch(lt_loop *loop, int slot, int fd, uint32_t events, lt_error *err)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    if (!events) {
        if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF) {
            lt_error_sys(err, errno, "epoll_ctl (remove fd %d)", fd);
            return -1;
        }
        return 0;
    }
    if (slot < 0 || slot >= loop->nsvc) {
        lt_error_set(err, LT_E_INVAL, "lt_loop_watch: no service in slot %d", slot);
        return -1;
    }
    ev.events = events;
    ev.data.u64 = (uint64_t)(uint32_t)slot << 32 | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (errno == ENOENT && epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
    lt_error_sys(err, errno, "epoll_ctl (watch fd %d)", fd);
    return -1;
}

/* ---- timers: binary min-heap on (deadline, id) ------------------------ */

static int timer_less(const lt_timer *a, const lt_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void heap_up(lt_loop *loop, size_t i)
{
    lt_timer t = loop->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(&t, &loop->heap[p])) break;
        loop->heap[i] = loop->heap[p];
        i = p;
    }
    loop->heap[i] = t;
}

static void heap_down(lt_loop *loop, size_t i)
{
    lt_timer t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap) break;
        if (c + 1 < loop->nheap && timer_less(&loop->heap[c + 1], &loop->heap[c])) c++;
        if (!timer_less(&loop->heap[c], &t)) break;
        loop->heap[i] = loop->heap[c];
        i = c;
    }
    loop->heap[i] = t;
}

static void heap_remove(lt_loop *loop, size_t i)
{
    loop->nheap--;
    if (i == loop->nheap) return;
    loop->heap[i] = loop->heap[loop->nheap];
    heap_up(loop, i);
    heap_down(loop, i);
}

uint64_t lt_timer_start(lt_loop *loop, int64_t ms, lt_timer_cb cb, void *ud, lt_error *err)
{
    if (loop->nheap == loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 16;
        lt_timer *h = realloc(loop->heap, cap * sizeof *h);
        if (!h) {
            lt_error_oom(err);
            return 0;
        }
        loop->heap = h;
        loop->capheap = cap;
    }
    if (ms < 0) ms = 0;
    lt_timer *t = &loop->heap[loop->nheap++];
    t->deadline = lt_now_ms() + ms;
    t->id = loop->next_timer_id++;
    t->cb = cb;
    t->ud = ud;
    heap_up(loop, loop->nheap - 1);
    return t->id;
}

int lt_timer_cancel(lt_loop *loop, uint64_t id)
{
    if (!id) return 0;
    for (size_t i = 0; i < loop->nheap; i++)
        if (loop->heap[i].id == id) {
            heap_remove(loop, i);
            return 1;
        }
    return 0;
}

static void run_timers(lt_loop *loop)
{
    int64_t now = lt_now_ms();
    uint64_t last = loop->next_timer_id; /* timers started by callbacks wait for the next step */
    while (loop->nheap && !loop->closing && loop->heap[0].deadline <= now && loop->heap[0].id < last) {
        lt_timer t = loop->heap[0];
        heap_remove(loop, 0);
        t.cb(loop, t.ud);
    }
}

/* ---- step ------------------------------------------------------------ */

static int min_timeout(int a, int b)
{
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

int lt_loop_timeout_ms(lt_loop *loop)
{
    int t = -1;
    if (loop->nheap) {
        int64_t d = loop->heap[0].deadline - lt_now_ms();
        t = d <= 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
    }
    for (int i = 0; i < loop->nsvc && t != 0; i++)
        if (loop->svc[i].vt->timeout_ms) t = min_timeout(t, loop->svc[i].vt->timeout_ms(loop->svc[i].ud));
    return t;
}

int lt_loop_step(lt_loop *loop, int timeout_ms, lt_error *err)
{
    if (loop->depth) {
        lt_error_set(err, LT_E_STATE, "lt_loop_step: called from inside one of the loop's own callbacks");
        return -1;
    }
    int t = lt_loop_timeout_ms(loop);
    if (timeout_ms < 0)
        timeout_ms = t;
    else
        timeout_ms = min_timeout(timeout_ms, t);

    loop->depth++;
    struct epoll_event evs[64];
    int n = epoll_wait(loop->epfd, evs, 64, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) {
            lt_error_sys(err, errno, "epoll_wait");
            loop->depth--;
            return -1;
        }
        n = 0;
    }
    for (int i = 0; i < n && !loop->closing; i++) {
        uint32_t slot = (uint32_t)(evs[i].data.u64 >> 32);
        int fd = (int)(uint32_t)evs[i].data.u64;
        if (slot == LT_WAKE_SLOT) {
            uint64_t v;
            while (read(loop->wakefd, &v, sizeof v) > 0)
                ;
        } else if ((int)slot < loop->nsvc && loop->svc[slot].vt->on_fd) {
            loop->svc[slot].vt->on_fd(loop->svc[slot].ud, fd, evs[i].events);
        }
    }
    for (int i = 0; i < loop->nsvc && !loop->closing; i++)
        if (loop->svc[i].vt->run) loop->svc[i].vt->run(loop->svc[i].ud);
    run_timers(loop);
    loop->depth--;
    if (loop->closing) loop_destroy(loop);
    return 0;
}
