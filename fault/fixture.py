# SPDX-License-Identifier: BSD-3-Clause
"""fixture - one fault scenario's server, clients and the shared invariants.

    with Fx(ctx, "name", args=[...]) as fx:      # server up, 3 control clients
        fx.seq(fx.ctl[0], 5)                     # sequence-numbered chat
        ... enable a point, drive the path, disable it ...
        return fx.verify(affected=[victim])      # every invariant, or Fail

verify() checks, from outside the server:
  - the parent is alive;
  - control clients that were not affected got every sequence-numbered
    message exactly once and in order (affected ones: no dup, no reorder);
  - after every client has gone: no zombie children, no child left without
    a client (children counted through /proc/*/stat ppid), the parent's fd
    count back to its baseline, RSS near its baseline;
  - a brand-new pair of clients registers, chats and whispers.
"""

import os
import re
import shutil
import time

from fclib import Fail, FiuServer
from harness.client import ChatClient, check_seq, seq_received
from harness.procfs import cpu_ticks, is_listening
from harness.timescale import wait_for

RSS_SLACK_KB = 2048


class Fx:
    def __init__(self, ctx, name, args=(), preload=True, start_cmds=(), wrap=(),
                 env=None, nctl=3, logdir=None, start=True):
        self.ctx = ctx
        self.rundir = ctx.rundir / name
        if self.rundir.exists():
            shutil.rmtree(self.rundir, ignore_errors=True)
        self.rundir.mkdir(parents=True)
        penv = {"FIU_PRNG_SEED": str(ctx.seed)}
        if env:
            penv.update(env)
        self.srv = FiuServer(self.rundir, args=args, preload=preload, start_cmds=start_cmds,
                          wrap=wrap, env=penv, logdir=logdir)
        self.nctl = nctl
        self.do_start = start
        self.clients = []
        self.ctl = []
        self.sent = {}
        self.base_fd = None
        self.base_rss = None
        self.t_start = time.monotonic()

    # ---- lifecycle ---------------------------------------------------------
    def __enter__(self):
        try:
            if self.do_start:
                self.start()
        except BaseException:
            self.close()
            raise
        return self

    def start(self):
        self.srv.start()
        # the baseline once setup() has opened all it keeps: the up pipe
        # before the "limits" line, the bridge's pipes before "bridge
        # pid=" (a fixed sleep raced setup() on a loaded machine: fed rows
        # failed with "parent fds 9, baseline 7 (leak)" at load 77)
        self.srv.log_has(r"\] info limits ", 10)
        if "--redis" in self.srv.args:
            self.srv.log_has(r"federation: bridge pid=\d+", 10)
        wait_for(lambda: self.srv.fds() > 0, 2)
        self.base_fd = self.fds()
        self.ctl = [self.client("c%d" % i) for i in range(self.nctl)]
        if self.ctl:
            for c in self.ctl:
                self.seq(c, 2)
            self.delivered()
        self.base_rss = self.srv.rss()

    def close(self):
        """Stop the server gracefully if it still runs (so a coverage build
        writes its counters for the parent too), SIGKILL after 3 s, then
        SIGKILL whatever is left of it."""
        for c in self.clients:
            c.close()
        self.srv.stop(timeout=3.0)
        self.srv.kill()

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def port(self):
        return self.srv.port

    # ---- clients -----------------------------------------------------------
    def client(self, nick, register=True, **kw):
        kw.setdefault("reading", True)
        c = ChatClient(self.port, nick, hello=False, nodelay=True, **kw)
        self.clients.append(c)
        if register:
            c.register()
        return c

    def raw(self, nick, **kw):
        """Connected, not registered (waits for nothing)."""
        return self.client(nick, register=False, **kw)

    def child_of(self, c, timeout=3.0):
        """The server child serving client c (from the 'connect ... peer=' log line)."""
        port = c.sock.getsockname()[1]
        line = self.srv.log_has(r"connect slot=\d+ pid=\d+ peer=127\.0\.0\.1:%d\b" % port, timeout)
        if not line:
            raise Fail("no connect log line for %s (port %d)" % (c.nick, port))
        return int(re.search(r"pid=(\d+)", line).group(1))

    # ---- sequence-numbered traffic -----------------------------------------
    def seq(self, c, k=1, pad=0):
        """c sends k messages 'seq NICK n [pad]'; returns how many went out."""
        n = self.sent.get(c.nick, 0)
        ok = 0
        for _ in range(k):
            n += 1
            if not c.try_send("seq %s %d%s" % (c.nick, n, (" " + "x" * pad) if pad else "")):
                n -= 1
                break
            ok += 1
        self.sent[c.nick] = n
        return ok

    def delivered(self, receivers=None, senders=None, timeout=5.0):
        """Wait until every receiver has every message of every sender."""
        receivers = self.ctl if receivers is None else receivers
        senders = [s for s in (senders or self.sent) if self.sent.get(s)]

        def done():
            for r in receivers:
                got = seq_received(r)
                for s in senders:
                    if s != r.nick and len(got.get(s, [])) < self.sent[s]:
                        return False
            return True
        return wait_for(done, timeout, 0.02)

    def seq_problems(self, affected=()):
        aff = {c.nick for c in affected}
        complete = [c.nick for c in self.ctl if c.nick not in aff]
        complete += [s for s in self.sent if s not in aff and s not in complete]
        return check_seq(self.ctl, self.sent, complete)

    # ---- expectations --------------------------------------------------------
    def expect_cut(self, c, patterns=(r"^BYE ",), timeout=5.0, need_line=False,
                   allow_partial=False):
        """c must be disconnected within timeout; returns its BYE line or 'EOF'.

        need_line: the disconnect must carry a line matching one of patterns;
        otherwise a clean EOF without a line is accepted too (the brief's
        "clear error line or clean disconnect").  A truncated last line
        (bytes after the last newline) fails unless allow_partial.
        """
        if not c.wait_eof(timeout):
            raise Fail("%s not disconnected within %.0fs (hang); last %r"
                       % (c.nick, timeout, c.snapshot()[-2:]))
        if c.partial and not allow_partial:
            raise Fail("%s got a truncated line before the disconnect (%d bytes, no newline: "
                       "%r...)" % (c.nick, len(c.partial), c.partial[:30]))
        for line in c.snapshot():
            for p in patterns:
                if re.search(p, line):
                    return line
        if need_line:
            raise Fail("%s disconnected without %s; got %r" % (c.nick, patterns, c.snapshot()[-3:]))
        return "EOF without BYE" + (" (reset)" if c.reset else "")

    def expect_log(self, pattern, timeout=3.0, what=None):
        line = self.srv.log_has(pattern, timeout)
        if not line:
            raise Fail("log has no %s (/%s/)" % (what or "line", pattern))
        return line.split("] ", 1)[-1][:90]

    def fired(self, point):
        """Injected failures of point so far, by every process of this
        scenario: the "NAME PID" lines in $FORKCHAT_FAILPOINT_LOG (the
        runner's per-scenario file; 0 without one)."""
        path = os.environ.get("FORKCHAT_FAILPOINT_LOG")
        if not path:
            return 0
        try:
            with open(path) as f:
                return sum(1 for line in f if line.split(" ", 1)[0] == point)
        except OSError:
            return 0

    def expect_fired(self, point, timeout=3.0, above=0):
        """Wait until point has fired more than `above` times; returns the
        count, or raises Fail (the scenario would prove nothing)."""
        if not wait_for(lambda: self.fired(point) > above, timeout, 0.02):
            raise Fail("%s fired %d times, want more than %d: the failure was never injected"
                       % (point, self.fired(point), above))
        return self.fired(point)

    def expect_no_log(self, pattern, why):
        """The log must have no line matching pattern (now: call it after
        the effect was waited for); raises Fail with why otherwise."""
        line = self.srv.log_has(pattern, 0)
        if line:
            raise Fail("%s: %r" % (why, line.split("] ", 1)[-1][:90]))

    def cut_clients(self):
        return [c for c in self.ctl if c.eof]

    def fds(self):
        """The parent's fds, less the name helper's socket while the helper
        lives (core/server/names.c: started by a name, gone 5 s later)."""
        n = self.srv.fds()
        return n - 1 if self.srv.names_helper() else n

    # ---- invariants ------------------------------------------------------------
    def verify(self, affected=(), post=True, rss_slack=RSS_SLACK_KB, keep=()):
        """Check every invariant (module doc); returns a short summary or raises Fail.

        keep: pids of children that outlive the clients (the federation bridge)."""
        srv = self.srv

        def kids():
            return [p for p in srv.children() if p not in keep]
        if not srv.alive():
            raise Fail("parent died (rc=%s): %s" % (srv.proc.poll(), srv.stderr().strip()[-150:]))
        probs = self.seq_problems(affected)
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        nconnected = sum(1 for c in self.clients if not c.eof)
        kids_live = len(kids())
        for c in self.clients:
            c.close()
        if not wait_for(lambda: not kids() and not srv.zombies(), 6):
            raise Fail("children left after all clients closed: %d live, zombies %s"
                       % (len(kids()), srv.zombies()))
        if not wait_for(lambda: self.fds() == self.base_fd, 3):
            raise Fail("parent fds %d, baseline %d (leak)" % (self.fds(), self.base_fd))
        rss = srv.rss()
        if self.base_rss and rss > self.base_rss * 1.5 + rss_slack:
            raise Fail("parent RSS %d kB, baseline %d kB" % (rss, self.base_rss))
        if not srv.alive():
            raise Fail("parent died during cleanup")
        summary = "fds %d=%d, rss %d->%d kB, 0 zombies, kids %d(%d conn)->0" % (
            self.base_fd, self.fds(), self.base_rss or 0, rss, kids_live, nconnected)
        if post:
            self.post_check()
            summary += ", post-fault chat ok"
        return summary

    def post_check(self):
        """A new pair registers, chats and whispers: the server works fully."""
        x = self.client("post_x")
        y = self.client("post_y")
        x.send("after the fault")
        if y.wait_line(r"^MSG lobby post_x after the fault$", 5) is None:
            raise Fail("post-fault message not delivered; got %r" % y.snapshot()[-2:])
        y.send("/whisper post_x ok?")
        if x.wait_line(r"^WHISPER post_y ok\?$", 5) is None:
            raise Fail("post-fault whisper not delivered")
        x.close()
        y.close()

    def no_busy_loop(self, ticks0, t0, limit=0.5):
        """The parent used less than `limit` of one CPU since (ticks0, t0)."""
        hz = os.sysconf("SC_CLK_TCK")
        used = (self.srv_cpu() - ticks0) / hz
        wall = time.monotonic() - t0
        if wall > 0.5 and used > limit * wall:
            raise Fail("parent busy-looped: %.2fs CPU in %.2fs" % (used, wall))
        return used, wall

    def srv_cpu(self):
        return cpu_ticks(self.srv.pid)


def startup_fail(ctx, name, expect_rc, err_rx, **kw):
    """Start a server that must fail at startup: exit code and stderr message."""
    rundir = ctx.rundir / name
    rundir.mkdir(parents=True, exist_ok=True)
    srv = FiuServer(rundir, env={"FIU_PRNG_SEED": str(ctx.seed)}, **kw)
    try:
        rc = srv.run_to_exit(10)
        err = srv.stderr()
        m = re.search(err_rx, err)
        if rc != expect_rc:
            raise Fail("exit %s, want %d; stderr %r" % (rc, expect_rc, err.strip()[-160:]))
        if not m:
            raise Fail("stderr lacks /%s/: %r" % (err_rx, err.strip()[-160:]))
        if is_listening(srv.port):
            raise Fail("port %d still listening after exit" % srv.port)
        return "exit %d, stderr: %s" % (rc, m.group(0).strip()[:100])
    finally:
        srv.kill()
