#!/usr/bin/env bash
# ci/valgrind.sh - memcheck the server (parent process) through a scripted
# session: ci/scenario.py (4+1 clients, chat, rooms, whisper, errors,
# disconnect, quit), SIGHUP (log reopen), a client held open across
# SIGTERM (graceful shutdown).  Twice: a lone hub, then a federated one
# (--redis, a redis-server of our own on a free port, stopped by PID), so
# fed.c's state (unacknowledged events, claims, cursor) is checked too.  Fails on any memcheck error, a definite or
# indirect leak, or a file descriptor still open in the parent at exit
# other than 0-2.  Forked children keep running under valgrind (fork is
# not exec) but are silenced (--child-silent-after-fork); they leave
# through _exit(), see ci/README.md.
set -uo pipefail
BUILD=${BUILD:-build}
PY=/usr/bin/python3
SERVER=$BUILD/forkchatd
OUT=$BUILD/valgrind
rm -rf "$OUT" && mkdir -p "$OUT"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "valgrind: FAIL ($NAME): $*"; exit 1; }

# vg_run NAME [server args...]: one memchecked server through the session.
vg_run() {
	NAME=$1; shift
	local PORT; PORT=$(free_port)
	mkdir -p "$OUT/$NAME/logs"

	valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --track-fds=yes \
		--trace-children=no --child-silent-after-fork=yes --error-exitcode=99 \
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
}

REDIS=
stop_redis() {
	[ -n "$REDIS" ] || return 0
	kill -KILL "$REDIS" 2>/dev/null; wait "$REDIS" 2>/dev/null; REDIS=
}

vg_run lone

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
vg_run federated --redis "127.0.0.1:$RPORT" --hub-id vg
grep -q "federation: connected to redis" "$OUT"/federated/logs/*.log ||
	{ echo "valgrind: FAIL (federated): the bridge never connected to redis"; exit 1; }
stop_redis
