# SPDX-License-Identifier: BSD-3-Clause
"""harness/timescale.py: the factor every deadline of the harness is multiplied by
(a slow build must not turn a wait into a verdict; ci/README.md)."""

import subprocess
import sys
from pathlib import Path

import pytest

from harness import timescale

HERE = Path(__file__).resolve().parent


def detect(monkeypatch, path, **env):
    for k in ("FORKCHAT_TIME_SCALE", "FORKCHAT_SANITIZED", "FORKCHAT_VALGRIND"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return timescale.detect(path)


def binary(tmp_path, content):
    p = tmp_path / "forkchatd"
    p.write_bytes(b"\x7fELF" + content + b"\0" * 16)
    return str(p)


def test_plain_build_is_one(monkeypatch, tmp_path):
    assert detect(monkeypatch, binary(tmp_path, b"main\0sigtimedwait")) == 1.0


def test_asan_runtime_in_binary_scales(monkeypatch, tmp_path):
    assert detect(monkeypatch, binary(tmp_path, b"x\0__asan_init\0y")) == timescale.ASAN_SCALE
    assert timescale.ASAN_SCALE >= 3      # ASan+UBSan: 3-10x slower


def test_gcov_build_scales(monkeypatch, tmp_path):
    assert detect(monkeypatch, binary(tmp_path, b"__gcov_dump")) == timescale.COV_SCALE


def test_environment_wins_and_never_shrinks(monkeypatch, tmp_path):
    b = binary(tmp_path, b"__asan_init")
    assert detect(monkeypatch, b, FORKCHAT_TIME_SCALE="7.5") == 7.5
    assert detect(monkeypatch, b, FORKCHAT_TIME_SCALE="0.1") == 1.0
    with pytest.raises(SystemExit):
        detect(monkeypatch, b, FORKCHAT_TIME_SCALE="fast")


def test_sanitized_flag_and_missing_binary(monkeypatch, tmp_path):
    missing = str(tmp_path / "nope")
    assert detect(monkeypatch, missing) == 1.0
    assert detect(monkeypatch, missing, FORKCHAT_SANITIZED="1") == timescale.ASAN_SCALE
    assert detect(monkeypatch, missing, FORKCHAT_VALGRIND="1") == timescale.VALGRIND_SCALE


def test_helpers_and_pytest_timeout_follow_the_scale(tmp_path):
    """In a fresh interpreter with FORKCHAT_TIME_SCALE=4: scaled() and the
    per-test pytest-timeout limit are 4x (the conftest hook)."""
    t = tmp_path / "test_probe.py"
    t.write_text(
        "import pytest\n"
        "from harness.timescale import scaled, wait_until\n"
        "def test_default(request):\n"
        "    assert scaled(2) == 8\n"
        "    assert request.node.get_closest_marker('timeout').args[0] == 240\n"
        "@pytest.mark.timeout(30)\n"
        "def test_marked(request):\n"
        "    assert request.node.get_closest_marker('timeout').args[0] == 120\n")
    conf = (HERE / "conftest.py").read_text()
    (tmp_path / "conftest.py").write_text(
        "import sys\nsys.path.insert(0, %r)\n" % str(HERE) +
        conf.replace('os.path.join(HERE, "lib")', repr(str(HERE / "lib"))))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 60\n")
    env = {"FORKCHAT_TIME_SCALE": "4", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(t)], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout, r.stdout
