# SPDX-License-Identifier: BSD-3-Clause
"""Results tied to the code (ci/provenance.py): every results writer records
git commit, dirty flag, compiler, kernel and machine, and the check warns
when the tree differs from the commit measured."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ci"))
sys.path.insert(0, str(ROOT / "fault"))

import provenance  # noqa: E402

FIELDS = ("commit", "dirty", "compiler", "kernel", "machine")


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", "-C", str(repo)] + list(args), check=True, capture_output=True,
                   env=env, timeout=30)


def repo_with_results(tmp_path):
    repo = tmp_path / "r"
    for d in ("core", "bench/results"):
        (repo / d).mkdir(parents=True)
    (repo / "core" / "a.c").write_text("int a;\n")
    (repo / "bench" / "results" / "latest.json").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def test_collect_records_commit_dirty_compiler_kernel_machine(tmp_path):
    repo = repo_with_results(tmp_path)
    p = provenance.collect(str(repo))
    assert all(p.get(k) is not None for k in FIELDS), p
    assert len(p["commit"]) == 40 and p["dirty"] is False, p
    assert p["machine"]["cores"] >= 1 and p["compiler"], p
    (repo / "bench" / "results" / "latest.json").write_text('{"new": 1}\n')
    assert provenance.collect(str(repo))["dirty"] is False     # results are not code
    (repo / "core" / "a.c").write_text("int a, b;\n")
    p = provenance.collect(str(repo))
    assert p["dirty"] is True and p["dirty_files"] == ["core/a.c"], p


def test_check_warns_when_the_tree_differs_from_the_commit_measured(tmp_path):
    repo = repo_with_results(tmp_path)
    assert provenance.check(None, str(repo)) and "no provenance" in provenance.check(
        None, str(repo))[0]
    p = provenance.collect(str(repo))
    assert provenance.check(p, str(repo)) == []                 # same code: silent
    (repo / "core" / "a.c").write_text("int a, b;\n")
    git(repo, "commit", "-q", "-am", "two")
    w = provenance.check(p, str(repo))
    assert len(w) == 1 and "differs now in 1 file(s): core/a.c" in w[0], w
    dirty = dict(provenance.collect(str(repo)), dirty=True, dirty_files=["core/a.c"])
    assert any("uncommitted" in x for x in provenance.check(dirty, str(repo)))
    gone = dict(p, commit="0" * 40)
    assert any("does not have" in x for x in provenance.check(gone, str(repo)))


def test_check_command_warns_and_strict_fails(tmp_path):
    f = tmp_path / "old.json"
    f.write_text('{"runs": []}\n')
    cmd = ["/usr/bin/python3", str(ROOT / "ci" / "provenance.py"), "check", str(f)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "WARNING:" in p.stdout, p.stdout
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, RESULTS_STRICT="1"))
    assert p.returncode == 1, p.stdout
    # stamp, then the same tree: no warning (the file is outside the repo:
    # only the commit is compared)
    subprocess.run(["/usr/bin/python3", str(ROOT / "ci" / "provenance.py"), "stamp", str(f)],
                   check=True, timeout=30)
    doc = json.loads(f.read_text())
    assert doc["runs"] == [] and all(k in doc["provenance"] for k in FIELDS), doc


def test_json_lines_file_takes_its_last_provenance_line(tmp_path):
    f = tmp_path / "federated.json"
    f.write_text('{"provenance": {"commit": "a"}}\n{"system": "x"}\n'
                 '{"provenance": {"commit": "b"}}\n{"system": "y"}\n')
    assert provenance.load_prov(str(f)) == {"commit": "b"}


def test_fault_results_record_provenance(monkeypatch, tmp_path):
    import runner
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    rows = [{"name": "x", "kind": "k", "point": "p", "result": "pass", "evidence": "e"}]
    runner.write_results(rows, "latest", "t", "1 scenarios")
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert all(doc["provenance"].get(k) is not None for k in FIELDS), doc
    assert doc["provenance"]["commit"] == provenance.git("rev-parse", "HEAD")
    assert "Code: commit %s" % doc["provenance"]["commit"][:12] in (
        tmp_path / "latest.md").read_text()


def test_bench_report_records_provenance(tmp_path):
    run = {"system": "forkchat", "scenario": "one-room", "n": 10, "senders": 4, "rooms": 1,
           "rate": 100, "size": 64, "messages": 50, "expected": 1800, "received": 1800,
           "lost": 0, "duplicated": 0, "out_of_order": 0, "malformed": 0, "errors": 0,
           "p50_us": 100.0, "p90_us": 150.0, "p99_us": 200.0, "p999_us": 250.0,
           "max_us": 300.0, "deliveries_per_s": 900, "send_span_s": 2.0, "connect_ms": 1.0,
           "server_rss_kb": 1, "server_pss_kb": 1, "cdf": [[0.5, 100.0]]}
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps(run) + "\n")
    out = tmp_path / "out"
    p = subprocess.run(["/usr/bin/python3", str(ROOT / "bench" / "report.py"), "--runs",
                        str(runs), "--started", "now", "--mode", "quick", "--out", str(out),
                        "--server", "build/forkchatd"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads((out / "latest.json").read_text())
    assert all(doc["provenance"].get(k) is not None for k in FIELDS), doc
    assert doc["provenance"]["binary"] == "build/forkchatd"
    assert "Code: commit " in (out / "latest.md").read_text()
