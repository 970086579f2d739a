# SPDX-License-Identifier: BSD-3-Clause
"""soak - random failpoints under a bounded chat load (make fault-soak SEED=n DURATION=s).

One server (fiu-run -x environment), 8 clients chatting sequence-numbered
messages in the lobby, one client cycling /add /leave /rm, and a driver that
every half second switches failpoints from POOL on (enable_random with a
small probability) or off, replaces clients that were cut, and sends SIGHUPs.
All random choices come from SEED (Python's PRNG for the schedule,
FIU_PRNG_SEED for libfiu's), and the schedule is printed, so a failure is
reproducible up to thread timing.  At the end every point is switched off and
the usual invariants are checked (fixture.Fx.verify) plus:
  - a receiver connected from start to end got every message of every sender
    that was never cut; everybody else saw gap-free, duplicate-free runs;
  - every arriving client was served or refused within 6 s, never hung;
  - the number of live children equals the number of connected clients;
  - no cut client received a truncated last line (they all keep reading).
"""

import errno
import json
import random
import threading
import time

from fclib import Fail
from fixture import Fx
from harness.client import seq_received
import runner

# name, failinfo (preload errno), highest probability used
POOL = [
    ("forkchatd/accept/accept", None, 0.3),
    ("forkchatd/spawn/pipe", None, 0.15),
    ("forkchatd/spawn/fork", None, 0.15),
    ("forkchatd/spawn/fcntl", None, 0.1),
    ("forkchatd/fanout/append", None, 0.003),
    ("forkchatd/fanout/write", None, 0.003),
    ("forkchatd/fanout/kill", None, 0.2),
    ("forkchatd/inbound/read", None, 0.2),
    ("forkchatd/abort/sigqueue", None, 0.5),
    ("forkchatd/reap/waitpid", None, 0.5),
    ("forkchatd/buf/malloc", None, 0.01),
    ("forkchatd/chat/calloc", None, 0.5),
    ("forkchatd/log/open", None, 0.5),
    ("posix/proc/kill", errno.ESRCH, 0.1),
    ("posix/proc/fork", errno.EAGAIN, 0.15),
    ("posix/io/rw/read/reduce", None, 0.3),
    ("posix/io/rw/write", errno.EIO, 0.002),
    ("libc/mm/malloc", errno.ENOMEM, 0.003),
]
# Not in the pool: posix/io/rw/write/reduce (children forked while it is on
# would make short writes of <= PIPE_BUF to the shared pipe, which the kernel
# never does), session/* points (they live in children; covered by the matrix).

NCLIENTS = 8
SERVE_WAIT = 6.0


def run(ctx, seed, duration):
    rnd = random.Random(seed)
    print("fault-soak: SEED=%d DURATION=%gs (reproduce: make fault-soak SEED=%d DURATION=%g)"
          % (seed, duration, seed, duration), flush=True)
    t_start = time.monotonic()
    row = {"name": "soak-seed-%d" % seed, "kind": "failpoint",
           "point": "random: %d points (%s)" % (len(POOL), ", ".join(p[0] for p in POOL)),
           "result": "fail", "evidence": ""}
    schedule = []
    try:
        with Fx(ctx, "soak", nctl=NCLIENTS, args=["--max-backlog", "262144"]) as fx:
            ev = soak(fx, rnd, duration, schedule)
            row["result"], row["evidence"] = "pass", ev
    except Fail as e:
        row["evidence"] = "SEED=%d: %s" % (seed, e)
    except Exception as e:
        row["evidence"] = "SEED=%d: harness error %s: %s" % (seed, type(e).__name__, e)
    finally:
        runner.reap_started()
    total = time.monotonic() - t_start
    print("\n" + runner.table([row]))
    meta = "soak seed %d, duration %gs, %.0fs total, %d schedule steps" % (
        seed, duration, total, len(schedule))
    print(meta)
    runner.write_results([row], "soak-%d" % seed, "forkchat fault soak", meta)
    (runner.RESULTS / ("soak-%d.schedule.json" % seed)).write_text(json.dumps(schedule, indent=0))
    print("results: %s/soak-%d.{json,md}" % (runner.RESULTS, seed))
    return row["result"] == "pass"


def soak(fx, rnd, duration, schedule):
    srv = fx.srv
    t0 = time.monotonic()
    stop = threading.Event()
    originals = list(fx.ctl)
    everyone = list(fx.ctl)
    stats = {"served": 0, "refused": 0, "cut": 0, "enables": 0, "hups": 0, "room_ops": 0}

    def log(what):
        t = time.monotonic() - t0
        schedule.append([round(t, 2), what])
        print("  t=%5.1fs %s" % (t, what), flush=True)

    def talker(c, seed2):
        r = random.Random(seed2)
        while not stop.is_set() and not c.eof:
            if fx.seq(c, 1) == 0:
                return
            time.sleep(r.uniform(0.01, 0.05))

    def roomer():
        c = rooms_client
        i = 0
        while not stop.is_set() and not c.eof:
            i += 1
            name = "room%d" % (i % 5)
            for cmd in ("/add " + name, "/users", "/leave", "/rm " + name, "/list"):
                if not c.try_send(cmd):
                    return
                time.sleep(0.02)
            stats["room_ops"] += 1

    threads = []
    for c in fx.ctl:
        th = threading.Thread(target=talker, args=(c, rnd.random()), daemon=True)
        th.start()
        threads.append(th)
    rooms_client = fx.client("roomer")
    everyone.append(rooms_client)
    th = threading.Thread(target=roomer, daemon=True)
    th.start()
    threads.append(th)

    enabled = {}            # name -> turn it goes off
    turn = 0
    serial = 0
    try:
        while time.monotonic() - t0 < duration:
            turn += 1
            # switch points off whose time is up, and some new ones on
            for name in [n for n, off in enabled.items() if off <= turn]:
                srv.disable(name)
                del enabled[name]
                log("disable %s" % name)
            if len(enabled) < 3 and rnd.random() < 0.6:
                name, finfo, pmax = rnd.choice(POOL)
                if name not in enabled:
                    p = round(pmax * rnd.uniform(0.2, 1.0), 4)
                    srv.enable(name, prob=p, failinfo=finfo)
                    enabled[name] = turn + rnd.randint(1, 4)
                    stats["enables"] += 1
                    log("enable_random %s p=%g%s" % (name, p,
                                                     " failinfo=%d" % finfo if finfo else ""))
            if rnd.random() < 0.15:
                srv.signal(1)
                stats["hups"] += 1
                log("SIGHUP")
            # replace clients that were cut: each must be served or refused
            for c in [c for c in fx.ctl if c.eof and not getattr(c, "replaced", False)]:
                if not getattr(c, "counted", False):
                    c.counted = True
                    stats["cut"] += 1
                serial += 1
                nick = "n%d" % serial
                nc = fx.raw(nick)
                everyone.append(nc)
                i = nc.wait_line(r"^(HELLO|BYE)", SERVE_WAIT)
                if i is None and not nc.eof:
                    raise Fail("new client %s neither served nor refused in %.0fs (hang); "
                               "points on: %s" % (nick, SERVE_WAIT, sorted(enabled)))
                if i is not None and nc.snapshot()[i].startswith("HELLO"):
                    nc.send(nick)
                    j = nc.wait_line(r"^(OK JOIN|BYE)", SERVE_WAIT)
                    if j is None and not nc.eof:
                        raise Fail("%s: no answer to its nickname in %.0fs (hang)" %
                                   (nick, SERVE_WAIT))
                    if j is not None and nc.snapshot()[j].startswith("OK JOIN"):
                        c.replaced = True       # refused: try again next turn
                        stats["served"] += 1
                        fx.ctl.append(nc)
                        th = threading.Thread(target=talker, args=(nc, rnd.random()),
                                              daemon=True)
                        th.start()
                        threads.append(th)
                        continue
                stats["refused"] += 1
                log("%s refused: %s" % (nick, (nc.bye() or "EOF")[:40]))
            if not srv.alive():
                raise Fail("parent died; points on: %s" % sorted(enabled))
            time.sleep(0.5)
    finally:
        for name in list(enabled):
            try:
                srv.disable(name)
                log("disable %s (end)" % name)
            except Fail:
                pass
        stop.set()
        for th in threads:
            th.join(5)
    return check(fx, originals, everyone, stats, rooms_client)


def check(fx, originals, everyone, stats, rooms_client):
    srv = fx.srv
    if not srv.alive():
        raise Fail("parent died")
    time.sleep(1.5)        # ticks deliver whatever a lost wake-up held back
    live = [c for c in everyone if not c.eof]
    senders_ok = {c.nick for c in everyone if not c.eof}
    # full delivery between pairs that stayed connected throughout
    stay = [c for c in originals if not c.eof]
    if not fx.delivered(receivers=stay, senders=[s for s in fx.sent if s in senders_ok],
                        timeout=6):
        missing = []
        for r in stay:
            got = seq_received(r)
            for s in senders_ok:
                if s != r.nick and s in fx.sent and len(got.get(s, [])) < fx.sent[s]:
                    missing.append("%s<-%s %d/%d" % (r.nick, s, len(got.get(s, [])), fx.sent[s]))
        raise Fail("messages lost between clients that stayed connected: %s" % missing[:4])
    for r in everyone:
        if r is rooms_client:       # it hops between rooms: gaps are expected
            continue
        for s, seq in seq_received(r).items():
            if seq and seq != list(range(seq[0], seq[0] + len(seq))):
                raise Fail("%s<-%s: gap/dup/reorder (%d msgs, first %s)" % (
                    r.nick, s, len(seq), seq[:5]))
            if r in originals and seq and seq[0] != 1:
                raise Fail("%s<-%s starts at %d" % (r.nick, s, seq[0]))
    cut_mid = [c.nick for c in everyone if c.eof and c.partial]
    if cut_mid:
        raise Fail("%d cut clients got a truncated last line (no newline) before EOF: %s" % (
            len(cut_mid), cut_mid[:5]))
    kids = len(srv.children())
    if kids != len(live):
        time.sleep(2)
        kids = len(srv.children())
        live = [c for c in everyone if not c.eof]
        if kids != len(live):
            raise Fail("%d children for %d connected clients" % (kids, len(live)))
    nmsg = sum(fx.sent.values())
    errs = srv.log_count(r"\] error:? ")
    fx.ctl = stay           # verify() re-checks full delivery among these
    summ = fx.verify(affected=[c for c in everyone if c.eof])
    return ("%d msgs, %d enables, %d SIGHUPs, %d room cycles; %d cut, %d replacements "
            "served, %d refused, none hung; %d error lines logged; %d/%d originals "
            "complete; %s" % (nmsg, stats["enables"], stats["hups"], stats["room_ops"],
                              stats["cut"], stats["served"], stats["refused"], errs, len(stay),
                              len(originals), summ))
