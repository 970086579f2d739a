#!/usr/bin/env bash
# ci/valgrind.sh - memcheck the server (parent process) through a scripted
# session: ci/scenario.py (4+1 clients, chat, rooms, whisper, errors,
# disconnect, quit), SIGHUP (log reopen), a client held open across
# SIGTERM (graceful shutdown).  Fails on any memcheck error, a definite or
# indirect leak, or a file descriptor still open in the parent at exit
# other than 0-2.  Forked children keep running under valgrind (fork is
# not exec) but are silenced (--child-silent-after-fork); they leave
# through _exit(), see ci/README.md.
set -uo pipefail
BUILD=${BUILD:-build}
PY=/usr/bin/python3
SERVER=$BUILD/forkchatd
OUT=$BUILD/valgrind
rm -rf "$OUT" && mkdir -p "$OUT/logs"

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fail() { echo "valgrind: FAIL: $*"; exit 1; }

valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=yes \
	--trace-children=no --child-silent-after-fork=yes --error-exitcode=99 \
	--log-file="$OUT/vg.%p.log" \
	"$SERVER" -f -p "$PORT" -b 127.0.0.1 -l "$OUT/logs" >"$OUT/stdout" 2>"$OUT/stderr" &
VG=$!
cleanup() { kill -KILL "$VG" 2>/dev/null; }
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
$PY ci/scenario.py "$PORT" --hold >"$OUT/hold.out" 2>&1 &
HOLD=$!
for i in $(seq 200); do grep -q holding "$OUT/hold.out" 2>/dev/null && break; sleep 0.1; done
grep -q holding "$OUT/hold.out" || fail "holding client did not register"

kill -TERM "$VG"
for i in $(seq 600); do kill -0 "$VG" 2>/dev/null || break; sleep 0.1; done
kill -0 "$VG" 2>/dev/null && fail "server still running 60 s after SIGTERM"
wait "$VG"; rc=$?
trap - EXIT
wait "$HOLD" || { cat "$OUT/hold.out"; fail "held client did not get BYE SHUTDOWN"; }

LOG=$OUT/vg.$VG.log
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
echo "valgrind: parent clean (no errors, no leaks, no stray fds)"
