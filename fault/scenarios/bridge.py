# SPDX-License-Identifier: BSD-3-Clause
"""bridge - the federation bridge's I/O failing on one hub.
"""

import errno
import re

from fclib import Fail, Skip
from harness.procfs import alive
from harness.server import Redis
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import EPIPE, scenario


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
