/* test_proxy.c - proxy choice for WebSockets (proxy.c): environment, no_proxy, URL parsing. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "tap.h"

static void clear_env(void)
{
    const char *names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                           "no_proxy", "NO_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unsetenv(names[i]);
}

int main(void)
{
    lt_proxy px;
    const char *err;
    tap_watchdog(30);
    (void)tap_now;
    (void)tap_slow;
    clear_env();
    OK(lt_proxy_for(NULL, 0, "example.com", &px, &err) == 0, "no settings: direct");

    setenv("HTTP_PROXY", "http://upper:3128", 1);
    OK(lt_proxy_for(NULL, 0, "example.com", &px, &err) == 0, "upper-case HTTP_PROXY is ignored, as libcurl does");
    setenv("http_proxy", "http://lower.example:3128", 1);
    OK(lt_proxy_for(NULL, 0, "example.com", &px, &err) == 1 && !strcmp(px.host, "lower.example") && px.port == 3128,
       "ws:// uses http_proxy (%s:%d)", px.host, px.port);
    OK(lt_proxy_for(NULL, 1, "example.com", &px, &err) == 0, "wss:// does not use http_proxy");
    setenv("HTTPS_PROXY", "secure.example", 1);
    OK(lt_proxy_for(NULL, 1, "example.com", &px, &err) == 1 && !strcmp(px.host, "secure.example") && px.port == 1080,
       "wss:// uses HTTPS_PROXY; no port means 1080 (%d)", px.port);
    setenv("https_proxy", "lower-secure:8443", 1);
    OK(lt_proxy_for(NULL, 1, "example.com", &px, &err) == 1 && !strcmp(px.host, "lower-secure") && px.port == 8443,
       "https_proxy wins over HTTPS_PROXY");
    clear_env();
    setenv("ALL_PROXY", "http://all:1", 1);
    OK(lt_proxy_for(NULL, 1, "example.com", &px, &err) == 1 && !strcmp(px.host, "all"), "ALL_PROXY as the fallback");

    OK(lt_proxy_for("http://u%3Ax:p%40w@[::1]:8080/", 0, "example.com", &px, &err) == 1 && !strcmp(px.host, "::1") &&
           px.port == 8080 && !strcmp(px.auth, "u:x:p@w"),
       "explicit URL: IPv6 in brackets, port, percent-decoded credentials (%s)", px.auth);
    OK(lt_proxy_for("", 0, "example.com", &px, &err) == 0, "explicit \"\" means direct, whatever the environment");
    OK(lt_proxy_for("socks5h://p:1080", 0, "example.com", &px, &err) == -1 && strstr(err, "http://"),
       "socks proxies are refused (%s)", err);
    OK(lt_proxy_for("http://p:0", 0, "example.com", &px, &err) == -1 && strstr(err, "port"), "port 0 is refused");
    OK(lt_proxy_for("http://p:99999", 0, "example.com", &px, &err) == -1, "port 99999 is refused");
    OK(lt_proxy_for("http://p:80x", 0, "example.com", &px, &err) == -1, "a port with letters is refused");
    OK(lt_proxy_for("http://[::1", 0, "example.com", &px, &err) == -1, "an unclosed [ is refused");
    OK(lt_proxy_for("http://u%zz@p:1", 0, "example.com", &px, &err) == -1, "bad percent-encoding is refused");
    OK(lt_proxy_for("http://:8080", 0, "example.com", &px, &err) == -1, "an empty host is refused");

    OK(lt_proxy_excluded("*", "anything.example"), "no_proxy * covers every host");
    OK(lt_proxy_excluded("example.com", "api.Example.COM"), "a domain covers its subdomains, any case");
    OK(lt_proxy_excluded(" .example.com ,other", "example.com"), "a leading dot covers the domain itself");
    OK(!lt_proxy_excluded("example.com", "notexample.com"), "no match on a partial label");
    OK(lt_proxy_excluded("localhost,127.0.0.1", "127.0.0.1"), "addresses match exactly");
    OK(lt_proxy_excluded("[::1]", "::1"), "an IPv6 entry in brackets");
    OK(!lt_proxy_excluded("", "example.com") && !lt_proxy_excluded(NULL, "example.com"), "empty lists cover nothing");
    setenv("NO_PROXY", "example.com", 1);
    OK(lt_proxy_for("http://p:1", 0, "www.example.com", &px, &err) == 0, "NO_PROXY applies to an explicit proxy too");
    clear_env();
    return tap_done();
}
