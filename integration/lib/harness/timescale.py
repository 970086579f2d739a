# SPDX-License-Identifier: BSD-3-Clause
"""One time scale for every wall-clock bound of the harness (stdlib only).

A test may wait for an event (a line, a log entry, a process exit) with a
deadline, but the deadline must not decide the verdict because the code
under test is slow: an ASan+UBSan build runs 3-10x slower than -O2, a
gcov -O0 build about 2x.  So every deadline in integration/ and fault/
goes through scaled(), and the factor comes from the binary under test:

- FORKCHAT_TIME_SCALE=F (F >= 1) in the environment wins (ci/ci.mk sets it
  for test-asan and coverage);
- else the binary is inspected: AddressSanitizer / ThreadSanitizer
  runtime -> 5, gcov instrumentation -> 2, valgrind (FORKCHAT_VALGRIND=1)
  -> 20;
- else FORKCHAT_SANITIZED=1 -> 5;
- else 1.

A deadline is an upper bound for something that happens "at once" or
"after the server's own timer"; scaling it only makes a passing run
slower, never a failing one pass.  Checks that nothing happens within a
window (assert_silent) become longer windows, i.e. stricter.
"""

import os
import time

ASAN_SCALE = 5.0
COV_SCALE = 2.0
VALGRIND_SCALE = 20.0


def detect(binary):
    """The factor for binary (a path or None); see the module docstring."""
    env = os.environ.get("FORKCHAT_TIME_SCALE", "").strip()
    if env:
        try:
            return max(1.0, float(env))
        except ValueError:
            raise SystemExit("FORKCHAT_TIME_SCALE=%r is not a number" % env)
    if os.environ.get("FORKCHAT_VALGRIND") == "1":
        return VALGRIND_SCALE
    data = b""
    if binary:
        try:
            with open(binary, "rb") as f:
                data = f.read()
        except OSError:
            pass
    if b"__asan_init" in data or b"__tsan_init" in data:
        return ASAN_SCALE
    if b"__gcov_" in data or b"__llvm_gcov" in data:
        return COV_SCALE
    if os.environ.get("FORKCHAT_SANITIZED") == "1":
        return ASAN_SCALE
    return 1.0


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCALE = detect(os.environ.get("FORKCHATD", os.path.join(ROOT, "build", "forkchatd")))


def use(binary):
    """Take the time scale of binary (the fault build, a bench binary)."""
    global SCALE
    SCALE = detect(str(binary))
    return SCALE


def scaled(seconds):
    """seconds x the time scale (None stays None)."""
    return None if seconds is None else seconds * SCALE


def wait_for(cond, timeout=5.0, interval=0.02):
    """Poll cond() until truthy; return its last value (falsy on timeout).
    timeout is scaled."""
    end = time.monotonic() + scaled(timeout)
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def wait_until(cond, timeout=5.0, interval=0.01, what="condition"):
    """wait_for() that raises AssertionError on timeout."""
    v = wait_for(cond, timeout, interval)
    if not v:
        raise AssertionError("timed out after %.1fs waiting for %s" % (scaled(timeout), what))
    return v
