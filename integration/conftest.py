# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures for the forkchat end-to-end tests.

- server:          a fresh `build/forkchatd -f -p PORT -l <tmp>/logs` per test
- server_factory:  the same with extra options (e.g. ["-m", "5"]) or daemon mode
- connect:         open a raw ChatClient to the test's server (closed at teardown)
- user:            connect + register(nick)

Teardown (also after a failing test) closes every client, sends SIGTERM to
the server by PID, waits (bounded), falls back to SIGKILL, and asserts that
no child of the server survived.
"""

import os
import shutil
import signal
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "lib"))     # the harness package

from harness.client import ChatClient  # noqa: E402
from harness.procfs import proc_stat  # noqa: E402
from harness.server import SERVER, STARTED, Server  # noqa: E402
from harness.timescale import SCALE  # noqa: E402

# A skip is never a pass: skipped tests not in ci/skips.allow fail the run.
pytest_plugins = ["skipgate"]


def pytest_configure(config):
    """A base temp dir of this run's own.  pytest's default,
    /tmp/pytest-of-USER/pytest-N, keeps only the 3 newest N: a second pytest
    run started meanwhile by the same user deletes the log directories of
    a running one (seen as a test's log file vanishing).  --basetemp wins."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="forkchat-pytest-")
        config._forkchat_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    """Remove our base temp dir after a run that passed; keep it otherwise."""
    path = getattr(config, "_forkchat_basetemp", None)
    if path is None:
        return
    if getattr(config, "_forkchat_failed", True):
        sys.stderr.write("forkchat: test files kept in %s\n" % path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def pytest_report_header(config):
    return "forkchatd: %s; time scale x%g (harness/timescale.py)" % (SERVER, SCALE)


def pytest_collection_modifyitems(config, items):
    """pytest-timeout's per-test limit (ini `timeout`, or a timeout mark)
    grows with the time scale too: a slow build must not hit it."""
    if SCALE == 1.0:
        return
    try:
        default = float(config.getini("timeout") or 0)
    except ValueError:
        default = 0.0
    for item in items:
        m = item.get_closest_marker("timeout")
        base = default
        if m is not None:
            base = float(m.args[0] if m.args else m.kwargs.get("timeout", default))
        if base > 0:
            item.add_marker(pytest.mark.timeout(base * SCALE), append=False)


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def start(args=(), foreground=True, port=None, name=None, binary=None):
        workdir = tmp_path / (name or "server%d" % len(servers))
        srv = Server(workdir, args=args, foreground=foreground, port=port, binary=binary)
        servers.append(srv)
        return srv.start()

    yield start

    problems = []
    for srv in servers:
        leftover = srv.stop()
        if leftover:
            problems.append("server %d left children behind: %r" % (srv.pid, sorted(leftover)))
        if srv.needed_sigkill:
            problems.append("server %d ignored SIGTERM for 8 s and was SIGKILLed" % srv.pid)
    assert not problems, "; ".join(problems)


@pytest.fixture
def server(server_factory):
    return server_factory()


@pytest.fixture
def connect(request, server_factory):
    """connect(port=None, **kw) -> ChatClient (reads the HELLO line).

    Without a port it connects to the `server` fixture (started on first use),
    so tests that start their own server with server_factory pass port=.
    """
    clients = []

    def make(port=None, **kw):
        if port is None:
            port = request.getfixturevalue("server").port
        c = ChatClient(port, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def user(connect):
    """user(nick, port=None) -> registered ChatClient."""
    def make(nick, port=None, **kw):
        return connect(port, name=nick, **kw).register(nick)
    return make


def pytest_sessionfinish(session, exitstatus):
    """Last resort: SIGKILL any forkchatd we started that is still alive."""
    session.config._forkchat_failed = exitstatus != 0
    for pid in STARTED:
        st = proc_stat(pid)
        if st is None or st[0] == "Z":
            continue
        try:
            if os.readlink("/proc/%d/exe" % pid) == str(SERVER):
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
