/*
 * loop.h - the transport event loop: one private epoll fd, own timers, a
 * cross-thread wake, and the hook that lets http.c and ws.c plug their
 * sockets and deadlines into it.
 *
 * The epoll fd never changes for the loop's lifetime, so a host can watch it
 * (readable = call lt_loop_step) and honour lt_loop_timeout_ms. Nothing here
 * blocks unless the caller passes a positive timeout to lt_loop_step.
 * Only lt_loop_wake is thread-safe; everything else belongs to one thread.
 * No Lua header: the local server links the core too.
 *
 * Errors (api.h): every call of loop.h, http.h, ws.h and resolve.h that can
 * fail takes an lt_error *err last (NULL: the caller needs no reason), fills
 * it on failure only and returns 0, NULL or -1 as its comment says; errno is
 * left as the calls inside happened to leave it. What fails later (a refused
 * connect, a dropped socket) is a callback, not an lt_error.
 */
#ifndef LAYER_LOOP_H
#define LAYER_LOOP_H

#include "api.h"

#include <stdint.h>

LAYER_BEGIN_DECLS

typedef struct lt_loop lt_loop;

enum {
    LT_E_OK = 0,
    LT_E_OOM,   /* out of memory; msg is "out of memory" */
    LT_E_SYS,   /* a system call failed: sys_errno is its errno */
    LT_E_INVAL, /* bad argument: a URL, a header, a missing callback */
    LT_E_STATE, /* not now: a nested step, a socket closing, a loop being freed */
    LT_E_LIMIT, /* a fixed table is full */
    LT_E_LIB    /* libcurl or libwebsockets could not be set up */
};
typedef struct lt_error {
    int code;      /* LT_E_* */
    int sys_errno; /* with LT_E_SYS, else 0 */
    char msg[160]; /* "epoll_create1: Too many open files", "ws: url must be ws:// or wss://" */
} lt_error;

/* Log levels passed to the log callback (lws errors/warnings, our own notes). */
enum { LT_LOG_ERR = 1, LT_LOG_WARN = 2, LT_LOG_INFO = 4 };
typedef void (*lt_log_cb)(void *ud, int level, const char *msg);

lt_loop *lt_loop_new(lt_error *err); /* NULL on failure */
/* Closes every request, socket and timer without calling their callbacks.
 * Called from inside a callback, the free happens at the end of that step. */
void lt_loop_free(lt_loop *loop);
int lt_loop_fd(lt_loop *loop); /* epoll fd; poll it for readability */
/* ms until the loop needs lt_loop_step without fd activity: 0 = work pending,
 * -1 = nothing scheduled. */
int lt_loop_timeout_ms(lt_loop *loop);
/* One pass: epoll_wait up to timeout_ms (0 = never block; <0 = until the loop
 * needs service; a positive value is cut to lt_loop_timeout_ms), then curl,
 * lws, due timers and callbacks. Returns 0, or -1: epoll_wait failed
 * (LT_E_SYS), or called from inside one of its own callbacks (LT_E_STATE). */
int lt_loop_step(lt_loop *loop, int timeout_ms, lt_error *err);
/* Thread-safe; makes the fd readable. 0 or -1 (LT_E_SYS). */
int lt_loop_wake(lt_loop *loop, lt_error *err);
/* Marks a loop that many connections share (ld_hub): ws.c then sizes its lws
 * context for the process's descriptors instead of a handful. Before any use. */
void lt_loop_set_shared(lt_loop *loop);
int lt_loop_shared(const lt_loop *loop);
/* Log sink for the loop (and for lws, whose log hook is process-wide: the
 * most recently set callback of any loop receives lws messages). */
void lt_loop_set_log(lt_loop *loop, lt_log_cb cb, void *ud);
void lt_loop_log(lt_loop *loop, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Timers: one-shot, monotonic clock, fire in deadline order (ties in start
 * order). Ids are never 0 and never reused by a loop. */
typedef void (*lt_timer_cb)(lt_loop *loop, void *ud);
uint64_t lt_timer_start(lt_loop *loop, int64_t ms, lt_timer_cb cb, void *ud, lt_error *err); /* 0 on failure */
int lt_timer_cancel(lt_loop *loop, uint64_t id); /* 1 if it was pending, else 0 */
int64_t lt_now_ms(void);                         /* CLOCK_MONOTONIC in ms */

/* ---- for http.c / ws.c only: a "service" plugs into the loop ----------- */
typedef struct lt_service_vt {
    void (*on_fd)(void *ud, int fd, uint32_t epoll_events); /* a watched fd is ready */
    void (*run)(void *ud);                                  /* once per step after fd dispatch; may call user code */
    int (*timeout_ms)(void *ud);                            /* same meaning as lt_loop_timeout_ms */
    void (*destroy)(void *ud);                              /* at lt_loop_free */
} lt_service_vt;

/* Registers ud under vt (one per vt); returns its slot, or -1 (LT_E_LIMIT:
 * every slot taken, LT_E_INVAL: vt already registered). */
int lt_loop_add_service(lt_loop *loop, const lt_service_vt *vt, void *ud, lt_error *err);
void *lt_loop_service(lt_loop *loop, const lt_service_vt *vt); /* ud or NULL */
/* Watch fd for EPOLLIN/EPOLLOUT on behalf of a slot; events 0 removes it
 * (ENOENT/EBADF ignored: the fd may already be closed). 0, or -1: LT_E_SYS
 * from epoll_ctl (EBADF, ENOMEM, ENOSPC...), LT_E_INVAL for a slot not
 * registered. */
int lt_loop_watch(lt_loop *loop, int slot, int fd, uint32_t events, lt_error *err);
int lt_loop_in_step(lt_loop *loop); /* nonzero while stepping */
int lt_loop_closing(lt_loop *loop); /* lt_loop_free is pending: call no user code */

/* Fill err (when not NULL): a message made from fmt; lt_error_sys appends
 * ": " and the text of sys_errno; lt_error_oom says "out of memory". */
void lt_error_set(lt_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void lt_error_sys(lt_error *err, int sys_errno, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void lt_error_oom(lt_error *err);

LAYER_END_DECLS
#endif
