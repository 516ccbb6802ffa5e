# Makefile - development build of the layer Lua module, its C core and the local server.
#
#   make                 build the module for Lua 5.4 (build/5.4/layer/core.so)
#   make LUA=5.1         ... for 5.1, 5.2, 5.3 or LUA=jit (LuaJIT 2.1)
#   make test            run the spec suite on one Lua (LUA=...)
#   make test-all        run it on 5.1, 5.2, 5.3, 5.4 and LuaJIT
#   make asan            spec suite with AddressSanitizer + UBSan (clang)
#   make fuzz            run every libFuzzer target for FUZZ_SECONDS each
#   make bench           benchmarks (prints ratios; see docs/performance.md)
#   make deps            install the Debian 12 packages everything needs
#   make check           everything CI runs; prints "N passed, N failed" last
#   make demo            the decoder / patch / cache demo (examples/demo.lua)
#   make check-openresty the OpenResty example in nginx, with its latency against the C transport
#   make reference       docs/reference.md from lua/layer/meta.lua (check-reference: is it current?)
#   make check-sources   every build's source list against CORE_SRC and the tree (scripts/check-sources)
#
# LuaRocks does not use this file: rockspec/ builds with the builtin backend.

LUA ?= 5.4
CC ?= cc
BUILD ?= build
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
STRICT ?= -Werror
PKG_CONFIG ?= pkg-config

ifeq ($(LUA),jit)
  # OpenResty's LuaJIT 2.1 (libluajit2-5.1-dev; scripts/install-deps says why)
  LUA_PC = luajit
  LUA_BIN = luajit
else
  LUA_PC = lua$(LUA)
  LUA_BIN = lua$(LUA)
endif
LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC))

OUT = $(BUILD)/$(LUA)
# The one list of the core's files: fuzz.mk, ctest.mk, server.mk and the rock
# take theirs from it; scripts/check-sources checks them and this against src/core.
CORE_SRC = src/core/json.c src/core/patch.c src/core/packet.c src/core/cache.c src/core/session.c \
    src/core/loop.c src/core/http.c src/core/ws.c src/core/proxy.c src/core/resolve.c src/core/driver.c \
    src/core/state.c
CORE_HDR = $(wildcard src/core/*.h)
BIND_SRC = $(wildcard src/lua/*.c)
BIND_HDR = $(wildcard src/lua/*.h)
MODULE = $(OUT)/layer/core.so
MODULE_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl libwebsockets sqlite3)
MODULE_LIBS = $(shell $(PKG_CONFIG) --libs libcurl libwebsockets libcrypto sqlite3) -lm -lpthread

BUSTED = /usr/bin/busted
LUA_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(OUT)/?.so;;" LAYER_BUILD="$(BUILD)"

.DEFAULT_GOAL := all
.PHONY: all test test-all check run demo examples embed asan fuzz bench deps clean check-core-isolation rock-build ngx-module check-openresty

# Parts of the tree add their own targets (and TEST_DEPS) here.
-include fuzz/fuzz.mk
-include bench/bench.mk
-include server/server.mk
-include spec/c/ctest.mk

all: $(MODULE)

$(MODULE): $(CORE_SRC) $(CORE_HDR) $(BIND_SRC) $(BIND_HDR)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) $(STRICT) -fPIC -fvisibility=hidden -shared \
	    -Isrc/core $(LUA_CFLAGS) $(MODULE_CFLAGS) $(CORE_SRC) $(BIND_SRC) -o $@ $(MODULE_LIBS)

# nginx's Lua module runs OpenResty's LuaJIT and no sanitizer runtime, so the
# module it loads is a plain LuaJIT build whatever CC and CFLAGS say.
NGX_MODULE = $(BUILD)/ngx/layer/core.so
ngx-module: $(NGX_MODULE)
$(NGX_MODULE): $(CORE_SRC) $(CORE_HDR) $(BIND_SRC) $(BIND_HDR)
	@mkdir -p $(dir $@)
	cc -std=gnu99 -O2 -g $(WARN) $(STRICT) -fPIC -fvisibility=hidden -shared \
	    -Isrc/core $(shell $(PKG_CONFIG) --cflags luajit) $(MODULE_CFLAGS) $(CORE_SRC) $(BIND_SRC) -o $@ $(MODULE_LIBS)

# LuaRocks builds through this (rockspec/, build type "command"): the Lua
# headers and flags are the ones LuaRocks was asked for, not pkg-config's.
ROCK_OUT = build/rock
rock-build:
	@mkdir -p $(ROCK_OUT)/layer
	$(CC) -std=gnu99 $(ROCK_CFLAGS) -fPIC -fvisibility=hidden $(ROCK_LIBFLAG) \
	    -Isrc/core -I$(ROCK_LUA_INCDIR) $(MODULE_CFLAGS) $(CORE_SRC) $(BIND_SRC) -o $(ROCK_OUT)/layer/core.so $(MODULE_LIBS)
	$(MAKE) --no-print-directory server BUILD=$(ROCK_OUT) CFLAGS="$(ROCK_CFLAGS)"

# The core must stay free of Lua: the server links it as well.
check-core-isolation:
	@! grep -n 'lua\.h\|lauxlib\.h\|lualib\.h' src/core/*.c src/core/*.h

test: all check-core-isolation ngx-module $(TEST_DEPS)
	$(LUA_ENV) $(LUA_BIN) $(BUSTED) $(BUSTED_ARGS) spec

test-all:
	@for v in 5.1 5.2 5.3 5.4 jit; do $(MAKE) --no-print-directory test LUA=$$v || exit 1; done

asan:
	# Module and a minimal lua5.4 runner (fuzz/lua-asan.c) built by clang with
	# ASan+UBSan; the whole suite runs under it with leak checking on.
	# fuzz/lsan.supp lists what is suppressed and why.
	$(MAKE) --no-print-directory all build/asan/lua-asan LUA=5.4 BUILD=build/asan CC=clang \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(MAKE) --no-print-directory test LUA=5.4 BUILD=build/asan CC=clang LUA_BIN=build/asan/lua-asan \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

deps:
	./scripts/install-deps

# The README's test command: every Lua, sanitizers, fuzzers; ends with the total.
check:
	./scripts/check

# A C host embedding Lua that pumps the client once per 16 ms frame.
examples: $(BUILD)/examples/embed_host
$(BUILD)/examples/embed_host: examples/embed_host.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(CFLAGS) $(WARN) $(STRICT) $(shell $(PKG_CONFIG) --cflags lua5.4) $< -o $@ \
	    $(shell $(PKG_CONFIG) --libs lua5.4) -lm

embed: all server examples
	$(LUA_ENV) $(BUILD)/examples/embed_host examples/embed_frame.lua 5

# The OpenResty example against the local server, timed against the C transport.
OPENRESTY_N ?= 200
check-openresty: all server ngx-module
	$(MAKE) --no-print-directory all LUA=jit
	$(LUA_ENV) lua5.4 scripts/check-openresty.lua $(OPENRESTY_N)

# The README's main command: the local server, an echo bot and a person.
run: all server
	$(LUA_ENV) $(LUA_BIN) examples/local_demo.lua

demo: all
	$(LUA_ENV) $(LUA_BIN) examples/demo.lua

# The API reference is generated from the LuaLS annotations (lua/layer/meta.lua).
.PHONY: reference check-reference check-sources
reference:
	lua5.4 scripts/gen-reference.lua lua/layer/meta.lua docs/reference.md
check-reference:
	@lua5.4 scripts/gen-reference.lua lua/layer/meta.lua - | diff -u docs/reference.md - \
	    || { echo "docs/reference.md is stale: run make reference"; exit 1; }
check-sources:
	scripts/check-sources

# .clang-format over the core, the bindings and the server; scripts/check-format checks it.
.PHONY: format check-format
format:
	clang-format -i --style=file src/core/*.[ch] src/lua/*.[ch] server/*.[ch]
check-format:
	scripts/check-format

clean:
	rm -rf $(BUILD)
