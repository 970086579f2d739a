# SPDX-License-Identifier: BSD-3-Clause
"""A foreign client: netcat-openbsd can register and chat (DESIGN.md
"a plain nc 127.0.0.1 5101 must be usable")."""

import shutil
import subprocess

import pexpect

from harness.timescale import scaled

NC = shutil.which("nc") or "/usr/bin/nc"


def test_nc_from_a_pipe_registers_chats_and_quits(server, user):
    bob = user("bob")
    r = subprocess.run([NC, "-q", "1", "127.0.0.1", str(server.port)],
                       input=b"carol\nhello from nc\n/users\n/quit\n",
                       capture_output=True, timeout=scaled(15))
    out = r.stdout.decode()
    lines = out.splitlines()
    assert lines[0].startswith("HELLO forkchatd/"), out
    assert lines[1:3] == ["OK NICK carol", "OK JOIN lobby"], out
    assert "USER bob lobby" in lines and "USER carol lobby" in lines, out
    assert lines[-1].startswith("BYE QUIT"), out
    bob.expect_next_exact("JOIN lobby carol")
    bob.expect_next_exact("MSG lobby carol hello from nc")
    bob.expect_next_exact("PART lobby carol quit")


def test_nc_interactive_receives_messages(server, user):
    nc = pexpect.spawn(NC, ["127.0.0.1", str(server.port)], timeout=scaled(5))
    try:
        nc.expect(rb"HELLO forkchatd/\S+ ")
        nc.sendline(b"carol")
        nc.expect(rb"OK NICK carol\r?\n")
        bob = user("bob")
        nc.expect(rb"JOIN lobby bob\r?\n")
        bob.send("hi carol")
        nc.expect(rb"MSG lobby bob hi carol\r?\n")
        nc.sendline(b"/whisper bob from nc")
        nc.expect(rb"OK WHISPER bob")
        bob.expect_next_exact("WHISPER carol from nc")
        nc.sendline(b"/quit")
        nc.expect(rb"BYE QUIT")
    finally:
        nc.terminate(force=True)
