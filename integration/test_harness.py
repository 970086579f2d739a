# SPDX-License-Identifier: BSD-3-Clause
"""The harness itself (integration/lib/harness): what the fault matrix and
the tests rely on, checked against a real server or a scripted peer."""

import os
import socket
import subprocess

import pytest

from harness import procfs
from harness.client import ChatClient, ConnectionClosed
from harness.server import Server
from harness.timescale import wait_until


@pytest.fixture
def peer():
    """A scripted server on 127.0.0.1: peer(data) -> a ChatClient(port, **kw)
    factory; the connection gets data, then is closed."""
    socks = []

    def make(data, **kw):
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        socks.append(lst)
        c = ChatClient(lst.getsockname()[1], hello=False, **kw)
        conn, _ = lst.accept()
        conn.sendall(data)
        conn.close()
        return c
    yield make
    for s in socks:
        s.close()


@pytest.mark.parametrize("reading", [False, True], ids=["caller-reads", "thread-reads"])
def test_cut_last_line_is_partial_not_history(peer, reading):
    c = peer(b"HELLO forkchatd/1.0 hi\nMSG lobby a x\nBYE SHUT", reading=reading)
    try:
        assert c.wait_eof(5)
        assert c.snapshot() == ["HELLO forkchatd/1.0 hi", "MSG lobby a x"]
        assert c.partial == b"BYE SHUT"
        assert c.wait_line(r"^MSG lobby a x$") == 1
        assert c.wait_line(r"^BYE ", 0.1) is None
        # the queue has every line, the cut one last
        assert [c.readline() for _ in range(3)] == [
            "HELLO forkchatd/1.0 hi", "MSG lobby a x", "BYE SHUT"]
        with pytest.raises(ConnectionClosed):
            c.readline(0.5)
    finally:
        c.close()


def test_register_waits_for_hello_unless_the_caller_read_it(server):
    raw = ChatClient(server.port, hello=False, reading=True)
    raw.register("threaded")             # HELLO still queued: register reads it
    assert raw.hello.startswith("HELLO forkchatd/")
    manual = ChatClient(server.port, hello=False)
    assert manual.readline().startswith("HELLO ")
    manual.register("manual")            # HELLO already read: not waited for again
    manual.send("hi from manual")
    assert raw.wait_line(r"^MSG lobby manual hi from manual$") is not None
    raw.close()
    manual.close()


def test_zombie_counts_as_gone():
    p = subprocess.Popen(["/bin/true"])
    try:
        wait_until(lambda: procfs.proc_stat(p.pid)[0] == "Z", 5, what="zombie")
        assert procfs.is_gone(p.pid) and not procfs.alive(p.pid)
        assert p.pid in procfs.zombies(os.getpid())
        assert p.pid not in procfs.children(os.getpid())
        assert p.pid in procfs.children(os.getpid(), zombies=True)
    finally:
        p.wait()
    assert procfs.proc_stat(p.pid) is None and procfs.fd_count(p.pid) == -1


def test_stop_leaves_no_child(server_factory, user):
    srv = server_factory()
    a, b = user("a", srv.port), user("b", srv.port)
    kids = wait_until(lambda: len(srv.children()) == 2 and srv.children(), 5,
                      what="2 children")
    assert srv.stop() == {}
    assert srv.returncode == 0 and not srv.needed_sigkill
    assert all(procfs.is_gone(p, s) for p, s in kids.items())
    assert a.wait_eof(5) and b.wait_eof(5)


# A stand-in for forkchatd that, like it, listens before it opens its log
# and finishes start-up (the log, its pipes, the spawner) a while later.
SLOW_START = r'''
import os, signal, socket, sys, time
args = sys.argv[1:]
port, logdir = int(args[args.index("-p") + 1]), args[args.index("-l") + 1]
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", port))
lst.listen(8)
time.sleep(0.5)                                  # start-up goes on
os.makedirs(logdir, exist_ok=True)
with open(os.path.join(logdir, time.strftime("forkchatd_%Y%m%d.log")), "a") as f:
    for what in ("listening on 127.0.0.1:%d" % port, "limits max-per-addr=1"):
        line = "2026-01-01 00:00:00.000 [%d] info %s\n" % (os.getpid(), what)
        f.write(line)
        sys.stderr.write(line)
signal.sigwait([signal.SIGTERM])
'''


def test_start_returns_once_start_up_is_over_not_when_the_port_listens(tmp_path):
    """A baseline (fds, children) taken right after start() is the steady
    state: start() waits for the last start-up line, not for the port
    (which listens before the log exists: a baseline taken then missed the
    log, the pipes and the spawner's socket, and
    test_parent_fds_do_not_grow... failed on a loaded machine)."""
    script = tmp_path / "slowstart.py"
    script.write_text(SLOW_START)
    exe = tmp_path / "forkchatd"
    exe.write_text("#!/bin/sh\nexec /usr/bin/python3 %s \"$@\"\n" % script)
    exe.chmod(0o755)
    srv = Server(tmp_path / "srv", binary=exe)
    try:
        srv.start()
        assert " info limits " in srv.log(), "start() returned mid start-up"
    finally:
        srv.stop()
        srv.kill()
