# SPDX-License-Identifier: BSD-3-Clause
"""/whisper and /w (PROTOCOL.md "Commands"): delivery to a user in any
room, errors for self, unknown users and missing arguments."""

import pytest


@pytest.fixture
def trio(user):
    alice = user("alice")
    bob = user("bob")
    carol = user("carol")
    alice.expect_exact("JOIN lobby carol")
    bob.expect_exact("JOIN lobby carol")
    return alice, bob, carol


def test_whisper_reaches_target_with_text_intact(trio):
    alice, bob, _ = trio
    alice.send("/whisper bob psst,  two  spaces and 한국어")
    alice.expect_next_exact("OK WHISPER bob")
    bob.expect_next_exact("WHISPER alice psst,  two  spaces and 한국어")


def test_w_alias(trio):
    alice, bob, _ = trio
    alice.send("/w bob short form")
    alice.expect_next_exact("OK WHISPER bob")
    bob.expect_next_exact("WHISPER alice short form")


def test_whisper_to_user_in_other_room(trio):
    alice, bob, _ = trio
    bob.send("/add den")
    bob.expect_exact("OK JOIN den")
    alice.expect_exact("PART lobby bob left")
    alice.send("/whisper bob across rooms")
    alice.expect_next_exact("OK WHISPER bob")
    bob.expect_next_exact("WHISPER alice across rooms")


def test_whisper_target_is_case_insensitive(trio):
    alice, bob, _ = trio
    alice.send("/whisper BOB hi")
    alice.expect_next(r"OK WHISPER (?i:bob)")
    bob.expect_next_exact("WHISPER alice hi")


def test_whisper_to_self_is_441(trio):
    alice, bob, _ = trio
    for target in ("alice", "ALICE"):
        alice.send("/whisper %s hi me" % target)
        alice.expect_next(r"ERR 441 WHISPER_SELF( .*)?")
    assert alice.sync(bob) == []


def test_whisper_to_unknown_user_is_440(trio, user):
    alice = trio[0]
    alice.send("/whisper nobody hello")
    alice.expect_next(r"ERR 440 NO_SUCH_USER( .*)?")
    gone = user("gone")
    gone.quit()
    alice.send("/w gone still there?")
    alice.expect(r"ERR 440 NO_SUCH_USER( .*)?")


@pytest.mark.parametrize("line", ["/whisper", "/whisper bob", "/w", "/w bob "])
def test_whisper_without_text_is_405(trio, line):
    alice, bob, _ = trio
    alice.send(line)
    alice.expect_next(r"ERR 405 USAGE( .*)?")
    assert alice.sync(bob) == []
