#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""ci/bench_compare.py RUNS.jsonl - the verdict of bench-check (stdlib only).

RUNS.jsonl holds one forkchat-load result per line, each tagged by
ci/bench_ab.py with "side" ("base" or "cand"), "round" and "point".  The
base is the last landed commit, built beside the candidate and run
interleaved with it on the same machine in the same minutes (ci/bench.sh),
so nothing is compared with a number recorded elsewhere.

For every point and round i the paired ratio

    w_i = base deliveries/s / cand deliveries/s    (unpaced points, "-max")
    w_i = cand CPU us/delivery / base CPU us/delivery  (the same points, "POINT cpu")
    w_i = cand p50 latency / base p50 latency      (paced points)

is > 1 when the candidate is worse.  The CPU is what the server (with its
session children; every hub for a federated point) spent, from wait4(),
divided by the deliveries: other load on the machine moves it far less
than wall-clock throughput (spread 3-10 % against 15-45 % at load 15-28 on
2 cores), so it catches a CPU regression that the throughput noise hides;
the throughput catches a slowdown that costs no CPU (a lost wake-up).  The point's change is median(w) - 1.
The noise of this run is the robust spread of the pairs,
s = 1.4826 * MAD(ln w_i) (a standard deviation estimate that one outlier
cannot inflate), and the tolerance is

    tol = min(CAP, max(FLOOR, K * s))

The point fails if median(w) > 1 + tol and at least SIGN of the pairs
(ceil(0.8 * rounds): 5 of 6) have the candidate worse.  FLOOR keeps a
quiet run from failing on a few per cent; CAP keeps a noisy run from
passing a real regression (a 2x slowdown is +100 %, always above CAP); the
sign condition keeps a burst of load on the machine, which hits one run
of a pair and not the other, from failing a run whose pairs disagree (a
real slowdown makes nearly every pair worse).  A noisy run whose K * s
exceeds CAP is reported as such.  Any lost, duplicated or reordered
delivery, a failed run, or a point without a pair also fails.

    ci/bench_compare.py --noisy RUNS.jsonl

exits 0 if some point is noisy (K * s > CAP): ci/bench.sh then runs more
rounds (BENCH_MAX_ROUNDS) before the verdict.

Exit 0 pass, 1 fail, 2 usage.
"""
import json
import math
import statistics
import sys

K = 3.0
FLOOR = 0.25
CAP = 0.50
SIGN = 0.8
BAD_FIELDS = ("lost", "duplicated", "out_of_order", "errors")


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


def problems(recs):
    out = []
    for r in recs:
        if r.get("failed"):
            out.append("%s %s round %s: %s" % (r["point"], r["side"], r.get("round"),
                                                r["failed"]))
        for f in BAD_FIELDS:
            if r.get(f, 0):
                out.append("%s %s round %s: %s=%s" % (r["point"], r["side"],
                                                      r.get("round"), f, r[f]))
    return out


def robust_sigma(xs):
    if len(xs) < 2:
        return 0.0
    m = statistics.median(xs)
    return 1.4826 * statistics.median(abs(x - m) for x in xs)


def worse_ratio(metric, base, cand):
    """> 1 when cand is worse than base on metric."""
    if metric == "deliveries_per_s":
        return base / cand if cand > 0 else math.inf
    return cand / base if base > 0 else math.inf


def judge(full, metric, k=K, floor=FLOOR, cap=CAP):
    """The verdict on one metric over the complete rounds `full`."""
    w = [worse_ratio(metric, v["base"][metric], v["cand"][metric]) for v in full]
    logs = [math.log(x) for x in w if 0 < x < math.inf]
    s = robust_sigma(logs)
    tol = min(cap, max(floor, k * s))
    change = statistics.median(w) - 1
    nworse = sum(1 for x in w if x > 1)
    need = math.ceil(SIGN * len(w))
    base_vals = [v["base"][metric] for v in full]
    cand_vals = [v["cand"][metric] for v in full]
    return {
        "metric": metric, "rounds": len(full), "ratios": [round(x, 4) for x in w],
        "change": change, "spread": s, "tolerance": tol, "noisy": k * s > cap,
        "base": statistics.median(base_vals), "cand": statistics.median(cand_vals),
        "base_spread": rel_range(base_vals), "cand_spread": rel_range(cand_vals),
        "worse_pairs": nworse, "need": need,
        "verdict": "FAIL" if change > tol and nworse >= need else "ok",
    }


def analyse(recs, k=K, floor=FLOOR, cap=CAP):
    """{point: {...}} from the tagged records (see the module docstring).
    An unpaced point is judged twice: on its throughput ("POINT") and on
    the servers' CPU per delivery ("POINT cpu")."""
    pairs = {}
    for r in recs:
        if r.get("failed"):
            continue
        pairs.setdefault(r["point"], {}).setdefault(r["round"], {})[r["side"]] = r
    out = {}
    for point, rounds in sorted(pairs.items()):
        full = [v for _, v in sorted(rounds.items()) if "base" in v and "cand" in v]
        if not full:
            out[point] = {"verdict": "FAIL", "why": "no round with both base and cand"}
            continue
        metric = full[0]["cand"]["gate"]
        out[point] = judge(full, metric, k, floor, cap)
        if metric == "deliveries_per_s" and all(
                v[side].get("cpu_us_per_delivery") for v in full for side in ("base", "cand")):
            out[point + " cpu"] = judge(full, "cpu_us_per_delivery", k, floor, cap)
    return out


def rel_range(xs):
    """(max - min) / median: how much one system moved within this run."""
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else math.inf


def num(v):
    return "%.0f" % v if abs(v) >= 100 else "%.3f" % v


def report(res, probs, k=K, floor=FLOOR, cap=CAP):
    lines = ["%-24s %-19s %11s %11s %8s %8s %6s  %s" % (
        "point", "gated metric", "base", "candidate", "worse", "spread", "tol", "verdict")]
    for point, r in res.items():
        if "metric" not in r:
            lines.append("%-24s %s  FAIL" % (point, r["why"]))
            continue
        lines.append("%-24s %-19s %11s %11s %+7.1f%% %7.1f%% %5.0f%%  %s%s" % (
            point, r["metric"], num(r["base"]), num(r["cand"]), 100 * r["change"], 100 * r["spread"],
            100 * r["tolerance"], r["verdict"],
            " (noisy run: K*spread above the cap)" if r["noisy"] else ""))
        lines.append("%-24s paired worse-ratios %s (%d of %d worse, %d needed to fail); "
                     "base moved %.0f%%, candidate %.0f%% within the run" % (
                         "", " ".join("%.3f" % x for x in r["ratios"]), r["worse_pairs"],
                         r["rounds"], r["need"], 100 * r["base_spread"], 100 * r["cand_spread"]))
    lines.append("tolerance = min(%.0f%%, max(%.0f%%, %g x spread)); spread = 1.4826 x MAD "
                 "of ln(paired ratio)" % (100 * cap, 100 * floor, k))
    for p in probs:
        lines.append("bench-check: FAIL: %s" % p)
    return "\n".join(lines)


def verdict(res, probs):
    return 1 if probs or any(r["verdict"] == "FAIL" for r in res.values()) else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--noisy":
        # exit 0 (and name them) if some point's spread is too wide to
        # judge well: ci/bench.sh then runs more rounds
        res = analyse(load(argv[2]))
        noisy = [p for p, r in res.items() if r.get("noisy")]
        if noisy:
            print("noisy points: %s" % ", ".join(noisy))
        return 0 if noisy else 1
    if len(argv) != 2:
        print(__doc__)
        return 2
    recs = load(argv[1])
    if not recs:
        print("bench-check: FAIL: no runs in %s" % argv[1])
        return 1
    res = analyse(recs)
    probs = problems(recs)
    print(report(res, probs))
    rc = verdict(res, probs)
    print("bench-check: %s" % ("FAIL" if rc else "pass"))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
