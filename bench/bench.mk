# SPDX-License-Identifier: BSD-3-Clause
# bench/bench.mk - benchmark harness (included by the top Makefile).
#
#   make bench         full run: N = 10..1000 receivers, forkchat vs ngircd,
#                      InspIRCd (N <= 100, paced), Redis and the two floors,
#                      3 paced 10 s runs per point; the goals of issue 17;
#                      memory after a burst (N = 100, 1000); 3 federated hubs
#                      vs one hub at N = 99 (about 16 min, budget 18)
#   make bench-quick   N = 10, 100; one short paced and one windowed run per
#                      point; memory after a burst (N = 100); 3 hubs x 10 vs
#                      one hub with 30 (about 2.5 min)
#
# Results: bench/results/latest.{json,md}, *.png, hyperfine-*.{json,md}.
# build/forkchat-storm-floor: the connect-storm floor (goal 5).

# ngircd and inspircd: the IRC servers make bench runs beside forkchat
DEPS_bench  := $(DEPS_run) redis-server ngircd inspircd gnuplot-nox hyperfine procps \
               coreutils python3 linux-perf
DEPS_GROUPS += bench
BENCH_STAMP := $(BUILD)/.deps-bench.stamp

LOAD_SRCS := $(wildcard bench/lg_*.c)
LOAD_HDRS := $(wildcard bench/lg*.h)

.PHONY: bench bench-quick bench-build

$(BUILD)/forkchat-load: $(LOAD_SRCS) $(LOAD_HDRS) | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench $(LOAD_SRCS) -o $@ $(LDFLAGS)

# The connect-storm floor (bench/storm_floor.c): accept, fork a child per
# connection, first line in, one line out.  Static, as the session image.
$(BUILD)/forkchat-storm-floor: bench/storm_floor.c | $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(SESSION_LDFLAGS)

bench-build: $(BUILD)/forkchat-load $(BUILD)/forkchatd $(BUILD)/forkchat-storm-floor | $(BENCH_STAMP) ## build the load generator and the server

bench: bench-build ## full benchmark: forkchat vs ngircd, InspIRCd, Redis and the floors, N up to 1000; federation
	BUILD=$(BUILD) bench/run.sh full

bench-quick: bench-build ## quick benchmark for CI (N = 10, 100)
	BUILD=$(BUILD) bench/run.sh quick
