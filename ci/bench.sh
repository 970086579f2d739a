#!/usr/bin/env bash
# ci/bench.sh check|baseline - run `make bench-quick` BENCH_REPEAT times
# (default 3), keep each bench/results/latest.json, then
#   check:    compare the median forkchat/floor ratios with
#             ci/bench-baseline.json (ci/bench_compare.py); fail on a ratio
#             more than 30% worse, on any lost or duplicated delivery, or
#             if a bench run fails.
#   baseline: write ci/bench-baseline.json from these runs (commit it).
set -uo pipefail
MODE=${1:-check}
BUILD=${BUILD:-build}
REPEAT=${BENCH_REPEAT:-3}
OUT=$BUILD/ci-bench
rm -rf "$OUT" && mkdir -p "$OUT"

if ! make -n bench-quick >/dev/null 2>&1; then
	echo "bench-check: FAIL: 'make bench-quick' does not exist"; exit 1
fi
runs=(); failed=0
for i in $(seq "$REPEAT"); do
	echo "== make bench-quick ($i of $REPEAT)"
	rm -f bench/results/latest.json
	make --no-print-directory bench-quick >"$OUT/run-$i.log" 2>&1
	rc=$?
	tail -5 "$OUT/run-$i.log"
	if [ -f bench/results/latest.json ]; then
		cp bench/results/latest.json "$OUT/run-$i.json"; runs+=("$OUT/run-$i.json")
	fi
	# bench/run.sh exits 1 on loss/duplication/reordering: always fatal.
	[ $rc -eq 0 ] || { echo "bench-quick run $i failed (exit $rc)"; failed=1; }
done
[ ${#runs[@]} -gt 0 ] || { echo "bench-check: FAIL: no bench/results/latest.json written"; exit 1; }
/usr/bin/python3 ci/bench_compare.py "$MODE" ci/bench-baseline.json "${runs[@]}" || failed=1
exit $failed
