/*
 * proxy.h - which HTTP proxy a WebSocket connection goes through, decided the
 * way libcurl decides it for the REST requests, so that both follow one
 * setting: an explicit proxy, else https_proxy / HTTPS_PROXY (wss://) or
 * http_proxy (ws://; like curl, upper-case HTTP_PROXY is ignored), else
 * all_proxy / ALL_PROXY; hosts in no_proxy / NO_PROXY go direct.
 */
#ifndef LAYER_PROXY_H
#define LAYER_PROXY_H

#include "api.h"

LAYER_BEGIN_DECLS

typedef struct lt_proxy {
    char host[256]; /* name or address, IPv6 without brackets */
    int port;       /* 1080 when the URL gives none, as in libcurl */
    char auth[96];  /* "user:password" (percent-decoded) or "" */
} lt_proxy;

/* explicit_proxy: NULL = the environment, "" = never a proxy.
 * 1 = connect through *out, 0 = connect directly,
 * -1 = the proxy setting cannot be used (*err says why). */
int lt_proxy_for(const char *explicit_proxy, int tls, const char *host, lt_proxy *out, const char **err);

/* 1 if host is covered by a no_proxy list ("*", names, .suffixes, addresses). */
int lt_proxy_excluded(const char *no_proxy, const char *host);

LAYER_END_DECLS

#endif
