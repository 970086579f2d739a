# SPDX-License-Identifier: BSD-3-Clause
"""Rooms (PROTOCOL.md "Commands", "Who may remove a room"): /add, /join,
/leave, /rm, /list, /users [all], ownership and where members go."""

import pytest


@pytest.fixture
def trio(user):
    """alice, bob, carol in the lobby with all JOIN notices consumed."""
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    carol = user("carol")
    alice.expect_next_exact("JOIN lobby carol")
    bob.expect_next_exact("JOIN lobby carol")
    return alice, bob, carol


def test_add_creates_and_enters_room(trio):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    bob.expect_next_exact("PART lobby alice left")
    carol.expect_next_exact("PART lobby alice left")
    assert alice.users() == [("alice", "rust")]
    assert alice.rooms() == {"lobby": (2, "-"), "rust": (1, "alice")}


def test_add_existing_room_is_431_case_insensitively(trio):
    alice, bob, _ = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    for name in ["rust", "RUST", "Rust"]:
        bob.send("/add " + name)
        bob.expect(r"ERR 431 ROOM_EXISTS( .*)?")
    bob.send("/add lobby")
    bob.expect(r"ERR 431 ROOM_EXISTS( .*)?")
    assert set(bob.rooms()) == {"lobby", "rust"}


def test_add_room_name_rules(trio):
    alice = trio[0]
    alice.send("/add " + "r" * 33)
    alice.expect(r"ERR 432 BAD_ROOM( .*)?")
    alice.send("/add /slash")
    alice.expect(r"ERR 432 BAD_ROOM( .*)?")
    alice.send("/add")
    alice.expect(r"ERR 405 USAGE( .*)?")
    alice.send("/add two words")
    alice.expect(r"ERR (405 USAGE|432 BAD_ROOM)( .*)?")
    assert set(alice.rooms()) == {"lobby"}
    alice.send("/add " + "한" * 32)          # 32 code points, 96 bytes
    alice.expect_exact("OK ADD " + "한" * 32)
    alice.expect_exact("OK JOIN " + "한" * 32)


def test_max_rooms_is_433(server_factory, connect):
    srv = server_factory(["--max-rooms", "2"])
    a = connect(srv.port).register("alice")
    for r in ("r1", "r2"):
        a.send("/add " + r)
        a.expect_exact("OK ADD " + r)
        a.expect_exact("OK JOIN " + r)
    a.send("/add r3")
    a.expect(r"ERR 433 TOO_MANY_ROOMS( .*)?")
    a.send("/rm r1")
    a.expect_exact("OK RM r1")
    a.send("/add r3")
    a.expect_exact("OK ADD r3")


def test_join_existing_room_notifies_both_rooms(trio):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    carol.expect_next_exact("PART lobby alice left")
    bob.expect_next_exact("PART lobby alice left")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    alice.expect_next_exact("JOIN rust bob")
    carol.expect_next_exact("PART lobby bob left")
    assert bob.users() == [("alice", "rust"), ("bob", "rust")]


def test_join_is_case_insensitive(trio):
    alice, bob, _ = trio
    alice.send("/add Rust")
    alice.expect_exact("OK ADD Rust")
    bob.send("/join rUST")
    bob.expect_exact("OK JOIN Rust")


def test_join_errors(trio):
    alice = trio[0]
    alice.send("/join nowhere")
    alice.expect(r"ERR 430 NO_SUCH_ROOM( .*)?")
    alice.send("/join lobby")
    alice.expect(r"ERR 436 ALREADY_IN_ROOM( .*)?")
    alice.send("/join")
    alice.expect(r"ERR 405 USAGE( .*)?")
    assert alice.users() == [("alice", "lobby"), ("bob", "lobby"), ("carol", "lobby")]


def test_leave_returns_to_lobby(trio):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    alice.expect_next_exact("JOIN rust bob")
    carol.expect_next_exact("PART lobby alice left")
    carol.expect_next_exact("PART lobby bob left")
    bob.send("/leave")
    bob.expect_exact("OK JOIN lobby")
    alice.expect_next_exact("PART rust bob left")
    carol.expect_next_exact("JOIN lobby bob")
    assert bob.users() == [("carol", "lobby"), ("bob", "lobby")]


def test_leave_in_lobby_is_435(trio):
    alice = trio[0]
    alice.send("/leave")
    alice.expect(r"ERR 435 IS_LOBBY( .*)?")


def test_list_shows_lobby_first_members_and_owner(trio):
    alice, bob, carol = trio
    alice.send("/add zeta")
    alice.expect_exact("OK ADD zeta")
    alice.expect_exact("OK JOIN zeta")
    bob.send("/add alpha")
    bob.expect_exact("OK ADD alpha")
    bob.expect_exact("OK JOIN alpha")
    carol.send("/join zeta")
    carol.expect_exact("OK JOIN zeta")
    entries, count = carol.listing("/list", "LIST")
    assert count == 3
    assert entries[0] == "ROOM lobby 0 -"
    assert sorted(entries[1:]) == ["ROOM alpha 1 bob", "ROOM zeta 2 alice"]


def test_users_lists_room_in_join_order_and_all(trio):
    alice, bob, carol = trio
    carol.send("/add den")
    carol.expect_exact("OK ADD den")
    alice.send("/join den")
    alice.expect_exact("OK JOIN den")
    assert alice.users() == [("carol", "den"), ("alice", "den")]
    assert bob.users() == [("bob", "lobby")]
    everyone = bob.users(all_=True)
    assert sorted(everyone) == [("alice", "den"), ("bob", "lobby"), ("carol", "den")]


def test_rm_moves_members_to_lobby_with_removed(trio):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    for u in (bob, carol):
        u.send("/join rust")
        u.expect_exact("OK JOIN rust")
    alice.send("/leave")                       # owner keeps the room
    alice.expect_exact("OK JOIN lobby")
    alice.send("/rm rust")
    alice.expect_exact("OK RM rust")
    bob.expect("REMOVED rust alice")
    carol.expect("REMOVED rust alice")
    got = {alice.readline(), alice.readline()}
    assert got == {"JOIN lobby bob", "JOIN lobby carol"}
    assert sorted(bob.users()) == [("alice", "lobby"), ("bob", "lobby"), ("carol", "lobby")]
    assert set(bob.rooms()) == {"lobby"}


def test_rm_with_owner_inside_moves_everyone(trio, server):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    alice.send("/rm rust")
    alice.expect_exact("OK RM rust")
    bob.expect_exact("REMOVED rust alice")
    carol.expect_exact("JOIN lobby bob")
    server.wait_log(r"room-rm room=rust by=alice")
    assert sorted(carol.users()) == [("alice", "lobby"), ("bob", "lobby"), ("carol", "lobby")]
    # the room is gone: it can be created again
    bob.send("/add rust")
    bob.expect_exact("OK ADD rust")


def test_rm_errors(trio):
    alice, bob, _ = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    bob.send("/rm rust")
    bob.expect(r"ERR 434 NOT_OWNER( .*)?")
    bob.send("/rm lobby")
    bob.expect(r"ERR 435 IS_LOBBY( .*)?")
    bob.send("/rm nowhere")
    bob.expect(r"ERR 430 NO_SUCH_ROOM( .*)?")
    bob.send("/rm")
    bob.expect(r"ERR 405 USAGE( .*)?")
    assert bob.rooms()["rust"] == (1, "alice")


def test_owner_keeps_room_after_leaving(trio):
    alice, bob, _ = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.send("/leave")
    alice.expect_exact("OK JOIN lobby")
    assert alice.rooms()["rust"] == (0, "alice")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")


def test_ownership_passes_to_longest_member_on_disconnect(trio, server):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.expect_exact("OK JOIN rust")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    carol.send("/join rust")
    carol.expect_exact("OK JOIN rust")
    bob.expect_exact("JOIN rust carol")
    alice.close()
    for u in (bob, carol):
        u.expect_exact("PART rust alice disconnected")
        u.expect_exact("OWNER rust bob")
    assert carol.rooms()["rust"] == (2, "bob")
    carol.send("/rm rust")
    carol.expect(r"ERR 434 NOT_OWNER( .*)?")
    bob.send("/rm rust")
    bob.expect_exact("OK RM rust")
    carol.expect_next_exact("REMOVED rust bob")


def test_ownership_passes_on_quit_too(trio):
    alice, bob, _ = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    alice.quit()
    bob.expect_exact("PART rust alice quit")
    bob.expect_exact("OWNER rust bob")


def test_empty_room_is_deleted_when_owner_disconnects(trio):
    alice, bob, _ = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    alice.send("/leave")
    alice.expect_exact("OK JOIN lobby")
    alice.close()
    bob.expect_exact("PART lobby alice disconnected")
    assert set(bob.rooms()) == {"lobby"}
    bob.send("/join rust")
    bob.expect(r"ERR 430 NO_SUCH_ROOM( .*)?")


def test_messages_stay_in_room(trio):
    alice, bob, carol = trio
    alice.send("/add rust")
    alice.expect_exact("OK ADD rust")
    bob.send("/join rust")
    bob.expect_exact("OK JOIN rust")
    alice.expect_exact("JOIN rust bob")
    bob.send("hi alice")
    alice.expect_next_exact("MSG rust bob hi alice")
    alice.send("hello bob")
    bob.expect_next_exact("MSG rust alice hello bob")
    # carol (lobby) saw only the two PART notices, then carol's sync marker
    carol.expect_next_exact("PART lobby alice left")
    carol.expect_next_exact("PART lobby bob left")
    bob.send("/leave")
    bob.expect_exact("OK JOIN lobby")
    carol.expect_next_exact("JOIN lobby bob")
    assert bob.sync(carol) == []


@pytest.mark.parametrize("order", [("ben", "cat"), ("cat", "ben")])
def test_rm_notices_are_complete_whatever_the_member_order(user, order):
    """Issue 15: after /rm den with ben and cat inside, everyone in the lobby
    afterwards (those already there and every moved member) learns of every
    moved member other than themselves, however the members joined."""
    owner, lobbyist = user("own"), user("lobbyist")
    members = {n: user(n) for n in order}
    owner.send("/add den")
    owner.expect_exact("OK JOIN den")
    for n in order:
        members[n].send("/join den")
        members[n].expect_exact("OK JOIN den")
    owner.send("/rm den")
    owner.expect_exact("OK RM den")
    owner.expect_exact("REMOVED den own")
    everyone = dict(members, own=owner)
    moved = ["own"] + list(order)
    for name, c in everyone.items():
        if name != "own":
            c.expect_exact("REMOVED den own")
        got = {c.readline() for _ in range(len(moved) - 1)}
        assert got == {"JOIN lobby %s" % m for m in moved if m != name}, (name, got)
    got = set()
    while len(got) < len(moved):
        line = lobbyist.readline()
        if line.startswith("JOIN lobby"):
            got.add(line)
    assert got == {"JOIN lobby %s" % m for m in moved}
    # nothing more: a marker sent now is the next line everyone sees
    lobbyist.send("done")
    for c in everyone.values():
        c.expect_next_exact("MSG lobby lobbyist done")
