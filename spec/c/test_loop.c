/* test_loop.c - lt_loop: stable epoll fd, timers, wake, step semantics, reentrancy. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "loop.h"
#include "tap.h"

static char order[16];
static int norder;

static void rec_cb(lt_loop *L, void *ud) { order[norder++] = *(const char *)ud; }

static int zero_fired;
static void zero_again(lt_loop *L, void *ud)
{
    zero_fired++;
    lt_timer_start(L, 0, zero_again, ud); /* must wait for the next step */
}

static int nested_rc, nested_errno;
static void nested_cb(lt_loop *L, void *ud)
{
    nested_rc = lt_loop_step(L, 0);
    nested_errno = errno;
}

static void free_cb(lt_loop *L, void *ud)
{
    *(int *)ud = 1;
    lt_loop_free(L); /* deferred to the end of the step */
    lt_timer_start(L, 0, rec_cb, "z"); /* harmless: freed with the loop */
}

static void *waker(void *ud)
{
    usleep(50 * 1000);
    lt_loop_wake(ud);
    return NULL;
}

int main(void)
{
    tap_watchdog(30);
    lt_loop *L = lt_loop_new();
    OK(L != NULL, "lt_loop_new");
    int fd = lt_loop_fd(L);
    OK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "epoll fd is valid and close-on-exec");
    OK(lt_loop_timeout_ms(L) == -1, "nothing scheduled: timeout -1");

    double t0 = tap_now();
    OK(lt_loop_step(L, 0) == 0 && tap_now() - t0 < 5 * tap_slow(), "step(0) on an idle loop returns at once");

    static const char *names = "ABCDE";
    lt_timer_start(L, 30, rec_cb, (void *)(names + 0));
    lt_timer_start(L, 10, rec_cb, (void *)(names + 1));
    lt_timer_start(L, 20, rec_cb, (void *)(names + 2));
    lt_timer_start(L, 10, rec_cb, (void *)(names + 3));
    uint64_t e = lt_timer_start(L, 15, rec_cb, (void *)(names + 4));
    OK(e != 0, "timer ids are non-zero");
    OK(lt_timer_cancel(L, e) == 1 && lt_timer_cancel(L, e) == 0, "cancel returns 1 then 0");
    int t = lt_loop_timeout_ms(L);
    OK(t >= 0 && t <= 10, "timeout reflects the earliest timer (%d ms)", t);
    t0 = tap_now();
    while (norder < 4 && tap_now() - t0 < 2000)
        lt_loop_step(L, -1);
    order[norder] = 0;
    OK(strcmp(order, "BDCA") == 0, "timers fire in deadline order, ties in start order (%s)", order);
    OK(tap_now() - t0 >= 20, "step(-1) waited for the timers (%.0f ms)", tap_now() - t0);
    OK(lt_loop_timeout_ms(L) == -1, "no timers left");

    lt_timer_start(L, 0, zero_again, NULL);
    lt_loop_step(L, 0);
    OK(zero_fired == 1, "a 0 ms timer started by a timer waits for the next step");
    OK(lt_loop_timeout_ms(L) == 0, "... and makes timeout 0");
    lt_loop_step(L, 0);
    OK(zero_fired == 2, "... and fires on the next step");
    /* drop the self-rearming timer */
    for (uint64_t id = 1; id < 100; id++)
        lt_timer_cancel(L, id);

    lt_timer_start(L, 0, nested_cb, NULL);
    lt_loop_step(L, 0);
    OK(nested_rc == -1 && nested_errno == EBUSY, "nested lt_loop_step is refused with EBUSY");

    pthread_t th;
    pthread_create(&th, NULL, waker, L);
    t0 = tap_now();
    lt_loop_step(L, 5000);
    double waited = tap_now() - t0;
    pthread_join(th, NULL);
    OK(waited >= 30 && waited < 2000, "lt_loop_wake from another thread ends a blocking step (%.0f ms)", waited);
    t0 = tap_now();
    lt_loop_step(L, 0);
    OK(tap_now() - t0 < 5 * tap_slow(), "the wake is drained");

    OK(lt_loop_fd(L) == fd, "epoll fd unchanged");

    int freed = 0;
    lt_timer_start(L, 0, free_cb, &freed);
    lt_timer_start(L, 0, rec_cb, (void *)"y"); /* same step, after free_cb: must not run */
    norder = 0;
    lt_loop_step(L, 0);
    OK(freed == 1 && norder == 0, "lt_loop_free inside a callback defers and stops dispatch");

    /* free with timers pending */
    lt_loop *L2 = lt_loop_new();
    lt_timer_start(L2, 1000, rec_cb, (void *)"q");
    lt_loop_free(L2);
    OK(1, "lt_loop_free with pending timers");
    return tap_done();
}
