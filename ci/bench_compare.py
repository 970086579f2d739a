#!/usr/bin/python3
"""ci/bench_compare.py check|baseline BASELINE RUN.json... (stdlib only)

Each RUN.json is one bench/results/latest.json (runs[] of system,
scenario, n, p50_us, p99_us, deliveries_per_s, lost, duplicated, ...).
For every (scenario, n) measured for both "forkchat" and "floor" (the
floor is the same load against a trivial fan-out server, so the ratio
cancels out the machine), compute per file

    throughput ratio  = forkchat deliveries_per_s / floor deliveries_per_s
    latency ratios    = forkchat p50_us / floor p50_us  (and p99_us)

and take the median over the files.  Points measured for both
"forkchat-federated" (3 hubs through Redis) and "forkchat" (one hub, same
load) are compared the same way, federated / one hub, under the key
"fed:SCENARIO/N": the cost of the extra hop.  The gated metric depends on the
scenario: a paced scenario (rate > 0) offers a fixed load, so its
throughput ratio is ~1 by construction and the p50 latency ratio is gated
(higher = worse); an unpaced one (rate 0, "-max") is gated on the
throughput ratio (lower = worse).  p99 is printed but not gated: on a
shared 2-core runner tail latency is mostly scheduler noise.

check:    exit 1 if any run lost or duplicated a delivery, if a baseline
          point is missing, or if a gated ratio is worse than the
          baseline by more than the tolerance (default 30%).
baseline: write BASELINE from the medians.
"""
import json
import statistics
import sys
import time

TOLERANCE = 0.30


PAIRS = (("", "forkchat", "floor"), ("fed:", "forkchat-federated", "forkchat"))


def load(paths):
    per_key = {}        # (prefix, scenario, n) -> list of {system: run} per file
    problems = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        by = {}
        for r in doc.get("runs", []):
            for field in ("lost", "duplicated"):
                if r.get(field, 0):
                    problems.append("%s: %s %s n=%s: %s=%s" % (
                        path, r["system"], r["scenario"], r["n"], field, r[field]))
            by.setdefault((r["scenario"], int(r["n"])), {})[r["system"]] = r
        for (scenario, n), systems in by.items():
            for prefix, sys_, ref in PAIRS:
                if sys_ in systems and ref in systems:
                    per_key.setdefault((prefix, scenario, n), []).append(
                        {"sys": systems[sys_], "ref": systems[ref]})
    return per_key, problems


def ratio(a, b):
    return a / b if b else float("inf")


def medians(per_key):
    out = {}
    for (prefix, scenario, n), files in sorted(per_key.items()):
        fc = [f["sys"] for f in files]
        fl = [f["ref"] for f in files]
        paced = (fc[0].get("rate") or 0) > 0
        out["%s%s/%d" % (prefix, scenario, n)] = {
            "gate": "p50_us" if paced else "deliveries_per_s",
            "deliveries_per_s": statistics.median(
                ratio(a["deliveries_per_s"], b["deliveries_per_s"]) for a, b in zip(fc, fl)),
            "p50_us": statistics.median(ratio(a["p50_us"], b["p50_us"]) for a, b in zip(fc, fl)),
            "p99_us": statistics.median(ratio(a["p99_us"], b["p99_us"]) for a, b in zip(fc, fl)),
            "files": len(files),
        }
    return out


def check(baseline_path, cur):
    try:
        with open(baseline_path) as f:
            base = json.load(f)
    except FileNotFoundError:
        print("bench-check: no %s; create it with: make bench-baseline" % baseline_path)
        return 1
    tol = base.get("tolerance", TOLERANCE)
    bad = 0
    print("%-22s %-17s %10s %10s %8s  %s" % ("point", "gated metric", "baseline", "now", "change", "verdict"))
    for key, b in sorted(base["ratios"].items()):
        c = cur.get(key)
        metric = b["gate"]
        if c is None:
            print("%-22s %-17s %10.3f %10s %8s  FAIL (not measured)" % (key, metric, b[metric], "-", "-"))
            bad = 1
            continue
        now, was = c[metric], b[metric]
        # worse = lower throughput ratio, or higher latency ratio
        worse = (was / now - 1) if metric == "deliveries_per_s" else (now / was - 1)
        verdict = "FAIL" if worse > tol else "ok"
        bad |= verdict == "FAIL"
        print("%-22s %-17s %10.3f %10.3f %+7.0f%%  %s  (p99 ratio %.2f, was %.2f)" % (
            key, metric + " ratio", was, now, 100 * worse, verdict, c["p99_us"], b["p99_us"]))
    for key in sorted(set(cur) - set(base["ratios"])):
        print("%-22s not in the baseline (make bench-baseline to add it)" % key)
    print("tolerance: a gated ratio may be at most %.0f%% worse than the baseline" % (100 * tol))
    return bad


def main(argv):
    if len(argv) < 4 or argv[1] not in ("check", "baseline"):
        print(__doc__)
        return 2
    mode, baseline_path, paths = argv[1], argv[2], argv[3:]
    per_key, problems = load(paths)
    cur = medians(per_key)
    rc = 0
    for p in problems:
        print("bench-check: FAIL: delivery problem: %s" % p)
        rc = 1
    if not cur:
        print("bench-check: FAIL: no (scenario, n) point measured for both forkchat and floor")
        return 1
    if mode == "baseline":
        if rc:
            print("bench-baseline: refusing to record a baseline from runs with delivery problems")
            return rc
        doc = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "runs": len(paths), "tolerance": TOLERANCE, "ratios": cur}
        with open(baseline_path, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        print("bench-baseline: wrote %s (%d points from %d runs)" % (baseline_path, len(cur), len(paths)))
        for k, v in cur.items():
            print("  %-22s %s ratio %.3f" % (k, v["gate"], v[v["gate"]]))
        return 0
    return check(baseline_path, cur) or rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
