/*
 * api.h - the bracket around every core header's declarations: hidden
 * visibility, so a shared module built from the core exports nothing of it
 * even when a build passes no -fvisibility, and C linkage for C++. It also
 * states the core's one error convention, which every header follows.
 *
 * Errors in the core:
 *  - A call that can fail returns 0 or NULL (a count or id: -1 or 0, said in
 *    its header) and, when the caller needs the reason, fills an error the
 *    caller passed: the module's error struct (jv_error, pkt_error,
 *    lp_error, lc_error, lt_error) or a char buffer with its length. Nothing is printed, nothing
 *    aborts, errno is not the channel.
 *  - Running out of memory is an error like any other, never a silent drop
 *    or a half-made result: the call fails whole, its message says "out of
 *    memory", and the error struct says so too (out_of_memory set; lt_error's
 *    code LT_E_OOM), so a caller tells it from bad input without reading the
 *    text (hiredis's REDIS_ERR_OOM is the model).
 *  - What happens later, not inside a call (the session engine's answers,
 *    packets, timeouts), is reported as an event: LS_EV_ERROR, whose number
 *    is LS_ERROR_CLIENT, LS_ERROR_TRANSPORT or LS_ERROR_OUT_OF_MEMORY, or a
 *    failed LS_EV_RESPONSE for a request. An event the session cannot
 *    allocate is replaced by an LS_ERROR_OUT_OF_MEMORY event made from memory
 *    set aside for it (session.c, out_of_memory), so a waiting caller or
 *    handler is always told; a lifecycle event (connected, ...) is owed and
 *    delivered late instead (session.h).
 *  - The transport (loop.h, http.h, ws.h, resolve.h) fills an lt_error
 *    (loop.h): a code (LT_E_OOM, LT_E_SYS with the failed call's errno in
 *    sys_errno, LT_E_INVAL, LT_E_STATE, LT_E_LIMIT, LT_E_LIB) and a message
 *    such as "epoll_create1: Too many open files". What fails after a call
 *    has returned (DNS, a refused connect, TLS, a dropped socket) is a
 *    callback: lt_http_resp.error with error_msg, lt_ws_opts.on_error or
 *    on_close, never lost for want of memory. The driver (driver.h) turns
 *    those into engine inputs, so they reach the application as failed
 *    LS_EV_RESPONSEs, disconnects and LS_EV_ERROR events, and its own calls
 *    take a char buffer for what ends up as the Lua error.
 */
#ifndef LAYER_API_H
#define LAYER_API_H

#if defined(__GNUC__)
#define LAYER_HIDE_BEGIN _Pragma("GCC visibility push(hidden)")
#define LAYER_HIDE_END _Pragma("GCC visibility pop")
#else
#define LAYER_HIDE_BEGIN
#define LAYER_HIDE_END
#endif

/* clang-format reads the unbalanced braces below as code */
/* clang-format off */
#ifdef __cplusplus
#define LAYER_BEGIN_DECLS LAYER_HIDE_BEGIN extern "C" {
#define LAYER_END_DECLS } LAYER_HIDE_END
#else
#define LAYER_BEGIN_DECLS LAYER_HIDE_BEGIN
#define LAYER_END_DECLS LAYER_HIDE_END
#endif
/* clang-format on */

#endif
