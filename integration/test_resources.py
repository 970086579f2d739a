# SPDX-License-Identifier: BSD-3-Clause
"""Resource hygiene: many connect/register/disconnect cycles leave the
parent's fd count and memory where they were, and no zombie children."""

import pytest

from harness.client import ChatClient
from harness.procfs import fd_count, rss_kb
from harness.timescale import wait_for, wait_until


def cycle(port, i, how):
    c = ChatClient(port, name="cyc%d" % i)
    try:
        if how == "quit":
            # we close right after BYE QUIT instead of waiting for the
            # server's close (test_session checks that separately)
            c.register("cyc%d" % i)
            c.send("/quit")
            c.expect_next(r"BYE QUIT( .*)?")
        elif how == "close":
            c.register("cyc%d" % i)
        elif how == "unregistered":
            pass
        elif how == "bad":
            c.send("bad nick")
            c.expect_err(420)
    finally:
        c.close()


def settled(server, fds):
    """No children left (all reaped) and fd count back to fds."""
    return not server.children() and not server.zombies() and fd_count(server.pid) == fds


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_500_cycles_leak_no_fds_memory_or_zombies(server, user):
    watcher = user("watcher")
    kinds = ["quit", "close", "unregistered", "bad"]
    for i in range(20):                               # warm-up
        cycle(server.port, i, kinds[i % 4])
    wait_until(lambda: len(server.children()) == 1 and not server.zombies(), 10,
               what="warm-up children reaped")
    fds0 = fd_count(server.pid)
    rss0 = rss_kb(server.pid)
    # no wall-clock bound on the 500 cycles (it raced the machine's load):
    # the timeout mark catches a hang
    for i in range(500):
        cycle(server.port, 100 + i, kinds[i % 4])
    wait_until(lambda: len(server.children()) == 1 and not server.zombies()
               and fd_count(server.pid) == fds0, 10,
               what="fd count back to %d (now %d), children %r, zombies %r" % (
                   fds0, fd_count(server.pid), server.children(), server.zombies()))
    rss1 = rss_kb(server.pid)
    assert rss1 - rss0 <= 1024, "parent RSS grew from %d kB to %d kB" % (rss0, rss1)
    # the watcher is still served and saw every registered cycle come and go
    watcher.skipped = []
    watcher.send("/users all")
    watcher.expect_exact("USER watcher lobby", timeout=10)
    watcher.expect_next_exact("END USERS 1")
    want = []
    for i in list(range(20)) + list(range(100, 600)):
        how = kinds[i % 4] if i < 20 else kinds[(i - 100) % 4]
        if how in ("quit", "close"):
            want += ["JOIN lobby cyc%d" % i, "PART lobby cyc%d %s" % (
                i, "quit" if how == "quit" else "disconnected")]
    # a closed socket's PART may come after the next user's JOIN; compare
    # as a multiset, and per nick JOIN must precede PART
    got = watcher.skipped
    assert sorted(got) == sorted(want)
    pos = {line: k for k, line in enumerate(got)}
    for k in range(0, len(want), 2):
        assert pos[want[k]] < pos[want[k + 1]], want[k]


def test_parent_fds_do_not_grow_with_open_connections_after_they_close(server):
    # the baseline is the steady state: start() returned after start-up's
    # last line (harness/server.py settle), not when the port listened
    fds0 = fd_count(server.pid)
    clients = [ChatClient(server.port, name="c%d" % i) for i in range(30)]
    for i, c in enumerate(clients):
        c.register("c%d" % i)
    wait_until(lambda: len(server.children()) == 30, 5, what="30 children")
    assert fd_count(server.pid) > fds0          # each child's pipe is open
    for c in clients:
        c.close()
    # a condition, not a time: every child reaped, so its pipe is closed
    ok = wait_for(lambda: settled(server, fds0), 10)
    assert ok, "fds %d, baseline %d; children %r, zombies %r" % (
        fd_count(server.pid), fds0, server.children(), server.zombies())
