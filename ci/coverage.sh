#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/coverage.sh - line/branch coverage of core/ from the unit tests, the
# integration suite and (when it exists) make fault-quick, all run against
# the --coverage build in $BUILD/cov/.  Prints gcovr's per-file table and
# summary; fails if line coverage of core/ (core/tests/ excluded) is below
# COV_MIN percent, or its branch coverage below COV_BRANCH_MIN percent.
# Test failures are reported but gated by other stages.
#
# Forked children leave through proc_exit() (core/sys/proc.h), which in
# this build (-DFORKCHAT_COVERAGE) calls __gcov_dump() before _exit(), so
# code that runs only in a child (session.c, the client's keyboard child)
# is counted too.  See ci/README.md.
set -uo pipefail
BUILD=${BUILD:-build}
COV_MIN=${COV_MIN:-90}
COV_BRANCH_MIN=${COV_BRANCH_MIN:-0}
PYTEST=${PYTEST:-/usr/bin/python3 -m pytest}
# -O0 + gcov runs about 2x slower: every deadline of the harness is scaled
# (integration/lib/harness/timescale.py).
export FORKCHAT_TIME_SCALE=${FORKCHAT_TIME_SCALE:-2}
COV=$BUILD/cov
ROOT=$(pwd)
notes=()

find "$COV" -name '*.gcda' -delete

fail=0
for t in "$COV"/tests/test_*; do
	[ -x "$t" ] || continue
	echo "== $t"
	"$t" >"$t.out" 2>&1 || { fail=1; tail -20 "$t.out"; }
done
[ $fail -eq 0 ] || notes+=("unit tests failed under the coverage build")

echo "== integration (FORKCHATD=$COV/forkchatd)"
FORKCHATD=$ROOT/$COV/forkchatd FORKCHAT=$ROOT/$COV/forkchat \
	$PYTEST -q integration ${PYTEST_ARGS:-} 2>&1 | tail -15
[ "${PIPESTATUS[0]}" -eq 0 ] || notes+=("integration tests failed under the coverage build")

# fault-quick with the coverage server: only if the target exists and its
# runner takes --server (the last --server on the command line wins).
if make -n fault-quick >/dev/null 2>&1 && [ -f fault/runner.py ] &&
   grep -q -- '--server' fault/runner.py; then
	echo "== make fault-quick (server $COV/forkchatd)"
	FAULT_FORKCHATD=$ROOT/$COV/forkchatd make --no-print-directory fault-quick \
		FAULT_ARGS="--server $ROOT/$COV/forkchatd" 2>&1 | tail -15
	[ "${PIPESTATUS[0]}" -eq 0 ] || notes+=("make fault-quick failed under the coverage build")
else
	notes+=("make fault-quick not available: fault coverage not counted")
fi

echo "== gcovr (core/, core/tests/ excluded)"
gcovr --root . --filter 'core/' --exclude 'core/tests/' \
	--txt "$COV/coverage.txt" --json-summary "$COV/coverage.json" "$COV" || exit 1
cat "$COV/coverage.txt"
/usr/bin/python3 - "$COV/coverage.json" "$COV_MIN" "$COV_BRANCH_MIN" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
floor, bfloor = float(sys.argv[2]), float(sys.argv[3])
def pct(f, k):   # gcovr gives None for a file without lines/branches
    return "%5.1f%%" % f[k + "_percent"] if f[k + "_total"] else "    - "
print("%-22s %16s %16s" % ("file", "lines", "branches"))
for f in sorted(d["files"], key=lambda f: f["filename"]):
    print("%-22s %s %4d/%-4d  %s %4d/%-4d" % (f["filename"],
        pct(f, "line"), f["line_covered"], f["line_total"],
        pct(f, "branch"), f["branch_covered"], f["branch_total"]))
print("lines: %.1f%% (%d of %d)" % (d["line_percent"], d["line_covered"], d["line_total"]))
print("branches: %.1f%% (%d of %d)" % (d["branch_percent"], d["branch_covered"], d["branch_total"]))
worst = sorted(d["files"], key=lambda f: f["line_covered"] - f["line_total"])[:5]
print("most uncovered lines: " + ", ".join(
    "%s %d" % (f["filename"], f["line_total"] - f["line_covered"]) for f in worst))
bworst = sorted(d["files"], key=lambda f: f["branch_covered"] - f["branch_total"])[:5]
print("most uncovered branches: " + ", ".join(
    "%s %d" % (f["filename"], f["branch_total"] - f["branch_covered"]) for f in bworst))
bad = 0
if d["line_percent"] < floor:
    print("coverage: FAIL: line coverage %.1f%% < %.0f%%" % (d["line_percent"], floor))
    bad = 1
else:
    print("coverage: line coverage %.1f%% >= %.0f%%" % (d["line_percent"], floor))
if d["branch_percent"] < bfloor:
    print("coverage: FAIL: branch coverage %.1f%% < %.0f%%" % (d["branch_percent"], bfloor))
    bad = 1
else:
    print("coverage: branch coverage %.1f%% >= %.0f%%" % (d["branch_percent"], bfloor))
sys.exit(bad)
PY
rc=$?
for n in "${notes[@]}"; do echo "note: $n"; done
exit $rc
