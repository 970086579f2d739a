# SPDX-License-Identifier: BSD-3-Clause
"""Fault evidence (fault/runner.py): a failpoint that never fired fails its
scenario; the fired column counts what core/sys/failpoint.h recorded (in-code
points) and what fault/fiu_count.so recorded (libfiu's preload points)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fault"))

import pytest  # noqa: E402
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


def test_preload_point_that_never_fired_fails_the_scenario():
    for point, name in (("posix/io/rw/write failinfo=EIO (onetime)", "posix/io/rw/write"),
                        ("posix/io/rw/write/reduce", "posix/io/rw/write/reduce"),
                        ("libc/mm/malloc p=0.5", "libc/mm/malloc")):
        r = row()
        runner.judge_fired(r, point, {})
        assert r["result"] == "fail" and r["fired"] == 0, point
        assert "failpoint %s never fired" % name in r["evidence"]
        r = row()
        runner.judge_fired(r, point, {name: 2})
        assert r["result"] == "pass" and r["fired"] == 2, point
    r = row()       # posix/io/rw/write fired, but the row's point is .../reduce
    runner.judge_fired(r, "posix/io/rw/write/reduce", {"posix/io/rw/write": 5})
    assert r["result"] == "fail"


def test_point_claimed_unreached_must_not_fire():
    r = row()
    runner.judge_fired(r, "posix/io/net/accept", {}, fires=False)
    assert r["result"] == "pass" and r["fired"] == 0
    r = row()
    runner.judge_fired(r, "posix/io/net/accept", {"posix/io/net/accept": 1}, fires=False)
    assert r["result"] == "fail" and "fired 1 times" in r["evidence"]


def test_rows_without_a_point_are_not_counted():
    for point in ("SIGKILL parent", "RLIMIT_NOFILE 40 (no CAP_SYS_RESOURCE), -m 100",
                  "client stops reading, --max-backlog 65536"):
        r = row()
        runner.judge_fired(r, point, {})
        assert r["result"] == "pass" and r["fired"] == "-"


def test_failed_scenario_keeps_its_own_evidence():
    r = row("fail")
    runner.judge_fired(r, "posix/proc/fork", {})
    assert r["result"] == "fail" and r["evidence"] == "ok" and r["fired"] == 0


# ---- end to end: libfiu's preload under fault/sigblock.py -p fiu_count.so ----

@pytest.fixture(scope="module")
def fiu_count(tmp_path_factory):
    """fault/fiu_count.c built as the fault build does (fault/fault.mk)."""
    so = tmp_path_factory.mktemp("fiu_count") / "fiu_count.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                    str(ROOT / "fault" / "fiu_count.c"), "-o", str(so), "-ldl"], check=True)
    return so


def preload_scenario(so, name, point, enable):
    """A runner scenario whose process runs under libfiu's POSIX preload with
    `enable` on from the start and writes two lines through /bin/sh."""
    def fn(ctx):
        r = subprocess.run(["/usr/bin/python3", str(ROOT / "fault" / "sigblock.py"), "-x",
                            "-p", str(so), "-f", "", "-c", enable, "--",
                            "/bin/sh", "-c", "echo one; echo two"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0 or r.stdout != b"one\ntwo\n":
            raise runner.Fail("sh under the preload: exit %d, %r %r" % (
                r.returncode, r.stdout, r.stderr[-200:]))
        return "sh wrote %d bytes" % len(r.stdout)
    return {"name": name, "kind": "preload", "point": point, "timeout": 60, "fn": fn,
            "quick": False}


def test_preload_firing_is_counted_end_to_end(tmp_path, fiu_count):
    """posix/io/rw/write/reduce on: sh's writes come back short (it writes
    the rest again), fiu_count.so logs each reduced write, the row passes
    with that count."""
    sc = preload_scenario(fiu_count, "reduce", "posix/io/rw/write/reduce",
                          "enable name=posix/io/rw/write/reduce")
    r, _ = runner.run_scenario(sc, runner.Ctx(tmp_path, 1))
    assert r["result"] == "pass", r
    assert isinstance(r["fired"], int) and r["fired"] >= 2, r
    lines = (tmp_path / "fired-reduce.log").read_text().splitlines()
    assert len(lines) == r["fired"]
    assert all(x.split(" ")[0] == "posix/io/rw/write/reduce" for x in lines)


def test_preload_point_that_never_fires_fails_end_to_end(tmp_path, fiu_count):
    """On purpose: the row names a point sh never reaches (it accepts no
    connection); the process runs fine, and the row fails: never fired."""
    sc = preload_scenario(fiu_count, "accept", "posix/io/net/accept",
                          "enable name=posix/io/net/accept")
    r, _ = runner.run_scenario(sc, runner.Ctx(tmp_path, 1))
    assert r["result"] == "fail" and r["fired"] == 0, r
    assert "failpoint posix/io/net/accept never fired" in r["evidence"]
    assert "sh wrote 8 bytes" in r["evidence"]

