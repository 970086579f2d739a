# SPDX-License-Identifier: BSD-3-Clause
"""The name profile across federated hubs (issue 12, item 3): every hub
computes the same key, so a lookalike of a nickname held on another hub is
refused by the Redis claim, a lookalike room on another hub exists, and a
whisper or /join typed in another form finds the one name.  Uses the redis
and hubs fixtures of test_federation.py."""

from harness.timescale import wait_until
from test_federation import hubs, redis, wait_presence  # fixtures

__all__ = ["hubs", "redis"]


def test_lookalike_nick_taken_on_another_hub(hubs, user, connect):
    bob = user("bob", hubs[0].port)
    for other in ["BOB", "b\u043eb", "\uff42\uff4f\uff42"]:   # Cyrillic o; fullwidth
        c = connect(hubs[1].port)
        c.send(other)
        c.expect_next_exact("ERR 422 NICK_TAKEN nickname %s is in use on another hub, "
                            "choose another" % other)
        c.close()
    zed = user("zed", hubs[2].port)
    wait_presence(zed, ["bob", "zed"])
    zed.send("/whisper B\u043eB hi")       # typed as a lookalike: the one bob
    zed.expect_next_exact("OK WHISPER bob")
    bob.expect_exact("WHISPER zed hi")


def test_lookalike_room_exists_on_another_hub(hubs, user):
    alice = user("alice", hubs[0].port)
    bob = user("bob", hubs[1].port)
    alice.send("/add \u03a3\u03bf\u03c6\u03af\u03b1")          # Σοφία
    alice.expect_exact("OK JOIN \u03a3\u03bf\u03c6\u03af\u03b1")
    wait_until(lambda: "\u03a3\u03bf\u03c6\u03af\u03b1" in bob.rooms(), timeout=10,
               interval=0.1, what="the room on hub1")
    bob.send("/add \u03a3\u039f\u03a6\u038a\u0391")            # ΣΟΦΊΑ
    bob.expect_next(r"ERR 431 ROOM_EXISTS .*")
    bob.send("/join \u03a3\u039f\u03a6\u038a\u0391")
    bob.expect_exact("OK JOIN \u03a3\u03bf\u03c6\u03af\u03b1")  # named as on hub0
    alice.expect_exact("JOIN \u03a3\u03bf\u03c6\u03af\u03b1 bob")
    bob.send("hi")
    alice.expect_exact("MSG \u03a3\u03bf\u03c6\u03af\u03b1 bob hi")


def test_korean_room_across_hubs(hubs, user):
    """A Korean room's key is a jamo skeleton, longer than its name: the
    events carrying it pass the checks on the other hub."""
    kim = user("김철수", hubs[0].port)
    lee = user("이영희", hubs[1].port)
    kim.send("/add 하늘")
    kim.expect_exact("OK JOIN 하늘")
    wait_until(lambda: "하늘" in lee.rooms(), timeout=10, interval=0.1, what="하늘 on hub1")
    lee.send("/join 하늘")
    lee.expect_exact("OK JOIN 하늘")
    kim.expect_exact("JOIN 하늘 이영희")
    lee.send("안녕하세요")
    kim.expect_exact("MSG 하늘 이영희 안녕하세요")
    kim.send("반가워요")
    lee.expect_exact("MSG 하늘 김철수 반가워요")
