# SPDX-License-Identifier: BSD-3-Clause
"""The files a privileged forkchatd writes (docs/SECURITY.md, issue 12
items 1 and 2): no file takeover through links planted by the service user
in the log or pid directory, nested log directories made like mkdir -p and
checked, log rotation (mv + SIGHUP) after dropping root, and a daemon that
keeps none of its launcher's descriptors.

The takeover tests need root (they switch to `nobody`); they skip, saying
so, when not run as root."""

import errno
import os
import re
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.client import ChatClient
from harness.procfs import children, comm, free_port, is_gone, is_listening, wait_gone
from harness.server import SERVER, Server, STARTED
from harness.timescale import wait_until

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: the attack is by the --user account on root's files")


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this system")


def as_nobody(argv):
    """Run argv as nobody (the service user planting links); check it worked."""
    pw = nobody()

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    subprocess.run(argv, check=True, timeout=10, stdin=subprocess.DEVNULL,
                   preexec_fn=drop)


def today_log(logdir):
    return Path(logdir) / time.strftime("forkchatd_%Y%m%d.log")


@pytest.fixture
def world_dir():
    """A root-owned 0755 scratch directory (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="forkchat-files-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Daemons:
    """forkchatd daemons started by a test, stopped by pid at teardown."""

    def __init__(self):
        self.pids = []

    def run(self, args, timeout=20, **kw):
        """Start the launcher; return (rc, stderr).  The daemon's pid, if the
        launcher succeeded, is read from --pid-file and recorded."""
        cmd = [str(SERVER), "-p", str(free_port())] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, **kw)
        if p.returncode == 0 and "--pid-file" in cmd:
            pidfile = Path(cmd[cmd.index("--pid-file") + 1])
            pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                                 5.0, what="pid file"))
            STARTED.add(pid)
            self.pids.append(pid)
        return p.returncode, p.stderr.decode(errors="replace")

    def stop(self, pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if wait_gone({pid: None}, 10.0):
            os.kill(pid, signal.SIGKILL)
            wait_gone({pid: None}, 5.0)

    def stop_all(self):
        for pid in self.pids:
            self.stop(pid)


@pytest.fixture
def daemons():
    d = Daemons()
    yield d
    d.stop_all()


def snapshot(path):
    st = os.lstat(str(path))
    return (Path(path).read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink)


# ---- item 1: no takeover through the log and pid files ---------------------
@needs_root
def test_issue_symlink_attack_leaves_victims_untouched(world_dir, daemons):
    """The issue's reproduction: the service user replaces the next log file
    and the pid file with links to root's files between two starts."""
    pw = nobody()
    D = world_dir
    (D / "run").mkdir()
    os.chown(str(D / "run"), pw.pw_uid, pw.pw_gid)
    args = ["-l", D / "logs", "--pid-file", D / "run" / "f.pid", "--user", "nobody"]
    rc, err = daemons.run(args)
    assert rc == 0, err
    daemons.stop(daemons.pids[-1])
    assert (D / "logs").stat().st_uid == pw.pw_uid   # the service user's dir

    (D / "victim_log").write_text("secret\n")
    (D / "victim_log").chmod(0o600)
    (D / "victim_pid").write_text("data\n")
    before = {v: snapshot(D / v) for v in ("victim_log", "victim_pid")}
    log = today_log(D / "logs")
    as_nobody(["ln", "-sf", str(D / "victim_log"), str(log)])
    as_nobody(["ln", "-sf", str(D / "victim_pid"), str(D / "run" / "f.pid")])

    rc, err = daemons.run(args)
    assert rc == 1, err
    assert err == "forkchatd: %s is a symbolic link: refusing to log there\n" % log, err
    assert {v: snapshot(D / v) for v in before} == before

    # the pid file's link alone (a fresh log): refused the same way
    log.unlink()
    rc, err = daemons.run(args)
    assert rc == 1, err
    assert err.endswith("forkchatd: %s is a symbolic link: refusing to write the pid file\n"
                        % (D / "run" / "f.pid")), err
    assert {v: snapshot(D / v) for v in before} == before
    assert os.path.islink(str(D / "run" / "f.pid"))


@needs_root
def test_hard_link_to_root_file_refused(world_dir, daemons):
    """Where protected_hardlinks is off the service user could hard-link a
    root file in place of the pid file: a file with 2 links is refused."""
    pw = nobody()
    D = world_dir
    (D / "run").mkdir()
    os.chown(str(D / "run"), pw.pw_uid, pw.pw_gid)
    (D / "victim").write_text("data\n")
    os.link(str(D / "victim"), str(D / "run" / "f.pid"))   # as root: sysctl off
    before = snapshot(D / "victim")
    rc, err = daemons.run(["-l", D / "logs", "--pid-file", D / "run" / "f.pid",
                           "--user", "nobody"])
    assert rc == 1, err
    assert "f.pid has 2 hard links: refusing to write the pid file" in err, err
    assert snapshot(D / "victim") == before


@needs_root
def test_log_dir_link_made_by_service_user_refused(world_dir, daemons):
    """The service user owns the directory holding the log dir and swaps the
    log dir for a link to a root directory: root must not create files there."""
    pw = nobody()
    D = world_dir
    (D / "svc").mkdir()
    (D / "etc").mkdir()
    os.chown(str(D / "svc"), pw.pw_uid, pw.pw_gid)
    as_nobody(["ln", "-s", str(D / "etc"), str(D / "svc" / "logs")])
    rc, err = daemons.run(["-f", "-l", D / "svc" / "logs", "--user", "nobody"], timeout=10)
    assert rc == 1, err
    assert "is a symbolic link owned by uid %d: refusing to log there" % pw.pw_uid in err, err
    assert list((D / "etc").iterdir()) == []


@needs_root
def test_log_dir_of_another_user_refused(world_dir, daemons):
    D = world_dir
    (D / "logs").mkdir()
    os.chown(str(D / "logs"), 54321, 54321)
    rc, err = daemons.run(["-f", "-l", D / "logs"], timeout=10)
    assert rc == 1, err
    assert err == ("forkchatd: log directory %s is owned by uid 54321 (only root or the "
                   "service user may own it): refusing to log there\n" % (D / "logs")), err
    assert list((D / "logs").iterdir()) == []


def test_world_writable_parent_refused(tmp_path, daemons):
    """Anyone could replace what is below a world-writable, non-sticky dir."""
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    rc, err = daemons.run(["-f", "-l", tmp_path / "open" / "logs"], timeout=10)
    assert rc == 1, err
    assert "directory %s is world-writable and not sticky (mode 0777)" % (
        tmp_path / "open") in err, err
    assert not (tmp_path / "open" / "logs").exists()


def rotate_and_check(srv, logdir):
    """mv the log away, SIGHUP: the new file gets the later lines."""
    old = today_log(logdir)
    wait_until(lambda: old.exists() and "listening on" in old.read_text(), 5.0,
               what="listening on in %s" % old)
    rotated = old.with_name(old.name + ".1")
    old.rename(rotated)
    srv.signal(signal.SIGHUP)
    wait_until(lambda: old.exists() and "log reopened (SIGHUP)" in old.read_text(),
               5.0, what="a new log file after SIGHUP (old one: %r)" % rotated.read_text()[-300:])
    c = ChatClient(srv.port).register("afterhup")
    try:
        wait_until(lambda: "nick=afterhup" in old.read_text(), 5.0, what="later lines in the new file")
    finally:
        c.close()
    assert "afterhup" not in rotated.read_text()
    assert "log reopen:" not in rotated.read_text()
    return old


@pytest.fixture
def user_server(world_dir):
    servers = []

    def start(args):
        srv = Server(world_dir / ("s%d" % len(servers)), args=args)
        srv.workdir.chmod(0o755)
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        assert not srv.stop()


@needs_root
def test_nested_log_dir_created_and_rotation_with_user(user_server, world_dir):
    """-l D/none/a/b: every level made like mkdir -p, 0755; the levels above
    the log dir stay root's, the log dir is the service user's, so the
    documented mv + kill -HUP rotation works after dropping root."""
    pw = nobody()
    top = world_dir / "none"
    srv = user_server(["--user", "nobody", "-l", str(top / "a" / "b")])
    log = today_log(top / "a" / "b")     # it listens before it opens the log
    wait_until(lambda: log.exists() and "running as user" in log.read_text(), 5.0,
               what="the log in the nested dir")
    for d, uid in ((top, 0), (top / "a", 0), (top / "a" / "b", pw.pw_uid)):
        st = d.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, uid), d
    new = rotate_and_check(srv, top / "a" / "b")
    assert new.stat().st_uid == pw.pw_uid
    assert "not writable" not in new.read_text()


@needs_root
def test_rotation_with_user_in_documented_layout(user_server, world_dir):
    """The layout README and forkchatd(8) describe: a root-owned parent and a
    log dir that belongs to the service user."""
    pw = nobody()
    logs = world_dir / "var-log-forkchat"
    logs.mkdir()
    os.chown(str(logs), pw.pw_uid, pw.pw_gid)
    srv = user_server(["--user", "nobody", "-l", str(logs)])
    rotate_and_check(srv, logs)


@needs_root
def test_layout_that_breaks_rotation_is_named_at_startup(world_dir, daemons):
    """A root-owned log dir: the service user cannot create tomorrow's file
    or the one after a rotation; the launcher says so on stderr."""
    logs = world_dir / "logs"
    logs.mkdir()
    rc, err = daemons.run(["-l", logs, "--pid-file", world_dir / "f.pid", "--user", "nobody"])
    assert rc == 0, err
    assert ("forkchatd: warning: log directory %s is not writable by nobody: the "
            "roll-over at midnight and the reopen after mv + SIGHUP will fail" % logs) in err, err


# ---- item 2: the daemon keeps none of the launcher's descriptors -----------
def fd_targets(pid):
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def test_daemon_does_not_hold_the_launchers_fds(tmp_path, daemons):
    """The issue's `{ forkchatd ... 3>&1; } | cat` returns, and the daemon
    holds only /dev/null (0-2), the listening socket, the log, its own
    pipe and its spawner's socket, none of the fds it was started with."""
    port = free_port()
    marker = tmp_path / "launcher-only"
    marker.write_text("x")
    pidfile = tmp_path / "f.pid"
    cmd = "exec 7<%s; { %s -p %d -l %s --pid-file %s 3>&1; } | cat" % (
        marker, SERVER, port, tmp_path / "logs", pidfile)
    p = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=20)
        pid = int(pidfile.read_text())
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if pidfile.exists():
            daemons.pids.append(int(pidfile.read_text()))
            STARTED.add(int(pidfile.read_text()))
    assert p.returncode == 0, err
    wait_until(lambda: is_listening(port), 5.0, what="daemon listening")
    # the name helper keyed the lobby at startup (its log line comes before
    # "limits"): its socket goes with it, 5 idle seconds later
    # (core/server/names.c)
    log = today_log(tmp_path / "logs")
    wait_until(lambda: log.exists() and " info limits " in log.read_text(), 10.0,
               what="start-up to end")
    assert " name helper started pid=" in log.read_text()
    wait_until(lambda: "forkchatd-names" not in [comm(c) for c in children(pid)], 20.0,
               0.1, what="the name helper to exit")
    fds = fd_targets(pid)
    assert [fds[i] for i in (0, 1, 2)] == ["/dev/null"] * 3, fds
    rest = sorted(t.split(":")[0] if ":" in t else t for f, t in fds.items() if f > 2)
    # listening socket, the shared pipe's two ends, the log, and the
    # socketpair to the spawner (core/server/spawner.c)
    assert rest == sorted(["socket", "socket", "pipe", "pipe",
                           str(today_log(tmp_path / "logs"))]), fds
    assert str(marker) not in fds.values()
    daemons.stop(pid)
    assert is_gone(pid)


# ---- item 7: the log under a full disk, and at shutdown --------------------
LINE_RX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\d+\] (info|warn|error) \S")


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs mounted under tmp_path, unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a filesystem that really fills up)")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mnt)],
                   check=True, timeout=10)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], timeout=10)


def fill(path):
    """Write path until the filesystem is full, to the last byte."""
    with open(str(path), "wb", buffering=0) as f:
        for size in (65536, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e


def test_startup_on_a_full_filesystem_exits_1(small_fs, tmp_path, daemons):
    fill(small_fs / "filler")
    rc, err = daemons.run(["-l", small_fs / "logs", "--pid-file", tmp_path / "f.pid"])
    assert rc == 1, err
    # (the line that could not be written is also copied to stderr)
    assert err.endswith("forkchatd: cannot write the log %s: No space left on device\n" % (
        today_log(small_fs / "logs"))), err
    assert not (tmp_path / "f.pid").exists()


def test_full_disk_loses_whole_lines_and_says_how_many(small_fs, server_factory):
    """Lines that do not fit are lost whole (a line cut at the end of the
    last page is cut back off), counted, and once there is room again one
    line says how many; no line is glued onto another."""
    logs = small_fs / "logs"
    srv = server_factory(["-l", str(logs)])
    log = today_log(logs)
    wait_until(lambda: log.exists() and "listening on" in log.read_text(), 5.0,
               what="listening on")
    fill(small_fs / "filler")
    clients = []
    try:
        for i in range(40):     # connect + register lines, ~100 bytes each
            clients.append(ChatClient(srv.port).register("full%02d" % i))
        lost_from = len(log.read_bytes())
        (small_fs / "filler").unlink()
        clients.append(ChatClient(srv.port).register("roomagain"))
        wait_until(lambda: "nick=roomagain" in log.read_text(), 5.0, what="a line after the space came back")
    finally:
        for c in clients:
            c.close()
    text = log.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    bad = [line for line in lines if not LINE_RX.match(line)]
    assert not bad, bad                                  # no fragment, no glued line
    notes = [line for line in lines if " warn log: " in line]
    # A shorter line can still fit in the last page after a longer one was
    # lost (and cut back off): then that line goes out after a note, and
    # the lines lost after it get a note of their own.  So one note or
    # more, and their counts add up.
    assert notes, lines[-5:]
    lost = 0
    for note in notes:
        m = re.search(r" warn log: (\d+) lines? lost \((No space left on device|Input/output error)\)$",
                      note)
        assert m, note
        lost += int(m.group(1))
    # the 40 clients made 80 lines (connect + register): the ones written
    # and the ones counted as lost add up exactly
    written = sum(1 for line in lines if re.search(r" register slot=\d+ nick=full\d\d$", line))
    written += sum(1 for line in lines if " connect slot=" in line) - 1   # not roomagain's
    assert lost > 0 and lost + written == 80, (lost, written)
    # the note comes right after the space came back, before the new lines
    assert len(text.encode()) > lost_from
    assert text.index(notes[-1]) >= lost_from - 1
    assert text.index(notes[-1]) < text.index("nick=roomagain")


def test_graceful_shutdown_logs_each_client_and_adds_up(server_factory):
    """SIGTERM with registered and unregistered clients: one disconnect line
    with reason=shutdown each, nothing after BYE SHUTDOWN, and the last stats
    line adds up (no users without clients)."""
    srv = server_factory()
    named = [ChatClient(srv.port).register("shut%d" % i) for i in range(4)]
    anon = [ChatClient(srv.port) for _ in range(2)]
    named[0].send("/add den")
    named[0].expect_exact("OK JOIN den")
    named[1].send("/join den")
    named[1].expect_exact("OK JOIN den")
    named[0].expect(r"^JOIN den shut1")
    srv.wait_log(r"(?s)(connect slot.*){6}")
    try:
        srv.signal(signal.SIGTERM)
        for c in named + anon:
            c.expect_exact("BYE SHUTDOWN server is shutting down")
            assert c.expect_closed() == []      # no PART of the others after it
    finally:
        for c in named + anon:
            c.close()
    assert not srv.stop()
    assert srv.returncode == 0
    log = srv.log()
    downs = re.findall(r"disconnect slot=\d+ nick=(\S+) reason=(\S+)", log)
    assert sorted(downs) == sorted([("shut%d" % i, "shutdown") for i in range(4)] +
                                   [("-", "shutdown")] * 2), downs
    stats = re.findall(r"stats uptime_s=\d+ clients=(\d+) users=(\d+) rooms=(\d+)", log)
    assert stats[-1] == ("0", "0", "1"), stats
