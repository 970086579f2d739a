#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh - run the forkchat benchmark and write bench/results/.
#
#   bench/run.sh quick|full        (make bench-quick / make bench)
#
# Every server (forkchatd, ngircd, inspircd, redis-server) is started here
# on a free loopback port with a config written here, one per run, and
# stopped by PID afterwards; the EXIT trap stops whatever is still running,
# so nothing is left behind even on failure.  Every wait loop is bounded.
# Exit status: 0 when every run delivered everything exactly once and in
# order, 1 otherwise (timings never fail it; the unbounded burst counts
# its cuts instead).  bench/README.md describes the method.
set -u
MODE=${1:-quick}
BUILD=${BUILD:-build}
LOAD=$BUILD/forkchat-load
SERVER=$BUILD/forkchatd
STORM_FLOOR=$BUILD/forkchat-storm-floor	# the connect-storm floor
RES=bench/results
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/forkchat-bench.XXXXXX)
RUNS=$TMP/runs.jsonl
TIMING=$TMP/timing.jsonl	# wall seconds per part, for the report
PROBLEMS=$TMP/problems.txt
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CONF=$TMP/conf		# the peers' configurations, copied into the report
SRV_PID=
SRV_KIND=
FED_PIDS=()	# forkchat-federated: redis-server + 3 hubs of the current run
FED_PORTS=
FED_HUB_PORTS=
FAILED=0
: >"$RUNS"
: >"$TIMING"
: >"$PROBLEMS"

# 1004 clients and their sockets: the servers inherit this limit
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

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

ms_now() {
	echo $(( $(date +%s%N) / 1000000 ))
}

# timing PART N T0_MS: one line of the report's "time per part"
timing() {
	echo "{\"part\": \"$1\", \"n\": $2, \"s\": $(( ($(ms_now) - $3) / 100 ))e-1}" >>"$TIMING"
}

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

# The peers' configurations (RECIPES.md section 8 for ngircd): no
# penalties, no fake lag, no connection limits, no DNS/ident lookups.
ngircd_conf() {	# PORT FILE
	cat >"$2" <<-EOF
	[Global]
	Name = bench.local
	Listen = 127.0.0.1
	Ports = $1
	[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxPenaltyTime = 0
	PingTimeout = 600
	PongTimeout = 600
	[Options]
	DNS = no
	Ident = no
	PAM = no
	EOF
}

inspircd_conf() {	# PORT FILE DIR
	cat >"$2" <<-EOF
	<config format="xml">
	<server name="bench.local" description="forkchat bench peer" network="bench">
	<admin name="bench" nick="bench" email="bench@bench.local">
	<bind address="127.0.0.1" port="$1" type="clients">
	<connect name="main" allow="*" timeout="60" pingfreq="600" threshold="2000000000" commandrate="2000000000" fakelag="no" localmax="100000" globalmax="100000" maxchans="100" limit="100000" recvq="65536" softsendq="1048576" hardsendq="67108864" useident="no" resolvehostnames="no" maxconnwarn="off">
	<performance netbuffersize="65536" somaxconn="4096" softlimit="100000" clonesonconnect="no" nouserdns="yes" quietbursts="yes">
	<pid file="$3/inspircd.pid">
	<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$3/inspircd.log">
	<dns timeout="1">
	<options>
	<security announceinvites="dynamic" hidesplits="no" hideulines="no">
	<limits maxnick="30" maxchan="64" maxmodes="20" maxident="10" maxhost="64" maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxgecos="128" maxaway="200" maxline="2048">
	EOF
}

# keep the first config and command line of each peer for the report
note_conf() {	# KIND COMMAND [CONFIG_FILE]
	[ -e "$CONF/$1.cmd" ] && return
	mkdir -p "$CONF"
	echo "$2" >"$CONF/$1.cmd"
	[ -n "${3:-}" ] && sed "s/$PORT/PORT/g; s#$TMP#TMP#g" "$3" >"$CONF/$1.conf"
}

# start_server forkchat|redis|ngircd|inspircd|floor-storm -> PORT, SRV_PID
start_server() {
	local kind=$1 f
	PORT=$(free_port)
	SRV_KIND=$kind
	case $kind in
	forkchat)
		mkdir -p "$TMP/logs"
		# BACKLOG=default: the server's own --max-backlog (the burst)
		set -- -f -p "$PORT" -b 127.0.0.1 -l "$TMP/logs" -m 1100 \
		    --register-timeout 0
		[ "${BACKLOG:-}" = default ] || set -- "$@" --max-backlog 67108864
		"$SERVER" "$@" 2>>"$TMP/forkchatd.stderr" &
		note_conf "forkchat${BACKLOG:+-burst}" "forkchatd $(echo "$*" | sed "s/$PORT/PORT/; s#$TMP#TMP#")"
		;;
	redis)
		set -- --port "$PORT" --bind 127.0.0.1 --save '' \
		    --appendonly no --daemonize no --maxclients 4000 \
		    --tcp-backlog 4096 --loglevel warning
		redis-server "$@" >>"$TMP/redis.log" 2>&1 &
		note_conf redis "redis-server $(echo "$*" | sed "s/$PORT/PORT/; s/''/\"\"/")"
		;;
	ngircd)
		f=$TMP/ngircd.conf
		ngircd_conf "$PORT" "$f"
		ngircd -n -p -f "$f" >>"$TMP/ngircd.log" 2>&1 &
		note_conf ngircd "ngircd -n -p -f ngircd.conf" "$f"
		;;
	floor-storm)
		"$STORM_FLOOR" -p "$PORT" -b 127.0.0.1 2>>"$TMP/storm-floor.stderr" &
		note_conf floor-storm "forkchat-storm-floor -p PORT -b 127.0.0.1"
		;;
	inspircd)
		f=$TMP/inspircd.conf
		mkdir -p "$TMP/insp"
		inspircd_conf "$PORT" "$f" "$TMP/insp"
		inspircd --nofork --runasroot --config="$f" >>"$TMP/inspircd.out" 2>&1 &
		note_conf inspircd "inspircd --nofork --runasroot --config=inspircd.conf" "$f"
		;;
	esac
	SRV_PID=$!
	if ! wait_port "$PORT" "$SRV_PID"; then
		echo "$kind did not start listening on port $PORT" >>"$PROBLEMS"
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
# SYSTEM: forkchat, forkchat-burst (forkchatd with its default backlog),
# forkchat-federated, ngircd, inspircd, redis, floor-pipe (raw: one write
# and one SIGUSR2 per message and child), floor-pipe-batched (up to 64 per
# write and signal), floor-tcp (pipe+SIGUSR2+TCP), floor-tcp-send
# (floor-tcp whose senders are clients), floor-storm (the
# connect-storm floor, bench/storm_floor.c: connect and register only).
run() {
	local sys=$1 sc=$2 n=$3 s=$4 k=$5 m=$6 rate=$7 rc pidarg= sysarg srv=
	local t0
	shift 7
	CUR="$sys $sc n=$n"
	t0=$(ms_now)
	sysarg="-s $sys"
	case $sys in
	forkchat|redis|ngircd|inspircd) srv=$sys ;;
	forkchat-burst) srv=forkchat; sysarg="-s forkchat --label $sys" ;;
	floor-pipe) sysarg="-s floor-pipe -B 1" ;;
	floor-pipe-batched) sysarg="-s floor-pipe --label $sys -B 64" ;;
	# the TCP floor batches what is due when behind, as forkchatd does
	floor-tcp) sysarg="-s floor-tcp -B 64" ;;
	# the TCP floor whose 4 senders are clients, as forkchat's
	floor-tcp-send) sysarg="-s floor-tcp-send -B 64" ;;
	# the same with forkchatd's output side (F_SETSIG, its cork policy)
	floor-tcp-send-cork)
		sysarg="-s floor-tcp-send --label $sys --cork -B 1000" ;;
	# accepts, forks a child per connection, answers the first line
	floor-storm) srv=floor-storm; sysarg="-s floor-storm --connect-only" ;;
	esac
	if [ "$sys" = forkchat-federated ]; then
		# client i on hub i mod 3; no -P: the memory of 3 hubs + redis
		# is not one process tree
		start_federation || { FAILED=1; return; }
		pidarg="--ports $FED_PORTS"
	elif [ "$sys" = forkchat-burst ]; then
		BACKLOG=default start_server forkchat || { FAILED=1; return; }
		pidarg="-P $SRV_PID"
	elif [ -n "$srv" ]; then
		start_server "$srv" || { FAILED=1; return; }
		pidarg="-P $SRV_PID"
	fi
	settle=0.2
	[ "$n" -ge 500 ] && settle=0.8
	[ "$sys" = forkchat-federated ] && settle=1	# presence crosses Redis
	# shellcheck disable=SC2086
	timeout -k 5 $((BOUND + 30)) "$LOAD" $sysarg -p "${PORT:-1}" -n "$n" \
	    -S "$s" -k "$k" -m "$m" -r "$rate" --scenario "$sc" -j "$RUNS" \
	    --settle $settle -T 120 --drain 30 --quickack $pidarg "$@" \
	    2>"$TMP/load.err"
	rc=$?
	grep -v '^  \[' "$TMP/load.err" >&2
	if [ $rc -ne 0 ] && [ "$sys" = forkchat-burst ]; then
		# the burst measures cuts: they are its result, not a failure
		echo "$CUR: $(grep -m1 -E 'FAILED|error' "$TMP/load.err") (cuts are this run's measurement)" >>"$PROBLEMS"
	elif [ $rc -ne 0 ]; then
		FAILED=1
		echo "$CUR: forkchat-load exit $rc: $(grep -E 'FAILED|first error|did not|not everything' "$TMP/load.err" | head -2 | tr '\n' ' ')" >>"$PROBLEMS"
		if [ "$srv" = forkchat ]; then
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
	elif [ -n "$srv" ]; then
		stop_server
	fi
	if [ "$srv" = forkchat ] && ls "$TMP"/logs/*.log >/dev/null 2>&1; then
		if [ "$sys" = forkchat-burst ]; then
			echo "{\"system\": \"$sys\", \"scenario\": \"$sc\", \"n\": $n, \"cuts\": $(cat "$TMP"/logs/*.log | grep -c 'slow-consumer')}" >>"$TMP/cuts.jsonl"
		fi
		grep -h -E 'slow-consumer|error' "$TMP"/logs/*.log | head -3 |
		    sed "s/^/$CUR: server log: /" >>"$PROBLEMS"
		rm -f "$TMP"/logs/*.log
	fi
	timing "$sys $sc" "$n" "$t0"
}

# per-sender count so that a back-to-back run makes about D deliveries
per_sender() {	# N S D
	local v=$(( $3 / ($2 * ($1 - 1)) ))
	[ $v -lt 50 ] && v=50
	echo $v
}

# ---- the scenarios --------------------------------------------------------
# Method (bench/README.md): N = receivers in the room, so N + SEND client
# processes for the systems whose senders are clients (floor-pipe's and
# floor-tcp's senders are virtual: N receivers, nothing extra;
# floor-tcp-send's are clients).  Paced runs: RATE messages/s
# over SEND senders for PACED s (full: 10 s, 1000 messages); REPS runs per
# (system, N), then (the servers) REPS windowed back-to-back runs, all on
# one server and one set of connected clients (forkchat-load --repeat,
# --max-repeat); the report shows the median and min..max.
# Order: what the goals of issue 17 need first; ten rooms, federation and
# hyperfine after, skipped (and said so) once BUDGET seconds have passed,
# so that make bench stays under about 20 minutes on a loaded 2-core
# machine (bench/README.md, "Time budget").

if [ "$MODE" = quick ]; then
	NS="10 100"
	MAXD=500000
	REPS=${BENCH_REPS:-1}
	PACED=${BENCH_PACED_S:-3}
	INSP_NS=${BENCH_INSPIRCD_NS:-}
	FLOOR_PIPE_NS="10 100"
	MEM_NS="100"
	FLOOR_SEND_NS="10 100"
	BUDGET=${BENCH_BUDGET_S:-180}
else
	NS="10 100 500 1000"
	MAXD=300000
	REPS=${BENCH_REPS:-3}
	PACED=${BENCH_PACED_S:-10}
	INSP_NS=${BENCH_INSPIRCD_NS:-10}	# paced only: see bench/README.md
	FLOOR_PIPE_NS="10"		# time: the goals use the TCP floor
	MEM_NS="100 1000"
	FLOOR_SEND_NS="10 100 1000"	# goal 4's floor with real senders
	# the goals' parts take about 14 min, ten rooms, federation and
	# hyperfine about 3 more (bench/README.md, "Time budget")
	BUDGET=${BENCH_BUDGET_S:-1080}
fi
RATE=100	# paced: messages/s over all senders (100 k deliveries/s at N=1000)
SEND=4		# senders in one room, in addition to the N receivers
WINDOW=32	# windowed back to back: messages in flight per sender
# the servers: paced then windowed back to back on one set-up each
SERVERS="forkchat ngircd redis"
command -v ngircd >/dev/null || { echo "ngircd is not installed (make deps)" >>"$PROBLEMS"; FAILED=1; }
command -v inspircd >/dev/null || { echo "inspircd is not installed: no InspIRCd runs" >>"$PROBLEMS"; INSP_NS=""; }

# clients: N receivers, plus the senders for the client-sender systems
clients() {	# SYSTEM N
	case $1 in floor-tcp-send*) echo $(($2 + SEND)) ;; floor-*) echo "$2" ;;
	*) echo $(($2 + SEND)) ;; esac
}
in_list() {	# N LIST
	case " $2 " in *" $1 "*) return 0 ;; esac
	return 1
}
# within_budget WHAT: false (and a note) once BUDGET seconds have passed
within_budget() {
	if [ $(( $(date +%s) - T0 )) -gt "$BUDGET" ]; then
		echo "skipped $1: the time budget of $BUDGET s was used up (BENCH_BUDGET_S)" >>"$PROBLEMS"
		return 1
	fi
}
BOUND=$((60 + REPS * (PACED + 40)))	# -T: set-up + every phase

echo "forkchat bench ($MODE): $(date); NS=$NS, paced ${PACED}s x $REPS" >&2
for n in $NS; do
	extra=
	in_list "$n" "$FLOOR_PIPE_NS" && extra="floor-pipe"
	in_list "$n" "$INSP_NS" && extra="$extra inspircd"
	c=$((n + SEND))
	for sys in $SERVERS; do	# one-room, then one-room-max
		run "$sys" one-room $c $SEND 1 $((RATE * PACED / SEND)) $RATE \
		    -d $((PACED + 5)) -R "$REPS" --max-repeat "$REPS" \
		    --max-messages "$(per_sender $c $SEND $MAXD)" -w $WINDOW -T $BOUND
	done
	# floor-tcp also windowed back to back (its virtual senders keep
	# the same window): the floor of goal 4
	run floor-tcp one-room "$n" $SEND 1 $((RATE * PACED / SEND)) $RATE \
	    -d $((PACED + 5)) -R "$REPS" --max-repeat "$REPS" \
	    --max-messages "$(per_sender "$n" $SEND $MAXD)" -w $WINDOW -T $BOUND
	# floor-tcp-send windowed back to back only (the window as above):
	# goal 4's floor when the senders' hop is paid, as forkchat and Redis
	# pay it (bench/README.md)
	if in_list "$n" "$FLOOR_SEND_NS"; then
		for sys in floor-tcp-send floor-tcp-send-cork; do
			run $sys one-room-max $c $SEND 1 \
			    "$(per_sender $c $SEND $MAXD)" 0 -d $((PACED + 5)) \
			    -R "$REPS" -w $WINDOW -T $BOUND
		done
	fi
	for sys in $extra; do
		run "$sys" one-room "$(clients "$sys" "$n")" $SEND 1 \
		    $((RATE * PACED / SEND)) $RATE -d $((PACED + 5)) -R "$REPS" -T $BOUND
	done
	run floor-pipe-batched one-room-max "$n" $SEND 1 \
	    "$(per_sender "$n" $SEND $MAXD)" 0 -d 8 -R "$REPS" -T $BOUND
done
# the unbounded burst of issue 17 (N = 10, forkchatd's default backlog):
# the senders write back to back with no window; cuts are counted
run forkchat-burst one-room-burst $((10 + SEND)) $SEND 1 \
    "$(per_sender $((10 + SEND)) $SEND $((MAXD * 2)))" 0 -d 8 --drain 3
if [ "$MODE" = full ]; then
	# the connect-storm floor between the two, 3 rounds interleaved:
	# the report takes each system's median
	for round in 1 2 3; do
		for sys in forkchat floor-storm redis; do
			run "$sys" connect-storm 1000 1 1 5 0
		done
	done
fi
# goal 3 after a burst: bench/memory.py's method on a forkchatd of its own
# (default backlog): attach N clients, read the tree idle; a back-to-back
# burst of about MEM_DELIVERIES deliveries through their room, read it
# again; attach N more (forked after the parent's heap grew), read again.
MEM_DELIVERIES=4000000
for n in ${BENCH_MEMORY_NS-$MEM_NS}; do
	t0=$(ms_now)
	CUR="memory after a burst n=$n"
	BUILD=$BUILD timeout -k 5 400 $PY bench/memory.py -n "$n" \
	    --burst-deliveries $MEM_DELIVERIES --json "$TMP/memory.json" \
	    >"$TMP/memory.out" 2>&1
	rc=$?
	echo "memory after a burst, n=$n:" >&2
	cat "$TMP/memory.out" >&2
	if [ $rc -ne 0 ]; then
		FAILED=1
		echo "$CUR: bench/memory.py exit $rc: $(tail -2 "$TMP/memory.out" | tr '\n' ' ')" >>"$PROBLEMS"
	fi
	timing "memory after a burst" "$n" "$t0"
done
if [ "$MODE" = full ]; then
	if within_budget "ten-rooms"; then
		# -T as the other N = 1000 runs: registration may take half
		# of it, and ngircd registers 1000 clients in 60-68 s here
		# (a few at a time), over the default -T 120's 60 s
		for sys in forkchat ngircd redis floor-pipe; do
			run "$sys" ten-rooms 1000 10 10 $((2 * RATE * 2 / 10)) $((2 * RATE)) \
			    -T $BOUND
		done
	fi
fi
# Federation (docs/SCALING.md): 3 hubs x 33 clients (quick: x 10) in one
# room vs one hub with all of them, the same one-room (paced, 2 s) and
# one-room-max (back to back, unwindowed) loads; the report's "Federation"
# table divides the two (the cost of the extra hop).  (CI's bench-check
# runs its own A/B of the federated point: ci/bench_ab.py.)
if [ "$MODE" = full ]; then FEDN=$((FED_HUBS * 33))
else FEDN=$((FED_HUBS * 10)); fi
if within_budget "federation"; then
	for sys in forkchat forkchat-federated; do
		run "$sys" fed-one-room $FEDN $SEND 1 $((RATE * 2 / SEND)) $RATE
		run "$sys" fed-one-room-max $FEDN $SEND 1 "$(per_sender $FEDN $SEND $MAXD)" 0 -d 8
	done
fi
echo "runs done in $(( $(date +%s) - T0 )) s" >&2

# ---- hyperfine: whole commands ----------------------------------------------
if within_budget "hyperfine"; then
	t0=$(ms_now)
	BENCH_TMP=$TMP LOAD=$LOAD SERVER=$SERVER MODE=$MODE RES=$RES \
	    bench/hyperfine.sh 2>>"$PROBLEMS.hf" || echo "hyperfine step failed: $(tail -3 "$PROBLEMS.hf" | tr '\n' ' ')" >>"$PROBLEMS"
	timing hyperfine 100 "$t0"
fi

# ---- report -------------------------------------------------------------------
mkdir -p "$RES"
$PY bench/report.py --runs "$RUNS" --problems "$PROBLEMS" --started "$STARTED" \
    --mode "$MODE" --out "$RES" --server "$SERVER" --conf "$CONF" \
    --cuts "$TMP/cuts.jsonl" --wall-s $(( $(date +%s) - T0 )) \
    --memory "$TMP/memory.json" --timing "$TIMING" --budget-s "$BUDGET" \
    --reps "$REPS" --paced-s "$PACED" --rate $RATE --window $WINDOW \
    --loadavg "$LOAD_START -> $(cut -d' ' -f1-3 /proc/loadavg)" || FAILED=1
# the hyperfine exports are results files too: tie them to the code
for f in "$RES"/hyperfine-*.json; do
	[ -f "$f" ] && [ "$f" -nt "$RUNS" ] && $PY ci/provenance.py stamp "$f" "$SERVER"
done
cat "$RES/latest.md"
if [ -s "$PROBLEMS" ]; then
	echo; echo "Problems:"; sed 's/^/  /' "$PROBLEMS"
fi
exit $FAILED
