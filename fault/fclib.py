# SPDX-License-Identifier: BSD-3-Clause
"""fclib - helpers for the forkchat fault-injection matrix.

Starts build/fault/forkchatd under fiu-run (per-run FIFO prefix dir), talks to
libfiu's remote-control FIFOs directly (the fiu-ctrl protocol), drives raw
protocol clients, and inspects the server from outside through /proc only.

Rules kept here: only 127.0.0.1; we only ever signal PIDs we started or
children of a server we started (found through /proc/*/stat ppid); every
server is killed by PID in a finally block (Server.__exit__).
"""

import atexit
import errno
import os
import re
import select
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_BIN = Path(os.environ.get("FAULT_FORKCHATD", ROOT / "build" / "fault" / "forkchatd"))
SIGBLOCK = Path(__file__).resolve().parent / "sigblock.py"
HOST = "127.0.0.1"

STARTED = set()          # every pid we launched; killed at exit if still alive

# Every deadline below is multiplied by SCALE, so a slow build (ASan, gcov)
# never turns a wait into a verdict.  runner.py sets it from the server
# binary (integration/timescale.py: FORKCHAT_TIME_SCALE, else the binary).
SCALE = 1.0


# fault/fiu_count.c (make fault-build): counts the preload's failures
# (posix/*, libc/*) into $FORKCHAT_FAILPOINT_LOG, as core/sys/failpoint.h does
# for the in-code points (runner.py's fired column); runner.py --count-lib
COUNT_LIB = Path(os.environ.get("FAULT_FIU_COUNT", ROOT / "build" / "fault" / "fiu_count.so"))


def fiu_count_lib():
    return COUNT_LIB


def scaled(seconds):
    return seconds * SCALE


class Fail(AssertionError):
    """An invariant did not hold; the message is the one-line evidence."""


class Skip(Exception):
    """The scenario could not run (a tool is missing); the runner counts it
    as skipped, which fails the run unless ci/skips.allow lists it."""


# ---- /proc -------------------------------------------------------------------
def proc_stat(pid):
    """(state, ppid, starttime, utime+stime ticks) or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12])


def children(ppid, zombies=False):
    """{pid: state} of the processes whose ppid is ppid (scan of /proc/*/stat)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == ppid and (zombies or st[0] != "Z"):
            out[int(name)] = st[0]
    return out


def zombies(ppid):
    return sorted(p for p, s in children(ppid, True).items() if s == "Z")


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_ticks(pid):
    st = proc_stat(pid)
    return st[3] if st else 0


def listening(port):
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[1] == want and p[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout, interval=0.02):
    """Poll cond() until truthy; return its last value (falsy on timeout).
    timeout is scaled (SCALE)."""
    end = time.monotonic() + scaled(timeout)
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


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


class Server:
    """build/fault/forkchatd under fiu-run, foreground, on a free port.

    preload=True adds -x (fiu_posix_preload.so); without it fiu_run_preload
    still provides the control FIFO for the in-code points.
    wrap: argv prefix that execs the rest (prlimit, setpriv), so the pid
    we get is still the server's.
    """

    def __init__(self, rundir, args=(), preload=True, start_cmds=(), wrap=(),
                 env=None, logdir=None, port=None):
        self.rundir = Path(rundir)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.prefix = str(self.rundir / "fiu-ctrl")
        self.logdir = Path(logdir) if logdir else self.rundir / "logs"
        self.errpath = self.rundir / "stderr.txt"
        self.args = [str(a) for a in args]
        self.preload = preload
        self.start_cmds = list(start_cmds)
        self.wrap = list(wrap)
        self.env = env
        self.port = port
        self.proc = None
        self.pid = None
        self.exit_code = None

    def argv(self, port):
        """wrap + fiu-run's environment (sigblock.py, see there) + the server."""
        sigblock, server = SIGBLOCK, SERVER_BIN
        if "setpriv" in self.wrap:      # runs as nobody: the checkout may be 0700
            sigblock, server = public_copy(SIGBLOCK), public_copy(SERVER_BIN)
        fr = ["/usr/bin/python3", str(sigblock)] + (
            ["-x", "-p", str(fiu_count_lib())] if self.preload else []) + ["-f", self.prefix]
        for c in self.start_cmds:
            fr += ["-c", c]
        return self.wrap + fr + ["--", str(server), "-f", "-p", str(port),
                                 "-l", str(self.logdir)] + self.args

    def launch(self, port=None):
        """Start without waiting; returns the Popen."""
        port = port or self.port or free_port()
        self.port = port
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if self.env:
            env.update(self.env)
        err = open(self.errpath, "ab")
        self.proc = subprocess.Popen(self.argv(port), stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err, cwd=str(self.rundir),
                                     env=env, start_new_session=True)
        err.close()
        self.pid = self.proc.pid
        STARTED.add(self.pid)
        return self.proc

    def start(self, timeout=10.0):
        for attempt in range(5):
            self.launch(None if attempt else self.port)
            ok = wait_for(lambda: listening(self.port) or self.proc.poll() is not None,
                          timeout)
            if ok and self.proc.poll() is None:
                # the control fifo appears in the preload constructor
                wait_for(lambda: os.path.exists("%s-%d.in" % (self.prefix, self.pid)), 3)
                return self
            if self.proc.poll() is None:
                self.kill()
                raise Fail("server not listening after %.0fs" % timeout)
            if "in use" not in self.stderr():
                raise Fail("server did not start: %s" % self.stderr().strip()[-200:])
            self.port = None
        raise Fail("no free port after 5 attempts")

    def run_to_exit(self, timeout=10.0):
        """For startup-failure scenarios: launch and wait for the exit code."""
        self.launch()
        try:
            self.exit_code = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise Fail("server did not exit within %.0fs" % timeout)
        return self.exit_code

    # ---- control -----------------------------------------------------------
    def fiu(self, cmd, pid=None):
        fiu_ctrl(self.prefix, pid or self.pid, cmd)

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

    def signal(self, sig):
        kill_pid(self.pid, sig)

    # ---- inspection --------------------------------------------------------
    def alive(self):
        return self.proc is not None and self.proc.poll() is None and alive(self.pid)

    def children(self):
        return children(self.pid)

    def zombies(self):
        return zombies(self.pid)

    def fds(self):
        return fd_count(self.pid)

    def rss(self):
        return rss_kb(self.pid)

    def log(self):
        text = ""
        try:
            for p in sorted(self.logdir.glob("forkchatd_*.log")):
                if p.is_file():         # never read a symlink to /dev/full
                    text += p.read_text(errors="replace")
        except OSError:
            pass
        return text

    def stderr(self):
        try:
            return self.errpath.read_text(errors="replace")
        except OSError:
            return ""

    def log_has(self, pattern, timeout=3.0):
        """The first log line matching the regex, waiting up to timeout."""
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

    # ---- teardown ----------------------------------------------------------
    def kill(self):
        """SIGKILL the server and every child it has; reap our Popen."""
        if self.pid is None:
            return
        kids = children(self.pid, True) if alive(self.pid) else {}
        kill_pid(self.pid)
        for k in kids:
            kill_pid(k)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        # children die by PDEATHSIG; make sure of the ones we saw
        for k in kids:
            if alive(k):
                kill_pid(k)

    def stop(self, timeout=8.0):
        """Graceful SIGTERM; returns the exit code (SIGKILL after timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


# ---- clients -------------------------------------------------------------------------
class Client:
    """A raw protocol client; a reader thread collects every line it gets.

    reading=False: no reader thread (a client that stops reading); rcvbuf
    shrinks its receive buffer before connecting.
    """

    def __init__(self, port, nick=None, reading=True, rcvbuf=None, timeout=5.0):
        self.port = port
        self.nick = nick
        self.lines = []
        self.eof = False
        self.reset = False
        self.partial = b""
        self.cond = threading.Condition()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(scaled(timeout))
        self.sock.connect((HOST, port))
        self.sock.settimeout(None)
        self.thread = None
        self.go = threading.Event()     # cleared: the client stops reading
        self.go.set()
        if reading:
            self.start_reading()

    def start_reading(self):
        if self.thread is None:
            self.thread = threading.Thread(target=self._reader, daemon=True)
            self.thread.start()

    def _reader(self):
        buf = b""
        while True:
            self.go.wait()
            try:
                data = self.sock.recv(65536)
            except OSError:
                with self.cond:
                    self.reset = True
                    self.eof = True
                    self.cond.notify_all()
                return
            if not data:
                with self.cond:
                    self.partial = buf      # bytes after the last newline: a cut line
                    self.eof = True
                    self.cond.notify_all()
                return
            buf += data
            if b"\n" in buf:
                *done, buf = buf.split(b"\n")
                with self.cond:
                    self.lines.extend(x.decode("utf-8", "replace") for x in done)
                    self.cond.notify_all()

    def pause(self):
        """Stop reading (after the recv in progress): the socket fills up."""
        self.go.clear()

    def resume(self):
        self.go.set()

    def send(self, line):
        self.sock.sendall((line + "\n").encode())

    def try_send(self, line):
        try:
            self.send(line)
            return True
        except OSError:
            return False

    def wait_line(self, pattern, timeout=5.0, start=0):
        """Index of the first line (from start) matching the regex, or None."""
        rx = re.compile(pattern)
        end = time.monotonic() + scaled(timeout)
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i
                left = end - time.monotonic()
                if left <= 0 or self.eof:
                    if self.eof:        # one last look after EOF
                        for i in range(start, len(self.lines)):
                            if rx.search(self.lines[i]):
                                return i
                    return None
                self.cond.wait(left)

    def wait_eof(self, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: self.eof, scaled(timeout))
            return self.eof

    def wait_count(self, pattern, n, timeout=5.0):
        rx = re.compile(pattern)
        end = time.monotonic() + scaled(timeout)
        with self.cond:
            while True:
                c = sum(1 for x in self.lines if rx.search(x))
                if c >= n or self.eof:
                    return c
                left = end - time.monotonic()
                if left <= 0:
                    return c
                self.cond.wait(min(left, 0.2))

    def snapshot(self):
        with self.cond:
            return list(self.lines)

    def register(self, nick=None, timeout=5.0):
        self.nick = nick or self.nick
        if self.wait_line(r"^HELLO ", timeout) is None:
            raise Fail("%s: no HELLO (got %r, eof=%s)" % (self.nick, self.snapshot()[-3:], self.eof))
        n = len(self.lines)
        self.send(self.nick)
        if self.wait_line(r"^OK JOIN lobby", timeout, n) is None:
            raise Fail("%s: not registered (got %r)" % (self.nick, self.snapshot()[-3:]))
        return self

    def bye(self):
        """The BYE/ERR 500 line the client got, if any."""
        for x in self.snapshot():
            if x.startswith("BYE ") or x.startswith("ERR 500"):
                return x
        return None

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes the reader thread
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.go.set()


def connect(port, nick, **kw):
    """Connect and register; returns the Client."""
    return Client(port, nick, **kw).register()


def close_all(clients):
    for c in clients:
        c.close()


# ---- sequence-numbered traffic ------------------------------------------------------
SEQ_RX = re.compile(r"^MSG (\S+) (\S+) seq (\S+) (\d+)")


def seq_received(client):
    """{sender: [n, ...]} of 'seq SENDER n' messages the client got."""
    got = {}
    for line in client.snapshot():
        m = SEQ_RX.match(line)
        if m and m.group(2) == m.group(3):
            got.setdefault(m.group(2), []).append(int(m.group(4)))
    return got


def check_seq(receivers, sent, complete=(), pad=""):
    """Verify sequence-numbered delivery.

    sent: {sender: count sent}.  Every receiver must get, from every sender
    other than itself, a gap-free, duplicate-free run 1..k in order; for
    pairs where both are in `complete`, k must equal the count sent.
    Returns a list of problem strings (empty = fine).
    """
    problems = []
    complete = set(complete)
    for r in receivers:
        got = seq_received(r)
        for s, n in sent.items():
            if s == r.nick:
                continue
            seq = got.get(s, [])
            if seq != list(range(1, len(seq) + 1)):
                dups = len(seq) - len(set(seq))
                problems.append("%s<-%s out of order/gap/dup (%d dups, first %s)"
                                % (r.nick, s, dups, seq[:6]))
            elif r.nick in complete and s in complete and len(seq) != n:
                problems.append("%s<-%s got %d of %d" % (r.nick, s, len(seq), n))
    return problems
