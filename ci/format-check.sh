#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/format-check.sh FILE... - clang-format --dry-run --Werror with a summary.
# Prints, per file that differs from .clang-format, how many of its lines
# would change, then the total and the command that reformats; exit 1 if
# anything differs.  Never modifies a file.
set -uo pipefail
total=0; nfiles=0
for f in "$@"; do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		n=$(clang-format "$f" | diff "$f" - | grep -c '^<')
		printf '%6d lines differ  %s\n' "$n" "$f"
		total=$((total + n)); nfiles=$((nfiles + 1))
	fi
done
if [ $nfiles -gt 0 ]; then
	echo "clang-format: $total lines in $nfiles files differ from .clang-format"
	echo "first differences (clang-format --dry-run --Werror):"
	clang-format --dry-run --Werror "$@" 2>&1 | grep -E ': (error|warning):' | head -5
	echo "reformat with: clang-format -i $*"
	exit 1
fi
echo "clang-format: $# files clean"
