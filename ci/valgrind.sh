#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ci/valgrind.sh - memcheck the server (parent process) through a scripted
# session: ci/scenario.py (4+1 clients, chat, rooms, whisper, errors,
# disconnect, quit), SIGHUP (log reopen), a client held open across
# SIGTERM (graceful shutdown).  Twice: a lone hub, then a federated one
# (--redis, a redis-server of our own on a free port, stopped by PID), so
# fed.c's state (unacknowledged events, claims, cursor) is checked too.  Fails on any memcheck error, a definite or
# indirect leak, or a file descriptor still open in the parent at exit
# other than 0-2.  Forked children (every session child and the bridge)
# keep running under valgrind (fork is not exec) and are memchecked too:
# --child-silent-after-fork=no and --log-file=vg.%p.log give each its own
# log, attributed through the server's "connect ... pid=N" and "bridge
# pid=N" lines; every child's log must exist, be complete and show 0
# errors (definite/indirect leaks count as errors).  Children leave
# through _exit(), see ci/README.md.  The spawner execs the session image
# (forkchatd-session, linked dynamically for this run: build/vg/), and
# --trace-children=yes follows that exec; its log (same pid) is the
# exec'd image's, and every session child is cloned from that image.
set -uo pipefail
BUILD=${BUILD:-build}
PY=/usr/bin/python3
SERVER=${SERVER:-$BUILD/forkchatd} # its session image beside it (ci/ci.mk)
OUT=$BUILD/valgrind
rm -rf "$OUT" && mkdir -p "$OUT"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "valgrind: FAIL ($NAME): $*"; exit 1; }

# vg_run NAME MIN_SESSIONS bridge|"" [server args...]: one memchecked server
# through the session, then its children (check_children).
vg_run() {
	NAME=$1; MINS=$2; BR=$3; shift 3
	local PORT; PORT=$(free_port)
	mkdir -p "$OUT/$NAME/logs"

	valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --track-fds=yes \
		--trace-children=yes --child-silent-after-fork=no --error-exitcode=99 \
		--log-file="$OUT/$NAME/vg.%p.log" \
		"$SERVER" -f -p "$PORT" -b 127.0.0.1 -l "$OUT/$NAME/logs" "$@" >"$OUT/$NAME/stdout" 2>"$OUT/$NAME/stderr" &
	VG=$!
	cleanup() { kill -KILL "$VG" 2>/dev/null; stop_redis; }
	trap cleanup EXIT

	# valgrind starts slowly: wait up to 30 s for the port.
	for i in $(seq 300); do
		kill -0 "$VG" 2>/dev/null || fail "server exited during startup"
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.1
	done
	[ "$i" -lt 300 ] || fail "server did not listen on $PORT within 30 s"

	$PY ci/scenario.py "$PORT" || fail "scenario"
	kill -HUP "$VG"
	$PY ci/scenario.py "$PORT" --hold >"$OUT/$NAME/hold.out" 2>&1 &
	HOLD=$!
	for i in $(seq 200); do grep -q holding "$OUT/$NAME/hold.out" 2>/dev/null && break; sleep 0.1; done
	grep -q holding "$OUT/$NAME/hold.out" || fail "holding client did not register"

	kill -TERM "$VG"
	for i in $(seq 600); do kill -0 "$VG" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$VG" 2>/dev/null && fail "server still running 60 s after SIGTERM"
	wait "$VG"; rc=$?
	trap stop_redis EXIT # the server is gone; a redis of ours may not be
	wait "$HOLD" || { cat "$OUT/$NAME/hold.out"; fail "held client did not get BYE SHUTDOWN"; }

	LOG=$OUT/$NAME/vg.$VG.log
	[ -f "$LOG" ] || fail "no valgrind log for pid $VG"
	bad=0
	# Fds open at exit, other than 0-2 and those the server inherited (the
	# harness's own, valgrind's log): each is a block "Open <kind> N: ..."
	# followed by either "<inherited from parent>" or where it was opened.
	fds=$(awk '
		/== Open [^:]*[0-9]+:/ { if (blk != "" && !inh) print blk; blk = $0; inh = 0;
			if ($0 ~ /(descriptor|socket) [012]:/) inh = 1; next }
		/<inherited from parent>/ { inh = 1 }
		/== *$/ { if (blk != "" && !inh) print blk; blk = ""; next }
		blk != "" { blk = blk "\n" $0 }
		END { if (blk != "" && !inh) print blk }' "$LOG")
	if [ -n "$fds" ]; then
		echo "valgrind: file descriptors still open in the parent at exit:"
		printf "%b\n" "$fds"; bad=1
	fi
	if [ "$rc" -ne 0 ]; then
		echo "valgrind: server exit status $rc (99 = memcheck errors or leaks)"; bad=1
	fi
	grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|FILE DESCRIPTORS' "$LOG" | sed 's/^==[0-9]*== /  /'
	if [ $bad -ne 0 ]; then
		echo "---- $LOG"; cat "$LOG"
		exit 1
	fi
	echo "valgrind ($NAME): parent clean (no errors, no leaks, no stray fds)"
	check_children "$MINS" "$BR"
}

# check_children MIN_SESSIONS [bridge]: every forked child's own log.  A
# child's --error-exitcode only changes the status the parent reaps, so
# the verdict is read from each log: it must end with an ERROR SUMMARY of
# 0 errors.  Each child pid the server logged must have a log, and each
# log must belong to a child the server logged (no unattributed process).
check_children() {
	local SLOG sessions bridge spawner names pid log kind n=0 nb=0 bad=0
	SLOG=$(cat "$OUT/$NAME"/logs/*.log)
	sessions=$(printf '%s\n' "$SLOG" | sed -n 's/.* connect slot=[0-9]* pid=\([0-9]*\) .*/\1/p')
	bridge=$(printf '%s\n' "$SLOG" | sed -n 's/.* federation: bridge pid=\([0-9]*\) .*/\1/p')
	# the spawner (core/server/spawner.c) is forked by the parent at startup
	spawner=$(printf '%s\n' "$SLOG" | sed -n 's/.* spawner started pid=\([0-9]*\).*/\1/p')
	# name helpers (core/server/names.c), forked on demand, gone when idle
	names=$(printf '%s\n' "$SLOG" | sed -n 's/.* name helper started pid=\([0-9]*\).*/\1/p')
	for pid in $sessions $bridge $spawner $names; do
		[ -f "$OUT/$NAME/vg.$pid.log" ] || { echo "valgrind: no log for child pid $pid"; bad=1; }
	done
	for log in "$OUT/$NAME"/vg.*.log; do
		pid=${log##*/vg.}; pid=${pid%.log}
		[ "$pid" = "$VG" ] && continue
		if printf '%s\n' $bridge | grep -qx "$pid"; then kind=bridge; nb=$((nb + 1))
		elif printf '%s\n' $sessions | grep -qx "$pid"; then kind=session; n=$((n + 1))
		elif printf '%s\n' $spawner | grep -qx "$pid"; then kind=spawner
		elif printf '%s\n' $names | grep -qx "$pid"; then kind=names
		else echo "valgrind: $log: pid $pid is not a child the server logged"; bad=1; continue; fi
		grep -q "Parent PID: $VG\$" "$log" || { echo "valgrind: $log ($kind): not a child of $VG"; bad=1; }
		if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
			echo "valgrind: $kind child $pid: memcheck errors, leaks or an incomplete log:"
			sed 's/^==[0-9]*== /  /' "$log"; bad=1
		fi
	done
	[ "$n" -ge "$1" ] || { echo "valgrind: only $n session child logs (expected >= $1)"; bad=1; }
	# the spawner runs the session image, whose malloc memcheck sees (a
	# static image would report "0 allocs" in every session child)
	for pid in $spawner; do
		grep -q "Command: .*/forkchatd-session " "$OUT/$NAME/vg.$pid.log" 2>/dev/null ||
			{ echo "valgrind: spawner $pid did not exec the session image"; bad=1; }
	done
	# shellcheck disable=SC2086
	if [ -n "$sessions" ] && ! (cd "$OUT/$NAME" && grep -h 'total heap usage: [1-9]' \
		$(for pid in $sessions; do printf 'vg.%s.log ' "$pid"; done) 2>/dev/null | grep -q .); then
		echo "valgrind: no session child's heap was seen by memcheck (static session image?)"; bad=1
	fi
	if [ "${2:-}" = bridge ] && [ "$nb" -ne 1 ]; then
		echo "valgrind: $nb bridge logs (expected 1)"; bad=1
	fi
	[ $bad -eq 0 ] || fail "children"
	echo "valgrind ($NAME): $n session children${2:+ and the bridge} clean (0 errors, no definite/indirect leaks)"
}

REDIS=
stop_redis() {
	[ -n "$REDIS" ] || return 0
	kill -KILL "$REDIS" 2>/dev/null; wait "$REDIS" 2>/dev/null; REDIS=
}

vg_run lone 6 ''

command -v redis-server >/dev/null || { echo "valgrind: FAIL: redis-server is not installed (make deps)"; exit 1; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize no >"$OUT/redis.log" 2>&1 </dev/null &
REDIS=$!
trap stop_redis EXIT
for i in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && break
	sleep 0.1
done
[ "$i" -lt 100 ] || { echo "valgrind: FAIL: redis-server did not listen on $RPORT"; exit 1; }
vg_run federated 6 bridge --redis "127.0.0.1:$RPORT" --hub-id vg
grep -q "federation: connected to redis" "$OUT"/federated/logs/*.log ||
	{ echo "valgrind: FAIL (federated): the bridge never connected to redis"; exit 1; }
stop_redis
