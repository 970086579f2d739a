# SPDX-License-Identifier: BSD-3-Clause
"""limits - limits: slow consumers, fd and process exhaustion, log dirs
that cannot be written, a full disk, a full server, a taken port, the
registration timeout.
"""

import os
import re
import signal
import time

from fclib import Fail
from fclib import FiuServer as Server
from harness.client import seq_received
from harness.timescale import wait_for
from fixture import Fx
from scenarios.common import contiguous, scenario, startup


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


@scenario("nproc-exhaustion", "limit", "RLIMIT_NPROC 9 as a uid of its own")
def _nproc(ctx):
    """Root ignores RLIMIT_NPROC, so the server runs as an otherwise unused
    uid here (setpriv; not nobody, which other software may run as).
    posix/proc/fork and forkchatd/spawn/fork cover the same path as root.
    The limit is 9, not 8: the name helper (core/server/names.c, started by
    the first registration and gone 5 s after the last) is one more process
    of the server's uid, and the post-fault pair needs two sessions and the
    helper at once (with 8 the pair's second session was refused)."""
    rundir = ctx.rundir / "nproc-exhaustion"
    nobody_dir(rundir)
    uid = unused_uid()
    wrap = ["prlimit", "--nproc=9:9", "--", "setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
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
