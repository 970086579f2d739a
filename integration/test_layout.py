# SPDX-License-Identifier: BSD-3-Clause
"""make check-layout (ci/check_layout.py, issue 13) fails on each kind of
violation it is meant to catch, naming it, and passes on the real tree.

Each test copies core/ and the objects of the build (build/obj, made by
`make all`, which `make integration` runs first) to a temporary directory,
plants one violation there (recompiling only the file it touches, with the
Makefile's flags) and runs the check on the copy."""

import shutil
import subprocess
import sys

import pytest

from harness.server import ROOT

CHECK = ROOT / "ci" / "check_layout.py"
OBJ = ROOT / "build" / "obj"
CFLAGS = ["-O2", "-std=gnu11", "-D_GNU_SOURCE", '-DFORKCHAT_VERSION="test"']


def run_check(core, obj):
    r = subprocess.run([sys.executable, str(CHECK), str(core), str(obj)],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def tree(tmp_path):
    """A copy of core/ and of the build's objects: (core, obj)."""
    if not (OBJ / "chat" / "chat.o").exists():
        pytest.fail("no objects in %s: run make all first" % OBJ)
    core, obj = tmp_path / "core", tmp_path / "obj"
    shutil.copytree(ROOT / "core", core)
    shutil.copytree(OBJ, obj, ignore=shutil.ignore_patterns("*.d"))
    return core, obj


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def compile_one(core, obj, rel):
    """Rebuild core/rel (e.g. 'lib/utf8.c') into obj/ as the Makefile does."""
    out = obj / (rel[:-2] + ".o")
    subprocess.run(["cc", *CFLAGS, "-I" + str(core), "-c", str(core / rel),
                    "-o", str(out)], check=True, timeout=120)


def test_passes_on_the_real_tree():
    rc, out = run_check(ROOT / "core", OBJ)
    assert rc == 0, out
    assert "no include or call cycle" in out, out


def test_passes_on_an_untouched_copy(tree):
    rc, out = run_check(*tree)
    assert rc == 0, out


def test_include_cycle_is_named(tree):
    core, obj = tree
    append(core / "lib" / "utf8.h", '\n#include "lib/buf.h"\n')
    append(core / "lib" / "buf.h", '\n#include "lib/utf8.h"\n')
    rc, out = run_check(core, obj)
    assert rc == 1, out
    line = [x for x in out.splitlines() if "include cycle" in x]
    assert line and "lib/buf.h" in line[0] and "lib/utf8.h" in line[0], out


def test_call_cycle_is_named(tree):
    # proto.c calls utf8.c (utf8_decode); make utf8.c call proto.c back
    core, obj = tree
    append(core / "lib" / "utf8.c", '\n#include "lib/proto.h"\n'
           "const char *utf8_planted(void);\n"
           "const char *utf8_planted(void) { return proto_err_name(PERR_NONE); }\n")
    compile_one(core, obj, "lib/utf8.c")
    rc, out = run_check(core, obj)
    assert rc == 1, out
    line = [x for x in out.splitlines() if "call cycle" in x]
    assert line, out
    assert "lib/proto.c" in line[0] and "lib/utf8.c" in line[0], out
    assert "proto_err_name" in line[0], out


def test_lib_purity_is_named(tree):
    core, obj = tree
    append(core / "lib" / "stats.c", "\n#include <unistd.h>\n"
           "int stats_planted(void);\n"
           'int stats_planted(void) { return (int)write(2, "x", 1); }\n')
    compile_one(core, obj, "lib/stats.c")
    rc, out = run_check(core, obj)
    assert rc == 1, out
    assert "lib purity: lib/stats.c uses write" in out, out


def test_folder_rule_include_is_named(tree):
    core, obj = tree   # chat may use lib and sys, not server
    append(core / "chat" / "nick.c", '\n#include "server/opts.h"\n')
    rc, out = run_check(core, obj)
    assert rc == 1, out
    assert "folder rule: chat/nick.c includes server/opts.h" in out, out


def test_folder_rule_call_is_named(tree):
    core, obj = tree   # a call without an include is caught too
    append(core / "chat" / "nick.c", "\nint fanout_nbacklog(const void *f);\n"
           "int nick_planted(void);\n"
           "int nick_planted(void) { return fanout_nbacklog(0); }\n")
    compile_one(core, obj, "chat/nick.c")
    rc, out = run_check(core, obj)
    assert rc == 1, out
    assert "folder rule: chat/nick.c calls server/fanout.c (fanout_nbacklog)" in out, out


def test_lib_includes_nothing_outside_lib(tree):
    core, obj = tree   # lib -> nothing: not even sys/
    append(core / "lib" / "utf8.c", '\n#include "sys/log.h"\n')
    rc, out = run_check(core, obj)
    assert rc == 1, out
    assert "folder rule: lib/utf8.c includes sys/log.h (lib may use nothing)" in out, out
