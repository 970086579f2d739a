# SPDX-License-Identifier: BSD-3-Clause
"""scenarios - the fault matrix: one function per scenario.

Each scenario returns a one-line evidence string, or raises fclib.Fail with
the evidence of the broken invariant.  Registered with @scenario(name, kind,
point, quick=...); kind is failpoint | preload | signal | limit.
In-code points run the server under `fiu-run` without -x (the run preload
still provides the control FIFO); preload points add -x.
"""

import errno
import os
import random
import re
import signal
import threading
import time

from fclib import Fail, Skip
from fclib import FiuServer as Server
from harness.client import check_seq, seq_received
from harness.procfs import alive, free_port, kill_pid
from harness.procfs import is_listening as listening
from harness.server import Redis
from harness.timescale import wait_for
from fixture import RSS_SLACK_KB, Fx, startup_fail

SCENARIOS = []

# a log line (not the 'listening ... log PATH' one) that names an allocation failure
OOM_LOG = r"\] (error|warn):? .*(out of memory|[Cc]annot allocate memory|ENOMEM)"

EAGAIN, ENOMEM, EIO, EPIPE, ESRCH, ECHILD, ENOSPC, EADDRINUSE = (
    errno.EAGAIN, errno.ENOMEM, errno.EIO, errno.EPIPE, errno.ESRCH,
    errno.ECHILD, errno.ENOSPC, errno.EADDRINUSE)


def scenario(name, kind, point, quick=False, timeout=60, fires=True):
    """fires: the point (first name in `point`) must fire for a pass;
    False: it must not (runner.judge_fired)."""
    def deco(fn):
        SCENARIOS.append({"name": name, "kind": kind, "point": point,
                          "quick": quick, "timeout": timeout, "fn": fn, "fires": fires})
        return fn
    return deco


def contiguous(seq):
    """No gap, no duplicate, in order (from wherever it starts)."""
    return not seq or seq == list(range(seq[0], seq[0] + len(seq)))


# ==== shared shapes ================================================================

def spawn_refused(ctx, name, point, log_rx, preload=False, failinfo=None):
    """A new client while `point` fails: BYE INTERNAL; the others chat on."""
    with Fx(ctx, name, preload=preload) as fx:
        fx.srv.enable(point, failinfo=failinfo)
        victims = [fx.raw("victim%d" % i) for i in range(2)]
        byes = [fx.expect_cut(v, (r"^BYE INTERNAL",), 5, need_line=True) for v in victims]
        for c in fx.ctl:
            fx.seq(c, 3)
        if not fx.delivered():
            raise Fail("control clients lost messages while %s failed" % point)
        logl = fx.expect_log(log_rx)
        fx.srv.disable(point)
        late = fx.client("late")
        fx.seq(late, 2)
        if not fx.delivered():
            raise Fail("late client's messages not delivered after disable")
        summ = fx.verify()
        return "2 victims: %r; log '%s'; late client served; %s" % (byes[0][:40], logl, summ)


def one_cut(ctx, name, point, log_rx, preload=False, failinfo=None, bye_rx=r"^BYE INTERNAL",
            need_line=False, nctl=4):
    """FIU_ONETIME at a fan-out site: exactly one recipient is cut, told why."""
    with Fx(ctx, name, preload=preload, nctl=nctl) as fx:
        fx.srv.enable(point, failinfo=failinfo, onetime=True)
        fx.seq(fx.ctl[0], 1)
        wait_for(lambda: fx.cut_clients() or fx.delivered(timeout=0), 3)
        time.sleep(0.3)
        cut = fx.cut_clients()
        if len(cut) != 1:
            raise Fail("onetime %s cut %d clients, want 1" % (point, len(cut)))
        bye = fx.expect_cut(cut[0], (bye_rx,), 5, need_line=need_line)
        survivors = [c for c in fx.ctl if c not in cut]
        for c in survivors:
            fx.seq(c, 3)
        if not fx.delivered(receivers=survivors, senders=[c.nick for c in survivors]):
            raise Fail("survivors lost messages after the cut")
        logl = fx.expect_log(log_rx)
        fx.srv.disable(point)
        summ = fx.verify(affected=cut)
        return "%s cut with %r; log '%s'; %s" % (cut[0].nick, bye[:45], logl, summ)


def delay_only(ctx, name, point, log_rx, preload=False, failinfo=None, window=1.5,
               max_delay=4.0, target=None):
    """A lost wake-up or failed read: messages are late, never lost or doubled."""
    with Fx(ctx, name, preload=preload) as fx:
        pid = fx.child_of(target(fx)) if target else None
        fx.srv.enable(point, pid=pid, failinfo=failinfo)
        t0 = time.monotonic()
        for c in fx.ctl:
            fx.seq(c, 5)
        during = fx.delivered(timeout=window)
        t_during = time.monotonic() - t0
        fx.srv.disable(point, pid=pid)
        if not fx.delivered(timeout=max_delay):
            raise Fail("messages lost: not delivered %.0fs after disabling %s" % (max_delay, point))
        dt = time.monotonic() - t0
        if fx.cut_clients():
            raise Fail("%s cut clients: %s" % (point, [c.nick for c in fx.cut_clients()]))
        logl = fx.expect_log(log_rx) if log_rx else "none (child does not log)"
        summ = fx.verify()
        how = ("delivered during the fault in %.1fs" % t_during) if during else \
              ("held during the fault, delivered %.1fs after start" % dt)
        return "15 msgs %s, none lost/dup; log '%s'; %s" % (how, logl, summ)


def startup(ctx, name, cmds, err_rx, preload=False):
    return startup_fail(ctx, name, 1, err_rx, preload=preload, start_cmds=cmds)


def burst_prob(ctx, name, point, prob, preload=False, failinfo=None, nctl=6, per=15, pad=0):
    """A random failure rate during a chat burst: whoever is cut is told or
    disconnected; everyone else loses nothing."""
    with Fx(ctx, name, preload=preload, nctl=nctl) as fx:
        fx.srv.enable(point, prob=prob, failinfo=failinfo)
        for _ in range(per):
            for c in fx.ctl:
                if not c.eof:
                    fx.seq(c, 1, pad=pad)
            time.sleep(0.005)
        time.sleep(0.5)
        fx.srv.disable(point)
        time.sleep(0.3)
        cut = fx.cut_clients()
        surv = [c for c in fx.ctl if c not in cut]
        for c in cut:
            fx.expect_cut(c, (r"^BYE ",), 5)
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv], timeout=5):
            raise Fail("survivors did not get each other's messages")
        nbye = sum(1 for c in cut if c.bye())
        for c in cut:
            fx.expect_cut(c, timeout=1)        # also: no truncated line
        summ = fx.verify(affected=cut)
        nerr = fx.srv.log_count(r"\] (error|warn):? ")
        return "p=%g: %d/%d cut (%d with BYE), %d error/warn lines logged; survivors complete; %s" % (
            prob, len(cut), nctl, nbye, nerr, summ)


# ==== in-code failpoints (fiu-run without -x) ======================================

@scenario("accept-emfile", "failpoint", "forkchatd/accept/accept", quick=True)
def _accept(ctx):
    with Fx(ctx, "accept-emfile", preload=False) as fx:
        fx.srv.enable("forkchatd/accept/accept")
        cpu0, t0 = fx.srv_cpu(), time.monotonic()
        pend = fx.raw("pending")
        for c in fx.ctl:
            fx.seq(c, 3)
        if not fx.delivered():
            raise Fail("control clients lost messages while accept failed")
        time.sleep(1.3)
        if pend.snapshot():
            raise Fail("pending client was served while accept failed: %r" % pend.snapshot())
        logl = fx.expect_log(r"accept: Too many open files")
        used, wall = fx.no_busy_loop(cpu0, t0)
        fx.srv.disable("forkchatd/accept/accept")
        t1 = time.monotonic()
        pend.register("pending")
        dt = time.monotonic() - t1
        fx.seq(pend, 2)
        if not fx.delivered():
            raise Fail("pending client's messages not delivered")
        n = fx.srv.log_count(r"accept: Too many open files")
        summ = fx.verify()
        return ("'%s' x%d (retried on the tick, %.2fs CPU in %.1fs); queued client served "
                "%.1fs after disable; %s" % (logl, n, used, wall, dt, summ))


@scenario("spawn-pipe-emfile", "failpoint", "forkchatd/spawn/pipe", quick=True)
def _pipe(ctx):
    return spawn_refused(ctx, "spawn-pipe-emfile", "forkchatd/spawn/pipe",
                         r"pipe for 127\.0\.0\.1:\d+: Too many open files")


@scenario("spawn-fork-eagain", "failpoint", "forkchatd/spawn/fork", quick=True)
def _fork(ctx):
    return spawn_refused(ctx, "spawn-fork-eagain", "forkchatd/spawn/fork",
                         r"fork for 127\.0\.0\.1:\d+: Resource temporarily unavailable")


@scenario("spawn-fork-random", "failpoint", "forkchatd/spawn/fork p=0.5")
def _fork_random(ctx):
    with Fx(ctx, "spawn-fork-random", preload=False) as fx:
        fx.srv.enable("forkchatd/spawn/fork", prob=0.5)
        served = refused = 0
        for i in range(10):
            v = fx.raw("r%d" % i)
            i_hello = v.wait_line(r"^(HELLO|BYE)", 5)
            if i_hello is None:
                raise Fail("client r%d neither served nor refused in 5s (hang)" % i)
            if v.snapshot()[i_hello].startswith("HELLO"):
                v.register()
                served += 1
            else:
                fx.expect_cut(v, (r"^BYE INTERNAL",), 5, need_line=True)
                refused += 1
        fx.srv.disable("forkchatd/spawn/fork")
        n = fx.srv.log_count(r"fork for .*Resource temporarily unavailable")
        if n != refused:
            raise Fail("%d refused but %d 'fork for' log lines" % (refused, n))
        for c in fx.ctl:
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("control clients lost messages")
        summ = fx.verify()
        return "10 clients: %d served, %d refused with BYE INTERNAL, %d logged; %s" % (
            served, refused, n, summ)


@scenario("spawn-fcntl-ebadf", "failpoint", "forkchatd/spawn/fcntl")
def _fcntl(ctx):
    with Fx(ctx, "spawn-fcntl-ebadf", preload=False) as fx:
        fx.srv.enable("forkchatd/spawn/fcntl")
        v = fx.raw("victim")
        bye = fx.expect_cut(v, (r"^BYE INTERNAL",), 5)
        logl = fx.expect_log(r"fcntl: Bad file descriptor")
        fx.expect_log(r"reason=error")
        fx.srv.disable("forkchatd/spawn/fcntl")
        for c in fx.ctl:
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("control clients lost messages")
        summ = fx.verify()
        if not bye.startswith("BYE"):
            bye += " (child saw pipe EOF before the queued SIGTERM: reason lost)"
        return "victim got %r; log '%s' + reason=error; %s" % (bye[:90], logl, summ)


@scenario("fanout-append-enomem", "failpoint", "forkchatd/fanout/append (onetime)")
def _append(ctx):
    return one_cut(ctx, "fanout-append-enomem", "forkchatd/fanout/append",
                   r"disconnect slot=\d+ nick=c\d reason=error")


@scenario("fanout-write-eio", "failpoint", "forkchatd/fanout/write (onetime)", quick=True)
def _write(ctx):
    return one_cut(ctx, "fanout-write-eio", "forkchatd/fanout/write",
                   r"write to child: Input/output error")


@scenario("fanout-write-random", "failpoint", "forkchatd/fanout/write p=0.04")
def _write_random(ctx):
    return burst_prob(ctx, "fanout-write-random", "forkchatd/fanout/write", 0.04)


@scenario("fanout-kill-esrch", "failpoint", "forkchatd/fanout/kill", quick=True)
def _kill(ctx):
    return delay_only(ctx, "fanout-kill-esrch", "forkchatd/fanout/kill",
                      r"kill SIGUSR2: No such process", window=2.5)


@scenario("inbound-read-eio", "failpoint", "forkchatd/inbound/read")
def _inbound(ctx):
    return delay_only(ctx, "inbound-read-eio", "forkchatd/inbound/read",
                      r"read from children: Input/output error")


@scenario("abort-sigqueue-esrch", "failpoint", "forkchatd/abort/sigqueue + fanout/write")
def _sigqueue(ctx):
    with Fx(ctx, "abort-sigqueue-esrch", preload=False, nctl=4) as fx:
        fx.srv.enable("forkchatd/abort/sigqueue")
        fx.srv.enable("forkchatd/fanout/write", onetime=True)
        fx.seq(fx.ctl[0], 1)
        if not wait_for(lambda: fx.cut_clients(), 5):
            raise Fail("nobody cut: the abort path did not run")
        cut = fx.cut_clients()
        how = fx.expect_cut(cut[0], (r"^BYE ",), 5)
        logl = fx.expect_log(r"sigqueue: No such process")
        fx.srv.disable("forkchatd/abort/sigqueue")
        fx.srv.disable("forkchatd/fanout/write")
        surv = [c for c in fx.ctl if c not in cut]
        for c in surv:
            fx.seq(c, 2)
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv]):
            raise Fail("survivors lost messages")
        summ = fx.verify(affected=cut)
        return "%s cut without the signal (pipe EOF): %s; log '%s'; %s" % (
            cut[0].nick, how, logl, summ)


@scenario("reap-waitpid-echild", "failpoint", "forkchatd/reap/waitpid")
def _reap(ctx):
    with Fx(ctx, "reap-waitpid-echild", preload=False) as fx:
        fx.srv.enable("forkchatd/reap/waitpid")
        q = [fx.client("quit%d" % i) for i in range(2)]
        for c in q:
            c.send("/quit bye")
        for c in q:
            fx.expect_cut(c, (r"^BYE QUIT",), 5, need_line=True)
        nz = wait_for(lambda: len(fx.srv.zombies()) >= 2, 3)
        zs = len(fx.srv.zombies())
        if not nz:
            raise Fail("no zombie while waitpid failed: the point did not bite")
        newc = fx.client("during")
        fx.seq(newc, 2)
        if not fx.delivered():
            raise Fail("chat stalled while waitpid failed")
        fx.srv.disable("forkchatd/reap/waitpid")
        if not wait_for(lambda: not fx.srv.zombies(), 3):
            raise Fail("zombies not reaped 3s after disable: %s" % fx.srv.zombies())
        logl = fx.expect_log(r"disconnect slot=\d+ nick=quit0 reason=quit")
        summ = fx.verify()
        return ("%d zombies while waitpid failed (no log line: ECHILD is 'no child'), reaped "
                "after disable; new client chatted meanwhile; log '%s'; %s" % (zs, logl, summ))


@scenario("buf-malloc-onetime", "failpoint", "forkchatd/buf/malloc (onetime)", quick=True)
def _buf_once(ctx):
    with Fx(ctx, "buf-malloc-onetime", preload=False, nctl=4) as fx:
        fx.srv.enable("forkchatd/buf/malloc", onetime=True)
        for c in fx.ctl:
            fx.seq(c, 4, pad=1500)      # > 4 kB each: every out buffer must grow
        time.sleep(1.5)
        cut = fx.cut_clients()
        if len(cut) > 1:
            raise Fail("one failed allocation cut %d clients" % len(cut))
        how = [fx.expect_cut(c, (r"^BYE INTERNAL",), 5) for c in cut]
        surv = [c for c in fx.ctl if c not in cut]
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv], timeout=4):
            raise Fail("messages lost after one failed allocation")
        line = fx.srv.log_has(r"out of memory|reason=error", 2)
        if not line:
            raise Fail("failed allocation not logged")
        summ = fx.verify(affected=cut)
        return "outcome: %s; log '%s'; %s" % (
            ("%s cut: %s" % (cut[0].nick, how[0][:40])) if cut else "retried, nothing lost",
            line.split("] ", 1)[-1][:70], summ)


@scenario("buf-malloc-random", "failpoint", "forkchatd/buf/malloc p=0.5")
def _buf_rand(ctx):
    return burst_prob(ctx, "buf-malloc-random", "forkchatd/buf/malloc", 0.5, pad=1500)


@scenario("chat-calloc-add-room", "failpoint", "forkchatd/chat/calloc")
def _calloc(ctx):
    with Fx(ctx, "chat-calloc-add-room", preload=False) as fx:
        a = fx.ctl[0]
        fx.srv.enable("forkchatd/chat/calloc")
        n = len(a.snapshot())
        a.send("/add r1")
        i = a.wait_line(r"^(ERR|OK)", 5, n)
        if i is None or not a.snapshot()[i].startswith("ERR 500 INTERNAL"):
            raise Fail("/add under calloc failure: %r, want ERR 500 INTERNAL" %
                       (a.snapshot()[i] if i is not None else None))
        err = a.snapshot()[i]
        fx.seq(a, 2)                                    # still connected and chatting
        if not fx.delivered():
            raise Fail("client lost after ERR 500")
        fx.srv.disable("forkchatd/chat/calloc")
        n = len(a.snapshot())
        a.send("/add r1")
        if a.wait_line(r"^OK ADD r1", 5, n) is None:
            raise Fail("/add still failing after disable")
        a.send("/leave")
        a.wait_line(r"^OK JOIN lobby", 5, n)
        logged = fx.srv.log_has(OOM_LOG, 1)
        summ = fx.verify()
        if not logged:
            raise Fail("ERR 500 sent (%r) but the failure is not logged (no 'out of memory' "
                       "line); rest ok: %s" % (err[:40], summ))
        return "%r, client stays; /add ok after disable; %s" % (err[:40], summ)


@scenario("log-open-sighup", "failpoint", "forkchatd/log/open")
def _log_open(ctx):
    with Fx(ctx, "log-open-sighup", preload=False) as fx:
        fx.srv.enable("forkchatd/log/open")
        fx.srv.signal(signal.SIGHUP)
        logl = fx.expect_log(r"log reopen: No space left on device")
        misleading = fx.srv.log_count(r"log reopened \(SIGHUP\)")
        for c in fx.ctl:
            fx.seq(c, 3)
        if not fx.delivered():
            raise Fail("chat stalled after a failed log reopen")
        fx.srv.disable("forkchatd/log/open")
        fx.srv.signal(signal.SIGHUP)
        if not wait_for(lambda: fx.srv.log_count(r"log reopened \(SIGHUP\)") > misleading, 3):
            raise Fail("SIGHUP after disable did not reopen the log")
        summ = fx.verify()
        return "'%s', serving on (also logged 'log reopened' after the failure: %d); %s" % (
            logl, misleading, summ)


@scenario("startup-sigaction", "failpoint", "forkchatd/setup/sigaction (at start)")
def _st_sigaction(ctx):
    return startup(ctx, "startup-sigaction", ["enable name=forkchatd/setup/sigaction"],
                   r"startup: Invalid argument")


@scenario("startup-log-open", "failpoint", "forkchatd/log/open (at start)")
def _st_logopen(ctx):
    return startup(ctx, "startup-log-open", ["enable name=forkchatd/log/open"],
                   r"forkchatd: cannot open log in \S+: No space left on device")


@scenario("startup-chat-calloc", "failpoint", "forkchatd/chat/calloc (at start)")
def _st_calloc(ctx):
    return startup(ctx, "startup-chat-calloc", ["enable name=forkchatd/chat/calloc"],
                   r"startup: Cannot allocate memory")


# ---- child-side points: enabled through the child's own control FIFO ----------------

def child_point(ctx, name, point, drive, log_rx, bye=(r"^BYE ",)):
    with Fx(ctx, name, preload=False) as fx:
        v = fx.client("victim")
        vpid = fx.child_of(v)
        fx.srv.enable(point, pid=vpid)
        drive(fx, v)
        how = fx.expect_cut(v, bye, 5)
        logl = fx.expect_log(log_rx)
        if not wait_for(lambda: not alive(vpid), 3):
            raise Fail("victim's child %d still running" % vpid)
        for c in fx.ctl:
            if c.wait_line(r"^PART lobby victim disconnected", 3) is None:
                raise Fail("%s not told that victim left" % c.nick)
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("control clients lost messages")
        summ = fx.verify()
        return "victim: %s; log '%s'; others told PART; %s" % (how, logl, summ)


@scenario("session-read-econnreset", "failpoint", "forkchatd/session/read (child)")
def _s_read(ctx):
    return child_point(ctx, "session-read-econnreset", "forkchatd/session/read",
                       lambda fx, v: v.send("hello?"),
                       r"disconnect slot=\d+ nick=victim reason=eof \(Connection reset by peer\)")


@scenario("session-write-eio", "failpoint", "forkchatd/session/write (child)")
def _s_write(ctx):
    return child_point(ctx, "session-write-eio", "forkchatd/session/write",
                       lambda fx, v: v.send("hello?"),
                       r"disconnect slot=\d+ nick=victim reason=exit-status-1")


@scenario("session-send-epipe", "failpoint", "forkchatd/session/send (child)")
def _s_send(ctx):
    return child_point(ctx, "session-send-epipe", "forkchatd/session/send",
                       lambda fx, v: fx.seq(fx.ctl[0], 1),
                       r"disconnect slot=\d+ nick=victim reason=eof \(Broken pipe\)")


@scenario("session-kill-esrch", "failpoint", "forkchatd/session/kill (child)")
def _s_kill(ctx):
    return delay_only(ctx, "session-kill-esrch", "forkchatd/session/kill", None,
                      target=lambda fx: fx.ctl[0], window=2.0)


# ==== federation bridge (--redis; docs/SCALING.md) ==================================

def bridge_point(ctx, name, point, errno_):
    """The bridge's Redis I/O fails once: it logs the outage, reconnects,
    and the hub's local clients never notice."""
    import shutil
    if shutil.which("redis-server") is None:
        raise Skip("no redis-server (Debian package redis-server)")
    redis = Redis(ctx.rundir).start()
    port = redis.port
    try:
        with Fx(ctx, name, preload=False,
                args=("--redis", "127.0.0.1:%d" % port, "--hub-id", "f0")) as fx:
            line = fx.srv.log_has(r"federation: bridge pid=\d+", 5)
            if not line:
                raise Fail("no bridge started")
            bpid = int(re.search(r"pid=(\d+)", line).group(1))
            fx.expect_log(r"federation: connected to redis", 5)
            fx.srv.enable(point, pid=bpid, failinfo=errno_, onetime=True)
            for c in fx.ctl:
                fx.seq(c, 3)   # events for the bridge: its next I/O fails
            logl = fx.expect_log(r"federation: redis .* unavailable", 5)
            if not wait_for(lambda: len(re.findall(r"federation: connected to redis",
                                                   fx.srv.log())) >= 2, 5):
                raise Fail("bridge did not reconnect after %s" % point)
            for c in fx.ctl:
                fx.seq(c, 3)
            if not fx.delivered():
                raise Fail("local clients lost messages while the bridge failed")
            bpids = [int(m) for m in re.findall(r"federation: bridge pid=(\d+)",
                                                 fx.srv.log())]
            if not alive(bpids[-1]):
                raise Fail("bridge %d is not running" % bpids[-1])
            summ = fx.verify(keep=bpids, post=False)
            return "log '%s'; reconnected; %s" % (logl, summ)
    finally:
        redis.stop()


@scenario("bridge-read-econnreset", "failpoint", "forkchatd/bridge/read (bridge, onetime)")
def _b_read(ctx):
    return bridge_point(ctx, "bridge-read-econnreset", "forkchatd/bridge/read",
                        errno.ECONNRESET)


@scenario("bridge-write-epipe", "failpoint", "forkchatd/bridge/write (bridge, onetime)")
def _b_write(ctx):
    return bridge_point(ctx, "bridge-write-epipe", "forkchatd/bridge/write", EPIPE)


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


@scenario("fed-redis-restart", "signal",
          "SIGKILL redis-server with 4 MiB acknowledged, unread by hub B; restart",
          timeout=240)
def _fed_redis(ctx):
    """Redis (no persistence) is killed while it holds 4 MiB of hub A's
    events that it acknowledged and hub B has not read (B's bridge is
    SIGSTOPped from before they were sent until after the kill: the events
    are acknowledged, fed_unacked 0 on A, and none reached B's clients), and
    started again on the same port.  Both hubs log the outage and keep
    serving locally; what is said during the outage waits in the outboxes;
    hub A sees the new run_id and sends its kept events (BRIDGE_RETAIN,
    8 MiB) again; every message, the 4 MiB byte for byte, reaches every
    client that stayed exactly once and in order; nothing is counted lost."""
    with Fed(ctx, "fed-redis-restart", hub_args=("--max-backlog", str(64 << 20))) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the kill")
        bridge = fd.bridges(B)[-1]
        pre = dict(fd.sent)
        sb0 = stats(b[0])
        os.kill(bridge, signal.SIGSTOP)     # hub B reads nothing from here on
        try:
            nbytes = 0
            for _ in range(11):             # 2 x 1100 x 1900 B = 4.0 MiB, interleaved
                for c in a:
                    nbytes += bulk_send(A, c, 100)
            bulk = {c.nick: (pre[c.nick] + 1, fd.sent[c.nick]) for c in a}
            fd.round(b, 2)                  # B's own: they wait in B's bridge pipe
            if not fd.delivered(a, [c.nick for c in a], 60):
                raise Fail("hub A's local clients did not get the 4 MiB")
            # acknowledged: Redis has every one of A's events
            if not wait_for(lambda: stats(a[0])["fed_unacked"] == 0, 30, 0.2):
                raise Fail("hub A's events not acknowledged by Redis: %s" % stats(a[0]))
            xlen = subprocess_out(["redis-cli", "-p", str(fd.redis.port), "XLEN", "fc:ev"])
            # unread: hub B's clients have none of them at the kill (its
            # reader may hold one XREAD reply in its socket; it is read after)
            unread = {"%s<-%s" % (r.nick, s.nick):
                      len([n for n in seq_received(r).get(s.nick, []) if n > pre[s.nick]])
                      for r in b for s in a}
            if any(unread.values()):
                raise Fail("hub B delivered bulk messages although its bridge is stopped: %s" %
                           unread)
            fd.redis.stop()                 # the stream, and the 4 MiB, are gone
        finally:
            os.kill(bridge, signal.SIGCONT)
        A.expect_log(r"federation: redis .* unavailable", 5)
        B.expect_log(r"federation: redis .* unavailable", 5)
        fd.round(a + b, 4)                  # during the outage
        for cs in (a, b):
            if not fd.delivered(cs, [c.nick for c in cs], 10):
                raise Fail("local delivery stalled while Redis was down")
        ca, cb = fd.connects(A), fd.connects(B)
        time.sleep(1.0)
        fd.redis.start()
        t0 = time.monotonic()
        if not wait_for(lambda: fd.connects(A) > ca and fd.connects(B) > cb, 8):
            raise Fail("hubs did not reconnect within 8s of the Redis restart")
        dt = time.monotonic() - t0
        A.expect_log(r"federation: redis restarted \(run_id [^)]*\): sending again", 10)
        if not fd.delivered(fd.everyone(), list(fd.sent), 90):
            raise Fail("not delivered after the restart: %s" % (
                seq_check_window(fd.everyone(), fd.sent)[0][:3],))
        tcatch = time.monotonic() - t0
        fd.round(a + b, 2)
        if not fd.delivered(fd.everyone(), list(fd.sent), 10):
            raise Fail("cross-hub chat did not resume after the restart")
        time.sleep(0.5)                     # a late duplicate would show here
        probs = check_seq(fd.everyone(), fd.sent, [c.nick for c in fd.everyone()])
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        checked = bulk_check(fd.everyone(), bulk)
        sb1 = stats(b[0])
        if sb1.get("fed_events_lost", 0) != sb0.get("fed_events_lost", 0):
            raise Fail("hub B counted %d events lost" % (sb1["fed_events_lost"] -
                                                         sb0["fed_events_lost"]))
        if B.srv.log_count(r"NOTICE|events of hub \S+ lost"):
            raise Fail("hub B logged lost events")
        for c in b:
            if any(x.startswith("NOTICE MESSAGES_LOST") for x in c.snapshot()):
                raise Fail("%s was told MESSAGES_LOST" % c.nick)
        resend = sum(h.srv.log_count(r"federation: redis restarted \(run_id") for h in (A, B))
        if resend < 2:
            raise Fail("%d of 2 hubs noticed the new run_id and sent their kept events again"
                       % resend)
        rr = fd.cross_round("r")
        summ = fd.verify(rss_slack=8 << 10)     # the parent keeps 8 MiB (BRIDGE_RETAIN)
        return ("Redis killed holding %d msgs (%.1f MiB) of hub A acknowledged (A fed_unacked "
                "0, XLEN %s), 0 read by B; reconnected %.1fs after restart, A sent its kept "
                "events again (new run_id); caught up in %.1fs; every msg once, in order, "
                "%.1f MiB checked byte for byte; B: events_in +%d, dups dropped +%d, lost 0; "
                "%s; %s" % (
                    sum(hi - lo + 1 for lo, hi in bulk.values()), nbytes / 1048576.0, xlen,
                    dt, tcatch, checked / 1048576.0,
                    sb1["fed_events_in"] - sb0["fed_events_in"],
                    sb1["fed_duplicates_dropped"] - sb0["fed_duplicates_dropped"], rr, summ))


def subprocess_out(argv):
    import subprocess
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise Fail("%s: exit %d %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout.strip()


@scenario("fed-redis-sigstop", "signal",
          "SIGSTOP redis-server 12 s (2 x --nick-ttl), --redis-timeout 1000", timeout=120)
def _fed_redis_stop(ctx):
    """Redis hangs instead of dying (issue 14): both hubs notice within the
    timeout once a reply is due, log it once, answer a registration within
    the timeout, keep local chat and keep listing each other's users (alive
    hubs are not forgotten because Redis is silent); after SIGCONT they log
    how long Redis was out and everything said meanwhile arrives once, in
    order."""
    with Fed(ctx, "fed-redis-sigstop", hub_args=("--redis-timeout", "1000")) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the stop")
        if not fd.lists(b[0], [c.nick for c in a]) or not fd.lists(a[0], [c.nick for c in b]):
            raise Fail("presence did not cross before the stop")
        pid = fd.redis.proc.pid
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            fd.round(a + b, 2)              # replies fall due on both hubs
            rx = r"federation: redis .* unavailable \(no reply for \d+ ms\)"
            la = A.expect_log(rx, 8)
            B.expect_log(rx, 8)
            tdet = time.monotonic() - t0
            t1 = time.monotonic()
            late = A.client("st0")          # needs Redis: decided locally
            treg = time.monotonic() - t1
            if treg > 1.0 + 2.0:
                raise Fail("registration during the hang took %.2fs (timeout 1s)" % treg)
            fd.round(a + b, 3)
            for cs in (a, b):
                if not fd.delivered(cs, [c.nick for c in cs], 5):
                    raise Fail("local delivery stalled while Redis hung")
            while time.monotonic() - t0 < 11:
                time.sleep(0.2)
            n0 = len(b[0].snapshot())
            b[0].send("/users all")
            if not b[0].wait_line(r"^END USERS", 5, start=n0):
                raise Fail("/users all not answered during the hang")
            listed = [x for x in b[0].snapshot()[n0:] if x.startswith("USER ")]
            if not any(x.startswith("USER a0 ") for x in listed):
                raise Fail("hub B forgot hub A's users after 11s of Redis silence: %r" % listed)
            while time.monotonic() - t0 < 12:
                time.sleep(0.1)
        finally:
            os.kill(pid, signal.SIGCONT)
        t2 = time.monotonic()
        lb = A.expect_log(r"federation: redis .* back after \d+ ms out", 10)
        B.expect_log(r"federation: redis .* back after \d+ ms out", 10)
        if not fd.delivered(fd.everyone(), list(fd.sent), 15):
            raise Fail("messages of the hang not delivered after SIGCONT: %s" % (
                seq_check_window(fd.everyone(), fd.sent)[0][:3],))
        tcatch = time.monotonic() - t2
        time.sleep(0.3)
        probs = check_seq(fd.everyone(), fd.sent, [c.nick for c in fd.everyone()])
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        late.send("/quit")
        if not late.wait_eof(5):
            raise Fail("st0, registered during the hang, could not /quit")
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s' %.1fs after SIGSTOP; registration answered in %.2fs; local chat "
                "complete; A's users still listed on B at 11s; '%s'; the 20 msgs of the "
                "hang arrived cross-hub once, in order, %.1fs after SIGCONT; %s; %s" % (
                    la[:62], tdet, treg, lb[:60], tcatch, rr, summ))


@scenario("fed-hub-sigkill", "signal", "SIGKILL hub B's parent", timeout=90)
def _fed_hub_kill(ctx):
    """A hub is SIGKILLed: after --nick-ttl of silence the other hub forgets
    it and its users leave with PART lobby NICK hub-lost (a netsplit);
    the surviving hub's chat goes on without loss."""
    with Fed(ctx, "fed-hub-sigkill") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(2, "the kill")
        if not fd.lists(a[0], [c.nick for c in b]):
            raise Fail("hub B's users never listed on hub A")
        n0 = [len(c.snapshot()) for c in a]
        t0 = time.monotonic()
        kill_pid(B.srv.pid)
        for c, n in zip(a, n0):
            for d in b:
                if not c.wait_line(r"^PART lobby %s hub-lost$" % d.nick, 15, start=n):
                    raise Fail("%s got no 'PART lobby %s hub-lost' within 15s" % (c.nick, d.nick))
        dt = time.monotonic() - t0
        logl = A.expect_log(r"federation: hub hubB silent for \d+ ms, forgetting its users "
                            r"\(2 parted: hub-lost\)", 3)
        for c in a:
            parts = [x for x in c.snapshot()[n0[a.index(c)]:] if x.startswith("PART ")]
            if len(parts) != len(b):
                raise Fail("%s got %d PART lines, want %d: %r" % (c.nick, len(parts), len(b), parts))
        fd.round(a, 3)
        if not fd.delivered(a, [c.nick for c in a], 5):
            raise Fail("hub A's chat stalled after hub B died")
        probs = check_seq(a, {c.nick: fd.sent[c.nick] for c in a}, [c.nick for c in a])
        if probs:
            raise Fail("delivery on A: " + "; ".join(probs[:3]))
        A.ctl = []
        summ = A.verify(keep=fd.bridges(A), post=False)
        return ("both of A's clients got 'PART lobby b0/b1 hub-lost' %.1fs after the kill "
                "(--nick-ttl 6); '%s'; A's chat goes on; A: %s" % (dt, logl[:80], summ[:80]))


@scenario("fed-gap-past-retention", "signal",
          "SIGSTOP hub B's bridge, XTRIM fc:ev MAXLEN 0, SIGCONT", timeout=90)
def _fed_gap(ctx):
    """Events hub B never read because the stream was trimmed past them
    (its bridge stopped, the stream cut to nothing): B detects the jump in
    hub A's sequence numbers, logs it, counts it (fed_events_lost) and tells
    its clients NOTICE MESSAGES_LOST before the next line; what follows
    arrives once, in order."""
    import subprocess
    with Fed(ctx, "fed-gap-past-retention") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(2, "the gap")
        bridge = fd.bridges(B)[-1]
        pre = dict(fd.sent)
        n0 = [len(c.snapshot()) for c in b]
        os.kill(bridge, signal.SIGSTOP)
        try:
            fd.round(a, 5)
            if not fd.delivered(a, [c.nick for c in a], 5):
                raise Fail("hub A's local chat stalled")
            time.sleep(0.5)             # acknowledged by Redis
            r = subprocess.run(["redis-cli", "-p", str(fd.redis.port), "XTRIM", "fc:ev",
                                "MAXLEN", "0"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise Fail("XTRIM failed: %s" % r.stderr.strip())
            mid = dict(fd.sent)
            fd.round(a, 2)
        finally:
            os.kill(bridge, signal.SIGCONT)
        for c, n in zip(b, n0):
            if not c.wait_line(r"^NOTICE MESSAGES_LOST \d+ events from hub hubA ", 10, start=n):
                raise Fail("%s got no NOTICE MESSAGES_LOST: %r" % (c.nick, c.snapshot()[n:][:6]))
        logl = B.expect_log(r"federation: \d+ events of hub hubA lost", 5)
        def last_ok():
            return all((seq_received(r).get(s.nick) or [0])[-1] >= fd.sent[s.nick]
                       for r in b for s in a)
        if not wait_for(last_ok, 10):
            raise Fail("A's messages after the gap did not reach B")
        lossy = {(r.nick, s.nick): (pre[s.nick], mid[s.nick]) for r in b for s in a}
        probs, lost = seq_check_window(b, fd.sent, lossy)
        if probs:
            raise Fail("delivery around the gap: " + "; ".join(probs[:3]))
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s'; both of B's clients told (NOTICE MESSAGES_LOST); %d receptions "
                "lost, all in the trimmed window, the rest once, in order; "
                "%s; %s" % (logl[:70], lost, rr, summ))


# ==== libfiu POSIX preload (fiu-run -x) ===============================================

@scenario("posix-fork-eagain", "preload", "posix/proc/fork failinfo=EAGAIN")
def _p_fork(ctx):
    return spawn_refused(ctx, "posix-fork-eagain", "posix/proc/fork",
                         r"fork for 127\.0\.0\.1:\d+: Resource temporarily unavailable",
                         preload=True, failinfo=EAGAIN)


@scenario("posix-fork-enomem", "preload", "posix/proc/fork failinfo=ENOMEM")
def _p_fork2(ctx):
    return spawn_refused(ctx, "posix-fork-enomem", "posix/proc/fork",
                         r"fork for 127\.0\.0\.1:\d+: Cannot allocate memory",
                         preload=True, failinfo=ENOMEM)


@scenario("posix-write-eio", "preload", "posix/io/rw/write failinfo=EIO (onetime)", quick=True)
def _p_write(ctx):
    return one_cut(ctx, "posix-write-eio", "posix/io/rw/write",
                   r"write to child: Input/output error", preload=True, failinfo=EIO)


@scenario("posix-write-epipe", "preload", "posix/io/rw/write failinfo=EPIPE (onetime)")
def _p_write_epipe(ctx):
    return one_cut(ctx, "posix-write-epipe", "posix/io/rw/write",
                   r"disconnect slot=\d+ nick=c\d reason=exit-status-0", preload=True,
                   failinfo=EPIPE, need_line=False)


@scenario("posix-write-random", "preload", "posix/io/rw/write failinfo=EIO p=0.04")
def _p_write_rand(ctx):
    return burst_prob(ctx, "posix-write-random", "posix/io/rw/write", 0.04, preload=True,
                      failinfo=EIO)


@scenario("posix-write-short", "preload", "posix/io/rw/write/reduce")
def _p_write_reduce(ctx):
    with Fx(ctx, "posix-write-short", nctl=4) as fx:
        fx.srv.enable("posix/io/rw/write/reduce")
        for _ in range(10):
            for c in fx.ctl:
                fx.seq(c, 1, pad=700)
        ok = fx.delivered(timeout=6)
        fx.srv.disable("posix/io/rw/write/reduce")
        if not ok:
            raise Fail("short writes lost messages")
        if fx.cut_clients():
            raise Fail("short writes cut clients")
        summ = fx.verify()
        return "40 msgs of 700 B through short pipe writes, all delivered in order; %s" % summ


@scenario("posix-read-eio", "preload", "posix/io/rw/read failinfo=EIO")
def _p_read(ctx):
    return delay_only(ctx, "posix-read-eio", "posix/io/rw/read",
                      r"read from children: Input/output error", preload=True, failinfo=EIO)


@scenario("posix-read-short", "preload", "posix/io/rw/read/reduce")
def _p_read_reduce(ctx):
    with Fx(ctx, "posix-read-short", nctl=4) as fx:
        fx.srv.enable("posix/io/rw/read/reduce")
        for _ in range(10):
            for c in fx.ctl:
                fx.seq(c, 1, pad=300)
        ok = fx.delivered(timeout=6)
        fx.srv.disable("posix/io/rw/read/reduce")
        if not ok:
            raise Fail("short reads of the shared pipe lost messages")
        summ = fx.verify()
        return "40 msgs through short reads of the shared pipe (record split), all in order; %s" % summ


@scenario("posix-accept-not-wrapped", "preload", "posix/io/net/accept", fires=False)
def _p_accept(ctx):
    with Fx(ctx, "posix-accept-not-wrapped") as fx:
        fx.srv.enable("posix/io/net/accept", failinfo=errno.EMFILE)
        late = fx.client("late")
        fx.seq(late, 2)
        if not fx.delivered():
            raise Fail("messages lost")
        fx.srv.disable("posix/io/net/accept")
        if fx.srv.log_has(r"accept:", 0.2):
            raise Fail("accept failed: the preload does wrap the server's accept")
        summ = fx.verify()
        return ("no effect, as expected: the server calls accept4(), which the preload does not "
                "wrap (forkchatd/accept/accept covers it); %s" % summ)


@scenario("posix-kill-esrch", "preload", "posix/proc/kill failinfo=ESRCH")
def _p_kill(ctx):
    return delay_only(ctx, "posix-kill-esrch", "posix/proc/kill",
                      r"kill SIGUSR2: No such process", preload=True, failinfo=ESRCH, window=2.5)


@scenario("posix-malloc-onetime", "preload", "libc/mm/malloc (onetime)", quick=True)
def _p_malloc(ctx):
    with Fx(ctx, "posix-malloc-onetime", nctl=4) as fx:
        fx.srv.enable("libc/mm/malloc", onetime=True)
        for c in fx.ctl:
            fx.seq(c, 4, pad=1500)
        time.sleep(1.5)
        fx.srv.disable("libc/mm/malloc")
        cut = fx.cut_clients()
        if len(cut) > 1:
            raise Fail("one failed malloc cut %d clients" % len(cut))
        how = [fx.expect_cut(c, (r"^BYE INTERNAL",), 5) for c in cut]
        surv = [c for c in fx.ctl if c not in cut]
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv], timeout=4):
            raise Fail("messages lost after one failed malloc")
        line = fx.srv.log_has(r"out of memory|reason=error", 1)
        if cut and not line:
            raise Fail("client cut but no log line")
        summ = fx.verify(affected=cut)
        return "outcome: %s; log '%s'; %s" % (
            ("%s cut: %s" % (cut[0].nick, how[0][:40])) if cut else "retried, nothing lost",
            line.split("] ", 1)[-1][:60] if line else "-", summ)


@scenario("posix-malloc-random", "preload", "libc/mm/malloc p=0.5")
def _p_malloc_rand(ctx):
    return burst_prob(ctx, "posix-malloc-random", "libc/mm/malloc", 0.5, preload=True, pad=1500)


@scenario("posix-calloc-add-room", "preload", "libc/mm/calloc")
def _p_calloc(ctx):
    with Fx(ctx, "posix-calloc-add-room") as fx:
        a = fx.ctl[0]
        fx.srv.enable("libc/mm/calloc", failinfo=ENOMEM)
        n = len(a.snapshot())
        a.send("/add r2")
        i = a.wait_line(r"^(ERR|OK)", 5, n)
        fx.srv.disable("libc/mm/calloc")
        got = a.snapshot()[i] if i is not None else None
        if not got or not got.startswith("ERR 500"):
            raise Fail("/add under calloc failure: %r, want ERR 500" % got)
        fx.seq(a, 2)
        if not fx.delivered():
            raise Fail("client lost after ERR 500")
        logged = fx.srv.log_has(OOM_LOG, 1)
        summ = fx.verify()
        if not logged:
            raise Fail("ERR 500 sent (%r) but the failure is not logged; rest ok: %s" % (
                got[:40], summ))
        return "%r; client stays; logged; %s" % (got[:40], summ)


@scenario("posix-open-sighup", "preload", "posix/io/oc/open failinfo=ENOSPC")
def _p_open(ctx):
    with Fx(ctx, "posix-open-sighup") as fx:
        fx.srv.enable("posix/io/oc/open", failinfo=ENOSPC)
        fx.srv.signal(signal.SIGHUP)
        logl = fx.expect_log(r"log reopen: No space left on device")
        fx.srv.disable("posix/io/oc/open")
        for c in fx.ctl:
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("chat stalled after a failed log reopen")
        summ = fx.verify()
        return "'%s'; serving on; %s" % (logl, summ)


@scenario("posix-waitpid-echild", "preload", "posix/proc/waitpid failinfo=ECHILD")
def _p_waitpid(ctx):
    with Fx(ctx, "posix-waitpid-echild") as fx:
        fx.srv.enable("posix/proc/waitpid", failinfo=ECHILD)
        q = fx.client("quitter")
        q.send("/quit")
        fx.expect_cut(q, (r"^BYE QUIT",), 5, need_line=True)
        bit = wait_for(lambda: fx.srv.zombies(), 2.5)
        fx.srv.disable("posix/proc/waitpid")
        if not bit:
            raise Fail("no zombie while waitpid failed")
        if not wait_for(lambda: not fx.srv.zombies(), 3):
            raise Fail("zombie not reaped after disable")
        summ = fx.verify()
        return "zombie while waitpid failed, reaped within a tick after; %s" % summ


@scenario("posix-send-refusal", "preload", "posix/io/net/send failinfo=EPIPE (-m 4)")
def _p_send(ctx):
    with Fx(ctx, "posix-send-refusal", args=["-m", "4"]) as fx:
        fourth = fx.client("fourth")            # the server is full from here on
        fx.srv.enable("posix/io/net/send", failinfo=EPIPE)
        extra = [fx.raw("x%d" % i) for i in range(2)]
        hows = [fx.expect_cut(c, (r"^BYE SERVER_FULL",), 5) for c in extra]
        fx.srv.disable("posix/io/net/send")
        n = wait_for(lambda: fx.srv.log_count(r"refused peer=127\.0\.0\.1:\d+ reason=server-full"
                                              ) >= 2, 3)
        if not n:
            raise Fail("refusals not logged as reason=server-full")
        fx.seq(fourth, 2)
        if not fx.delivered():
            raise Fail("messages lost")
        summ = fx.verify()
        return "server full, 2 more refused: %s (BYE lost to the send failure, clean close), " \
               "logged; %s" % (hows[0], summ)


@scenario("startup-bind", "preload", "posix/io/net/bind failinfo=EADDRINUSE (at start)")
def _p_bind(ctx):
    return startup(ctx, "startup-bind", ["enable name=posix/io/net/bind,failinfo=%d" % EADDRINUSE],
                   r"forkchatd: cannot listen on 127\.0\.0\.1:\d+: Address already in use",
                   preload=True)


@scenario("startup-posix-sigaction", "preload", "posix/proc/sigaction (at start)")
def _p_sigaction(ctx):
    return startup(ctx, "startup-posix-sigaction",
                   ["enable name=posix/proc/sigaction,failinfo=%d" % errno.EINVAL],
                   r"startup: Invalid argument", preload=True)


@scenario("startup-posix-open", "preload", "posix/io/oc/open failinfo=EACCES (at start)")
def _p_st_open(ctx):
    return startup(ctx, "startup-posix-open",
                   ["enable name=posix/io/oc/open,failinfo=%d" % errno.EACCES],
                   r"forkchatd: cannot open log in \S+: Permission denied", preload=True)


# ==== signals =========================================================================

@scenario("sigkill-children-storm", "signal", "SIGKILL 3 of 8 children", quick=True)
def _sigkill_storm(ctx):
    rnd = random.Random(ctx.seed)
    with Fx(ctx, "sigkill-children-storm", preload=False, nctl=8) as fx:
        victims = rnd.sample(fx.ctl, 3)
        vpid = {c.nick: fx.child_of(c) for c in victims}

        def talk(c):
            for _ in range(40):
                if c.eof or fx.seq(c, 1) == 0:
                    return
                time.sleep(0.01)
        th = [threading.Thread(target=talk, args=(c,)) for c in fx.ctl]
        for t in th:
            t.start()
        time.sleep(0.15)
        for c in victims:
            os.kill(vpid[c.nick], signal.SIGKILL)
            time.sleep(0.05)
        for t in th:
            t.join(10)
        for c in victims:
            fx.expect_cut(c, timeout=5)
        surv = [c for c in fx.ctl if c not in victims]
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv], timeout=8):
            raise Fail("survivors lost messages during the kill storm")
        for v in victims:
            lens = {len(seq_received(r).get(v.nick, [])) for r in surv}
            if len(lens) != 1:
                raise Fail("survivors saw different prefixes of killed %s: %s" % (v.nick, lens))
        n = wait_for(lambda: fx.srv.log_count(r"reason=killed-by-signal-9") >= 3 and
                     fx.srv.log_count(r"reason=killed-by-signal-9"), 3)
        if not n:
            raise Fail("kills not logged as reason=killed-by-signal-9")
        summ = fx.verify(affected=victims)
        sent = sum(fx.sent.values())
        return ("%d msgs, 3 children SIGKILLed mid-storm: survivors complete, killed senders "
                "seen as the same prefix by all, %d 'killed-by-signal-9'; %s" % (sent, n, summ))


@scenario("sigstop-child-slow-consumer", "signal", "SIGSTOP child, --max-backlog 65536", quick=True)
def _sigstop_cut(ctx):
    with Fx(ctx, "sigstop-child-slow-consumer", preload=False,
            args=["--max-backlog", "65536"]) as fx:
        v = fx.client("stuck")
        vpid = fx.child_of(v)
        os.kill(vpid, signal.SIGSTOP)
        try:
            a = fx.ctl[0]
            cut = None
            for _ in range(120):
                fx.seq(a, 10, pad=1000)
                time.sleep(0.005)
                cut = fx.srv.log_has(r"nick=stuck reason=slow-consumer", 0)
                if cut:
                    break
            if not fx.delivered(timeout=8):
                raise Fail("others did not keep receiving while a child was stopped")
            cut = cut or fx.srv.log_has(r"nick=stuck reason=slow-consumer", 3)
            if not cut:
                raise Fail("stopped child not cut as slow consumer after %d kB" %
                           (fx.sent[a.nick] * 1.02))
        finally:
            os.kill(vpid, signal.SIGCONT)
        how = fx.expect_cut(v, (r"^BYE SLOW_CONSUMER",), 6, allow_partial=True)
        got = seq_received(v).get(a.nick, [])
        if not contiguous(got):
            raise Fail("stuck client's stream has gaps/dups before the cut")
        if v.partial:
            raise Fail("after SIGCONT the cut client (still reading) got %d whole msgs, then a "
                       "truncated line (%d bytes, no newline) and %s: the pipe held the head "
                       "of a line whose tail was in the discarded backlog" % (
                           len(got), len(v.partial), how[:25]))
        summ = fx.verify()
        return ("others got all %d msgs while the child was stopped; '%s'; after SIGCONT: %s "
                "after %d msgs; %s" % (fx.sent[a.nick], cut.split("] ", 1)[-1][:60], how[:30],
                                       len(got), summ))


@scenario("sigstop-child-brief", "signal", "SIGSTOP child 1.5s, SIGCONT")
def _sigstop_brief(ctx):
    with Fx(ctx, "sigstop-child-brief", preload=False) as fx:
        v = fx.client("napper")
        vpid = fx.child_of(v)
        os.kill(vpid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            fx.seq(fx.ctl[0], 50)
            if not fx.delivered(timeout=1.0):
                raise Fail("others waited for the stopped child")
            dt = time.monotonic() - t0
            time.sleep(1.0)
        finally:
            os.kill(vpid, signal.SIGCONT)
        a = fx.ctl[0].nick
        if not wait_for(lambda: len(seq_received(v).get(a, [])) >= 50, 4):
            raise Fail("resumed child did not deliver the backlog")
        got = seq_received(v).get(a, [])
        if not contiguous(got) or len(got) != 50:
            raise Fail("resumed child delivered %d msgs, gaps/dups" % len(got))
        summ = fx.verify()
        return "others got 50 msgs in %.2fs while it was stopped; after SIGCONT it got all 50 in order; %s" % (dt, summ)


@scenario("sigkill-parent", "signal", "SIGKILL parent", quick=True)
def _sigkill_parent(ctx):
    with Fx(ctx, "sigkill-parent", preload=False, nctl=4) as fx:
        kids = fx.srv.children()
        if len(kids) != 4:
            raise Fail("expected 4 children, found %d" % len(kids))
        fx.srv.signal(signal.SIGKILL)
        fx.srv.proc.wait(5)
        gone = wait_for(lambda: not any(alive(k) for k in kids), 3)
        if not gone:
            raise Fail("children outlived the parent: %s" % [k for k in kids if alive(k)])
        for c in fx.ctl:
            fx.expect_cut(c, timeout=3)
        if listening(fx.port):
            raise Fail("port still listening")
        return "all 4 children exited (PDEATHSIG) and all 4 clients disconnected within 3s"


@scenario("sigterm-during-storm", "signal", "SIGTERM during chat")
def _sigterm(ctx):
    with Fx(ctx, "sigterm-during-storm", preload=False, nctl=5) as fx:
        kids = fx.srv.children()
        stop = threading.Event()

        def talk(c):
            while not stop.is_set() and not c.eof and fx.seq(c, 1):
                time.sleep(0.01)
        th = [threading.Thread(target=talk, args=(c,)) for c in fx.ctl]
        for t in th:
            t.start()
        time.sleep(0.3)
        fx.srv.signal(signal.SIGTERM)
        try:
            rc = fx.srv.proc.wait(8)
        except Exception:
            raise Fail("no exit 8s after SIGTERM")
        finally:
            stop.set()
            for t in th:
                t.join(5)
        byes = [fx.expect_cut(c, (r"^BYE SHUTDOWN",), 3) for c in fx.ctl]
        nb = sum(1 for b in byes if b.startswith("BYE SHUTDOWN"))
        if rc != 0:
            raise Fail("exit code %s after SIGTERM" % rc)
        if any(alive(k) for k in kids):
            raise Fail("children left after shutdown")
        # graceful: every client is told, and the BYE is the last line it gets
        if nb != len(fx.ctl):
            raise Fail("only %d/%d clients got BYE SHUTDOWN: %s" % (nb, len(fx.ctl), byes))
        for c in fx.ctl:
            tail = c.snapshot()[-1:]
            if not tail or not tail[0].startswith("BYE SHUTDOWN") or c.partial:
                raise Fail("%s: BYE SHUTDOWN is not its last line (%r, partial %r)" % (
                    c.nick, c.snapshot()[-2:], c.partial[:40]))
        # what arrived from each sender is a prefix of what it sent: no gap,
        # duplicate or reordering (the tail sent during shutdown may be cut)
        probs = fx.seq_problems(affected=fx.ctl)
        if probs:
            raise Fail("delivery during shutdown: %s" % probs[:2])
        got = sum(len(v) for c in fx.ctl for v in seq_received(c).values())
        if not got:
            raise Fail("nothing was delivered during the storm: the check proved nothing")
        fx.expect_log(r"shutdown complete")
        return ("exit 0, 5/5 clients got BYE SHUTDOWN as their last line, %d deliveries all "
                "gap-free prefixes, children gone, 'shutdown complete'" % got)


@scenario("sigquit-immediate", "signal", "SIGQUIT")
def _sigquit(ctx):
    with Fx(ctx, "sigquit-immediate", preload=False, nctl=3) as fx:
        kids = fx.srv.children()
        fx.srv.signal(signal.SIGQUIT)
        rc = fx.srv.proc.wait(5)
        if any(alive(k) for k in kids):
            raise Fail("children left after SIGQUIT")
        for c in fx.ctl:
            fx.expect_cut(c, timeout=3)
        logl = fx.expect_log(r"immediate shutdown")
        return "exit %d, children killed and reaped, clients disconnected; log '%s'" % (rc, logl)


@scenario("sighup-storm", "signal", "50 x SIGHUP during chat")
def _sighup(ctx):
    with Fx(ctx, "sighup-storm", preload=False, nctl=4) as fx:
        for i in range(50):
            fx.srv.signal(signal.SIGHUP)
            fx.seq(fx.ctl[i % 4], 1)
            time.sleep(0.004)
        if not fx.delivered():
            raise Fail("messages lost during a SIGHUP storm")
        n = fx.srv.log_count(r"log reopened \(SIGHUP\)")
        summ = fx.verify()
        return "50 SIGHUPs (%d reopens, coalesced), nothing lost; %s" % (n, summ)


@scenario("sigstop-parent", "signal", "SIGSTOP parent 2s, SIGCONT")
def _stop_parent(ctx):
    with Fx(ctx, "sigstop-parent", preload=False) as fx:
        kids = fx.srv.children()
        fx.srv.signal(signal.SIGSTOP)
        try:
            for c in fx.ctl:
                fx.seq(c, 5)
            time.sleep(2)
            if any(not alive(k) for k in kids):
                raise Fail("children died while the parent was stopped")
        finally:
            fx.srv.signal(signal.SIGCONT)
        if not fx.delivered(timeout=5):
            raise Fail("messages sent while the parent was stopped were lost")
        summ = fx.verify()
        return "15 msgs queued during a 2s stop, all delivered after SIGCONT; %s" % summ


@scenario("sigstop-parent-flood", "signal", "SIGSTOP parent, 2 MB sent: shared pipe full")
def _stop_parent_flood(ctx):
    with Fx(ctx, "sigstop-parent-flood", preload=False, nctl=4) as fx:
        fx.srv.signal(signal.SIGSTOP)
        try:
            def talk(c):
                for _ in range(50):
                    if fx.seq(c, 10, pad=1000) < 10:
                        return
            th = [threading.Thread(target=talk, args=(c,)) for c in fx.ctl]
            for t in th:
                t.start()
            for t in th:
                t.join(15)
            time.sleep(0.5)
        finally:
            fx.srv.signal(signal.SIGCONT)
        n = sum(fx.sent.values())
        if not fx.delivered(timeout=20):
            raise Fail("messages lost after the shared pipe filled while the parent was stopped")
        if fx.cut_clients():
            raise Fail("clients cut: %s" % [c.nick for c in fx.cut_clients()])
        summ = fx.verify()
        return "%d x 1 kB queued in children while the parent was stopped (> 1 MB shared pipe); all delivered in order after SIGCONT; %s" % (n, summ)


@scenario("stray-sigterm-child", "signal", "SIGTERM (kill) to a child")
def _stray(ctx):
    with Fx(ctx, "stray-sigterm-child", preload=False) as fx:
        v = fx.client("victim")
        os.kill(fx.child_of(v), signal.SIGTERM)
        how = fx.expect_cut(v, timeout=5)
        logl = fx.expect_log(r"disconnect slot=\d+ nick=victim reason=")
        for c in fx.ctl:
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("others lost messages")
        summ = fx.verify()
        return "victim: %s; log '%s'; %s" % (how, logl, summ)


# ==== limits =========================================================================

@scenario("slow-consumer", "limit", "client stops reading, --max-backlog 65536", quick=True)
def _slow(ctx):
    with Fx(ctx, "slow-consumer", preload=False, args=["--max-backlog", "65536"]) as fx:
        v = fx.client("sloth", rcvbuf=4096)
        v.pause()
        a = fx.ctl[0]
        cut = None
        for _ in range(200):
            fx.seq(a, 20, pad=1000)
            cut = fx.srv.log_has(r"nick=sloth reason=slow-consumer", 0)
            if cut:
                break
            time.sleep(0.005)
        if not fx.delivered(timeout=8):
            raise Fail("readers lost messages while one client stopped reading")
        cut = cut or fx.srv.log_has(r"nick=sloth reason=slow-consumer", 3)
        if not cut:
            raise Fail("non-reading client never cut after %d msgs" % fx.sent[a.nick])
        v.resume()
        how = fx.expect_cut(v, (r"^BYE SLOW_CONSUMER",), 8, allow_partial=True)
        got = seq_received(v).get(a.nick, [])
        if not contiguous(got):
            raise Fail("slow client's stream has gaps/dups")
        if v.partial:
            # PROTOCOL.md (SLOW_CONSUMER): a client that stopped reading may
            # get the head of one line cut short, where its socket was full
            # when the cut came; it must be the head of the very next line,
            # never bytes from elsewhere.  (sigstop-child-slow-consumer, whose
            # client kept reading, allows no cut line at all.)
            nxt = (got[-1] + 1) if got else None
            head = v.partial.decode("utf-8", "replace")
            want = "MSG lobby %s seq %s %s " % (a.nick, a.nick, nxt)
            if nxt is None or not (want.startswith(head) or head.startswith(want)):
                raise Fail("slow client's cut line is not the head of message %s: %r" % (
                    nxt, head[:60]))
            how += " after the head of message %d (%d B, no newline)" % (nxt, len(v.partial))
        for c in fx.ctl[1:]:
            if c.wait_line(r"^PART lobby sloth disconnected", 3) is None:
                raise Fail("room not told that sloth left")
        summ = fx.verify()
        return "others got all %d x 1 kB; '%s'; sloth then read %d msgs and %s; %s" % (
            fx.sent[a.nick], cut.split("] ", 1)[-1][:55], len(got), how[:80], summ)


@scenario("fd-exhaustion", "limit", "RLIMIT_NOFILE 40 (no CAP_SYS_RESOURCE), -m 100")
def _fds(ctx):
    wrap = ["setpriv", "--bounding-set=-sys_resource", "--", "prlimit", "--nofile=40:40", "--"]
    with Fx(ctx, "fd-exhaustion", preload=False, args=["-m", "100"], wrap=wrap, nctl=2) as fx:
        warn = re.search(r"warning: RLIMIT_NOFILE is 40[^\n]*", fx.srv.stderr())
        served = refused = 0
        for i in range(45):
            v = fx.raw("f%d" % i)
            j = v.wait_line(r"^(HELLO|BYE)", 4)
            if j is None:
                raise Fail("client f%d neither served nor refused in 4s (hang) with %d served" %
                           (i, served))
            if v.snapshot()[j].startswith("HELLO"):
                served += 1
            else:
                fx.expect_cut(v, (r"^BYE INTERNAL",), 3, need_line=True)
                refused += 1
        if not refused:
            raise Fail("RLIMIT_NOFILE 40 never bit (%d served)" % served)
        logl = fx.expect_log(r"(pipe for|accept:).*Too many open files")
        for c in fx.ctl:
            fx.seq(c, 2)
        if not fx.delivered():
            raise Fail("control clients lost messages at the fd limit")
        summ = fx.verify()
        return "%s; 45 arrivals: %d served, %d refused (BYE INTERNAL), none hung; log '%s'; %s" % (
            "startup warned" if warn else "no startup warning", served, refused, logl, summ)


def nobody_dir(path):
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)      # sticky: forkchatd refuses a log path below o+w without it
    p = path
    while p != p.parent and str(p).startswith("/tmp/"):
        os.chmod(p, os.stat(p).st_mode | 0o711)
        p = p.parent


def unused_uid(lo=61000, hi=61999):
    """A uid with no passwd entry that runs no process: RLIMIT_NPROC counts
    every process of the real uid, so the server must be its only user."""
    import pwd
    used = set()
    for p in os.listdir("/proc"):
        try:
            used.add(os.stat("/proc/" + p).st_uid if p.isdigit() else -1)
        except OSError:
            pass
    for uid in range(lo, hi):
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        if uid not in used:
            return uid
    raise Fail("no unused uid in %d..%d" % (lo, hi))


@scenario("nproc-exhaustion", "limit", "RLIMIT_NPROC 8 as a uid of its own")
def _nproc(ctx):
    """Root ignores RLIMIT_NPROC, so the server runs as an otherwise unused
    uid here (setpriv; not nobody, which other software may run as).
    posix/proc/fork and forkchatd/spawn/fork cover the same path as root."""
    rundir = ctx.rundir / "nproc-exhaustion"
    nobody_dir(rundir)
    uid = unused_uid()
    wrap = ["prlimit", "--nproc=8:8", "--", "setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
            "--clear-groups", "--"]
    with Fx(ctx, "nproc-exhaustion", preload=False, wrap=wrap, nctl=0, start=False) as fx:
        nobody_dir(fx.rundir)
        fx.start()
        served = refused = 0
        for i in range(8):
            v = fx.raw("n%d" % i)
            j = v.wait_line(r"^(HELLO|BYE)", 4)
            if j is None:
                raise Fail("client n%d hung" % i)
            if v.snapshot()[j].startswith("HELLO"):
                v.register()
                served += 1
            else:
                fx.expect_cut(v, (r"^BYE INTERNAL",), 3, need_line=True)
                refused += 1
        if not refused:
            raise Fail("RLIMIT_NPROC never bit (%d served)" % served)
        logl = fx.expect_log(r"fork for .*Resource temporarily unavailable")
        summ = fx.verify()
        return "uid %d; 8 arrivals: %d served, %d refused with BYE INTERNAL; log '%s'; %s" % (
            uid, served, refused, logl, summ)


@scenario("logdir-not-a-dir", "limit", "--log-dir under a regular file (ENOTDIR)")
def _logdir_notdir(ctx):
    d = ctx.rundir / "logdir-not-a-dir"
    d.mkdir(parents=True, exist_ok=True)
    (d / "file").write_text("x")
    srv = Server(d, preload=False, logdir=d / "file" / "logs")
    try:
        rc = srv.run_to_exit(10)
        err = srv.stderr()
        m = re.search(r"forkchatd: cannot (create log directory|open log in|use log directory) \S+: Not a directory", err)
        if rc != 1 or not m:
            raise Fail("exit %s, stderr %r" % (rc, err.strip()[-150:]))
        return "exit 1: %s" % m.group(0)
    finally:
        srv.kill()


@scenario("logdir-unwritable", "limit", "--log-dir mode 0555, server as nobody (EACCES)")
def _logdir_ro(ctx):
    d = ctx.rundir / "logdir-unwritable"
    nobody_dir(d)
    ro = d / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    wrap = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    srv = Server(d, preload=False, logdir=ro, wrap=wrap)
    try:
        rc = srv.run_to_exit(10)
        err = srv.stderr()
        m = re.search(r"forkchatd: cannot open log in \S+: Permission denied", err)
        if rc != 1 or not m:
            raise Fail("exit %s, stderr %r" % (rc, err.strip()[-150:]))
        return "exit 1: %s" % m.group(0)
    finally:
        srv.kill()


@scenario("disk-full-log-startup", "failpoint", "forkchatd/log/write ENOSPC (at start)")
def _diskfull_start(ctx):
    """A log that cannot be written is a startup error: the first line is
    written before detaching (a real full tmpfs: integration/test_files.py)."""
    return startup(ctx, "disk-full-log-startup", ["enable name=forkchatd/log/write"],
                   r"forkchatd: cannot write the log \S+: No space left on device")


@scenario("disk-full-log-runtime", "failpoint", "forkchatd/log/write ENOSPC while serving")
def _diskfull_run(ctx):
    """Every log write fails for a while: chat goes on, lines are lost whole
    and counted, and once writes work one line says how many."""
    with Fx(ctx, "disk-full-log-runtime", preload=False) as fx:
        fx.srv.enable("forkchatd/log/write")
        fx.srv.signal(signal.SIGHUP)
        if not wait_for(lambda: "log reopened" in fx.srv.stderr(), 3):
            raise Fail("with ENOSPC the log line did not reach stderr")
        for c in fx.ctl:
            fx.seq(c, 3)
        if not fx.delivered():
            raise Fail("chat broken with a full disk")
        if fx.srv.log_count(r"log reopened") != 0:
            raise Fail("a line reached the log file while every write failed")
        fx.srv.disable("forkchatd/log/write")
        fx.srv.signal(signal.SIGHUP)
        note = fx.srv.log_has(r"warn log: \d+ lines? lost \(No space left on device\)", 3)
        if not note:
            raise Fail("no 'N lines lost' line once the log could be written again")
        if not fx.srv.log_has(r"log reopened \(SIGHUP\)", 3):
            raise Fail("log file not written again after space came back")
        summ = fx.verify()
        return "ENOSPC on every log write: kept serving; then %r; %s" % (
            note.split(" warn ")[-1], summ)


@scenario("server-full", "limit", "-m 4, 6 arrivals")
def _full(ctx):
    with Fx(ctx, "server-full", preload=False, args=["-m", "4"]) as fx:
        x = fx.client("fourth")
        y = fx.raw("fifth")
        z = fx.raw("sixth")
        for c in (y, z):
            fx.expect_cut(c, (r"^BYE SERVER_FULL",), 5, need_line=True)
        logl = fx.expect_log(r"refused peer=127\.0\.0\.1:\d+ reason=server-full")
        fx.seq(x, 2)
        if not fx.delivered():
            raise Fail("messages lost at the client limit")
        summ = fx.verify()
        return "5th/6th got BYE SERVER_FULL; log '%s'; %s" % (logl, summ)


@scenario("port-in-use", "limit", "second server on the same port")
def _port(ctx):
    with Fx(ctx, "port-in-use-a", preload=False, nctl=1) as fx:
        d = ctx.rundir / "port-in-use-b"
        srv2 = Server(d, preload=False, port=fx.port)
        try:
            rc = srv2.run_to_exit(10)
            err = srv2.stderr()
            if rc != 1 or "cannot listen on" not in err:
                raise Fail("second server: exit %s, %r" % (rc, err.strip()[-120:]))
        finally:
            srv2.kill()
        summ = fx.verify()
        return "exit 1 'cannot listen on ...: Address already in use'; first server unharmed; %s" % summ


@scenario("register-timeout", "limit", "--register-timeout 1, silent client")
def _regto(ctx):
    with Fx(ctx, "register-timeout", preload=False, args=["--register-timeout", "1"]) as fx:
        s = fx.raw("silent")
        how = fx.expect_cut(s, (r"^BYE REGISTER_TIMEOUT",), 4, need_line=True)
        logl = fx.expect_log(r"reason=register-timeout")
        summ = fx.verify()
        return "%r; log '%s'; %s" % (how[:40], logl, summ)
