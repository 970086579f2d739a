# SPDX-License-Identifier: BSD-3-Clause
"""fedredis - federation: Redis restarted, stopped, past its stream
retention, and a hub lost.
"""

import os
import signal
import time

from fclib import Fail, Skip
from harness.client import check_seq, seq_received
from harness.procfs import kill_pid
from harness.timescale import wait_for
from scenarios.common import scenario
from scenarios.fed import Fed, bulk_check, bulk_send, seq_check_window, stats


@scenario("fed-redis-restart", "signal",
          "SIGKILL redis-server with 4 MiB acknowledged, unread by hub B; restart",
          timeout=240)
def _fed_redis(ctx):
    """Redis (no persistence) is killed while it holds 4 MiB of hub A's
    events that it acknowledged and hub B has not read (B's bridge is
    SIGSTOPped from before they were sent until after the kill: the events
    are acknowledged, fed_unacked 0 on A, and none reached B's clients), and
    started again on the same port.  Both hubs log the outage and keep
    serving locally; what is said during the outage waits in the outboxes;
    hub A sees the new run_id and sends its kept events (BRIDGE_RETAIN,
    8 MiB) again; every message, the 4 MiB byte for byte, reaches every
    client that stayed exactly once and in order; nothing is counted lost."""
    with Fed(ctx, "fed-redis-restart", hub_args=("--max-backlog", str(64 << 20))) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the kill")
        bridge = fd.bridges(B)[-1]
        pre = dict(fd.sent)
        sb0 = stats(b[0])
        os.kill(bridge, signal.SIGSTOP)     # hub B reads nothing from here on
        try:
            nbytes = 0
            for _ in range(11):             # 2 x 1100 x 1900 B = 4.0 MiB, interleaved
                for c in a:
                    nbytes += bulk_send(A, c, 100)
            bulk = {c.nick: (pre[c.nick] + 1, fd.sent[c.nick]) for c in a}
            fd.round(b, 2)                  # B's own: they wait in B's bridge pipe
            if not fd.delivered(a, [c.nick for c in a], 60):
                raise Fail("hub A's local clients did not get the 4 MiB")
            # acknowledged: Redis has every one of A's events
            if not wait_for(lambda: stats(a[0])["fed_unacked"] == 0, 30, 0.2):
                raise Fail("hub A's events not acknowledged by Redis: %s" % stats(a[0]))
            xlen = subprocess_out(["redis-cli", "-p", str(fd.redis.port), "XLEN", "fc:ev"])
            # unread: hub B's clients have none of them at the kill (its
            # reader may hold one XREAD reply in its socket; it is read after)
            unread = {"%s<-%s" % (r.nick, s.nick):
                      len([n for n in seq_received(r).get(s.nick, []) if n > pre[s.nick]])
                      for r in b for s in a}
            if any(unread.values()):
                raise Fail("hub B delivered bulk messages although its bridge is stopped: %s" %
                           unread)
            fd.redis.stop()                 # the stream, and the 4 MiB, are gone
        finally:
            os.kill(bridge, signal.SIGCONT)
        A.expect_log(r"federation: redis .* unavailable", 5)
        B.expect_log(r"federation: redis .* unavailable", 5)
        fd.round(a + b, 4)                  # during the outage
        for cs in (a, b):
            if not fd.delivered(cs, [c.nick for c in cs], 10):
                raise Fail("local delivery stalled while Redis was down")
        ca, cb = fd.connects(A), fd.connects(B)
        time.sleep(1.0)
        fd.redis.start()
        t0 = time.monotonic()
        if not wait_for(lambda: fd.connects(A) > ca and fd.connects(B) > cb, 8):
            raise Fail("hubs did not reconnect within 8s of the Redis restart")
        dt = time.monotonic() - t0
        A.expect_log(r"federation: redis restarted \(run_id [^)]*\): sending again", 10)
        if not fd.delivered(fd.everyone(), list(fd.sent), 90):
            raise Fail("not delivered after the restart: %s" % (
                seq_check_window(fd.everyone(), fd.sent)[0][:3],))
        tcatch = time.monotonic() - t0
        fd.round(a + b, 2)
        if not fd.delivered(fd.everyone(), list(fd.sent), 10):
            raise Fail("cross-hub chat did not resume after the restart")
        time.sleep(0.5)                     # a late duplicate would show here
        probs = check_seq(fd.everyone(), fd.sent, [c.nick for c in fd.everyone()])
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        checked = bulk_check(fd.everyone(), bulk)
        sb1 = stats(b[0])
        if sb1.get("fed_events_lost", 0) != sb0.get("fed_events_lost", 0):
            raise Fail("hub B counted %d events lost" % (sb1["fed_events_lost"] -
                                                         sb0["fed_events_lost"]))
        if B.srv.log_count(r"NOTICE|events of hub \S+ lost"):
            raise Fail("hub B logged lost events")
        for c in b:
            if any(x.startswith("NOTICE MESSAGES_LOST") for x in c.snapshot()):
                raise Fail("%s was told MESSAGES_LOST" % c.nick)
        resend = sum(h.srv.log_count(r"federation: redis restarted \(run_id") for h in (A, B))
        if resend < 2:
            raise Fail("%d of 2 hubs noticed the new run_id and sent their kept events again"
                       % resend)
        rr = fd.cross_round("r")
        summ = fd.verify(rss_slack=8 << 10)     # the parent keeps 8 MiB (BRIDGE_RETAIN)
        return ("Redis killed holding %d msgs (%.1f MiB) of hub A acknowledged (A fed_unacked "
                "0, XLEN %s), 0 read by B; reconnected %.1fs after restart, A sent its kept "
                "events again (new run_id); caught up in %.1fs; every msg once, in order, "
                "%.1f MiB checked byte for byte; B: events_in +%d, dups dropped +%d, lost 0; "
                "%s; %s" % (
                    sum(hi - lo + 1 for lo, hi in bulk.values()), nbytes / 1048576.0, xlen,
                    dt, tcatch, checked / 1048576.0,
                    sb1["fed_events_in"] - sb0["fed_events_in"],
                    sb1["fed_duplicates_dropped"] - sb0["fed_duplicates_dropped"], rr, summ))


def subprocess_out(argv):
    import subprocess
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise Fail("%s: exit %d %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout.strip()


@scenario("fed-redis-sigstop", "signal",
          "SIGSTOP redis-server 12 s (2 x --nick-ttl), --redis-timeout 1000", timeout=120)
def _fed_redis_stop(ctx):
    """Redis hangs instead of dying (issue 14): both hubs notice within the
    timeout once a reply is due, log it once, answer a registration within
    the timeout, keep local chat and keep listing each other's users (alive
    hubs are not forgotten because Redis is silent); after SIGCONT they log
    how long Redis was out and everything said meanwhile arrives once, in
    order."""
    with Fed(ctx, "fed-redis-sigstop", hub_args=("--redis-timeout", "1000")) as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(3, "the stop")
        if not fd.lists(b[0], [c.nick for c in a]) or not fd.lists(a[0], [c.nick for c in b]):
            raise Fail("presence did not cross before the stop")
        pid = fd.redis.proc.pid
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            fd.round(a + b, 2)              # replies fall due on both hubs
            rx = r"federation: redis .* unavailable \(no reply for \d+ ms\)"
            la = A.expect_log(rx, 8)
            B.expect_log(rx, 8)
            tdet = time.monotonic() - t0
            t1 = time.monotonic()
            late = A.client("st0")          # needs Redis: decided locally
            # answered while Redis is still SIGSTOPped (SIGCONT comes in
            # the finally below): decided without Redis, whatever it took;
            # one that waited for Redis would get no answer in client()'s
            # bound.  The time is reported, not judged (a fixed 3 s raced
            # the machine's load: issue 16, item 8).
            treg = time.monotonic() - t1
            fd.round(a + b, 3)
            for cs in (a, b):
                if not fd.delivered(cs, [c.nick for c in cs], 5):
                    raise Fail("local delivery stalled while Redis hung")
            while time.monotonic() - t0 < 11:
                time.sleep(0.2)
            n0 = len(b[0].snapshot())
            b[0].send("/users all")
            if not b[0].wait_line(r"^END USERS", 5, start=n0):
                raise Fail("/users all not answered during the hang")
            listed = [x for x in b[0].snapshot()[n0:] if x.startswith("USER ")]
            if not any(x.startswith("USER a0 ") for x in listed):
                raise Fail("hub B forgot hub A's users after 11s of Redis silence: %r" % listed)
            while time.monotonic() - t0 < 12:
                time.sleep(0.1)
        finally:
            os.kill(pid, signal.SIGCONT)
        t2 = time.monotonic()
        lb = A.expect_log(r"federation: redis .* back after \d+ ms out", 10)
        B.expect_log(r"federation: redis .* back after \d+ ms out", 10)
        if not fd.delivered(fd.everyone(), list(fd.sent), 15):
            raise Fail("messages of the hang not delivered after SIGCONT: %s" % (
                seq_check_window(fd.everyone(), fd.sent)[0][:3],))
        tcatch = time.monotonic() - t2
        time.sleep(0.3)
        probs = check_seq(fd.everyone(), fd.sent, [c.nick for c in fd.everyone()])
        if probs:
            raise Fail("delivery: " + "; ".join(probs[:3]))
        late.send("/quit")
        if not late.wait_eof(5):
            raise Fail("st0, registered during the hang, could not /quit")
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s' %.1fs after SIGSTOP; registration answered in %.2fs; local chat "
                "complete; A's users still listed on B at 11s; '%s'; the 20 msgs of the "
                "hang arrived cross-hub once, in order, %.1fs after SIGCONT; %s; %s" % (
                    la[:62], tdet, treg, lb[:60], tcatch, rr, summ))


@scenario("fed-hub-sigkill", "signal", "SIGKILL hub B's parent", timeout=90)
def _fed_hub_kill(ctx):
    """A hub is SIGKILLed: after --nick-ttl of silence the other hub forgets
    it and its users leave with PART lobby NICK hub-lost (a netsplit);
    the surviving hub's chat goes on without loss."""
    with Fed(ctx, "fed-hub-sigkill") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(2, "the kill")
        if not fd.lists(a[0], [c.nick for c in b]):
            raise Fail("hub B's users never listed on hub A")
        n0 = [len(c.snapshot()) for c in a]
        t0 = time.monotonic()
        kill_pid(B.srv.pid)
        for c, n in zip(a, n0):
            for d in b:
                if not c.wait_line(r"^PART lobby %s hub-lost$" % d.nick, 15, start=n):
                    raise Fail("%s got no 'PART lobby %s hub-lost' within 15s" % (c.nick, d.nick))
        dt = time.monotonic() - t0
        logl = A.expect_log(r"federation: hub hubB silent for \d+ ms, forgetting its users "
                            r"\(2 parted: hub-lost\)", 3)
        for c in a:
            parts = [x for x in c.snapshot()[n0[a.index(c)]:] if x.startswith("PART ")]
            if len(parts) != len(b):
                raise Fail("%s got %d PART lines, want %d: %r" % (c.nick, len(parts), len(b), parts))
        fd.round(a, 3)
        if not fd.delivered(a, [c.nick for c in a], 5):
            raise Fail("hub A's chat stalled after hub B died")
        probs = check_seq(a, {c.nick: fd.sent[c.nick] for c in a}, [c.nick for c in a])
        if probs:
            raise Fail("delivery on A: " + "; ".join(probs[:3]))
        A.ctl = []
        summ = A.verify(keep=fd.bridges(A), post=False)
        return ("both of A's clients got 'PART lobby b0/b1 hub-lost' %.1fs after the kill "
                "(--nick-ttl 6); '%s'; A's chat goes on; A: %s" % (dt, logl[:80], summ[:80]))


@scenario("fed-gap-past-retention", "signal",
          "SIGSTOP hub B's bridge, XTRIM fc:ev MAXLEN 0, SIGCONT", timeout=90)
def _fed_gap(ctx):
    """Events hub B never read because the stream was trimmed past them
    (its bridge stopped, the stream cut to nothing): B detects the jump in
    hub A's sequence numbers, logs it, counts it (fed_events_lost) and tells
    its clients NOTICE MESSAGES_LOST before the next line; what follows
    arrives once, in order."""
    import subprocess
    with Fed(ctx, "fed-gap-past-retention") as fd:
        if fd.skip:
            raise Skip("no redis-server (Debian package redis-server)")
        A, B, a, b = fd.warm(2, "the gap")
        bridge = fd.bridges(B)[-1]
        pre = dict(fd.sent)
        n0 = [len(c.snapshot()) for c in b]
        os.kill(bridge, signal.SIGSTOP)
        try:
            fd.round(a, 5)
            if not fd.delivered(a, [c.nick for c in a], 5):
                raise Fail("hub A's local chat stalled")
            time.sleep(0.5)             # acknowledged by Redis
            r = subprocess.run(["redis-cli", "-p", str(fd.redis.port), "XTRIM", "fc:ev",
                                "MAXLEN", "0"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise Fail("XTRIM failed: %s" % r.stderr.strip())
            mid = dict(fd.sent)
            fd.round(a, 2)
        finally:
            os.kill(bridge, signal.SIGCONT)
        for c, n in zip(b, n0):
            if not c.wait_line(r"^NOTICE MESSAGES_LOST \d+ events from hub hubA ", 10, start=n):
                raise Fail("%s got no NOTICE MESSAGES_LOST: %r" % (c.nick, c.snapshot()[n:][:6]))
        logl = B.expect_log(r"federation: \d+ events of hub hubA lost", 5)
        def last_ok():
            return all((seq_received(r).get(s.nick) or [0])[-1] >= fd.sent[s.nick]
                       for r in b for s in a)
        if not wait_for(last_ok, 10):
            raise Fail("A's messages after the gap did not reach B")
        lossy = {(r.nick, s.nick): (pre[s.nick], mid[s.nick]) for r in b for s in a}
        probs, lost = seq_check_window(b, fd.sent, lossy)
        if probs:
            raise Fail("delivery around the gap: " + "; ".join(probs[:3]))
        rr = fd.cross_round("r")
        summ = fd.verify()
        return ("'%s'; both of B's clients told (NOTICE MESSAGES_LOST); %d receptions "
                "lost, all in the trimmed window, the rest once, in order; "
                "%s; %s" % (logl[:70], lost, rr, summ))
