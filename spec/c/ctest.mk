# spec/c/ctest.mk - C tests of the core (the transport: loop, http, ws; the session under
# allocation failure), included by the top Makefile.
#
#   make ctest            build and run every spec/c/test_*.c, printing TAP
#   make ctest-valgrind   the same under valgrind (leaks and errors fail the run)

CTEST_SRC = $(wildcard spec/c/test_*.c)
CTEST_BIN = $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(CTEST_SRC))
# The whole core, from the Makefile's one list (the session tests need more
# than the transport).
CTEST_CORE = $(CORE_SRC)
CTEST_PKGS = libcurl libwebsockets sqlite3
CTEST_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(CTEST_PKGS))
CTEST_LIBS = $(shell $(PKG_CONFIG) --libs $(CTEST_PKGS)) -lm -lpthread
VALGRIND ?= valgrind
CTEST_VALGRIND = $(VALGRIND) -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
    --num-callers=60 --suppressions=spec/c/valgrind.supp

.PHONY: ctest ctest-valgrind ctest-build

ctest-build: $(CTEST_BIN)

$(BUILD)/ctest/%: spec/c/%.c spec/c/tap.h spec/c/failalloc.h $(CTEST_CORE) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) $(STRICT) -Isrc/core -Ispec/c $(CTEST_CFLAGS) \
	    $< $(CTEST_CORE) -o $@ $(CTEST_LIBS)

ctest: $(CTEST_BIN)
	@fail=0; for t in $(CTEST_BIN); do echo "# $$t"; $$t || fail=1; done; \
	if [ $$fail = 0 ]; then echo "# ctest: all passed"; else echo "# ctest: FAILED"; fi; exit $$fail

ctest-valgrind: $(CTEST_BIN)
	@fail=0; for t in $(CTEST_BIN); do echo "# valgrind $$t"; \
	    LT_TEST_SLOW=1 $(CTEST_VALGRIND) $$t || fail=1; done; \
	if [ $$fail = 0 ]; then echo "# ctest-valgrind: all passed"; else echo "# ctest-valgrind: FAILED"; fi; exit $$fail
