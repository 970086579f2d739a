#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/report.py - turn forkchat-load's JSON lines into the bench report.

Reads the runs (one JSON object per line, written by forkchat-load -j),
the hyperfine exports and the problem notes of bench/run.sh, and writes
  latest.json   {"machine", "started", "mode", "runs", "hyperfine", "problems",
                 "provenance" (git commit, dirty flag, compiler, kernel, machine:
                 ci/provenance.py)}
  latest.md     tables: forkchat next to the floor and Redis, with ratios;
                "Federation": 3 federated hubs (system forkchat-federated)
                vs one hub at the same N, with ratios
  latency-vs-n.png, throughput-vs-n.png, latency-cdf.png (gnuplot)
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

SYSTEMS = ("forkchat", "floor", "redis")
FEDERATED = "forkchat-federated"
SCENARIOS = ("one-room", "one-room-max", "ten-rooms", "connect-storm")


def machine():
    """The CPU, cores (ci/provenance.py) and the kernel."""
    return dict(provenance.machine(), kernel=platform.release())


def load_runs(path):
    runs = []
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


def pick_medians(runs):
    """Back-to-back runs are repeated (their throughput varies run to run):
    keep the median by deliveries/s and record every value."""
    groups, order = {}, []
    for r in runs:
        key = (r["system"], r["scenario"], r["n"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    out = []
    for key in order:
        g = sorted(groups[key], key=lambda r: r["deliveries_per_s"])
        pick = dict(g[(len(g) - 1) // 2])
        pick["repeats"] = len(g)
        pick["deliveries_per_s_all"] = [r["deliveries_per_s"] for r in g]
        out.append(pick)
    return out


def find(runs, system, scenario, n):
    for r in runs:
        if r["system"] == system and r["scenario"] == scenario and r["n"] == n:
            return r
    return None


def ratio(a, b):
    if a is None or b is None or not b:
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


def reference_ns(runs, scenario):
    """The N of a scenario that the floor or Redis ran (so not the extra
    single-hub point that only the federation comparison uses)."""
    return sorted({r["n"] for r in runs if r["scenario"] == scenario and
                   r["system"] in ("floor", "redis")})


def comparison_table(runs, scenario):
    """forkchat vs floor vs Redis per N, with forkchat's ratios."""
    ns = reference_ns(runs, scenario)
    if not ns:
        return []
    rows = ["| N | forkchat p50 | p99 | deliveries/s | floor p50 | p99 | "
            "deliveries/s | redis p50 | p99 | deliveries/s | "
            "p50 vs floor | p99 vs floor | del/s vs floor | "
            "p50 vs redis | p99 vs redis | del/s vs redis |",
            "|" + "---|" * 16]
    for n in ns:
        fc, fl, rd = (find(runs, s, scenario, n) for s in SYSTEMS)
        cells = [str(n)]
        for r in (fc, fl, rd):
            cells += [fmt_us(r and r["p50_us"]), fmt_us(r and r["p99_us"]),
                      fmt_rate(r and r["deliveries_per_s"])]
        for ref in (fl, rd):
            for key in ("p50_us", "p99_us", "deliveries_per_s"):
                cells.append(fmt_ratio(ratio(fc and fc[key],
                                             ref and ref[key])))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def federation(runs):
    """forkchat-federated (clients spread over the hubs) vs forkchat (one
    hub) at the same scenario and N: ratios federated / single hub."""
    out = []
    for fed in runs:
        if fed["system"] != FEDERATED:
            continue
        one = find(runs, "forkchat", fed["scenario"], fed["n"])
        if one is None:
            continue
        item = {"scenario": fed["scenario"], "n": fed["n"],
                "rate": fed["rate"]}
        for key in ("p50_us", "p99_us", "deliveries_per_s"):
            item["single_hub_" + key] = one[key]
            item["federated_" + key] = fed[key]
            x = ratio(fed[key], one[key])
            item[key + "_ratio"] = None if x is None else round(x, 3)
        item["extra_hop_p50_us"] = round(fed["p50_us"] - one["p50_us"], 1)
        out.append(item)
    return out


def federation_table(items):
    rows = ["| scenario | N | single hub p50 | p99 | deliveries/s | "
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
    rows = ["| system | scenario | N | senders | rooms | rate | size | "
            "messages | expected | received | lost | dup | ooo | "
            "p50 | p90 | p99 | p99.9 | max | deliveries/s | "
            "connect+register | server RSS | server PSS |",
            "|" + "---|" * 22]
    for r in runs:
        rows.append("| " + " | ".join([
            r["system"], r["scenario"], str(r["n"]), str(r["senders"]),
            str(r["rooms"]), "max" if not r["rate"] else "%g/s" % r["rate"],
            str(r["size"]), str(r["messages"]), str(r["expected"]),
            str(r["received"]), str(r["lost"]), str(r["duplicated"]),
            str(r["out_of_order"]), fmt_us(r["p50_us"]), fmt_us(r["p90_us"]),
            fmt_us(r["p99_us"]), fmt_us(r["p999_us"]), fmt_us(r["max_us"]),
            fmt_rate(r["deliveries_per_s"]), "%.0f ms" % r["connect_ms"],
            "%.1f MB" % (r["server_rss_kb"] / 1024.0)
            if r["server_rss_kb"] >= 0 else "-",
            "%.1f MB" % (r["server_pss_kb"] / 1024.0)
            if r["server_pss_kb"] >= 0 else "-"]) + " |")
    return rows


def hyperfine_table(hf):
    rows = ["| what | mean | stddev | min | max |", "|---|---|---|---|---|"]
    for name in ("startup", "connect100", "shutdown100"):
        for r in hf.get(name, []):
            rows.append("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
                r["command"], r["mean_ms"], r["stddev_ms"], r["min_ms"],
                r["max_ms"]))
    return rows


def provenance_lines(prov):
    """Which code was measured (ci/provenance.py), for latest.md."""
    if not prov:
        return []
    return ["Code: commit %s%s, %s." % (
        (prov.get("commit") or "unknown")[:12],
        " with uncommitted changes (%s)" % ", ".join(prov.get("dirty_files", [])[:5])
        if prov.get("dirty") else "", prov.get("compiler")), ""]


def write_md(path, doc):
    runs = doc["runs"]
    m = doc["machine"]
    out = ["# forkchat benchmark (%s)" % doc["mode"], "",
           "%s, %s cores, Linux %s; started %s. Latency = receiver's read of "
           "the complete line minus the sender's CLOCK_MONOTONIC just before "
           "write(); see bench/README.md." % (m["cpu"], m["cores"],
                                              m["kernel"], doc["started"]),
           ""] + provenance_lines(doc.get("provenance"))
    titles = {
        "one-room": "One room, paced (%s msg/s over all senders)",
        "one-room-max": "One room, back to back (throughput)",
        "ten-rooms": "Ten rooms of N/10, paced",
        "connect-storm": "Connect storm",
    }
    for sc in SCENARIOS:
        rows = comparison_table(runs, sc)
        if not rows:
            continue
        if sc == "one-room-max":
            rows += ["", "Median of %d runs each; deliveries/s of every "
                     "run (min..max): " % max(r["repeats"] for r in runs
                                              if r["scenario"] == sc) +
                     "; ".join("%s N=%d %s..%s" % (
                         r["system"], r["n"],
                         fmt_rate(min(r["deliveries_per_s_all"])),
                         fmt_rate(max(r["deliveries_per_s_all"])))
                         for r in runs if r["scenario"] == sc and
                         r["system"] in SYSTEMS and
                         r["n"] in reference_ns(runs, sc)) + "."]
        title = titles[sc]
        if "%s" in title:
            rate = next((r["rate"] for r in runs if r["scenario"] == sc), 0)
            title = title % ("%g" % rate)
        out += ["## " + title, ""] + rows + [""]
    storm = [r for r in runs if r["scenario"] == "connect-storm"]
    if storm:
        out += ["## Connect storm: connect+register time", "",
                "| system | N | connect+register | lost | server RSS |",
                "|---|---|---|---|---|"]
        for r in storm:
            out.append("| %s | %d | %.0f ms | %d | %.1f MB |" % (
                r["system"], r["n"], r["connect_ms"], r["lost"],
                r["server_rss_kb"] / 1024.0))
        out.append("")
    if doc.get("federation"):
        out += ["## Federation: 3 hubs through Redis vs one hub", "",
                "The same load with the N clients spread over three "
                "forkchatd hubs federated through one redis-server (client "
                "i on hub i mod 3, system forkchat-federated) and with all "
                "of them on one hub (system forkchat). Most deliveries cross "
                "hubs: sender's hub, XADD, the other hubs' bridges, their "
                "fan-out. Ratios are 3 hubs / 1 hub; \"extra hop\" is the "
                "p50 difference. Back to back (median of the repeated runs), "
                "compare deliveries/s: latency there is queueing. See "
                "docs/SCALING.md.", ""] + \
            federation_table(doc["federation"]) + [""]
    if doc["hyperfine"]:
        out += ["## Whole commands (hyperfine)", ""] + \
            hyperfine_table(doc["hyperfine"]) + [""]
    out += ["## Every run", ""] + full_table(runs) + [""]
    if doc["problems"]:
        out += ["## Problems seen", ""] + ["- " + p for p in doc["problems"]]
        out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def plot(outdir, runs):
    """Three PNGs with gnuplot; returns a list of notes on failure."""
    tmp = tempfile.mkdtemp(prefix="forkchat-plot.")
    dat = {}
    for sysname in SYSTEMS:
        for sc in ("one-room", "one-room-max"):
            ns = reference_ns(runs, sc)
            rs = sorted((r for r in runs if r["system"] == sysname and
                         r["scenario"] == sc and r["n"] in ns),
                        key=lambda r: r["n"])
            p = os.path.join(tmp, "%s-%s.dat" % (sysname, sc))
            with open(p, "w") as f:
                for r in rs:
                    f.write("%d %f %f %f %f\n" % (
                        r["n"], max(r["p50_us"], 0.1), max(r["p99_us"], 0.1),
                        max(r["p999_us"], 0.1), r["deliveries_per_s"]))
            dat[(sysname, sc)] = p
    cdf_n = 100 if any(r["n"] == 100 for r in runs) else \
        max([r["n"] for r in runs] or [0])
    cdf = {}
    for sysname in SYSTEMS:
        r = find(runs, sysname, "one-room", cdf_n)
        p = os.path.join(tmp, "%s-cdf.dat" % sysname)
        with open(p, "w") as f:
            for q, us in (r["cdf"] if r else []):
                f.write("%f %f\n" % (max(us, 0.1), q * 100))
        cdf[sysname] = p
    colors = {"forkchat": "#d62728", "floor": "#2ca02c", "redis": "#1f77b4"}
    lat = ", ".join(
        "'%s' u 1:%d w lp lw 2 pt %d lc rgb '%s' t '%s %s'" % (
            dat[(s, "one-room")], col, pt, colors[s], s, name)
        for s in SYSTEMS for col, pt, name in ((2, 7, "p50"), (3, 5, "p99")))
    thr = ", ".join("'%s' u 1:5 w lp lw 2 pt 7 lc rgb '%s' t '%s'" % (
        dat[(s, "one-room-max")], colors[s], s) for s in SYSTEMS)
    cdfp = ", ".join("'%s' u 1:2 w l lw 2 lc rgb '%s' t '%s'" % (
        cdf[s], colors[s], s) for s in SYSTEMS)
    script = """
set terminal pngcairo size 900,560 font ',10'
set grid
set key left top
set logscale x
set xlabel 'N (clients in the room)'
set output '{o}/latency-vs-n.png'
set title 'one room, paced: latency percentiles vs N'
set logscale y
set ylabel 'latency (us)'
plot {lat}
set output '{o}/throughput-vs-n.png'
set title 'one room, back to back: deliveries per second vs N'
unset logscale y
set ylabel 'deliveries/s'
set format y '%.1s%c'
plot {thr}
set output '{o}/latency-cdf.png'
set title 'one room, paced, N={n}: latency CDF'
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--problems")
    ap.add_argument("--started", required=True)
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--out", required=True)
    ap.add_argument("--server", help="the forkchatd measured (recorded in provenance)")
    a = ap.parse_args()
    runs = load_runs(a.runs)
    problems = []
    if a.problems and os.path.exists(a.problems):
        with open(a.problems) as f:
            problems = [ln.strip() for ln in f if ln.strip()]
    for r in runs:
        if r["lost"] or r["duplicated"] or r["out_of_order"] or r["errors"]:
            problems.append(
                "%s %s n=%d: lost %d, duplicated %d, out of order %d, "
                "client errors %d %s" % (
                    r["system"], r["scenario"], r["n"], r["lost"],
                    r["duplicated"], r["out_of_order"], r["errors"],
                    r.get("error", "")))
    runs = pick_medians(runs)
    doc = {"machine": machine(), "started": a.started, "mode": a.mode,
           "runs": runs, "hyperfine": load_hyperfine(a.out),
           "problems": problems, "provenance": provenance.collect(binary=a.server)}
    doc["commit"] = doc["provenance"]["commit"]    # what the hook and humans grep for
    fed = federation(runs)
    if fed:
        doc["federation"] = fed
    os.makedirs(a.out, exist_ok=True)
    doc["problems"] += plot(a.out, runs)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    write_md(os.path.join(a.out, "latest.md"), doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
