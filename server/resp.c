/* resp.c - what every request handler shares: body limits and arguments of a request, a
 * response's life, Layer's error body. */
#include <stdlib.h>
#include <string.h>
#include "srv.h"
#include "render.h"
#include "resp.h"

const jv_limits srv_body_limits = {SRV_MAX_BODY, 32};

void srv_resp_init(srv_resp *r)
{
    memset(r, 0, sizeof *r);
    jbuf_init(&r->body);
    r->layer_count = -1;
}

void srv_resp_free(srv_resp *r)
{
    jbuf_free(&r->body);
    free(r->raw);
    r->raw = NULL;
}

const char *srv_arg(const srv_req *r, const char *name)
{
    size_t n = strlen(name);
    int i;
    for (i = 0; i < r->nargs; i++)
        if (strncmp(r->args[i], name, n) == 0 && r->args[i][n] == '=') return r->args[i] + n + 1;
    return NULL;
}

void ok_empty(srv_resp *r)
{
    r->status = 204;
    r->body.len = 0;
}

void not_found(srv_resp *r, const char *what) { err_resp(r, 404, "not_found", 102, what, NULL); }

void err_resp(srv_resp *r, int status, const char *id, int code, const char *msg, const char *data)
{
    r->status = status;
    r->body.len = 0;
    jbuf_puts(&r->body, "{\"id\":");
    w_str(&r->body, id);
    jbuf_puts(&r->body, ",\"code\":");
    jbuf_int(&r->body, code);
    jbuf_puts(&r->body, ",\"message\":");
    w_str(&r->body, msg);
    jbuf_puts(&r->body, ",\"url\":\"https://developer.layer.com/docs/client/rest#");
    jbuf_puts(&r->body, id);
    jbuf_puts(&r->body, "\",\"data\":");
    jbuf_puts(&r->body, data ? data : "null");
    jbuf_putc(&r->body, '}');
}
