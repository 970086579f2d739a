# SPDX-License-Identifier: BSD-3-Clause
"""server - start, inspect and stop a real forkchatd (and a redis-server).

Server(workdir, args): `forkchatd -f -p PORT -l WORKDIR/logs ARGS` on a free
127.0.0.1 port (foreground=False: daemon mode with --pid-file, the PID read
from the pid file once the launcher exits).  start() waits until the port
listens; stop() signals the server by PID, waits (bounded, scaled), falls
back to SIGKILL and kills any child that outlived it, so a test leaves no
process behind even when it fails.  Every PID started is in STARTED, for a
last-resort kill at the end of a run.  fault/fclib.py's FiuServer runs the
same under libfiu (a launcher prefix and remote control).
"""

import os
import re
from signal import SIGTERM
import subprocess
import time
from pathlib import Path

from harness import Fail, procfs, timescale
from harness.timescale import scaled, wait_for, wait_until

ROOT = Path(timescale.ROOT)
# FORKCHATD / FORKCHAT override the binaries (e.g. a sanitizer build).
SERVER = Path(os.environ.get("FORKCHATD", ROOT / "build" / "forkchatd"))
CLIENT = Path(os.environ.get("FORKCHAT", ROOT / "build" / "forkchat"))

STARTED = set()         # every PID the harness started


def today_log_names():
    """Log file names for today (and the neighbouring days, midnight-safe)."""
    now = time.time()
    return [time.strftime("forkchatd_%Y%m%d.log", time.localtime(now + d))
            for d in (0, -86400, 86400)]


class Server:
    """A forkchatd started by the harness.

    port: a fixed port (no retry on "in use"); else a free one, retried.
    wrap: an argv prefix that execs the rest (prlimit, setpriv), so the
    PID we get is still the server's.  env: added to our environment (None
    removes a name).
    new_session: start it in a session of its own (not in our process
    group).  binary: default SERVER.
    """

    def __init__(self, workdir, args=(), foreground=True, port=None, logdir=None,
                 env=None, wrap=(), new_session=False, binary=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logdir = Path(logdir) if logdir else self.workdir / "logs"
        self.pidfile = self.workdir / "forkchatd.pid"
        self.stderr_path = self.workdir / "stderr.txt"
        self.args = [str(a) for a in args]
        self.foreground = foreground
        self.port = port
        self.fixed_port = port
        self.env = env
        self.wrap = [str(a) for a in wrap]
        self.new_session = new_session
        self._binary = binary
        self.proc = None
        self.pid = None
        self.seen_children = {}     # every child ever observed {pid: starttime}
        self.launcher_rc = None
        self.stopped = False
        self.needed_sigkill = False
        self.returncode = None

    # ---- starting ---------------------------------------------------------
    @property
    def binary(self):
        return Path(self._binary or SERVER)

    def prefix(self):
        """What runs before the server binary (wrap, a launcher)."""
        return list(self.wrap)

    def argv(self, port):
        cmd = [str(self.binary)] + (["-f"] if self.foreground else []) + \
            ["-p", str(port), "-l", str(self.logdir)]
        if not self.foreground:
            cmd += ["--pid-file", str(self.pidfile)]
        return self.prefix() + cmd + self.args

    def environ(self):
        """Our environment updated by env (a None value removes the name)."""
        env = dict(os.environ)
        env.update(self.env or {})
        return {k: v for k, v in env.items() if v is not None}

    def launch(self, port=None):
        """Start without waiting; returns the Popen."""
        self.port = port or self.port or procfs.free_port()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, cwd=str(self.workdir),
                                         env=self.environ(),
                                         start_new_session=self.new_session)
        STARTED.add(self.proc.pid)
        if self.foreground:
            self.pid = self.proc.pid
        return self.proc

    def start(self, attempts=5, timeout=10.0):
        """Launch and wait until the server listens (retried on another
        port if this one was taken meanwhile); returns self."""
        assert self.binary.exists(), "%s is missing: run `make` first" % self.binary
        for _ in range(attempts):
            self.launch(self.fixed_port or procfs.free_port())
            if self._wait_ready(timeout):
                return self
            if self.fixed_port or "in use" not in self.stderr().lower():
                break
        raise Fail("forkchatd did not start: %s" % self.stderr().strip()[-300:])

    def _wait_ready(self, timeout):
        proc, port = self.proc, self.port
        if not self.foreground:
            try:
                self.launcher_rc = proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise Fail("daemon launcher did not exit within %.0fs" % scaled(timeout))
            if self.launcher_rc != 0:
                return False
            text = wait_until(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(),
                              timeout, what="pid file")
            self.pid = int(text)
            STARTED.add(self.pid)
            wait_until(lambda: procfs.is_listening(port), timeout, what="daemon listening")
            self.settle(timeout)
            return True
        wait_for(lambda: procfs.is_listening(port) or proc.poll() is not None, timeout, 0.01)
        if proc.poll() is not None:
            return False
        if not procfs.is_listening(port):
            self.kill()
            raise Fail("forkchatd not listening on %d after %.0fs" % (port, scaled(timeout)))
        self.settle(timeout)
        return self.ready()

    def settle(self, timeout=10.0):
        """The port listens before start-up is over: the parent opens its
        log after listen(), then makes its pipes, forks the spawner and logs
        its limits (then starts the bridge, if federated).  Wait for those
        lines, so that a test's baseline (fds, children) is the steady
        state.  Not on the log file alone: the port can listen before the
        file exists (a baseline taken then missed the log, the pipes and
        the spawner's socket: test_parent_fds_do_not_grow... failed under
        load).  A foreground server copies every line to stderr, so they
        show even when its file cannot be written; a daemon's launcher
        exits only after "listening on" is logged, so a daemon without
        that line has no working log and is taken as settled."""
        if not self.foreground and "listening on" not in self.log():
            return
        marks = [" info limits "]
        if any(a.startswith("--redis") for a in self.args):
            marks.append(" info federation: bridge pid=")

        def settled():
            text = self.log() + (self.stderr() if self.foreground else "")
            return all(m in text for m in marks) or not self.alive()
        wait_for(settled, timeout, 0.01)

    def ready(self):
        """After the port listens (FiuServer: its control FIFO exists)."""
        return True

    def run_to_exit(self, timeout=10.0):
        """For startup failures: launch and return the exit code."""
        self.launch()
        try:
            self.returncode = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise Fail("server did not exit within %.0fs" % scaled(timeout))
        return self.returncode

    # ---- inspection ---------------------------------------------------------
    def alive(self):
        if self.proc is not None and self.foreground and self.proc.poll() is not None:
            return False
        return self.pid is not None and not procfs.is_gone(self.pid)

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    # the process that forks the sessions (core/server/spawner.c)
    SPAWNER = "forkchatd-spawn"
    # the name helper, started on demand, gone when idle (core/server/names.c)
    NAMES = "forkchatd-names"

    def children(self):
        """{pid: starttime} of its live session children and other helpers
        (the federation bridge), not the spawner or the name helper; all
        are remembered for stop()."""
        kids = procfs.children(self.pid)
        self.seen_children.update(kids)
        return {p: s for p, s in kids.items()
                if procfs.comm(p) not in (self.SPAWNER, self.NAMES)}

    def spawner(self):
        """Pid of its live spawner process, or None."""
        for p in procfs.children(self.pid):
            if procfs.comm(p) == self.SPAWNER:
                return p
        return None

    def names_helper(self):
        """Pid of its live name helper, or None."""
        for p in procfs.children(self.pid):
            if procfs.comm(p) == self.NAMES:
                return p
        return None

    def zombies(self):
        return procfs.zombies(self.pid)

    def fds(self):
        return procfs.fd_count(self.pid)

    def rss(self):
        return procfs.rss_kb(self.pid)

    def log_files(self):
        """Its log files (regular files only: never read a link to /dev/full)."""
        return [str(p) for p in sorted(self.logdir.glob("forkchatd_*.log")) if p.is_file()]

    def log(self):
        """All log text written so far (every forkchatd_*.log in the log dir)."""
        text = ""
        try:
            for p in self.log_files():
                with open(p, errors="replace") as f:
                    text += f.read()
        except OSError:
            pass
        return text

    def wait_log(self, pattern, timeout=5.0):
        """Wait until the log matches the regex pattern; return the match
        (AssertionError with the log's tail on timeout)."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log()), timeout,
                          what="log line %r (log tail: %r)" % (pattern, self.log()[-600:]))

    def log_has(self, pattern, timeout=3.0):
        """The first log line matching the regex, waiting up to timeout; or None."""
        rx = re.compile(pattern)

        def find():
            for line in self.log().splitlines():
                if rx.search(line):
                    return line
            return None
        return wait_for(find, timeout, 0.05)

    def log_count(self, pattern):
        rx = re.compile(pattern)
        return sum(1 for line in self.log().splitlines() if rx.search(line))

    def child_for(self, client):
        """PID of the server child serving the ChatClient client."""
        inode = wait_until(lambda: procfs.socket_inode(self.port, client.local_port), 2.0,
                           what="server socket for client port %d" % client.local_port)
        kids = self.children()
        found = procfs.pids_holding_inode(kids, inode)
        assert len(found) == 1, "child for port %d: %r (children %r)" % (
            client.local_port, found, kids)
        return found[0]

    def signal(self, sig):
        """Signal the server by PID; False if it is gone."""
        return procfs.kill_pid(self.pid, sig)

    # ---- teardown ---------------------------------------------------------------
    def _reap(self, timeout):
        """Wait for the server PID to end; True if it did."""
        if self.proc is not None and self.foreground:
            try:
                self.returncode = self.proc.wait(scaled(timeout))
                return True
            except subprocess.TimeoutExpired:
                return False
        return not procfs.wait_gone({self.pid: None}, timeout)

    def stop(self, sig=SIGTERM, timeout=8.0):
        """Signal the server, wait (bounded), SIGKILL if needed.

        Returns the children that survived it (should be empty; they are
        SIGKILLed).  Children are recorded before the signal, since they
        get reparented afterwards.
        """
        if self.stopped or self.pid is None:
            return {}
        self.stopped = True
        self.children()           # the spawner too: seen_children has all
        kids = dict(self.seen_children)
        if not procfs.is_gone(self.pid):
            procfs.kill_pid(self.pid, sig)
        if not self._reap(timeout):
            self.needed_sigkill = True
            procfs.kill_pid(self.pid)
            self._reap(5.0)
        leftover = procfs.wait_gone(kids, 5.0)
        # anything still parented to the (dead or zombie) server pid
        for pid, start in procfs.children(self.pid).items():
            if not procfs.is_gone(pid, start):
                leftover[pid] = start
        for pid in leftover:      # clean up so one failure does not poison others
            procfs.kill_pid(pid)
        return leftover

    def kill(self):
        """SIGKILL the server and every child it has; reap our Popen."""
        if self.pid is None:
            return
        kids = set(self.seen_children)
        if not procfs.is_gone(self.pid):
            kids.update(procfs.children(self.pid, True))
        procfs.kill_pid(self.pid)
        for k in kids:
            procfs.kill_pid(k)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        # children die by PDEATHSIG; make sure of the ones we saw
        for k in kids:
            if procfs.alive(k):
                procfs.kill_pid(k)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


class Redis:
    """A redis-server on 127.0.0.1 (no persistence), stopped by PID; on
    port (else a free one), the same port again after stop() and start()."""

    def __init__(self, workdir, port=None):
        self.workdir = str(workdir)
        self.port = port
        self.proc = None
        self.logf = None

    def start(self, port=None, timeout=10.0):
        self.port = port or self.port or procfs.free_port()
        self.logf = open(os.path.join(self.workdir, "redis-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=self.logf, stderr=self.logf, stdin=subprocess.DEVNULL,
            cwd=self.workdir, start_new_session=True)
        STARTED.add(self.proc.pid)
        if not wait_for(self.ping, timeout, 0.05):
            self.stop()
            raise Fail("redis-server on port %d did not answer PING" % self.port)
        return self

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                              capture_output=True, text=True).stdout.strip()

    def ping(self):
        return self.cli("PING") == "PONG"

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                procfs.kill_pid(self.proc.pid)
            self.proc.wait(10)
        self.proc = None
        if self.logf is not None:
            self.logf.close()
            self.logf = None
