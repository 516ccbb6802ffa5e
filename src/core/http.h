/*
 * http.h - asynchronous HTTP(S) requests on an lt_loop, over libcurl's multi
 * SOCKET API. Never blocks: DNS, connect, TLS and transfer all progress from
 * lt_loop_step. TLS verification is on unless a request turns it off.
 */
#ifndef LAYER_HTTP_H
#define LAYER_HTTP_H

#include "api.h"

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

LAYER_BEGIN_DECLS

/* Transport errors, distinct from HTTP status (status is 0 when error != 0). */
typedef enum {
    LT_HTTP_OK = 0,
    LT_HTTP_EDNS,     /* name did not resolve */
    LT_HTTP_ECONNECT, /* refused / unreachable */
    LT_HTTP_ETIMEOUT, /* timeout_ms or connect_timeout_ms elapsed */
    LT_HTTP_ETLS,     /* handshake or certificate verification failed */
    LT_HTTP_ETOOBIG,  /* response body over max_body */
    LT_HTTP_EPROTO,   /* malformed response, connection dropped mid-way */
    LT_HTTP_EOTHER
} lt_http_err;

typedef struct lt_http_req {
    const char *method;         /* NULL = "GET" (or "POST" when body is set) */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" strings */
    size_t nheaders;
    const char *body; /* copied; may be NULL */
    size_t body_len;
    long timeout_ms;         /* whole request; 0 = none */
    long connect_timeout_ms; /* 0 = libcurl default (300 s) */
    size_t max_body;         /* 0 = 64 MiB */
    const char *ca_file;     /* PEM bundle to trust instead of the system one */
    const char *ca_path;     /* directory of hashed CA certs */
    int insecure;            /* 1 = skip peer and host verification (explicit only) */
    const char *proxy;       /* explicit proxy URL; NULL = libcurl's env handling */
    const char *user_agent;  /* NULL = none sent */
    int follow_redirects;    /* 0 = report 3xx as is */
} lt_http_req;

typedef struct lt_http_resp {
    uint64_t id;
    long status;      /* HTTP status, 0 on transport error */
    const char *body; /* NUL-terminated view, valid during the callback */
    size_t body_len;
    lt_http_err error;
    const char *error_msg; /* NULL when error == LT_HTTP_OK */
    int curl_code;         /* raw CURLcode, for logs */
    int os_errno;          /* errno of a failed connect (ECONNREFUSED...), else 0 */
    const void *priv_;     /* header store */
} lt_http_resp;

typedef void (*lt_http_cb)(const lt_http_resp *resp, void *ud);

/* Starts a request; returns its id (never 0), or 0 and fills err: LT_E_INVAL
 * (no url or callback, an option libcurl refuses), LT_E_STATE (the loop is
 * being freed), LT_E_OOM, LT_E_LIB (libcurl could not be set up). The
 * callback runs exactly once from lt_loop_step, unless the request is
 * cancelled or the loop freed first; failures from then on (DNS, connect,
 * TLS...) arrive in it as resp->error and resp->error_msg. It may start,
 * cancel or free anything, including the loop. */
uint64_t lt_http_request(lt_loop *loop, const lt_http_req *req, lt_http_cb cb, void *ud, lt_error *err);
int lt_http_cancel(lt_loop *loop, uint64_t id); /* 1 if cancelled (no callback), else 0 */
size_t lt_http_active(lt_loop *loop);           /* requests not yet reported */

/* Response headers of the final response (after redirects / 100-continue). */
const char *lt_http_header(const lt_http_resp *resp, const char *name); /* case-insensitive, first match */
size_t lt_http_header_count(const lt_http_resp *resp);
int lt_http_header_at(const lt_http_resp *resp, size_t i, const char **name, const char **value);
const char *lt_http_strerror(lt_http_err e);

LAYER_END_DECLS
#endif
