#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/bench.sh [--base-only] - make bench-check: the candidate against the
# last landed commit, built side by side and run interleaved on this
# machine now.  --base-only prints the base commit and why, and exits.
#
#   1. the base commit (ci/README.md "bench-check"):
#        $BENCH_BASE if set (any git revision, e.g. origin/main);
#        else HEAD if core/ or Makefile has uncommitted changes (the candidate
#             is the work tree: a developer's run);
#        else HEAD^1, HEAD's first parent: the previous tip of main when
#             the candidate landed as a merge or as one commit.
#   2. the base's forkchatd: `git archive BASE` into build/bench-base/SHA/
#      and `make build/forkchatd` there (kept, reused while SHA is the same).
#   3. ci/bench_ab.py: BENCH_ROUNDS (6) rounds, each point once per side,
#      the order alternating (A B, B A, ...), one load generator (ours);
#      if a point's spread is too wide to judge (another load on the
#      machine), more rounds up to BENCH_MAX_ROUNDS (10) in all.
#   4. ci/bench_compare.py: per point, the median of the paired
#      candidate/base ratios against a tolerance derived from their spread
#      in this run; any lost/duplicated/reordered delivery fails.
set -uo pipefail
BUILD=${BUILD:-build}
ROUNDS=${BENCH_ROUNDS:-6}
MAXR=${BENCH_MAX_ROUNDS:-10}
OUT=$BUILD/ci-bench
PY=/usr/bin/python3
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.txt

fail() { echo "bench-check: FAIL: $*"; exit 1; }

git rev-parse --git-dir >/dev/null 2>&1 || fail "not a git checkout: no base commit to compare with"
if [ -n "${BENCH_BASE:-}" ]; then
	base=$(git rev-parse --verify -q "$BENCH_BASE^{commit}") || fail "BENCH_BASE=$BENCH_BASE is not a commit"
	why="BENCH_BASE=$BENCH_BASE"
elif ! git diff --quiet HEAD -- core Makefile 2>/dev/null; then
	base=$(git rev-parse HEAD)
	why="HEAD (core/ or Makefile has uncommitted changes: they are the candidate)"
else
	base=$(git rev-parse -q --verify 'HEAD^1^{commit}') ||
	    fail "HEAD has no parent and BENCH_BASE is not set: nothing to compare with"
	why="HEAD^1 (first parent of $(git rev-parse --short HEAD))"
fi
short=$(git rev-parse --short "$base")
if [ "${1:-}" = --base-only ]; then echo "$base $why"; exit 0; fi
echo "bench-check: candidate = this tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ", dirty")); base = $short: $why"
echo "  base: $(git log -1 --format='%h %s' "$base")"

BASEDIR=$BUILD/bench-base/$base
if [ ! -x "$BASEDIR/build/forkchatd" ]; then
	echo "== building the base's forkchatd in $BASEDIR"
	rm -rf "$BASEDIR" && mkdir -p "$BASEDIR/build" || fail "cannot create $BASEDIR"
	git archive --format=tar "$base" | tar -x -C "$BASEDIR" || fail "git archive $short"
	# our own `make` already checked the Debian packages
	# (the stamp's name before and after the per-group split of issue 13)
	touch "$BASEDIR/build/.deps.stamp" "$BASEDIR/build/.deps-run.stamp"
	make --no-print-directory -C "$BASEDIR" build/forkchatd >"$OUT/base-build.log" 2>&1 ||
	    { tail -20 "$OUT/base-build.log"; fail "the base $short does not build"; }
fi
for f in "$BUILD/forkchatd" "$BUILD/forkchat-load"; do
	[ -x "$f" ] || fail "$f missing (make bench-build)"
done

# Both binaries run from paths of the same length (argv and the
# environment move the stack; keep everything but the code alike).
mkdir -p "$OUT/base" "$OUT/cand"
cp "$BASEDIR/build/forkchatd" "$OUT/base/forkchatd" && cp "$BUILD/forkchatd" "$OUT/cand/forkchatd" ||
    fail "cannot copy the servers into $OUT"
# each with its session image beside it, where it has one (core/server/spawner.c)
for d in "$BASEDIR/build:$OUT/base" "$BUILD:$OUT/cand"; do
	rm -f "${d#*:}/forkchatd-session"
	[ ! -e "${d%%:*}/forkchatd-session" ] || cp "${d%%:*}/forkchatd-session" "${d#*:}/" ||
	    fail "cannot copy the session image into ${d#*:}"
done
ab() {	# ab ROUNDS FIRST
	$PY ci/bench_ab.py --base "$OUT/base/forkchatd" --cand "$OUT/cand/forkchatd" \
	    --load "$BUILD/forkchat-load" --out "$OUT/runs.jsonl" --rounds "$1" --first-round "$2" \
	    ${BENCH_POINTS:+--points "$BENCH_POINTS"} || fail "ci/bench_ab.py failed"
}
echo "== $ROUNDS interleaved rounds (base $short vs candidate), ${BENCH_POINTS:-every point}"
ab "$ROUNDS" 0
# A spread too wide to judge well (another load on the machine): more
# rounds, up to BENCH_MAX_ROUNDS in all, before the verdict.
if [ "$MAXR" -gt "$ROUNDS" ] && $PY ci/bench_compare.py --noisy "$OUT/runs.jsonl"; then
	echo "== noisy run: $((MAXR - ROUNDS)) more rounds"
	ab $((MAXR - ROUNDS)) "$ROUNDS"
fi
$PY ci/bench_compare.py "$OUT/runs.jsonl" | tee "$OUT/verdict.txt"
exit "${PIPESTATUS[0]}"
