# SPDX-License-Identifier: BSD-3-Clause
"""Connection limits: --max-clients (BYE SERVER_FULL) and
--register-timeout (BYE REGISTER_TIMEOUT)."""

import datetime
import math
import re
import time

from harness.timescale import scaled



def test_sixth_connection_gets_server_full_others_unaffected(server_factory, connect):
    srv = server_factory(["-m", "5"])
    users = [connect(srv.port).register("u%d" % i) for i in range(4)]
    unregistered = connect(srv.port)               # 5th: open, no nick yet
    extra = connect(srv.port, hello=False)
    got = extra.expect_closed()
    assert got and re.fullmatch(r"BYE SERVER_FULL( .*)?", got[0]), got
    srv.wait_log(r"refused peer=127\.0\.0\.1:%d reason=server-full" % extra.local_port)
    # everyone else still works
    unregistered.register("u4")
    users[0].send("still here")
    for u in users[1:] + [unregistered]:
        u.expect_exact("MSG lobby u0 still here")
    assert len(users[0].users(all_=True)) == 5


def test_slot_is_reusable_after_a_client_leaves(server_factory, connect):
    srv = server_factory(["-m", "2"])
    a = connect(srv.port).register("a")
    b = connect(srv.port).register("b")
    full = connect(srv.port, hello=False)
    assert full.expect_closed()[0].startswith("BYE SERVER_FULL")
    b.quit()
    a.expect_exact("PART lobby b quit")
    # the slot frees once the server reaped b's child: retry briefly
    deadline = time.monotonic() + 5
    while True:
        c = connect(srv.port, hello=False)
        first = c.readline()
        if first.startswith("HELLO "):
            break
        assert first.startswith("BYE SERVER_FULL") and time.monotonic() < deadline, first
        time.sleep(0.05)
    c.register("c")
    a.expect_exact("JOIN lobby c")


def test_register_timeout_disconnects_silent_client(server_factory, connect):
    # The registered client must register within the timeout, which races
    # the build's speed and the machine's load: 3 s, scaled for slow builds.
    t = max(3, int(math.ceil(scaled(3))))
    srv = server_factory(["--register-timeout", str(t)])
    registered = connect(srv.port).register("early")
    t0 = time.monotonic()
    idle = connect(srv.port)
    bye = idle.readline(timeout=t + scaled(5))
    elapsed = time.monotonic() - t0
    assert re.fullmatch(r"BYE REGISTER_TIMEOUT( .*)?", bye), bye
    # never early; how late is the server's precision, measured from its
    # own log in test_register_timeout_cuts_at_s_not_on_the_next_tick (from
    # here it would include the fork and the machine's load)
    assert elapsed >= t - 0.5, elapsed
    idle.expect_closed(timeout=5)      # promptness of the close: see test_session
    srv.wait_log(r"disconnect slot=\d+ (nick=\S* )?reason=register-timeout")
    # a registered client is not subject to the timeout
    registered.send("/users")
    registered.expect_next_exact("USER early lobby")
    connect(srv.port).register("late")
    registered.expect_exact("JOIN lobby late")


def _log_seconds(stamp):
    """'2026-12-05 16:32:05.611' -> seconds (only differences are used)."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_register_timeout_cuts_at_s_not_on_the_next_tick(server_factory, connect):
    """--register-timeout S cuts at S after the connection, not on the
    server's next one-second tick after S (it used to: a 1 s timeout cut at
    2.0 s).  Five clients connect 0.2 s apart, so on a once-a-second check
    their waits would spread over most of a second and one would wait
    S + 0.6 s or more; cut at their own deadlines they all wait S.

    "Never early" is measured by the client from before connect(), which
    precedes the server's clock start.  The precision is measured by the
    server's own log (connect line to disconnect line of each slot), so the
    time to fork a child (long in an ASan build on a loaded machine) does
    not count; the upper bound is scaled for slow builds (timescale.py)."""
    s = 2
    srv = server_factory(["--register-timeout", str(s)])
    starts, clients = [], []
    for _ in range(5):
        starts.append(time.monotonic())
        clients.append(connect(srv.port))
        time.sleep(0.2)
    for t0, c in zip(starts, clients):
        bye = c.readline(timeout=s + 5)
        assert time.monotonic() - t0 >= s                 # never early
        assert re.fullmatch(r"BYE REGISTER_TIMEOUT no nickname within %d seconds" % s,
                            bye), bye
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[\d+\] \w+ "
    waits = []
    for c in clients:
        con = srv.wait_log(stamp + r"connect slot=(\d+) pid=\d+ peer=127\.0\.0\.1:%d\b"
                           % c.local_port)
        cut = srv.wait_log(stamp + r"disconnect slot=%s nick=- reason=register-timeout"
                           % con.group(2))
        waits.append(_log_seconds(cut.group(1)) - _log_seconds(con.group(1)))
    assert min(waits) >= s - 0.002, waits             # ms stamps, both truncated
    # not at the next tick: cut on a 1 s tick, five waits 0.2 s apart in
    # phase would reach S + 0.8 s at least, on any machine; so the bound
    # comes from that, not from the build's speed, and leaves the server
    # 0.75 s of wake-up lateness (it was 0.5 s, scaled: a plain build at
    # load ~300 could fail it; ASan's 0.9 s missed the bug half the time)
    assert max(waits) < s + 0.75, waits


def test_failed_attempts_do_not_extend_register_timeout(server_factory, connect):
    """Bad nicknames do not restart the clock.  T is 6 s; client c sends a
    bad nickname at once and another one 2 s after the first was answered;
    a control client connects just after c and says nothing.  Cut at T
    after its connection, c is cut no later than the control (its deadline
    is the earlier one: whatever the load, the pass that cuts the control
    finds c due too); had the second attempt restarted c's clock, c would
    be cut about 2 s after the control.  Judged by the server's own log
    stamps against that reference from the same run, not by a fixed gap
    from the client's clock (5 s after the ERR: it raced the machine's load,
    issue 16 item 8).  Under a load that makes the server wake 2 s late
    both are cut in one pass and the bug goes unseen: never a false
    failure."""
    t = 6
    srv = server_factory(["--register-timeout", str(t)])
    c = connect(srv.port)
    ctl = connect(srv.port)      # connected after c: the later deadline
    c.send("bad nick")
    c.expect_err(420)
    time.sleep(2.0)
    c.send("bad nick")
    c.expect_err(420)
    got = c.expect_closed(timeout=t + 5)
    assert got and got[-1].startswith("BYE REGISTER_TIMEOUT"), got
    got = ctl.expect_closed(timeout=t + 5)
    assert got and got[-1].startswith("BYE REGISTER_TIMEOUT"), got
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[\d+\] \w+ "
    cuts = []
    for cl in (c, ctl):
        con = srv.wait_log(stamp + r"connect slot=(\d+) pid=\d+ peer=127\.0\.0\.1:%d\b"
                           % cl.local_port)
        cut = srv.wait_log(stamp + r"disconnect slot=%s nick=- reason=register-timeout"
                           % con.group(2))
        cuts.append(_log_seconds(cut.group(1)))
    late = cuts[0] - cuts[1]
    assert late < 1.0, "c cut %.3f s after the control: its clock restarted" % late
