# SPDX-License-Identifier: BSD-3-Clause
"""Federation under partitions (issue 14): a Redis that hangs instead of
dying (SIGSTOP), hubs that die, rooms spelled one way everywhere.

A real redis-server on a free port and three hubs with small timeouts
(--redis-timeout 1000 ms, --nick-ttl 6 s) so that a stop of 10 s and one
of twice the TTL stay short.  Every test checks what clients see on the
wire and what the hubs log.
"""

import os
import signal
import time

import pytest

from harness.server import Redis
from harness.timescale import wait_until
from test_federation import wait_presence

pytestmark = [pytest.mark.federation]

NICK_TTL = 6
TIMEOUT_MS = 1000


@pytest.fixture
def redis(tmp_path):
    r = Redis(str(tmp_path)).start()
    yield r
    if r.proc is not None and r.proc.poll() is None:
        os.kill(r.proc.pid, signal.SIGCONT)
    r.stop()


@pytest.fixture
def hubs(redis, server_factory):
    out = []
    for i in range(3):
        srv = server_factory(["--redis", "127.0.0.1:%d" % redis.port,
                              "--hub-id", "hub%d" % i, "--nick-ttl", str(NICK_TTL),
                              "--redis-timeout", str(TIMEOUT_MS)],
                             name="hub%d" % i)
        srv.wait_log(r"federation: connected to redis", timeout=10)
        out.append(srv)
    return out


class Stopped:
    """SIGSTOP redis for a while; SIGCONT on leaving, whatever happens."""

    def __init__(self, redis):
        self.pid = redis.proc.pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.t0 = time.monotonic()
        return self

    def elapsed(self):
        return time.monotonic() - self.t0

    def sleep_until(self, seconds):
        left = seconds - self.elapsed()
        if left > 0:
            time.sleep(left)

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


def registration_time(connect, port, nick):
    c = connect(port)
    t0 = time.monotonic()
    c.send(nick)
    line = c.readline(30)
    return c, line, time.monotonic() - t0


def hung_redis(hubs, redis, user, connect, stop_s):
    """Chat, whispers and registrations on every hub across a Redis
    SIGSTOP of stop_s seconds; returns the clients and measurements."""
    a = user("ann", hubs[0].port)
    b = user("ben", hubs[1].port)
    c = user("cid", hubs[2].port)
    wait_presence(a, ["ann", "ben", "cid"])
    wait_presence(c, ["ann", "ben", "cid"])
    a.send("before")
    b.expect_exact("MSG lobby ann before")
    c.expect_exact("MSG lobby ann before")
    m = {}
    with Stopped(redis) as st:
        a.send("/whisper ben in flight")       # reaches Redis never, or late
        a.expect_exact("OK WHISPER ben")
        a.send("during 0")
        # every hub notices within the timeout (plus a probe and slack)
        for h in hubs:
            h.wait_log(r"federation: redis .* unavailable \(no reply for \d+ ms\)",
                       timeout=TIMEOUT_MS / 1000 * 2 + 5)
        m["detected_s"] = st.elapsed()
        # a registration on every hub is answered within the timeout
        m["reg"] = [registration_time(connect, h.port, "new%d" % i)
                    for i, h in enumerate(hubs)]
        for i in range(1, 5):
            a.send("during %d" % i)
        c.send("/whisper ann from cid")
        c.expect_exact("OK WHISPER ann")
        st.sleep_until(stop_s - 1)
        # nobody forgot anybody: the hubs are alive, Redis is not
        m["users_late"] = {n for n, _ in a.users(all_=True)}
        st.sleep_until(stop_s)
    t1 = time.monotonic()
    for h in hubs:
        h.wait_log(r"federation: redis .* back after \d+ ms out", timeout=15)
    # every hub's outage began after the SIGSTOP and ended before we saw its line
    m["seen_back_s"] = time.monotonic() - st.t0
    m["out_ms"] = [int(h.wait_log(r"back after (\d+) ms out").group(1)) for h in hubs]
    # everything said meanwhile arrives once, in order, after SIGCONT
    b.expect_exact("WHISPER ann in flight", timeout=15)
    for i in range(5):
        b.expect_exact("MSG lobby ann during %d" % i, timeout=15)
        c.expect_exact("MSG lobby ann during %d" % i, timeout=15)
    a.expect_exact("WHISPER cid from cid", timeout=15)
    m["catch_up_s"] = time.monotonic() - t1
    a.send("/whisper ben after")
    a.expect_exact("OK WHISPER ben")
    b.expect_exact("WHISPER ann after")
    for cl in (a, b, c):
        for line in cl.drain(0.5):
            assert "during" not in line and "in flight" not in line, (cl.nick, line)
    return a, b, c, m


def test_redis_sigstop_10s(hubs, redis, user, connect):
    """No verdict here times the server against a fixed bound (they raced
    the machine's load, issue 16 item 8): the detection is bounded by the
    log waits (scaled); a registration answered inside the Stopped block
    was answered while Redis could not reply (SIGCONT comes only after the
    block), so it was decided without Redis, and one that waited for Redis
    would get no answer at all within the read's timeout; the outage each
    hub logs is checked against what the test saw in the same run: it
    cannot be longer than from the SIGSTOP until its "back" line was seen,
    nor shorter than from the last detection seen to the SIGCONT."""
    stop_s = 10
    a, b, c, m = hung_redis(hubs, redis, user, connect, stop_s)
    for cl, line, took in m["reg"]:
        assert line.startswith("OK NICK new"), line
    assert {"ann", "ben", "cid"} <= m["users_late"], m
    for out in m["out_ms"]:
        assert (stop_s - m["detected_s"]) * 1000 - 50 <= out <= m["seen_back_s"] * 1000 + 50, m
    print("measured: %r" % {k: v for k, v in m.items() if k != "reg"},
          [round(t, 3) for _, _, t in m["reg"]])


def test_redis_sigstop_twice_the_ttl(hubs, redis, user, connect):
    """A stop of 2 x --nick-ttl: nobody is forgotten (the hubs were alive),
    registrations on every hub are answered within the timeout, and a nick
    given on two hubs meanwhile stays with the user who took it first,
    whatever hub reaches Redis first: the other gets BYE NICK_TAKEN, the
    first NOTICE NICK_KEPT, and a third hub refuses it."""
    stop_s = 2 * NICK_TTL
    a = user("amy", hubs[0].port)
    b = user("bo", hubs[1].port)
    c = user("cy", hubs[2].port)
    wait_presence(a, ["amy", "bo", "cy"])
    wait_presence(b, ["amy", "bo", "cy"])
    with Stopped(redis) as st:
        a.send("/whisper bo psst")
        a.expect_exact("OK WHISPER bo")
        for h in hubs:
            h.wait_log(r"federation: redis .* unavailable", timeout=TIMEOUT_MS / 1000 * 2 + 5)
        took = []
        first, t1, d1 = registration_time(connect, hubs[1].port, "Kai")
        time.sleep(0.05)
        second, t0, d0 = registration_time(connect, hubs[0].port, "kai")
        took += [d1, d0]
        assert t1 == "OK NICK Kai" and t0 == "OK NICK kai", (t1, t0)
        for i, h in enumerate(hubs):
            cl, line, d = registration_time(connect, h.port, "late%d" % i)
            assert line == "OK NICK late%d" % i, line
            took.append(d)
        # answered while Redis is stopped: decided without it (see
        # test_redis_sigstop_10s); the times are reported (below), not judged
        st.sleep_until(stop_s - 1)
        users = {n for n, _ in a.users(all_=True)}
        assert {"amy", "bo", "cy"} <= users, users
        st.sleep_until(stop_s)
    b.expect_exact("WHISPER amy psst", timeout=15)
    # Kai on hub1 came first: kai on hub0 goes, Kai is told
    gone = second.expect(r"BYE NICK_TAKEN .*", timeout=NICK_TTL * 2)
    assert "earlier" in gone, gone
    first.expect(r"NOTICE NICK_KEPT .*Kai.*", timeout=NICK_TTL * 2)
    first.send("/users")
    first.expect(r"END USERS \d+")
    d = connect(hubs[2].port)
    d.send("KAI")
    d.expect_err(422)
    # whispers work again both ways, and presence is whole
    c.send("/whisper amy back")
    c.expect_exact("OK WHISPER amy")
    a.expect_exact("WHISPER cy back")
    wait_presence(c, ["amy", "bo", "cy", "Kai", "late0", "late1", "late2"])
    print("registration times during the stop: %r" % [round(t, 3) for t in took])


def test_dead_hub_users_part_with_hub_lost(hubs, user):
    """A hub SIGKILLed is forgotten after --nick-ttl of silence; the
    members of its users' rooms on the other hubs see PART ROOM NICK
    hub-lost, like a netsplit, once per user and room."""
    gil = user("gil", hubs[0].port)
    hal = user("hal", hubs[1].port)
    ivy = user("ivy", hubs[2].port)
    user("ian", hubs[2].port)
    gil.send("/add Den")
    gil.expect_exact("OK JOIN Den")
    wait_until(lambda: "Den" in ivy.rooms(), timeout=10, interval=0.1, what="Den on hub2")
    ivy.send("/join Den")
    ivy.expect_exact("OK JOIN Den")
    gil.expect_exact("JOIN Den ivy")
    wait_presence(hal, ["gil", "hal", "ivy", "ian"])
    wait_presence(gil, ["gil", "hal", "ivy", "ian"])
    gil.drain(0.2)
    hal.drain(0.2)
    t0 = time.monotonic()
    hubs[2].signal(signal.SIGKILL)
    gil.expect_exact("PART Den ivy hub-lost", timeout=NICK_TTL + 10)
    took = time.monotonic() - t0
    hal.expect_exact("PART lobby ian hub-lost", timeout=5)
    for cl in (gil, hal):
        rest = cl.drain(0.5)
        assert not [ln for ln in rest if ln.startswith("PART")], (cl.nick, rest)
    # forgotten for its silence, and only after a whole TTL of it, as the
    # hub measured it (a bound on the time since the kill raced the load:
    # hub2's last presence may have been late)
    silent = hubs[0].wait_log(r"federation: hub hub2 silent for (\d+) ms, forgetting its "
                              r"users \(2 parted: hub-lost\)")
    assert int(silent.group(1)) >= NICK_TTL * 1000, silent.group(0)
    print("PART hub-lost %.2f s after SIGKILL (--nick-ttl %d)" % (took, NICK_TTL))


def test_room_spelled_as_created_on_every_hub(hubs, user):
    """Issue 14 item 2: a room has one spelling everywhere, the one it was
    created with: /join in any case answers OK JOIN with it on every hub,
    and JOIN, MSG, PART, /list and REMOVED use it."""
    a = user("ari", hubs[0].port)
    b = user("bea", hubs[1].port)
    c = user("cal", hubs[2].port)
    a.send("/add MiXed")
    a.expect_exact("OK JOIN MiXed")
    for cl in (b, c):
        wait_until(lambda: "MiXed" in cl.rooms(), timeout=10, interval=0.1,
                   what="MiXed on %s's hub" % cl.nick)
    b.send("/join MIXED")
    b.expect_exact("OK JOIN MiXed")
    a.expect_exact("JOIN MiXed bea")
    c.send("/join mixed")
    c.expect_exact("OK JOIN MiXed")
    a.expect_exact("JOIN MiXed cal")
    b.expect_exact("JOIN MiXed cal")
    b.send("from bea")
    a.expect_exact("MSG MiXed bea from bea")
    c.expect_exact("MSG MiXed bea from bea")
    c.send("from cal")
    a.expect_exact("MSG MiXed cal from cal")
    b.expect_exact("MSG MiXed cal from cal")
    for cl in (a, b, c):
        wait_until(lambda: cl.rooms().get("MiXed", (0,))[0] == 3, timeout=10,
                   interval=0.1, what="MiXed with 3 members on %s's hub" % cl.nick)
        names = [n for n in cl.rooms() if n.lower() == "mixed"]
        assert names == ["MiXed"], (cl.nick, names)
    c.send("/leave")
    c.expect_exact("OK JOIN lobby")
    a.expect_exact("PART MiXed cal left")
    b.expect_exact("PART MiXed cal left")
    a.send("/rm mixed")
    a.expect_exact("OK RM MiXed")
    b.expect_exact("REMOVED MiXed ari")


def test_gap_past_retention_is_told(hubs, redis, user):
    """Issue 14 item 3: events a hub never read because the stream was
    trimmed past them (its bridge stopped, the stream cut to nothing) are
    a jump in the sender's sequence numbers: logged, counted in
    fed_events_lost, and the members of the sender's users' rooms get
    NOTICE MESSAGES_LOST before the next line, which arrives once."""
    a = user("ada", hubs[0].port)
    b = user("bob", hubs[1].port)
    wait_presence(b, ["ada", "bob"])
    a.send("seen")
    b.expect_exact("MSG lobby ada seen")
    s0 = b.stats()
    pid = int(hubs[1].wait_log(r"federation: bridge pid=(\d+)").group(1))
    os.kill(pid, signal.SIGSTOP)        # hub1 reads nothing for a while
    try:
        for i in range(5):
            a.send("lost %d" % i)
        wait_until(lambda: a.stats()["fed_unacked"] == 0, timeout=5, interval=0.05,
                   what="hub0's events acknowledged")
        assert redis.cli("XTRIM", "fc:ev", "MAXLEN", "0") != ""
        a.send("after")
        wait_until(lambda: a.stats()["fed_unacked"] == 0, timeout=5, interval=0.05,
                   what="'after' acknowledged")
    finally:
        os.kill(pid, signal.SIGCONT)
    # the XREAD in flight at the SIGSTOP may still bring the first ones
    notice = b.expect(r"NOTICE MESSAGES_LOST (\d+) events from hub hub0 .*", timeout=10)
    n = int(notice.split()[2])
    read = [ln for ln in b.skipped if ln.startswith("MSG lobby ada lost")]
    assert read == ["MSG lobby ada lost %d" % i for i in range(5 - n)], (read, notice)
    assert 1 <= n <= 5, notice
    b.expect_next_exact("MSG lobby ada after")
    b.assert_silent(0.3)
    hubs[1].wait_log(r"federation: %d events of hub hub0 lost \(seq \d+ to \d+ of hub0/" % n)
    s1 = b.stats()
    assert s1["fed_events_lost"] - s0["fed_events_lost"] == n, (s0, s1)
    # the sender's own hub lost nothing and says nothing
    assert a.stats()["fed_events_lost"] == 0


def test_catch_up_burst_does_not_cut_a_reader_that_keeps_up(hubs, user):
    """Issue 14 item 3: 2 MiB of another hub's events held back (the
    reader hub's bridge stopped) arrive at once when it resumes; a client
    that reads all the time is not cut as a slow consumer (default 1 MiB
    backlog): the parent hands the burst to the room in slices."""
    a = user("ada", hubs[0].port)
    b = user("bob", hubs[1].port)
    wait_presence(b, ["ada", "bob"])
    pid = int(hubs[1].wait_log(r"federation: bridge pid=(\d+)").group(1))
    n, pad = 4400, "x" * 1900
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(n):
            a.send("burst %d %s" % (i, pad))
        wait_until(lambda: a.stats()["fed_unacked"] == 0, timeout=30, interval=0.1,
                   what="hub0's burst acknowledged")
    finally:
        os.kill(pid, signal.SIGCONT)
    got = 0
    while got < n:
        line = b.readline(30)
        assert not line.startswith("BYE"), (got, line)
        if line.startswith("MSG lobby ada burst "):
            assert line == "MSG lobby ada burst %d %s" % (got, pad), (got, line[:40])
            got += 1
    assert "slow-consumer" not in hubs[1].log()
