# SPDX-License-Identifier: BSD-3-Clause
"""federation_probe.py - cross-hub latency and burst vs same hub (docs/SCALING.md).

Starts a redis-server on a free 127.0.0.1 port (no persistence) and two hubs
(build/forkchatd --redis), a sender and a receiver on hub 0 and a receiver on
hub 1; prints paced latency p50/p99 and the time a 20 000-message burst takes
to reach each receiver.  Everything it starts is stopped by PID.
Run: /usr/bin/python3 bench/federation_probe.py (after make).
"""
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "integration", "lib"))
from harness.client import ChatClient  # noqa: E402
from harness.server import Redis, Server  # noqa: E402

tmp = tempfile.mkdtemp()
redis = Redis(tmp)
procs = []
def mk(port, nick):
    c = ChatClient(port); c.register(nick); return c
try:
    redis.start()
    for i in range(2):
        procs.append(Server(os.path.join(tmp, "h%d" % i), args=["--redis", "127.0.0.1:%d" % redis.port, "--hub-id", "h%d" % i]).start())
        procs[-1].wait_log(r"federation: connected to redis", 10)
    ports = [srv.port for srv in procs]
    s = mk(ports[0], "snd"); local = mk(ports[0], "loc"); remote = mk(ports[1], "rem")
    time.sleep(1.0)
    for c in (s, local, remote): c.drain(0.2)
    res = {}
    for name, r in (("same hub", local), ("cross hub", remote)):
        time.sleep(0.5); local.drain(0.2); remote.drain(0.2)
        lat = []
        for i in range(200):
            t0 = time.perf_counter(); s.send("p%s %d" % (name[0], i)); r.expect_exact("MSG lobby snd p%s %d" % (name[0], i)); lat.append((time.perf_counter() - t0) * 1e6)
        lat.sort()
        res[name] = (lat[len(lat)//2], lat[int(len(lat)*0.99)])
    for c in (local, remote): c.drain(0.3)
    N = 20000
    thr = {}
    t0 = time.perf_counter()
    for i in range(0, N, 100):
        s.send_lines(["b %d" % j for j in range(i, i + 100)])
    got = {local: 0, remote: 0}
    done = {}
    while len(done) < 2 and time.perf_counter() - t0 <= 60:
        # read both receivers alternately; done[c] = seconds to its N-th message
        for c in (local, remote):
            l = None if c in done else c.try_readline(0.01)
            while l is not None:
                if l.startswith("MSG lobby snd b "): got[c] += 1
                if got[c] == N: done[c] = time.perf_counter() - t0; break
                l = c.try_readline(0.0)
    tl, tr, got_r = done.get(local), done.get(remote), got[remote]
    print("latency_us p50/p99:", {k: (round(a), round(b)) for k, (a, b) in res.items()})
    print("burst %d msgs: same hub %.3fs (%.0f msg/s), cross hub %s (%s msg/s), got_r=%d" % (N, tl, N/tl, tr and "%.3fs" % tr, tr and round(N/tr), got_r))
finally:
    for srv in procs: srv.stop()
    redis.stop()
    shutil.rmtree(tmp)
