# SPDX-License-Identifier: BSD-3-Clause
"""Session basics: greeting, registration, /help, /quit, disconnect notices,
commands before registration and unknown commands (PROTOCOL.md "Session")."""

import re
import time

from harness.client import ChatClient
from harness.wakeups import Waits, ended_on_tick, last_tick_wait


def test_hello_is_first_line_with_version(connect):
    c = connect(hello=False)
    line = c.readline()
    assert re.fullmatch(r"HELLO forkchatd/\d+\.\d+\S* .+", line), line


def test_register_replies_ok_nick_then_ok_join_lobby(connect):
    c = connect()
    c.send("alice")
    assert c.readline() == "OK NICK alice"
    assert c.readline() == "OK JOIN lobby"


def test_lobby_sees_join_when_user_registers(user):
    alice = user("alice")
    user("bob")
    alice.expect_next_exact("JOIN lobby bob")


def test_commands_before_registration_get_410(connect):
    c = connect()
    for cmd in ["/list", "/users", "/users all", "/add rust", "/join lobby",
                "/leave", "/rm rust", "/whisper bob hi", "/w bob hi", "/nosuchcmd"]:
        c.send(cmd)
        c.expect_next(r"ERR 410 NOT_REGISTERED( .*)?")
    # the connection is still open and can register afterwards
    c.register("alice")
    # nothing those commands did may be visible: no room was created
    assert set(c.rooms()) == {"lobby"}


def test_help_works_before_and_after_registration(connect):
    c = connect()
    entries, count = c.listing("/help", "HELP")
    assert entries, "no HELP lines before registration"
    assert count is None
    assert all(re.fullmatch(r"HELP( .*)?", e) for e in entries)
    c.register("alice")
    entries2, _ = c.listing("/help", "HELP")
    assert entries2
    text = "\n".join(entries2)
    for word in ("/add", "/rm", "/join", "/leave", "/list", "/users", "/whisper", "/quit"):
        assert word in text, "help does not mention %s: %r" % (word, entries2)


def test_quit_before_registration_says_bye_and_closes(connect):
    c = connect()
    c.send("/quit")
    got = c.expect_closed()
    assert got and re.fullmatch(r"BYE QUIT( .*)?", got[0]), got


def test_quit_with_text_tells_room_and_logs(server, user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    got = bob.quit("see you")
    assert re.fullmatch(r"BYE QUIT .*", got[0]), got
    alice.expect_next_exact("PART lobby bob quit see you")
    server.wait_log(r"disconnect slot=\d+ nick=bob reason=quit text=\"see you\"")


def test_quit_closes_the_connection_promptly(server, tmp_path):
    """After BYE QUIT the server must close the socket at once, every time:
    the session child finds the EOF of its pipe on a signal (the parent's
    SIGUSR1 after the close, or the SIGUSR2 that brought the BYE), never on
    its 2 s safety tick.  Judged by what woke the child (strace on its
    sigtimedwait, harness/wakeups.py), not by a wall-clock bound: 0.5 s
    raced the machine's load (issue 16, item 8).  The seconds from BYE to
    EOF are reported, and bounded only against a hang."""
    late = []
    for i in range(30):
        c = ChatClient(server.port)
        c.register("q%d" % i)
        waits = Waits(server.child_for(c), tmp_path / ("q%d.trace" % i))
        try:
            c.send("/quit")
            c.expect_next(r"BYE QUIT( .*)?")
            t0 = time.monotonic()
            c.expect_closed(timeout=5)
            dt = time.monotonic() - t0
        finally:
            calls = waits.stop(detach=False)  # strace ends with the child
            c.close()
        if ended_on_tick(calls):
            late.append((i, round(dt, 2), last_tick_wait(calls)))
        if len(late) >= 3:
            break
    assert not late, "EOF found on the tick after BYE QUIT (cycle, seconds, wait): %r" % late


def test_close_without_quit_is_part_disconnected(server, user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    bob.close()
    alice.expect_next_exact("PART lobby bob disconnected")
    server.wait_log(r"disconnect slot=\d+ nick=bob reason=eof")


def test_unknown_command_is_404_and_changes_nothing(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    for cmd in ["/frobnicate", "/nick carol", "/addroom x", "/", "/!"]:
        bob.send(cmd)
        bob.expect_err(404)
    # nothing reached alice: the next thing she sees is bob's marker
    assert bob.sync(alice) == []


def test_slash_space_is_not_a_command(user):
    # "/ add x": the command name is empty, so it is no known command
    alice = user("alice")
    alice.send("/ add x")
    alice.expect_err(404)
    assert set(alice.rooms()) == {"lobby"}


def test_command_names_are_case_insensitive(user):
    alice = user("alice")
    alice.send("/ADD Rust")
    alice.expect_next_exact("OK ADD Rust")
    alice.expect_next_exact("OK JOIN Rust")
    alice.send("/Leave")
    alice.expect_next_exact("OK JOIN lobby")
    entries, count = alice.listing("/LIST", "LIST")
    assert count == 2 and entries[0] == "ROOM lobby 1 -", entries


def test_failed_nick_attempts_leave_connection_open(connect):
    c = connect()
    c.send("bad nick")
    c.expect_err(420)
    c.send("x" * 17)
    c.expect_err(421)
    c.register("good")


def test_log_records_connect_and_register(server, connect):
    c = connect()
    c.register("alice")
    server.wait_log(r"connect slot=\d+ pid=\d+ peer=127\.0\.0\.1:%d\b" % c.local_port)
    server.wait_log(r"register slot=\d+ nick=alice")
    server.wait_log(r"listening on 127\.0\.0\.1:%d" % server.port)
    # every log line has the documented shape
    for line in server.log().splitlines():
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\d+\] (info|warn|error) ", line), line
