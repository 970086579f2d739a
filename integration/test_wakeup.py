# SPDX-License-Identifier: BSD-3-Clause
"""Wake-ups: a delivery and a close reach the client at once, not on the
session child's safety tick (session.c TICK_SECS, 2 s).

The parent makes no kill() per delivery: its write to a child's pipe raises
the child's SIGUSR2 by itself (O_ASYNC + F_SETSIG on the read end), and
after closing a pipe it sends SIGUSR1 so that the child reads on to the EOF
(docs/ARCHITECTURE.md, "Batching").  Were either broken, the bytes would
still arrive, but only when the child's tick came, up to 2 s later.  These
tests space their events so that a broken wake-up always costs more than
BOUND: the bound follows from the tick, not from the speed of the code (a
delivery takes milliseconds, under ASan too), so it is not scaled.
"""

import os
import time

TICK_S = 2.0
BOUND = 1.2  # well under the tick, far above any delivery



def no_lsan_env():
    """The environment for a server under strace: LeakSanitizer cannot run
    under ptrace and exits 1 at the end of an ASan build (every other ASan
    check stays on; a later ASAN_OPTIONS entry wins)."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env

def test_each_paced_delivery_wakes_the_reader_at_once(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    waits = []
    for i in range(5):
        time.sleep(0.1)  # bob's child slept since its last wake-up
        t0 = time.monotonic()
        alice.send("paced %d" % i)
        bob.expect_next_exact("MSG lobby alice paced %d" % i, timeout=TICK_S * 2)
        waits.append(time.monotonic() - t0)
    assert max(waits) < BOUND, waits


def test_quit_closes_at_once_not_on_the_tick(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    for i in range(3):
        alice.send("before %d" % i)  # bob's child wakes for these...
        bob.expect_next_exact("MSG lobby alice before %d" % i)
    time.sleep(0.1)  # ...and sleeps again before its last lines come
    t0 = time.monotonic()
    bob.send("/quit")
    assert bob.wait_eof(TICK_S * 2), "no close after /quit"
    waited = time.monotonic() - t0
    assert any(x.startswith("BYE QUIT") for x in bob.snapshot()), bob.snapshot()
    assert waited < BOUND, waited


def test_children_wake_the_parent_by_writing_not_by_kill(tmp_path):
    """The other direction: a session child's write to the shared pipe
    raises the parent's SIGUSR1 by itself (O_ASYNC + F_SETSIG on the
    parent's read end, server.c), so the children make no kill() to the
    parent at all, one system call less per turn of a sender.  Counted with
    strace over 30 messages: zero kill(parent, SIGUSR1), and the parent's
    sigtimedwait did return SIGUSR1 raised by the pipe (si_code POLL_IN);
    every message arrived, in order."""
    import re
    import shutil
    import signal
    import subprocess
    from harness.client import ChatClient
    from harness.procfs import free_port, is_listening
    from harness.server import SERVER
    from harness.timescale import wait_until
    assert shutil.which("strace"), "strace is not installed (make deps installs it)"
    port, trace, pidfile = free_port(), tmp_path / "trace", tmp_path / "pid"
    p = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=kill,rt_sigtimedwait",
                          "-o", str(trace), str(SERVER), "-f", "-b", "127.0.0.1",
                          "-p", str(port), "-l", str(tmp_path / "logs"),
                          "--pid-file", str(pidfile)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=no_lsan_env())
    try:
        wait_until(lambda: is_listening(port) and pidfile.exists()
                   and pidfile.read_text().strip(), 10.0, what="server under strace")
        pid = int(pidfile.read_text())
        a, b = ChatClient(port).register("a"), ChatClient(port).register("b")
        a.expect_exact("JOIN lobby b")
        for i in range(30):
            a.send("m %d" % i)
        for i in range(30):
            b.expect_exact("MSG lobby a m %d" % i)
        a.close()
        b.close()
        os.kill(pid, signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = trace.read_text()
    kills = re.findall(r"^\d+\s+kill\(%d, SIGUSR1" % pid, text, re.M)
    assert kills == [], "children still kill() the parent: %d calls" % len(kills)
    # a kill() would say SI_USER; the pipe's signal says POLL_IN (0x1)
    woken = re.findall(r"^%d\s.*si_signo=SIGUSR1, si_code=(?:POLL_IN|0x1)\b"
                       % pid, text, re.M)
    assert woken, "the parent was never woken by a pipe write"
