#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Memory of forkchatd's process tree per attached client (issue 17, goal 3).

Starts build/forkchatd on a free port, attaches N clients to one room (the
lobby) with `forkchat-load --hold`, and reads every process of the server's
tree from /proc: Pss and Rss from /proc/PID/smaps_rollup, page tables from
VmPTE in /proc/PID/status.  Then it runs a back-to-back burst through the
same room (the held clients receive it too), attaches N more clients and
reads the tree again, so that a parent heap grown by the burst and
inherited by later children shows up in the second group's figures.

    /usr/bin/python3 bench/memory.py -n 100 -n 1000 [--storm 3] [--json F]
        [--burst-deliveries D]      (make bench: D = 4000000 at N = 100, 1000)

Per client = (the whole tree: parent, spawner, every session child) / number
of clients attached, read in the steady state (Srv.settle: the parent idle
for 2 s and 3.5 s more, past the ticks that trim freed heap, and the name
helper, forkchatd-names, exited after its 5 idle seconds); "child" figures
are the average of the session children alone.  --storm K also times K
connect storms of 1000 clients (`forkchat-load --connect-only`, connect+register, median reported).
"quiet" PSS (as root) leaves other forkchat processes and ICU users out of
each page's sharers (/proc/PID/pagemap, /proc/kpagecount): the figure a
quiet machine would show, on a machine shared with other test servers.
Nothing here fails on a figure; it fails only if the server or the load
generator does.
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BUILD", ROOT / "build"))
SERVER = Path(os.environ.get("FORKCHATD", BUILD / "forkchatd"))
LOAD = BUILD / "forkchat-load"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


# process names (comm) of the tree's helpers; the rest are session children
ROLES = {"forkchatd-spawn": "spawner", "forkchatd-names": "names"}


def tree(root):
    """{pid: role} of root and every live descendant."""
    ppid = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] not in ("Z", "X"):
                ppid[int(name)] = st[1]
    out, todo = {root: "parent"}, [root]
    while todo:
        p = todo.pop()
        for pid, pp in ppid.items():
            if pp == p and pid not in out:
                out[pid] = ROLES.get(comm(pid), "child")
                todo.append(pid)
    return out


def mem(pid):
    """{'pss','rss','pte'} in kB, or None if pid is gone."""
    m = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Rss"):
                    m[k.lower()] = int(v.split()[0])
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    m["pte"] = int(line.split()[1])
    except (OSError, ValueError):
        return None
    return m if len(m) == 3 else None


def status_kb(pid, key):
    """A kB field of /proc/PID/status, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def heap_kb(pid):
    """Resident kB of pid's [heap] (the brk area), or None."""
    try:
        with open("/proc/%d/smaps" % pid) as f:
            inheap = False
            for line in f:
                if not line[0].isupper():   # a mapping's header line
                    inheap = line.rstrip().endswith("[heap]")
                elif inheap and line.startswith("Rss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return 0


def _present(pid, files_only=False):
    """Physical page numbers of pid's resident pages (root: /proc/PID/pagemap
    shows them to root only; zeros otherwise)."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        spans = [line.split() for line in f]
    fd = os.open("/proc/%d/pagemap" % pid, os.O_RDONLY)
    try:
        for sp in spans:
            a, b = (int(x, 16) for x in sp[0].split("-"))
            name = sp[5] if len(sp) > 5 else ""
            if name == "[vsyscall]" or b - a > (1 << 31) or (files_only and not name.startswith("/")):
                continue
            data = os.pread(fd, (b - a) // 4096 * 8, a // 4096 * 8)
            for (e,) in struct.iter_unpack("<Q", data):
                if e >> 63 and e & ((1 << 55) - 1):
                    out.append(e & ((1 << 55) - 1))
    finally:
        os.close(fd)
    return out


def quiet_pss(pids):
    """PSS (kB) of the tree as on a quiet machine: each resident page counts
    4 kB / its mappers, leaving out the mappers that are other forkchat
    processes or ICU users (another server's tests share libunistring, libc
    and the images; they would not run on a quiet machine).  None if the
    page frames cannot be read (not root)."""
    try:
        mine = {pid: _present(pid) for pid in pids}
        frames = set(f for fl in mine.values() for f in fl)
        if not frames:
            return None
        foreign = collections.Counter()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in pids:
                continue
            try:
                with open("/proc/%s/maps" % name) as f:
                    m = f.read()
                if "forkchat" in m or "libicu" in m:
                    foreign.update(f for f in _present(int(name), True) if f in frames)
            except OSError:
                continue
        fd = os.open("/proc/kpagecount", os.O_RDONLY)
        try:
            count = {f: struct.unpack("<Q", os.pread(fd, 8, f * 8))[0] for f in frames}
        finally:
            os.close(fd)
    except OSError:
        return None
    return round(sum(4.0 / max(count[f] - foreign[f], 1)
                     for fl in mine.values() for f in fl), 1)


def snapshot(root, nclients, groups=None):
    """Figures for the tree; groups: {name: set of child pids}."""
    t = tree(root)
    per = {pid: mem(pid) for pid in t}
    per = {pid: m for pid, m in per.items() if m}
    tot = {k: sum(m[k] for m in per.values()) for k in ("pss", "rss", "pte")}
    kids = [pid for pid in per if t[pid] == "child"]
    out = {
        "clients": nclients,
        "processes": len(per),
        "children": len(kids),
        "tree_pss_kb": tot["pss"], "tree_rss_kb": tot["rss"], "tree_pte_kb": tot["pte"],
        "parent": per.get(root),
        "spawner": next((per[p] for p in per if t[p] == "spawner"), None),
        "names_helper": next((per[p] for p in per if t[p] == "names"), None),
        "per_client_pss_pte_kb": round((tot["pss"] + tot["pte"]) / max(nclients, 1), 1),
        "per_client_pss_kb": round(tot["pss"] / max(nclients, 1), 1),
        "per_client_rss_kb": round(tot["rss"] / max(nclients, 1), 1),
        "per_client_pte_kb": round(tot["pte"] / max(nclients, 1), 1),
    }
    ph = heap_kb(root)
    if ph is not None:
        out["parent_heap_kb"] = ph
    hwm = status_kb(root, "VmHWM")
    if hwm is not None:     # the parent's peak RSS so far (the burst's)
        out["parent_peak_rss_kb"] = hwm
    q = quiet_pss(set(per))
    if q is not None:
        out["tree_quiet_pss_kb"] = q
        out["per_client_quiet_pss_pte_kb"] = round((q + tot["pte"]) / max(nclients, 1), 1)
    for name, pids in (groups or {"all": set(kids)}).items():
        g = [per[p] for p in pids if p in per]
        if g:
            out["child_" + name] = {k: round(sum(m[k] for m in g) / len(g), 1)
                                    for k in ("pss", "rss", "pte")}
            out["child_" + name]["n"] = len(g)
    return out


def hold(port, n, prefix, secs=600, errfile=os.devnull):
    """Attach n clients that stay (forkchat-load --hold); returns once in."""
    with open(errfile, "ab") as err:
        r = hold_run(port, n, prefix, secs, err)
    # (the detached holder keeps any pipe open: no stderr capture here)
    if r.returncode != 0:
        raise RuntimeError("forkchat-load --hold %d failed (%s)" % (n, errfile))


def hold_run(port, n, prefix, secs, err):
    return subprocess.run([str(LOAD), "-p", str(port), "-n", str(n), "--hold", str(secs),
                           "--nick-prefix", prefix, "-q", "-T", "300"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=err, timeout=400)


def burst(port, n, msgs):
    """Back to back: n receivers, 4 senders, msgs each, in the lobby."""
    r = subprocess.run([str(LOAD), "-p", str(port), "-n", str(n), "-S", "4", "-r", "0",
                        "-m", str(msgs), "-d", "60", "--drain", "30",
                        "--nick-prefix", "pid", "-q", "-T", "150", "-j", "/dev/null"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=200)
    return r.returncode


def storm(port, n):
    """Connect and register n clients at once; forkchat-load's own figure."""
    r = subprocess.run([str(LOAD), "-p", str(port), "-n", str(n), "--connect-only",
                        "--nick-prefix", "pid", "-T", "120"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=180)
    m = re.search(r"connected and registered in ([0-9.]+) ms", r.stderr.decode())
    if r.returncode != 0 or m is None:
        raise RuntimeError("connect storm: %s" % r.stderr.decode()[-400:])
    return float(m.group(1))


class Srv:
    def __init__(self, maxc):
        self.dir = tempfile.mkdtemp(prefix="fc-mem-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(SERVER), "-f", "-p", str(self.port), "-b", "127.0.0.1", "-l", self.dir,
             "-m", str(maxc),
             "--stats-interval", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr"), "wb"))
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("forkchatd exited")
                time.sleep(0.02)
        raise RuntimeError("forkchatd not listening")

    def kids(self):
        return {p for p, r in tree(self.proc.pid).items() if r == "child"}

    def wait_kids(self, n, secs=60):
        end = time.monotonic() + secs
        while len(self.kids()) != n and time.monotonic() < end:
            time.sleep(0.1)
        return self.kids()

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])

    def wait_names_gone(self, secs=30):
        """Until the name helper has exited (it does after 5 s without a
        name to check, core/server/names.c): the steady state."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if "names" not in tree(self.proc.pid).values():
                return True
            time.sleep(0.2)
        return False

    def wait_idle(self, secs=120):
        """Until the parent has used no CPU for 2 s (the room is drained)."""
        end, last = time.monotonic() + secs, -1
        while time.monotonic() < end:
            t = self.cpu_ticks()
            if t == last:
                return
            last = t
            time.sleep(2)

    def settle(self):
        """The steady state the figures are read in: the parent has used
        no CPU for 2 s (the room is drained), then 3.5 s more (past the
        parent's 1 s and a child's 2 s tick, where they trim freed heap)
        and the name helper has exited."""
        self.wait_idle()
        end = time.monotonic() + 3.5
        self.wait_names_gone()
        time.sleep(max(0.0, end - time.monotonic()))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def burst_each(n, burst_msgs, burst_n, burst_deliveries=None):
    """Messages per sender: burst_msgs, or (burst_deliveries) so that the
    burst makes about that many deliveries to the n held clients, the
    burst_n receivers and the 4 senders (a message reaches all but its
    sender), at least 100."""
    if not burst_deliveries:
        return burst_msgs
    return max(100, burst_deliveries // (4 * (n + burst_n + 3)))


def run_n(n, burst_msgs, burst_n, burst_deliveries=None):
    """Attach n, read; a burst through their room, read; attach n more,
    read.  The figures of one N (bench/run.sh reports them as goal 3)."""
    t0 = time.monotonic()
    burst_msgs = burst_each(n, burst_msgs, burst_n, burst_deliveries)
    srv = Srv(2 * n + burst_n + 16)
    try:
        hold(srv.port, n, "a", errfile=os.path.join(srv.dir, "hold.err"))
        first = srv.wait_kids(n)
        srv.settle()
        before = snapshot(srv.proc.pid, n, {"first": first})
        rc = burst(srv.port, burst_n, burst_msgs)
        held = len(srv.wait_kids(n))    # fewer: some were cut
        srv.settle()        # the held clients have read the whole burst
        after = snapshot(srv.proc.pid, n, {"first": first})
        out = {"n": n, "burst": {"receivers": burst_n, "senders": 4,
                                 "messages_each": burst_msgs, "rc": rc,
                                 "held_after": held},
               "before_burst": before, "after_burst": after}
        try:
            hold(srv.port, n, "c", errfile=os.path.join(srv.dir, "hold.err"))
        except RuntimeError as e:
            out["error"] = str(e)
            out["seconds"] = round(time.monotonic() - t0, 1)
            return out
        second = srv.wait_kids(2 * n) - first
        srv.settle()        # their joins reached every member
        out["after_burst_plus_n"] = snapshot(srv.proc.pid, len(first | second),
                                             {"first": first, "second": second})
        # the marginal cost of the n clients attached after the burst
        a, m = out["after_burst"], out["after_burst_plus_n"]
        out["marginal_per_client_kb"] = {
            k: round((m["tree_%s_kb" % k] - a["tree_%s_kb" % k]) / max(len(second), 1), 1)
            for k in ("pss", "rss", "pte")}
        out["seconds"] = round(time.monotonic() - t0, 1)
        return out
    finally:
        srv.stop()
        if sys.exc_info()[0] is None:   # a failure keeps the server's log
            shutil.rmtree(srv.dir, ignore_errors=True)


def row(label, s, grp):
    c = s.get("child_" + grp, {})
    return "| %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s / %s / %s |" % (
        label, s["clients"], s["per_client_pss_kb"], s["per_client_rss_kb"],
        s["per_client_pte_kb"], s["per_client_pss_pte_kb"],
        s.get("per_client_quiet_pss_pte_kb", "-"),
        c.get("pss", "-"), c.get("rss", "-"), c.get("pte", "-"))


def main():
    # SIGTERM (bench/run.sh's timeout) unwinds through Srv.stop(): no
    # server (nor the clients it holds) is left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, action="append", help="clients (repeatable)")
    ap.add_argument("--burst-msgs", type=int, default=20000)
    ap.add_argument("--burst-n", type=int, default=20)
    ap.add_argument("--burst-deliveries", type=int,
                    help="size the burst per N to about this many deliveries "
                         "(instead of --burst-msgs per sender)")
    ap.add_argument("--storm", type=int, default=0, help="connect storms of 1000")
    ap.add_argument("--json", help="append the result line here")
    a = ap.parse_args()
    res = {"runs": [], "storm_ms": []}
    for n in a.n or [100]:
        res["runs"].append(run_n(n, a.burst_msgs, a.burst_n, a.burst_deliveries))
        if a.json:      # as it goes: a later failure keeps what was measured
            with open(a.json + ".part", "a") as f:
                f.write(json.dumps(res["runs"][-1]) + "\n")
    if a.storm:
        srv = Srv(1100)
        try:
            for i in range(a.storm):
                res["storm_ms"].append(storm(srv.port, 1000))
                srv.wait_kids(0)
        finally:
            srv.stop()
        res["storm_median_ms"] = statistics.median(res["storm_ms"])
    print("| phase | clients | PSS/client kB | RSS/client kB | PTE/client kB | "
          "PSS+PTE/client kB | quiet PSS+PTE/client kB | child avg PSS / RSS / PTE kB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        n = r["n"]
        print(row("N=%d attached" % n, r["before_burst"], "first"))
        print(row("N=%d after burst" % n, r["after_burst"], "first"))
        if "after_burst_plus_n" in r:
            print(row("N=%d + %d after burst (new children)" % (n, n),
                      r["after_burst_plus_n"], "second"))
            mg = r["marginal_per_client_kb"]
            print("|   marginal per client attached after the burst | | %s | %s | %s | %.1f | | |"
                  % (mg["pss"], mg["rss"], mg["pte"], mg["pss"] + mg["pte"]))
        else:
            print("| N=%d + %d: %s | | | | | | | |" % (n, n, r.get("error")))
        for ph in ("before_burst", "after_burst"):
            p = r[ph]["parent"]
            print("|   parent %s (PSS/RSS/PTE kB; heap %s kB, peak RSS %s kB) "
                  "| | %s | %s | %s | | | |" % (
                      ph.replace("_", " "), r[ph].get("parent_heap_kb", "-"),
                      r[ph].get("parent_peak_rss_kb", "-"),
                p["pss"], p["rss"], p["pte"]))
    if res["storm_ms"]:
        print("connect storm, 1000 clients: %s ms (median %.1f)" % (
            res["storm_ms"], res["storm_median_ms"]))
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
