# SPDX-License-Identifier: BSD-3-Clause
"""Live statistics (PROTOCOL.md "/stats", SERVER-CLI.md --stats-interval):
the STAT/END STATS reply, counters that move exactly as the traffic says
(messages_in, deliveries, lines_out, slow_consumer_cuts), the fan-out
latency histogram, and the periodic `stats ...` log line."""

import re
import time

import pytest

from harness.timescale import wait_until

NAMES = ["uptime_s", "clients", "users", "rooms", "messages_in", "lines_out",
         "deliveries", "slow_consumer_cuts", "fanout_p50_us", "fanout_p99_us",
         "fanout_max_us", "refused_connections"]
LOG_RX = r"info stats " + " ".join(r"%s=\d+" % n for n in NAMES)


def test_stats_reply_names_order_and_start_values(server, user):
    alice = user("alice")
    st = alice.stats()
    assert list(st) == NAMES
    assert st["clients"] == 1 and st["users"] == 1
    assert st["rooms"] == 1                    # the lobby counts
    assert st["messages_in"] == 0 and st["deliveries"] == 0
    assert st["slow_consumer_cuts"] == 0
    assert st["uptime_s"] < 60
    assert st["fanout_p50_us"] <= st["fanout_p99_us"] <= st["fanout_max_us"]
    assert st["fanout_max_us"] > 0             # the registration was a batch


def test_stats_refused_before_registration_and_with_arguments(server, connect, user):
    c = connect()
    c.send("/stats")
    c.expect_err(410)
    bob = user("bob")
    bob.send("/stats now")
    bob.expect_err(405)
    bob.send("/STATS")                         # case-insensitive like the others
    bob.expect_exact("END STATS 12")


def test_stats_counters_follow_one_message_in_a_room_of_n(server, user):
    n = 4
    members = [user("m%d" % i) for i in range(n)]
    members[0].send("/add room")
    members[0].expect_exact("OK ADD room")
    members[0].expect_exact("OK JOIN room")
    for m in members[1:]:
        m.send("/join room")
        m.expect_exact("OK JOIN room")
    for i, m in enumerate(members[1:], 1):     # wait for the JOIN notices
        for other in members[i + 1:]:
            m.expect_exact("JOIN room %s" % other.nick)
    watcher = user("watcher")                  # stays in the lobby
    watcher.drain(0.1)

    s0 = watcher.stats()
    assert s0["clients"] == n + 1 and s0["users"] == n + 1 and s0["rooms"] == 2
    members[1].send("hello room")
    for m in members:
        if m is not members[1]:
            m.expect_exact("MSG room %s hello room" % members[1].nick)
    s1 = watcher.stats()

    assert s1["messages_in"] - s0["messages_in"] == 1
    assert s1["deliveries"] - s0["deliveries"] == n - 1
    # lines queued in between: the first reply (one STAT per name + END)
    # and n-1 MSG
    assert s1["lines_out"] - s0["lines_out"] == len(NAMES) + 1 + (n - 1)
    assert s1["slow_consumer_cuts"] == 0
    assert s1["fanout_max_us"] >= s0["fanout_max_us"]
    assert s1["uptime_s"] >= s0["uptime_s"]

    # a message alone in a room is accepted but delivered to nobody
    lone = user("lone")
    lone.send("/add empty")
    lone.expect_exact("OK ADD empty")
    lone.expect_exact("OK JOIN empty")
    lone.send("anyone?")
    s2 = lone.stats()
    assert s2["messages_in"] - s1["messages_in"] == 1
    assert s2["deliveries"] == s1["deliveries"]
    # whispers and commands are not room messages
    watcher.send("/whisper lone psst")
    watcher.expect_exact("OK WHISPER lone")
    s3 = watcher.stats()
    assert s3["messages_in"] == s2["messages_in"]
    assert s3["deliveries"] == s2["deliveries"]


def test_stats_clients_counts_unregistered_connections(server, connect, user):
    a = user("a")
    connect()                                  # connected, no nickname yet
    st = a.stats()
    assert st["clients"] == 2 and st["users"] == 1


@pytest.mark.timeout(60)
def test_stats_counts_a_slow_consumer_cut(server_factory, connect):
    srv = server_factory(["--max-backlog", "4096"])
    victim = connect(srv.port, rcvbuf=4096, name="victim").register("victim")
    sender = connect(srv.port).register("sender")
    victim.send("/add flood")
    victim.expect_exact("OK ADD flood")
    victim.expect_exact("OK JOIN flood")
    sender.send("/join flood")
    sender.expect_exact("OK JOIN flood")
    assert sender.stats()["slow_consumer_cuts"] == 0
    line = "x" * 1000
    rx = re.compile(r"disconnect slot=\d+ nick=victim reason=slow-consumer")
    deadline = time.monotonic() + 30
    while not rx.search(srv.log()):
        assert time.monotonic() < deadline, "victim never cut: %r" % srv.log()[-400:]
        sender.send_lines([line] * 100)
        time.sleep(0.01)
    st = wait_until(lambda: (lambda s: s if s["slow_consumer_cuts"] == 1 else None)(
        sender.stats()), 5.0, what="slow_consumer_cuts == 1")
    assert st["users"] == 1                    # the victim left the chat at once


def test_stats_log_line_every_interval_and_at_shutdown(server_factory, user):
    srv = server_factory(["--stats-interval", "1"])
    u = user("u", port=srv.port)
    u.send("/add r")
    u.expect_exact("OK JOIN r") if False else u.expect_exact("OK JOIN r")
    srv.wait_log(LOG_RX + r"\n(?:.*\n)*.*" + LOG_RX, timeout=5.0)   # two lines
    u.close()
    srv.stop()
    log = srv.log()
    lines = log.splitlines()
    assert re.search(LOG_RX, lines[-2]), lines[-3:]
    assert lines[-1].endswith("shutdown complete"), lines[-3:]


def test_stats_interval_zero_logs_only_at_shutdown(server_factory):
    srv = server_factory(["--stats-interval", "0"])
    time.sleep(1.5)
    assert not re.search(LOG_RX, srv.log())
    srv.stop()
    assert len(re.findall(LOG_RX, srv.log())) == 1
