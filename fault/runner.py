#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""runner - run the forkchat fault matrix and report it.

    /usr/bin/python3 fault/runner.py --suite full|quick [--only REGEX] [--keep]
                                     [--fuzz-cmd 'make fuzz-quick']
    /usr/bin/python3 fault/runner.py --soak --seed N --duration S

Prints a table (scenario, kind, failpoint, result, evidence).  The full suite
writes fault/results/latest.json and latest.md (merging fault/results/fuzz.json
from the fuzz engineer when the fuzz command produced it); quick writes
quick.json/quick.md; soak writes soak-SEED.json.  Exit status 1 if any
scenario failed.  Every server is killed by pid when its scenario ends, even
on failure or ^C; run dirs (with libfiu's FIFOs) are per run under /tmp.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "integration"))
sys.path.insert(2, str(HERE.parent / "integration" / "lib"))
sys.path.insert(3, str(HERE.parent / "ci"))

import fclib                     # noqa: E402
import skipgate                  # noqa: E402
import provenance                # noqa: E402
from fclib import Fail           # noqa: E402
from harness import procfs, server, timescale  # noqa: E402

RESULTS = HERE / "results"


class Ctx:
    def __init__(self, rundir, seed):
        self.rundir = Path(rundir)
        self.seed = seed


class Timeout(Exception):
    pass


def on_alarm(sig, frame):
    raise Timeout()


def one_line(s, n=400):
    return re.sub(r"\s+", " ", str(s)).strip()[:n]


# the scenario's own point: the first failpoint name in its point column
POINT_RX = re.compile(r"(?:forkchatd|posix|libc)(?:/[a-z_0-9]+)+")


def fired_counts(path):
    """{point: injected failures} from a FORKCHAT_FAILPOINT_LOG file (one
    "NAME PID" line per failure, written by core/sys/failpoint.h for the
    in-code points and by fault/fiu_count.c for libfiu's preload points)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                name = line.split(" ", 1)[0]
                if name:
                    out[name] = out.get(name, 0) + 1
    except OSError:
        pass
    return out


def judge_fired(row, point, counts, fires=True):
    """The scenario's point (the first forkchatd/..., posix/... or libc/...
    name in its point column) must have fired at least once for a pass: a
    failpoint that never fired proves nothing.  fires=False is the opposite
    claim (a point the server never reaches, e.g. a call the preload does
    not wrap): a pass needs 0.  Sets row["fired"]: the count, or "-" for
    signal/limit rows, which have no point."""
    m = POINT_RX.search(point or "")
    if m is None:
        row["fired"] = "-"
        return
    n = counts.get(m.group(0), 0)
    row["fired"] = n
    if row["result"] != "pass":
        return
    if fires and n == 0:
        row["result"] = "fail"
        row["evidence"] = one_line("failpoint %s never fired: the scenario proved nothing | %s"
                                   % (m.group(0), row["evidence"]))
    elif not fires and n:
        row["result"] = "fail"
        row["evidence"] = one_line("failpoint %s fired %d times, but the scenario claims the "
                                   "server never reaches it | %s" % (m.group(0), n, row["evidence"]))


def run_scenario(sc, ctx):
    t0 = time.monotonic()
    # core/sys/failpoint.h records every injected failure here (fired column)
    fired_log = None
    if ctx is not None:
        fired_log = ctx.rundir / ("fired-%s.log" % re.sub(r"[^A-Za-z0-9_.-]", "_", sc["name"]))
        fired_log.write_text("")
        os.chmod(fired_log, 0o666)      # a server run as another uid appends too
        os.environ["FORKCHAT_FAILPOINT_LOG"] = str(fired_log)
    signal.signal(signal.SIGALRM, on_alarm)
    limit = int(timescale.scaled(sc["timeout"]))
    signal.alarm(limit)
    try:
        ev = sc["fn"](ctx)
        # a scenario that could not run is a skip, never a pass
        res = "skip" if str(ev).startswith("skipped") else "pass"
    except fclib.Skip as e:
        ev, res = "skipped: %s" % e, "skip"
    except Timeout:
        ev, res = "scenario timed out after %ds (hang)" % limit, "fail"
    except Fail as e:
        ev, res = str(e), "fail"
    except Exception as e:              # a harness bug must show, not hide
        ev, res = "harness error: %s: %s | %s" % (
            type(e).__name__, e, traceback.format_exc().splitlines()[-3].strip()), "fail"
    finally:
        signal.alarm(0)
        reap_started()
        os.environ.pop("FORKCHAT_FAILPOINT_LOG", None)
    row = {"name": sc["name"], "kind": sc["kind"], "point": sc["point"], "result": res,
           "evidence": one_line(ev)}
    if res != "skip":
        judge_fired(row, sc["point"], fired_counts(fired_log) if fired_log else {},
                    sc.get("fires", True))
    else:
        row["fired"] = "-"
    return row, time.monotonic() - t0


def reap_started():
    """Whatever a scenario left behind: kill it by pid (only pids we started)."""
    for pid in list(server.STARTED):
        if procfs.alive(pid):
            for k in procfs.children(pid, True):
                procfs.kill_pid(k)
            procfs.kill_pid(pid)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        server.STARTED.discard(pid)


def table(rows, width=None):
    w = width or shutil.get_terminal_size((200, 20)).columns
    out = ["%-30s %-9s %-44s %-6s %5s %s" % ("scenario", "kind", "failpoint", "result", "fired",
                                             "evidence"),
           "-" * min(w, 200)]
    for r in rows:
        line = "%-30s %-9s %-44s %-6s %5s %s" % (r["name"][:30], r["kind"], r["point"][:44],
                                                 r["result"].upper(), r.get("fired", "-"),
                                                 r["evidence"])
        out.append(line[:max(w, 120)] if width is None else line)
    return "\n".join(out)


def markdown(rows, title, meta):
    md = ["# %s" % title, "", meta, "",
          "| scenario | kind | failpoint | result | fired | evidence |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append("| %s | %s | `%s` | %s | %s | %s |" % (
            r["name"], r["kind"], r["point"],
            {"fail": "**FAIL**", "skip": "**SKIP**"}.get(r["result"], r["result"]),
            r.get("fired", "-"), r["evidence"].replace("|", "\\|")))
    return "\n".join(md) + "\n"


def write_results(rows, stem, title, meta):
    RESULTS.mkdir(exist_ok=True)
    npass = sum(1 for r in rows if r["result"] == "pass")
    nskip = sum(1 for r in rows if r["result"] == "skip")
    prov = provenance.collect(binary=fclib.SERVER_BIN)
    doc = {"scenarios": rows,
           "summary": {"total": len(rows), "pass": npass, "skip": nskip,
                       "fail": len(rows) - npass - nskip, "meta": meta},
           "provenance": prov, "commit": prov["commit"]}
    meta = "%s\n\nCode: commit %s%s, %s, Linux %s." % (
        meta, (prov["commit"] or "unknown")[:12],
        " with uncommitted changes (%s)" % ", ".join(prov["dirty_files"][:5])
        if prov["dirty"] else "", prov["compiler"], prov["kernel"])
    (RESULTS / (stem + ".json")).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    (RESULTS / (stem + ".md")).write_text(markdown(rows, title, meta))


def run_fuzz(cmd, budget):
    """Run the fuzz engineer's quick target; return its scenarios (kind fuzz)."""
    fz = RESULTS / "fuzz.json"
    t0 = time.time()
    print("\n== fuzz: %s (budget %ds)" % (cmd, budget), flush=True)
    try:
        p = subprocess.run(cmd, shell=True, cwd=str(HERE.parent), timeout=budget,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode("utf-8", "replace") if isinstance(
            e.stdout, bytes) else (e.stdout or "")
    sys.stdout.write(out[-3000:])
    rows = []
    if fz.exists() and fz.stat().st_mtime >= t0 - 1:
        try:
            fdoc = json.loads(fz.read_text())
            for w in provenance.check(fdoc.get("provenance"), what="fuzz.json"):
                print("WARNING: " + w)
            for s in fdoc.get("scenarios", []):
                rows.append({"name": str(s.get("name", "?")), "kind": "fuzz",
                             "point": str(s.get("point", "")),
                             "result": "pass" if s.get("result") == "pass" else "fail",
                             "evidence": one_line(s.get("evidence", ""))})
        except (ValueError, AttributeError) as e:
            rows.append({"name": "fuzz-results", "kind": "fuzz", "point": "fault/results/fuzz.json",
                         "result": "fail", "evidence": "unreadable fuzz.json: %s" % e})
    if rc != 0 and not any(r["result"] == "fail" for r in rows):
        last = [x for x in out.strip().splitlines() if x.strip()][-1:] or [""]
        rows.append({"name": "fuzz-quick", "kind": "fuzz", "point": cmd, "result": "fail",
                     "evidence": one_line("exit %s%s: %s" % (
                         rc, "" if rows else ", no fresh fault/results/fuzz.json", last[0]))})
    elif not rows:
        # exit 0 proves nothing by itself: no results, no pass
        rows.append({"name": "fuzz-quick", "kind": "fuzz", "point": cmd, "result": "fail",
                     "evidence": "exit 0 but no fresh fault/results/fuzz.json with results: "
                                 "nothing was fuzzed that we can show"})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--suite", choices=["full", "quick"], default="full")
    ap.add_argument("--only", help="regex on scenario names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the run dir")
    ap.add_argument("--server", help="the libfiu-enabled forkchatd")
    ap.add_argument("--count-lib", help="fiu_count.so (fault/fiu_count.c), counts preload points")
    ap.add_argument("--fuzz-cmd")
    ap.add_argument("--fuzz-budget", type=int, default=240)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "1") or 1))
    ap.add_argument("--soak", action="store_true")
    ap.add_argument("--duration", type=float, default=30)
    a = ap.parse_args()
    fclib.use_server(a.server)
    if a.count_lib:
        fclib.COUNT_LIB = Path(a.count_lib).resolve()
    for tool in ("/usr/bin/fiu-run", "/usr/lib/fiu/fiu_run_preload.so"):
        if not os.path.exists(tool):
            sys.exit("fault: %s missing (apt-get install fiu-utils libfiu-dev)" % tool)
    if not fclib.fiu_count_lib().exists():
        sys.exit("fault: %s missing (it counts the preload points): make fault-build"
                 % fclib.fiu_count_lib())
    if not fclib.SERVER_BIN.exists():
        sys.exit("fault: %s missing: make fault-build" % fclib.SERVER_BIN)
    base = Path(tempfile.mkdtemp(prefix="forkchat-fault-"))
    os.chmod(base, 0o755)               # the nobody scenarios traverse it
    ctx = Ctx(base, a.seed)
    try:
        if a.soak:
            import soak
            ok = soak.run(ctx, a.seed, a.duration)
            return 0 if ok else 1
        return run_matrix(a, ctx, base)
    finally:
        reap_started()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print("run dir kept: %s" % base)


def run_matrix(a, ctx, base):
    import scenarios
    scs = scenarios.SCENARIOS
    if a.suite == "quick":
        scs = [s for s in scs if s["quick"]]
    if a.only:
        scs = [s for s in scs if re.search(a.only, s["name"])]
    if a.list:
        for s in scs:
            print("%-30s %-9s %s" % (s["name"], s["kind"], s["point"]))
        return 0
    t0 = time.monotonic()
    print("fault matrix: %d scenarios (suite %s, seed %d, server %s, time scale x%g, "
          "run dir %s)" % (len(scs), a.suite, a.seed, fclib.SERVER_BIN, timescale.SCALE, base),
          flush=True)
    rows = []
    for sc in scs:
        row, secs = run_scenario(sc, ctx)
        rows.append(row)
        print("  %-30s %-4s %5.1fs fired %-4s %s" % (row["name"], row["result"].upper(), secs,
                                                    row.get("fired", "-"),
                                                    row["evidence"][:140]), flush=True)
    if a.fuzz_cmd:
        rows += run_fuzz(a.fuzz_cmd, a.fuzz_budget)
    total = time.monotonic() - t0
    npass = sum(1 for r in rows if r["result"] == "pass")
    skips = [r for r in rows if r["result"] == "skip"]
    meta = "%d scenarios, %d pass, %d skipped, %d fail; suite %s, seed %d, %.0fs, %s" % (
        len(rows), npass, len(skips), len(rows) - npass - len(skips), a.suite, a.seed, total,
        time.strftime("%Y-%m-%d %H:%M:%S"))
    print("\n" + table(rows) + "\n\n" + meta)
    stem = "latest" if a.suite == "full" and not a.only else (
        "quick" if a.suite == "quick" and not a.only else "partial")
    write_results(rows, stem, "forkchat fault matrix (%s)" % a.suite, meta)
    print("results: %s/%s.{json,md}" % (RESULTS, stem))
    bad = judge_skips(skips)
    return 0 if npass + len(skips) == len(rows) and not bad else 1


def judge_skips(skips):
    """Print each skipped row; return how many ci/skips.allow does not allow
    (as fault:NAME): a skip is never a pass."""
    allow = skipgate.load()
    bad = 0
    for r in skips:
        why = skipgate.allowed("fault:" + r["name"], allow)
        bad += why is None
        print("%s %s: %s%s" % ("SKIP NOT ALLOWED" if why is None else "skip (allowed)",
                               r["name"], r["evidence"], "" if why is None else
                               " [allow-list: %s]" % why))
    if bad:
        print("%d skipped scenario(s) not in %s: a skip is not a pass" % (
            bad, skipgate.allow_path()))
    return bad


if __name__ == "__main__":
    sys.exit(main())
