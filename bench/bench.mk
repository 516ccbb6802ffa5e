# bench.mk - `make bench`: the benchmarks of docs/performance.md (figures and ratios, not tests).
# Included by the top-level Makefile; needs what `make deps` installs (lua5.4, luajit, lua-cjson,
# node + npm). layer-patch@1.2.1 is installed into bench/node by bench/run-patch-engine.

BENCH_OUT ?= $(BUILD)/bench
BENCH_ROUNDS ?= 3
BENCH_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;"

.PHONY: bench bench-streams bench-patch-engine bench-decode-apply

bench: bench-patch-engine bench-decode-apply

bench-streams: $(BENCH_OUT)/frames.txt

# One rule writes both workload files.
$(BENCH_OUT)/frames.txt: bench/gen-streams.lua
	lua5.4 bench/gen-streams.lua $(BENCH_OUT)

bench-patch-engine: bench-streams
	BENCH_OUT=$(BENCH_OUT) CC="$(CC)" CFLAGS="$(CFLAGS)" bench/run-patch-engine $(BENCH_ROUNDS)

# Both interpreters, each with its own build of the module.
bench-decode-apply: bench-streams
	$(MAKE) --no-print-directory all LUA=5.4
	$(MAKE) --no-print-directory all LUA=jit
	$(BENCH_ENV) LUA_CPATH="$(BUILD)/5.4/?.so;;" lua5.4 bench/decode_apply.lua $(BENCH_OUT)/frames.txt
	$(BENCH_ENV) LUA_CPATH="$(BUILD)/jit/?.so;;" luajit bench/decode_apply.lua $(BENCH_OUT)/frames.txt
