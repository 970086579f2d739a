# SPDX-License-Identifier: BSD-3-Clause
"""--user and the log directory check (SERVER-CLI.md): a server started as
root runs as the named user once the socket, log and pid file are open
(parent and every child, checked in /proc/PID/status), SIGHUP still reopens
the log afterwards, and a world-writable log directory is refused."""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.client import ChatClient
from harness.procfs import free_port
from harness.server import SERVER, Server
from harness.timescale import wait_until

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root to switch users")


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this system")


def ids(pid):
    """(uids, gids) from /proc/PID/status: real, effective, saved, fs."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid"):
                out[k] = [int(x) for x in v.split()]
    return out["Uid"], out["Gid"]


@pytest.fixture
def world_dir():
    """A scratch directory the dropped user can traverse (pytest's tmp_path is
    0700 root), removed at teardown."""
    d = Path(tempfile.mkdtemp(prefix="forkchat-user-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def user_server(world_dir):
    servers = []

    def start(args=(), foreground=True):
        srv = Server(world_dir / ("s%d" % len(servers)), args=args, foreground=foreground)
        srv.workdir.chmod(0o755)
        servers.append(srv)
        return srv.start()

    yield start
    problems = []
    for srv in servers:
        left = srv.stop()
        if left:
            problems.append("server %d left children %r" % (srv.pid, sorted(left)))
    assert not problems, problems


@needs_root
def test_user_parent_and_children_run_as_that_user(user_server):
    pw = nobody()
    srv = user_server(["--user", "nobody"])
    # it listens before it drops root: wait for the line that says it did
    srv.wait_log(r"info running as user nobody \(uid %d, gid %d\)" % (pw.pw_uid, pw.pw_gid))
    want = [pw.pw_uid] * 4, [pw.pw_gid] * 4
    assert ids(srv.pid) == want
    a = ChatClient(srv.port).register("alice")
    b = ChatClient(srv.port).register("bob")
    try:
        child = srv.child_for(a)
        assert ids(child) == want
        b.send("hi alice")
        a.expect_exact("MSG lobby bob hi alice")
    finally:
        a.close()
        b.close()
    log = Path(srv.log_files()[0])
    assert log.stat().st_uid == pw.pw_uid
    assert srv.logdir.stat().st_uid == pw.pw_uid    # created by forkchatd: given away


@needs_root
def test_user_sighup_reopens_log_after_dropping_root(user_server):
    pw = nobody()
    srv = user_server(["--user", "nobody"])
    srv.wait_log(r"running as user nobody")
    old = Path(srv.log_files()[0])
    rotated = old.with_name(old.name + ".1")
    old.rename(rotated)                           # what logrotate does
    srv.signal(signal.SIGHUP)
    wait_until(lambda: old.exists() and "log reopened (SIGHUP)" in old.read_text(),
               5.0, what="a new log file after SIGHUP")
    assert old.stat().st_uid == pw.pw_uid
    assert "log reopen" not in rotated.read_text()
    assert srv.alive()


@needs_root
def test_user_daemon_mode_pid_file_owned_by_user(user_server):
    pw = nobody()
    srv = user_server(["--user", "nobody"], foreground=False)
    assert srv.launcher_rc == 0
    assert ids(srv.pid)[0] == [pw.pw_uid] * 4
    assert srv.pidfile.stat().st_uid == pw.pw_uid
    # the pid file's directory belongs to root: the server says it will stay
    srv.wait_log(r"warn the directory of .*forkchatd\.pid is not writable by nobody")


def run(args, timeout=10, **kw):
    cmd = [str(SERVER), "-f", "-p", str(free_port())] + args
    p = subprocess.run(cmd, capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    return p.returncode, p.stderr.decode(errors="replace"), cmd


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o757])
def test_world_writable_log_dir_refused(tmp_path, mode):
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(mode)
    rc, err, cmd = run(["-l", str(logs)])
    assert rc == 1, (rc, err)
    assert err == "forkchatd: log directory %s is world-writable (mode %04o): " \
        "refusing to log there\n" % (logs, mode), err
    assert list(logs.iterdir()) == []             # nothing was created there
    assert stat.S_IMODE(logs.stat().st_mode) == mode


def test_group_writable_log_dir_accepted(tmp_path, server_factory):
    logs = tmp_path / "server0" / "logs"
    logs.mkdir(parents=True)
    logs.chmod(0o775)
    srv = server_factory()
    wait_until(srv.log_files, 5.0, what="a log file")   # it listens, then opens the log


def test_unknown_user_refused(tmp_path):
    rc, err, _ = run(["-l", str(tmp_path / "logs"), "--user", "no-such-user-xyz"])
    assert rc == 1
    assert err == "forkchatd: --user no-such-user-xyz: no such user\n"
    assert not (tmp_path / "logs").exists()       # refused before anything


@needs_root
def test_user_switch_needs_root(tmp_path):
    pw = nobody()

    def become_nobody():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    # nobody must be able to reach the binary: the checkout may sit under a
    # 0700 directory (a CI clone in mktemp -d), so run a copy from /tmp
    bindir = Path(tempfile.mkdtemp(prefix="forkchatd-nobody-", dir="/tmp"))
    try:
        bindir.chmod(0o755)
        binary = bindir / "forkchatd"
        shutil.copy2(str(SERVER), str(binary))
        binary.chmod(0o755)
        p = subprocess.run([str(binary), "-f", "-p", str(free_port()), "-l",
                            "/nonexistent/logs", "--user", "root"],
                           capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL, preexec_fn=become_nobody)
    finally:
        shutil.rmtree(str(bindir), ignore_errors=True)
    err = p.stderr.decode(errors="replace").splitlines()
    assert p.returncode == 1, (p.returncode, err)
    assert err[0] == ("forkchatd: --user root: only root can switch users "
                      "(running as uid %d)" % pw.pw_uid), err
    # a coverage build also says it cannot write its counters as nobody
    assert all(l.startswith("profiling:") for l in err[1:]), err


@needs_root
def test_user_relative_log_dir_created_for_that_user(user_server):
    """A relative -l that does not exist yet is created by forkchatd and so
    given to the user (tomorrow's file must be creatable after the drop)."""
    pw = nobody()
    srv = user_server(["--user", "nobody", "-l", "rel-logs"])   # the last -l wins
    rel = srv.workdir / "rel-logs"
    wait_until(lambda: any("running as user nobody" in f.read_text()
                           for f in rel.glob("forkchatd_*.log")), 5.0, what="log in rel-logs")
    assert rel.stat().st_uid == pw.pw_uid
    assert not any("not writable" in f.read_text() for f in rel.glob("*.log"))
