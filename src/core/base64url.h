/*
 * base64url.h - base64url (RFC 4648 section 5, unpadded), once: the dev
 * token signer (src/lua/ldev.c), the identity token reader behind
 * lua/layer/ids.lua, and the local server's JWT code (server/util.c) share it.
 */
#ifndef LAYER_BASE64URL_H
#define LAYER_BASE64URL_H

#include <stddef.h>

/* Characters the unpadded encoding of n bytes takes. */
static inline size_t b64url_encoded_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }

/* Encodes n bytes into out (b64url_encoded_len(n) + 1 bytes, NUL-terminated);
 * returns the length written. */
static inline size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = abc[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out[o++] = abc[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static inline int b64url_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62; /* '+' and '/': tokens some signers pad and encode plainly */
    if (c == '_' || c == '/') return 63;
    return -1;
}

/* Decodes n characters into out (at least n * 3 / 4 bytes); 0 on a character
 * outside the alphabet. Reads plain base64 and '=' padding too, so the client
 * and the local server read a token alike. Trailing bits that make no whole
 * byte are dropped. */
static inline int b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outn)
{
    size_t i, o = 0;
    unsigned acc = 0;
    int bits = 0;
    while (n > 0 && in[n - 1] == '=') n--;
    for (i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return 0;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outn = o;
    return 1;
}

#endif
