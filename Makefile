# qc-tools: offline forensics and maintenance of qcow2 images.
#
#   make                 library and tools into bin/
#   make check           every test, then again under ASan+UBSan
#   make demo            the main job end to end on an image it makes
#   make fuzz            libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make bench           speed and memory against qemu-img
#   make install PREFIX=/usr/local

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
BIN      ?= bin
SAN      ?=
PKG_CONFIG ?= pkg-config

DEPS     ?= tools/deps.sh

# The flags pkg-config gives are asked for when a compile or link first
# needs them, never when this file is read: the entry points below install
# missing packages first and then build in a sub-make, which asks pkg-config
# afresh.  (Reading them at parse time would capture the answer from before
# the -dev packages existed.)
PKGS     := zlib libzstd json-c libcrypto
lazy_pkg = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS = $(call lazy_pkg,PKG_CFLAGS,$(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(call lazy_pkg,PKG_LIBS,$(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
RL_LIBS    = $(call lazy_pkg,RL_LIBS,$(PKG_CONFIG) --libs readline 2>/dev/null || echo -lreadline)
CMOCKA_CFLAGS = $(call lazy_pkg,CMOCKA_CFLAGS,$(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   = $(call lazy_pkg,CMOCKA_LIBS,$(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

WARN     := -Wall -Wextra -Werror
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      := -O1
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(SANFLAGS) -Ilib $(PKG_CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS) $(SANFLAGS)

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIBQC    := $(BUILD)/libqc.a
TOOL_SRC := $(wildcard src/qc-*.c)
TOOLS    := $(TOOL_SRC:src/%.c=$(BIN)/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay_%)
HDRS     := $(wildcard lib/*.h)
# tools/crashtest runs this binary
CRASHTEST := $(BIN)/crashtest

.PHONY: all build deps deps-build check check-run check-normal check-san demo fuzz bench install clean tests-build

# Every entry point a user types first makes sure the Debian packages are
# there (tools/deps.sh), then builds in a sub-make that sees them.
all: deps-build
	@$(MAKE) --no-print-directory build

build: $(TOOLS) $(CRASHTEST)

$(BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBQC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# qc-shell: the prompt in src/qc-shell.c, its commands in src/shell_cmd.c;
# the only tool that links readline
SHELL_SRC := src/qc-shell.c src/shell_cmd.c
$(BIN)/qc-shell: $(SHELL_SRC) src/shell_cmd.h $(LIBQC) $(HDRS)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) -o $@ $(SHELL_SRC) $(LIBQC) $(ALL_LDFLAGS) $(PKG_LIBS) $(RL_LIBS)

$(BIN)/%: src/%.c $(LIBQC) $(HDRS)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBQC) $(ALL_LDFLAGS) $(PKG_LIBS)

$(CRASHTEST): tools/crashtest.c $(LIBQC) $(HDRS)
	@mkdir -p $(BIN)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBQC) $(ALL_LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBQC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -o $@ $< $(LIBQC) $(ALL_LDFLAGS) $(PKG_LIBS) $(CMOCKA_LIBS)

# Fuzz targets replayed on their saved corpus by an ordinary main.
$(BUILD)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(LIBQC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay.c $(LIBQC) $(ALL_LDFLAGS) $(PKG_LIBS)

deps:
	@$(DEPS)

# Only what building needs (plain make); the test and demo targets need all.
deps-build:
	@$(DEPS) --build

tests-build: $(TOOLS) $(CRASHTEST) $(UNIT_BIN) $(REPLAY_BIN)

# One pass of every suite with the tools in $(BIN).
check-normal: tests-build
	@BUILD=$(BUILD) BIN=$(BIN) tests/run.sh

check-san:
	@$(MAKE) --no-print-directory BUILD=build/san BIN=build/san/bin SAN=1 tests-build
	@BUILD=build/san BIN=build/san/bin SANITIZED=1 tests/run.sh

# The normal and the sanitizer pass run side by side (each test is one
# process at a time; two cores halve the wall time).  Each pass's lines are
# shown whole when it ends; CHECK_SERIAL=1 runs them one after the other.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run:
ifeq ($(CHECK_SERIAL),1)
	@$(MAKE) --no-print-directory check-normal
	@$(MAKE) --no-print-directory check-san
else
	@$(MAKE) --no-print-directory tests-build
	@$(MAKE) --no-print-directory BUILD=build/san BIN=build/san/bin SAN=1 tests-build
	@rm -f build/results.normal build/san/results.san
	@echo "check: normal and sanitizer passes running side by side"
	@BUILD=build BIN=bin tests/run.sh > build/check-normal.log 2>&1 & n=$$!; \
	 BUILD=build/san BIN=build/san/bin SANITIZED=1 tests/run.sh > build/check-san.log 2>&1; \
	 wait $$n; cat build/check-normal.log build/check-san.log
endif
	@tests/summary.sh build/results.normal build/san/results.san

demo: deps
	@$(MAKE) --no-print-directory build
	@QC_BIN=$(BIN) tools/demo.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	@tools/fuzz.sh $(FUZZ_SECONDS)

bench: deps
	@$(MAKE) --no-print-directory build
	@tools/bench.sh

install: deps-build
	@$(MAKE) --no-print-directory build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(CRASHTEST) $(DESTDIR)$(PREFIX)/bin/crashtest
	install -m 644 $(wildcard docs/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build $(BIN)
