# SPDX-License-Identifier: BSD-3-Clause
"""fanout - the parent's message path: fan-out append/write/kill, reading the
shared pipe, aborting a child, reaping, buffer and chat-state allocation.
"""

import time

from fclib import Fail
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import (OOM_LOG, burst_prob, delay_only, lost_eof_signal, one_cut,
                              scenario, zombies_kept)


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


@scenario("fanout-kill-esrch", "failpoint", "forkchatd/fanout/kill (EOF signal)", quick=True)
def _kill(ctx):
    """The SIGUSR1 that tells a closing child its pipe is at EOF is lost
    (deliveries need no kill: the pipe write raises SIGUSR2 itself): the
    client still gets its last lines and the close, on the child's tick;
    the child is reaped; ESRCH (the child gone) is no error line."""
    return lost_eof_signal(ctx, "fanout-kill-esrch", "forkchatd/fanout/kill", preload=False)


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
        n = fx.expect_fired("forkchatd/abort/sigqueue")
        logl = fx.expect_log(r"disconnect slot=\d+ nick=%s reason=error" % cut[0].nick)
        # ESRCH is what a child already gone answers: expected, not an error
        fx.expect_no_log(r"\] error .*sigqueue", "ESRCH logged as an error")
        fx.srv.disable("forkchatd/abort/sigqueue")
        fx.srv.disable("forkchatd/fanout/write")
        surv = [c for c in fx.ctl if c not in cut]
        for c in surv:
            fx.seq(c, 2)
        if not fx.delivered(receivers=surv, senders=[c.nick for c in surv]):
            raise Fail("survivors lost messages")
        summ = fx.verify(affected=cut)
        return "sigqueue fired %d; %s cut without the signal (pipe EOF): %s; log '%s', " \
            "no error line for it; %s" % (n, cut[0].nick, how, logl, summ)


@scenario("reap-waitpid-echild", "failpoint", "forkchatd/reap/waitpid")
def _reap(ctx):
    with Fx(ctx, "reap-waitpid-echild", preload=False) as fx:
        q = [fx.client("quit%d" % i) for i in range(2)]
        pids = [fx.child_of(c) for c in q]
        fx.srv.enable("forkchatd/reap/waitpid")
        for c in q:
            c.send("/quit bye")
        for c in q:
            fx.expect_cut(c, (r"^BYE QUIT",), 5, need_line=True)
        zombies_kept(fx, "forkchatd/reap/waitpid", pids)
        zs = len(fx.srv.zombies())
        newc = fx.client("during")
        fx.seq(newc, 2)
        if not fx.delivered():
            raise Fail("chat stalled while waitpid failed")
        fx.srv.disable("forkchatd/reap/waitpid")
        if not wait_for(lambda: not fx.srv.zombies(), 5):
            raise Fail("zombies not reaped 5s after disable: %s" % fx.srv.zombies())
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
