# server/server.mk - builds the local Layer-compatible server, build/layer-server (included by the top Makefile).

SERVER_SRC = $(wildcard server/*.c)
SERVER_HDR = $(wildcard server/*.h)
SERVER_CORE = $(wildcard src/core/json.c src/core/patch.c)
SERVER_PKGS = libwebsockets sqlite3 libcrypto
SERVER_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(SERVER_PKGS))
SERVER_LIBS = $(shell $(PKG_CONFIG) --libs $(SERVER_PKGS)) -lm
SERVER_BIN = $(BUILD)/layer-server

.PHONY: server
server: $(SERVER_BIN)

$(SERVER_BIN): $(SERVER_SRC) $(SERVER_HDR) $(SERVER_CORE) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) $(STRICT) -Isrc/core -Iserver $(SERVER_CFLAGS) \
	    $(SERVER_SRC) $(SERVER_CORE) -o $@ $(SERVER_LIBS)

# `make test` runs the server specs, so it needs the binary: an extra prerequisite
# added here works even though this file is included after the test rule.
test: server check-cycles

# Like check-core-isolation: no two server files, and no two core or binding files, may depend
# on each other, even through others.
.PHONY: check-cycles
check-cycles:
	@scripts/check-cycles server
	@scripts/check-cycles src/core src/lua

# libFuzzer target over the REST request and WebSocket frame handlers (clang).
#   make fuzz-server [FUZZ_SECONDS=60]
SERVER_FUZZ = $(BUILD)/fuzz/server_fuzz
SERVER_LOGIC = $(filter-out server/main.c,$(SERVER_SRC))
FUZZ_SECONDS ?= 60

$(SERVER_FUZZ): fuzz/server_fuzz.c $(SERVER_LOGIC) $(SERVER_HDR) $(SERVER_CORE)
	@mkdir -p $(dir $@)
	clang -std=gnu99 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) \
	    -Isrc/core -Iserver fuzz/server_fuzz.c $(SERVER_LOGIC) $(SERVER_CORE) -o $@ \
	    $(shell $(PKG_CONFIG) --libs sqlite3 libcrypto) -lm

.PHONY: fuzz-server
fuzz-server: $(SERVER_FUZZ)
	@mkdir -p $(BUILD)/fuzz/server_corpus
	$(SERVER_FUZZ) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/server_corpus fuzz/server_seeds

# Load benchmark: 1,000 WebSocket sessions, conversations of 25 (see server/README.md).
#   make bench-server [SERVER_LOAD_ARGS="--users 1000 --group 25 --seconds 10"]
SERVER_LOAD = $(BUILD)/bench/server_load
SERVER_LOAD_ARGS ?= --users 1000 --group 25 --seconds 10

$(SERVER_LOAD): bench/server_load.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -O2 -g $(WARN) $(STRICT) bench/server_load.c -o $@

.PHONY: bench-server
bench-server: $(SERVER_LOAD) $(SERVER_BIN)
	ulimit -n 8192; $(SERVER_LOAD) --server $(SERVER_BIN) $(SERVER_LOAD_ARGS)
