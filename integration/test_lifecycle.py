# SPDX-License-Identifier: BSD-3-Clause
"""Server lifecycle (SERVER-CLI.md): daemon mode and pid file, dated log,
port in use, SIGHUP log reopening, graceful SIGTERM/SIGINT, SIGQUIT, a
killed child, a killed parent (no orphans)."""

import os
import re
import signal
import socket
import subprocess

import pytest

from harness.procfs import free_port, is_listening, proc_stat, wait_gone
from harness.server import SERVER, today_log_names
from harness.timescale import wait_until


def test_daemon_mode_writes_pid_file_and_dated_log(server_factory, connect):
    srv = server_factory(foreground=False)
    assert srv.launcher_rc == 0
    assert int(srv.pidfile.read_text().strip()) == srv.pid
    st = proc_stat(srv.pid)
    assert st is not None and st[0] != "Z"
    assert st[1] != os.getpid(), "daemon is still a child of the launcher's parent"
    # Detached: fork, setsid, fork. The daemon is in a session of its own
    # that it does not lead (so it can never acquire a terminal) and has no
    # controlling terminal. Fields after "(comm)": state ppid pgrp session
    # tty_nr. (The runner itself may be in session 0, e.g. under CI.)
    with open("/proc/%d/stat" % srv.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    pgrp, sid, tty_nr = int(fields[2]), int(fields[3]), int(fields[4])
    assert sid != os.getsid(0), "daemon still in the launcher's session"
    assert sid == pgrp and sid != srv.pid, (sid, pgrp, srv.pid)
    assert tty_nr == 0, "daemon has a controlling terminal"
    names = [os.path.basename(p) for p in srv.log_files()]
    assert len(names) == 1 and names[0] in today_log_names(), names
    assert re.fullmatch(r"forkchatd_\d{8}\.log", names[0])
    srv.wait_log(r"listening on 127\.0\.0\.1:%d" % srv.port)
    a = connect(srv.port).register("alice")
    b = connect(srv.port).register("bob")
    a.expect_next_exact("JOIN lobby bob")
    b.send("daemon works")
    a.expect_next_exact("MSG lobby bob daemon works")
    # stdout/stderr of the daemon go nowhere near the launcher's terminal
    assert "register" not in srv.stderr()


def test_sigterm_in_daemon_mode_says_bye_and_cleans_up(server_factory, connect):
    srv = server_factory(foreground=False)
    clients = [connect(srv.port).register(n) for n in ("alice", "bob")]
    clients[1].send("/add rust")
    clients[1].expect_exact("OK JOIN rust")
    pending = connect(srv.port)                     # not registered
    kids = wait_until(lambda: len(srv.children()) >= 3 and srv.children(), 5,
                      what="3 children")
    os.kill(srv.pid, signal.SIGTERM)
    for c in clients + [pending]:
        got = c.expect_closed(timeout=7)
        assert got and re.fullmatch(r"BYE SHUTDOWN( .*)?", got[-1]), (c.nick, got)
    assert not wait_gone({srv.pid: None}, 7), "server did not exit"
    assert not wait_gone(kids, 5), "children survived shutdown"
    assert not srv.pidfile.exists(), "pid file not removed"
    log = srv.log()
    assert "shutdown begin (SIGTERM)" in log, log[-500:]
    assert log.rstrip().endswith("shutdown complete"), log[-300:]
    srv.stopped = True


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_graceful_shutdown_in_foreground_exits_0(server_factory, connect, sig, name):
    srv = server_factory()
    a = connect(srv.port).register("alice")
    kids = dict(srv.children())
    srv.signal(sig)
    got = a.expect_closed(timeout=7)
    assert got and got[-1].startswith("BYE SHUTDOWN"), got
    srv.proc.wait(7)
    assert srv.proc.returncode == 0, srv.stderr()[-500:]
    assert not wait_gone(kids, 5)
    assert "shutdown begin (%s)" % name in srv.log()
    assert not is_listening(srv.port)
    srv.stopped = True


def test_sigquit_is_immediate_and_leaves_no_children(server_factory, connect):
    srv = server_factory(foreground=False)
    [connect(srv.port).register(n) for n in ("a", "b", "c")]
    kids = wait_until(lambda: len(srv.children()) >= 3 and srv.children(), 5, what="children")
    os.kill(srv.pid, signal.SIGQUIT)
    assert not wait_gone({srv.pid: None}, 5)
    assert not wait_gone(kids, 5)
    assert not srv.pidfile.exists()
    srv.stopped = True


def test_port_in_use_is_a_clear_startup_error(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        for extra in (["-f"], ["--pid-file", str(tmp_path / "p.pid")]):
            r = subprocess.run([str(SERVER), "-p", str(port), "-l", str(tmp_path / "logs")] + extra,
                               capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
            assert r.returncode == 1, (extra, r.returncode, r.stderr)
            err = r.stderr.decode(errors="replace")
            assert err.startswith("forkchatd: "), err
            assert re.search(r"(?i)in use", err), err
            assert not (tmp_path / "p.pid").exists()
    finally:
        blocker.close()


def test_unwritable_log_dir_is_startup_error(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    r = subprocess.run([str(SERVER), "-f", "-p", str(free_port()), "-l", str(afile / "sub")],
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.decode().startswith("forkchatd: "), r.stderr


def test_sighup_reopens_log(server_factory, connect):
    srv = server_factory()
    srv.wait_log(r"listening on")
    [path] = srv.log_files()
    os.rename(path, path + ".old")
    srv.signal(signal.SIGHUP)
    wait_until(lambda: os.path.exists(path), 5, what="new log file after SIGHUP")
    connect(srv.port).register("afterhup")
    wait_until(lambda: "register slot" in open(path).read(), 5, what="new lines in new log")
    new = open(path).read()
    old = open(path + ".old").read()
    assert "log reopened (SIGHUP)" in new
    assert "nick=afterhup" in new and "nick=afterhup" not in old
    assert "listening on" in old and "listening on" not in new


def test_sigkill_of_one_child_frees_nick_and_others_carry_on(server, user, connect):
    alice = user("alice")
    bob = user("bob")
    carol = user("carol")
    alice.expect_exact("JOIN lobby carol")
    bob.expect_exact("JOIN lobby carol")
    child = server.child_for(bob)
    start = proc_stat(child)[2]
    os.kill(child, signal.SIGKILL)
    alice.expect_next_exact("PART lobby bob disconnected")
    carol.expect_next_exact("PART lobby bob disconnected")
    bob.expect_closed()
    server.wait_log(r"disconnect slot=\d+ nick=bob reason=killed-by-signal-9")
    assert not wait_gone({child: start}, 2)
    wait_until(lambda: not server.zombies(), 5, what="killed child reaped")
    bob2 = connect().register("bob")
    alice.expect_next_exact("JOIN lobby bob")
    alice.send("still fine")
    carol.expect_exact("MSG lobby alice still fine")
    bob2.expect_exact("MSG lobby alice still fine")
    assert sorted(n for n, _ in alice.users()) == ["alice", "bob", "carol"]


def test_sigkill_of_parent_takes_every_child_down(server, user, connect):
    clients = [user(n) for n in ("a", "b", "c", "d")]
    connect()                                       # an unregistered one too
    kids = wait_until(lambda: len(server.children()) >= 5 and server.children(), 5,
                      what="5 children")
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(5)
    left = wait_gone(kids, 5)
    assert not left, "orphans after parent SIGKILL: %r" % sorted(left)
    for c in clients:
        c.expect_closed(timeout=5)
    assert not is_listening(server.port)
    server.stopped = True


def test_daemon_with_relative_log_dir_and_pid_file(server_factory, connect):
    """The daemon chdirs to /: relative -l and --pid-file must be resolved
    against the directory it was started from, before detaching."""
    srv = server_factory(["-l", "logs", "--pid-file", "forkchatd.pid"],
                         foreground=False)
    assert srv.launcher_rc == 0
    assert int(srv.pidfile.read_text().strip()) == srv.pid
    assert os.readlink("/proc/%d/cwd" % srv.pid) == "/"
    srv.wait_log(r"listening on 127\.0\.0\.1:%d" % srv.port)
    assert [os.path.basename(p) for p in srv.log_files()][0] in today_log_names()
    connect(srv.port).register("rel")
    srv.wait_log(r"register slot=\d+ nick=rel")
    srv.stop()
    assert not srv.pidfile.exists(), "pid file not removed at shutdown"


def _drop_sys_resource():
    """Drop CAP_SYS_RESOURCE from the bounding set (before exec, so the
    server, even as root, cannot raise its hard limits); EPERM without
    CAP_SETPCAP means we never had it."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP, CAP_SYS_RESOURCE = 24, 24
    libc.prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0)


def _limited_server(tmp_path, soft, hard, max_clients, can_raise=True):
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if not can_raise:
            _drop_sys_resource()

    port = free_port()
    proc = subprocess.Popen([str(SERVER), "-f", "-p", str(port), "-l",
                             str(tmp_path / "logs"), "-m", str(max_clients)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=low_limit)
    wait_until(lambda: is_listening(port) or proc.poll() is not None, 10,
               what="listening")
    return proc, port


def _open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    return tuple(int(v) for v in line.split()[3:5])


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    return proc.stderr.read().decode(errors="replace")


def test_max_clients_raises_a_low_soft_open_files_limit(tmp_path):
    """-m 1000 needs about 1064 descriptors: a soft limit of 256 under a
    hard one of 4096 is raised, no privilege needed, with no warning."""
    proc, _ = _limited_server(tmp_path, 256, 4096, 1000)
    try:
        soft, hard = _open_files_limit(proc.pid)
        assert soft >= 1064 and hard == 4096, (soft, hard)
    finally:
        err = _stop(proc)
    assert "warning" not in err, err


def test_max_clients_shrinks_to_fit_a_low_hard_limit(tmp_path):
    """A hard limit the server cannot raise (no CAP_SYS_RESOURCE here, or
    a raise that is refused) makes it serve fewer clients, said on stderr
    and in the log, instead of failing accept() later."""
    proc, port = _limited_server(tmp_path, 200, 200, 1000, can_raise=False)
    try:
        soft, hard = _open_files_limit(proc.pid)
        assert hard == 200, "the server raised its hard limit without CAP_SYS_RESOURCE"
        wait_until(lambda: list((tmp_path / "logs").glob("*.log")), 5, what="log")
        log = next((tmp_path / "logs").glob("*.log")).read_text()
        assert "max-clients %d" % (hard - 64) in log, log
    finally:
        err = _stop(proc)
    assert "serving at most %d clients" % (hard - 64) in err, err
