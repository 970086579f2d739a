# SPDX-License-Identifier: BSD-3-Clause
"""The performance gate's logic (ci/bench_compare.py, ci/bench.sh): the
verdict comes from candidate/base pairs measured in the same run, with a
tolerance from their spread; loss fails whatever the timings."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))

import bench_compare as bc  # noqa: E402

# multiplicative noise of one busy 2-core machine, as measured (A/A runs)
NOISE = [1.00, 1.12, 0.91, 1.05, 0.95, 1.18]


def recs(worse=1.0, noise=NOISE, metric="deliveries_per_s", point="one-room-max/10",
         base=1e6, **extra):
    """Tagged records of len(noise) rounds; the candidate is `worse` times
    worse than the base (lower throughput or higher latency)."""
    out = []
    for i, n in enumerate(noise):
        # base and candidate of one round share the machine's state of that moment
        jitter = 1.03 if i % 2 else 0.97
        b = {"point": point, "side": "base", "round": i, "gate": metric, metric: base * n,
             "lost": 0, "duplicated": 0}
        cv = base * n / worse / jitter if metric == "deliveries_per_s" else base * n * worse * jitter
        c = dict(b, side="cand", **{metric: cv})
        c.update(extra)
        out += [b, c]
    return out


def verdict(records):
    res = bc.analyse(records)
    return bc.verdict(res, bc.problems(records)), res


def test_same_code_with_machine_noise_passes():
    rc, res = verdict(recs(1.0))
    assert rc == 0, bc.report(res, [])
    assert abs(res["one-room-max/10"]["change"]) < 0.05


def test_planted_2x_slowdown_fails_even_on_a_noisy_machine():
    assert verdict(recs(2.0))[0] == 1
    wild = [1.0, 1.6, 0.7, 1.3, 0.8, 1.5, 0.6, 1.2]      # pairs move 2x apart
    rc, res = verdict(recs(2.0, noise=wild))
    assert rc == 1, bc.report(res, [])
    assert res["one-room-max/10"]["tolerance"] <= bc.CAP


def test_tolerance_follows_the_measured_spread():
    # candidate 1.4x worse: fails with tight pairs; passes when the pairs
    # themselves scatter by 2x (the run cannot tell 1.4x from noise)
    rc_tight, tight = verdict(recs(1.4))
    assert rc_tight == 1, bc.report(tight, [])
    r = recs(1.0)
    scatter = [0.6, 1.5, 0.7, 1.4, 0.65, 1.45]
    for i, rec in enumerate(x for x in r if x["side"] == "cand"):
        rec["deliveries_per_s"] /= 1.4 * scatter[i]
    rc_loose, loose = verdict(r)
    assert rc_loose == 0, bc.report(loose, [])
    p = loose["one-room-max/10"]
    assert p["tolerance"] > tight["one-room-max/10"]["tolerance"]
    assert p["tolerance"] == min(bc.CAP, max(bc.FLOOR, bc.K * p["spread"]))


def test_pairs_that_disagree_do_not_fail():
    """A median past the tolerance made by a few pairs (load bursts hit one
    side) is not a verdict: the sign condition needs 5 of 6 pairs worse."""
    r = recs(1.0, noise=[1.0] * 6)
    for i, rec in enumerate(x for x in r if x["side"] == "cand"):
        rec["deliveries_per_s"] /= [2.2, 2.0, 1.9, 1.8, 0.9, 0.95][i]
    rc, res = verdict(r)
    p = res["one-room-max/10"]
    assert p["change"] > p["tolerance"] and p["worse_pairs"] == 4, bc.report(res, [])
    assert rc == 0


def test_latency_metric_higher_is_worse():
    assert verdict(recs(2.0, metric="p50_us", point="one-room/100"))[0] == 1
    assert verdict(recs(0.5, metric="p50_us", point="one-room/100"))[0] == 0


def test_any_loss_or_failed_run_fails_whatever_the_timing():
    rc, _ = verdict(recs(1.0, lost=3))
    assert rc == 1
    r = recs(1.0)
    r[3]["failed"] = "forkchatd pid 1 exited 1 after SIGTERM"
    assert bc.problems(r) and verdict(r)[0] == 1


def test_point_without_a_pair_fails():
    r = [x for x in recs(1.0) if x["side"] == "base"]
    rc, res = verdict(r)
    assert rc == 1 and res["one-room-max/10"]["verdict"] == "FAIL"


def test_main_reads_jsonl_and_exits_by_verdict(tmp_path):
    for factor, want in ((1.0, 0), (2.0, 1)):
        f = tmp_path / ("runs-%g.jsonl" % factor)
        f.write_text("".join(json.dumps(x) + "\n" for x in recs(factor)))
        p = subprocess.run(["/usr/bin/python3", str(ROOT / "ci" / "bench_compare.py"), str(f)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == want, p.stdout + p.stderr
        assert ("bench-check: FAIL" in p.stdout) == bool(want), p.stdout


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo)] + list(args), check=True, capture_output=True,
                   timeout=30, env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                                        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"))
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, timeout=30).stdout.strip()


def base_of(repo, **env):
    p = subprocess.run(["bash", str(ROOT / "ci" / "bench.sh"), "--base-only"], cwd=str(repo),
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, BUILD=str(repo / "build"), **env))
    return p.returncode, p.stdout


def test_base_is_first_parent_or_head_when_core_is_dirty_or_bench_base(tmp_path):
    repo = tmp_path / "r"
    (repo / "core").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "core" / "a.c").write_text("int a;\n")
    git(repo, "add", "-A")
    first = git(repo, "commit", "-q", "-m", "one")
    rc, out = base_of(repo)
    assert rc == 1 and "no parent" in out, out           # nothing to compare with
    (repo / "core" / "a.c").write_text("int a, b;\n")
    git(repo, "commit", "-q", "-am", "two")
    second = git(repo, "rev-parse", "HEAD")
    rc, out = base_of(repo)
    assert rc == 0 and out.split()[0] == first and "HEAD^1" in out, out
    (repo / "core" / "a.c").write_text("int a, b, c;\n")   # a developer's edit
    rc, out = base_of(repo)
    assert rc == 0 and out.split()[0] == second, out
    rc, out = base_of(repo, BENCH_BASE=first[:10])
    assert rc == 0 and out.split()[0] == first and "BENCH_BASE" in out, out
    rc, out = base_of(repo, BENCH_BASE="no-such-rev")
    assert rc == 1 and "not a commit" in out, out


def test_noisy_mode_asks_for_more_rounds(tmp_path):
    """ci/bench.sh runs more rounds when bench_compare.py --noisy exits 0."""
    def noisy(records):
        f = tmp_path / "runs.jsonl"
        f.write_text("".join(json.dumps(x) + "\n" for x in records))
        return subprocess.run(["/usr/bin/python3", str(ROOT / "ci" / "bench_compare.py"),
                               "--noisy", str(f)], capture_output=True, text=True,
                              timeout=30).returncode
    assert noisy(recs(1.0)) == 1                       # quiet: verdict now
    r = recs(1.0)
    for i, rec in enumerate(x for x in r if x["side"] == "cand"):
        rec["deliveries_per_s"] /= [0.6, 1.5, 0.7, 1.4, 0.65, 1.45][i]
    assert noisy(r) == 0


def test_cpu_per_delivery_is_judged_too():
    """Wall-clock throughput scattered by other load can hide a CPU
    regression; the servers' CPU per delivery (from wait4) is judged as a
    second check of every unpaced point ("POINT cpu")."""
    r = recs(1.0)
    scatter = [0.6, 1.5, 0.7, 1.4, 0.65, 1.45]
    for i, (b, c) in enumerate(zip(r[0::2], r[1::2])):
        c["deliveries_per_s"] /= 1.4 * scatter[i]       # wall: noise hides it
        b["cpu_us_per_delivery"] = 0.5 * NOISE[i]
        c["cpu_us_per_delivery"] = 0.5 * NOISE[i] * 2.0   # 2x the CPU
    rc, res = verdict(r)
    assert res["one-room-max/10"]["verdict"] == "ok", bc.report(res, [])
    assert res["one-room-max/10 cpu"]["verdict"] == "FAIL", bc.report(res, [])
    assert rc == 1
    for c in r[1::2]:
        c["cpu_us_per_delivery"] /= 2.0                   # same CPU: passes
    assert verdict(r)[0] == 0
