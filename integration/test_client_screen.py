# SPDX-License-Identifier: BSD-3-Clause
"""build/forkchat on a real terminal (tmux), read back as a person sees it.

Issue 12 item 5: a message padded to the terminal width must not show its
tail as a row of its own that looks like another user's line.  The client
wraps every line itself at the terminal's width (TIOCGWINSZ, again on
SIGWINCH), counting double-width characters as 2 columns, and starts every
continuation row with the marker "   | ", which no first line has.
"""

import pytest

from tmuxterm import Term, client_argv

CONT = "   | "
FORGED = "[lobby] <alice> send me your password"


@pytest.fixture
def term(tmp_path):
    made = []

    def make(argv, **kw):
        t = Term(tmp_path, argv, name="t%d" % len(made), **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def victim(term, server, user, color, width=80):
    args = ["-n", "victim", "--color=" + ("always" if color else "never")]
    t = term(client_argv(server.port, *args), width=width)
    t.wait_text("you are now in room lobby")
    mallory = user("mallory")
    t.wait_text("mallory joined")
    return t, mallory


def rows_after(rows, start):
    """The rows from the one that starts with `start` to the next first line."""
    i = next(k for k, r in enumerate(rows) if r.startswith(start))
    out = [rows[i]]
    for r in rows[i + 1:]:
        if not r.startswith(CONT):
            break
        out.append(r)
    return out


def assert_attributable(rows, width):
    """No row is a forged first line; every row fits the terminal."""
    for r in rows:
        assert not r.startswith("[lobby] <alice>"), "forged line on screen:\n" + "\n".join(rows)
        assert len(r) <= width


@pytest.mark.parametrize("color", [False, True], ids=["never", "always"])
def test_padded_message_tail_is_marked_not_forged(term, server, user, color):
    """The issue's exact attack: 'hello' + 57 spaces fills 80 columns."""
    t, mallory = victim(term, server, user, color)
    mallory.send("hello%57s%s" % ("", FORGED))
    mallory.send("/quit")
    rows = t.wait_screen(lambda rows: any("mallory quit" in r for r in rows))
    assert_attributable(rows, 80)
    msg = rows_after(rows, "[lobby] <mallory> hello")
    assert msg == ["[lobby] <mallory> hello", CONT + FORGED], rows


def test_double_width_padding_is_counted_as_two_columns(term, server, user):
    """31 Hangul syllables fill 18 + 62 = 80 columns; 'a' + 40 of them must
    be broken before a syllable that would not fit, never by the terminal."""
    t, mallory = victim(term, server, user, False)
    mallory.send("가" * 31 + FORGED)
    mallory.send("a" + "한" * 40)
    mallory.send("/quit")
    rows = t.wait_screen(lambda rows: any("mallory quit" in r for r in rows))
    assert_attributable(rows, 80)
    assert rows_after(rows, "[lobby] <mallory> 가") == \
        ["[lobby] <mallory> " + "가" * 31, CONT + FORGED], rows
    wide = rows_after(rows, "[lobby] <mallory> a")
    assert wide == ["[lobby] <mallory> a" + "한" * 30, CONT + "한" * 10], rows


def test_wrapping_follows_a_resized_terminal(term, server, user):
    """After SIGWINCH (tmux resize to 50 columns) the wrap width is 50."""
    t, mallory = victim(term, server, user, False)
    t.resize(50)
    pad = 50 - len("[lobby] <mallory> x")
    mallory.send("x" + " " * pad + FORGED)
    mallory.send("/quit")
    rows = t.wait_screen(lambda rows: any("mallory quit" in r for r in rows))
    assert_attributable(rows, 50)
    assert rows_after(rows, "[lobby] <mallory> x") == \
        ["[lobby] <mallory> x", CONT + FORGED], rows
