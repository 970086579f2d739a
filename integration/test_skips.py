# SPDX-License-Identifier: BSD-3-Clause
"""A skip is never a pass: the pytest plugin (integration/skipgate.py),
the fault runner (fault/runner.py) and the unit runner (ci/run-unit.sh)
fail on a skip that ci/skips.allow does not list with its reason."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "fault"))

import skipgate  # noqa: E402


def run_pytest(tmp_path, allow_text):
    (tmp_path / "conftest.py").write_text(
        "import sys\nsys.path.insert(0, %r)\npytest_plugins = ['skipgate']\n" % str(HERE))
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "def test_runs():\n    assert True\n"
        "def test_skipped():\n    pytest.skip('tool X is not installed')\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    allow = tmp_path / "allow"
    allow.write_text(allow_text)
    env = dict(os.environ, FORKCHAT_SKIPS_ALLOW=str(allow))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "test_probe.py"], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def test_unlisted_skip_fails_the_run(tmp_path):
    rc, out = run_pytest(tmp_path, "# nothing allowed\n")
    assert rc == 1, out
    assert "1 passed, 1 skipped" in out, out
    assert "SKIP NOT ALLOWED" in out and "test_probe.py::test_skipped" in out, out


def test_listed_skip_with_reason_passes(tmp_path):
    rc, out = run_pytest(tmp_path, "*test_probe.py::test_skipped  X is optional here\n")
    assert rc == 0, out
    assert "skip (allowed)" in out and "X is optional here" in out, out


def test_allow_line_without_reason_is_an_error(tmp_path):
    rc, out = run_pytest(tmp_path, "*test_probe.py::test_skipped\n")
    assert rc == 1, out
    assert "has no reason" in out, out
    with pytest.raises(ValueError):
        skipgate.load(tmp_path / "allow")


def test_committed_allow_list_parses_and_every_entry_has_a_reason():
    entries = skipgate.load(ROOT / "ci" / "skips.allow")
    assert all(why for why in entries.values())


def test_fault_runner_counts_skips_and_fails_unlisted_ones(monkeypatch, tmp_path, capsys):
    import fclib
    import runner

    def gone(ctx):
        raise fclib.Skip("no redis-server")
    row, _ = runner.run_scenario({"name": "fed-x", "kind": "fed", "point": "p",
                                  "timeout": 5, "fn": gone}, None)
    assert row["result"] == "skip", row
    row2, _ = runner.run_scenario({"name": "old-style", "kind": "fed", "point": "p",
                                   "timeout": 5, "fn": lambda ctx: "skipped: no redis"}, None)
    assert row2["result"] == "skip", row2
    allow = tmp_path / "allow"
    allow.write_text("")
    monkeypatch.setenv("FORKCHAT_SKIPS_ALLOW", str(allow))
    assert runner.judge_skips([row, row2]) == 2
    allow.write_text("fault:fed-*  no Redis on this runner\n")
    assert runner.judge_skips([row, row2]) == 1
    assert "SKIP NOT ALLOWED old-style" in capsys.readouterr().out


def test_fuzz_exit_0_without_results_is_not_a_pass(monkeypatch, tmp_path):
    import runner
    monkeypatch.setattr(runner, "RESULTS", tmp_path)
    rows = runner.run_fuzz("true", 30)
    assert [r["result"] for r in rows] == ["fail"], rows
    assert "no fresh" in rows[0]["evidence"], rows


def test_unit_runner_fails_on_unlisted_skip(tmp_path):
    fake = tmp_path / "test_fake"
    fake.write_text("#!/bin/sh\necho '[  SKIPPED ] 1 test(s), listed below:'\nexit 0\n")
    fake.chmod(0o755)
    allow = tmp_path / "allow"
    allow.write_text("")
    env = dict(os.environ, FORKCHAT_SKIPS_ALLOW=str(allow))
    p = subprocess.run(["bash", str(ROOT / "ci" / "run-unit.sh"), str(fake)], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "not in" in p.stdout, p.stdout + p.stderr
    allow.write_text("unit:test_fake  fake test for the runner\n")
    p = subprocess.run(["bash", str(ROOT / "ci" / "run-unit.sh"), str(fake)], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr


def test_test_sys_without_its_linker_seams_fails(tmp_path):
    """core/tests/test_sys.c built without WRAP_test_sys cannot run its 23
    seam tests: it must exit non-zero, not report them as skipped."""
    lib = ROOT / "build" / "libforkchat.a"
    assert lib.exists(), "run make first"
    exe = tmp_path / "test_sys_noseams"
    # the libraries the server's objects need (the Makefile's NAME_LIBS)
    import re
    m = re.search(r"^NAME_LIBS\s*:=(.*)$", (ROOT / "Makefile").read_text(), re.M)
    libs = m.group(1).split() if m else []
    cc = subprocess.run(["gcc", "-O0", "-std=gnu11", "-D_GNU_SOURCE",
                         "-DFORKCHAT_VERSION=\"t\"", "-I", str(ROOT / "core"),
                         str(ROOT / "core" / "tests" / "test_sys.c"), str(lib), "-o", str(exe),
                         "-lcmocka"] + libs, capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "could not run" in p.stderr, p.stderr
