#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Per-delivery cost of one windowed back-to-back run, split by process kind.

Issue 17, goal 4: where forkchatd spends more than the pipe+SIGUSR2+TCP
floor (floor-tcp), and the floor whose senders are clients
(floor-tcp-send).  Runs one windowed run (`forkchat-load -r 0 -w 32`, a
fixed message count) of forkchat or a floor at N receivers and reads
every server process from /proc right before the traffic and right after
the last delivery (the generator's JSON line), while all clients are still
connected:

  CPU     /proc/PID/task/*/schedstat (ns), per delivery in us
  wake-ups voluntary + involuntary context switches (/proc/PID/status)
  syscalls (--perf) perf stat -e raw_syscalls:sys_enter on every pid; the
          tracepoint slows system calls, so CPU is taken from a run
          without it

Kinds: forkchat: parent, spawner, senders' session children (nicknames
b0000..b0003, from the log), receivers' session children; floor-tcp: the
floor's server process (its fan-out parent) and its children;
floor-tcp-send: its parent, its senders' children (which read the senders'
connections) and its receivers' children; redis: the
redis-server (started as bench/run.sh starts it; its writers' drainers,
who read the PUBLISH replies, count as writers).  Also shown,
not in "all (server)": the generator's clients (its receivers and the
senders' connections) and writers (forkchat: the senders' writers, who
poll the window; the floor's parent polls it itself), and how idle the
whole machine was (/proc/stat; other sessions count).
Deliveries are the generator's ("received").

--warm K measures repetition K+1 of K+1 (forkchat-load -R), as make bench
measures its windowed runs after the paced ones on the same processes: a
first repetition at N=1000 (about 300 messages) also pays every process's
first-traffic costs (lazy symbol binding, first page faults, buffers
grown), about 1 us per delivery in the generator's clients alone.  With
--perf the system calls are counted over all repetitions.

    nice -n 19 /usr/bin/python3 bench/cost_split.py -s forkchat -n 10 -m 5000
    nice -n 19 /usr/bin/python3 bench/cost_split.py -s floor-tcp -n 100 --perf
    nice -n 19 /usr/bin/python3 bench/cost_split.py -s forkchat -n 1000 --warm 1
    nice -n 19 /usr/bin/python3 bench/cost_split.py -s redis -n 100 --warm 1

Everything it starts runs at nice 19 when it is (nice is inherited).
Nothing here fails on a figure; it fails if the server or the generator
does.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BUILD", ROOT / "build"))
SERVER = Path(os.environ.get("FORKCHATD", BUILD / "forkchatd"))
LOAD = BUILD / "forkchat-load"
SENDERS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ppids():
    """pid -> parent pid of every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(")") + 2:].split()
        if rest[0] != "Z":
            out[int(d)] = int(rest[1])
    return out


def children(pid, pp=None):
    pp = ppids() if pp is None else pp
    return [p for p, q in pp.items() if q == pid]


def cpu_ns(pid):
    total = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
    except OSError:
        return None
    return total


def switches(pid):
    v = n = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    v = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    n = int(line.split()[1])
    except OSError:
        return None
    return v, n


def snapshot(pids):
    snap = {}
    for p in pids:
        c, s = cpu_ns(p), switches(p)
        if c is not None and s is not None:
            snap[p] = (c, s[0], s[1])
    return snap


def wait_for(cond, bound, what, step=0.02, proc=None):
    """cond()'s first true value; fails after bound s, or once proc (the
    generator) has exited."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        r = cond()
        if r:
            return r
        if proc is not None and proc.poll() is not None:
            raise SystemExit("cost_split: forkchat-load exited (%d) before "
                             "%s: %s" % (proc.returncode, what,
                                         proc.stderr.read()[-2000:]))
        time.sleep(step)
    raise SystemExit("cost_split: timed out waiting for " + what)


def forkchat_kinds(srv, logdir, clients, load):
    """pid -> kind, once every client is registered (from the log)."""
    def ready():
        text = ""
        for f in Path(logdir).glob("*.log"):
            text += f.read_text(errors="replace")
        pids = dict(re.findall(r"connect slot=(\d+) pid=(\d+)", text))
        nicks = dict(re.findall(r"register slot=(\d+) nick=(\S+)", text))
        if len(nicks) < clients:
            return None
        return pids, nicks, text
    pids, nicks, text = wait_for(ready, 60, "registrations", proc=load)
    kinds = {srv: "parent"}
    m = re.search(r"spawner started pid=(\d+)", text)
    if m:
        kinds[int(m.group(1))] = "spawner"
    senders = {"b%04d" % i for i in range(SENDERS)}
    for slot, pid in pids.items():
        kinds[int(pid)] = ("senders' children" if nicks.get(slot) in senders
                           else "receivers' children")
    return kinds


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def floor_kinds(load, n, send=False):
    """floor-tcp: its server and its n children; floor-tcp-send: its
    server, the n + 4 receivers' children and the 4 senders' children
    (named lg-floor-send, bench/lg_floor.c)."""
    want = n + 2 * SENDERS if send else n

    def server():
        pp = ppids()
        for c in children(load.pid, pp):
            kids = children(c, pp)
            # a sender's child names itself right after the fork
            if len(kids) == want and (not send or sum(
                    comm(k) == "lg-floor-send" for k in kids) == SENDERS):
                return c
        return None
    fs = wait_for(server, 60, "the floor's server and its children",
                  proc=load)
    kinds = {fs: "floor parent"}
    for c in children(fs):
        kinds[c] = "floor children" if not send else (
            "floor senders' children" if comm(c) == "lg-floor-send"
            else "floor receivers' children")
    return kinds


def client_kinds(load, kinds):
    """The generator's own processes that are not the server's: its
    clients (receivers, and the senders' connections), and below them the
    senders' writers and drainers (who poll the window)."""
    pp = ppids()
    out, todo = {}, [(load.pid, 0)]
    while todo:
        pid, depth = todo.pop()
        for c in children(pid, pp):
            if c not in kinds:
                out[c] = ("generator's clients" if depth == 0 else
                          "generator's writers")
                todo.append((c, depth + 1))
    return out


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def lines(path):
    """Complete lines in path (0 if it is not there yet)."""
    try:
        return Path(path).read_text().count("\n")
    except OSError:
        return 0


def machine_cpu():
    """(busy, idle) jiffies of the whole machine (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, idle


def start_perf(pids, out, record=None):
    cmd = ["perf", "stat", "--per-thread", "-x", ",", "-o", out,
           "-e", "raw_syscalls:sys_enter", "-p",
           ",".join(str(p) for p in sorted(pids))]
    if record:
        cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000",
               "-g", "-o", record, "-p",
               ",".join(str(p) for p in sorted(pids))]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the traffic (--settle)
    return p


def read_perf(out):
    counts = {}
    for line in Path(out).read_text().splitlines():
        f = line.split(",")
        if len(f) < 4 or "sys_enter" not in line:
            continue
        m = re.search(r"-(\d+)$", f[0])
        if m and f[1].strip().isdigit():
            counts[int(m.group(1))] = int(f[1])
    return counts


def run(a):
    tmp = tempfile.mkdtemp(prefix="cost_split.")
    json_out = os.path.join(tmp, "run.json")
    srv = None
    clients = a.n if a.system == "floor-tcp" else a.n + SENDERS
    load_cmd = [str(LOAD), "-s", a.system, "-n", str(clients),
                "-S", str(SENDERS), "-m", str(a.messages), "-r", "0",
                "-w", str(a.window), "-z", str(a.size), "-d", "120",
                "--drain", "30", "-T", "200", "--quickack", "-q",
                "--settle", str(a.settle), "--linger", "1", "-j", json_out,
                "-R", str(a.warm + 1)]
    if a.system == "forkchat":
        port = free_port()
        logdir = os.path.join(tmp, "logs")
        os.mkdir(logdir)
        srv_cmd = [str(SERVER), "-f", "-p", str(port), "-b", "127.0.0.1",
                   "-l", logdir, "-m", "1100", "--register-timeout", "0",
                   "--max-backlog", "67108864"] + a.server_arg
        if a.callgrind:
            srv_cmd = ["valgrind", "--tool=callgrind",
                       "--callgrind-out-file=" + a.callgrind] + srv_cmd
        srv = subprocess.Popen(srv_cmd, stderr=subprocess.DEVNULL)
        time.sleep(2.0 if a.callgrind else 0.3)
        load_cmd += ["-p", str(port), "-P", str(srv.pid)]
    elif a.system == "redis":  # as bench/run.sh starts it
        port = free_port()
        srv = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--maxclients", "4000", "--tcp-backlog", "4096",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(port), 10, "redis-server")
        load_cmd += ["-p", str(port), "-P", str(srv.pid)]
    else:
        load_cmd += ["-B", str(a.batch)] + (["--cork"] if a.cork else [])
    load = subprocess.Popen(load_cmd, stderr=subprocess.PIPE, text=True)
    try:
        if a.system == "forkchat":
            kinds = forkchat_kinds(srv.pid, logdir, clients, load)
        elif a.system == "redis":
            kinds = {srv.pid: "redis"}
        else:
            kinds = floor_kinds(load, a.n, a.system == "floor-tcp-send")
        kinds.update(client_kinds(load, kinds))
        server = {p: k for p, k in kinds.items()
                  if not k.startswith("generator's")}
        perf = start_perf(server, os.path.join(tmp, "perf"), a.record) \
            if a.perf or a.record else None
        if a.warm:  # measure the last repetition: the bench's case
            wait_for(lambda: lines(json_out) >= a.warm, 300,
                     "the warm-up repetitions", 0.005, load)
            kinds.update(client_kinds(load, kinds))  # writers forked
        before = snapshot(kinds)
        mach0 = machine_cpu()
        if a.record:
            with open(a.record + ".kinds", "w") as f:
                json.dump(kinds, f)
        wait_for(lambda: lines(json_out) > a.warm, 300, "the run's result",
                 0.005, load)  # the clients linger 1 s after it
        mach1 = machine_cpu()
        late = {p: k for p, k in client_kinds(load, kinds).items()
                if p not in kinds}  # forked after the first snapshot
        kinds.update(late)
        before.update({p: (0, 0, 0) for p in late})
        after = snapshot(kinds)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        reps = [json.loads(x)
                for x in Path(json_out).read_text().splitlines()]
        res = reps[a.warm]
        all_d = sum(r["received"] for r in reps)  # perf counts them all
        load.wait(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        if srv is not None:
            srv.terminate()
            srv.wait()
    sys_counts = read_perf(os.path.join(tmp, "perf")) \
        if a.perf and not a.record else {}
    shutil.rmtree(tmp, ignore_errors=True)
    d = res["received"]
    table = {}
    for pid, kind in kinds.items():
        if pid not in before or pid not in after:
            continue
        t = table.setdefault(kind, [0, 0, 0, 0, 0])
        t[0] += 1
        t[1] += after[pid][0] - before[pid][0]
        t[2] += after[pid][1] - before[pid][1]
        t[3] += after[pid][2] - before[pid][2]
        t[4] += sys_counts.get(pid, 0)
    rows = {}
    for kind, (procs, ns, vol, invol, sysc) in table.items():
        rows[kind] = {"procs": procs, "cpu_us": ns / 1e3 / d,
                      "vol_cs": vol / d, "invol_cs": invol / d,
                      "syscalls": sysc / all_d if a.perf else None}
    total = sum(r["cpu_us"] for k, r in rows.items()
                if not k.startswith("generator's"))
    busy, idle = mach1[0] - mach0[0], mach1[1] - mach0[1]
    gen = res.get("cpu_us_per_delivery") or 0
    out = {"system": a.system + (" --cork" if a.cork else ""), "n": a.n, "deliveries": d,
           "suspect": not 0.8 * gen <= total <= 1.25 * gen,
           "lost": res["lost"], "deliveries_per_s": res["deliveries_per_s"],
           "load_cpu_us_per_delivery": res.get("cpu_us_per_delivery"),
           "machine_idle": idle / max(1, busy + idle),
           "kinds": rows}
    return out


def show(out):
    print("%s N=%d deliveries=%d lost=%d (generator: %.3f us/delivery, "
          "%.0f/s, machine idle %.0f %%)" % (
              out["system"], out["n"], out["deliveries"], out["lost"],
              out["load_cpu_us_per_delivery"] or -1,
              out["deliveries_per_s"], 100 * out["machine_idle"]))
    print("| kind | procs | CPU us | vol. cs | invol. cs | syscalls |")
    print("|---|---|---|---|---|---|")
    tot = [0.0, 0.0, 0.0, 0.0]
    for kind, r in sorted(out["kinds"].items()):
        sc = "-" if r["syscalls"] is None else "%.4f" % r["syscalls"]
        print("| %s | %d | %.4f | %.4f | %.4f | %s |" % (
            kind, r["procs"], r["cpu_us"], r["vol_cs"], r["invol_cs"], sc))
        if kind.startswith("generator's"):
            continue  # not the server's: not in "all"
        tot[0] += r["cpu_us"]
        tot[1] += r["vol_cs"]
        tot[2] += r["invol_cs"]
        tot[3] += r["syscalls"] or 0
    print("| all (server) | | %.4f | %.4f | %.4f | %.4f |" % tuple(tot))
    if out["suspect"]:
        print("warning: the snapshots do not agree with the generator's "
              "CPU figure (missed the traffic?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-s", "--system", default="forkchat",
                    choices=["forkchat", "floor-tcp", "floor-tcp-send", "redis"])
    ap.add_argument("-n", type=int, default=10, help="receivers")
    ap.add_argument("-m", "--messages", type=int, default=0,
                    help="per sender (default: about 300 k deliveries)")
    ap.add_argument("-w", "--window", type=int, default=32)
    ap.add_argument("-z", "--size", type=int, default=64)
    ap.add_argument("--settle", type=float, default=1.5)
    ap.add_argument("--warm", type=int, default=0, metavar="K",
                    help="measure repetition K+1 (-R): the first K warm "
                    "the processes up, as the bench's earlier phases do")
    ap.add_argument("--perf", action="store_true",
                    help="count system calls (perf stat)")
    ap.add_argument("--record", metavar="FILE",
                    help="perf record -e cpu-clock -g the server into FILE")
    ap.add_argument("--callgrind", metavar="FILE",
                    help="run forkchatd's parent under callgrind")
    ap.add_argument("--server-arg", action="append", default=[])
    ap.add_argument("-B", "--batch", type=int, default=64,
                    help="the floors: at most B messages per pipe write")
    ap.add_argument("--cork", action="store_true",
                    help="floor-tcp-send --cork (forkchatd's signals and corking)")
    ap.add_argument("--json", help="append the result here")
    a = ap.parse_args()
    if a.messages == 0:
        per = a.n + (0 if a.system == "floor-tcp" else SENDERS - 1)
        a.messages = max(50, 300000 // (SENDERS * per))
    out = run(a)
    show(out)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
