# SPDX-License-Identifier: BSD-3-Clause
# fault/fault.mk - fault-injection build and matrix (included by the top Makefile).
#
#   make fault          the whole matrix (>= 40 scenarios), table + fault/results/latest.{json,md}
#   make fault-quick    the CI subset (fork, pipe, write, accept, kill, malloc, federation,
#                       SIGKILL child, slow consumer, parent death), < 2 min
#   make fault-soak     random failpoints under load: SEED=n DURATION=s
#   make fault-build    only build/fault/forkchatd (-DFIU_ENABLE, -lfiu)
#   make fault-sweep    Nth-call sweep of every in-code failpoint (fault/sweep.py),
#                       within SWEEP_BUDGET seconds; also run by make fault
#
# See fault/README.md for the failpoint names and how to enable one by hand.

DEPS_fault  := $(DEPS_run) libfiu-dev fiu-utils procps util-linux redis-server \
               python3 netcat-openbsd
DEPS_GROUPS += fault
FAULT_STAMP := $(BUILD)/.deps-fault.stamp

FAULT_BUILD := $(BUILD)/fault
FAULT_SRCS  := $(filter-out core/client/client.c core/server/sessiond.c,$(CORE_SRCS))
FAULT_OBJS  := $(FAULT_SRCS:core/%.c=$(FAULT_BUILD)/obj/%.o)
FAULT_BIN   := $(FAULT_BUILD)/forkchatd
# its session image (dynamic: fiu-run's preload must reach the sessions)
FAULT_SESS  := $(FAULT_BUILD)/forkchatd-session
FAULT_LIB   := $(FAULT_BUILD)/libforkchat.a
# counts libfiu's preload failures (posix/*, libc/*) for the fired column
FAULT_COUNT := $(FAULT_BUILD)/fiu_count.so
FAULT_PY    := /usr/bin/python3
FAULT_RUN   := $(FAULT_PY) fault/runner.py --server $(FAULT_BIN) --count-lib $(FAULT_COUNT)
SEED        ?= 1
DURATION    ?= 30
FAULT_ARGS  ?=

# The fuzz engineer's fragment defines fuzz-quick and fuzz; its results are
# merged from fault/results/fuzz.json when present.
-include fault/fuzz.mk
FAULT_FUZZ := $(if $(wildcard fault/fuzz.mk),--fuzz-cmd '$(MAKE) --no-print-directory fuzz-quick',)

.PHONY: fault fault-quick fault-soak fault-build
fault-build: $(FAULT_BIN) $(FAULT_SESS) $(FAULT_COUNT)  ## build the libfiu-enabled server (build/fault/forkchatd)

$(FAULT_COUNT): fault/fiu_count.c | $(FAULT_STAMP)
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -fPIC -shared $< -o $@ -ldl

$(FAULT_BUILD)/obj/%.o: core/%.c | $(FAULT_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(DEPFLAGS) -DFIU_ENABLE -c $< -o $@

$(FAULT_BIN): $(FAULT_OBJS) | $(FAULT_STAMP) $(FAULT_SESS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lfiu $(NAME_LIBS)

$(FAULT_LIB): $(filter-out %/server/forkchatd.o,$(FAULT_OBJS))
	rm -f $@ && ar rcs $@ $^

$(FAULT_SESS): $(FAULT_BUILD)/obj/server/sessiond.o $(FAULT_LIB) | $(FAULT_STAMP)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lfiu

fault: $(FAULT_BIN) $(FAULT_COUNT) | $(FAULT_STAMP)  ## fault-injection matrix (table, fault/results/latest.json)
	$(FAULT_RUN) --suite full $(FAULT_FUZZ) $(FAULT_ARGS)
	@$(MAKE) --no-print-directory fault-sweep

# ---- Nth-call sweep (fault/sweep.py): every FAIL() point, 1st call, 2nd, ...
SWEEP_BUDGET ?= 240
SWEEP_ARGS   ?=
.PHONY: fault-sweep
fault-sweep: $(FAULT_BIN) $(FAULT_COUNT) | $(FAULT_STAMP)  ## Nth-call sweep of every in-code failpoint (SWEEP_BUDGET s)
	$(FAULT_PY) fault/sweep.py --server $(FAULT_BIN) --fed --budget $(SWEEP_BUDGET) $(SWEEP_ARGS)

fault-quick: $(FAULT_BIN) $(FAULT_COUNT) | $(FAULT_STAMP)  ## CI subset of the fault matrix (< 2 min)
	$(FAULT_RUN) --suite quick $(FAULT_ARGS)

fault-soak: $(FAULT_BIN) $(FAULT_COUNT) | $(FAULT_STAMP)  ## random failpoints under load (SEED=n DURATION=s)
	$(FAULT_RUN) --soak --seed $(SEED) --duration $(DURATION) $(FAULT_ARGS)
