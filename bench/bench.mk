# SPDX-License-Identifier: BSD-3-Clause
# bench/bench.mk - benchmark harness (included by the top Makefile).
#
#   make bench         full run: N = 10..1000, forkchat vs floor vs Redis,
#                      3 federated hubs vs one hub at N = 99 (< 5 min)
#   make bench-quick   N = 10, 100; one-room and one-room-max; 3 hubs x 10
#                      vs one hub with 30 (< 90 s, CI)
#
# Results: bench/results/latest.{json,md}, *.png, hyperfine-*.{json,md}.

DEPS_bench  := $(DEPS_run) redis-server gnuplot-nox hyperfine procps coreutils python3
DEPS_GROUPS += bench
BENCH_STAMP := $(BUILD)/.deps-bench.stamp

LOAD_SRCS := $(wildcard bench/lg_*.c)
LOAD_HDRS := $(wildcard bench/lg*.h)

.PHONY: bench bench-quick bench-build

$(BUILD)/forkchat-load: $(LOAD_SRCS) $(LOAD_HDRS) | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench $(LOAD_SRCS) -o $@ $(LDFLAGS)

bench-build: $(BUILD)/forkchat-load $(BUILD)/forkchatd | $(BENCH_STAMP) ## build the load generator and the server

bench: bench-build ## full benchmark: forkchat vs floor vs Redis, N up to 1000; federation
	BUILD=$(BUILD) bench/run.sh full

bench-quick: bench-build ## quick benchmark for CI (N = 10, 100)
	BUILD=$(BUILD) bench/run.sh quick
