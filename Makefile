# forkchat - multi-process chat server and client (fork, pipes, signals).
#
#   make            build build/forkchatd and build/forkchat
#   make run        build and start the server in the foreground on 127.0.0.1:5101
#   make test       every test suite: unit (cmocka) + integration (pytest)
#   make help       list every target
#
# Missing Debian packages are installed automatically (only when missing).

CC      ?= gcc
VERSION := 1.0
BUILD   := build
WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -DFORKCHAT_VERSION='"$(VERSION)"' -Icore
LDFLAGS ?=
PYTEST  := /usr/bin/python3 -m pytest
PORT    ?= 5101

# Debian packages the build, the tests and the tools need.  Fragments
# (bench/bench.mk, fault/fault.mk, ci/ci.mk) append their own with +=.
DEB_DEPS := gcc make pkg-config libcmocka-dev python3 python3-pytest \
            python3-pexpect python3-pytest-timeout netcat-openbsd procps

.PHONY: all run test unit integration check-symbols clean help deps
all: $(BUILD)/forkchatd $(BUILD)/forkchat

# ---- Debian dependencies (RECIPES.md section 6) --------------------------
STAMP := $(BUILD)/.deps.stamp
deps: $(STAMP)
$(STAMP):
	@mkdir -p $(BUILD)
	@missing=; for p in $(sort $(DEB_DEPS)); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "installing missing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "run: sudo apt-get install -y$$missing"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; fi
	@touch $@

# ---- core ----------------------------------------------------------------
# Everything except the two main() files goes into one static library that
# the programs and the unit tests link against.
LIB_SRCS := $(filter-out core/forkchatd.c core/client.c,$(wildcard core/*.c))
LIB_OBJS := $(LIB_SRCS:core/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libforkchat.a

$(BUILD)/obj/%.o: core/%.c $(wildcard core/*.h) | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/forkchatd: $(BUILD)/obj/forkchatd.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)

$(BUILD)/forkchat: $(BUILD)/obj/client.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)

run: $(BUILD)/forkchatd
	$(BUILD)/forkchatd -f -p $(PORT) -b 127.0.0.1

# ---- unit tests (cmocka) -------------------------------------------------
# core/tests/test_X.c -> build/tests/test_X.  A test that needs linker
# seams lists them in WRAP_test_X (e.g. -Wl,--wrap=fork).
UNIT_SRCS  := $(wildcard core/tests/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:core/tests/%.c=$(BUILD)/tests/%)
WRAP_test_sys := -Wl,--wrap=fork -Wl,--wrap=pipe2 -Wl,--wrap=setsid -Wl,--wrap=write \
                 -Wl,--wrap=open -Wl,--wrap=mkdir -Wl,--wrap=socket -Wl,--wrap=setsockopt \
                 -Wl,--wrap=bind -Wl,--wrap=listen

$(BUILD)/tests/%: core/tests/%.c $(LIB) $(wildcard core/*.h) | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-unused-parameter $< $(LIB) -o $@ $(LDFLAGS) -lcmocka $(WRAP_$*)

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || fail=1; done; \
	[ $$fail -eq 0 ] || { echo "unit tests FAILED"; exit 1; }

# ---- integration tests (pytest) ------------------------------------------
integration: all
	$(PYTEST) -q integration $(PYTEST_ARGS)

# The design forbids threads and select/poll/epoll: prove it on the binaries.
check-symbols: all
	@bad=$$(nm -D --undefined-only $(BUILD)/forkchatd $(BUILD)/forkchat | \
	  grep -E ' (pthread_[a-z_]+|select|pselect|poll|ppoll|epoll_[a-z_0-9]+)(@|$$)'); \
	if [ -n "$$bad" ]; then echo "forbidden symbols:"; echo "$$bad"; exit 1; fi; \
	echo "check-symbols: no pthread, select, poll or epoll symbols"

test: check-symbols unit integration

clean:
	rm -rf $(BUILD)

help:
	@sed -n 's/^#   //p' Makefile; echo; \
	grep -h -E '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

-include bench/bench.mk fault/fault.mk ci/ci.mk
