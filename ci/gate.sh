#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/gate.sh - run every CI stage, print a PASS/FAIL line per stage, a
# summary table and "N passed, N failed"; exit non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

names=(); results=(); times=()
t_start=$SECONDS
stage() {	# stage NAME COMMAND...
	local name=$1; shift
	local t0=$SECONDS rc
	echo "=== stage: $name: $*"
	"$@" </dev/null; rc=$?
	names+=("$name"); times+=($((SECONDS - t0)))
	if [ $rc -eq 0 ]; then results+=(PASS); echo "PASS $name ($((SECONDS - t0)) s)"
	else results+=(FAIL); echo "FAIL $name (exit $rc, $((SECONDS - t0)) s)"; fi
}

# The first stage is the README's test command; the rest are ci/ci.mk
# targets (ci/README.md).  Every stage runs even if an earlier one failed.
stage test		make test
stage strict		make strict
stage test-asan		make test-asan
stage valgrind		make valgrind
stage lint		make lint
stage coverage		make coverage
stage fault		make ci-fault
stage bench-check	make bench-check

pass=0; fail=0
echo
printf '%-20s %-6s %s\n' stage result seconds
for i in "${!names[@]}"; do
	printf '%-20s %-6s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
	[ "${results[$i]}" = PASS ] && pass=$((pass + 1)) || fail=$((fail + 1))
done
echo "total: $((SECONDS - t_start)) s"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
