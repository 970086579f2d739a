# SPDX-License-Identifier: BSD-3-Clause
"""A skip is never a pass (stdlib + pytest).

The allow-list ci/skips.allow names every skip that may happen, one per
line with its reason:

    ID  REASON

ID is `integration/FILE.py::TEST` (an fnmatch pattern; a parametrized test
needs its [param] or a `*`), `fault:SCENARIO` or `unit:BINARY`.  A line
without a reason is an error.  FORKCHAT_SKIPS_ALLOW names another file
(the tests of this module use it).

pytest plugin (integration/conftest.py loads it): every skipped test is
listed at the end, and one that the allow-list does not name turns the run
into a failure (exit status 1), so `make test`, `make test-asan` and the
CI gate cannot pass with a test that did not run.  fault/runner.py and the
unit runner use allowed() the same way.
"""

import fnmatch
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def allow_path():
    return Path(os.environ.get("FORKCHAT_SKIPS_ALLOW", ROOT / "ci" / "skips.allow"))


def load(path=None):
    """{pattern: reason} from the allow-list; raises ValueError on a line
    without a reason."""
    path = Path(path) if path else allow_path()
    out = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise ValueError("%s:%d: %r has no reason" % (path, n, parts[0]))
        out[parts[0]] = parts[1].strip()
    return out


def allowed(ident, entries):
    """The reason ident may be skipped, or None."""
    for pat, why in entries.items():
        if fnmatch.fnmatchcase(ident, pat):
            return why
    return None


# ---- pytest plugin ----------------------------------------------------------
_SKIPPED = []


def _ident(config, report):
    rel = os.path.relpath(str(config.rootpath), str(ROOT))
    return report.nodeid if rel == "." else "%s/%s" % (rel, report.nodeid)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append((report, reason))


def pytest_sessionfinish(session, exitstatus):
    if not _SKIPPED:
        return
    try:
        entries = load()
    except ValueError as e:
        session.config._skipgate_lines = ["skip allow-list: %s" % e]
        session.exitstatus = 1
        return
    lines, bad = [], 0
    for report, reason in _SKIPPED:
        ident = _ident(session.config, report)
        why = allowed(ident, entries)
        if why is None:
            bad += 1
            lines.append("SKIP NOT ALLOWED  %s: %s" % (ident, reason))
        else:
            lines.append("skip (allowed)    %s: %s [allow-list: %s]" % (ident, reason, why))
    if bad:
        lines.append("%d skipped test(s) not in %s: a skip is not a pass; install what "
                     "the test needs or list it there with its reason" % (bad, allow_path()))
        if session.exitstatus == 0:
            session.exitstatus = 1
    session.config._skipgate_lines = lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = getattr(config, "_skipgate_lines", None)
    if lines:
        terminalreporter.section("skips (ci/skips.allow)")
        for line in lines:
            terminalreporter.write_line(line)
