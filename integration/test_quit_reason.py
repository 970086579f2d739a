# SPDX-License-Identifier: BSD-3-Clause
"""Issue 15, protocol loose ends: /quit TEXT delivers its reason to the
room's PART line and the log (bounded, sanitised), and messages with a count
read correctly in the singular ("within 1 second")."""

import re

from harness.timescale import wait_until


def test_quit_reason_reaches_part_line_and_log(user, server):
    alice, bob = user("alice"), user("bob")
    bob.send('/quit  gone "fishing" \u202e\ud55c ')
    bob.expect_next_exact("BYE QUIT goodbye")
    alice.expect_exact("PART lobby bob quit gone 'fishing' ?\ud55c")
    m = server.wait_log(r"disconnect slot=\d+ nick=bob reason=quit text=\"(.*)\"")
    assert m.group(1) == "gone 'fishing' ?\ud55c"


def test_quit_reason_is_bounded_to_200_bytes(user, server):
    alice, bob = user("alice"), user("bob")
    reason = "x" * 199 + "\ud55c" + "tail"      # the syllable would end at 202
    bob.send("/quit " + reason)
    bob.expect_next_exact("BYE QUIT goodbye")
    alice.expect_exact("PART lobby bob quit " + "x" * 199)


def test_quit_without_reason_is_unchanged(user, server):
    alice, bob = user("alice"), user("bob")
    bob.send("/quit")
    bob.expect_next_exact("BYE QUIT goodbye")
    alice.expect_exact("PART lobby bob quit")
    server.wait_log(r"disconnect slot=\d+ nick=bob reason=quit$|"
                    r"disconnect slot=\d+ nick=bob reason=quit\n")


def test_register_timeout_says_1_second(server_factory, connect):
    srv = server_factory(["--register-timeout", "1"])
    c = connect(srv.port)
    line = c.readline(timeout=10)
    assert line == "BYE REGISTER_TIMEOUT no nickname within 1 second", line
    srv2 = server_factory(["--register-timeout", "2"], name="two")
    c2 = connect(srv2.port)
    assert c2.readline(timeout=10) == "BYE REGISTER_TIMEOUT no nickname within 2 seconds"


def test_shutdown_log_counts_1_child(server_factory, user):
    srv = server_factory()
    user("alice", port=srv.port)
    assert not srv.stop()
    wait_until(lambda: re.search(r"shutdown begin \(SIG\w+\), 1 child$", srv.log(), re.M),
               5, what="'1 child' in the shutdown line: %r" % srv.log()[-400:])


def test_per_address_limit_of_1_says_1_connection(server_factory, connect):
    srv = server_factory(["--exempt", "none", "--max-per-addr", "1",
                          "--max-unreg-per-addr", "1"])
    connect(srv.port, source="127.0.0.2")           # unregistered, holds the slot
    extra = connect(srv.port, hello=False, source="127.0.0.2")
    got = extra.expect_closed()
    assert len(got) == 1 and re.fullmatch(
        r"BYE TOO_MANY_\w+ your address has 1 connection (open|without a nickname), .*",
        got[0]), got
