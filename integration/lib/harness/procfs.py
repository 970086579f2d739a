# SPDX-License-Identifier: BSD-3-Clause
"""procfs - inspect processes and sockets through /proc only (no ps, no names).

A process counts as gone when /proc/PID is missing, is a zombie ('Z': PID 1
may reap orphans late) or dead ('X'), or has another start time than when we
first saw it (PID reused).  Children are the processes whose ppid is the
given PID.  Only PIDs the harness started, or children of a server it
started, are ever signalled (kill_pid).
"""

import os
import signal
import socket
import time

from harness.timescale import scaled

HOST = "127.0.0.1"


def proc_stat(pid):
    """(state, ppid, starttime, utime+stime ticks) of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may contain spaces and ')': split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12])


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def is_gone(pid, starttime=None):
    """pid is missing, a zombie, dead, or another process (starttime)."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return True
    return starttime is not None and st[2] != starttime


def alive(pid):
    return not is_gone(pid)


def children(ppid, zombies=False):
    """{pid: starttime} of the processes whose parent is ppid (zombies
    only if asked)."""
    out = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid and (zombies or st[0] != "Z"):
            out[pid] = st[2]
    return out


def comm(pid):
    """The process name of pid (/proc/PID/comm), or "" if it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def zombies(ppid):
    """Sorted PIDs of ppid's children in state Z (not reaped by ppid)."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid and st[0] == "Z":
            out.append(pid)
    return sorted(out)


def wait_gone(pids, timeout=5.0):
    """pids: {pid: starttime or None}.  Returns the ones still alive after
    timeout (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        left = {p: s for p, s in pids.items() if not is_gone(p, s)}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.01)


def kill_pid(pid, sig=signal.SIGKILL):
    """Signal pid; False if it no longer exists."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def fd_count(pid):
    """Open fds of pid, -1 if it is gone."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def rss_kb(pid):
    """VmRSS of pid in kB, -1 if it is gone."""
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
    except OSError:
        pass
    return False


def socket_inode(local_port, remote_port):
    """Inode of the socket 127.0.0.1:local_port <-> 127.0.0.1:remote_port."""
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
    """The pids (of those given) with an fd on socket inode."""
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
    """A 127.0.0.1 port that was free a moment ago (bind 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def accepting(port, host=HOST):
    """A TCP connect to host:port succeeds now (for servers that are not
    ours to inspect through /proc/net/tcp, e.g. listening on ::)."""
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False
