# SPDX-License-Identifier: BSD-3-Clause
"""session - the session child's own points (read, write, send, kill),
enabled through the child's control FIFO.
"""


from fclib import Fail
from harness.procfs import alive
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import scenario


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
