# SPDX-License-Identifier: BSD-3-Clause
"""Connections that arrive together (issue 17, goal 5: the connect storm).

The parent accepts every queued connection in one wake-up and asks the
spawner for up to SPAWN_WINDOW (8) sessions before it reads the first answer,
so it prepares the next connections while the spawner clones, instead of
one round trip per connection.  The tests hold the spawner (SIGSTOP) and the
parent while connections queue, let the parent go, and read how many
requests wait on the spawner's socket (`ss -x`: Recv-Q of its end, 8 bytes a
request).  The per-address limits count a request not answered yet.
"""

import datetime
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from harness import procfs
from harness.timescale import scaled, wait_until

REQ = 8  # bytes of one spawner request (slot, inject)
WINDOW = 8


def sock_inode(pid):
    """Inode of the one socket pid holds (the spawner's socketpair end)."""
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            found.append(m.group(1))
    assert len(found) == 1, "spawner %d holds sockets %r" % (pid, found)
    return found[0]


def queued(inode):
    """Recv-Q of the unix socket with that inode (ss -x), or None."""
    out = subprocess.run(["ss", "-x", "-a", "-n"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local(* INODE) Peer(* INODE)
        if len(f) >= 8 and f[5] == inode:
            return int(f[2])
    return None


def read_line(s, timeout):
    buf = b""
    s.settimeout(scaled(timeout))
    while b"\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf.decode("utf-8", "replace")


@pytest.fixture
def held(server_factory):
    """start(args) -> (server, spawner pid); both are let go at teardown
    whatever happens."""
    held = []

    def start(args=()):
        srv = server_factory(list(args))
        sp = wait_until(srv.spawner, 5, what="the spawner")
        held.extend([srv.pid, sp])
        return srv, sp

    yield start
    for pid in held:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def storm(srv, sp, k):
    """Stop the spawner and the parent, queue k connections, let the parent
    go; returns the sockets."""
    os.kill(sp, signal.SIGSTOP)
    os.kill(srv.pid, signal.SIGSTOP)
    for pid in (sp, srv.pid):  # a stop takes effect when it is scheduled
        wait_until(lambda: procfs.proc_stat(pid)[0] in ("T", "t"), 10,
                   what="process %d stopped" % pid)
    socks = [socket.create_connection(("127.0.0.1", srv.port), 5) for _ in range(k)]
    os.kill(srv.pid, signal.SIGCONT)
    return socks


def test_connections_that_arrive_together_reach_the_spawner_before_any_answer(held):
    srv, sp = held()
    ino = sock_inode(sp)
    socks = storm(srv, sp, 5)
    try:
        # one wake-up: all 5 accepted and sent on, the parent now waits for
        # the first answer (one round trip at a time would leave 8 bytes)
        wait_until(lambda: queued(ino) == 5 * REQ, 4,
                   what="5 requests queued on the held spawner (have %r bytes)" % queued(ino))
        os.kill(sp, signal.SIGCONT)
        for i, s in enumerate(socks):
            assert read_line(s, 5).startswith("HELLO"), "client %d got no HELLO" % i
            s.sendall(b"st%d\n" % i)
            assert "OK NICK st%d" % i in read_line(s, 5)
        assert len(srv.children()) == 5
        assert len(re.findall(r"connect slot=\d+ pid=\d+", srv.log())) == 5
    finally:
        for s in socks:
            s.close()


def test_the_spawner_holds_at_most_a_window_of_requests(held):
    srv, sp = held()
    ino = sock_inode(sp)
    k = WINDOW + 4
    socks = storm(srv, sp, k)
    try:
        wait_until(lambda: queued(ino) == WINDOW * REQ, 4,
                   what="a window of requests queued (have %r bytes)" % queued(ino))
        for _ in range(5):  # the parent waits for the oldest answer now
            time.sleep(0.05)
            assert queued(ino) == WINDOW * REQ
        os.kill(sp, signal.SIGCONT)
        for i, s in enumerate(socks):
            assert read_line(s, 5).startswith("HELLO"), "client %d got no HELLO" % i
        wait_until(lambda: len(srv.children()) == k, 5, what="%d sessions" % k)
    finally:
        for s in socks:
            s.close()


def test_requests_not_answered_yet_count_against_the_address_limit(held):
    srv, sp = held(["--exempt", "none", "--max-per-addr", "3"])
    ino = sock_inode(sp)
    socks = storm(srv, sp, 5)
    try:
        # the 4th and 5th are refused at the door while 3 wait on the spawner
        for s in socks[3:]:
            assert read_line(s, 5).startswith("BYE TOO_MANY_CONNECTIONS")
        wait_until(lambda: queued(ino) == 3 * REQ, 4,
                   what="3 requests queued (have %r bytes)" % queued(ino))
        os.kill(sp, signal.SIGCONT)
        for i, s in enumerate(socks[:3]):
            assert read_line(s, 5).startswith("HELLO"), "client %d got no HELLO" % i
        assert len(srv.children()) == 3
    finally:
        for s in socks:
            s.close()


def test_a_nickname_sent_before_hello_registers(server):
    """A client may send its nickname at once, as forkchat-load's storm
    clients do (one round trip, like IRC's NICK and Redis's SUBSCRIBE);
    the replies come after HELLO, in order."""
    s = socket.create_connection(("127.0.0.1", server.port), 5)
    try:
        s.sendall(b"early_bird\n")
        s.settimeout(scaled(5))
        buf = b""
        while buf.count(b"\n") < 3:
            d = s.recv(4096)
            assert d, "closed after %r" % buf
            buf += d
        lines = buf.decode().splitlines()
        assert lines[0].startswith("HELLO ")
        assert lines[1:3] == ["OK NICK early_bird", "OK JOIN lobby"]
    finally:
        s.close()


def test_register_deadline_counts_from_the_session_start(held):
    """The register deadline of a connection whose session was asked for
    counts from the session's start (its "connect" log line), not from the
    request: a slow spawner does not eat into the client's time."""
    srv, sp = held(["--register-timeout", "1"])
    os.kill(sp, signal.SIGSTOP)
    wait_until(lambda: procfs.proc_stat(sp)[0] in ("T", "t"), 10, what="spawner stopped")
    s = socket.create_connection(("127.0.0.1", srv.port), 5)
    try:
        time.sleep(0.5)  # the request waits on the held spawner
        os.kill(sp, signal.SIGCONT)
        assert read_line(s, 5).startswith("HELLO")
        stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[\d+\] \w+ "
        con = srv.wait_log(stamp + r"connect slot=(\d+) pid=")
        cut = srv.wait_log(stamp + r"disconnect slot=%s nick=- reason=register-timeout"
                           % con.group(2), timeout=10)

        def secs(t):
            return datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        assert secs(cut.group(1)) - secs(con.group(1)) >= 1 - 0.002
    finally:
        s.close()


def voluntary_switches(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for %d" % pid)


def test_arrivals_wake_a_lobby_member_once_per_presence_window(server, connect):
    """20 clients register one after the other: the first member's session
    child gets their JOIN lines in a few writes (presence lines wait up to
    200 ms, FANOUT_LAZY_MS), not one wake-up per arrival.  The bound comes
    from the time the arrivals took: one wake-up per 200 ms window, one per
    2 s tick, and a few more; 20 sequential arrivals woke it 20 times."""
    first = connect().register("lobby0")
    kid = server.child_for(first)
    time.sleep(0.3)  # its own start-up and registration are over
    v0, t0 = voluntary_switches(kid), time.monotonic()
    for i in range(20):
        connect().register("arr%02d" % i)
    for i in range(20):
        first.expect_exact("JOIN lobby arr%02d" % i)
    elapsed = time.monotonic() - t0
    wakes = voluntary_switches(kid) - v0
    assert wakes <= elapsed / 0.2 + elapsed / 2 + 3, (wakes, elapsed)


def minor_faults(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read().decode("ascii", "replace")
    return int(data[data.rindex(")") + 2:].split()[7])


def test_an_idle_session_child_touches_no_new_page_per_tick(server):
    """After a storm, 1000 idle session children each wake every 2 s tick.
    A tick must not free the first output buffer (a page) and have the
    next read of the pipe malloc it again: the heap was trimmed and grown
    back, three brk() and a page fault per child per tick.  Counted by the
    child's minor faults over three ticks (its wake-ups: nothing else wakes
    an idle member), not by time."""
    # registered as a storm's clients do: the nickname before HELLO
    s = socket.create_connection(("127.0.0.1", server.port), 5)
    try:
        s.sendall(b"idle0\n")
        s.settimeout(scaled(5))
        buf = b""
        while b"OK JOIN" not in buf:
            d = s.recv(4096)
            assert d, "closed after %r" % buf
            buf += d
        kids = server.children()
        inode = wait_until(lambda: procfs.socket_inode(server.port, s.getsockname()[1]), 2.0,
                           what="the server's socket")
        (kid,) = procfs.pids_holding_inode(kids, inode)
        idle_ticks_fault_nothing(kid)
    finally:
        s.close()


def idle_ticks_fault_nothing(kid):
    v = voluntary_switches(kid)
    # its first two wake-ups: the end of the registration's traffic may be
    # one of them, and the first idle tick's one-time set-up (the first
    # trim, a deeper stack) may touch a page
    wait_until(lambda: voluntary_switches(kid) >= v + 2, 10, what="a first tick")
    v, f = voluntary_switches(kid), minor_faults(kid)
    wait_until(lambda: voluntary_switches(kid) >= v + 3, 20, what="three more ticks")
    assert minor_faults(kid) == f, "page faults over three idle ticks"
