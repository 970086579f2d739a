# SPDX-License-Identifier: BSD-3-Clause
"""Nickname rules (PROTOCOL.md "Names"): uniqueness (case-insensitive, with
Latin-1, Greek and Cyrillic folding), length in code points, whitespace,
control characters, invalid UTF-8, and non-Latin scripts."""

import pytest


def test_nick_taken_exact(user, connect):
    user("alice")
    c = connect()
    c.send("alice")
    c.expect_next(r"ERR 422 NICK_TAKEN( .*)?")


@pytest.mark.parametrize("first,second", [
    ("alice", "ALICE"),
    ("Alice", "aLiCe"),
    ("Élan", "élan"),          # Latin-1
    ("ΑΛΦΑ", "αλφα"),          # Greek
    ("ИВАН", "иван"),          # Cyrillic
])
def test_nick_clash_is_case_insensitive(user, connect, first, second):
    user(first)
    c = connect()
    c.send(second)
    c.expect_next(r"ERR 422 NICK_TAKEN( .*)?")


def test_different_hangul_nicks_do_not_clash(user):
    user("김철수")
    user("김영희")


def test_korean_nick_registers_joins_and_chats(user):
    alice = user("alice")
    kim = user("김철수")
    alice.expect_next_exact("JOIN lobby 김철수")
    kim.send("안녕하세요 여러분")
    alice.expect_next_exact("MSG lobby 김철수 안녕하세요 여러분")
    users = alice.users()
    assert ("김철수", "lobby") in users


def test_nick_of_16_code_points_is_accepted(user):
    user("a" * 16)
    user("가" * 16)            # 48 bytes, 16 code points


@pytest.mark.parametrize("nick", ["a" * 17, "가" * 17, "x" * 200])
def test_nick_over_16_code_points_is_421(connect, nick):
    c = connect()
    c.send(nick)
    c.expect_next(r"ERR 421 NICK_TOO_LONG( .*)?")


@pytest.mark.parametrize("nick", ["al ice", "alice ", " alice", "al\tice", "al\u3000ice", "al\u00a0ice"])
def test_nick_with_whitespace_is_420(connect, nick):
    c = connect()
    c.send(nick)
    c.expect_next(r"ERR 420 BAD_NICK( .*)?")


@pytest.mark.parametrize("nick", [b"al\x01ice", b"al\x1b[2Jice", b"al\x7fice", b"al\xc2\x85ice", b"\x00alice"])
def test_nick_with_control_character_is_refused(connect, nick):
    # The framing rule (any line with a control char -> 403) and the nick
    # rule (420) both forbid it; either code is a correct refusal.
    c = connect()
    c.send(nick)
    c.expect_next(r"ERR (403 CONTROL_CHAR|420 BAD_NICK)( .*)?")
    c.register("alice")        # still usable


@pytest.mark.parametrize("nick", [b"al\xffice", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80x", b"\xc0\xafx"])
def test_nick_with_invalid_utf8_is_402(connect, nick):
    c = connect()
    c.send(nick)
    c.expect_next(r"ERR 402 BAD_UTF8( .*)?")
    c.register("alice")


def test_nick_starting_with_slash_is_treated_as_command(connect):
    c = connect()
    c.send("/alice")
    c.expect_next(r"ERR 410 NOT_REGISTERED( .*)?")


def test_nick_is_free_again_after_quit(user, connect):
    a = user("alice")
    a.quit()
    user("alice")


def test_nick_is_free_again_after_disconnect(user, connect):
    watcher = user("watcher")
    a = user("alice")
    watcher.expect_next_exact("JOIN lobby alice")
    a.close()
    watcher.expect_next_exact("PART lobby alice disconnected")
    user("ALICE")


def test_registered_user_cannot_change_nick_by_sending_name(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    bob.send("robert")          # after registration this is a message
    alice.expect_next_exact("MSG lobby bob robert")
    assert ("bob", "lobby") in alice.users(all_=True)
