# SPDX-License-Identifier: BSD-3-Clause
"""The client's command line (docs/man/forkchat.1): -h and -V exit 0 on
stdout, every usage error exits 2 with a message before anything connects,
a name that does not resolve exits 1.  Nothing here needs a server: a
usage error that connected would show as a different exit status."""

import subprocess

import pytest

from harness.server import CLIENT
from harness.timescale import scaled


def run(args):
    r = subprocess.run([str(CLIENT)] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(10))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_usage_on_stdout_and_exits_0(flag):
    rc, out, err = run([flag])
    assert rc == 0, (rc, out, err)
    assert out.startswith("usage: forkchat [-n NICK]"), out
    assert "Exit status: 0 you quit" in out
    assert err == ""


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_prints_the_version_and_exits_0(flag):
    rc, out, err = run([flag])
    assert rc == 0, (rc, out, err)
    assert out.startswith("forkchat ") and len(out.split()) == 2, out
    assert err == ""


@pytest.mark.parametrize("args", [
    ["-x", "127.0.0.1"],                  # unknown option
    ["--nick"],                           # option without its argument
    [],                                   # no host
    ["127.0.0.1", "1", "2"],              # one argument too many
])
def test_bad_arguments_print_usage_on_stderr_and_exit_2(args):
    rc, out, err = run(args)
    assert rc == 2, (args, rc, out, err)
    assert "usage: forkchat" in err, err
    assert out == ""


def test_bad_color_value_exits_2_naming_the_choices():
    rc, out, err = run(["--color=sometimes", "127.0.0.1", "1"])
    assert rc == 2, (rc, out, err)
    assert err == "forkchat: --color must be auto, always or never\n"


@pytest.mark.parametrize("nick", ["a\nb", "a\rb"])
def test_nickname_with_a_line_break_exits_2(nick):
    rc, out, err = run(["-n", nick, "127.0.0.1", "1"])
    assert rc == 2, (rc, out, err)
    assert err == "forkchat: a nickname cannot hold a newline\n"


@pytest.mark.parametrize("port", ["0", "65536", "http", "80x", "",
                                  "99999999999999999999"])
def test_bad_port_exits_2_before_connecting(port):
    rc, out, err = run(["127.0.0.1", port])
    assert rc == 2, (port, rc, out, err)
    assert err == "forkchat: bad port '%s'\n" % port


def test_unresolvable_host_exits_1_with_the_resolver_message():
    rc, out, err = run(["", "4000"])    # refused by getaddrinfo, no DNS query
    assert rc == 1, (rc, out, err)
    assert err.startswith("forkchat: cannot resolve : "), err
