# SPDX-License-Identifier: BSD-3-Clause
"""common - what the scenarios share: the @scenario registry, errno names,
helpers for spawn refusals, cut clients, delays, startup failures and bursts.
"""

import errno
import os
import signal
import time

from fclib import Fail
from harness.procfs import alive
from harness.timescale import wait_for
from fixture import Fx, startup_fail


SCENARIOS = []

MAX_BURSTS = 10    # burst_prob: bursts until a random point fired once

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

def spawn_refused(ctx, name, point, log_rx, preload=False, failinfo=None, new_spawner=False):
    """A new client while `point` fails: BYE INTERNAL; the others chat on.

    new_spawner: the session children come from the spawner's clone(), so
    libc's fork() runs only to start a new spawner: kill the spawner first
    (the parent then forks one at the next connection, which fails)."""
    with Fx(ctx, name, preload=preload) as fx:
        fx.srv.enable(point, failinfo=failinfo)
        if new_spawner:
            sp = fx.srv.spawner()
            if sp is None:
                raise Fail("no spawner process (forkchatd-spawn)")
            os.kill(sp, signal.SIGKILL)
            fx.expect_log(r"spawner pid=%d killed by signal 9" % sp)
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
               max_delay=10.0, target=None):
    """A lost wake-up or failed read: messages are late, never lost or doubled."""
    with Fx(ctx, name, preload=preload) as fx:
        pid = fx.child_of(target(fx)) if target else None
        fx.srv.enable(point, pid=pid, failinfo=failinfo)
        t0 = time.monotonic()
        for c in fx.ctl:
            fx.seq(c, 5)
        during = fx.delivered(timeout=window)
        t_during = time.monotonic() - t0
        # off only once it failed at least once (a loaded machine may not
        # have reached it within the window): bounded, else Fail
        fx.expect_fired(point, 5)
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
        # How often the point is reached depends on batching, i.e. on the
        # machine's load (one write per child per turn): a fixed burst at
        # p=0.04 could end without a single failure ("never fired").  So
        # burst again until it fired, at most MAX_BURSTS times.
        bursts = 0
        while bursts < MAX_BURSTS and not all(c.eof for c in fx.ctl):
            bursts += 1
            for _ in range(per):
                for c in fx.ctl:
                    if not c.eof:
                        fx.seq(c, 1, pad=pad)
                time.sleep(0.005)
            if wait_for(lambda: fx.fired(point) > 0, 0.5):
                break
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
        return "p=%g, %d burst(s), fired %d: %d/%d cut (%d with BYE), %d error/warn lines " \
            "logged; survivors complete; %s" % (prob, bursts, fx.fired(point), len(cut), nctl,
                                                nbye, nerr, summ)


def lost_eof_signal(ctx, name, point, preload, failinfo=None):
    """point fails the SIGUSR1 that tells a closing child its pipe is at
    EOF (with ESRCH: what a child already gone answers).  A quitter still
    gets BYE and the close, its child ends (on its tick) and is reaped, the
    others chat on, and the log has no error line for the lost signal."""
    with Fx(ctx, name, preload=preload) as fx:
        q = fx.client("quitter")
        qpid = fx.child_of(q)
        before = fx.fired(point)
        fx.srv.enable(point, failinfo=failinfo)
        t0 = time.monotonic()
        q.send("/quit bye")
        bye = fx.expect_cut(q, (r"^BYE QUIT",), 5, need_line=True)
        dt = time.monotonic() - t0
        n = fx.expect_fired(point, above=before)
        logl = fx.expect_log(r"disconnect slot=\d+ nick=quitter reason=quit")
        if not wait_for(lambda: not alive(qpid), 10):   # its tick: 2 s; a hang bound
            raise Fail("quitter's child %d still running after the lost EOF signal" % qpid)
        for c in fx.ctl:
            fx.seq(c, 3)
        if not fx.delivered():
            raise Fail("control clients lost messages while the EOF signal failed")
        fx.srv.disable(point)
        # ESRCH is what a child already gone answers: expected, not an error
        fx.expect_no_log(r"\] error .*kill SIGUSR1", "ESRCH logged as an error")
        summ = fx.verify()
        return "%s fired %d; quitter got %r and the close %.1fs after /quit; log '%s'; " \
            "no error line; %s" % (point, n - before, bye[:40], dt, logl, summ)


def zombies_kept(fx, point, pids, timeout=5.0):
    """pids (session children that were told to end) must be zombies that
    a failed waitpid() left unreaped: each one a zombie, then `point`
    failing one more waitpid after that, and all still zombies.  Seeing a
    zombie proves nothing by itself: a child is one from its exit until the
    parent handles SIGCHLD, which on a loaded machine takes a while (the
    old check saw that one, switched the point off, and the point never
    fired).  The parent also calls waitpid() on its 1 s tick, so the point
    fires within a tick whatever the children do.  Returns the count."""
    if not wait_for(lambda: set(pids) <= set(fx.srv.zombies()), timeout):
        raise Fail("children %s not all zombies while %s failed (zombies %s)"
                   % (sorted(pids), point, fx.srv.zombies()))
    n = fx.expect_fired(point, timeout, above=fx.fired(point))
    if not set(pids) <= set(fx.srv.zombies()):
        raise Fail("%s fired but children %s were reaped anyway (zombies %s)"
                   % (point, sorted(pids), fx.srv.zombies()))
    return n
