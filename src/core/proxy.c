/* proxy.c - proxy choice and proxy URL parsing for WebSockets (see proxy.h). */
#include "proxy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The entry [s, s+n) of a no_proxy list against host (case-insensitive):
 * the host itself or any name under it; a leading dot means the same. */
static int entry_matches(const char *s, size_t n, const char *host, size_t hlen)
{
    if (n && s[0] == '.') {
        s++;
        n--;
    }
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { /* [::1] */
        s++;
        n -= 2;
    }
    if (!n) return 0;
    if (hlen == n) return strncasecmp(host, s, n) == 0;
    return hlen > n && host[hlen - n - 1] == '.' && strncasecmp(host + hlen - n, s, n) == 0;
}

int lt_proxy_excluded(const char *no_proxy, const char *host)
{
    size_t hlen = strlen(host);
    const char *p = no_proxy;
    if (!p) return 0;
    while (hlen && host[hlen - 1] == '.') hlen--; /* "example.com." */
    while (*p) {
        size_t n;
        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n == 1 && *p == '*') return 1;
        if (n && entry_matches(p, n, host, hlen)) return 1;
        p += n;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out (size cap); 0 if it does not fit or is malformed. */
static int decode_into(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, w = 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return 0;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return 0;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (!c || w + 1 >= cap) return 0;
        out[w++] = c;
    }
    out[w] = '\0';
    return 1;
}

/* "[http://][user[:password]@]host[:port][/]" */
static int parse_proxy(const char *url, lt_proxy *out, const char **err)
{
    const char *p = url, *sep = strstr(url, "://"), *end, *at, *hs, *he, *port = NULL;
    memset(out, 0, sizeof *out);
    if (sep) {
        if ((size_t)(sep - url) != 4 || strncasecmp(url, "http", 4) != 0) {
            *err = "only http:// proxies can carry the WebSocket (https:// and socks proxies are not supported)";
            return -1;
        }
        p = sep + 3;
    }
    end = p + strcspn(p, "/?#");
    at = NULL;
    for (hs = p; hs < end; hs++)
        if (*hs == '@') at = hs;
    if (at) {
        if (!decode_into(p, (size_t)(at - p), out->auth, sizeof out->auth)) {
            *err = "proxy user name and password are too long or badly encoded";
            return -1;
        }
        p = at + 1;
    }
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he) {
            *err = "proxy address has an unclosed [";
            return -1;
        }
        if (he + 1 < end) {
            if (he[1] != ':') {
                *err = "proxy address has text after ]";
                return -1;
            }
            port = he + 2;
        }
    } else {
        hs = p;
        he = memchr(p, ':', (size_t)(end - p));
        if (he)
            port = he + 1;
        else
            he = end;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof out->host) {
        *err = "proxy host is empty or too long";
        return -1;
    }
    memcpy(out->host, hs, (size_t)(he - hs));
    out->host[he - hs] = '\0';
    out->port = 1080;
    if (port && port < end) {
        long v = 0;
        const char *q;
        for (q = port; q < end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535) {
                *err = "proxy port is not a number from 1 to 65535";
                return -1;
            }
        }
        if (v < 1) {
            *err = "proxy port is not a number from 1 to 65535";
            return -1;
        }
        out->port = (int)v;
    }
    return 1;
}

int lt_proxy_for(const char *explicit_proxy, int tls, const char *host, lt_proxy *out, const char **err)
{
    const char *url = explicit_proxy, *no_proxy;
    *err = NULL;
    if (!url) {
        url = tls ? env_nonempty("https_proxy") : env_nonempty("http_proxy");
        if (!url && tls) url = env_nonempty("HTTPS_PROXY");
        if (!url) url = env_nonempty("all_proxy");
        if (!url) url = env_nonempty("ALL_PROXY");
    }
    if (!url || !*url) return 0;
    no_proxy = env_nonempty("no_proxy");
    if (!no_proxy) no_proxy = env_nonempty("NO_PROXY");
    if (lt_proxy_excluded(no_proxy, host)) return 0;
    return parse_proxy(url, out, err);
}
