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
 */
#ifndef LAYER_LOOP_H
#define LAYER_LOOP_H

#include "api.h"

#include <stdint.h>

LAYER_BEGIN_DECLS

typedef struct lt_loop lt_loop;

/* Log levels passed to the log callback (lws errors/warnings, our own notes). */
enum { LT_LOG_ERR = 1, LT_LOG_WARN = 2, LT_LOG_INFO = 4 };
typedef void (*lt_log_cb)(void *ud, int level, const char *msg);

lt_loop *lt_loop_new(void); /* NULL + errno on failure */
/* Closes every request, socket and timer without calling their callbacks.
 * Called from inside a callback, the free happens at the end of that step. */
void lt_loop_free(lt_loop *loop);
int lt_loop_fd(lt_loop *loop); /* epoll fd; poll it for readability */
/* ms until the loop needs lt_loop_step without fd activity: 0 = work pending,
 * -1 = nothing scheduled. */
int lt_loop_timeout_ms(lt_loop *loop);
/* One pass: epoll_wait up to timeout_ms (0 = never block; <0 = until the loop
 * needs service; a positive value is cut to lt_loop_timeout_ms), then curl,
 * lws, due timers and callbacks. Returns 0, or -1 with errno (EBUSY when
 * called from inside one of its own callbacks). */
int lt_loop_step(lt_loop *loop, int timeout_ms);
int lt_loop_wake(lt_loop *loop); /* thread-safe; makes the fd readable */
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
uint64_t lt_timer_start(lt_loop *loop, int64_t ms, lt_timer_cb cb, void *ud); /* 0 on OOM */
int lt_timer_cancel(lt_loop *loop, uint64_t id);                              /* 1 if it was pending, else 0 */
int64_t lt_now_ms(void);                                                      /* CLOCK_MONOTONIC in ms */

/* ---- for http.c / ws.c only: a "service" plugs into the loop ----------- */
typedef struct lt_service_vt {
    void (*on_fd)(void *ud, int fd, uint32_t epoll_events); /* a watched fd is ready */
    void (*run)(void *ud);                                  /* once per step after fd dispatch; may call user code */
    int (*timeout_ms)(void *ud);                            /* same meaning as lt_loop_timeout_ms */
    void (*destroy)(void *ud);                              /* at lt_loop_free */
} lt_service_vt;

/* Registers ud under vt (one per vt); returns its slot or -1. */
int lt_loop_add_service(lt_loop *loop, const lt_service_vt *vt, void *ud);
void *lt_loop_service(lt_loop *loop, const lt_service_vt *vt); /* ud or NULL */
/* Watch fd for EPOLLIN/EPOLLOUT on behalf of a slot; events 0 removes it
 * (ENOENT/EBADF ignored: the fd may already be closed). */
int lt_loop_watch(lt_loop *loop, int slot, int fd, uint32_t events);
int lt_loop_in_step(lt_loop *loop); /* nonzero while stepping */
int lt_loop_closing(lt_loop *loop); /* lt_loop_free is pending: call no user code */

LAYER_END_DECLS
#endif
