# SPDX-License-Identifier: BSD-3-Clause
"""wakeups - what woke a process: its rt_sigtimedwait() calls under strace.

A verdict on "the child was woken at once, not on its tick" must not time
the wake-up (issue 16, item 8: a fixed 1.2 s bound failed at load ~300, when
a wake-up at once took longer).  So tests attach strace to the session child
and judge how each wait ended: a signal (and which one, with its si_code),
or a timeout (-1 EAGAIN) with the tick's {tv_sec=2, tv_nsec=0}.  Slowness
cannot change that, whatever the machine.  A session child ends with
_exit(), so LeakSanitizer (which cannot run under ptrace) is not upset.
"""

import re
import shutil
import signal
import subprocess

from harness.timescale import scaled, wait_until

TICK_S = 2  # session.c TICK_SECS
TICK_WAIT = re.compile(r"\{tv_sec=%d, tv_nsec=0\}" % TICK_S)
BY_PIPE = re.compile(r"si_signo=SIGUSR2, si_code=(?:POLL_IN|0x1)\b")
BY_SIGNAL = re.compile(r"= \d+ \(SIG[A-Z0-9]+\)\s*$")


def tracer_of(pid):
    """The TracerPid of pid (0: none or gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def strace_attach(pid, path, *args):
    """strace -qq ARGS -o path -p pid, returned once it is attached."""
    assert shutil.which("strace"), "strace is not installed (make deps installs it)"
    p = subprocess.Popen(["strace", "-qq", *args, "-o", str(path), "-p", str(pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: tracer_of(pid) == p.pid, 10, what="strace attached")
    except AssertionError:
        strace_end(p)
        raise
    return p


def strace_end(p, detach=True):
    """End strace p: detach, SIGINT it (it lets the tracee go); else wait
    for it to end with its tracee.  Killed if it does not end in time."""
    if detach and p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        p.wait(scaled(15))
    except subprocess.TimeoutExpired:
        pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Waits:
    """strace -p pid, its rt_sigtimedwait() calls only, to path."""

    def __init__(self, pid, path):
        self.path = path
        self.p = strace_attach(pid, path, "-e", "trace=rt_sigtimedwait")

    def stop(self, detach=True):
        """The calls seen, one line each (detach: see strace_end())."""
        strace_end(self.p, detach)
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            text = ""
        return [l for l in text.splitlines() if "rt_sigtimedwait(" in l]


def last_tick_wait(calls):
    """The last wait with the tick's timeout (None if there was none)."""
    ticks = [c for c in calls if TICK_WAIT.search(c)]
    return ticks[-1] if ticks else None


def ended_on_tick(calls):
    """The process's last wait on the tick timed out (-1 EAGAIN): what came
    after it (an EOF, the end) was found by the tick, not by a signal.  No
    tick wait at all (everything was pending already: zero-timeout waits
    only) is not the tick either.  Earlier timeouts do not count: a loaded
    machine may leave a child idle for 2 s before the event."""
    last = last_tick_wait(calls)
    return last is not None and BY_SIGNAL.search(last) is None
