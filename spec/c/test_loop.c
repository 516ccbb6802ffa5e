/* test_loop.c - lt_loop: stable epoll fd, timers, wake, step semantics, reentrancy, and the
 * lt_error its calls fill when they fail. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "loop.h"
#include "tap.h"

static char order[16];
static int norder;

static void rec_cb(lt_loop *L, void *ud) { order[norder++] = *(const char *)ud; }

static int zero_fired;
static void zero_again(lt_loop *L, void *ud)
{
    zero_fired++;
    lt_timer_start(L, 0, zero_again, ud, NULL); /* must wait for the next step */
}

static int nested_rc;
static lt_error nested_err;
static void nested_cb(lt_loop *L, void *ud) { nested_rc = lt_loop_step(L, 0, &nested_err); }

static void free_cb(lt_loop *L, void *ud)
{
    *(int *)ud = 1;
    lt_loop_free(L); /* deferred to the end of the step */
    lt_timer_start(L, 0, rec_cb, "z", NULL); /* harmless: freed with the loop */
}

static void *waker(void *ud)
{
    usleep(50 * 1000);
    lt_loop_wake(ud, NULL);
    return NULL;
}

int main(void)
{
    tap_watchdog(30);
    lt_loop *L = lt_loop_new(NULL);
    OK(L != NULL, "lt_loop_new");
    int fd = lt_loop_fd(L);
    OK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "epoll fd is valid and close-on-exec");
    OK(lt_loop_timeout_ms(L) == -1, "nothing scheduled: timeout -1");

    double t0 = tap_now();
    OK(lt_loop_step(L, 0, NULL) == 0 && tap_now() - t0 < 5 * tap_slow(), "step(0) on an idle loop returns at once");

    static const char *names = "ABCDE";
    lt_timer_start(L, 30, rec_cb, (void *)(names + 0), NULL);
    lt_timer_start(L, 10, rec_cb, (void *)(names + 1), NULL);
    lt_timer_start(L, 20, rec_cb, (void *)(names + 2), NULL);
    lt_timer_start(L, 10, rec_cb, (void *)(names + 3), NULL);
    uint64_t e = lt_timer_start(L, 15, rec_cb, (void *)(names + 4), NULL);
    OK(e != 0, "timer ids are non-zero");
    OK(lt_timer_cancel(L, e) == 1 && lt_timer_cancel(L, e) == 0, "cancel returns 1 then 0");
    int t = lt_loop_timeout_ms(L);
    OK(t >= 0 && t <= 10, "timeout reflects the earliest timer (%d ms)", t);
    t0 = tap_now();
    while (norder < 4 && tap_now() - t0 < 2000)
        lt_loop_step(L, -1, NULL);
    order[norder] = 0;
    OK(strcmp(order, "BDCA") == 0, "timers fire in deadline order, ties in start order (%s)", order);
    OK(tap_now() - t0 >= 20, "step(-1) waited for the timers (%.0f ms)", tap_now() - t0);
    OK(lt_loop_timeout_ms(L) == -1, "no timers left");

    lt_timer_start(L, 0, zero_again, NULL, NULL);
    lt_loop_step(L, 0, NULL);
    OK(zero_fired == 1, "a 0 ms timer started by a timer waits for the next step");
    OK(lt_loop_timeout_ms(L) == 0, "... and makes timeout 0");
    lt_loop_step(L, 0, NULL);
    OK(zero_fired == 2, "... and fires on the next step");
    /* drop the self-rearming timer */
    for (uint64_t id = 1; id < 100; id++)
        lt_timer_cancel(L, id);

    lt_timer_start(L, 0, nested_cb, NULL, NULL);
    lt_loop_step(L, 0, NULL);
    OK(nested_rc == -1 && nested_err.code == LT_E_STATE && strstr(nested_err.msg, "inside"),
       "nested lt_loop_step is refused: LT_E_STATE (%s)", nested_err.msg);

    pthread_t th;
    pthread_create(&th, NULL, waker, L);
    t0 = tap_now();
    lt_loop_step(L, 5000, NULL);
    double waited = tap_now() - t0;
    pthread_join(th, NULL);
    OK(waited >= 30 && waited < 2000, "lt_loop_wake from another thread ends a blocking step (%.0f ms)", waited);
    t0 = tap_now();
    lt_loop_step(L, 0, NULL);
    OK(tap_now() - t0 < 5 * tap_slow(), "the wake is drained");

    OK(lt_loop_fd(L) == fd, "epoll fd unchanged");

    int freed = 0;
    lt_timer_start(L, 0, free_cb, &freed, NULL);
    lt_timer_start(L, 0, rec_cb, (void *)"y", NULL); /* same step, after free_cb: must not run */
    norder = 0;
    lt_loop_step(L, 0, NULL);
    OK(freed == 1 && norder == 0, "lt_loop_free inside a callback defers and stops dispatch");

    /* free with timers pending */
    lt_loop *L2 = lt_loop_new(NULL);
    lt_timer_start(L2, 1000, rec_cb, (void *)"q", NULL);
    lt_loop_free(L2);
    OK(1, "lt_loop_free with pending timers");

    /* errors come back in the lt_error, whatever errno says */
    static const lt_service_vt vt_a = {NULL, NULL, NULL, NULL}, vt_b = {NULL, NULL, NULL, NULL},
                               vt_c = {NULL, NULL, NULL, NULL}, vt_d = {NULL, NULL, NULL, NULL},
                               vt_e = {NULL, NULL, NULL, NULL};
    lt_error err;
    memset(&err, 0, sizeof err);
    L2 = lt_loop_new(&err);
    int slot = lt_loop_add_service(L2, &vt_a, NULL, &err);
    OK(slot == 0 && err.code == LT_E_OK, "a service gets slot 0, the error untouched");
    int pipefd[2];
    OK(pipe(pipefd) == 0, "a pipe to watch");
    OK(lt_loop_watch(L2, slot, pipefd[0], EPOLLIN, &err) == 0, "watching a pipe");
    close(pipefd[0]);
    close(pipefd[1]);
    errno = 0;
    OK(lt_loop_watch(L2, slot, pipefd[0], EPOLLIN, &err) == -1 && err.code == LT_E_SYS && err.sys_errno == EBADF,
       "watching a closed fd: LT_E_SYS with sys_errno EBADF (%d)", err.sys_errno);
    OK(strstr(err.msg, "epoll_ctl") && strstr(err.msg, strerror(EBADF)), "... and a message naming the call (%s)",
       err.msg);
    OK(lt_loop_watch(L2, slot, pipefd[0], 0, NULL) == 0, "removing a closed fd is not an error");
    OK(lt_loop_watch(L2, 3, 0, EPOLLIN, &err) == -1 && err.code == LT_E_INVAL && err.sys_errno == 0,
       "watching for a slot no service holds: LT_E_INVAL (%s)", err.msg);
    OK(lt_loop_add_service(L2, &vt_a, NULL, &err) == -1 && err.code == LT_E_INVAL,
       "the same service twice: LT_E_INVAL (%s)", err.msg);
    lt_loop_add_service(L2, &vt_b, NULL, NULL);
    lt_loop_add_service(L2, &vt_c, NULL, NULL);
    lt_loop_add_service(L2, &vt_d, NULL, NULL);
    OK(lt_loop_add_service(L2, &vt_e, NULL, &err) == -1 && err.code == LT_E_LIMIT && strstr(err.msg, "slots"),
       "a fifth service: LT_E_LIMIT (%s)", err.msg);
    OK(lt_loop_add_service(L2, &vt_e, NULL, NULL) == -1, "err may be NULL");
    lt_loop_free(L2);

    /* no descriptors left: the loop says so, with the errno of the call that failed */
    struct rlimit rl, low;
    getrlimit(RLIMIT_NOFILE, &rl);
    low = rl;
    low.rlim_cur = 3; /* 0-2 are taken: the next descriptor is over the limit */
    memset(&err, 0, sizeof err);
    OK(setrlimit(RLIMIT_NOFILE, &low) == 0, "descriptor limit lowered to 3");
    L2 = lt_loop_new(&err);
    setrlimit(RLIMIT_NOFILE, &rl);
    OK(L2 == NULL && err.code == LT_E_SYS && err.sys_errno == EMFILE, "lt_loop_new without descriptors: NULL, EMFILE");
    OK(strncmp(err.msg, "epoll_create1: ", 15) == 0 && strstr(err.msg, strerror(EMFILE)), "... message %s", err.msg);
    lt_loop_free(L2);
    return tap_done();
}
