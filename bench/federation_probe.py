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
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "integration", "lib"))
from harness.client import ChatClient  # noqa: E402
from harness.procfs import free_port  # noqa: E402

SERVER = os.path.join(ROOT, "build", "forkchatd")
tmp = tempfile.mkdtemp()
rport = free_port()
redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
procs = []
ports = []
for i in range(2):
    p = free_port()
    d = os.path.join(tmp, "h%d" % i); os.makedirs(d)
    procs.append(subprocess.Popen([SERVER, "-f", "-p", str(p), "-l", d, "--redis", "127.0.0.1:%d" % rport, "--hub-id", "h%d" % i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    ports.append(p)
time.sleep(1.0)
def mk(port, nick):
    c = ChatClient(port); c.register(nick); return c
try:
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
    for p in procs: p.send_signal(signal.SIGTERM)
    for p in procs: p.wait(10)
    redis.kill(); redis.wait()
    shutil.rmtree(tmp)
