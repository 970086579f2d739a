#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/report.py - turn forkchat-load's JSON lines into the bench report.

Reads the runs (one JSON object per line, written by forkchat-load -j),
the hyperfine exports, the peers' configurations and the problem notes of
bench/run.sh, and writes
  latest.json   {"machine", "started", "mode", "method", "runs" (every run),
                 "points" (median and min..max per system, scenario, N),
                 "goals" (issue 17's ratios, measured in this run, met or
                 not), "peers" (each peer's command, configuration and what
                 could not be disabled), "burst", "hyperfine", "problems",
                 "federation", "provenance" (ci/provenance.py)}
  latest.md     the goals, then the tables: paced latency and server CPU
                per delivery, windowed back to back, memory, connect storm,
                the burst, federation, every run
  latency-vs-n.png, throughput-vs-n.png, latency-cdf.png (gnuplot)
N is the number of receivers in the room ("receivers" in a run; the
senders come on top for every system whose senders are clients).
Standard library only; gnuplot is optional (a missing plot is a note).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "ci"))
import provenance  # noqa: E402

# every system in the order of the tables; what each one is
SYSTEMS = ("forkchat", "ngircd", "inspircd", "redis", "floor-pipe", "floor-tcp",
           "floor-tcp-send", "floor-tcp-send-cork", "floor-pipe-batched", "floor-storm")
WHAT = {
    "forkchat": "forkchatd: parent + one session child per client (fork, pipes, SIGUSR2)",
    "ngircd": "ngircd 26 (Debian), one process, no penalties (RECIPES.md section 8)",
    "inspircd": "InspIRCd 3 (Debian), one process, no throttle/fake lag where it can be set",
    "redis": "redis-server 7 pub/sub (Debian), one event loop",
    "floor-pipe": "raw pipe+SIGUSR2 floor: per message one pipe write + one SIGUSR2 to each "
                  "child, which reads it (no TCP; the children are the receivers)",
    "floor-tcp": "pipe+SIGUSR2+TCP floor: as floor-pipe, and each child send()s what it "
                 "read on a TCP socket to a receiver process that timestamps it",
    "floor-tcp-send": "floor-tcp with real senders: the 4 senders are clients as for "
                      "forkchat; a child per sender connection reads what arrives and "
                      "writes its whole lines to the parent over one shared pipe (SIGUSR1), "
                      "which fans them out as floor-tcp, not to the sender (windowed only)",
    "floor-tcp-send-cork": "floor-tcp-send with forkchatd's output side: the receivers' "
                           "pipes raise SIGUSR2 themselves (F_SETSIG, no kill()) and a busy "
                           "parent corks a room's batch as core/server/fanout.h (4 / 16 KiB or "
                           "1 ms, no message cap); windowed only",
    "floor-pipe-batched": "batched pipe+SIGUSR2 program: up to 64 messages per pipe write "
                          "and one signal per batch (an upper bound of batching, not a floor "
                          "of the per-message mechanism)",
    "floor-storm": "connect-storm floor (build/forkchat-storm-floor): one process accepts "
                   "and forks a child per connection with the client's socket; the child "
                   "reads the first line and answers one line (connect storm only)",
}
FEDERATED = "forkchat-federated"
HIST_RESOLUTION = 0.0078    # bin width / value, 128 sub-buckets per power of two

# What could not be disabled or is different by design, per peer.
LIMITS = {
    "forkchat": ["Started with --max-backlog 64 MiB (the burst run: its default) so that "
                 "windowed back-to-back runs measure throughput, not cuts."],
    "ngircd": ["Compile-time: at most 3 commands per client per main-loop pass; a client "
               "whose write buffer passes 32 KiB is disconnected (back-to-back runs are "
               "windowed, so no receiver gets near it).",
               "No TCP_NODELAY on client sockets (Nagle): the receivers ACK at once "
               "(forkchat-load --quickack, for every system), else ngircd's next line waits "
               "for a delayed ACK (p90 about 30 ms at N=10, measured).",
               "Compile-time listen backlog of 10: the IRC clients connect and register at "
               "most 8 at a time (all at once, the handshakes past the backlog waited in "
               "TCP's SYN back-off, and at N=500 some were not in after 105 s)."],
    "inspircd": ["threshold, commandrate and fakelag are off; InspIRCd still stalls an "
                 "unbounded burst on its 1-second timer (edge-triggered reads of "
                 "netbuffersize): measured paced only, and only at N = 10 (N = 100 with "
                 "BENCH_INSPIRCD_NS) to keep make bench short.",
                 "Registration completes about 1 s after connecting (its timer), so its "
                 "connect time is not comparable.",
                 "Runs as root with --runasroot (CI runs as root)."],
    "redis": ["A publisher needs a second connection (RESP2 subscribers cannot PUBLISH), "
              "and Redis also delivers a message to the publisher's own subscription "
              "(dropped unseen by the receiver: one extra write per message)."],
    "floor-pipe": ["Its senders are virtual (the parent makes the messages), so N "
                   "deliveries per message; its server CPU is the parent and the children, "
                   "which also do the receivers' accounting."],
    "floor-tcp": ["Senders virtual as floor-pipe; its server CPU is the floor's server "
                  "process and its N children only (the receivers are separate).",
                  "Paced, a message that fell due while the floor's parent was still fanning "
                  "out the previous ones is stamped with its due time (as a sender process "
                  "would have written it then), not when the parent got to it."],
    "floor-tcp-send": ["Its senders are the generator's writer processes; each writes on a "
                       "connection of its own (as a Redis publisher), so the server has N + 4 "
                       "receiver children and 4 sender children; N + 3 deliveries per message "
                       "(no echo), as forkchat. Its server CPU is the floor's server process "
                       "and all its children."],
    "floor-tcp-send-cork": ["As floor-tcp-send (forkchat-load -s floor-tcp-send --cork -B "
                            "1000): it makes forkchatd's system calls per delivery, so "
                            "forkchat / floor-tcp-send-cork is forkchatd's user-space work."],
    "floor-storm": ["Its clients send the nickname line they send forkchatd and wait for "
                    "one line (forkchat-load -s floor-storm --connect-only); the server "
                    "does nothing else: no spawner, admission, name check, room or log. "
                    "A fork per connection of a small static program."],
}


def machine():
    """The CPU, cores (ci/provenance.py) and the kernel."""
    return dict(provenance.machine(), kernel=platform.release())


def load_jsonl(path):
    runs = []
    if not path or not os.path.exists(path):
        return runs
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def load_hyperfine(outdir):
    out = {}
    for name in ("startup", "connect100", "shutdown100"):
        p = os.path.join(outdir, "hyperfine-%s.json" % name)
        if not os.path.exists(p):
            continue
        with open(p) as f:
            data = json.load(f)
        out[name] = [{"command": r["command"],
                      "mean_ms": round(r["mean"] * 1e3, 2),
                      "stddev_ms": round((r.get("stddev") or 0) * 1e3, 2),
                      "min_ms": round(r["min"] * 1e3, 2),
                      "max_ms": round(r["max"] * 1e3, 2)}
                     for r in data["results"]]
    return out


def load_peers(confdir):
    """The command line and configuration file bench/run.sh used per peer."""
    peers = {}
    for sysname in SYSTEMS + ("forkchat-burst",):
        cmd = os.path.join(confdir or "", sysname + ".cmd")
        if not confdir or not os.path.exists(cmd):
            continue
        with open(cmd) as f:
            item = {"command": f.read().strip()}
        conf = os.path.join(confdir, sysname + ".conf")
        if os.path.exists(conf):
            with open(conf) as f:
                item["config"] = f.read()
        item["not_disabled"] = LIMITS.get(sysname, [])
        peers[sysname] = item
    for sysname in ("floor-pipe", "floor-tcp"):
        peers.setdefault(sysname, {"command": "forkchat-load -s %s -B 1" % sysname,
                                   "not_disabled": LIMITS[sysname]})
    peers.setdefault("floor-tcp-send", {"command": "forkchat-load -s floor-tcp-send -B 64",
                                        "not_disabled": LIMITS["floor-tcp-send"]})
    peers.setdefault("floor-tcp-send-cork",
                     {"command": "forkchat-load -s floor-tcp-send --cork -B 1000",
                      "not_disabled": LIMITS["floor-tcp-send-cork"]})
    return peers


def receivers(r):
    return r.get("receivers", r["n"])


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


METRICS = ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "deliveries_per_s",
           "cpu_us_per_delivery", "wakeups_per_delivery", "connect_ms", "connect_cpu_ms")


def points(runs):
    """Per (system, scenario, N): the median and min..max of every metric
    over its repetitions, the run nearest the median p50 (for the CDF), and
    memory per client (server PSS + page tables / clients)."""
    groups, order = {}, []
    for r in runs:
        key = (r["system"], r["scenario"], receivers(r))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    out = []
    for key in order:
        g = groups[key]
        p = {"system": key[0], "scenario": key[1], "n": key[2], "clients": g[0]["n"],
             "senders": g[0]["senders"], "rate": g[0]["rate"], "repeats": len(g),
             "messages": [r["messages"] for r in g],
             "lost": sum(r["lost"] for r in g), "duplicated": sum(r["duplicated"] for r in g),
             "out_of_order": sum(r["out_of_order"] for r in g),
             "errors": sum(r["errors"] for r in g),
             "send_span_s": [r["send_span_s"] for r in g]}
        for m in METRICS:
            vals = [r[m] for r in g if r.get(m) is not None and r[m] >= 0]
            if vals:
                p[m] = median(vals)
                p[m + "_min"] = min(vals)
                p[m + "_max"] = max(vals)
        mem = [(r["server_pss_kb"] + max(r.get("server_pte_kb", 0), 0)) / r["n"]
               for r in g if r.get("server_pss_kb", -1) >= 0]
        if mem:
            p["mem_kb_per_client"] = median(mem)
            p["pss_kb"] = median([r["server_pss_kb"] for r in g if r["server_pss_kb"] >= 0])
            p["pte_kb"] = median([r.get("server_pte_kb", -1) for r in g
                                  if r["server_pss_kb"] >= 0])
        mid = min(g, key=lambda r: abs(r["p50_us"] - p.get("p50_us", 0)))
        p["cdf"] = mid.get("cdf", [])
        out.append(p)
    return out


def find(pts, system, scenario, n):
    for p in pts:
        if p["system"] == system and p["scenario"] == scenario and p["n"] == n:
            return p
    return None


def ratio(a, b):
    if a is None or b is None or not b or a < 0 or b < 0:
        return None
    return a / b


def fmt_ratio(x):
    return "-" if x is None else "%.2fx" % x


def fmt_us(x):
    if x is None:
        return "-"
    if x >= 10000:
        return "%.1f ms" % (x / 1000)
    return "%.0f us" % x if x >= 100 else "%.1f us" % x


def fmt_rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2f M/s" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k/s" % (x / 1e3)
    return "%.0f /s" % x


def spread(p, m, fmt):
    """'median (min..max)' of metric m of point p."""
    if p is None or m not in p:
        return "-"
    if p["repeats"] == 1:
        return fmt(p[m])
    return "%s (%s..%s)" % (fmt(p[m]), fmt(p[m + "_min"]), fmt(p[m + "_max"]))


def ns_of(pts, scenario):
    return sorted({p["n"] for p in pts if p["scenario"] == scenario})


# ---- the goals of issue 17 -----------------------------------------------------

def goal(items, number, what, n, value, limit, kind="<=", note=""):
    """One checked ratio (value None: not measured in this run)."""
    met = None
    if value is not None:
        met = value <= limit if kind == "<=" else value >= limit
    items.append({"goal": number, "what": what, "n": n,
                  "value": None if value is None else round(value, 3),
                  "limit": limit, "kind": kind, "met": met, "note": note})


# goal 3 after a burst (bench/README.md "Memory after a burst"): the kB
# limit is the goal's; 1.1x is above the spread of two idle readings in
# one run (1 kB per client) and the trim slack the parent keeps (256 KiB,
# 2.6 kB per client at N=100), below a heap kept grown (a 4 MB parent:
# 1.46x at N=100) or inherited by a child (its RSS: MBs on 0.4 MB)
MEM_AFTER_KB = 100
MEM_GROWTH = 1.1


def memory_runs(path):
    """bench/memory.py's runs (one per N; its --json lines, each
    {"runs": [...]}), the last one of each N."""
    out = {}
    for line in load_jsonl(path):
        for r in line.get("runs", []):
            out[r["n"]] = r
    return [out[n] for n in sorted(out)]


def mem_goals(g, memory):
    """Goal 3 after a burst, at N = 100 and 1000: rows 'not measured' when
    bench/memory.py did not run there (quick mode: N = 100 only)."""
    by_n = {r["n"]: r for r in memory or []}
    for n in (100, 1000):
        r = by_n.get(n, {})
        bef, aft, plus = (r.get(k) for k in ("before_burst", "after_burst",
                                            "after_burst_plus_n"))
        per = (lambda s: s and s.get("per_client_pss_pte_kb"))
        par = ""
        if bef and aft:
            par = "parent PSS %s -> %s kB, heap %s -> %s kB" % (
                bef["parent"]["pss"], aft["parent"]["pss"],
                bef.get("parent_heap_kb", "-"), aft.get("parent_heap_kb", "-"))
        goal(g, 3, "after a burst: server PSS + page tables per client (kB)", n,
             per(aft), MEM_AFTER_KB, note="bench/memory.py, idle, %s clients attached "
             "before the burst" % n if aft else "")
        goal(g, 3, "after a burst / before it: PSS + page tables per client", n,
             ratio(per(aft), per(bef)), MEM_GROWTH, note=par)
        mg = r.get("marginal_per_client_kb")
        goal(g, 3, "clients attached after the burst: marginal PSS + page tables "
             "per client / per client before it", n,
             ratio(mg and mg["pss"] + mg["pte"], per(bef)), MEM_GROWTH,
             note="%s more clients" % n if mg else r.get("error", ""))
        c1 = (bef or {}).get("child_first", {}).get("rss")
        c2 = (plus or {}).get("child_second", {}).get("rss")
        goal(g, 3, "children forked after the burst: RSS / children forked before it", n,
             ratio(c2, c1), MEM_GROWTH,
             note="%s kB / %s kB (an inherited heap shows here)" % (c2, c1) if c1 and c2
             else "")


def goals(pts, burst, memory=None):
    """Issue 17's goals, each ratio from this run's medians; memory:
    bench/memory.py's runs (goal 3 after a burst)."""
    g = []
    P = "one-room"
    for n in (10, 100):
        fc, ng, ft = (find(pts, s, P, n) for s in ("forkchat", "ngircd", "floor-tcp"))
        c = "cpu_us_per_delivery"
        goal(g, 1, "server CPU per paced delivery / floor-tcp", n,
             ratio(fc and fc.get(c), ft and ft.get(c)), 1.5)
        goal(g, 1, "server CPU per paced delivery / ngircd", n,
             ratio(fc and fc.get(c), ng and ng.get(c)), 2.0)
    for n, p50, p99 in ((10, 1.5, 2.5), (100, 1.25, 2.5)):
        fc, ng = find(pts, "forkchat", P, n), find(pts, "ngircd", P, n)
        goal(g, 2, "paced p50 / ngircd", n, ratio(fc and fc["p50_us"], ng and ng["p50_us"]), p50)
        goal(g, 2, "paced p99 / ngircd", n, ratio(fc and fc["p99_us"], ng and ng["p99_us"]), p99)
    for n in (500, 1000):
        fc, ft = find(pts, "forkchat", P, n), find(pts, "floor-tcp", P, n)
        notes = []
        for ref in ("ngircd", "redis"):
            rp = find(pts, ref, P, n)
            if ft and rp:
                notes.append("floor-tcp / %s: p50 %s, p99 %s" % (
                    ref, fmt_ratio(ratio(ft["p50_us"], rp["p50_us"])),
                    fmt_ratio(ratio(ft["p99_us"], rp["p99_us"]))))
        goal(g, 2, "paced p50 / floor-tcp", n, ratio(fc and fc["p50_us"], ft and ft["p50_us"]),
             1.3, note="; ".join(notes))
        goal(g, 2, "paced p99 / floor-tcp", n, ratio(fc and fc["p99_us"], ft and ft["p99_us"]),
             1.3)
    for n in (100, 1000):
        fc = find(pts, "forkchat", P, n)
        goal(g, 3, "server PSS + page tables per client (kB)", n,
             fc and fc.get("mem_kb_per_client"), 100,
             note="paced run, all clients attached")
    mem_goals(g, memory)
    for n in ns_of(pts, "one-room-max"):
        fc = find(pts, "forkchat", "one-room-max", n)
        ft = find(pts, "floor-tcp", "one-room-max", n)
        fs = find(pts, "floor-tcp-send", "one-room-max", n)
        fk = find(pts, "floor-tcp-send-cork", "one-room-max", n)
        for ref in ("ngircd", "redis"):
            rp = find(pts, ref, "one-room-max", n)
            # the floors' own ratios, next to forkchat's: where a floor
            # is below the peer, the goal is beyond the architecture;
            # floor-tcp-send pays the senders' hop as forkchat and Redis do
            notes = []
            for fname, fl in (("floor-tcp", ft), ("floor-tcp-send", fs),
                              ("floor-tcp-send-cork", fk)):
                if fl and rp:
                    notes.append("%s / %s: %s; forkchat / %s: %s" % (
                        fname, ref,
                        fmt_ratio(ratio(fl["deliveries_per_s"], rp["deliveries_per_s"])),
                        fname,
                        fmt_ratio(ratio(fc and fc["deliveries_per_s"],
                                        fl["deliveries_per_s"]))))
            note = "; ".join(notes)
            goal(g, 4, "windowed back-to-back deliveries/s / %s" % ref, n,
                 ratio(fc and fc["deliveries_per_s"], rp and rp["deliveries_per_s"]), 1.0, ">=",
                 note=note)
    for b in burst:
        goal(g, 4, "slow-consumer cuts in the unbounded burst", b["n"], b["cuts"], 0,
             note="lost deliveries %s" % b.get("lost", "-"))
    fc = find(pts, "forkchat", "connect-storm", 1000 - 1)
    rd = find(pts, "redis", "connect-storm", 1000 - 1)
    fs = find(pts, "floor-storm", "connect-storm", 1000 - 1)
    # the connect-storm floor's own ratio, next to forkchat's: where the
    # floor is above Redis, the goal is beyond the architecture
    note = "must be < 1.00x"
    if fs:
        c = "connect_cpu_ms"
        note += ("; floor-storm / redis: %s (server CPU per connection %s); "
                 "forkchat / floor-storm: %s (CPU %s)") % (
            fmt_ratio(ratio(fs["connect_ms"], rd and rd["connect_ms"])),
            fmt_ratio(ratio(fs.get(c), rd and rd.get(c))),
            fmt_ratio(ratio(fc and fc["connect_ms"], fs["connect_ms"])),
            fmt_ratio(ratio(fc and fc.get(c), fs.get(c))))
    goal(g, 5, "connect storm 1000 clients: time / Redis SUBSCRIBE", 1000,
         ratio(fc and fc["connect_ms"], rd and rd["connect_ms"]), 1.0, note=note)
    if g[-1]["value"] is not None:
        g[-1]["met"] = g[-1]["value"] < 1.0
    return g


def goals_table(items):
    rows = ["| goal | ratio | N | measured | limit | met |", "|---|---|---|---|---|---|"]
    for it in items:
        v = it["value"]
        if v is None:
            shown = "not measured"
        elif "kB" in it["what"]:
            shown = "%.0f kB" % v
        elif "cuts" in it["what"]:
            shown = "%d" % v
        else:
            shown = "%.2fx" % v
        lim = ("%s %g kB" if "kB" in it["what"] else "%s %g" if "cuts" in it["what"]
               else "%s %gx") % (it["kind"] if it["kind"] == ">=" else "<=", it["limit"])
        met = "-" if it["met"] is None else ("**yes**" if it["met"] else "no")
        rows.append("| %d | %s | %d | %s | %s | %s |" % (
            it["goal"], it["what"] + (" (%s)" % it["note"] if it["note"] else ""),
            it["n"], shown, lim, met))
    return rows


# ---- tables ---------------------------------------------------------------------

def paced_table(pts, scenario="one-room"):
    rows = ["| N | system | runs | messages/run | p50 | p99 | p99.9 | server CPU/delivery | "
            "p50 vs ngircd | p99 vs ngircd | CPU vs ngircd | p50 vs floor-tcp | "
            "p99 vs floor-tcp | CPU vs floor-tcp |", "|" + "---|" * 14]
    for n in ns_of(pts, scenario):
        ng, ft = find(pts, "ngircd", scenario, n), find(pts, "floor-tcp", scenario, n)
        for s in SYSTEMS:
            p = find(pts, s, scenario, n)
            if p is None:
                continue
            cells = [str(n), s, str(p["repeats"]), "%d" % median(p["messages"]),
                     spread(p, "p50_us", fmt_us), spread(p, "p99_us", fmt_us),
                     spread(p, "p999_us", fmt_us),
                     spread(p, "cpu_us_per_delivery", lambda x: "%.1f us" % x)]
            for ref in (ng, ft):
                for m in ("p50_us", "p99_us", "cpu_us_per_delivery"):
                    cells.append(fmt_ratio(ratio(p.get(m), ref and ref.get(m)))
                                 if ref is not p else "1.00x")
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def ratio_matrix(pts, scenario="one-room"):
    """forkchat / every other system, p50 p99 CPU, per N."""
    others = [s for s in SYSTEMS if s != "forkchat" and
              any(p["system"] == s and p["scenario"] == scenario for p in pts)]
    rows = ["| N | " + " | ".join("vs %s p50 / p99 / CPU" % s for s in others) + " |",
            "|---|" + "---|" * len(others)]
    for n in ns_of(pts, scenario):
        fc = find(pts, "forkchat", scenario, n)
        cells = [str(n)]
        for s in others:
            r = find(pts, s, scenario, n)
            cells.append(" / ".join(fmt_ratio(ratio(fc and fc.get(m), r and r.get(m)))
                                    for m in ("p50_us", "p99_us", "cpu_us_per_delivery")))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def max_table(pts, scenario="one-room-max"):
    rows = ["| N | system | runs | deliveries/s | server CPU/delivery | "
            "server wake-ups/delivery | vs ngircd | vs redis |",
            "|" + "---|" * 8]
    for n in ns_of(pts, scenario):
        ng, rd = find(pts, "ngircd", scenario, n), find(pts, "redis", scenario, n)
        for s in SYSTEMS:
            p = find(pts, s, scenario, n)
            if p is None:
                continue
            rows.append("| %d | %s | %d | %s | %s | %s | %s | %s |" % (
                n, s, p["repeats"], spread(p, "deliveries_per_s", fmt_rate),
                spread(p, "cpu_us_per_delivery", lambda x: "%.2f us" % x),
                spread(p, "wakeups_per_delivery", lambda x: "%.3f" % x),
                fmt_ratio(ratio(p["deliveries_per_s"], ng and ng["deliveries_per_s"])),
                fmt_ratio(ratio(p["deliveries_per_s"], rd and rd["deliveries_per_s"]))))
    return rows


def mem_table(pts, scenario="one-room"):
    rows = ["| N | system | clients | server PSS | page tables | (PSS + page tables) / client |",
            "|---|---|---|---|---|---|"]
    for n in ns_of(pts, scenario):
        for s in SYSTEMS:
            p = find(pts, s, scenario, n)
            if p is None or "pss_kb" not in p:
                continue
            rows.append("| %d | %s | %d | %.1f MB | %s | %.0f kB |" % (
                n, s, p["clients"], p["pss_kb"] / 1024.0,
                "%.1f MB" % (p["pte_kb"] / 1024.0) if p["pte_kb"] >= 0 else "-",
                p["mem_kb_per_client"]))
    return rows


def mem_burst_table(memory):
    rows = ["| N | phase | clients | PSS + page tables / client | parent PSS | parent heap | "
            "parent page tables | child PSS / RSS / page tables (first) | (second) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in memory:
        for ph, label in (("before_burst", "attached"),
                          ("after_burst", "after a burst of %s x %s" % (
                              r["burst"]["senders"], r["burst"]["messages_each"])),
                          ("after_burst_plus_n", "+ %d attached after it" % r["n"])):
            s = r.get(ph)
            if not s:
                continue
            cells = ["%.0f / %.0f / %.0f kB" % (c["pss"], c["rss"], c["pte"])
                     if c else "-" for c in (s.get("child_first"), s.get("child_second"))]
            rows.append("| %d | %s | %d | %.1f kB | %s kB | %s kB | %s kB | %s | %s |" % (
                r["n"], label, s["clients"], s["per_client_pss_pte_kb"], s["parent"]["pss"],
                s.get("parent_heap_kb", "-"), s["parent"]["pte"], cells[0], cells[1]))
        mg = r.get("marginal_per_client_kb")
        if mg:
            rows.append("| %d | marginal per client attached after the burst | %d | %.1f kB "
                        "| | | | | |" % (r["n"], r["n"], mg["pss"] + mg["pte"]))
        if r.get("error"):
            rows.append("| %d | %s | | | | | | | |" % (r["n"], r["error"]))
    return rows


def timing_table(timing, wall_s, budget_s):
    """Wall seconds per part of bench/run.sh, in the order run."""
    rows = ["| part | N | seconds |", "|---|---|---|"]
    for t in timing:
        rows.append("| %s | %s | %.1f |" % (t["part"], t["n"], t["s"]))
    rows.append("| all parts | | %.1f (run.sh's wall time %s s, budget %s s) |" % (
        sum(t["s"] for t in timing), wall_s, budget_s))
    return rows


def federation(runs):
    """forkchat-federated (clients spread over the hubs) vs forkchat (one
    hub) at the same scenario and N: ratios federated / single hub
    (medians of the repeated runs)."""
    pts = points([r for r in runs if r["scenario"].startswith("fed-")])
    out = []
    for fed in pts:
        if fed["system"] != FEDERATED:
            continue
        one = find(pts, "forkchat", fed["scenario"], fed["n"])
        if one is None:
            continue
        item = {"scenario": fed["scenario"], "n": fed["clients"], "rate": fed["rate"]}
        for key in ("p50_us", "p99_us", "deliveries_per_s"):
            item["single_hub_" + key] = one[key]
            item["federated_" + key] = fed[key]
            x = ratio(fed[key], one[key])
            item[key + "_ratio"] = None if x is None else round(x, 3)
        item["extra_hop_p50_us"] = round(fed["p50_us"] - one["p50_us"], 1)
        out.append(item)
    return out


def federation_table(items):
    rows = ["| scenario | clients | single hub p50 | p99 | deliveries/s | "
            "3 hubs p50 | p99 | deliveries/s | p50 3 hubs / 1 | "
            "p99 3 hubs / 1 | del/s 3 hubs / 1 | extra hop (p50) |",
            "|" + "---|" * 12]
    for f in items:
        hop = f["extra_hop_p50_us"]
        rows.append("| " + " | ".join([
            "%s, %s" % (f["scenario"], "max" if not f["rate"]
                        else "%g msg/s" % f["rate"]), str(f["n"]),
            fmt_us(f["single_hub_p50_us"]), fmt_us(f["single_hub_p99_us"]),
            fmt_rate(f["single_hub_deliveries_per_s"]),
            fmt_us(f["federated_p50_us"]), fmt_us(f["federated_p99_us"]),
            fmt_rate(f["federated_deliveries_per_s"]),
            fmt_ratio(f["p50_us_ratio"]), fmt_ratio(f["p99_us_ratio"]),
            fmt_ratio(f["deliveries_per_s_ratio"]),
            ("+" if hop >= 0 else "-") + fmt_us(abs(hop))]) + " |")
    return rows


def full_table(runs):
    rows = ["| system | scenario | N | clients | senders | rate | window | "
            "messages | expected | received | lost | dup | ooo | "
            "p50 | p99 | p99.9 | max | deliveries/s | server CPU/delivery | "
            "connect+register | server PSS | page tables |",
            "|" + "---|" * 22]
    for r in runs:
        rows.append("| " + " | ".join([
            r["system"], r["scenario"], str(receivers(r)), str(r["n"]), str(r["senders"]),
            "max" if not r["rate"] else "%g/s" % r["rate"], str(r.get("window", 0)),
            str(r["messages"]), str(r["expected"]),
            str(r["received"]), str(r["lost"]), str(r["duplicated"]),
            str(r["out_of_order"]), fmt_us(r["p50_us"]),
            fmt_us(r["p99_us"]), fmt_us(r["p999_us"]), fmt_us(r["max_us"]),
            fmt_rate(r["deliveries_per_s"]),
            "%.2f us" % r["cpu_us_per_delivery"] if r.get("cpu_us_per_delivery", -1) >= 0
            else "-", "%.0f ms" % r["connect_ms"],
            "%.1f MB" % (r["server_pss_kb"] / 1024.0)
            if r["server_pss_kb"] >= 0 else "-",
            "%.1f MB" % (r["server_pte_kb"] / 1024.0)
            if r.get("server_pte_kb", -1) >= 0 else "-"]) + " |")
    return rows


def hyperfine_table(hf):
    rows = ["| what | mean | stddev | min | max |", "|---|---|---|---|---|"]
    for name in ("startup", "connect100", "shutdown100"):
        for r in hf.get(name, []):
            rows.append("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
                r["command"], r["mean_ms"], r["stddev_ms"], r["min_ms"],
                r["max_ms"]))
    return rows


def peers_section(peers):
    out = []
    for s in SYSTEMS + ("forkchat-burst",):
        p = peers.get(s)
        if not p:
            continue
        out += ["### %s" % s, "", WHAT.get(s, "forkchatd with its default --max-backlog "
                                           "(the unbounded burst)"), "",
                "Command: `%s`" % p["command"], ""]
        if p.get("config"):
            out += ["```", p["config"].rstrip(), "```", ""]
        if p.get("not_disabled"):
            out += ["Not disabled / different: " + " ".join(p["not_disabled"]), ""]
    return out


def provenance_lines(prov):
    """Which code was measured (ci/provenance.py), for latest.md."""
    if not prov:
        return []
    return ["Code: commit %s%s, %s." % (
        (prov.get("commit") or "unknown")[:12],
        " with uncommitted changes (%s)" % ", ".join(prov.get("dirty_files", [])[:5])
        if prov.get("dirty") else "", prov.get("compiler")), ""]


def write_md(path, doc):
    pts = doc["points"]
    m = doc["machine"]
    meth = doc["method"]
    out = ["# forkchat benchmark (%s)" % doc["mode"], "",
           "%s, %s cores, Linux %s; started %s, load average (1, 5, 15 min) at start -> end: %s; the runs "
           "took %s s. Latency = receiver's read of the complete line minus the sender's "
           "CLOCK_MONOTONIC just before write(); see bench/README.md." % (
               m["cpu"], m["cores"], m["kernel"], doc["started"],
               doc.get("loadavg", "?"), doc.get("wall_s", "?")), ""] + \
        provenance_lines(doc.get("provenance"))
    out += ["Method: N = receivers in one room; 4 senders on top (for floor-pipe and "
            "floor-tcp the senders are virtual, N deliveries per message; floor-tcp-send's "
            "are clients, as forkchat's). Paced: %d messages/s over the senders for "
            "%g s (%d messages) per run, %d run(s) per (system, N): median and (min..max). "
            "Histogram: 128 sub-buckets per power of two (a bin is <= %.2f %% of its value). "
            "Server CPU per delivery: the server's process tree (/proc/PID/task/*/schedstat), "
            "from the start of the traffic to the last delivery, divided by the deliveries. "
            "Back to back: windowed, each sender at most %d messages ahead of its slowest "
            "receiver." % (meth["rate"], meth["paced_s"], meth["rate"] * meth["paced_s"],
                           meth["reps"], HIST_RESOLUTION * 100, meth["window"]), ""]
    if meth["reps"] < 3 or meth["paced_s"] < 10:
        out += ["**Quick mode: fewer and shorter runs than the method of issue 17 asks "
                "(>= 10 s, 3 repetitions); the ratios are indicative only.**", ""]
    out += ["## Goals of issue 17 (ratios of this run's medians)", ""] + \
        goals_table(doc["goals"]) + [""]
    out += ["## One room, paced: latency and server CPU per delivery", ""] + paced_table(pts) + \
        ["", "forkchat / each system (p50 / p99 / CPU per delivery):", ""] + ratio_matrix(pts) + [""]
    if ns_of(pts, "one-room-max"):
        out += ["## One room, windowed back to back (throughput)", ""] + max_table(pts) + [""]
    out += ["## Server memory with all clients attached (paced runs, end of traffic)", ""] + \
        mem_table(pts) + [""]
    if doc.get("memory_after_burst"):
        out += ["## Server memory after a burst (bench/memory.py)", "",
                "A forkchatd of its own (default backlog), idle, the name helper gone: N "
                "clients attached; after a back-to-back burst through their room (20 more "
                "receivers, 4 senders); after N more clients attached (forked after the "
                "burst). Per client = the tree's PSS + page tables / clients; \"marginal\" "
                "= the tree's growth / the N new clients; children: average of the session "
                "children forked before (first) and after (second) the burst.", ""] + \
            mem_burst_table(doc["memory_after_burst"]) + [""]
    if ns_of(pts, "ten-rooms"):
        out += ["## Ten rooms, paced", ""] + paced_table(pts, "ten-rooms") + [""]
    storm = [p for p in pts if p["scenario"] == "connect-storm"]
    if storm:
        out += ["## Connect storm: connect+register time", "",
                "Server CPU per connection: the server's process tree from the first "
                "connect to the last registration (every process it made is still "
                "there), divided by the clients.", "",
                "| system | clients | runs | connect+register | vs redis | vs floor-storm | "
                "server CPU/connection | CPU vs redis | CPU vs floor-storm | lost |",
                "|" + "---|" * 10]
        rd = find(pts, "redis", "connect-storm", 1000 - 1)
        fs = find(pts, "floor-storm", "connect-storm", 1000 - 1)
        for p in storm:
            cpu = p.get("connect_cpu_ms")
            cells = [p["system"], str(p["clients"]), str(p["repeats"]),
                     spread(p, "connect_ms", lambda x: "%.0f ms" % x)]
            cells += [fmt_ratio(ratio(p["connect_ms"], r and r["connect_ms"]))
                      for r in (rd, fs)]
            cells.append(spread(p, "connect_cpu_ms",
                                lambda x: "%.0f us" % (x * 1e3 / p["clients"])))
            cells += [fmt_ratio(ratio(cpu, r and r.get("connect_cpu_ms"))) for r in (rd, fs)]
            cells.append(str(p["lost"]))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if doc.get("burst"):
        out += ["## Unbounded burst (forkchatd's default backlog)", "",
                "| clients | cuts (slow-consumer) | lost deliveries | deliveries/s |",
                "|---|---|---|---|"]
        for b in doc["burst"]:
            out.append("| %d | %d | %s | %s |" % (b["clients"], b["cuts"], b.get("lost", "-"),
                                                  fmt_rate(b.get("deliveries_per_s"))))
        out.append("")
    if doc.get("federation"):
        out += ["## Federation: 3 hubs through Redis vs one hub", "",
                "The same load with the clients spread over three "
                "forkchatd hubs federated through one redis-server (client "
                "i on hub i mod 3, system forkchat-federated) and with all "
                "of them on one hub (system forkchat). Ratios are 3 hubs / 1 hub; "
                "\"extra hop\" is the p50 difference. Back to back here is unwindowed: "
                "compare deliveries/s. See docs/SCALING.md.", ""] + \
            federation_table(doc["federation"]) + [""]
    out += ["## The systems and their configuration", ""] + peers_section(doc["peers"])
    if doc["hyperfine"]:
        out += ["## Whole commands (hyperfine)", ""] + \
            hyperfine_table(doc["hyperfine"]) + [""]
    out += ["## Every run", ""] + full_table(doc["runs"]) + [""]
    if doc.get("timing"):
        out += ["## Time per part", "", "Wall seconds of each part (server start, connect, "
                "traffic, stop), in the order run (one-room: the paced and then the windowed "
                "runs on one set-up); the parts after the memory after a burst "
                "(ten rooms, federation, hyperfine) are skipped once the budget "
                "(BENCH_BUDGET_S) has passed.", ""] + \
            timing_table(doc["timing"], doc.get("wall_s"), doc.get("budget_s")) + [""]
    if doc["problems"]:
        out += ["## Problems seen", ""] + ["- " + p for p in doc["problems"]]
        out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def plot(outdir, pts):
    """Three PNGs with gnuplot; returns a list of notes on failure."""
    tmp = tempfile.mkdtemp(prefix="forkchat-plot.")
    shown = [s for s in SYSTEMS if any(p["system"] == s for p in pts)]
    dat = {}
    for sysname in shown:
        for sc in ("one-room", "one-room-max"):
            rs = sorted((p for p in pts if p["system"] == sysname and p["scenario"] == sc),
                        key=lambda p: p["n"])
            path = os.path.join(tmp, "%s-%s.dat" % (sysname, sc))
            with open(path, "w") as f:
                for p in rs:
                    f.write("%d %f %f %f %f\n" % (
                        p["n"], max(p["p50_us"], 0.1), max(p["p99_us"], 0.1),
                        max(p["p999_us"], 0.1), p["deliveries_per_s"]))
            dat[(sysname, sc)] = path
    cdf_n = 100 if any(p["n"] == 100 for p in pts) else max([p["n"] for p in pts] or [0])
    cdf = {}
    for sysname in shown:
        p = find(pts, sysname, "one-room", cdf_n)
        path = os.path.join(tmp, "%s-cdf.dat" % sysname)
        with open(path, "w") as f:
            for q, us in (p["cdf"] if p else []):
                f.write("%f %f\n" % (max(us, 0.1), q * 100))
        cdf[sysname] = path
    colors = {"forkchat": "#d62728", "ngircd": "#9467bd", "inspircd": "#8c564b",
              "redis": "#1f77b4", "floor-pipe": "#2ca02c", "floor-tcp": "#17becf",
              "floor-tcp-send": "#bcbd22", "floor-tcp-send-cork": "#dbdb8d",
              "floor-pipe-batched": "#7f7f7f"}
    paced = [s for s in shown if os.path.getsize(dat[(s, "one-room")])]
    maxed = [s for s in shown if os.path.getsize(dat[(s, "one-room-max")])]
    lat = ", ".join(
        "'%s' u 1:%d w lp lw 2 pt %d lc rgb '%s' t '%s %s'" % (
            dat[(s, "one-room")], col, pt, colors[s], s, name)
        for s in paced for col, pt, name in ((2, 7, "p50"), (3, 5, "p99")))
    thr = ", ".join("'%s' u 1:5 w lp lw 2 pt 7 lc rgb '%s' t '%s'" % (
        dat[(s, "one-room-max")], colors[s], s) for s in maxed)
    cdfp = ", ".join("'%s' u 1:2 w l lw 2 lc rgb '%s' t '%s'" % (
        cdf[s], colors[s], s) for s in paced)
    if not lat or not thr:
        return ["plots skipped: no paced or no back-to-back points"]
    script = """
set terminal pngcairo size 900,560 font ',10'
set grid
set key left top
set logscale x
set xlabel 'N (receivers in the room)'
set output '{o}/latency-vs-n.png'
set title 'one room, paced: latency percentiles vs N (medians)'
set logscale y
set ylabel 'latency (us)'
plot {lat}
set output '{o}/throughput-vs-n.png'
set title 'one room, windowed back to back: deliveries per second vs N (medians)'
unset logscale y
set ylabel 'deliveries/s'
set format y '%.1s%c'
plot {thr}
set output '{o}/latency-cdf.png'
set title 'one room, paced, N={n}: latency CDF (the run nearest the median p50)'
set format y '%g'
set xlabel 'latency (us)'
set ylabel 'percent of deliveries at or below'
set yrange [0:100]
set key right bottom
plot {cdfp}
""".format(o=os.path.abspath(outdir), lat=lat, thr=thr, cdfp=cdfp, n=cdf_n)
    try:
        res = subprocess.run(["gnuplot"], input=script, text=True,
                             capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ["gnuplot failed: %s" % e]
    if res.returncode != 0:
        return ["gnuplot failed: %s" % res.stderr.strip()[:300]]
    return []


def burst_items(runs, cuts):
    out = []
    for c in cuts:
        r = next((r for r in runs if r["system"] == c["system"] and
                  r["scenario"] == c["scenario"]), None)
        out.append({"clients": c["n"], "n": c["n"] - (r["senders"] if r else 0),
                    "cuts": c["cuts"], "lost": r and r["lost"],
                    "deliveries_per_s": r and r["deliveries_per_s"]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--problems")
    ap.add_argument("--started", required=True)
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--out", required=True)
    ap.add_argument("--server", help="the forkchatd measured (recorded in provenance)")
    ap.add_argument("--conf", help="bench/run.sh's directory of peer commands and configs")
    ap.add_argument("--cuts", help="JSON lines: slow-consumer cuts of the burst runs")
    ap.add_argument("--wall-s", type=int, help="wall time of the runs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--paced-s", type=float, default=10)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--loadavg", help="load average at the start and the end")
    ap.add_argument("--memory", help="bench/memory.py's JSON lines (goal 3 after a burst)")
    ap.add_argument("--timing", help="JSON lines: wall seconds per part of bench/run.sh")
    ap.add_argument("--budget-s", type=int, help="bench/run.sh's time budget")
    a = ap.parse_args()
    runs = load_jsonl(a.runs)
    problems = []
    if a.problems and os.path.exists(a.problems):
        with open(a.problems) as f:
            problems = [ln.strip() for ln in f if ln.strip()]
    for r in runs:
        if (r["lost"] or r["duplicated"] or r["out_of_order"] or r["errors"]) and \
                r["system"] != "forkchat-burst":
            problems.append(
                "%s %s n=%d: lost %d, duplicated %d, out of order %d, "
                "client errors %d %s" % (
                    r["system"], r["scenario"], r["n"], r["lost"],
                    r["duplicated"], r["out_of_order"], r["errors"],
                    r.get("error", "")))
    for r in runs:
        if r["scenario"] == "one-room" and r["rate"] and \
                r["messages"] < a.rate * a.paced_s * 0.99:
            problems.append("%s one-room n=%d: sent %d of %d messages in the run's time: "
                            "it could not keep the pace" % (
                                r["system"], r["n"], r["messages"], a.rate * a.paced_s))
    main_runs = [r for r in runs if not r["scenario"].startswith("fed-")
                 and r["system"] != "forkchat-burst"]
    pts = points(main_runs)
    burst = burst_items(runs, load_jsonl(a.cuts))
    load = a.loadavg or "?"
    memory = memory_runs(a.memory)
    doc = {"machine": machine(), "started": a.started, "mode": a.mode,
           "wall_s": a.wall_s, "loadavg": load,
           "method": {"reps": a.reps, "paced_s": a.paced_s, "rate": a.rate,
                      "window": a.window, "hist_resolution": HIST_RESOLUTION,
                      "n": "receivers in the room; 4 senders on top except for floor-pipe "
                           "and floor-tcp"},
           "goals": goals(pts, burst, memory), "points": pts, "burst": burst,
           "memory_after_burst": memory, "timing": load_jsonl(a.timing),
           "budget_s": a.budget_s,
           "peers": load_peers(a.conf), "runs": runs,
           "hyperfine": load_hyperfine(a.out),
           "problems": problems, "provenance": provenance.collect(binary=a.server)}
    doc["commit"] = doc["provenance"]["commit"]    # what the hook and humans grep for
    fed = federation(runs)
    if fed:
        doc["federation"] = fed
    os.makedirs(a.out, exist_ok=True)
    doc["problems"] += plot(a.out, pts)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    write_md(os.path.join(a.out, "latest.md"), doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
