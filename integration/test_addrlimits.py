# SPDX-License-Identifier: BSD-3-Clause
"""Per-address connection limits (docs/SECURITY.md): --max-per-addr
(BYE TOO_MANY_CONNECTIONS), --max-unreg-per-addr (BYE TOO_MANY_UNREGISTERED),
--reserve (the oldest unregistered connection gets BYE REGISTER_EVICTED when
the pool of unregistered connections is full) and --exempt (loopback by
default, so the benchmarks and the other tests are not limited).

All of 127.0.0.0/8 is loopback on Linux: a client socket bound to 127.0.0.2
before connect() reaches the server on 127.0.0.1 from another address.  The
tests that need limits on those addresses pass --exempt none.
"""

import re
import time

from harness.timescale import wait_until

HELLO = r"HELLO forkchatd/\S+( .*)?"


def first_line(c, timeout=5):
    return c.readline(timeout=timeout)


def test_idle_unregistered_from_one_address_do_not_lock_out(server_factory, connect):
    """Issue 12 item 4: with -m N, N idle connections from one address
    filled every slot for --register-timeout.  Now that address holds at
    most --max-unreg-per-addr of them and another peer gets in."""
    n = 6
    srv = server_factory(["-m", str(n), "--exempt", "none"])
    attacker = [connect(srv.port, hello=False, source="127.0.0.2") for _ in range(n)]
    got = [first_line(c) for c in attacker]
    hello = [l for l in got if re.fullmatch(HELLO, l)]
    refused = [l for l in got if l.startswith("BYE ")]
    assert len(hello) == 3, got                    # default --max-unreg-per-addr
    assert len(refused) == n - 3, got
    for line in refused:
        assert re.fullmatch(r"BYE TOO_MANY_UNREGISTERED \S.*", line), line
    for c, line in zip(attacker, got):
        if line.startswith("BYE"):
            assert c.expect_closed() == []         # nothing after the BYE
    # another peer (and a plain loopback one) can still connect and register
    other = connect(srv.port, source="127.0.0.3").register("victim")
    local = connect(srv.port).register("local")
    other.send("still in")
    local.expect_exact("MSG lobby victim still in")
    srv.wait_log(r"refused peer=127\.0\.0\.2:\d+ reason=too-many-unregistered")


def test_per_address_total_limit(server_factory, connect):
    srv = server_factory(["--exempt", "none", "--max-per-addr", "3"])
    users = [connect(srv.port, source="127.0.0.2").register("u%d" % i) for i in range(3)]
    extra = connect(srv.port, hello=False, source="127.0.0.2")
    got = extra.expect_closed()
    assert len(got) == 1 and re.fullmatch(
        r"BYE TOO_MANY_CONNECTIONS your address has 3 connections open\b.*", got[0]), got
    srv.wait_log(r"warn refused peer=127\.0\.0\.2:%d reason=too-many-connections" %
                 extra.local_port)
    # other addresses are not affected
    connect(srv.port, source="127.0.0.3").register("other")
    assert users[1].stats()["refused_connections"] == 1
    # a connection that ends gives its place back (once its child is reaped)
    users[0].quit()

    def try_again():
        c = connect(srv.port, hello=False, source="127.0.0.2")
        line = first_line(c)
        if line.startswith("BYE TOO_MANY_CONNECTIONS"):
            return None
        assert re.fullmatch(HELLO, line), line
        return c
    c = wait_until(try_again, 5, interval=0.05, what="a place for 127.0.0.2")
    c.register("back")
    users[1].expect_exact("JOIN lobby back")


def test_registering_frees_an_unregistered_place(server_factory, connect):
    srv = server_factory(["--exempt", "none", "--max-unreg-per-addr", "2"])
    a = connect(srv.port, source="127.0.0.2")
    b = connect(srv.port, source="127.0.0.2")
    c = connect(srv.port, hello=False, source="127.0.0.2")
    got = c.expect_closed()
    assert got and got[0].startswith("BYE TOO_MANY_UNREGISTERED your address has 2 "), got
    a.register("alice")
    d = connect(srv.port, source="127.0.0.2")     # alice no longer counts
    d.register("dave")
    b.register("bob")
    srv.wait_log(r"register slot=\d+ nick=bob")


def test_reserve_evicts_the_oldest_unregistered(server_factory, connect):
    """-m 5 --reserve 2: at most 3 unregistered connections; a 4th peer
    takes the place of the one that waited longest, registered users are
    never touched, and the reserved slot is there for the newcomer."""
    srv = server_factory(["-m", "5", "--reserve", "2", "--exempt", "none",
                          "--max-unreg-per-addr", "0"])
    reg = connect(srv.port, source="127.0.0.9").register("settled")
    idle = []
    for i in range(3):
        idle.append(connect(srv.port, source="127.0.0.%d" % (2 + i)))
        time.sleep(0.05)                           # a clear order of age
    newcomer = connect(srv.port, source="127.0.0.6")   # evicts idle[0]
    got = idle[0].expect_closed()
    assert got and re.fullmatch(r"BYE REGISTER_EVICTED \S.*", got[0]), got
    srv.wait_log(r"disconnect slot=\d+ nick=- reason=register-evicted")
    newcomer.register("newcomer")
    reg.expect_exact("JOIN lobby newcomer")
    # the others stayed
    for c in idle[1:]:
        c.send("/help")
        c.expect_exact("END HELP")
    reg.send("/users")
    reg.expect_exact("END USERS 2")


def test_loopback_is_exempt_by_default(server_factory, connect):
    """The benchmarks open up to 1000 connections from 127.0.0.1 before
    registering them: with the default options none is limited."""
    srv = server_factory(["-m", "30"])
    srv.wait_log(r"limits max-per-addr=10 max-unreg-per-addr=3 reserve=3 "
                 r"exempt=127\.0\.0\.0/8,::1/128")
    clients = [connect(srv.port) for _ in range(30)]   # all unregistered
    for i, c in enumerate(clients):
        c.register("n%d" % i)
    clients[0].send("/users")
    clients[0].expect_exact("END USERS 30")
    assert "refused" not in srv.log() and "evicted" not in srv.log()


def test_exempt_network_option(server_factory, connect):
    srv = server_factory(["--exempt", "none", "--exempt", "127.0.0.4/32",
                          "--max-per-addr", "1"])
    srv.wait_log(r"exempt=127\.0\.0\.4/32\b")
    free = [connect(srv.port, source="127.0.0.4") for _ in range(3)]
    assert all(c.hello for c in free)
    connect(srv.port, source="127.0.0.5")
    limited = connect(srv.port, hello=False, source="127.0.0.5")
    assert limited.expect_closed()[0].startswith("BYE TOO_MANY_CONNECTIONS")


def test_refusal_log_is_rate_limited(server_factory, connect):
    """A flood of refused connections writes a bounded number of lines:
    the first 20 of a 10 s window one by one, then one summary with the
    count of the others."""
    srv = server_factory(["--exempt", "none", "--max-per-addr", "1"])
    keep = connect(srv.port, source="127.0.0.2")
    flood = 50
    t0 = time.monotonic()
    for _ in range(flood):
        c = connect(srv.port, hello=False, source="127.0.0.2")
        assert c.expect_closed()[0].startswith("BYE TOO_MANY_CONNECTIONS")
        c.close()
    took = time.monotonic() - t0
    summary = re.compile(r"refused (\d+) more connections in the last \d+ s \(not "
                         r"logged one by one\): server-full=0 "
                         r"too-many-connections=(\d+) too-many-unregistered=0")

    def accounted():
        log = srv.log()
        lines = len(re.findall(r"warn refused peer=127\.0\.0\.2:\d+ "
                               r"reason=too-many-connections", log))
        sums = [(int(a), int(b)) for a, b in summary.findall(log)]
        return (lines, sums) if lines + sum(a for a, _ in sums) == flood else None
    # the summary comes once the 10 s window is over (on the 1 s tick)
    lines, sums = wait_until(accounted, 15, interval=0.2,
                             what="every refusal logged or summarised")
    assert sums and all(a == b for a, b in sums), sums
    if took < 9:                                   # the flood fit one window
        assert lines == 20 and sums == [(flood - 20, flood - 20)], (lines, sums)
    keep.register("kept")
