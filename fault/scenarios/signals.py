# SPDX-License-Identifier: BSD-3-Clause
"""signals - signals to children and the parent: SIGKILL, SIGSTOP,
SIGTERM, SIGQUIT, SIGHUP storms, a stray SIGTERM.
"""

import os
import random
import signal
import threading
import time

from fclib import Fail
from harness.client import seq_received
from harness.procfs import alive
from harness.procfs import is_listening as listening
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import contiguous, scenario


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
