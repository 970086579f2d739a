# SPDX-License-Identifier: BSD-3-Clause
"""startup - the log reopen and the in-code points at startup
(sigaction, log open, chat state).
"""

import signal

from fclib import Fail
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import scenario, startup


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
