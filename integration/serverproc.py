# SPDX-License-Identifier: BSD-3-Clause
"""Start, inspect and stop a real build/forkchatd for one test.

Process inspection goes through /proc only (no ps, no names): children are
the processes whose ppid is the server pid; a process counts as gone when
/proc/PID is missing, is a zombie ('Z'), or has a different start time than
when we first saw it (pid reused).  We only ever signal PIDs we started or
children of a server we started.
"""

import glob
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from timescale import scaled

ROOT = Path(__file__).resolve().parent.parent
# FORKCHATD / FORKCHAT override the binaries (e.g. a sanitizer build).
SERVER = Path(os.environ.get("FORKCHATD", ROOT / "build" / "forkchatd"))
CLIENT = Path(os.environ.get("FORKCHAT", ROOT / "build" / "forkchat"))
HOST = "127.0.0.1"

# Every pid started by this test session, killed at the very end if alive.
STARTED_PIDS = set()


# ---- /proc helpers -------------------------------------------------------
def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and ')' - split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(ppid, include_zombies=False):
    """{pid: starttime} of the processes whose parent is ppid."""
    out = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid and (include_zombies or st[0] != "Z"):
            out[pid] = st[2]
    return out


def zombie_children_of(ppid):
    return [pid for pid in all_pids()
            if (lambda st: st is not None and st[1] == ppid and st[0] == "Z")(proc_stat(pid))]


def is_gone(pid, starttime=None):
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return True
    return starttime is not None and st[2] != starttime


def wait_until(cond, timeout=5.0, interval=0.01, what="condition"):
    """Poll cond() until truthy; return its value or raise AssertionError.
    timeout is scaled for slow builds (timescale.py)."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_gone(pids, timeout=5.0):
    """pids: {pid: starttime}.  Returns the ones still alive after timeout
    (scaled for slow builds)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        alive = {p: s for p, s in pids.items() if not is_gone(p, s)}
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def is_listening(port):
    """True if 127.0.0.1:port (or 0.0.0.0:port) is in LISTEN state."""
    want = {"0100007F:%04X" % port, "00000000:%04X" % port}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] in want and parts[3] == "0A":
                    return True
    except FileNotFoundError:
        pass
    return False


def socket_inode(local_port, remote_port):
    """Inode of the server-side socket 127.0.0.1:local_port <-> :remote_port."""
    lo = "0100007F:%04X" % local_port
    rem = "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == lo and parts[2] == rem:
                return int(parts[9])
    return None


def pids_holding_inode(pids, inode):
    target = "socket:[%d]" % inode
    found = []
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        found.append(pid)
                        break
                except OSError:
                    pass
        except OSError:
            pass
    return found


def free_port():
    """A port that was free a moment ago (bind 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def today_log_names():
    """Log file names for today (and the neighbouring days, midnight-safe)."""
    now = time.time()
    return [time.strftime("forkchatd_%Y%m%d.log", time.localtime(now + d))
            for d in (0, -86400, 86400)]


# ---- the server ------------------------------------------------------------
class Server:
    """A forkchatd started by a test.

    foreground=True: `forkchatd -f -p PORT -l LOGDIR ARGS`, self.proc is the
    server.  foreground=False: daemon mode with --pid-file; self.pid is read
    from the pid file once the launcher exits.
    """

    def __init__(self, workdir, args=(), foreground=True, port=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logdir = self.workdir / "logs"
        self.pidfile = self.workdir / "forkchatd.pid"
        self.stderr_path = self.workdir / "stderr.txt"
        self.args = list(args)
        self.foreground = foreground
        self.fixed_port = port
        self.port = None
        self.proc = None
        self.pid = None
        self.seen_children = {}     # every child ever observed {pid: starttime}
        self.launcher_rc = None
        self.stopped = False
        self.needed_sigkill = False
        self.returncode = None

    def cmdline(self, port):
        cmd = [str(SERVER), "-p", str(port), "-l", str(self.logdir)]
        if self.foreground:
            cmd.insert(1, "-f")
        else:
            cmd += ["--pid-file", str(self.pidfile)]
        return cmd + self.args

    def start(self, attempts=5, timeout=10.0):
        assert SERVER.exists(), "%s is missing: run `make` first" % SERVER
        last = ""
        for _ in range(attempts):
            port = self.fixed_port or free_port()
            err = open(self.stderr_path, "wb")
            proc = subprocess.Popen(self.cmdline(port), stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, cwd=str(self.workdir))
            err.close()
            STARTED_PIDS.add(proc.pid)
            if self.foreground:
                ok = self._wait_listening(proc, port, timeout)
            else:
                ok = self._wait_daemon(proc, port, timeout)
            if ok:
                self.port = port
                return self
            last = self.stderr()
            if self.fixed_port or "in use" not in last.lower():
                break
        raise AssertionError("forkchatd did not start: %s" % last)

    def _wait_listening(self, proc, port, timeout):
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if is_listening(port):
                self.proc, self.pid = proc, proc.pid
                return True
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        raise AssertionError("forkchatd not listening on %d after %.0fs" % (port, timeout))

    def _wait_daemon(self, proc, port, timeout):
        try:
            self.launcher_rc = proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("daemon launcher did not exit within %.0fs" % timeout)
        if self.launcher_rc != 0:
            return False
        text = wait_until(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(),
                          timeout, what="pid file")
        self.pid = int(text)
        STARTED_PIDS.add(self.pid)
        wait_until(lambda: is_listening(port), timeout, what="daemon listening")
        return True

    # ---- inspection ------------------------------------------------------
    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def children(self):
        kids = children_of(self.pid)
        self.seen_children.update(kids)
        return kids

    def zombies(self):
        return zombie_children_of(self.pid)

    def log_files(self):
        return sorted(glob.glob(str(self.logdir / "forkchatd_*.log")))

    def log(self):
        """All log text written so far (every forkchatd_*.log in the log dir)."""
        out = []
        for p in self.log_files():
            with open(p, errors="replace") as f:
                out.append(f.read())
        return "".join(out)

    def wait_log(self, pattern, timeout=5.0):
        """Wait until a log line matches the regex pattern; return the match."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log()), timeout,
                          what="log line %r (log tail: %r)" % (pattern, self.log()[-600:]))

    def alive(self):
        return self.pid is not None and not is_gone(self.pid)

    def child_for(self, client):
        """Pid of the server child serving the ChatClient client."""
        inode = wait_until(lambda: socket_inode(self.port, client.local_port), 2.0,
                           what="server socket for client port %d" % client.local_port)
        kids = self.children()
        found = pids_holding_inode(kids, inode)
        assert len(found) == 1, "child for port %d: %r (children %r)" % (
            client.local_port, found, kids)
        return found[0]

    def send_signal(self, sig):
        assert self.alive(), "server %s is not running" % self.pid
        os.kill(self.pid, sig)

    # ---- shutdown ----------------------------------------------------------
    def _reap(self, timeout):
        """Wait for the server pid to end; True if it did."""
        if self.proc is not None:
            try:
                self.returncode = self.proc.wait(scaled(timeout))
                return True
            except subprocess.TimeoutExpired:
                return False
        return not wait_gone({self.pid: None}, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=8.0):
        """Signal the server, wait (bounded), SIGKILL if needed.

        Returns the children that survived it (should be empty).  Children
        are recorded before the signal, since they get reparented afterwards.
        """
        if self.stopped or self.pid is None:
            return {}
        self.stopped = True
        kids = dict(self.seen_children)
        kids.update(self.children())
        try:
            if not is_gone(self.pid):
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        if not self._reap(timeout):
            self.needed_sigkill = True
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(5.0)
        leftover = wait_gone(kids, 5.0)
        # anything still parented to the (dead or zombie) server pid
        for pid, start in children_of(self.pid).items():
            if not is_gone(pid, start):
                leftover[pid] = start
        for pid in leftover:      # clean up so one failure does not poison others
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return leftover
