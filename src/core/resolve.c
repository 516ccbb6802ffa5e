/*
 * resolve.c - asynchronous getaddrinfo on a detached thread (see resolve.h).
 *
 * Chosen over getaddrinfo_a: no SIGEV_NONE polling, a readiness fd that fits
 * the epoll set, and a thread that owns nothing but its request (refcounted,
 * so the owner can walk away from a slow lookup without blocking).
 */
#define _GNU_SOURCE
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct lt_resolve {
    int refs; /* owner + thread, atomic */
    int done; /* atomic; set after addr/rc are written */
    int efd;
    int rc; /* getaddrinfo result */
    char addr[INET6_ADDRSTRLEN];
    char host[];
};

int lt_resolve_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void unref(lt_resolve *r)
{
    if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(r->efd);
        free(r);
    }
}

static void *worker(void *arg)
{
    lt_resolve *r = arg;
    struct addrinfo hints, *res = NULL, *pick = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int rc = getaddrinfo(r->host, NULL, &hints, &res);
    if (rc == 0) {
        for (struct addrinfo *a = res; a; a = a->ai_next)
            if (a->ai_family == AF_INET) {
                pick = a;
                break;
            }
        if (!pick) pick = res;
        const void *src = pick->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                                                     : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
        if (!inet_ntop(pick->ai_family, src, r->addr, sizeof r->addr)) rc = EAI_FAIL;
        freeaddrinfo(res);
    }
    r->rc = rc;
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t w = write(r->efd, &one, sizeof one);
    (void)w;
    unref(r);
    return NULL;
}

lt_resolve *lt_resolve_start(const char *host, int *fd, lt_error *err)
{
    size_t n = strlen(host);
    lt_resolve *r = calloc(1, sizeof *r + n + 1);
    if (!r) {
        lt_error_oom(err);
        return NULL;
    }
    memcpy(r->host, host, n + 1);
    r->refs = 2;
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0) {
        lt_error_sys(err, errno, "eventfd");
        free(r);
        return NULL;
    }
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    /* The host's signal handlers must never run on our thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int e = pthread_create(&t, &at, worker, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    if (e) {
        lt_error_sys(err, e, "pthread_create");
        close(r->efd);
        free(r);
        return NULL;
    }
    *fd = r->efd;
    return r;
}

int lt_resolve_poll(lt_resolve *r, char *addr, size_t addrlen, const char **err)
{
    if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) return 0;
    *err = NULL;
    if (r->rc != 0)
        *err = gai_strerror(r->rc);
    else if (strlen(r->addr) >= addrlen)
        *err = "address too long";
    else
        strcpy(addr, r->addr);
    return 1;
}

void lt_resolve_release(lt_resolve *r)
{
    if (r) unref(r);
}
