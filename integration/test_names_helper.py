# SPDX-License-Identifier: BSD-3-Clause
"""The name helper (core/server/names.c): names are checked and keyed (ICU's
confusable skeletons, core/chat/name.c) in a child of the parent, started on
the first name and closed after 5 idle seconds, so that the parent never
maps ICU or libstdc++ (3-4 MB of its PSS when it linked them; issue 17,
goal 3) and a tree whose clients are all registered maps none at all."""

import os
import signal

from harness import procfs
from harness.timescale import scaled, wait_until

ICU_LIBS = ("libicu", "libstdc++")


def maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


def icu_in(pid):
    m = maps(pid)
    # (the sanitizers' runtime links libstdc++ itself)
    return [lib for lib in ICU_LIBS if lib in m and not (lib == "libstdc++" and "libasan" in m)]


def test_parent_never_maps_icu_the_helper_does(server, user, connect):
    user("bob")
    c = connect()
    c.send("b\u043eb")                  # Cyrillic o: a lookalike of bob
    c.expect_next(r"ERR 422 NICK_TAKEN .*lookalikes.*")
    helper = server.names_helper()
    assert helper is not None, procfs.children(server.pid)
    assert procfs.proc_stat(helper)[1] == server.pid
    assert "libicu" in maps(helper)
    assert icu_in(server.pid) == [], "the parent maps %r" % icu_in(server.pid)
    assert icu_in(server.spawner()) == []


def test_helper_exits_when_idle_and_a_new_one_answers(server, user, connect):
    user("carol")
    first = server.names_helper()
    assert first is not None
    # NAMES_IDLE_MS is 5 s, closed on the parent's 1 s tick; reaped by it
    wait_until(lambda: server.names_helper() is None, 20, 0.1, "the name helper to exit")
    assert server.zombies() == []
    tree = [server.pid] + list(procfs.children(server.pid))
    assert [p for p in tree if "libicu" in maps(p)] == []
    c = connect()
    c.send("CAR\u043eL")                # case and lookalike folded
    c.expect_next(r"ERR 422 NICK_TAKEN .*")
    second = server.names_helper()
    assert second is not None and second != first
    user("dave")                        # and a new name is accepted


def test_killed_helper_is_replaced(server, user, connect):
    user("erin")
    h = server.names_helper()
    assert h is not None
    os.kill(h, signal.SIGKILL)
    wait_until(lambda: server.names_helper() != h, 10, 0.05, "the helper to be reaped")
    c = connect()
    c.send("ERIN")
    c.expect_next(r"ERR 422 NICK_TAKEN .*")
    user("frank")
    server.wait_log(r"name helper pid=%d ended" % h)
    assert server.alive() and server.zombies() == []


def test_stopped_helper_does_not_hold_the_shutdown(server, user):
    """A name helper that is stopped when the server shuts down (a blocking
    waitpid() on it never returns) is killed after its bound (names.c,
    STOP_MS): the server ends by itself, says so, and leaves no process."""
    user("gina")
    h = server.names_helper()
    assert h is not None
    os.kill(h, signal.SIGSTOP)
    try:
        left = server.stop(timeout=scaled(20))
    finally:
        if not procfs.is_gone(h):
            os.kill(h, signal.SIGCONT)
    assert not server.needed_sigkill, server.log()[-2000:]
    assert left == {}
    assert server.log_count(r"name helper pid=%d did not end in \d+ ms: killed" % h) == 1
    assert server.log_count(r"shutdown complete") == 1
