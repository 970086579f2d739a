#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""fault/sweep.py - SQLite-style Nth-call sweeps of every in-code failpoint.

For each failpoint FAIL("forkchatd/...") of core/ and a scripted session
(connect, register, lobby messages, rooms, whispers, a slow consumer cut,
quit, shutdown; with --redis, the same session on a federated hub for the
fed/ and bridge/ points), run the session with the point's 1st call failing,
then its 2nd, and so on, until a session completes without reaching the
point (it did not fire).  The fault build counts a point's calls across the
server and all its children (FORKCHAT_FAILPOINT_NTH="NAME:N",
core/sys/failpoint.h) and records each injected failure
(FORKCHAT_FAILPOINT_LOG), so "reached" is a fact, not a guess.

After every run (point, N), the invariants:
  - the server never dies by a signal; if it exits on its own, its log or
    stderr says why (an error line), and no child is left behind;
  - if it is up: no zombie child, its fd count back to the baseline once
    every client is gone, its RSS within 2 MB of the baseline, a fresh pair of clients registers, chats and
    whispers, and SIGTERM ends it with status 0 and BYE SHUTDOWN to them;
  - clients that stayed lost nothing: every sequence-numbered lobby message
    of a sender that stayed, exactly once and in order (affected ones: no
    gap, no duplicate, no reordering of what they got);
  - an affected client was told: its last line is a BYE, or its own
    connection was what failed (the points in CLIENT_IO), then EOF;
  - every session child the server logged is gone after it exits.

Budget: N runs 1..NCONSEC, then grows by half (12, 18, 27, ...) so a point
called hundreds of times is still swept to its end; each point gets an
equal share of --budget seconds and stops early (reported as "capped at N")
if its share runs out.  Prints one line per point and the number of
(point, N) pairs run; exit status 1 if any invariant failed.
"""

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fclib                        # noqa: E402
from fclib import Fail              # noqa: E402
from harness import procfs, timescale  # noqa: E402
from harness.client import ChatClient, check_seq    # noqa: E402
from harness.procfs import (alive, children, fd_count, free_port, is_listening,  # noqa: E402
                            rss_kb, zombies)
from harness.server import Redis, Server    # noqa: E402
from harness.timescale import scaled, wait_for  # noqa: E402

ROOT = HERE.parent
NCONSEC = 6
RSS_SLACK_KB = 2048
# A federated parent keeps up to BRIDGE_RETAIN (8 MiB) of its acknowledged
# events on purpose, for a Redis that restarts (docs/SCALING.md).
FED_RETAIN_KB = 8192

LONE_POINTS = [
    "forkchatd/setup/sigaction", "forkchatd/log/open", "forkchatd/chat/calloc",
    "forkchatd/accept/accept", "forkchatd/spawn/pipe", "forkchatd/spawn/fork",
    "forkchatd/spawn/fcntl", "forkchatd/inbound/read", "forkchatd/reap/waitpid",
    "forkchatd/fanout/append", "forkchatd/fanout/write", "forkchatd/fanout/kill",
    "forkchatd/abort/sigqueue", "forkchatd/session/read", "forkchatd/session/write",
    "forkchatd/session/send", "forkchatd/log/write",
    "forkchatd/buf/malloc", "forkchatd/flow/sigqueue",
]
FED_POINTS = [
    "forkchatd/fed/pipe", "forkchatd/fed/fork", "forkchatd/bridge/connect",
    "forkchatd/bridge/up", "forkchatd/bridge/read", "forkchatd/bridge/write",
]
# The points on a client's own socket (its session child's read and send):
# when they fail, that connection itself is what broke, so EOF without a
# BYE line is an honest answer.  Every other point must leave an affected
# client told (BYE or ERR 5xx).
CLIENT_IO = {"forkchatd/session/read", "forkchatd/session/send"}


def all_points():
    """Every FAIL("forkchatd/...") name in core/*/*.c (tests excluded)."""
    names = set()
    for c in sorted((ROOT / "core").glob("*/*.c")):
        if c.parent.name == "tests":
            continue
        names.update(re.findall(r'FAIL\("(forkchatd/[^"]+)"', c.read_text()))
    return names


class Run:
    """One server and one scripted session with point:N armed."""

    def __init__(self, rundir, point, n, redis=None):
        self.rundir = rundir
        self.point, self.n = point, n
        self.redis = redis
        self.clients = []
        self.affected = {}          # nick -> how it ended
        self.sent = {}
        self.kids = set()
        self.srv = None
        self.proc = None
        self.problems = []
        self.marks = []
        self.base_fd = None         # the parent's fds before the session
        self.base_rss = None        # and its RSS (kB)
        self.t0 = time.monotonic()

    # ---- server ------------------------------------------------------------
    def start(self):
        subprocess.run(["rm", "-rf", str(self.rundir)])
        self.rundir.mkdir(parents=True)
        self.fired = self.rundir / "fired.log"
        self.fired.write_text("")
        self.port = free_port()
        args = ["-b", "127.0.0.1", "--max-backlog", "65536"]
        if self.redis:
            args += ["--redis", "127.0.0.1:%d" % self.redis, "--hub-id",
                     "sw%d" % self.port, "--nick-ttl", "5"]
        env = {"LD_PRELOAD": None, "FORKCHAT_FAILPOINT_NTH": "%s:%d" % (self.point, self.n),
               "FORKCHAT_FAILPOINT_LOG": str(self.fired)}
        self.srv = Server(self.rundir, args=args, port=self.port, env=env, new_session=True,
                          binary=fclib.SERVER_BIN)
        self.srv.logdir.mkdir(exist_ok=True)
        self.proc = self.srv.launch()
        wait_for(lambda: is_listening(self.port) or self.proc.poll() is not None, 10)
        # the baseline (fds) once start-up is over, not when the port listens
        self.srv.settle(10)

    def up(self):
        return self.proc.poll() is None

    def log(self):
        return self.srv.log()

    def stderr(self):
        return self.srv.stderr()

    def fired_count(self):
        try:
            return sum(1 for line in self.fired.read_text().splitlines()
                       if line.split(" ")[0] == self.point)
        except OSError:
            return 0

    def fds(self):
        """The parent's fds, not counting the pair to a running (or not yet
        reaped) bridge: whether a bridge runs at the moment of counting is
        not a leak."""
        pid = self.proc.pid
        bridges = {int(m) for m in re.findall(r"bridge pid=(\d+)", self.log())}
        n = fd_count(pid)
        return n - 2 * len(bridges & set(children(pid, True))) if n >= 0 else n

    def note_kids(self):
        for m in re.finditer(r"(?:connect slot=\d+|bridge) pid=(\d+)", self.log()):
            self.kids.add(int(m.group(1)))
        if self.up():
            self.kids.update(children(self.proc.pid, True))

    # ---- clients -------------------------------------------------------------
    def client(self, nick, **kw):
        """A registered client, or None (then it is affected: refused)."""
        try:
            c = ChatClient(self.port, nick, hello=False, reading=True, nodelay=True, **kw)
        except OSError as e:
            self.affected[nick] = "connect: %s" % e
            return None
        self.clients.append(c)
        try:
            c.register()
        except (Fail, OSError) as e:
            self.affected[nick] = "register: %s" % str(e)[:80]
            return c
        return c

    def ok(self, c):
        return c is not None and c.nick not in self.affected and not c.eof

    def expect(self, c, pattern, timeout=4.0):
        """Wait for a line; a client that got EOF instead is affected."""
        if not self.ok(c):
            return False
        if c.wait_line(pattern, timeout) is not None:
            return True
        if c.eof:
            self.affected[c.nick] = "eof"
        else:
            self.affected[c.nick] = "no %s" % pattern
        return False

    def step(self, actor, line, who, pattern, deps=()):
        """actor sends line, who must get pattern: skipped unless every
        client involved is still in the session.  An ERR 5xx or BYE answer
        instead is the server telling the client it failed (True only for
        pattern).  No answer on a connection still open is a problem."""
        if not all(self.ok(x) for x in (actor, who) + tuple(deps)):
            return False
        n = len(who.snapshot())
        self.send(actor, line)
        i = who.wait_line(r"(%s)|^ERR 5\d\d |^BYE " % pattern, 4.0, n)
        if i is not None:
            return re.search(pattern, who.snapshot()[i]) is not None
        if who.eof:
            self.affected[who.nick] = "eof"
        elif self.up() and all(self.ok(x) for x in (actor,) + tuple(deps)):
            self.problems.append("%s: no %r after %s's %r (connection open)" % (
                who.nick, pattern, actor.nick, line))
            self.affected[who.nick] = "no reply"
        return False

    def send(self, c, line):
        if self.ok(c) and not c.try_send(line):
            self.affected[c.nick] = "send failed"

    def seq(self, c, k, pad=0):
        if not self.ok(c):
            return
        n = self.sent.get(c.nick, 0)
        for _ in range(k):
            if not c.try_send("seq %s %d%s" % (c.nick, n + 1, " " + "x" * pad if pad else "")):
                break
            n += 1
        self.sent[c.nick] = n

    # ---- the scripted session ----------------------------------------------------
    def session(self):
        a, b, c = self.client("alice"), self.client("bob"), self.client("carol")
        self.seq(a, 5)
        self.seq(b, 3)
        self.wait_delivered((a, b, c))     # before anyone moves to another room
        self.mark("lobby")
        if self.step(a, "/add den", a, r"^OK ADD den"):
            if self.step(b, "/join den", b, r"^OK JOIN den", (a,)):
                self.step(b, "in the den", a, r"^MSG den bob in the den")
                self.step(b, "/leave", b, r"^OK JOIN lobby")
            self.step(a, "/leave", a, r"^OK JOIN lobby")
        self.step(c, "/w alice psst", a, r"^WHISPER carol psst")
        self.step(c, "/list", c, r"^END LIST")
        self.mark("rooms")
        # a slow consumer: stops reading until the server cuts it
        s = self.client("sloth", rcvbuf=4096)
        flooder = next((x for x in (a, b, c) if self.ok(x)), None)
        if self.ok(s) and flooder is not None:
            s.pause()
            cut = None
            for _ in range(100):
                self.seq(flooder, 20, pad=1000)
                cut = re.search(r"nick=sloth reason=slow-consumer", self.log())
                if cut or not self.ok(flooder) or not self.up():
                    break
                # about 1 MB/s: the readers (threads of this harness) keep
                # up on a loaded machine, the sloth fills in under a second
                time.sleep(0.02)
            if not cut and self.ok(flooder) and self.up():
                # flow control (docs/PROTOCOL.md): the room's senders are
                # paused while the sloth is behind, and a reader that drains
                # nothing is cut after 3 s, found on the parent's 1 s tick
                cut = wait_for(lambda: re.search(r"nick=sloth reason=slow-consumer",
                                                 self.log()), 8)
            s.resume()
            # the log line may be the write that failed (log/write): the
            # sloth's EOF is the other evidence of the cut
            s.wait_eof(5 if cut else 2)
            if cut or s.eof:
                self.affected["sloth"] = "cut"
            elif self.ok(flooder) and self.up():
                self.problems.append("sloth never cut as a slow consumer after %d messages" %
                                     self.sent[flooder.nick])
        self.mark("slow")
        self.seq(a, 3)
        self.seq(c, 2)
        d = self.client("dave")
        if self.step(d, "/quit bye", d, r"^BYE QUIT"):
            self.affected.setdefault("dave", "quit")
        self.wait_delivered((a, b, c))
        self.mark("end")

    def mark(self, what):
        self.marks.append("%s %.2f" % (what, time.monotonic() - self.t0))

    def wait_delivered(self, clients, timeout=8):
        """Until every client still in has every message of every sender
        still in (or the wait ends: judge() says what is missing)."""
        readers = [x for x in clients if self.ok(x)]
        nicks = {r.nick for r in readers}
        sent = {k: v for k, v in self.sent.items() if k in nicks}
        wait_for(lambda: not check_seq(readers, sent, nicks) or not self.up(), timeout)

    # ---- verdict ---------------------------------------------------------------
    def judge(self):
        p = self.problems
        self.note_kids()
        # the clients of the session: nothing lost for those that stayed
        stayed = [c for c in self.clients if self.ok(c) and c.nick in ("alice", "bob", "carol")]
        for c in self.clients:
            if c.eof and c.nick not in self.affected:
                self.affected[c.nick] = "eof"
        stayed = [c for c in stayed if c.nick not in self.affected]
        receivers = [c for c in self.clients if c.nick in ("alice", "bob", "carol")]
        complete = [c.nick for c in stayed]
        p += ["loss: " + x for x in check_seq(receivers, self.sent, complete)]
        for c in self.clients:
            how = self.affected.get(c.nick)
            if how in (None, "quit", "cut", "no reply"):
                continue
            lines = c.snapshot()
            told = lines and (lines[-1].startswith("BYE ") or lines[-1].startswith("ERR 500"))
            if not told and not (c.eof and self.point in CLIENT_IO) and self.up():
                p.append("%s affected (%s) and not told (last line %r, eof %s)" %
                         (c.nick, how, lines[-1:] if lines else None, c.eof))
        with open(self.rundir / "clients.txt", "w") as out:
            for c in self.clients:
                out.write("marks: %s\n" % self.marks) if c is self.clients[0] else None
                out.write("== %s (%s, eof %s)\n%s\n" % (c.nick, self.affected.get(c.nick),
                                                       c.eof, "\n".join(x[:120] for x in c.snapshot())))
        for c in self.clients:
            c.close()
        self.clients = []
        if self.up():
            self.judge_up()
        else:
            self.judge_exit(self.proc.returncode, own=True)

    def judge_up(self):
        p, pid = self.problems, self.proc.pid
        bridge = set()
        if self.redis:
            bridge = {int(m) for m in re.findall(r"bridge pid=(\d+)", self.log())}
        # the spawner (core/server/spawner.c) lives as long as the server;
        # known by its name, since its log line may be the one that failed;
        # so does the name helper for 5 s after a name (core/server/names.c)
        bridge |= {k for k in children(pid)
                   if procfs.comm(k) in ("forkchatd-spawn", "forkchatd-names")}

        def settled():
            kids = set(children(pid)) - bridge
            return not kids and not zombies(pid) and \
                (self.base_fd is None or self.fds() <= self.base_fd)
        if not wait_for(settled, 8):
            p.append("after every client left: children %s, zombies %s, fds %d (before %s)" %
                     (sorted(set(children(pid)) - bridge), zombies(pid), self.fds(),
                      self.base_fd))
        # memory: the parent's RSS back near where it was (the slack of
        # fault/fixture.py: allocator caching, the log's buffers)
        slack = RSS_SLACK_KB + (FED_RETAIN_KB if self.redis else 0)
        if self.base_rss and self.base_rss > 0 and rss_kb(pid) > self.base_rss + slack:
            p.append("parent RSS %d kB after the session, %d kB before (slack %d)" % (
                rss_kb(pid), self.base_rss, slack))
        # fresh clients: the server still serves.  A second pair if the
        # point (it fails once) refused one of the first.
        for attempt in (1, 2):
            e, f = self.client("erin%d" % attempt), self.client("frank%d" % attempt)
            if self.ok(e) and self.ok(f):
                self.send(e, "after the fault")
                if not self.expect(f, r"^MSG lobby erin%d after the fault" % attempt):
                    p.append("fresh clients: no delivery after the fault")
                self.send(f, "/w erin%d still here" % attempt)
                if not self.expect(e, r"^WHISPER frank%d still here" % attempt):
                    p.append("fresh clients: no whisper after the fault")
                break
            refused = [x for x in (e, f) if x is not None and x.bye()]
            if attempt == 2 or not refused or not self.up():
                p.append("fresh clients could not register: %s" % {
                    k: v for k, v in self.affected.items() if k.startswith(("erin", "frank"))})
                break
        self.note_kids()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(scaled(15))
        except subprocess.TimeoutExpired:
            p.append("server still up 15 s after SIGTERM")
            self.kill()
            return
        for c in (e, f):
            if self.ok(c):
                c.wait_eof(3)
                if not any(x.startswith("BYE SHUTDOWN") for x in c.snapshot()):
                    p.append("%s: no BYE SHUTDOWN (last %r)" % (c.nick, c.snapshot()[-1:]))
        self.judge_exit(rc, own=False)

    def judge_exit(self, rc, own):
        p = self.problems
        if rc is None:
            return
        if rc < 0:
            p.append("server died by signal %d" % -rc)
        elif own and not re.search(r"\] (error|crit|fatal)|error|cannot|failed",
                                   self.log() + self.stderr(), re.I):
            p.append("server exited (status %d) on its own without saying why" % rc)
        elif not own and rc != 0:
            p.append("server exit status %d after SIGTERM" % rc)
        left = [k for k in self.kids if alive(k)]
        if left and not wait_for(lambda: not [k for k in self.kids if alive(k)], 5):
            p.append("children left after the server exited: %s" %
                     [k for k in self.kids if alive(k)])

    def kill(self):
        if self.srv is not None:
            self.srv.kill()

    def close(self):
        for c in self.clients:
            c.close()
        self.kill()


def one(rundir, point, n, redis):
    """Run (point, N); returns (reached, problems, seconds)."""
    t0 = time.monotonic()
    if redis:       # a fresh federation: no nick claims of the last run
        subprocess.run(["redis-cli", "-p", str(redis), "flushall"],
                       stdout=subprocess.DEVNULL, check=True)
    r = Run(rundir, point, n, redis)
    try:
        r.start()
        if r.up():
            if redis:
                wait_for(lambda: "federation: connected to redis" in r.log() or not r.up(), 5)
            r.base_fd = r.fds()
            r.base_rss = rss_kb(r.proc.pid)
            r.session()
        r.judge()
        reached = r.fired_count() > 0
    except Exception as e:          # a harness error is a failed run, with evidence
        r.problems.append("harness: %r" % e)
        reached = True
    finally:
        r.close()
    return reached, r.problems, time.monotonic() - t0


def next_n(n):
    return n + 1 if n < NCONSEC else n + max(1, n // 2)


def start_redis(rundir):
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        # a skip is not a pass: the federated points must run
        raise SystemExit("sweep: FAIL: redis-server/redis-cli not installed (make deps); "
                         "the fed/ and bridge/ points cannot be swept")
    try:
        return Redis(rundir).start()
    except Fail as e:
        raise SystemExit("sweep: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", help="the fault build (default build/fault/forkchatd)")
    ap.add_argument("--budget", type=float, default=240.0,
                    help="seconds for the whole sweep (default 240)")
    ap.add_argument("--only", action="append", default=[], help="sweep only this point")
    ap.add_argument("--nmax", type=int, default=10000, help="never beyond this N")
    ap.add_argument("--keep", action="store_true", help="keep the run dirs of passing runs")
    ap.add_argument("--nmin", type=int, default=1, help="start at this N")
    ap.add_argument("--fed", action="store_true", help="sweep the fed/ and bridge/ points too "
                    "(needs redis-server)")
    a = ap.parse_args()
    fclib.use_server(a.server)
    known = all_points()
    missing = sorted(known - set(LONE_POINTS) - set(FED_POINTS))
    if missing:
        print("sweep: FAIL: failpoints in core/ not swept: %s" % missing)
        return 1
    stale = sorted((set(LONE_POINTS) | set(FED_POINTS)) - known)
    if stale:
        print("sweep: FAIL: swept points no longer in core/: %s" % stale)
        return 1
    points = [(p, False) for p in LONE_POINTS]
    if a.fed:
        points += [(p, True) for p in FED_POINTS]
    if a.only:
        points = [(p, f) for p, f in points if p in a.only]
    base = ROOT / "build" / "fault" / "sweep"
    base.mkdir(parents=True, exist_ok=True)
    redis = rport = None
    if any(f for _, f in points):
        redis = start_redis(base)
        rport = redis.port
    print("sweep: %d points, budget %.0f s, server %s, time scale x%g" % (
        len(points), a.budget, fclib.SERVER_BIN, timescale.SCALE), flush=True)
    t0 = time.monotonic()
    pairs, bad, rows = 0, 0, []
    try:
        for i, (point, fed) in enumerate(points):
            share = (a.budget - (time.monotonic() - t0)) / (len(points) - i)
            tp, n, runs, ended, fails = time.monotonic(), a.nmin, [], "capped", []
            while True:
                rundir = base / ("%s.%d" % (point.replace("/", "_"), n))
                reached, problems, secs = one(rundir, point, n, rport if fed else None)
                pairs += 1
                runs.append(n)
                if problems:
                    fails.append((n, problems))
                elif not a.keep:
                    subprocess.run(["rm", "-rf", str(rundir)])
                if not reached:
                    ended = "not reached at N=%d" % n
                    break
                n = next_n(n)
                if n > a.nmax or time.monotonic() - tp > share:
                    ended = "capped at N=%d (time share %.0f s)" % (runs[-1], share)
                    break
            bad += len(fails)
            rows.append({"point": point, "runs": len(runs), "n_max": runs[-1],
                         "ended": ended, "failed": [f[0] for f in fails]})
            print("  %-28s %3d runs %4.0fs, N=%s%s: %s%s" % (
                point, len(runs), time.monotonic() - tp, ",".join(map(str, runs[:8])),
                ",..,%d" % runs[-1] if len(runs) > 8 else "", ended,
                "" if not fails else "  FAIL at N=%s" % [f[0] for f in fails]), flush=True)
            for n_, probs in fails[:3]:
                for pr in probs[:4]:
                    print("      N=%d: %s" % (n_, pr))
    finally:
        if redis is not None:
            redis.stop()
    secs = time.monotonic() - t0
    print("sweep: %d (point, N) pairs run over %d points in %.0f s; %d failed" % (
        pairs, len(rows), secs, bad))
    (base / "sweep.json").write_text(json.dumps(
        {"pairs": pairs, "seconds": round(secs), "failed": bad, "points": rows}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
