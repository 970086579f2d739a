# SPDX-License-Identifier: BSD-3-Clause
"""Wake-ups: a delivery and a close reach the client at once, not on the
session child's safety tick (session.c TICK_SECS, 2 s).

The parent makes no kill() per delivery: its write to a child's pipe raises
the child's SIGUSR2 by itself (O_ASYNC + F_SETSIG on the read end), and
after closing a pipe it sends SIGUSR1 so that the child reads on to the EOF
(docs/ARCHITECTURE.md, "Batching").  Were either broken, the bytes would
still arrive, but only when the child's tick came, up to 2 s later.  These
tests space their events so that a broken wake-up always costs more than
BOUND: the bound follows from the tick, not from the speed of the code (a
delivery takes milliseconds, under ASan too), so it is not scaled.
"""

import time

TICK_S = 2.0
BOUND = 1.2  # well under the tick, far above any delivery


def test_each_paced_delivery_wakes_the_reader_at_once(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    waits = []
    for i in range(5):
        time.sleep(0.1)  # bob's child slept since its last wake-up
        t0 = time.monotonic()
        alice.send("paced %d" % i)
        bob.expect_next_exact("MSG lobby alice paced %d" % i, timeout=TICK_S * 2)
        waits.append(time.monotonic() - t0)
    assert max(waits) < BOUND, waits


def test_quit_closes_at_once_not_on_the_tick(user):
    alice = user("alice")
    bob = user("bob")
    alice.expect_next_exact("JOIN lobby bob")
    for i in range(3):
        alice.send("before %d" % i)  # bob's child wakes for these...
        bob.expect_next_exact("MSG lobby alice before %d" % i)
    time.sleep(0.1)  # ...and sleeps again before its last lines come
    t0 = time.monotonic()
    bob.send("/quit")
    assert bob.wait_eof(TICK_S * 2), "no close after /quit"
    waited = time.monotonic() - t0
    assert any(x.startswith("BYE QUIT") for x in bob.snapshot()), bob.snapshot()
    assert waited < BOUND, waited
