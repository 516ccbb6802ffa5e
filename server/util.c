/* util.c - small helpers of the local server: clock, ids, encodings, HMAC. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include "srv.h"

int64_t srv_now_ms(void)
{
    /* One global clock that never goes backwards, so every socket's
     * timestamps are non-decreasing and the event log is ordered. */
    static int64_t last;
    struct timespec ts;
    int64_t ms;
    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (ms < last) ms = last;
    last = ms;
    return ms;
}

void srv_iso(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(ms % 1000 + 1000) % 1000);
    memcpy(out, tmp, 31);
    out[31] = 0;
}

int srv_parse_iso(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, n = 0, frac = 0, digits = 0;
    const char *p;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) return 0;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return 0;
    p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits < 3) {
            frac *= 10;
            digits++;
        }
    }
    if (*p != 'Z' && strcmp(p, "+00:00") != 0) return 0;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 1;
}

void srv_random_hex(char *out, size_t bytes)
{
    unsigned char buf[64];
    size_t i, got = 0;
    if (bytes > sizeof buf) bytes = sizeof buf;
    while (got < bytes) {
        ssize_t r = getrandom(buf + got, bytes - got, 0);
        if (r > 0) got += (size_t)r;
    }
    for (i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", buf[i]);
    out[2 * bytes] = 0;
}

void srv_uuid(char out[37])
{
    char h[33];
    srv_random_hex(h, 16);
    h[12] = '4';
    h[16] = "89ab"[h[16] % 4];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

int srv_is_uuid(const char *s, size_t n)
{
    size_t i;
    if (n != 36) return 0;
    for (i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* Layer took any user id its application chose: spaces, '*', letters of any script.
 * Refused: empty, over 128 bytes, not UTF-8, control characters, '/' and '\\' and
 * "." or ".." (proxies decode %2F, and a path segment must not mean another path). */
int srv_valid_user_id(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > 128) return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') return 0;
    }
    return jv_utf8_valid(s, n, NULL);
}

/* layer-websdk's strictEncodeURI, the id it gives its own user after login (it says
 * Layer's server encodes so): letters, digits and -_.* stay; every other byte is %XX. */
void srv_url_encode(jbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.*", c)) {
            jbuf_putc(b, (char)c);
        } else {
            char t[4];
            snprintf(t, sizeof t, "%%%02X", c);
            jbuf_putn(b, t, 3);
        }
    }
}

void srv_hmac256(const char *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    unsigned int olen = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &olen);
}

int srv_ct_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    size_t i;
    for (i = 0; i < n; i++) d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}
