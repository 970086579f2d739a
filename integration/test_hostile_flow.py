# SPDX-License-Identifier: BSD-3-Clause
"""Flow control under attack (issue 17, goal 4; PROTOCOL.md "Slow consumers
and flow control"): output a client makes for others must pace *that
client* when a recipient is behind, whatever the line is (a room message,
a whisper, the JOIN/PART lines of a join/leave storm), so that a reader
that keeps reading, slower than the attacker writes but far above the cut
threshold, is never cut; and join/leave storms during a burst lose,
duplicate or reorder nothing for the members who stay.

Each attacker is a forked process with its own connection that writes as
fast as the server takes its bytes and reads its own replies; the test
process reads the victim at a bounded pace (far above the documented cut
threshold).  Nothing asserts a duration: outcomes only (bytes, order, cut
lines in the log)."""

import os
import re
import select
import time

import pytest

from harness.client import pump_all
from harness.timescale import scaled

SMALL = ["--max-backlog", "65536"]   # high-water 16 KiB, memory bound 1 MiB
CUT = re.compile(r"disconnect slot=\d+ nick=(\S+) reason=slow-consumer")


def attacker(sock, payload, seconds):
    """Fork a process that sends payload on sock as fast as it is taken,
    reading (and dropping) what the server sends back; returns its pid."""
    pid = os.fork()
    if pid == 0:                                  # pragma: no cover (child)
        try:
            sock.setblocking(False)
            off, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                want_w = [sock] if off < len(payload) else []
                r, w, _ = select.select([sock], want_w, [], 0.5)
                if r:
                    try:
                        if not sock.recv(1 << 16):
                            break
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        break
                if w:
                    try:
                        off += sock.send(payload[off:off + (1 << 16)])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        break
        finally:
            os._exit(0)
    return pid


def reap(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def paced_read(client, want, deadline, chunk=32768, nap=0.01):
    """Read client's socket at most chunk bytes every nap seconds (some
    3 MB/s: 150 times the cut threshold at --max-backlog 65536) until want()
    is true, EOF, or deadline.  Lines go to client.lines."""
    client.keep_history = False
    while not want() and not client.eof and time.monotonic() < deadline:
        r, _, _ = select.select([client.sock], [], [], nap)
        if r:
            try:
                data = client.sock.recv(chunk)
            except OSError:
                data = b""
            if not data:
                client.eof = True
                break
            client._feed(data)
        time.sleep(nap)


@pytest.mark.timeout(120)
def test_whisper_flood_paces_the_whisperer_not_cut_the_reader(server_factory, connect):
    """An attacker whispers a reader faster than it reads: the attacker is
    paced, the reader gets every whisper once, in order, and is not cut
    (the old server paced only room messages: the reader was cut as soon
    as its backlog passed the memory bound)."""
    srv = server_factory(SMALL)
    victim = connect(srv.port, rcvbuf=16384, name="victim").register("victim")
    atk = connect(srv.port, name="atk").register("atk")
    victim.expect_exact("JOIN lobby atk")
    n, text = 3000, "w" * 1900           # 5.7 MB, 90x the backlog bound
    atk.send("/add den")                 # in another room than the victim
    atk.expect_exact("OK JOIN den")
    payload = b"".join(b"/w victim %d %s\n" % (k, text.encode()) for k in range(n))
    pid = attacker(atk.sock, payload, scaled(90))
    got = []
    try:
        def want():
            for ln in victim.lines:
                if ln.startswith("WHISPER atk "):
                    got.append(int(ln.split(" ")[2]))
            victim.lines.clear()
            return len(got) >= n
        paced_read(victim, want, time.monotonic() + scaled(90))
    finally:
        reap(pid)
    cuts = CUT.findall(srv.log())
    assert cuts == [], (cuts, [l for l in srv.log().splitlines() if "slow" in l][:5])
    assert got == list(range(n)), (len(got), victim.eof)


@pytest.mark.timeout(120)
def test_join_leave_storm_paces_the_stormer_not_cut_the_reader(server_factory, connect):
    """An attacker joins and leaves a room in a loop: every lobby member
    gets its JOIN and PART lines.  A lobby reader slower than the storm is
    not cut; the stormer is paced.  The reader gets the storm's lines in
    order (JOIN, PART, JOIN, PART ...) and then a marker."""
    srv = server_factory(SMALL)
    victim = connect(srv.port, rcvbuf=16384, name="victim").register("victim")
    atk = connect(srv.port, name="atk").register("atk")
    victim.expect_exact("JOIN lobby atk")
    atk.send("/add den")
    atk.expect_exact("OK JOIN den")
    atk.send("/leave")
    atk.expect_exact("OK JOIN lobby")
    victim.expect_exact("JOIN lobby atk")
    n = 60000                            # 60000 x 2 lines of ~20 bytes
    payload = b"/join den\n/leave\n" * n + b"done\n"
    pid = attacker(atk.sock, payload, scaled(90))
    seen = {"join": 0, "part": 0, "bad": [], "done": False}
    try:
        def want():
            for ln in victim.lines:
                if ln == "PART lobby atk left":
                    if seen["part"] != seen["join"]:
                        seen["bad"].append(ln)
                    seen["part"] += 1
                elif ln == "JOIN lobby atk":
                    seen["join"] += 1
                    if seen["join"] != seen["part"]:
                        seen["bad"].append(ln)
                elif ln == "MSG lobby atk done":
                    seen["done"] = True
                else:
                    seen["bad"].append(ln)
            victim.lines.clear()
            return seen["done"]
        paced_read(victim, want, time.monotonic() + scaled(90))
    finally:
        reap(pid)
    cuts = CUT.findall(srv.log())
    assert cuts == [], (cuts, [l for l in srv.log().splitlines() if "slow" in l][:5])
    assert seen["done"] and seen["part"] == n and seen["join"] == n, seen
    assert seen["bad"] == [], seen["bad"][:5]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_churn_during_a_paced_burst_loses_nothing_for_those_who_stay(
        server_factory, connect):
    """Two senders flood a room while a steady but slower reader keeps it
    behind (so the senders are paused and their records held), two members
    leave and rejoin in a loop and one quits mid-burst: the members who stay
    get every message once, in order; a churner gets nothing of the room
    between its leave and its next join, and within each stay every
    sender's messages without a gap; nobody is cut."""
    srv = server_factory(SMALL)
    names = ["own", "slow", "stay1", "stay2", "ch1", "ch2", "quitter", "s1", "s2"]
    c = {}
    for n in names:
        c[n] = connect(srv.port, name=n,
                       rcvbuf=4096 if n == "slow" else None).register(n)
    c["own"].send("/add busy")
    c["own"].expect_exact("OK JOIN busy")
    for n in names[1:]:
        c[n].send("/join busy")
        c[n].expect_exact("OK JOIN busy")
    for n in names[:-1]:
        c[n].expect_exact("JOIN busy s2")
    for x in c.values():
        x.lines.clear()
        x.keep_history = False
    per, pad = 5000, "p" * 200
    pids = []
    for s in ("s1", "s2"):
        payload = b"".join(b"%s %d %s\n" % (s.encode(), k, pad.encode())
                           for k in range(per))
        pids.append(attacker(c[s].sock, payload, scaled(150)))
    stayers = {n: {"s1": [], "s2": []} for n in ("own", "stay1", "stay2", "slow")}
    churn = {n: {"in": True, "stays": [{"s1": [], "s2": []}], "out_msgs": [],
                 "got": 0} for n in ("ch1", "ch2")}
    quit_sent = False
    deadline = time.monotonic() + scaled(150)
    last_slow = 0.0
    try:
        while time.monotonic() < deadline:
            if all(len(v["s1"]) == per and len(v["s2"]) == per
                   for v in stayers.values()):
                break
            fast = [c[n] for n in ("own", "stay1", "stay2", "ch1", "ch2")]
            if not quit_sent:
                fast.append(c["quitter"])
            pump_all(fast, 0.01)
            if time.monotonic() - last_slow >= 0.01:   # ~400 KB/s at most
                last_slow = time.monotonic()
                r, _, _ = select.select([c["slow"].sock], [], [], 0)
                if r:
                    data = c["slow"].sock.recv(4096)
                    if not data:
                        c["slow"].eof = True
                    c["slow"]._feed(data)
            for n, st in stayers.items():
                for ln in c[n].lines:
                    if ln.startswith("MSG busy s"):
                        _, _, who, _, k, _ = ln.split(" ")
                        st[who].append(int(k))
                c[n].lines.clear()
            for n, st in churn.items():
                for ln in c[n].lines:
                    if ln.startswith("MSG busy s"):
                        _, _, who, _, k, _ = ln.split(" ")
                        if st["in"]:
                            st["stays"][-1][who].append(int(k))
                            st["got"] += 1
                        else:
                            st["out_msgs"].append(ln[:40])
                    elif ln == "OK JOIN lobby":
                        st["in"] = False
                        c[n].send("/join busy")
                    elif ln == "OK JOIN busy":
                        st["in"] = True
                        st["stays"].append({"s1": [], "s2": []})
                        st["got"] = 0
                c[n].lines.clear()
                if st["in"] and st["got"] >= 300:
                    st["got"] = -10 ** 9              # leave once per stay
                    c[n].send("/leave")
            if not quit_sent and len(stayers["own"]["s1"]) >= per // 2:
                c["quitter"].send("/quit mid-burst")
                quit_sent = True
    finally:
        for pid in pids:
            reap(pid)
    log = srv.log()
    assert CUT.findall(log) == [], [l for l in log.splitlines() if "slow" in l][:5]
    for n, st in stayers.items():
        for s in ("s1", "s2"):
            assert st[s] == list(range(per)), (n, s, len(st[s]))
    for n, st in churn.items():
        assert st["out_msgs"] == [], (n, st["out_msgs"][:3])
        assert len(st["stays"]) >= 3, (n, len(st["stays"]))
        for stay in st["stays"]:
            for s in ("s1", "s2"):
                seq = stay[s]
                assert seq == list(range(seq[0], seq[0] + len(seq))) if seq else True, (
                    n, s, seq[:5])
    assert quit_sent and re.search(r"disconnect slot=\d+ nick=quitter reason=quit", log), \
        log[-800:]
    assert re.search(r"flow pause slot=\d+ nick=s[12] ", log), "the burst was never paced"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_steady_slow_reader_above_the_threshold_is_paced_not_cut(
        server_factory, connect):
    """A reader with a small receive buffer that reads steadily, at most
    60 KB/s (40 KB/s seen; the too-slow threshold at the default
    --max-backlog is 19 KB/s), during a burst: it is not cut, and it and a
    fast reader get everything once, in order.  Its child used to read its pipe in gulps of
    all the room it had (250 KiB) and then nothing until the socket had
    taken as much, and to retry a full socket only on the 2 s tick: the
    parent saw no drain for 4 s and cut it as stalled."""
    srv = server_factory([])
    slow = connect(srv.port, rcvbuf=4096, name="slow").register("slow")
    fast = connect(srv.port, name="fast").register("fast")
    snd = connect(srv.port, name="snd").register("snd")
    fast.expect_exact("JOIN lobby snd")
    slow.expect_exact("JOIN lobby snd")
    for x in (slow, fast):
        x.lines.clear()
        x.keep_history = False
    per = 5000                                # 1.5 MB: past every buffer
    payload = b"".join(b"%d %s\n" % (k, b"q" * 300) for k in range(per))
    pid = attacker(snd.sock, payload, scaled(150))
    got = {"slow": [], "fast": []}
    deadline = time.monotonic() + scaled(150)
    try:
        while time.monotonic() < deadline and not slow.eof and \
                len(got["slow"]) < per:
            pump_all([fast], 0)
            r, _, _ = select.select([slow.sock], [], [], 0)
            if r:
                data = slow.sock.recv(1200)     # 1200 B / 20 ms: 60 KB/s
                if not data:
                    slow.eof = True
                slow._feed(data)
            for n, x in (("slow", slow), ("fast", fast)):
                for ln in x.lines:
                    if ln.startswith("MSG lobby snd "):
                        got[n].append(int(ln.split(" ")[3]))
                x.lines.clear()
            time.sleep(0.02)
        while len(got["fast"]) < per and time.monotonic() < deadline:
            pump_all([fast], 0.2)
            for ln in fast.lines:
                if ln.startswith("MSG lobby snd "):
                    got["fast"].append(int(ln.split(" ")[3]))
            fast.lines.clear()
    finally:
        reap(pid)
    log = srv.log()
    assert CUT.findall(log) == [], [l for l in log.splitlines() if "slow" in l][:5]
    assert re.search(r"flow pause slot=\d+ nick=snd ", log), "the burst was never paced"
    assert got["fast"] == list(range(per)), len(got["fast"])
    assert got["slow"] == list(range(per)), len(got["slow"])
