#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# federated.sh - forkchat-load against three federated hubs vs one hub
# (docs/SCALING.md).  Starts a redis-server and the hubs on free 127.0.0.1
# ports, runs the same scenarios against system "forkchat" (one hub) and
# "forkchat-federated" (clients spread over three hubs with --ports), and
# appends the JSON lines to bench/results/federated.json.  Every process it
# starts is stopped by PID.
#
#   bash bench/federated.sh            (after make && make build/forkchat-load)
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
SERVER=$PWD/build/forkchatd
LOAD=$PWD/build/forkchat-load
OUT=$PWD/bench/results/federated.json
TMP=$(mktemp -d /tmp/fc-fed.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$TMP"' EXIT

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
hub() {	# hub PORT NAME [args]: start a forkchatd, record its pid
	local port=$1 name=$2
	shift 2
	mkdir -p "$TMP/$name"
	"$SERVER" -f -p "$port" -l "$TMP/$name" --max-backlog 67108864 -m 1100 \
	    --register-timeout 0 "$@" 2>>"$TMP/$name/stderr" &
	PIDS+=($!)
	wait_port "$port" || { echo "hub $name did not start" >&2; exit 1; }
}

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --loglevel warning >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$RPORT" || { echo "redis did not start" >&2; exit 1; }
SOLO=$(free_port)
hub "$SOLO" solo
HP=()
for i in 0 1 2; do
	p=$(free_port)
	hub "$p" "h$i" --redis "127.0.0.1:$RPORT" --hub-id "h$i"
	HP+=("$p")
done
for i in 0 1 2; do
	for t in $(seq 100); do
		grep -q "federation: connected" "$TMP/h$i"/*.log 2>/dev/null && break
		sleep 0.05
	done
done
PORTS=$(IFS=,; echo "${HP[*]}")

mkdir -p "$(dirname "$OUT")"
# which code these lines measure (git commit, dirty flag, compiler, kernel)
$PY ci/provenance.py line "$SERVER" >>"$OUT"
rc=0
# scenario N SENDERS MESSAGES RATE
for sc in "paced 30 3 200 300" "paced 99 3 200 300" "max 30 3 3000 0" "max 99 3 1000 0"; do
	set -- $sc
	name=$1 n=$2 s=$3 m=$4 r=$5
	"$LOAD" -s forkchat -p "$SOLO" -n "$n" -S "$s" -m "$m" -r "$r" -q \
	    --nick-prefix pid --scenario "$name-n$n" -j "$OUT" -T 100 || rc=1
	"$LOAD" -s forkchat-federated -p "${HP[0]}" --ports "$PORTS" -n "$n" -S "$s" \
	    -m "$m" -r "$r" -q --nick-prefix pid --scenario "$name-n$n" -j "$OUT" -T 100 \
	    --settle 1 || rc=1
done
tail -n 8 "$OUT" | $PY -c '
import json, sys
print("%-19s %-9s %8s %8s %5s %4s %5s %9s %9s %10s" % ("system", "scenario", "expected",
      "received", "lost", "dup", "order", "p50_us", "p99_us", "deliv/s"))
for l in sys.stdin:
    d = json.loads(l)
    print("%-19s %-9s %8d %8d %5d %4d %5d %9.0f %9.0f %10d" % (d["system"], d["scenario"],
          d["expected"], d["received"], d["lost"], d["duplicated"], d["out_of_order"],
          d["p50_us"], d["p99_us"], d["deliveries_per_s"]))
'
exit $rc
