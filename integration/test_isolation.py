# SPDX-License-Identifier: BSD-3-Clause
"""Isolation (PROTOCOL.md "Delivery guarantees"): a whisper reaches its
target only, room traffic never leaks across rooms, and a user who left a
room (or whose room was removed) receives nothing more from it.

Silence is checked with a barrier instead of a sleep: the server keeps
per-client order, so when an observer receives a later marker message,
anything that would have leaked would have arrived before it."""

import pytest


@pytest.fixture
def world(user):
    """lobby: alice, bob, carol; room 'den': dave (owner), erin."""
    u = {n: user(n) for n in ("alice", "bob", "carol", "dave", "erin")}
    u["dave"].send("/add den")
    u["dave"].expect_exact("OK JOIN den")
    u["erin"].send("/join den")
    u["erin"].expect_exact("OK JOIN den")
    u["dave"].expect_exact("JOIN den erin")
    # flush everyone's pending notices with barriers in each room
    for speaker, room in (("alice", ("bob", "carol")), ("bob", ("alice", "carol")),
                          ("dave", ("erin",)), ("erin", ("dave",))):
        u[speaker].send("ready-" + speaker)
        for n in room:
            room_name = "den" if n in ("dave", "erin") else "lobby"
            u[n].expect_exact("MSG %s %s ready-%s" % (room_name, speaker, speaker))
    return u


def test_whisper_is_seen_by_nobody_else(world):
    u = world
    u["alice"].send("/whisper bob secret-1")
    u["alice"].expect_next_exact("OK WHISPER bob")
    u["bob"].expect_next_exact("WHISPER alice secret-1")
    u["erin"].send("/w dave secret-2")
    u["erin"].expect_next_exact("OK WHISPER dave")
    u["dave"].expect_next_exact("WHISPER erin secret-2")
    assert u["alice"].barrier([u["bob"], u["carol"]]) == [[], []]
    assert u["dave"].sync(u["erin"]) == []
    assert u["erin"].sync(u["dave"]) == []
    for c in u.values():
        assert not [l for l in c.history if "secret-" in l and not
                    (c.nick in ("bob", "dave") and l.startswith("WHISPER"))], c.history


def test_room_messages_never_leak_across_rooms(world):
    u = world
    for i in range(20):
        u["alice"].send("lobby-%d" % i)
        u["dave"].send("den-%d" % i)
    for i in range(20):
        for n in ("bob", "carol"):
            u[n].expect_next_exact("MSG lobby alice lobby-%d" % i)
        u["erin"].expect_next_exact("MSG den dave den-%d" % i)
    assert u["bob"].sync(u["alice"]) == []        # alice got nothing from den
    assert u["erin"].sync(u["dave"]) == []        # dave got nothing from lobby
    for n in ("alice", "bob", "carol"):
        assert not [l for l in u[n].history if "den-" in l], u[n].history
    for n in ("dave", "erin"):
        assert not [l for l in u[n].history if "lobby-" in l], u[n].history


def test_user_who_left_gets_nothing_more_from_room(world):
    u = world
    u["erin"].send("/leave")
    u["erin"].expect_next_exact("OK JOIN lobby")
    u["dave"].expect_next_exact("PART den erin left")
    u["dave"].send("after-erin-left")
    u["dave"].send("/whisper alice marker")          # barrier through alice
    u["dave"].expect_next_exact("OK WHISPER alice")
    u["alice"].expect_exact("WHISPER dave marker")
    # erin is in the lobby now: her next lines are lobby traffic only
    skipped = u["alice"].sync(u["erin"])
    assert not [l for l in skipped + u["erin"].history if "after-erin-left" in l]


def test_members_of_removed_room_get_nothing_more_from_it(world, user):
    u = world
    u["dave"].send("/leave")
    u["dave"].expect_exact("OK JOIN lobby")
    u["dave"].send("/rm den")
    u["dave"].expect_exact("OK RM den")
    u["erin"].expect_exact("REMOVED den dave")
    # a new room with the same name is a different room: erin is not in it
    u["dave"].send("/add den")
    u["dave"].expect_exact("OK JOIN den")
    u["dave"].send("new-den-message")
    skipped = u["alice"].sync(u["erin"], "barrier")
    assert not [l for l in skipped if "new-den-message" in l], skipped
    assert u["erin"].users()[0][1] == "lobby"
