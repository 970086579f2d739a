# SPDX-License-Identifier: BSD-3-Clause
"""fclib - what the fault matrix adds to the harness (integration/lib/harness).

FiuServer: a harness Server for build/fault/forkchatd, launched in fiu-run's
environment (sigblock.py: per-run FIFO prefix, every signal blocked), with
libfiu's remote control spoken directly (fiu_ctrl: the fiu-ctrl protocol).
Processes, clients, deadlines: harness.procfs, harness.client,
harness.timescale.  Fail (harness.Fail) is an invariant that did not hold;
Skip a scenario that could not run.
"""

import atexit
import errno
import os
import select
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration" / "lib"))

from harness import Fail                    # noqa: E402,F401 (the fault scripts' Fail)
from harness import timescale               # noqa: E402
from harness.server import ROOT, Server     # noqa: E402
from harness.timescale import scaled, wait_for    # noqa: E402

SERVER_BIN = Path(os.environ.get("FAULT_FORKCHATD", ROOT / "build" / "fault" / "forkchatd"))
SIGBLOCK = Path(__file__).resolve().parent / "sigblock.py"


# fault/fiu_count.c (make fault-build): counts the preload's failures
# (posix/*, libc/*) into $FORKCHAT_FAILPOINT_LOG, as core/sys/failpoint.h does
# for the in-code points (runner.py's fired column); runner.py --count-lib
COUNT_LIB = Path(os.environ.get("FAULT_FIU_COUNT", ROOT / "build" / "fault" / "fiu_count.so"))


def fiu_count_lib():
    return COUNT_LIB


def use_server(path=None):
    """The fault build under test (--server), and its time scale."""
    global SERVER_BIN
    if path:
        SERVER_BIN = Path(path).resolve()
    timescale.use(SERVER_BIN)


class Skip(Exception):
    """The scenario could not run (a tool is missing); the runner counts it
    as skipped, which fails the run unless ci/skips.allow lists it."""


# ---- libfiu remote control -----------------------------------------------------
def fiu_ctrl(prefix, pid, cmd, timeout=3.0):
    """Send one remote-control command (fiu-ctrl's protocol) to pid.

    cmd is what fiu-ctrl -c takes, e.g. 'enable name=forkchatd/spawn/fork' or
    'enable name=posix/io/rw/write,failinfo=5,onetime'.  Raises Fail unless
    the process answers 0.  (fiu-ctrl itself exits 0 for an unknown pid.)
    """
    fin, fout = "%s-%d.in" % (prefix, pid), "%s-%d.out" % (prefix, pid)
    end = time.monotonic() + scaled(timeout)
    if not os.path.exists(fin):
        raise Fail("no fiu control fifo for pid %d (%s)" % (pid, fin))
    # Hold the reply fifo open read-write first: no EOF race, no blocking.
    rfd = os.open(fout, os.O_RDWR | os.O_NONBLOCK)
    try:
        while True:
            try:
                wfd = os.open(fin, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO or time.monotonic() > end:
                    raise Fail("fiu control fifo of %d not served: %s" % (pid, e))
                time.sleep(0.01)
        try:
            os.write(wfd, (cmd + "\n").encode())
        finally:
            os.close(wfd)
        reply = b""
        while not reply.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("no fiu reply from %d to %r" % (pid, cmd))
            r, _, _ = select.select([rfd], [], [], left)
            if r:
                try:
                    reply += os.read(rfd, 64)
                except BlockingIOError:
                    pass
    finally:
        os.close(rfd)
    if reply.strip() != b"0":
        raise Fail("fiu %r -> %r from pid %d" % (cmd, reply.strip(), pid))


# ---- the server --------------------------------------------------------------------
_PUBLIC = []


def public_copy(path):
    """A copy of path that an unprivileged uid can read and run: a CI clone
    may sit under a 0700 directory.  Removed at exit."""
    if not _PUBLIC:
        d = tempfile.mkdtemp(prefix="forkchat-fault-public-", dir="/tmp")
        os.chmod(d, 0o755)
        atexit.register(shutil.rmtree, d, True)
        _PUBLIC.append(Path(d))
    dst = _PUBLIC[0] / Path(path).name
    if not dst.exists() or dst.stat().st_mtime < Path(path).stat().st_mtime:
        shutil.copy2(str(path), str(dst))
        os.chmod(dst, 0o755)
    return dst


class FiuServer(Server):
    """build/fault/forkchatd under fiu-run, foreground, on a free port.

    preload=True adds -x (fiu_posix_preload.so); without it fiu_run_preload
    still provides the control FIFO for the in-code points.  start_cmds:
    fiu-run -c commands.  The rest is harness.server.Server's.
    """

    def __init__(self, rundir, args=(), preload=True, start_cmds=(), wrap=(),
                 env=None, logdir=None, port=None):
        Server.__init__(self, rundir, args=args, port=port, logdir=logdir,
                        env=dict(env or {}, LD_PRELOAD=None), wrap=wrap, new_session=True)
        self.prefix_path = str(self.workdir / "fiu-ctrl")
        self.preload = preload
        self.start_cmds = list(start_cmds)

    @property
    def binary(self):
        if "setpriv" in self.wrap:      # runs as nobody: the checkout may be 0700
            image = Path(SERVER_BIN).parent / "forkchatd-session"
            if image.exists():          # the spawner's image, found beside the server
                public_copy(image)
            return public_copy(SERVER_BIN)
        return SERVER_BIN

    def prefix(self):
        """wrap + fiu-run's environment (sigblock.py, see there)."""
        sigblock = public_copy(SIGBLOCK) if "setpriv" in self.wrap else SIGBLOCK
        fr = ["/usr/bin/python3", str(sigblock)] + (
            ["-x", "-p", str(fiu_count_lib())] if self.preload else []) + ["-f", self.prefix_path]
        for c in self.start_cmds:
            fr += ["-c", c]
        return self.wrap + fr + ["--"]

    def ready(self):
        # the control fifo appears in the preload constructor
        wait_for(lambda: os.path.exists("%s-%d.in" % (self.prefix_path, self.pid)), 3)
        return True

    # ---- control -----------------------------------------------------------
    def fiu(self, cmd, pid=None):
        fiu_ctrl(self.prefix_path, pid or self.pid, cmd)

    def enable(self, name, pid=None, prob=None, failinfo=None, onetime=False):
        parts = ["name=" + name]
        if failinfo is not None:
            parts.append("failinfo=%d" % failinfo)
        if prob is not None:
            parts.append("probability=%g" % prob)
        if onetime:
            parts.append("onetime")
        self.fiu(("enable_random " if prob is not None else "enable ") + ",".join(parts), pid)

    def disable(self, name, pid=None):
        self.fiu("disable name=" + name, pid)
