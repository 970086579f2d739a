#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/hyperfine.sh - whole-command timings with hyperfine, called by run.sh.
#
#   startup      forkchatd (daemon mode) from exec until it accepts: the
#                launching process exits only once the daemon listens
#   connect100   forkchat-load --connect-only: fork 100 clients, connect and
#                register them, quit (forkchatd and Redis SUBSCRIBE)
#   shutdown100  SIGTERM to a forkchatd with 100 registered clients until
#                the process is gone (forkchat-load --stop polls every 0.5 ms)
#
# Internal helpers (used as hyperfine --prepare): _stop PIDFILE,
# _hold PIDFILE PORT LOGDIR.
set -u
LOAD=${LOAD:-build/forkchat-load}
SERVER=${SERVER:-build/forkchatd}

case ${1:-} in
_stop)	# stop the daemon named by PIDFILE if it runs (bounded by -T)
	[ -s "$2" ] && "$LOAD" --stop --pid-file "$2" -T 8 -q
	rm -f "$2"
	exit 0 ;;
_hold)	# fresh daemon + 100 registered idle clients that stay connected
	[ -s "$2" ] && "$LOAD" --stop --pid-file "$2" -T 8 -q
	rm -f "$2"
	"$SERVER" -p "$3" -b 127.0.0.1 -l "$4" --pid-file "$2" \
	    --register-timeout 0 -m 1100 || exit 1
	exec "$LOAD" -q -p "$3" -n 100 --hold 30 --nick-prefix pid -T 20 ;;
esac

TMPD=${BENCH_TMP:?}
RES=${RES:-bench/results}
MODE=${MODE:-quick}
RUNS=10
[ "$MODE" = quick ] && RUNS=5
PF=$TMPD/hf.pid
LOGS=$TMPD/hflogs
SELF=bench/hyperfine.sh
mkdir -p "$RES" "$LOGS"
port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
HF="hyperfine --style basic"
rc=0

# 1. startup to accepting
P=$(port)
$HF --warmup 1 --runs $RUNS -N \
    --prepare "bash $SELF _stop $PF" --cleanup "bash $SELF _stop $PF" \
    --export-json "$RES/hyperfine-startup.json" \
    --export-markdown "$RES/hyperfine-startup.md" \
    -n "forkchatd startup to accepting" \
    "$SERVER -p $P -b 127.0.0.1 -l $LOGS --pid-file $PF" >&2 || rc=1
bash $SELF _stop "$PF"

# 2. connect + register 100 clients: forkchatd and Redis side by side
P=$(port)
R=$(port)
"$SERVER" -f -p "$P" -b 127.0.0.1 -l "$LOGS" -m 1100 2>/dev/null &
FPID=$!
redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no \
    --loglevel warning --tcp-backlog 4096 >/dev/null 2>&1 &
RPID=$!
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.1/$R") 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05
done
$HF --warmup 2 --runs $RUNS -N \
    --export-json "$RES/hyperfine-connect100.json" \
    --export-markdown "$RES/hyperfine-connect100.md" \
    -n "forkchat: 100 clients connect+register" \
    "$LOAD -q -p $P -n 100 --connect-only --nick-prefix pid" \
    -n "redis: 100 clients connect+SUBSCRIBE" \
    "$LOAD -q -s redis -p $R -n 100 --connect-only" >&2 || rc=1
for p in $FPID $RPID; do
	kill -TERM $p 2>/dev/null
	j=0
	while kill -0 $p 2>/dev/null && [ $j -lt 60 ]; do sleep 0.1; j=$((j + 1)); done
	kill -KILL $p 2>/dev/null
	wait $p 2>/dev/null
done

# 3. graceful shutdown with 100 clients connected
P=$(port)
$HF --warmup 1 --runs $RUNS -N \
    --prepare "bash $SELF _hold $PF $P $LOGS" \
    --cleanup "bash $SELF _stop $PF" \
    --export-json "$RES/hyperfine-shutdown100.json" \
    --export-markdown "$RES/hyperfine-shutdown100.md" \
    -n "forkchatd graceful shutdown, 100 clients" \
    "$LOAD --stop --pid-file $PF -T 10" >&2 || rc=1
bash $SELF _stop "$PF"
exit $rc
