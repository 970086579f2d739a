# SPDX-License-Identifier: BSD-3-Clause
"""Line framing (PROTOCOL.md "Framing"): empty lines, CRLF, over-long lines,
lines split across many TCP segments, several lines in one segment, the
//text escape, invalid UTF-8 and control characters in messages."""

import socket
import time

import pytest


@pytest.fixture
def pair(user):
    """alice and bob registered in the lobby, alice's JOIN notice consumed."""
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    return alice, bob


@pytest.mark.parametrize("line", [b"", b" ", b"    ", b"\r"])
def test_empty_or_blank_line_is_400(pair, line):
    alice, bob = pair
    bob.send_raw(line + b"\n")
    bob.expect_next(r"ERR 400 EMPTY_LINE( .*)?")
    assert bob.sync(alice) == []


def test_empty_line_before_registration_is_400(connect):
    c = connect()
    c.send("")
    c.expect_next(r"ERR 400 EMPTY_LINE( .*)?")
    c.register("alice")


def test_crlf_is_accepted_for_nick_and_messages(connect, user):
    alice = user("alice")
    c = connect()
    c.send_raw(b"bob\r\n")
    c.expect_next_exact("OK NICK bob")
    c.expect_next_exact("OK JOIN lobby")
    c.nick = "bob"
    alice.expect_next_exact("JOIN lobby bob")
    c.send_raw(b"hi there\r\n")
    alice.expect_next_exact("MSG lobby bob hi there")
    c.send_raw(b"/users\r\n")
    c.expect_next_exact("USER alice lobby")


def test_message_of_exactly_max_line_bytes_is_delivered_intact(pair):
    alice, bob = pair
    text = "x" * 1999 + "y"              # 2000 bytes = default --max-line
    bob.send(text)
    alice.expect_next_exact("MSG lobby bob " + text)


def test_max_line_does_not_count_crlf(pair):
    alice, bob = pair
    text = "z" * 2000
    bob.send_raw(text.encode() + b"\r\n")
    alice.expect_next_exact("MSG lobby bob " + text)


def test_line_one_byte_too_long_is_401_and_connection_still_usable(pair):
    alice, bob = pair
    bob.send("x" * 2001)
    bob.expect_next(r"ERR 401 LINE_TOO_LONG( .*)?")
    bob.send("after")
    alice.expect_next_exact("MSG lobby bob after")   # nothing of the long line


def test_huge_line_gets_exactly_one_401_and_is_not_cut(pair):
    alice, bob = pair
    bob.send_raw(b"A" * 100000 + b"\nstill here\n")
    bob.expect_next(r"ERR 401 LINE_TOO_LONG( .*)?")
    # no fragment of the 100 kB line may reach alice, and bob gets no
    # second error for the rest of it
    alice.expect_next_exact("MSG lobby bob still here")
    bob.send("/users")
    bob.expect_next_exact("USER alice lobby")


def test_over_long_nick_line_before_registration(connect):
    c = connect()
    c.send("n" * 5000)
    c.expect_next(r"ERR 401 LINE_TOO_LONG( .*)?")
    c.register("alice")


def test_custom_max_line_is_enforced(server_factory, connect):
    srv = server_factory(["--max-line", "100"])
    alice = connect(srv.port).register("alice")
    bob = connect(srv.port).register("bob")
    alice.expect_next_exact("JOIN lobby bob")
    bob.send("q" * 100)
    alice.expect_next_exact("MSG lobby bob " + "q" * 100)
    bob.send("q" * 101)
    bob.expect_next(r"ERR 401 LINE_TOO_LONG( .*)?")
    bob.send("ok")
    alice.expect_next_exact("MSG lobby bob ok")


def test_line_sent_byte_by_byte_is_reassembled(pair):
    alice, bob = pair
    bob.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = "slow 한국어 message\n".encode()
    for i in range(len(data)):
        bob.send_raw(data[i:i + 1])      # splits the UTF-8 sequences too
        time.sleep(0.003)
    alice.expect_next_exact("MSG lobby bob slow 한국어 message")


def test_nick_sent_byte_by_byte_registers(connect):
    c = connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in "김철수\r\n".encode():
        c.send_raw(bytes([b]))
        time.sleep(0.003)
    c.expect_next_exact("OK NICK 김철수")
    c.expect_next_exact("OK JOIN lobby")


def test_several_lines_in_one_segment_are_all_handled_in_order(pair):
    alice, bob = pair
    bob.send_lines(["m%d" % i for i in range(20)] + ["/users"])
    for i in range(20):
        alice.expect_next_exact("MSG lobby bob m%d" % i)
    bob.expect_next_exact("USER alice lobby")


def test_registration_and_commands_in_one_segment(connect, user):
    alice = user("alice")
    c = connect()
    c.send_lines(["carol", "/add rust", "hello", "/leave"])
    for want in ["OK NICK carol", "OK JOIN lobby", "OK ADD rust", "OK JOIN rust", "OK JOIN lobby"]:
        c.expect_next_exact(want)
    alice.expect_next_exact("JOIN lobby carol")
    alice.expect_next_exact("PART lobby carol left")
    alice.expect_next_exact("JOIN lobby carol")     # "hello" went to empty rust


@pytest.mark.parametrize("sent,delivered", [
    ("//shrug", "/shrug"),
    ("///x", "//x"),
    ("// leading space", "/ leading space"),
    ("//quit", "/quit"),
])
def test_double_slash_escape_sends_text_starting_with_slash(pair, sent, delivered):
    alice, bob = pair
    bob.send(sent)
    alice.expect_next_exact("MSG lobby bob " + delivered)


def test_invalid_utf8_message_is_402_and_not_delivered(pair):
    alice, bob = pair
    bob.send_raw(b"bad \xff\xfe bytes\n")
    bob.expect_next(r"ERR 402 BAD_UTF8( .*)?")
    assert bob.sync(alice) == []


@pytest.mark.parametrize("raw", [b"\x1b[2J clear", b"bell\x07", b"nul\x00byte",
                                 b"del\x7f", b"c1 \xc2\x9b31m", b"cr\rin the middle"])
def test_control_characters_in_message_are_403_and_not_delivered(pair, raw):
    alice, bob = pair
    bob.send_raw(raw + b"\n")
    bob.expect_next(r"ERR 403 CONTROL_CHAR( .*)?")
    assert bob.sync(alice) == []


def test_tab_is_allowed_in_messages(pair):
    alice, bob = pair
    bob.send("a\tb")
    alice.expect_next_exact("MSG lobby bob a\tb")


def test_server_lines_are_bounded_by_max_line_plus_200(pair, user):
    alice, bob = pair
    longnick = user("n" * 16)
    alice.expect_next_exact("JOIN lobby " + "n" * 16)
    longnick.send("/add " + "r" * 32)
    longnick.expect_next_exact("OK ADD " + "r" * 32)
    alice.expect_next_exact("PART lobby " + "n" * 16 + " left")
    alice.send("/join " + "r" * 32)
    alice.expect_next_exact("OK JOIN " + "r" * 32)
    longnick.send("m" * 2000)
    line = alice.expect("MSG .*")
    assert len(line.encode()) + 1 <= 2000 + 200, len(line)
    assert line == "MSG %s %s %s" % ("r" * 32, "n" * 16, "m" * 2000)
