# SPDX-License-Identifier: BSD-3-Clause
"""The name profile (PROTOCOL.md "Names", SECURITY.md "Names"), issue 12
item 3: invisible, format and bidi characters refused in nicknames and room
names; names that differ only in case or look alike (UTS #39 skeleton) are
one name; "-" is nobody's name; the log never holds raw control or bidi
characters.  Every case here registered, or logged raw, before."""

import glob
import re

import pytest

# Each looks like "bob" (or like nothing at all) on screen.
INVISIBLE = [
    ("bob\u2060", "invisible character U+2060"),   # WORD JOINER
    ("b\u00adob", "invisible character U+00AD"),   # SOFT HYPHEN
    ("bo\u200db", "invisible character U+200D"),   # ZWJ
    ("bo\u200cb", "invisible character U+200C"),   # ZWNJ
    ("\u202abob", "bidi control U+202A"),
    ("\u202bbob", "bidi control U+202B"),
    ("bob\u202c", "bidi control U+202C"),
    ("\u202dbob", "bidi control U+202D"),
    ("\u202ebob", "bidi control U+202E"),
    ("\u2066bob", "bidi control U+2066"),
    ("\u2067bob", "bidi control U+2067"),
    ("\u2068bob", "bidi control U+2068"),
    ("bob\u2069", "bidi control U+2069"),
    ("bob\u3164", "invisible character U+3164"),   # HANGUL FILLER
    ("\u3164", "invisible character U+3164"),
    ("bob\uffa0", "invisible character U+FFA0"),   # HALFWIDTH HANGUL FILLER
]

# (first, second): the second is the same name as the first.
LOOKALIKE = [
    ("Σοφία", "ΣΟΦΊΑ"),     # full case folding, with the accent
    ("σας", "ΣΑΣ"),         # final sigma
    ("ґрета", "Ґрета"),     # Ukrainian ghe with upturn
    ("\u00b5u", "\u03bcu"),  # MICRO SIGN vs Greek mu
    ("bob", "b\u043eb"),    # Latin o vs Cyrillic o (UTS #39 skeleton)
    ("apple", "\u0430pple"),  # Latin a vs Cyrillic a
    ("Ÿves", "ÿves"),       # U+0178 folded wrongly by the old table
]


@pytest.mark.parametrize("nick,why", INVISIBLE, ids=[n.encode("unicode_escape").decode() for n, _ in INVISIBLE])
def test_invisible_or_bidi_nick_is_420(user, connect, nick, why):
    bob = user("bob")
    c = connect()
    c.send(nick)
    c.expect_next(r"ERR 420 BAD_NICK this nickname contains the %s \(.*\)" % re.escape(why))
    c.register("carol")                 # the connection is still usable
    assert sorted(bob.users()) == [("bob", "lobby"), ("carol", "lobby")]


@pytest.mark.parametrize("room,why", INVISIBLE, ids=[n.encode("unicode_escape").decode() for n, _ in INVISIBLE])
def test_invisible_or_bidi_room_is_432(user, room, why):
    alice = user("alice")
    alice.send("/add bob")
    alice.expect_exact("OK ADD bob")
    alice.expect_exact("OK JOIN bob")
    alice.send("/add " + room)
    alice.expect_next(r"ERR 432 BAD_ROOM this room name contains the %s \(.*\)" % re.escape(why))
    assert set(alice.rooms()) == {"lobby", "bob"}


@pytest.mark.parametrize("first,second", LOOKALIKE)
def test_lookalike_nick_is_taken(user, connect, first, second):
    a = user(first)
    c = connect()
    c.send(second)
    c.expect_next_exact("ERR 422 NICK_TAKEN nickname %s is in use as %s (the same name once "
                        "case and lookalikes are folded), choose another" % (second, first))
    assert a.users() == [(first, "lobby")]
    # and a whisper typed with the other form reaches the holder
    c.register("zed")
    c.send("/whisper %s hi" % second)
    c.expect_next_exact("OK WHISPER %s" % first)
    a.expect_exact("WHISPER zed hi")


@pytest.mark.parametrize("first,second", LOOKALIKE)
def test_lookalike_room_exists(user, first, second):
    alice = user("alice")
    bob = user("bob")
    alice.send("/add " + first)
    alice.expect_exact("OK ADD " + first)
    bob.expect_exact("PART lobby alice left")
    bob.send("/add " + second)
    bob.expect_next_exact("ERR 431 ROOM_EXISTS room %s exists as %s (the same name once case "
                          "and lookalikes are folded); /join %s" % (second, first, first))
    bob.send("/join " + second)
    bob.expect_exact("OK JOIN " + first)
    assert set(bob.rooms()) == {"lobby", first}


def test_dash_is_not_a_nick_nor_a_room(user, connect):
    c = connect()
    for nick in ["-", "\u2010", "\u2212"]:   # and HYPHEN, MINUS SIGN
        c.send(nick)
        c.expect_next(r"ERR 420 BAD_NICK this nickname is reserved: - means nobody \(.*\)")
    c.register("alice")
    c.send("/add -")
    c.expect_next(r"ERR 432 BAD_ROOM this room name is reserved: - means nobody \(.*\)")
    assert c.rooms() == {"lobby": (1, "-")}   # "-": no owner, never a user


def test_korean_and_nfc_names(user, connect):
    kim = user("김철수")
    user("김영희")
    c = connect()
    c.send("e\u0301va")                       # stored and shown composed
    c.expect_next_exact("OK NICK \u00e9va")
    c.expect_next_exact("OK JOIN lobby")
    kim.expect_exact("JOIN lobby \u00e9va")
    c.send("/add " + "한" * 32)
    c.expect_next_exact("OK ADD " + "한" * 32)


def _log_bytes(srv):
    data = b""
    for p in sorted(glob.glob(str(srv.logdir / "forkchatd_*.log"))):
        with open(p, "rb") as f:
            data += f.read()
    return data


def test_log_gets_no_raw_bidi_or_control(server, user, connect):
    alice = user("alice")
    bob = user("bob")
    evil = connect()
    evil.send("mallory\u202egnp.exe")          # name attempt (refused now)
    if evil.readline().startswith("OK NICK"):  # the old server took it
        evil.expect_next_exact("OK JOIN lobby")
        evil.nick = "mallory\u202egnp.exe"
    else:
        evil.register("mallory")
    alice.expect_exact("JOIN lobby " + evil.nick)
    evil.send("hello \u202eevil\u2066 text")   # message text: passed through
    alice.expect_next_exact("MSG lobby %s hello \u202eevil\u2066 text" % evil.nick)
    bob.expect_exact("MSG lobby %s hello \u202eevil\u2066 text" % evil.nick)
    evil.send("/whisper bo\u202eb hi")
    evil.expect_next(r"ERR 440 NO_SUCH_USER .*")
    evil.send("/join r\u202eoom")
    evil.expect_next(r"ERR 430 NO_SUCH_ROOM .*")
    evil.send("/add r\u202eoom")
    evil.readline()                            # ERR 432 (OK ADD before)
    evil.send("/quit bye\u202e")
    evil.expect_closed()
    server.wait_log(r"disconnect slot=\d+ nick=mallory")
    data = _log_bytes(server)
    assert b"register slot=" in data and b"nick=mallory" in data
    # the name attempt, the message, the whisper, /join, /add, /quit text
    for raw in ("\u202e", "\u2066", "\u3164"):
        assert raw.encode() not in data, (raw, data[-800:])
    assert not any(b < 0x20 and b != 0x0a for b in data), data[-800:]
