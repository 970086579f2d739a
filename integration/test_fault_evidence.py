# SPDX-License-Identifier: BSD-3-Clause
"""Fault evidence (fault/runner.py): a failpoint that never fired fails its
scenario; the fired column counts what core/sys/failpoint.h recorded."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fault"))

import runner  # noqa: E402


def row(result="pass"):
    return {"name": "x", "kind": "k", "point": "p", "result": result, "evidence": "ok"}


def test_fired_counts_reads_one_line_per_injected_failure(tmp_path):
    log = tmp_path / "fired.log"
    log.write_text("forkchatd/session/kill 12\nforkchatd/session/kill 13\n"
                   "forkchatd/fanout/write 9\n")
    assert runner.fired_counts(log) == {"forkchatd/session/kill": 2,
                                        "forkchatd/fanout/write": 1}
    assert runner.fired_counts(tmp_path / "missing") == {}


def test_in_code_point_that_never_fired_fails_the_scenario():
    r = row()
    runner.judge_fired(r, "forkchatd/session/kill (child)", {})
    assert r["result"] == "fail" and r["fired"] == 0
    assert "never fired" in r["evidence"]
    r = row()
    runner.judge_fired(r, "forkchatd/session/kill (child)", {"forkchatd/session/kill": 3})
    assert r["result"] == "pass" and r["fired"] == 3
    r = row()        # the first named point is the scenario's own
    runner.judge_fired(r, "forkchatd/abort/sigqueue + fanout/write",
                       {"forkchatd/fanout/write": 4})
    assert r["result"] == "fail"


def test_rows_without_an_in_code_point_are_not_counted():
    for point in ("posix/io/rw/write failinfo=EIO", "SIGKILL parent", "libc/mm/malloc"):
        r = row()
        runner.judge_fired(r, point, {})
        assert r["result"] == "pass" and r["fired"] == "-"
