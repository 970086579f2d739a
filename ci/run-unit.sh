#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/run-unit.sh TEST... - run cmocka test binaries (make unit, make test-asan).
# Fails if a binary exits non-zero, or if it reports skipped tests
# ("[  SKIPPED ]", or a "skipped" note) that ci/skips.allow does not list
# as unit:BINARY: a skip is never a pass.
set -uo pipefail
ALLOW=${FORKCHAT_SKIPS_ALLOW:-$(dirname "$0")/skips.allow}
fail=0
for t in "$@"; do
	echo "== $t"
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	[ $rc -eq 0 ] || fail=1
	if printf '%s\n' "$out" | grep -q -E '^\[  SKIPPED \]|skipped [0-9]+ tests'; then
		name=unit:$(basename "$t")
		if grep -q -E "^${name}[[:space:]]+[^[:space:]]" "$ALLOW" 2>/dev/null; then
			echo "$t: skipped tests allowed by $ALLOW"
		else
			echo "$t: FAIL: skipped tests, and $name is not in $ALLOW (a skip is not a pass)"
			fail=1
		fi
	fi
done
[ $fail -eq 0 ] || { echo "unit tests FAILED"; exit 1; }
