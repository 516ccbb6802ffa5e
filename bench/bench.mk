# bench.mk - `make bench`: the benchmarks of docs/performance.md (figures and ratios, not tests).
# Included by the top-level Makefile; needs what `make deps` installs (lua5.4, luajit, lua-cjson,
# node + npm, libsimdjson-dev for bench-engine-limit's yardstick). layer-patch@1.2.1 is installed into bench/node by bench/run-patch-engine.

BENCH_OUT ?= $(BUILD)/bench
BENCH_ROUNDS ?= 3
BENCH_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;"

.PHONY: bench bench-streams bench-patch-engine bench-decode-apply bench-engine-limit
.PHONY: bench-client bench-client-ingest bench-client-e2e bench-client-scale bench-summary

bench: bench-patch-engine bench-decode-apply bench-engine-limit bench-client

bench-streams: $(BENCH_OUT)/frames.txt

# One rule writes both workload files.
$(BENCH_OUT)/frames.txt: bench/gen-streams.lua
	lua5.4 bench/gen-streams.lua $(BENCH_OUT)

bench-patch-engine: bench-streams
	BENCH_OUT=$(BENCH_OUT) CC="$(CC)" CFLAGS="$(CFLAGS)" bench/run-patch-engine $(BENCH_ROUNDS)

# The engine alone (C, no Lua) against simdjson on the same frames, in MB/s.
bench-engine-limit: bench-streams
	BENCH_OUT=$(BENCH_OUT) CC="$(CC)" CFLAGS="$(CFLAGS)" bench/run-engine-limit $(BENCH_ROUNDS)

# Both interpreters, each with its own build of the module.
bench-decode-apply: bench-streams
	$(MAKE) --no-print-directory all LUA=5.4
	$(MAKE) --no-print-directory all LUA=jit
	$(BENCH_ENV) LUA_CPATH="$(BUILD)/5.4/?.so;;" lua5.4 bench/decode_apply.lua $(BENCH_OUT)/frames.txt
	$(BENCH_ENV) LUA_CPATH="$(BUILD)/jit/?.so;;" luajit bench/decode_apply.lua $(BENCH_OUT)/frames.txt

# The client benchmarks (docs/performance.md section 3): layer.client end to end.
bench-client: bench-client-ingest bench-client-e2e bench-client-scale

bench-client-ingest: bench-streams
	$(MAKE) --no-print-directory all LUA=5.4
	$(MAKE) --no-print-directory all LUA=jit
	for h in message all changes; do \
	  BENCH_HANDLERS=$$h $(BENCH_ENV) LUA_CPATH="$(BUILD)/5.4/?.so;;" lua5.4 bench/client_ingest.lua $(BENCH_OUT)/frames.txt $(BENCH_ROUNDS) || exit 1; \
	  BENCH_HANDLERS=$$h $(BENCH_ENV) LUA_CPATH="$(BUILD)/jit/?.so;;" luajit bench/client_ingest.lua $(BENCH_OUT)/frames.txt $(BENCH_ROUNDS) || exit 1; \
	done

# Runs `npm ci --prefix bench/websdk` (layer-websdk 3.4.18, pinned) when node_modules is missing.
bench-client-e2e: server
	$(MAKE) --no-print-directory all LUA=5.4
	LAYER_BUILD=$(BUILD) $(BENCH_ENV) LUA_CPATH="$(BUILD)/5.4/?.so;;" lua5.4 bench/client_e2e.lua 300 2 30

# 1,000 clients, each on a loop of its own and then all on one layer.loop(), side by side. A loop
# of its own needs about 8 descriptors per client; libwebsockets sizes every context's fd tables
# from this limit, so it also sets part of the memory per client there (docs/performance.md 3.4,
# docs/client.md "Many clients on one loop").
bench-client-scale: server
	$(MAKE) --no-print-directory all LUA=5.4
	ulimit -n 8448; LAYER_BUILD=$(BUILD) $(BENCH_ENV) LUA_CPATH="$(BUILD)/5.4/?.so;;" lua5.4 bench/client_scale.lua 1000 25 5 10

# docs/performance.md's summary table from one run: every row's figures, ratio and verdict.
bench-summary:
	mkdir -p $(BENCH_OUT)
	$(MAKE) --no-print-directory bench 2>&1 | tee $(BENCH_OUT)/bench.log
	lua5.4 bench/summary.lua $(BENCH_OUT)/bench.log
