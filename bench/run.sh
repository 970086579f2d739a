#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh - run the forkchat benchmark and write bench/results/.
#
#   bench/run.sh quick|full        (make bench-quick / make bench)
#
# Every server (forkchatd, redis-server) is started here on a free loopback
# port, one per run, and stopped by PID afterwards; the EXIT trap stops
# whatever is still running, so nothing is left behind even on failure.
# Every wait loop is bounded.  Exit status: 0 when every run delivered
# everything exactly once and in order, 1 otherwise (timings never fail it).
set -u
MODE=${1:-quick}
BUILD=${BUILD:-build}
LOAD=$BUILD/forkchat-load
SERVER=$BUILD/forkchatd
RES=bench/results
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/forkchat-bench.XXXXXX)
RUNS=$TMP/runs.jsonl
PROBLEMS=$TMP/problems.txt
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SRV_PID=
SRV_KIND=
FED_PIDS=()	# forkchat-federated: redis-server + 3 hubs of the current run
FED_PORTS=
FED_HUB_PORTS=
FAILED=0
: >"$RUNS"
: >"$PROBLEMS"

case $MODE in
quick|full) ;;
*) echo "usage: $0 quick|full" >&2; exit 2 ;;
esac

# ---- process hygiene ------------------------------------------------------

# stop_pid PID: SIGTERM, wait up to 6 s, then SIGKILL; exit status in STOP_ST.
# (Not in $(...): wait only works on children of this shell.)
stop_pid() {
	local pid=$1 i=0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 60 ]; do
		sleep 0.1; i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "pid $pid ignored SIGTERM for 6 s: SIGKILL" >>"$PROBLEMS"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	STOP_ST=$?
}

cleanup() {
	local p
	[ -n "$SRV_PID" ] && stop_pid "$SRV_PID"
	for p in "${FED_PIDS[@]}"; do
		stop_pid "$p"
	done
	for p in "$TMP"/hf*.pid; do
		[ -f "$p" ] && "$LOAD" --stop --pid-file "$p" -T 6 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something accepts on 127.0.0.1:PORT (5 s).
wait_port() {
	local i=0
	while [ $i -lt 100 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# start_server forkchat|redis -> PORT, SRV_PID
start_server() {
	PORT=$(free_port)
	SRV_KIND=$1
	if [ "$1" = forkchat ]; then
		mkdir -p "$TMP/logs"
		"$SERVER" -f -p "$PORT" -b 127.0.0.1 -l "$TMP/logs" \
		    --max-backlog 67108864 -m 1100 --register-timeout 0 \
		    2>>"$TMP/forkchatd.stderr" &
	else
		redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
		    --appendonly no --daemonize no --maxclients 4000 \
		    --tcp-backlog 4096 --loglevel warning \
		    >>"$TMP/redis.log" 2>&1 &
	fi
	SRV_PID=$!
	if ! wait_port "$PORT" "$SRV_PID"; then
		echo "$1 did not start listening on port $PORT" >>"$PROBLEMS"
		stop_server
		return 1
	fi
}

# stop_server: stop by PID; a forkchatd that does not exit 0 on SIGTERM
# or leaves children behind is a problem worth reporting.
stop_server() {
	local left
	[ -z "$SRV_PID" ] && return
	stop_pid "$SRV_PID"
	if [ "$SRV_KIND" = forkchat ] && [ "$STOP_ST" != 0 ]; then
		echo "forkchatd (run: $CUR) exited with status $STOP_ST after SIGTERM" >>"$PROBLEMS"
	fi
	# children re-parented after the parent died are orphans: report them
	left=$(ps -eo pid=,args= | grep -c "[f]orkchatd -f -p $PORT ")
	if [ "$left" -gt 0 ]; then
		echo "forkchatd (run: $CUR) left $left processes behind after exiting" >>"$PROBLEMS"
	fi
	SRV_PID=
}

# start_federation: a redis-server and 3 hubs (forkchatd --redis --hub-id)
# on free ports, -> PORT (hub 0), FED_PORTS (P0,P1,P2), FED_PIDS; waits
# until every hub's bridge has logged "federation: connected" (5 s).
FED_HUBS=3
start_federation() {
	local rport hp=() i p t pid
	FED_HUB_PORTS=
	rport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --save '' \
	    --appendonly no --daemonize no --maxclients 4000 \
	    --tcp-backlog 4096 --loglevel warning \
	    >>"$TMP/redis.log" 2>&1 &
	pid=$!
	FED_PIDS+=("$pid")
	if ! wait_port "$rport" "$pid"; then
		echo "redis (federation) did not start listening on port $rport" >>"$PROBLEMS"
		stop_federation
		return 1
	fi
	for i in $(seq 0 $((FED_HUBS - 1))); do
		p=$(free_port)
		mkdir -p "$TMP/fed/h$i"
		"$SERVER" -f -p "$p" -b 127.0.0.1 -l "$TMP/fed/h$i" \
		    --max-backlog 67108864 -m 1100 --register-timeout 0 \
		    --redis "127.0.0.1:$rport" --hub-id "h$i" \
		    2>>"$TMP/forkchatd.stderr" &
		pid=$!
		FED_PIDS+=("$pid")
		if ! wait_port "$p" "$pid"; then
			echo "federated hub h$i did not start listening on port $p" >>"$PROBLEMS"
			stop_federation
			return 1
		fi
		hp+=("$p")
		FED_HUB_PORTS="$FED_HUB_PORTS $p"
	done
	for i in $(seq 0 $((FED_HUBS - 1))); do
		t=0
		until grep -q "federation: connected" "$TMP/fed/h$i"/*.log 2>/dev/null; do
			t=$((t + 1))
			if [ $t -gt 100 ]; then
				echo "federated hub h$i: no 'federation: connected' in 5 s" >>"$PROBLEMS"
				stop_federation
				return 1
			fi
			sleep 0.05
		done
	done
	PORT=${hp[0]}
	FED_PORTS=$(IFS=,; echo "${hp[*]}")
}

# stop_federation: hubs first (a stopping hub publishes its empty presence),
# then redis; every one by PID; a hub that does not exit 0 is a problem.
stop_federation() {
	local i pid p left=0
	for ((i = ${#FED_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${FED_PIDS[$i]}
		stop_pid "$pid"
		if [ "$i" -gt 0 ] && [ "$STOP_ST" != 0 ]; then
			echo "federated hub (run: $CUR) exited with status $STOP_ST after SIGTERM" >>"$PROBLEMS"
		fi
	done
	FED_PIDS=()
	for p in $FED_HUB_PORTS; do
		left=$((left + $(ps -eo pid=,args= | grep -c "[f]orkchatd -f -p $p ")))
	done
	FED_HUB_PORTS=
	if [ "$left" -gt 0 ]; then
		echo "federated hubs (run: $CUR) left $left processes behind after exiting" >>"$PROBLEMS"
	fi
}

# ---- one measurement ------------------------------------------------------

# run SYSTEM SCENARIO N SENDERS ROOMS MESSAGES_PER_SENDER RATE [extra args]
run() {
	local sys=$1 sc=$2 n=$3 s=$4 k=$5 m=$6 rate=$7 rc pidarg=
	shift 7
	CUR="$sys $sc n=$n"
	if [ "$sys" = forkchat-federated ]; then
		# client i on hub i mod 3; no -P: the memory of 3 hubs + redis
		# is not one process tree
		start_federation || { FAILED=1; return; }
		pidarg="--ports $FED_PORTS"
	elif [ "$sys" != floor ]; then
		start_server "$sys" || { FAILED=1; return; }
		pidarg="-P $SRV_PID"
	fi
	settle=0.2
	[ "$n" -ge 500 ] && settle=0.8
	[ "$sys" = forkchat-federated ] && settle=1	# presence crosses Redis
	# shellcheck disable=SC2086
	timeout -k 5 120 "$LOAD" -s "$sys" -p "${PORT:-1}" -n "$n" -S "$s" -k "$k" \
	    -m "$m" -r "$rate" --scenario "$sc" -j "$RUNS" --settle $settle \
	    -T 100 $pidarg "$@" 2>"$TMP/load.err"
	rc=$?
	grep -v '^  \[' "$TMP/load.err" >&2
	if [ $rc -ne 0 ]; then
		FAILED=1
		echo "$CUR: forkchat-load exit $rc: $(grep -m1 -E 'FAILED|error|did not' "$TMP/load.err")" >>"$PROBLEMS"
		if [ "$sys" = forkchat ]; then
			mkdir -p "$RES/failures"
			cp "$TMP"/logs/*.log "$RES/failures/forkchatd-$sc-$n.log" 2>/dev/null
		elif [ "$sys" = forkchat-federated ]; then
			mkdir -p "$RES/failures"
			for i in $(seq 0 $((FED_HUBS - 1))); do
				cp "$TMP"/fed/h$i/*.log "$RES/failures/forkchatd-fed-h$i-$sc-$n.log" 2>/dev/null
			done
		fi
	fi
	if [ "$sys" = forkchat-federated ]; then
		stop_federation
		grep -h -E 'slow-consumer|error' "$TMP"/fed/h*/*.log 2>/dev/null | head -3 |
		    sed "s/^/$CUR: hub log: /" >>"$PROBLEMS"
		rm -rf "$TMP/fed"
	elif [ "$sys" != floor ]; then
		stop_server
	fi
	if [ "$sys" = forkchat ] && ls "$TMP"/logs/*.log >/dev/null 2>&1; then
		grep -h -E 'slow-consumer|error' "$TMP"/logs/*.log | head -3 |
		    sed "s/^/$CUR: server log: /" >>"$PROBLEMS"
		rm -f "$TMP"/logs/*.log
	fi
}

# per-sender count so that a back-to-back run makes about D deliveries
per_sender() {	# N S D
	local v=$(( $3 / ($2 * ($1 - 1)) ))
	[ $v -lt 50 ] && v=50
	echo $v
}

# ---- the scenarios --------------------------------------------------------

SYSTEMS="floor forkchat redis"
if [ "$MODE" = quick ]; then
	NS="10 100"
	MAXD=1000000
else
	NS="10 100 500 1000"
	MAXD=2000000
fi
REPEAT=3	# back-to-back runs per point; the report keeps the median
RATE=100	# one-room: messages/s over all senders (100 k deliveries/s at N=1000)
PACED=2		# seconds of paced traffic
SEND=4		# senders in one room

echo "forkchat bench ($MODE): $(date)" >&2
for n in $NS; do
	for sys in $SYSTEMS; do
		run "$sys" one-room "$n" $SEND 1 $((RATE * PACED / SEND)) $RATE
		for rep in $(seq "$REPEAT"); do
			run "$sys" one-room-max "$n" $SEND 1 "$(per_sender "$n" $SEND $MAXD)" 0 -d 8
		done
	done
done
if [ "$MODE" = full ]; then
	for sys in $SYSTEMS; do
		run "$sys" ten-rooms 1000 10 10 $((2 * RATE * PACED / 10)) $((2 * RATE))
	done
	for sys in forkchat redis; do
		run "$sys" connect-storm 1000 1 1 5 0
	done
fi
# Federation (docs/SCALING.md): 3 hubs x 33 clients (quick: x 10) in one
# room vs one hub with all of them, the same one-room (paced) and
# one-room-max (back to back; full: 3 runs, median) loads; the report's
# "Federation" table divides the two (the cost of the extra hop).  (CI's
# bench-check runs its own A/B of the federated point: ci/bench_ab.py.)
if [ "$MODE" = full ]; then FEDN=$((FED_HUBS * 33)) FEDREP=$REPEAT
else FEDN=$((FED_HUBS * 10)) FEDREP=1; fi
for sys in forkchat forkchat-federated; do
	run "$sys" one-room $FEDN $SEND 1 $((RATE * PACED / SEND)) $RATE
	for rep in $(seq "$FEDREP"); do
		run "$sys" one-room-max $FEDN $SEND 1 "$(per_sender $FEDN $SEND $MAXD)" 0 -d 8
	done
done

# ---- hyperfine: whole commands ----------------------------------------------
BENCH_TMP=$TMP LOAD=$LOAD SERVER=$SERVER MODE=$MODE RES=$RES \
    bench/hyperfine.sh 2>>"$PROBLEMS.hf" || echo "hyperfine step failed: $(tail -3 "$PROBLEMS.hf" | tr '\n' ' ')" >>"$PROBLEMS"

# ---- report -------------------------------------------------------------------
mkdir -p "$RES"
$PY bench/report.py --runs "$RUNS" --problems "$PROBLEMS" --started "$STARTED" \
    --mode "$MODE" --out "$RES" --server "$SERVER" || FAILED=1
# the hyperfine exports are results files too: tie them to the code
for f in "$RES"/hyperfine-*.json; do
	[ -f "$f" ] && [ "$f" -nt "$RUNS" ] && $PY ci/provenance.py stamp "$f" "$SERVER"
done
cat "$RES/latest.md"
if [ -s "$PROBLEMS" ]; then
	echo; echo "Problems:"; sed 's/^/  /' "$PROBLEMS"
fi
exit $FAILED
