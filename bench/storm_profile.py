#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Where a connect storm's time goes (issue 17, goal 5), per connection.

Starts build/forkchatd (as bench/run.sh does), redis-server or the
connect-storm floor (build/forkchat-storm-floor, bench/storm_floor.c) on a
free port, attaches N clients at once with `forkchat-load --hold` (connect
and register, SUBSCRIBE, or the floor's one line; the clients stay, as in
the bench's connect-storm run), waits until the server is idle, and reads
from /proc, per process kind (parent, spawner, session child, the name
helper "names"; Redis: the server; the floor: its parent and children):

  cpu_us      time on a CPU (/proc/PID/schedstat, field 1), per connection
  runq_us     time runnable but waiting for a CPU (field 2): load, not work
  slices      times scheduled in (field 3): wake-ups
  minflt      minor page faults (/proc/PID/stat): copy-on-write after a fork
  sleeps      voluntary context switches (/proc/PID/status): waits that
              ended in a wake-up (slices also count preemptions)

and the kernel's listen-queue counters over the run (nstat:
TcpExtListenOverflows, TcpExtListenDrops, TcpExtTCPReqQFullDrop,
TcpExtSyncookiesSent).  These do not depend on how busy the machine is,
unlike the wall-clock time, which is printed with the load average.

With --strace the server runs under `strace -ff` and the report counts
system calls per connection by process kind and by call instead (the
times are then meaningless).

    /usr/bin/python3 bench/storm_profile.py [-n 1000]
        [--system forkchat|redis|floor-storm]
        [--strace] [--reps 3] [--json F]

Nothing here fails on a figure; it fails only if a program does.
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BUILD", ROOT / "build"))
SERVER = Path(os.environ.get("FORKCHATD", BUILD / "forkchatd"))
LOAD = Path(os.environ.get("FORKCHAT_LOAD", BUILD / "forkchat-load"))
FLOOR = Path(os.environ.get("FORKCHAT_STORM_FLOOR", BUILD / "forkchat-storm-floor"))
COMM_KIND = {"forkchatd-spawn": "spawner", "forkchatd-names": "names"}
NSTAT = ("TcpExtListenOverflows", "TcpExtListenDrops",
         "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, secs=20):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def pstat(pid):
    """(state, ppid, minflt) from /proc/PID/stat, or None."""
    data = read("/proc/%d/stat" % pid)
    if data is None:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[7])


def sleeps(pid):
    data = read("/proc/%d/status" % pid) or ""
    m = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", data, re.M)
    return int(m.group(1)) if m else 0


def schedstat(pid):
    data = read("/proc/%d/schedstat" % pid)
    return [int(x) for x in data.split()] if data else None


def kinds(root):
    """{pid: kind} of root and its live children (session children are
    the parent's: clone(CLONE_PARENT) in the spawner)."""
    out = {root: "parent"}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = pstat(int(name))
        if st and st[1] == root and st[0] not in ("Z", "X"):
            c = (read("/proc/%s/comm" % name) or "").strip()
            out[int(name)] = COMM_KIND.get(c, "child")
    return out


def nstat():
    r = subprocess.run(["nstat", "-az"] + list(NSTAT), capture_output=True,
                       text=True, check=False)
    out = dict.fromkeys(NSTAT, 0)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] in out:
            out[f[0]] = int(f[1])
    return out


def settle(root, secs=20):
    """Wait until the parent is idle (the JOIN lines of the storm all
    written): its CPU time moves less than 0.2 ms in 300 ms.  The session
    children then only read what is left (and tick every 2 s)."""
    end, last = time.monotonic() + secs, None
    while time.monotonic() < end:
        tot = (schedstat(root) or [0])[0]
        if last is not None and tot - last < 200000:
            return
        last = tot
        time.sleep(0.3)


def gone(pid, secs=15):
    """SIGTERM pid (and SIGKILL after secs) until it is gone (or a zombie)."""
    end = time.monotonic() + secs
    while True:
        st = pstat(pid)
        if st is None or st[0] in ("Z", "X"):
            return
        try:
            os.kill(pid, signal.SIGKILL if time.monotonic() > end
                    else signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def start(system, port, tmp, strace):
    if system == "redis":
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--maxclients", "4000", "--tcp-backlog", "4096",
               "--loglevel", "warning"]
    elif system == "floor-storm":
        cmd = [str(FLOOR), "-p", str(port), "-b", "127.0.0.1"]
    else:
        cmd = [str(SERVER), "-f", "-p", str(port), "-b", "127.0.0.1", "-l",
               tmp, "-m", "1100", "--register-timeout", "0",
               "--max-backlog", "67108864", "--stats-interval", "0"]
    if strace:
        cmd = ["strace", "-qq", "-ff", "-o", os.path.join(tmp, "st")] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def server_pid(proc, strace):
    """The traced program's pid (strace's child) or the server's."""
    if not strace:
        return proc.pid
    for _ in range(100):
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != proc.pid:
                st = pstat(int(name))
                if st and st[1] == proc.pid:
                    return int(name)
        time.sleep(0.05)
    raise RuntimeError("no traced server")


def storm(system, port, n, hold, tmp):
    """forkchat-load --hold: returns once all n are registered; its own
    figure (from the release of the clients to the last registered)."""
    cmd = [str(LOAD), "-s", system, "-p", str(port), "-n", str(n),
           "--hold", str(hold), "--nick-prefix", "pid", "-T", "300"]
    errf = os.path.join(tmp, "load.err")
    # the detached holder keeps its stderr open: a file, not a pipe
    with open(errf, "wb") as err:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err,
                           check=False, timeout=400)
    text = Path(errf).read_text(errors="replace")
    m = re.search(r"registered in ([0-9.]+) ms", text)
    if r.returncode != 0 or m is None:
        raise RuntimeError("forkchat-load: %s" % text[-400:])
    return float(m.group(1))


def strace_counts(tmp, root):
    """{kind: Counter(syscall)} from strace -ff files (st.PID)."""
    helpers = {}
    for f in Path(tmp).glob("*.log"):
        text = f.read_text()
        for what, kind in (("spawner", "spawner"), ("name helper", "names")):
            for m in re.finditer(what + r" started pid=(\d+)", text):
                helpers[int(m.group(1))] = kind
    out = collections.defaultdict(collections.Counter)
    call = re.compile(r"^(?:\d+ )?([a-z_0-9]+)\(")
    for f in Path(tmp).glob("st.*"):
        pid = int(f.suffix[1:])
        kind = "parent" if pid == root else helpers.get(pid, "child")
        for line in f.read_text(errors="replace").splitlines():
            m = call.match(line)
            if m:
                out[kind][m.group(1)] += 1
    return out


def one(a, tmp):
    port = free_port()
    proc = start(a.system, port, tmp, a.strace)
    res = {"system": a.system, "n": a.n}
    root = None
    try:
        wait_port(port, proc)
        root = server_pid(proc, a.strace)
        time.sleep(0.3)
        before = {p: (schedstat(p), pstat(p), sleeps(p))
                  for p in kinds(root)}
        ns0 = nstat()
        res["loadavg_start"] = read("/proc/loadavg").split()[0]
        res["storm_ms"] = storm(a.system, port, a.n, a.hold, tmp)
        res["loadavg_end"] = read("/proc/loadavg").split()[0]
        settle(root)
        time.sleep(0.3)
        k = kinds(root)
        ns1 = nstat()
        res["nstat"] = {x: ns1[x] - ns0[x] for x in NSTAT}
        agg = collections.defaultdict(lambda: [0, 0, 0, 0, 0, 0])
        for pid, kind in k.items():
            ss, st, sl = schedstat(pid), pstat(pid), sleeps(pid)
            if ss is None or st is None:
                continue
            b = before.get(pid)
            if b and b[0] and b[1]:
                ss = [x - y for x, y in zip(ss, b[0])]
                st = (st[0], st[1], st[2] - b[1][2])
                sl -= b[2]
            g = agg[kind]
            g[0] += 1
            g[1] += ss[0]
            g[2] += ss[1]
            g[3] += ss[2]
            g[4] += st[2]
            g[5] += sl
        per = {}
        for kind, g in agg.items():
            per[kind] = {"processes": g[0],
                         "cpu_us": round(g[1] / 1000 / a.n, 1),
                         "runq_us": round(g[2] / 1000 / a.n, 1),
                         "slices": round(g[3] / a.n, 2),
                         "minflt": round(g[4] / a.n, 2),
                         "sleeps": round(g[5] / a.n, 2)}
        res["per_connection"] = per
        res["cpu_us_total"] = round(sum(v["cpu_us"] for v in per.values()), 1)
    finally:
        # the server itself: strace, signalled, would detach and leave it
        try:
            os.kill(root if root else proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if a.strace and root:  # a detached strace may leave it running
            gone(root)
    if a.strace:
        cnt = strace_counts(tmp, root)
        res["syscalls_per_connection"] = {
            kind: {"total": round(sum(c.values()) / a.n, 2),
                   "top": {s: round(v / a.n, 2)
                           for s, v in c.most_common(a.top)}}
            for kind, c in cnt.items()}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--system", choices=("forkchat", "redis", "floor-storm"),
                    default="forkchat")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--hold", type=int, default=120)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json")
    a = ap.parse_args()
    for _ in range(a.reps):
        tmp = tempfile.mkdtemp(prefix="storm-")
        try:
            res = one(a, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        line = json.dumps(res)
        print(line)
        if a.json:
            with open(a.json, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
