# SPDX-License-Identifier: BSD-3-Clause
"""The real client build/forkchat: under a pty (pexpect) and with stdin from
a pipe.  Checks the nickname prompt, chat both ways with a raw-socket peer,
every command, colour on/off, control-character stripping, and exit status
and process cleanup on /quit and when the server goes away."""

import io
import os
import signal
import socket
import subprocess
import threading

import pexpect
import pytest

from harness.procfs import children, wait_gone
from harness.server import CLIENT
from harness.timescale import scaled, wait_until


def client_env(color):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    if not color:
        env["NO_COLOR"] = "1"
    return env


class Pty:
    """build/forkchat under a pty; self.out collects every byte it printed."""

    def __init__(self, port, color=False, args=()):
        self.out = io.BytesIO()
        self.child = pexpect.spawn(str(CLIENT), list(args) + ["127.0.0.1", str(port)],
                                   env=client_env(color), timeout=scaled(5))
        self.child.logfile_read = self.out

    def expect(self, pattern):
        """Wait for a regex (str) in the output."""
        self.child.expect(pattern.encode() if isinstance(pattern, str) else pattern)

    def line(self, text):
        self.child.sendline(text.encode())

    def output(self):
        return self.out.getvalue()

    def kids(self):
        return children(self.child.pid)

    def wait_exit(self, timeout=5):
        self.child.expect(pexpect.EOF, timeout=scaled(timeout))
        self.child.close()
        return self.child.exitstatus, self.child.signalstatus

    def close(self):
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def pty(server):
    made = []

    def make(color=False, args=(), port=None):
        p = Pty(port or server.port, color, args)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def registered(pty, user, color=False):
    """bob (raw socket) and alice (the real client), both in the lobby."""
    bob = user("bob")
    alice = pty(color)
    alice.expect(r"(?i)nick")
    alice.line("alice")
    bob.expect_exact("JOIN lobby alice")
    alice.expect(r"alice")
    return alice, bob


def test_client_prompts_for_nickname_and_chats_both_ways(pty, user):
    alice, bob = registered(pty, user)
    bob.send("hello alice")
    alice.expect(r"bob.*hello alice")
    alice.line("hi bob")
    bob.expect_next_exact("MSG lobby alice hi bob")
    alice.line("안녕 밥")
    bob.expect_next_exact("MSG lobby alice 안녕 밥")
    alice.line("//shrug")
    bob.expect_next_exact("MSG lobby alice /shrug")


def test_client_room_commands(pty, user):
    alice, bob = registered(pty, user)
    alice.line("/add rust")
    alice.expect(r"rust")
    bob.expect_next_exact("PART lobby alice left")
    bob.send("/join rust")
    bob.expect_next_exact("OK JOIN rust")
    alice.expect(r"bob")
    alice.line("/list")
    alice.expect(r"lobby(.|\n)*rust")
    alice.line("/users")
    alice.expect(r"alice(.|\n)*bob|bob(.|\n)*alice")
    alice.line("/leave")
    alice.expect(r"lobby")
    bob.expect_next_exact("PART rust alice left")
    alice.line("/join rust")
    bob.expect_next_exact("JOIN rust alice")
    alice.line("/leave")
    bob.expect_next_exact("PART rust alice left")
    alice.line("/rm rust")
    bob.expect_next_exact("REMOVED rust alice")
    alice.line("/users all")
    alice.expect(r"bob")
    alice.line("/help")
    alice.expect(r"/whisper")
    alice.line("/bogus")
    alice.expect(r"404|(?i:unknown)")


def test_client_whispers_both_ways(pty, user):
    alice, bob = registered(pty, user)
    alice.line("/whisper bob psst")
    bob.expect_next_exact("WHISPER alice psst")
    alice.line("/w bob again")
    bob.expect_next_exact("WHISPER alice again")
    bob.send("/w alice secret reply")
    bob.expect_next_exact("OK WHISPER alice")
    alice.expect(r"bob(.|\n)*secret reply")


def test_client_no_color_env_means_no_escape_bytes(pty, user):
    alice, bob = registered(pty, user, color=False)
    bob.send("plain text please")
    alice.expect(r"plain text please")
    alice.line("/bogus")
    alice.expect(r"404|(?i:unknown)")
    alice.line("/list")
    alice.expect(r"lobby")
    assert b"\x1b" not in alice.output(), alice.output()


def test_client_colours_on_a_tty_without_no_color(pty, user):
    alice, bob = registered(pty, user, color=True)
    bob.send("colourful")
    alice.expect(r"colourful")
    assert b"\x1b[" in alice.output(), alice.output()


def test_server_rejects_escape_sequences_so_client_never_sees_them(pty, user):
    alice, bob = registered(pty, user)
    bob.send_raw(b"\x1b[2J\x1b]0;pwned\x07boom\n")
    bob.expect_next(r"ERR 403 CONTROL_CHAR( .*)?")
    bob.send("after")
    alice.expect(r"after")
    assert b"boom" not in alice.output() and b"\x1b" not in alice.output()


def fake_server(script):
    """A one-shot server on a free port that sends `script` (bytes) after
    the client's first line.  Returns (port, thread)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def run():
        conn, _ = srv.accept()
        conn.settimeout(scaled(5))
        conn.sendall(b"HELLO forkchatd/1.0 fake server\n")
        buf = b""
        while b"\n" not in buf:
            buf += conn.recv(100)
        conn.sendall(script)
        try:
            while conn.recv(100):
                pass
        except OSError:
            pass
        conn.close()
        srv.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return port, t


def test_client_strips_control_characters_from_server_lines(pty):
    evil = (b"OK NICK alice\nOK JOIN lobby\n"
            b"MSG lobby mallory \x1b[2J\x1b]0;title\x07clear-screen\x08\x08 \xc2\x9b31m c1 \x7fdel\n"
            b"WHISPER mallory \x1b[31mred\x1b[0m-whisper\n"
            b"MSG lobby mallory bad-utf8 \xff\xfe done\n"
            b"MSG lobby mallory last-line\n")
    port, t = fake_server(evil)
    alice = pty(color=False, port=port)
    alice.expect(r"(?i)nick")
    alice.line("alice")
    alice.expect(r"last-line")
    out = alice.output()
    for text in (b"clear-screen", b"red", b"-whisper", b"done"):
        assert text in out, (text, out)
    for bad in (b"\x1b", b"\x07", b"\x08", b"\x7f", b"\xc2\x9b", b"\xff"):
        assert bad not in out, (bad, out)


def test_client_exits_0_on_quit_and_leaves_no_child(pty, user):
    alice, bob = registered(pty, user)
    kids = wait_until(lambda: alice.kids(), 3, what="client's keyboard child")
    alice.line("/quit bye all")
    bob.expect_next_exact("PART lobby alice quit bye all")
    status, sig = alice.wait_exit()
    assert (status, sig) == (0, None)
    assert not wait_gone(kids, 3), "keyboard child survived: %r" % kids


def test_client_exits_nonzero_when_server_shuts_down(server, pty, user):
    alice, bob = registered(pty, user)
    kids = wait_until(lambda: alice.kids(), 3, what="client's keyboard child")
    leftover = server.stop()
    assert not leftover
    status, sig = alice.wait_exit()
    assert status not in (0, None), (status, sig)
    assert status == 3, "client -h documents 3 for a server BYE; got %r" % status
    assert not wait_gone(kids, 3), "keyboard child survived: %r" % kids


def test_client_exits_nonzero_when_connection_is_lost(server, pty, user):
    alice, bob = registered(pty, user)
    kids = wait_until(lambda: alice.kids(), 3, what="client's keyboard child")
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(5)
    status, sig = alice.wait_exit()
    assert status == 1, (status, sig)
    assert not wait_gone(kids, 3), "keyboard child survived: %r" % kids


def test_client_with_nick_option_skips_prompt(pty, user):
    bob = user("bob")
    alice = pty(args=["-n", "alice"])
    bob.expect_exact("JOIN lobby alice")
    alice.line("hi from -n")
    bob.expect_next_exact("MSG lobby alice hi from -n")


def test_client_with_stdin_from_pipe(server, user):
    bob = user("bob")
    r = subprocess.run([str(CLIENT), "127.0.0.1", str(server.port)],
                       input=b"alice\nhello\n/quit\n", capture_output=True, timeout=scaled(10),
                       env=client_env(color=True))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    bob.expect_next_exact("JOIN lobby alice")
    bob.expect_next_exact("MSG lobby alice hello")
    bob.expect_next_exact("PART lobby alice quit")
    assert b"\x1b" not in r.stdout + r.stderr, "colour on a pipe"


def test_client_pipe_with_taken_nick_option_exits_2(server, user):
    user("alice")
    r = subprocess.run([str(CLIENT), "-n", "alice", "127.0.0.1", str(server.port)],
                       input=b"hello\n", capture_output=True, timeout=scaled(10),
                       env=client_env(color=False))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


def test_client_connection_refused_exits_1(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                         # nothing listens there now
    r = subprocess.run([str(CLIENT), "127.0.0.1", str(port)], input=b"", capture_output=True,
                       timeout=scaled(10), env=client_env(color=False))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip()


def test_client_whisper_without_text_is_not_echoed(pty, user):
    """'/w bob' and '/w' are left to the server's usage error: no own
    whisper line is drawn for them; '/w bob text' is."""
    alice, bob = registered(pty, user)
    alice.line("/w bob")
    alice.expect(r"(?i:usage)")
    alice.line("/w")
    alice.expect(r"(?i:usage)(.|\n)*(?i:usage)")
    assert b"whisper to" not in alice.output()
    alice.line("/w bob now with text")
    bob.expect_next_exact("WHISPER alice now with text")
    alice.expect(r"whisper to bob\S* <alice> now with text")


def test_client_own_lines_name_the_lobby_after_the_room_is_removed(pty, user):
    alice, bob = registered(pty, user)
    bob.send("/add den")
    bob.expect_next_exact("OK ADD den")
    bob.expect_next_exact("OK JOIN den")
    alice.line("/join den")
    bob.expect_next_exact("JOIN den alice")
    alice.line("in den")
    alice.expect(r"den\S* <alice> in den")
    bob.send("/rm den")
    alice.expect(r"REMOVED|removed")
    alice.line("back home")
    alice.expect(r"lobby\S* <alice> back home")


def test_client_pipe_retries_a_refused_nickname_with_the_next_line(server, user):
    """stdin from a pipe, no -n: a refused nickname takes the next line as
    the next attempt (nick_refused() without -n); an empty line and a CRLF
    line end are taken too."""
    bob = user("bob")
    r = subprocess.run([str(CLIENT), "127.0.0.1", str(server.port)],
                       input=b"bob\n\nalice\r\nhello\n/quit\n", capture_output=True,
                       timeout=scaled(10), env=client_env(color=False))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    bob.expect_next_exact("JOIN lobby alice")
    bob.expect_next_exact("MSG lobby alice hello")
    bob.expect_next_exact("PART lobby alice quit")
