# SPDX-License-Identifier: BSD-3-Clause
"""make help lists every target the build files declare (.PHONY), and
each group of Debian packages is what its targets need (issue 13)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKEFILES = [ROOT / "Makefile", ROOT / "bench/bench.mk", ROOT / "fault/fault.mk",
             ROOT / "fault/fuzz.mk", ROOT / "ci/ci.mk"]


def phony_targets():
    names = set()
    for mk in MAKEFILES:
        text = mk.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith(".PHONY:"):
                names.update(line.split(":", 1)[1].split())
    return names


def make_help():
    out = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_lists_every_phony_target():
    listed = set(re.findall(r"^([a-z][a-zA-Z0-9_-]*)\t", make_help(), re.M))
    phony = phony_targets()
    assert {"run", "test", "unit", "integration", "check-symbols", "clean", "bench",
            "fault", "ci", "lint", "deps"} <= phony, phony
    missing = sorted(phony - listed)
    assert not missing, "make help omits: %s" % missing


def make_var(name):
    out = subprocess.run(["make", "--no-print-directory", "-s", "-p", "-n", "-f", "Makefile",
                          "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        m = re.match(r"^%s :?= (.*)$" % re.escape(name), line)
        if m:
            return set(m.group(1).split())
    raise AssertionError("no variable %s" % name)


def test_run_group_is_only_the_build():
    run = make_var("DEPS_run")
    # A compiler, libc headers, make and the two libraries the server links.
    assert run == {"gcc", "libc6-dev", "make", "libunistring-dev", "libicu-dev"}, run
    test = make_var("DEPS_test")
    assert run < test and "valgrind" not in test and "clang" not in test, test
