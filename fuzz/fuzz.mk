# fuzz/fuzz.mk - libFuzzer targets (clang, ASan + UBSan) and the valgrind run
# of the spec suite; included at the end of the top-level Makefile.
#
#   make fuzz-build        build $(BUILD)/fuzz/fuzz_{json,packet,patch}
#   make fuzz-corpus       regenerate the seed corpora (fuzz/make-corpus)
#   make fuzz              run each target for FUZZ_SECONDS (default 60);
#                          fails on any crash, leak, timeout or sanitizer report
#   make valgrind          spec suite on the normal build under valgrind
#
# New inputs found while fuzzing go to $(BUILD)/fuzz/work/<target> (kept
# between runs); the seeds in $(BUILD)/fuzz/corpus and fuzz/corpus are only read.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = json packet patch session
FUZZ_DIR = $(BUILD)/fuzz
FUZZ_CFLAGS = -std=c99 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_ARGS ?= -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict=fuzz/json.dict -artifact_prefix=$(FUZZ_DIR)/artifacts/
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# Only the parts of the core the targets exercise: CORE_SRC also holds the
# transport code, which would pull in libcurl and libwebsockets.
FUZZ_CORE = $(filter %/json.c %/patch.c %/packet.c %/cache.c %/session.c,$(CORE_SRC))
# LeakSanitizer is on (the ASan default); halt_on_error makes UBSan fatal too.
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: fuzz-build fuzz-corpus fuzz valgrind

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_CORE) $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/core $< $(FUZZ_CORE) -o $@ -lm -lpthread

# Seeds are generated with the Lua 5.4 build of our own module (JSON checks).
fuzz-corpus: fuzz/make-corpus
	$(MAKE) --no-print-directory all LUA=5.4
	LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$(BUILD)/5.4/?.so;;" \
	    lua5.4 fuzz/make-corpus $(FUZZ_DIR)/corpus

$(FUZZ_DIR)/corpus/.stamp: fuzz/make-corpus
	$(MAKE) --no-print-directory fuzz-corpus
	@touch $@

fuzz: fuzz-build $(FUZZ_DIR)/corpus/.stamp
	@mkdir -p $(FUZZ_DIR)/artifacts
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/work/$$t $(FUZZ_DIR)/corpus/$$t; \
	    seeds="$(FUZZ_DIR)/corpus/$$t"; \
	    if [ -d fuzz/corpus/$$t ]; then seeds="$$seeds fuzz/corpus/$$t"; fi; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $(FUZZ_ARGS) -max_total_time=$(FUZZ_SECONDS) \
	        $(FUZZ_DIR)/work/$$t $$seeds || exit 1; \
	done

# Any error or leak fails the run. fuzz/valgrind.supp is for the interpreter
# and busted only (it is empty: they free everything before exit); children
# such as the local server are not traced.
VALGRIND ?= valgrind
VALGRIND_ARGS ?= --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --show-leak-kinds=definite,indirect,possible --suppressions=fuzz/valgrind.supp --num-callers=30

valgrind:
	$(MAKE) --no-print-directory test LUA=5.4 LUA_BIN="$(VALGRIND) $(VALGRIND_ARGS) lua5.4"

# The interpreter `make asan` runs busted with (see fuzz/lua-asan.c); built
# with the CFLAGS the asan rule passes, i.e. ASan + UBSan.
$(BUILD)/lua-asan: fuzz/lua-asan.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 $(CFLAGS) $(WARN) $(shell $(PKG_CONFIG) --cflags lua5.4) $< -o $@ \
	    $(shell $(PKG_CONFIG) --libs lua5.4)
