#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""ci/bench_ab.py - run the base and the candidate forkchatd interleaved.

    ci/bench_ab.py --base BASE_FORKCHATD --cand CAND_FORKCHATD --load FORKCHAT_LOAD
                   --out RUNS.jsonl [--rounds R] [--points NAME,...]

Called by ci/bench.sh (make bench-check).  Both servers are driven by the
same load generator (the candidate's build/forkchat-load), so only the
server differs.  Round i runs every point once for each side, base first
in even rounds and candidate first in odd ones (A B, B A, A B, ...), so a
drift of the machine's speed during the run hits both sides alike.  Each
forkchat-load result is appended to RUNS.jsonl tagged with side, round,
point and gated metric; ci/bench_compare.py gives the verdict.

Every server (forkchatd, redis-server) is started on a free 127.0.0.1 port
for one run and stopped by PID (SIGTERM, then SIGKILL after 6 s); an exit
status other than 0 after SIGTERM is recorded as a failure of that run.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration", "lib"))
from harness.procfs import accepting, free_port  # noqa: E402
from harness.timescale import wait_for  # noqa: E402

SEND = 4                # senders in the room
RATE = 100              # paced: messages/s over all senders
PACED_S = 2             # seconds of paced traffic
MAXD = 2000000          # unpaced: about this many deliveries per run (1-2 s)
HUBS = 3


def per_sender(n, d=MAXD):
    return max(50, d // (SEND * (n - 1)))


# name -> (system, scenario, N, gated metric)
POINTS = {
    "one-room-max/10": ("forkchat", "one-room-max", 10, "deliveries_per_s"),
    "one-room-max/100": ("forkchat", "one-room-max", 100, "deliveries_per_s"),
    "one-room/100": ("forkchat", "one-room", 100, "p50_us"),
    "fed:one-room-max/30": ("forkchat-federated", "one-room-max", 30, "deliveries_per_s"),
}
DEFAULT_POINTS = list(POINTS)


class Procs:
    """Every process we start, stopped by PID."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log):
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        self.procs.append(p)
        return p

    def stop(self, p):
        """SIGTERM, 6 s, SIGKILL.  Returns (exit status or None if it had to
        be killed, CPU seconds of the process and every child it reaped):
        wait4()'s rusage, so a server's session children count."""
        if p not in self.procs:
            return p.returncode, 0.0
        self.procs.remove(p)
        if p.returncode is not None:    # already reaped by poll(): it exited
            return p.returncode, 0.0
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.monotonic() + 6
        killed = False
        while True:
            pid, st, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > end and not killed:
                os.kill(p.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(st)
        return (None if killed else p.returncode), ru.ru_utime + ru.ru_stime

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


def server_argv(binary, port, logdir, extra=()):
    return [binary, "-f", "-p", str(port), "-b", "127.0.0.1", "-l", logdir,
            "--max-backlog", "67108864", "-m", "1100", "--register-timeout", "0"] + list(extra)


def start_one(procs, binary, tmp):
    port = free_port()
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir, exist_ok=True)
    p = procs.start(server_argv(binary, port, logdir), os.path.join(tmp, "stderr"))
    if not wait_for(lambda: p.poll() is not None or accepting(port), 5) or p.poll() is not None:
        return [p], "forkchatd did not listen on %d" % port
    return ([p], port, "-P %d" % p.pid), None


def start_federation(procs, binary, tmp):
    rport = free_port()
    redis = procs.start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no", "--daemonize", "no",
                         "--maxclients", "4000", "--loglevel", "warning"],
                        os.path.join(tmp, "redis.log"))
    started = [redis]
    if not wait_for(lambda: accepting(rport), 5):
        return started, "redis-server did not listen"
    ports = []
    for i in range(HUBS):
        port = free_port()
        logdir = os.path.join(tmp, "h%d" % i)
        os.makedirs(logdir, exist_ok=True)
        p = procs.start(server_argv(binary, port, logdir,
                                    ["--redis", "127.0.0.1:%d" % rport, "--hub-id", "h%d" % i]),
                        os.path.join(tmp, "stderr"))
        started.append(p)
        if not wait_for(lambda: p.poll() is not None or accepting(port), 5) or p.poll() is not None:
            return started, "hub h%d did not listen" % i
        ports.append(port)

    def connected(i):
        d = os.path.join(tmp, "h%d" % i)
        for name in os.listdir(d):
            with open(os.path.join(d, name), errors="replace") as f:
                if "federation: connected" in f.read():
                    return True
        return False
    for i in range(HUBS):
        if not wait_for(lambda: connected(i), 5):
            return started, "hub h%d: no 'federation: connected' in 5 s" % i
    return (started, ports[0], "--ports " + ",".join(map(str, ports))), None


def run_point(procs, load, binary, point, side, rnd, out):
    system, scenario, n, metric = POINTS[point]
    tmp = tempfile.mkdtemp(prefix="forkchat-ab-")
    rec = {"point": point, "side": side, "round": rnd, "gate": metric}
    try:
        if system == "forkchat-federated":
            got, err = start_federation(procs, binary, tmp)
            settle = "1"
        else:
            got, err = start_one(procs, binary, tmp)
            settle = "0.2"
        if err:
            for p in reversed(got):
                procs.stop(p)
            rec["failed"] = err
            return rec
        started, port, srvarg = got
        if scenario == "one-room":
            m, rate, extra = RATE * PACED_S // SEND, RATE, []
        else:
            m, rate, extra = per_sender(n), 0, ["-d", "8"]
        jf = os.path.join(tmp, "run.json")
        argv = [load, "-s", system, "-p", str(port), "-n", str(n), "-S", str(SEND),
                "-k", "1", "-m", str(m), "-r", str(rate), "--scenario", scenario,
                "-j", jf, "--settle", settle, "-q",
                # a slow candidate (or a busy machine) is judged by the
                # ratios, not cut by a drain window: wait up to 60 s for the
                # last deliveries (loss is still loss after that)
                "--drain", "60", "-T", "120"] + srvarg.split() + extra
        lp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=150)
        cpu = 0.0
        for p in reversed(started):     # hubs before their redis-server
            rc, used = procs.stop(p)
            redis = system == "forkchat-federated" and p is started[0]
            if not redis:
                cpu += used
                if rc != 0:
                    rec["failed"] = "forkchatd pid %d exited %s after SIGTERM" % (p.pid, rc)
        if os.path.exists(jf):
            with open(jf) as f:
                rec.update(json.loads(f.readline()))
            # CPU the server(s) spent per delivery (printed, not gated)
            rec["server_cpu_s"] = round(cpu, 4)
            if rec.get("received"):
                rec["cpu_us_per_delivery"] = cpu * 1e6 / rec["received"]
        else:
            rec["failed"] = "no result (forkchat-load exit %d: %s)" % (
                lp.returncode, lp.stderr.strip()[-200:])
        if lp.returncode != 0 and "failed" not in rec:
            rec["failed"] = "forkchat-load exit %d: %s" % (lp.returncode, lp.stderr.strip()[-200:])
        return rec
    finally:
        if "failed" in rec:     # keep the servers' logs beside the runs file
            kept = os.path.join(os.path.dirname(os.path.abspath(out.name)),
                                "failed-%s-%s-%d" % (point.replace("/", "-"), side, rnd))
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(tmp, kept, ignore_dangling_symlinks=True)
            rec["kept"] = kept
            print("bench-check: logs of the failed run kept in %s" % kept,
                  file=sys.stderr, flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
        out.write(json.dumps(rec) + "\n")
        out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--base", required=True)
    ap.add_argument("--cand", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--first-round", type=int, default=0,
                    help="number of the first round (more rounds after a noisy run)")
    ap.add_argument("--points", default=",".join(DEFAULT_POINTS))
    a = ap.parse_args()
    points = [p for p in a.points.split(",") if p]
    for p in points:
        if p not in POINTS:
            sys.exit("unknown point %r (known: %s)" % (p, ", ".join(POINTS)))
    if any(POINTS[p][0] == "forkchat-federated" for p in points) and not shutil.which("redis-server"):
        sys.exit("bench-check: FAIL: redis-server is not installed (federated points)")
    procs = Procs()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sides = {"base": a.base, "cand": a.cand}
    t0 = time.monotonic()
    try:
        with open(a.out, "a") as out:
            for rnd in range(a.first_round, a.first_round + a.rounds):
                order = ("base", "cand") if rnd % 2 == 0 else ("cand", "base")
                for point in points:
                    for side in order:
                        r = run_point(procs, a.load, sides[side], point, side, rnd, out)
                        print("  round %d %-20s %-4s %s" % (
                            rnd, point, side, r.get("failed") or "%s %.1f, CPU %.3f us/delivery" % (
                                r["gate"], r.get(r["gate"], 0), r.get("cpu_us_per_delivery", 0))),
                            flush=True)
    finally:
        procs.stop_all()
    print("bench A/B: %d rounds x %d points x 2 sides in %.0f s" % (
        a.rounds, len(points), time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
