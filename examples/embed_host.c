/*
 * embed_host.c - a game-engine-style host: embeds Lua, loads a script that
 * sets up Layer clients, then calls its frame() function once per 16 ms frame
 * (frame() calls client:step(0)) and reports the frame times it saw.
 *
 *   build/examples/embed_host examples/embed_frame.lua [seconds]
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_until(double t)
{
    double left = t - now_ms();
    if (left > 0) {
        struct timespec ts;
        ts.tv_sec = (time_t)(left / 1000);
        ts.tv_nsec = (long)((left - ts.tv_sec * 1000.0) * 1e6);
        nanosleep(&ts, NULL);
    }
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *script = argc > 1 ? argv[1] : "examples/embed_frame.lua";
    double seconds = argc > 2 ? atof(argv[2]) : 5.0, start, next;
    lua_State *L = luaL_newstate();
    double *frames;
    size_t n = 0, cap = (size_t)(seconds * 1000 / 16) + 16;
    int status = 0;
    luaL_openlibs(L);
    if (luaL_dofile(L, script) != LUA_OK || !lua_isfunction(L, -1)) {
        fprintf(stderr, "embed_host: %s must return a frame function: %s\n", script,
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a function)");
        lua_close(L);
        return 1;
    }
    lua_setglobal(L, "frame");
    frames = calloc(cap, sizeof *frames);
    if (!frames) return 1;
    start = next = now_ms();
    while (n < cap && now_ms() - start < seconds * 1000) {
        double t0, dt;
        next += 16.0;
        t0 = now_ms();
        lua_getglobal(L, "frame");
        if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
            fprintf(stderr, "embed_host: frame failed: %s\n", lua_tostring(L, -1));
            status = 1;
            break;
        }
        dt = now_ms() - t0;
        frames[n++] = dt;
        if (lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1)) { lua_pop(L, 1); break; } /* false: done */
        lua_pop(L, 1);
        sleep_until(next);
    }
    if (n) {
        double worst = 0, sum = 0;
        size_t i;
        for (i = 0; i < n; i++) {
            sum += frames[i];
            if (frames[i] > worst) worst = frames[i];
        }
        qsort(frames, n, sizeof *frames, by_value);
        printf("embed_host: %zu frames of 16 ms; Layer work per frame: mean %.3f ms, p99 %.3f ms, worst %.3f ms\n", n,
               sum / n, frames[(size_t)((double)(n - 1) * 0.99)], worst);
    }
    lua_getglobal(L, "finish");
    if (lua_isfunction(L, -1) && lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "embed_host: finish failed: %s\n", lua_tostring(L, -1));
        status = 1;
    }
    free(frames);
    lua_close(L);
    return status;
}
