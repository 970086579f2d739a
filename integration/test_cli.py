# SPDX-License-Identifier: BSD-3-Clause
"""Command line (SERVER-CLI.md): usage errors exit 2 with a message, -h and
-V exit 0."""

import re
import subprocess

import pytest

from harness.procfs import free_port
from harness.server import SERVER


def run(args, tmp_path, timeout=10):
    """Run forkchatd in the foreground; kill it if it unexpectedly starts."""
    port = free_port()
    cmd = [str(SERVER), "-f", "-l", str(tmp_path / "logs")] + [
        a.replace("PORT", str(port)) for a in args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("forkchatd %r did not exit (it is serving?)" % args)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.parametrize("args", [
    ["-p", "PORT", "--max-line", "5"],
    ["-p", "PORT", "--max-line", "15"],
    ["-p", "PORT", "--max-line", "4001"],
    ["-p", "PORT", "--max-line", "abc"],
    ["--port", "abc"],
    ["--port", "70000"],
    ["--port", ""],
    ["-p", "PORT", "-m", "0"],
    ["-p", "PORT", "-m", "-3"],
    ["-p", "PORT", "--register-timeout", "soon"],
    ["-p", "PORT", "--max-backlog", "lots"],
    ["-p", "PORT", "--no-such-option"],
    ["-p", "PORT", "extra-argument"],
    ["-p"],
])
def test_bad_option_exits_2_with_message(tmp_path, args):
    rc, out, err = run(args, tmp_path)
    assert rc == 2, (args, rc, out, err)
    assert err.strip(), "no message on stderr for %r" % args
    assert err.startswith("forkchatd: ") or "usage" in err.lower(), err


def test_help_prints_usage_and_exits_0(tmp_path):
    rc, out, err = run(["-h"], tmp_path)
    assert rc == 0
    text = out + err
    assert re.search(r"(?i)usage", text), text
    for opt in ("--port", "--max-clients", "--max-line", "--max-backlog",
                "--register-timeout", "--log-dir", "--pid-file", "--foreground"):
        assert opt in text, "usage does not mention %s" % opt
    rc2, out2, err2 = run(["--help"], tmp_path)
    assert rc2 == 0 and out2 + err2 == text


def test_version_prints_version_and_exits_0(tmp_path, connect):
    rc, out, err = run(["-V"], tmp_path)
    assert rc == 0
    m = re.search(r"\b(\d+\.\d+\S*)", out + err)
    assert m, out + err
    # the greeting carries the same version
    c = connect()
    assert c.hello.startswith("HELLO forkchatd/%s " % m.group(1)), (c.hello, out)
    rc2, out2, err2 = run(["--version"], tmp_path)
    assert rc2 == 0 and out2 + err2 == out + err


def test_max_line_bounds_16_and_4000_are_accepted(server_factory, connect):
    for n in ("16", "4000"):
        srv = server_factory(["--max-line", n], name="ml" + n)
        c = connect(srv.port)
        c.register("alice")


@pytest.mark.parametrize("addr", ["999.1.1.1", "1.2.3", "::1", "bad_name!", ""])
def test_bad_bind_address_is_a_usage_error_naming_the_option(tmp_path, addr):
    """Issue 15: -b with an impossible address exits 2 and names -b (it used
    to exit 1 with a bare "Invalid argument").  No name here needs DNS."""
    rc, out, err = run(["-p", "PORT", "-b", addr], tmp_path)
    assert rc == 2, (addr, rc, err)
    assert err.startswith("forkchatd: invalid value for -b: '%s'" % addr), err


def test_bind_accepts_a_host_name(server_factory, connect):
    """-b localhost is resolved at startup (from /etc/hosts) to 127.0.0.1."""
    srv = server_factory(["-b", "localhost"])
    c = connect(srv.port)
    c.register("alice")
    srv.wait_log(r"listening on 127\.0\.0\.1:%d " % srv.port)
