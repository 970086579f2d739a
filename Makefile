# SPDX-License-Identifier: BSD-3-Clause
# forkchat - multi-process chat server and client (fork, pipes, signals).
#
#   make            build build/forkchatd and build/forkchat
#   make run        build and start the server in the foreground on 127.0.0.1:5101
#   make test       every test suite: unit (cmocka) + integration (pytest)
#   make install    install under PREFIX (/usr/local) and DESTDIR; make uninstall
#   make deb        build/forkchat_VERSION-1_ARCH.deb with dpkg-deb
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

# Debian packages, per purpose (RECIPES.md section 6).  Each group has its
# own stamp, so `make run` installs only what building and running the
# server and the client need, `make test` what the tests need; the fragments
# add theirs (DEPS_bench in bench/bench.mk, DEPS_fault in fault/fault.mk and
# fault/fuzz.mk, DEPS_ci in ci/ci.mk).  Only missing packages are installed.
DEPS_run  := gcc libc6-dev make libunistring-dev libicu-dev
DEPS_test := $(DEPS_run) libcmocka-dev libhiredis-dev python3 python3-pytest \
             python3-pexpect python3-pytest-timeout netcat-openbsd procps \
             man-db groff-base dpkg-dev binutils systemd redis-server tmux \
             lintian strace git iproute2
DEPS_GROUPS := run test

# The name profile (core/chat/name.c, docs/SECURITY.md): GNU libunistring for
# classes, normalisation and case folding, ICU for confusable skeletons.
# The log (core/sys/log.c) escapes with libunistring's classes.  Every program
# linking the server's objects links these; the client needs neither.  ICU is
# not linked: name.c loads it with dlopen() where a key is made (in the
# server, the name helper only, core/server/names.c), so that the parent
# never maps it (issue 17, bench/memory.py); libicu-dev gives its headers
# and, through its dependency, the library.
NAME_LIBS := -lunistring

.PHONY: all run test unit integration check-symbols clean help deps \
        install uninstall deb
all: $(BUILD)/forkchatd $(BUILD)/forkchatd-session $(BUILD)/forkchat ## build build/forkchatd (+ its session image) and build/forkchat

# ---- Debian dependencies (RECIPES.md section 6) --------------------------
# $(BUILD)/.deps-GROUP.stamp checks DEPS_GROUP (dpkg status `ii`, not
# dpkg -s) and installs what is missing; it is checked again when a build
# file changes.  Targets wait for their group's stamp (order-only).
STAMP       := $(BUILD)/.deps-run.stamp
TEST_STAMP  := $(BUILD)/.deps-test.stamp
DEPS_FILES  := $(wildcard Makefile bench/bench.mk fault/fault.mk fault/fuzz.mk ci/ci.mk)
deps: $(foreach g,$(DEPS_GROUPS),$(BUILD)/.deps-$(g).stamp) ## install every group's missing Debian packages
$(BUILD)/.deps-%.stamp: $(DEPS_FILES)
	@mkdir -p $(@D)
	@missing=; for p in $(sort $(DEPS_$*)); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "installing missing Debian packages ($*):$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "run: sudo apt-get install -y$$missing"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; fi
	@touch $@

# ---- core ----------------------------------------------------------------
# Everything except the two main() files goes into one static library that
# the programs and the unit tests link against.
# core/ is laid out by role (docs/ARCHITECTURE.md): lib (pure code), sys
# (system plumbing), chat (the parent's state), server, fed (federation),
# client.  Includes name their folder: #include "sys/log.h".
CORE_DIRS := lib sys chat server fed client
CORE_SRCS := $(foreach d,$(CORE_DIRS),$(wildcard core/$(d)/*.c))
CORE_HDRS := $(foreach d,$(CORE_DIRS),$(wildcard core/$(d)/*.h))
LIB_SRCS := $(filter-out core/server/forkchatd.c core/server/sessiond.c core/client/client.c,$(CORE_SRCS))
LIB_OBJS := $(LIB_SRCS:core/%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libforkchat.a

# -MMD -MP: each object depends on the headers it includes, no more
# (build/**/*.d, read back at the end of this file).
DEPFLAGS := -MMD -MP

$(BUILD)/obj/%.o: core/%.c | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# -z now: every symbol is bound at startup, in the parent, so no session
# child forked later resolves a libc, libunistring or ICU symbol lazily
# (full RELRO as well).
# (order-only: whatever builds the server builds its session image too)
$(BUILD)/forkchatd: $(BUILD)/obj/server/forkchatd.o $(LIB) | $(BUILD)/forkchatd-session
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -Wl,-z,relro,-z,now $(NAME_LIBS)

# The session image (core/server/sessiond.c): the spawner execs it once and
# clones every session child from it.  libc only: it must link without
# NAME_LIBS (a session object that pulled in the log or the name profile
# fails here), so that no child maps ICU, libstdc++ or libunistring.
# Static (PIE): no ld.so, no relocated libc pages, fewer page tables per
# child (bench/memory.py, docs/ARCHITECTURE.md).  The sanitizer, fault,
# coverage and valgrind builds link it dynamically (they need the
# preloads and the malloc interposition that a static binary defeats).
SESSION_LDFLAGS ?= -static-pie
$(BUILD)/forkchatd-session: $(BUILD)/obj/server/sessiond.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(SESSION_LDFLAGS)

$(BUILD)/forkchat: $(BUILD)/obj/client/client.o $(LIB)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)

# Both programs: the README's next step is starting the client.
run: all ## build both programs, start the server in the foreground on 127.0.0.1:$(PORT)
	$(BUILD)/forkchatd -f -p $(PORT) -b 127.0.0.1

# ---- unit tests (cmocka) -------------------------------------------------
# core/tests/test_X.c -> build/tests/test_X.  A test that needs linker
# seams or a library of its own lists them in WRAP_test_X (e.g.
# -Wl,--wrap=fork; -lhiredis for the differential RESP test: only that
# test links hiredis, the programs never do).
UNIT_SRCS  := $(wildcard core/tests/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:core/tests/%.c=$(BUILD)/tests/%)
WRAP_test_sys := -Wl,--wrap=fork -Wl,--wrap=pipe2 -Wl,--wrap=setsid -Wl,--wrap=write \
                 -Wl,--wrap=open -Wl,--wrap=openat -Wl,--wrap=mkdir -Wl,--wrap=mkdirat \
                 -Wl,--wrap=socket -Wl,--wrap=setsockopt \
                 -Wl,--wrap=bind -Wl,--wrap=listen
WRAP_test_resp_hiredis := -lhiredis
WRAP_test_chatfed := -Wl,--wrap=malloc
WRAP_test_fanout := -Wl,--wrap=kill -Wl,--wrap=sigqueue -Wl,--wrap=buf_append -Wl,--wrap=write \
                    -Wl,--wrap=log_msg
WRAP_test_flow := -Wl,--wrap=kill -Wl,--wrap=sigqueue
WRAP_test_fed := -Wl,--wrap=fork -Wl,--wrap=pipe2 -Wl,--wrap=kill -Wl,--wrap=waitpid \
                 -Wl,--wrap=clock_gettime \
                 -Wl,--wrap=chat_fed_room_line -Wl,--wrap=chat_fed_claimed \
                 -Wl,--wrap=chat_fed_snapshot -Wl,--wrap=chat_fed_expire \
                 -Wl,--wrap=chat_fed_presence
WRAP_test_server := -Wl,--wrap=log_msg -Wl,--wrap=chat_line -Wl,--wrap=chat_reject \
                    -Wl,--wrap=chat_disconnect -Wl,--wrap=chat_nick \
                    -Wl,--wrap=fanout_state -Wl,--wrap=fanout_pid -Wl,--wrap=fanout_close \
                    -Wl,--wrap=fanout_send -Wl,--wrap=fanout_flush -Wl,--wrap=fanout_release \
                    -Wl,--wrap=fanout_flush_until -Wl,--wrap=fanout_flush_busy -Wl,--wrap=fanout_cork_due -Wl,--wrap=fanout_busy \
                    -Wl,--wrap=fanout_stopping -Wl,--wrap=fanout_hang_up_backlogged \
                    -Wl,--wrap=fanout_nbacklog -Wl,--wrap=fanout_next_lazy \
                    -Wl,--wrap=fanout_flush_lazy -Wl,--wrap=admit_next_timeout \
                    -Wl,--wrap=admit_released -Wl,--wrap=fed_reaped -Wl,--wrap=waitpid \
                    -Wl,--wrap=sigtimedwait
WRAP_test_spawner := -Wl,--wrap=fork -Wl,--wrap=socketpair -Wl,--wrap=sendmsg \
                     -Wl,--wrap=recv -Wl,--wrap=kill -Wl,--wrap=waitpid \
                     -Wl,--wrap=readlink -Wl,--wrap=log_msg
WRAP_test_session := -Wl,--wrap=kill -Wl,--wrap=sigtimedwait -Wl,--wrap=write \
                     -Wl,--wrap=send -Wl,--wrap=read

$(BUILD)/tests/%: core/tests/%.c $(LIB) | $(TEST_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Wno-unused-parameter $< $(LIB) -o $@ $(LDFLAGS) -lcmocka $(WRAP_$*) $(NAME_LIBS)

# ci/run-unit.sh also fails on skipped tests not in ci/skips.allow.
unit: $(UNIT_TESTS) ## cmocka unit tests (core/tests/), skips gated by ci/skips.allow
	@bash ci/run-unit.sh $(UNIT_TESTS)

# ---- integration tests (pytest) ------------------------------------------
integration: all $(BUILD)/forkchat-load $(BUILD)/forkchat-storm-floor | $(TEST_STAMP) ## pytest end-to-end suite (integration/)
	$(PYTEST) -q integration $(PYTEST_ARGS)

# The design forbids threads and select/poll/epoll: prove it on the binaries.
check-symbols: all ## the binaries use no pthread, select, poll or epoll symbol
	@bad=$$( { nm -D --undefined-only $(BUILD)/forkchatd $(BUILD)/forkchat; \
	  nm $(BUILD)/forkchatd-session; } | \
	  grep -E ' (pthread_create|pthread_[a-z_]+@.*|select|pselect|poll|ppoll|epoll_[a-z_0-9]+)(@|$$)'); \
	if [ -n "$$bad" ]; then echo "forbidden symbols:"; echo "$$bad"; exit 1; fi; \
	echo "check-symbols: no pthread, select, poll or epoll symbols (the session image's static libc included)"

test: check-symbols unit integration ## every test suite: check-symbols, unit, integration

# ---- install, uninstall, Debian package ------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: programs, man pages, docs and
# the systemd unit, whose ExecStart is rewritten to $(SBINDIR)/forkchatd.
# $(PREFIX)/lib/systemd/system is on systemd's unit path for /usr/local and
# /usr; the Debian package passes UNITDIR=/lib/systemd/system (bookworm).
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/forkchat
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The session image: forkchatd looks for it beside itself, then in
# ../lib/forkchat/ from its own directory (core/server/spawner.c), so it
# goes to $(PREFIX)/lib/forkchat with forkchatd in $(PREFIX)/sbin.
PKGLIBDIR ?= $(SBINDIR)/../lib/forkchat
INSTALL ?= install
DOCS    := README.md docs/PROTOCOL.md docs/SERVER-CLI.md docs/ARCHITECTURE.md \
           docs/SECURITY.md docs/SCALING.md
MAN1    := docs/man/forkchat.1 docs/man/forkchat-load.1
MAN8    := docs/man/forkchatd.8
INSTALLED := $(SBINDIR)/forkchatd $(PKGLIBDIR)/forkchatd-session \
             $(BINDIR)/forkchat $(BINDIR)/forkchat-load \
             $(MAN1:docs/man/%=$(MANDIR)/man1/%) $(MAN8:docs/man/%=$(MANDIR)/man8/%) \
             $(addprefix $(DOCDIR)/,$(notdir $(DOCS))) $(UNITDIR)/forkchatd.service

install: all $(BUILD)/forkchat-load ## install under PREFIX (default /usr/local), DESTDIR
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PKGLIBDIR)
	$(INSTALL) -m 755 $(BUILD)/forkchatd $(DESTDIR)$(SBINDIR)/forkchatd
	$(INSTALL) -m 755 $(BUILD)/forkchatd-session $(DESTDIR)$(PKGLIBDIR)/forkchatd-session
	$(INSTALL) -m 755 $(BUILD)/forkchat $(BUILD)/forkchat-load $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	sed 's|^ExecStart=/usr/sbin/forkchatd|ExecStart=$(SBINDIR)/forkchatd|' \
	  docs/forkchatd.service > $(BUILD)/forkchatd.service
	$(INSTALL) -m 644 $(BUILD)/forkchatd.service $(DESTDIR)$(UNITDIR)/forkchatd.service
	@[ -n "$(DESTDIR)" ] || ! [ -d /run/systemd/system ] || \
	  echo "now: systemctl daemon-reload && systemctl enable --now forkchatd"

uninstall: ## remove what make install installed (same PREFIX, DESTDIR)
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(PKGLIBDIR) 2>/dev/null || true

DEB_VERSION := $(VERSION)-1
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB         := $(BUILD)/forkchat_$(DEB_VERSION)_$(DEB_ARCH).deb

deb: all $(BUILD)/forkchat-load ## Debian package into build/ (dpkg-deb)
	rm -rf $(BUILD)/deb
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(BUILD)/deb PREFIX=/usr \
	  UNITDIR=/lib/systemd/system >/dev/null
	VERSION=$(DEB_VERSION) ARCH=$(DEB_ARCH) sh docs/packaging/mkdeb.sh $(BUILD)/deb $(DEB)

clean: ## remove build/
	rm -rf $(BUILD)

help: ## this list
	@sed -n 's/^#   //p' Makefile; echo; \
	grep -h -E '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

-include bench/bench.mk fault/fault.mk ci/ci.mk

# Header dependencies written by -MMD (every build variant).
-include $(wildcard $(BUILD)/*/*.d $(BUILD)/*/*/*.d $(BUILD)/*/*/*/*.d)
