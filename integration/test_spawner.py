# SPDX-License-Identifier: BSD-3-Clause
"""The session spawner (core/server/spawner.c): one small process, forked at
startup, creates every session child with clone(CLONE_PARENT), so each child
is the server parent's child (reaped by it) and none maps a heap that the
parent grew later (issue 17, goal 3)."""

import os
import signal

import pytest

from harness import procfs
from harness.procfs import rss_kb
from harness.timescale import wait_until


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("%s not in /proc/%d/status" % (key, pid))


def ppid(pid):
    return procfs.proc_stat(pid)[1]


def test_spawner_exists_and_sessions_are_the_parents_children(server, user):
    a, b = user("sp_a"), user("sp_b")
    sp = server.spawner()
    assert sp is not None, "no forkchatd-spawn child: %r" % procfs.children(server.pid)
    assert ppid(sp) == server.pid
    kids = [server.child_for(a), server.child_for(b)]
    for k in kids:
        assert ppid(k) == server.pid, "session child %d's parent is %d" % (k, ppid(k))
        assert procfs.comm(k) == "forkchatd"
    # it holds no client socket or pipe: stdio, its socketpair, the up pipe
    assert procfs.fd_count(sp) <= 5, os.listdir("/proc/%d/fd" % sp)
    a.send("hello from a")
    b.expect(r"^MSG .*hello from a")
    server.wait_log(r"spawner started pid=%d" % sp)


def test_sessions_are_reaped_by_the_parent(server, user):
    a = user("sp_r")
    kid = server.child_for(a)
    a.send("/quit")
    a.expect_closed()
    wait_until(lambda: procfs.is_gone(kid) and kid not in procfs.children(server.pid, True),
               5, what="child %d reaped" % kid)
    server.wait_log(r"disconnect slot=\d+ nick=sp_r")
    assert not server.zombies()


def test_shutdown_leaves_no_spawner(server_factory, connect):
    srv = server_factory()
    c = connect(srv.port).register("sp_s")
    sp = srv.spawner()
    kid = srv.child_for(c)
    assert sp is not None
    assert not srv.stop(), "processes left after SIGTERM"
    assert procfs.is_gone(sp) and procfs.is_gone(kid)
    assert "shutdown complete" in srv.log()


def test_spawner_death_is_logged_and_a_new_one_serves(server, user, connect):
    a = user("sp_d1")
    sp = server.spawner()
    os.kill(sp, signal.SIGKILL)
    server.wait_log(r"spawner pid=%d killed by signal 9" % sp)
    wait_until(lambda: procfs.is_gone(sp), 5, what="old spawner reaped")
    assert not server.zombies()
    # the next connection starts a new spawner, and is served
    b = user("sp_d2")
    sp2 = wait_until(server.spawner, 5, what="a new spawner")
    assert sp2 != sp
    assert ppid(server.child_for(b)) == server.pid
    b.send("after the restart")
    a.expect(r"^MSG .*after the restart")
    assert len(server.log().split("spawner started")) == 3


@pytest.mark.timeout(120)
def test_children_forked_after_a_burst_stay_small(server_factory, connect, user):
    """A reader that stops makes the parent hold tens of MB of backlog; a
    client that connects then gets a child as small as before (a fork of
    the parent would map all of it: RSS and page tables)."""
    srv = server_factory(args=["--max-backlog", str(256 << 20)])
    early = user("sp_early", port=srv.port)
    k0 = srv.child_for(early)
    rss0, pte0 = status_kb(k0, "VmRSS"), status_kb(k0, "VmPTE")
    stuck = connect(srv.port, name="sp_stuck", rcvbuf=4096).register("sp_stuck")
    talker = user("sp_talk", port=srv.port)
    early.keep_history = talker.keep_history = False
    base = rss_kb(srv.pid)
    line = "x" * 1500
    for _ in range(60):     # about 1 MB a round into the stuck reader's backlog
        talker.send_lines([line] * 700)
        if rss_kb(srv.pid) > base + 48 * 1024:
            break
        talker.sync(early)
    grown = rss_kb(srv.pid)
    assert grown > base + 32 * 1024, "parent RSS %d -> %d kB: no backlog built" % (base, grown)
    late = user("sp_late", port=srv.port)
    k1 = srv.child_for(late)
    late.send("still small")
    early.expect(r"^MSG .*still small")
    rss1, pte1 = status_kb(k1, "VmRSS"), status_kb(k1, "VmPTE")
    # generous: the parent grew by more than 32 MB; the child may not
    assert rss1 < rss0 + 4096, "late child RSS %d kB, early %d kB, parent %d kB" % (
        rss1, rss0, grown)
    assert pte1 < pte0 + 32, "late child page tables %d kB, early %d kB" % (pte1, pte0)
    stuck.close()
