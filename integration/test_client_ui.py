# SPDX-License-Identifier: BSD-3-Clause
"""Issue 15 item 1: typing while others talk, on a real terminal (tmux).

build/forkchat runs in a detached tmux (80x24); keys go in with send-keys,
the screen comes back with capture-pane, and the tests assert what a person
sees: the line being typed stays whole on the bottom row, with the cursor
where it was left, while another client floods the room; the editing keys
of forkchat(1) work over Hangul; your own messages and whispers appear as
sent; the prompt shows your nickname and room; and every way out restores
the terminal mode (stty -g before and after are equal).
"""

import os
import unicodedata

import pytest

from harness.server import CLIENT
from harness.timescale import wait_until
from tmuxterm import Term, client_argv

NICK = "하늘"
PROMPT = "[lobby] %s> " % NICK          # 8 + 4 + 2 = 14 columns


def cols(s):
    """Display width as the terminal counts it (Hangul: 2 columns)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


@pytest.fixture
def term(tmp_path):
    made = []

    def make(argv, **kw):
        t = Term(tmp_path, argv, name="u%d" % len(made), **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def input_row(rows):
    """Index of the last non-blank row: the input row (0 on a blank screen)."""
    return max([i for i, r in enumerate(rows) if r.strip()] or [0])


def start(term, server, user, *args, env=None):
    bob = user("bob")
    t = term(client_argv(server.port, "-n", NICK, *args), env=env)
    t.wait_screen(lambda rows: rows[input_row(rows)] == PROMPT.rstrip(), what="the prompt")
    bob.expect_exact("JOIN lobby %s" % NICK)
    return t, bob


def assert_input(t, text, before):
    """The input row shows PROMPT + text, the cursor after `before`."""
    rows = t.wait_screen(lambda rows: rows[input_row(rows)] == (PROMPT + text).rstrip(),
                         what="input row %r" % (PROMPT + text))
    x, y = t.cursor()
    assert (x, y) == (cols(PROMPT + before), input_row(rows)), (x, y, rows)
    return rows


def test_typed_line_stays_whole_while_another_client_floods(term, server, user):
    t, bob = start(term, server, user)
    typed = "안녕 세상 hello"
    n = 0
    for ch in typed:                     # one key, then 25 lines from bob
        t.type(ch)
        bob.send_lines(["flood %d" % i for i in range(n, n + 25)])
        n += 25
    t.keys("Left", "Left")
    bob.send_lines(["flood %d" % i for i in range(n, n + 25)])
    n += 25
    t.type("X")
    last = "[lobby] <bob> flood %d" % (n - 1)
    t.wait_text(last)
    rows = assert_input(t, "안녕 세상 helXlo", "안녕 세상 helX")
    i = input_row(rows)
    assert rows[i - 1] == last, rows
    # every row above is a whole flood line, in order, with nothing typed in it
    above = [r for r in rows[:i] if r]
    nums = [int(r.rsplit(" ", 1)[1]) for r in above]
    assert above == ["[lobby] <bob> flood %d" % k for k in nums], rows
    assert nums == list(range(nums[0], n)), rows
    t.keys("Enter")
    bob.expect_exact("MSG lobby %s 안녕 세상 helXlo" % NICK)
    rows = assert_input(t, "", "")
    assert rows[input_row(rows) - 1] == "> [lobby] <%s> 안녕 세상 helXlo" % NICK, rows


def test_editing_keys_over_hangul(term, server, user):
    t, bob = start(term, server, user)
    t.type("한국어 abc")
    t.keys("Home", "Right")
    assert_input(t, "한국어 abc", "한")
    t.keys("DC")                          # Delete: the whole syllable
    assert_input(t, "한어 abc", "한")
    t.keys("C-e", "BSpace")               # End, Backspace
    assert_input(t, "한어 ab", "한어 ab")
    t.keys("Left", "Left", "Left", "BSpace")
    assert_input(t, "한 ab", "한")
    t.keys("End", "C-w")                  # the word before the cursor
    assert_input(t, "한 ", "한 ")
    t.type("끝")
    t.keys("C-a", "C-e", "Left", "C-u")   # everything before the cursor
    assert_input(t, "끝", "")
    t.keys("Enter")
    bob.expect_exact("MSG lobby %s 끝" % NICK)
    t.type("두번째")
    t.keys("Enter")
    bob.expect_exact("MSG lobby %s 두번째" % NICK)
    t.type("draft")
    t.keys("Up")
    assert_input(t, "두번째", "두번째")
    t.keys("Up")
    assert_input(t, "끝", "끝")
    t.keys("Down", "Down")
    assert_input(t, "draft", "draft")


def test_prompt_follows_room_and_own_whispers_are_shown(term, server, user):
    t, bob = start(term, server, user)
    t.type("/add den")
    t.keys("Enter")
    t.wait_screen(lambda rows: rows[input_row(rows)] == "[den] %s>" % NICK, what="[den] prompt")
    t.type("/w bob 비밀")
    t.keys("Enter")
    bob.expect_exact("WHISPER %s 비밀" % NICK)
    t.wait_text("> [whisper to bob] <%s> 비밀" % NICK)
    t.type("//slash")
    t.keys("Enter")
    t.wait_text("> [den] <%s> /slash" % NICK)
    bob.send("/join den")
    bob.expect_exact("OK JOIN den")
    bob.send("hello 하늘")
    rows = t.wait_screen(lambda rows: "[den] <bob> hello 하늘" in rows, what="bob's line")
    assert rows[input_row(rows)] == "[den] %s>" % NICK
    t.keys("C-u")


def test_nickname_prompt_and_wide_nickname_typed(term, server, user):
    bob = user("bob")
    t = term(client_argv(server.port))
    t.wait_screen(lambda rows: rows[input_row(rows)] == "nickname:", what="nickname prompt")
    t.type(NICK)
    t.keys("Enter")
    bob.expect_exact("JOIN lobby %s" % NICK)
    assert_input(t, "", "")


def stty_wrapper(tmp_path, port, extra=""):
    """sh: record stty -g, run the client, record its status and stty -g.
    The shell traps ^C as an interactive shell's job control would spare it
    (the pane has no job control: the client shares the shell's group)."""
    d = tmp_path
    return ["/bin/sh", "-c",
            "trap : INT QUIT; stty -g > %s/before; %s -n %s 127.0.0.1 %d%s; echo $? > %s/status; "
            "stty -g > %s/after; sleep 60" % (d, CLIENT, NICK, port, extra, d, d)]


def wait_status(tmp_path):
    p = tmp_path / "status"
    wait_until(lambda: p.exists() and p.read_text().strip() and (tmp_path / "after").exists()
               and (tmp_path / "after").read_text().strip(), 10, what="the client to exit")
    return int(p.read_text())


@pytest.mark.parametrize("how", ["ctrl-d", "ctrl-c", "quit", "sigterm", "sigquit"])
def test_every_exit_restores_the_terminal(term, server, user, tmp_path, how):
    bob = user("bob")
    t = term(stty_wrapper(tmp_path, server.port))
    bob.expect_exact("JOIN lobby %s" % NICK)
    t.wait_screen(lambda rows: rows[input_row(rows)] == PROMPT.rstrip(), what="prompt")
    before = (tmp_path / "before").read_text()
    if how == "ctrl-d":
        t.type("x")
        t.keys("C-d")                     # not empty: deletes nothing, stays
        t.keys("BSpace", "C-d")
        want = 0
    elif how == "ctrl-c":
        t.keys("C-c")
        want = 0
    elif how == "quit":
        t.type("/quit 잘 있어")
        t.keys("Enter")
        bob.expect_exact("PART lobby %s quit 잘 있어" % NICK)
        want = 0
    else:
        pid = wait_until(lambda: client_pid(t.pane_pid), 5, what="the client's pid")
        os.kill(pid, 15 if how == "sigterm" else 3)
        want = 0 if how == "sigterm" else 128 + 3
    assert wait_status(tmp_path) == want
    assert (tmp_path / "after").read_text() == before, "terminal mode not restored"
    if how == "sigquit":
        bob.expect_exact("PART lobby %s disconnected" % NICK)
    elif how != "quit":
        bob.expect_exact("PART lobby %s quit" % NICK)


def client_pid(shell_pid):
    """The forkchat network process our shell started, or None."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == shell_pid and os.readlink("/proc/%s/exe" % p) == str(CLIENT.resolve()):
                return int(p)
        except (OSError, IndexError, ValueError):
            continue
    return None


def test_pipe_and_redirected_output_keep_the_line_mode(term, server, user, tmp_path):
    """stdin a terminal but stdout a file: no editor, lines as before."""
    bob = user("bob")
    out = tmp_path / "out"
    t = term(["/bin/sh", "-c", "%s -n %s 127.0.0.1 %d > %s; sleep 60" % (
        CLIENT, NICK, server.port, out)])
    bob.expect_exact("JOIN lobby %s" % NICK)
    t.type("cooked line")
    t.keys("Enter")
    bob.expect_exact("MSG lobby %s cooked line" % NICK)
    t.wait_text("cooked line")            # the terminal's own echo (ICANON)
    bob.send("to the file")
    wait_until(lambda: out.exists() and "[lobby] <bob> to the file" in out.read_text(), 5,
               what="bob's line in the file")
    assert "> [lobby]" not in out.read_text() and "\r" not in out.read_text()
