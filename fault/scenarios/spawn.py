# SPDX-License-Identifier: BSD-3-Clause
"""spawn - accepting and starting a session: accept(), the spawn's pipe,
fork and fcntl failing in the parent.
"""

import time

from fclib import Fail
from fixture import Fx
from scenarios.common import scenario, spawn_refused


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
        # 10 clients, then more (at most 30) until both outcomes were seen:
        # at p=0.5 some seed gives 10 of one kind (the point never fired)
        for i in range(30):
            if i >= 10 and served and refused:
                break
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
        return "%d clients: %d served, %d refused with BYE INTERNAL, %d logged; %s" % (
            served + refused, served, refused, n, summ)


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
