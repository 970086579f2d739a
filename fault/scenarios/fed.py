# SPDX-License-Identifier: BSD-3-Clause
"""fed - federation: two hubs and a Redis (Fed), cross-hub delivery while
the bridge fails to connect, is killed, or cannot be restarted.
"""

import errno
import os
import re
import signal
import threading
import time

from fclib import Fail, Skip
from harness.client import check_seq, seq_received
from harness.procfs import alive, free_port
from harness.server import Redis
from harness.timescale import wait_for
from fixture import RSS_SLACK_KB, Fx
from scenarios.common import scenario


# ---- federation: two hubs and a Redis, cross-hub delivery --------------------------

class Fed:
    """Redis + two federated hubs (Fx each, no control clients of their own);
    clients a0.. on hub A, b0.. on hub B, all in the lobby, one shared `sent`.

        with Fed(ctx, name, redis_up=True, start_cmds_a=()) as fd: ...
    """

    def __init__(self, ctx, name, redis_up=True, start_cmds_a=(), wait_up=True,
                 hub_args=()):
        import shutil
        self.ctx, self.name, self.hub_args = ctx, name, tuple(hub_args)
        self.redis_up, self.start_cmds_a, self.wait_up = redis_up, start_cmds_a, wait_up
        self.skip = shutil.which("redis-server") is None
        self.redis = Redis(ctx.rundir, port=free_port())
        self.hubs = []
        self.sent = {}

    def __enter__(self):
        if self.skip:
            return self
        try:
            if self.redis_up:
                self.redis.start()
            for hub, cmds in (("A", self.start_cmds_a), ("B", ())):
                fx = Fx(self.ctx, "%s/hub%s" % (self.name, hub), preload=False, nctl=0,
                        start_cmds=cmds,
                        args=("--redis", "127.0.0.1:%d" % self.redis.port,
                              "--hub-id", "hub" + hub, "--nick-ttl", "6") + self.hub_args)
                fx.__enter__()
                fx.sent = self.sent            # one numbering for both hubs
                self.hubs.append(fx)
                if not fx.srv.log_has(r"federation: bridge pid=\d+", 5):
                    raise Fail("hub %s started no bridge" % hub)
                if self.wait_up and self.redis_up and not cmds:
                    fx.expect_log(r"federation: connected to redis", 10)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        for fx in self.hubs:
            fx.close()
        self.redis.stop()

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def A(self):
        return self.hubs[0]

    @property
    def B(self):
        return self.hubs[1]

    def clients(self, fx, prefix, n=2):
        out = [fx.client("%s%d" % (prefix, i)) for i in range(n)]
        fx.ctl.extend(out)
        return out

    def everyone(self):
        return [c for fx in self.hubs for c in fx.ctl]

    def warm(self, k=3, what="the fault"):
        """Clients a0, a1 on hub A and b0, b1 on hub B chat k rounds, all
        delivered across hubs; returns (A, B, a, b)."""
        a = self.clients(self.A, "a")
        b = self.clients(self.B, "b")
        self.round(a + b, k)
        if not self.delivered(self.everyone(), list(self.sent), 10):
            raise Fail("cross-hub chat incomplete before %s: %s" % (
                what, seq_check_window(self.everyone(), self.sent, {})[0][:3]))
        return self.A, self.B, a, b

    def connects(self, fx):
        return fx.srv.log_count(r"federation: connected to redis")

    def lists(self, viewer, nicks, timeout=10.0):
        """Until viewer's /users all names every nick (presence crossed)."""
        def ok():
            n = len(viewer.snapshot())
            viewer.send("/users all")
            if viewer.wait_line(r"^END USERS", 5, start=n) is None:
                return False
            got = viewer.snapshot()[n:]
            return all(any(x.startswith("USER %s " % k) for x in got) for k in nicks)
        return wait_for(ok, timeout, 0.3)

    def bridges(self, fx):
        return [int(m) for m in re.findall(r"federation: bridge pid=(\d+) redis=", fx.srv.log())]

    def delivered(self, receivers, senders, timeout=10.0):
        return self.A.delivered(receivers=receivers, senders=senders, timeout=timeout)

    def round(self, senders, k=3):
        for c in senders:
            self.A.seq(c, k)

    def cross_round(self, tag, k=3, timeout=12.0):
        """Fresh clients on both hubs chat; every message exactly once, in order."""
        xa = self.A.client(tag + "a")
        xb = self.B.client(tag + "b")
        for c in (xa, xb):
            self.A.seq(c, k)
        ok = self.A.delivered(receivers=[xa, xb], senders=[xa.nick, xb.nick], timeout=timeout)
        probs = check_seq([xa, xb], {xa.nick: self.sent[xa.nick], xb.nick: self.sent[xb.nick]},
                          [xa.nick, xb.nick])
        if not ok or probs:
            raise Fail("cross-hub round %s after recovery: %s" % (
                tag, "; ".join(probs[:3]) or "not delivered in %.0fs" % timeout))
        return "%d+%d msgs across hubs once, in order" % (k, k)

    def verify(self, rss_slack=None):
        """rss_slack (kB): what the scenario makes a hub keep on purpose
        (acknowledged events, BRIDGE_RETAIN) on top of fixture.RSS_SLACK_KB."""
        out = []
        for fx in self.hubs:
            fx.ctl = []         # delivery was checked across hubs by the scenario
            out.append(fx.verify(keep=self.bridges(fx), post=False,
                                 rss_slack=RSS_SLACK_KB + (rss_slack or 0)))
        fds = [re.search(r"fds (\d+=\d+)", o).group(1) for o in out]
        return "both hubs: fds %s/%s, 0 zombies, no child left, RSS ok" % tuple(fds)


def seq_check_window(receivers, sent, lossy=None):
    """Per receiver and sender: no duplicate, in order; a gap only inside
    lossy[(receiver, sender)] = (lo, hi) (numbers lo < n <= hi may be lost).
    Returns (problems, lost count)."""
    probs, lost = [], 0
    lossy = lossy or {}
    for r in receivers:
        got = seq_received(r)
        for s, n in sent.items():
            if s == r.nick or not n:
                continue
            seq = got.get(s, [])
            if seq != sorted(set(seq)):
                probs.append("%s<-%s dup/reorder %s" % (r.nick, s, seq[:8]))
                continue
            lo, hi = lossy.get((r.nick, s), (n, n))
            miss = [i for i in range(1, n + 1) if i not in set(seq)]
            bad = [i for i in miss if not lo < i <= hi]
            if bad:
                probs.append("%s<-%s missing %s (loss allowed only in %d..%d)" % (
                    r.nick, s, bad[:6], lo + 1, hi))
            lost += len(miss) - len(bad)
    return probs, lost


@scenario("fed-bridge-connect-refused", "failpoint",
          "forkchatd/bridge/connect (hub A from start)", timeout=90)
def _fed_connect(ctx):
    """Hub A starts with every connect() of its bridge failing: it serves its
    own clients, logs the outage once, retries with backoff; its messages wait
    in the outbox and reach hub B once and in order after the reconnect."""
    with Fed(ctx, "fed-bridge-connect-refused",
             start_cmds_a=["enable name=forkchatd/bridge/connect"]) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B = fd.A, fd.B
        fd.B.expect_log(r"federation: connected to redis", 10)
        logl = A.expect_log(r"federation: redis .* unavailable \(Connection refused\)", 5)
        a = fd.clients(A, "a")
        b = fd.clients(B, "b")
        fd.round(a, 3)                                  # local on A, outbox for B
        if not fd.delivered(a, [c.nick for c in a], 5):
            raise Fail("hub A's local clients lost messages during the Redis outage")
        time.sleep(2.0)                                 # several backoff periods
        if fd.connects(A):
            raise Fail("hub A connected although connect() fails")
        nlog = A.srv.log_count(r"federation: redis .* unavailable")
        bpid = fd.bridges(A)[-1]
        if not alive(bpid):
            raise Fail("hub A's bridge %d died under connect failures" % bpid)
        A.srv.disable("forkchatd/bridge/connect", pid=bpid)   # the bridge inherited it
        t0 = time.monotonic()
        if not wait_for(lambda: fd.connects(A) >= 1, 8):
            raise Fail("hub A's bridge did not reconnect within 8s of disable")
        dt = time.monotonic() - t0
        # A's outage messages were in its outbox: B gets them now, once, in order
        if not fd.delivered(b, [c.nick for c in a], 10):
            probs, _ = seq_check_window(b, fd.sent)
            raise Fail("A's outage messages not delivered to B after reconnect: %s" % probs[:3])
        fd.round(a + b, 3)
        if not fd.delivered(fd.everyone(), list(fd.sent), 10):
            raise Fail("cross-hub chat did not resume: %s" % (
                seq_check_window(fd.everyone(), fd.sent)[0][:3],))
        probs = check_seq(fd.everyone(), fd.sent, [c.nick for c in fd.everyone()])
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("A: '%s' (logged once per outage: %dx in 2s of backoff retries), bridge "
                "alive, local chat complete; connected %.1fs after "
                "disable; 6 msgs of A's outage reached B once, in order; 12 msgs all-to-all "
                "after; %s; %s" % (logl[:70], nlog, dt, rr, summ))


@scenario("fed-bridge-sigkill", "signal", "SIGKILL hub A's bridge mid-chat", timeout=90)
def _fed_kill(ctx):
    """The bridge of hub A is SIGKILLed while both hubs chat: the parent logs
    it and restarts it (1 s) and hands the new bridge what the dead one held
    (unacknowledged events, the read cursor; docs/SCALING.md), so nobody
    loses, duplicates or reorders anything, local or cross-hub."""
    with Fed(ctx, "fed-bridge-sigkill") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the kill")
        pre = dict(fd.sent)
        old = fd.bridges(A)[-1]
        stop = threading.Event()

        def chatter():
            while not stop.is_set():
                for c in a + b:
                    fd.A.seq(c, 1)
                time.sleep(0.02)
        t = threading.Thread(target=chatter, daemon=True)
        t.start()
        time.sleep(0.3)
        os.kill(old, signal.SIGKILL)
        time.sleep(0.3)
        stop.set()
        t.join(5)
        mid = dict(fd.sent)
        logl = A.expect_log(r"federation: bridge pid=%d ended \(signal 9\), restarting" % old, 3)
        if not wait_for(lambda: len(fd.bridges(A)) >= 2 and fd.connects(A) >= 2, 6):
            raise Fail("bridge not restarted/reconnected within 6s of SIGKILL")
        new = fd.bridges(A)[-1]
        if not alive(new) or alive(old):
            raise Fail("bridges: old %d alive=%s, new %d alive=%s" % (
                old, alive(old), new, alive(new)))
        time.sleep(0.3)
        # local delivery on each hub is complete: no loss at all
        for hub, cs in ((A, a), (B, b)):
            if not fd.delivered(cs, [c.nick for c in cs], 5):
                raise Fail("hub %s's local clients lost messages around the kill" % hub.srv.pid)
        fd.round(a + b, 3)
        # everything arrives: no cross-hub loss is admitted, even around the kill
        others = {c.nick: (a if c in b else b) for c in a + b}

        def after_ok():
            for r in a + b:
                for s in a + b:
                    if s is r:
                        continue
                    g = seq_received(r).get(s.nick, [])
                    if not g or g[-1] < fd.sent[s.nick]:
                        return False
            return True
        if not wait_for(after_ok, 10):
            raise Fail("cross-hub delivery incomplete after the restart: %s" %
                       (seq_check_window(a + b, fd.sent, {})[0][:3],))
        time.sleep(0.3)
        probs, lost = seq_check_window(a + b, fd.sent, {})
        if probs or lost:
            raise Fail("delivery (%d lost): %s" % (lost, "; ".join(probs[:3])))
        nmid = sum(mid[s] - pre[s] for s in mid)
        ncross = sum(mid[s.nick] - pre[s.nick] for r in a + b for s in others[r.nick])
        resumed = A.expect_log(r"federation: resuming: stream read from \S+, \d+ events", 3)
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s'; restarted (pid %d), reconnected, '%s'; %d msgs sent around the "
                "kill: all %d cross-hub deliveries arrived once, in order; %s; %s" % (
                    logl[6:62], new, resumed.split(" ", 1)[-1][:80], nmid, ncross, rr,
                    summ))


@scenario("fed-bridge-up-eio", "failpoint", "forkchatd/bridge/up (hub A's bridge, onetime)",
          quick=True, timeout=90)
def _fed_up(ctx):
    """The bridge's write to its parent fails (EIO) mid-chat: records for the
    parent are lost, so the bridge ends (status 3) instead of going on with a
    hole; the parent restarts it and hands it the unacknowledged events and
    the read cursor, so every cross-hub message still arrives once, in order."""
    with Fed(ctx, "fed-bridge-up-eio") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the fault")
        old = fd.bridges(A)[-1]
        A.srv.enable("forkchatd/bridge/up", pid=old, failinfo=errno.EIO, onetime=True)
        fd.round(a + b, 5)      # B's events make A's bridge write to its parent
        logl = A.expect_log(r"federation: bridge pid=%d ended \(status 3\), restarting" % old, 5)
        if not wait_for(lambda: len(fd.bridges(A)) >= 2 and fd.connects(A) >= 2, 6):
            raise Fail("bridge not restarted/reconnected within 6s of the failed write")
        fd.round(a + b, 3)
        if not fd.delivered(fd.everyone(), list(fd.sent), 10):
            raise Fail("delivery incomplete after the restart: %s" %
                       (seq_check_window(fd.everyone(), fd.sent, {})[0][:3],))
        time.sleep(0.3)
        probs, lost = seq_check_window(fd.everyone(), fd.sent, {})
        if probs or lost:
            raise Fail("delivery (%d lost): %s" % (lost, "; ".join(probs[:3])))
        new = fd.bridges(A)[-1]
        if alive(old) or not alive(new):
            raise Fail("bridges: old %d alive=%s, new %d alive=%s" % (
                old, alive(old), new, alive(new)))
        n = sum(fd.sent.values())
        rr = fd.cross_round("r")
        return ("'%s'; new bridge %d; all %d msgs delivered once, in order, on both hubs; "
                "%s; %s" % (logl[6:70], new, n, rr, fd.verify()))


def fed_spawn_fail(ctx, name, point, log_rx):
    """The parent cannot (re)start its bridge: it keeps serving (a client that
    registers meanwhile is answered locally within a tick), logs, retries
    every second; its events wait in the parent, so after disable the bridge
    starts and every message sent meanwhile reaches the other hub once, in
    order: nothing is admitted lost."""
    with Fed(ctx, name) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(2, "the fault")
        A.srv.enable(point)
        old = fd.bridges(A)[-1]
        os.kill(old, signal.SIGKILL)
        A.expect_log(r"federation: bridge pid=%d ended" % old, 3)
        if not wait_for(lambda: A.srv.log_count(log_rx) >= 2, 5):
            raise Fail("no repeated /%s/ while %s fails" % (log_rx, point))
        logl = A.expect_log(log_rx)
        if len(fd.bridges(A)) != 1:
            raise Fail("a bridge started although %s fails" % point)
        kids = A.srv.children()
        if len(kids) != len(a):
            raise Fail("hub A has %d children, want %d sessions and no bridge" % (
                len(kids), len(a)))
        t0 = time.monotonic()
        late = A.client("lt0")      # its nick claim cannot go to Redis
        treg = time.monotonic() - t0
        late.send("/quit")
        if not late.wait_eof(5):
            raise Fail("lt0, registered while no bridge ran, could not /quit")
        late.close()
        fd.round(a, 3)                                  # local on A goes on
        fd.round(b, 3)                                  # local on B goes on
        if not fd.delivered(a, [c.nick for c in a], 5) or \
                not fd.delivered(b, [c.nick for c in b], 5):
            raise Fail("local delivery stalled while the bridge could not start")
        nfail = A.srv.log_count(log_rx)
        fdn = A.srv.fds()
        A.srv.disable(point)
        t0 = time.monotonic()
        if not wait_for(lambda: len(fd.bridges(A)) >= 2 and fd.connects(A) >= 2, 6):
            raise Fail("bridge not started within 6s of disabling %s" % point)
        dt = time.monotonic() - t0
        time.sleep(0.3)
        fd.round(a + b, 3)

        def after_ok():
            for r in a + b:
                for s in a + b:
                    g = seq_received(r).get(s.nick, [])
                    if s is not r and (not g or g[-1] < fd.sent[s.nick]):
                        return False
            return True
        if not wait_for(after_ok, 10):
            raise Fail("cross-hub delivery did not resume: %s" %
                       (seq_check_window(a + b, fd.sent, {})[0][:3],))
        time.sleep(0.3)
        probs, lost = seq_check_window(a + b, fd.sent, {})
        if probs or lost:
            raise Fail("delivery (%d lost): %s" % (lost, "; ".join(probs[:3])))
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s' x%d (retried every 1s), no bridge child, parent fds %d while down; "
                "registration answered locally in %.2fs; local chat on both hubs complete; "
                "bridge up %.1fs after disable; every msg sent while A had no bridge reached B "
                "once, in order (none lost); %s; %s" % (
                    logl[:60], nfail, fdn, treg, dt, rr, summ))


@scenario("fed-fork-eagain", "failpoint", "forkchatd/fed/fork (bridge restart)", quick=True,
          timeout=90)
def _fed_fork(ctx):
    return fed_spawn_fail(ctx, "fed-fork-eagain", "forkchatd/fed/fork",
                          r"federation: bridge restart: Resource temporarily unavailable")


@scenario("fed-pipe-emfile", "failpoint", "forkchatd/fed/pipe (bridge restart)", timeout=90)
def _fed_pipe(ctx):
    return fed_spawn_fail(ctx, "fed-pipe-emfile", "forkchatd/fed/pipe",
                          r"federation: bridge restart: Too many open files")


def stats(c, timeout=5.0):
    """/stats of c's hub as {name: int}."""
    n = len(c.snapshot())
    c.send("/stats")
    i = c.wait_line(r"^END STATS \d+$", timeout, start=n)
    if i is None:
        raise Fail("%s: /stats not answered" % c.nick)
    out = {}
    for x in c.snapshot()[n:i]:
        m = re.match(r"^STAT ([a-z0-9_]+) (\d+)$", x)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


BODY = 1900     # bytes of text per bulk message (--max-line is 2000)


def bulk_body(nick, n):
    """The text of bulk message n of nick: different for every message and
    every position, so a receiver can check each byte (bulk_check)."""
    unit = "%s.%d:" % (nick, n)
    return (unit * (BODY // len(unit) + 1))[:BODY]


def bulk_send(fx, c, k):
    """c sends k sequence-numbered messages of BODY bytes; returns bytes sent."""
    n0 = fx.sent.get(c.nick, 0)
    for n in range(n0 + 1, n0 + k + 1):
        c.send("seq %s %d %s" % (c.nick, n, bulk_body(c.nick, n)))
    fx.sent[c.nick] = n0 + k
    return k * BODY


def bulk_check(receivers, bulk):
    """Every receiver got every bulk message (bulk: {sender: (first, last)})
    exactly once, in order, each byte as sent.  Returns the bytes checked."""
    rx = re.compile(r"^MSG \S+ (\S+) seq (\S+) (\d+) (.*)$")
    total = 0
    for r in receivers:
        got = {}
        for line in r.snapshot():
            m = rx.match(line)
            if m and m.group(1) == m.group(2) and m.group(1) in bulk:
                lo, hi = bulk[m.group(1)]
                n = int(m.group(3))
                if lo <= n <= hi:
                    if m.group(4) != bulk_body(m.group(1), n):
                        raise Fail("%s<-%s message %d corrupted: %r" % (
                            r.nick, m.group(1), n, m.group(4)[:60]))
                    got.setdefault(m.group(1), []).append(n)
                    total += len(m.group(4))
        for s, (lo, hi) in bulk.items():
            if s == r.nick:
                continue
            seq = got.get(s, [])
            if seq != list(range(lo, hi + 1)):
                miss = sorted(set(range(lo, hi + 1)) - set(seq))
                raise Fail("%s<-%s bulk: %d of %d, %d missing (first %s), %d dups, %s" % (
                    r.nick, s, len(seq), hi - lo + 1, len(miss), miss[:4],
                    len(seq) - len(set(seq)), "in order" if seq == sorted(seq) else "REORDERED"))
    return total
