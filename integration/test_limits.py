"""Connection limits: --max-clients (BYE SERVER_FULL) and
--register-timeout (BYE REGISTER_TIMEOUT)."""

import re
import time



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
    srv = server_factory(["--register-timeout", "1"])
    registered = connect(srv.port).register("early")
    t0 = time.monotonic()
    idle = connect(srv.port)
    bye = idle.readline(timeout=5)
    elapsed = time.monotonic() - t0
    assert re.fullmatch(r"BYE REGISTER_TIMEOUT( .*)?", bye), bye
    assert 0.5 <= elapsed <= 2.5, elapsed
    idle.expect_closed(timeout=5)      # promptness of the close: see test_session
    srv.wait_log(r"disconnect slot=\d+ (nick=\S* )?reason=register-timeout")
    # a registered client is not subject to the timeout
    registered.send("/users")
    registered.expect_next_exact("USER early lobby")
    connect(srv.port).register("late")
    registered.expect_exact("JOIN lobby late")


def test_failed_attempts_do_not_extend_register_timeout(server_factory, connect):
    srv = server_factory(["--register-timeout", "1"])
    c = connect(srv.port)
    c.send("bad nick")
    c.expect_err(420)
    got = c.expect_closed(timeout=5)
    assert got and got[-1].startswith("BYE REGISTER_TIMEOUT"), got
