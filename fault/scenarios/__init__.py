# SPDX-License-Identifier: BSD-3-Clause
"""scenarios - the fault matrix: one function per scenario, by area.

Each scenario returns a one-line evidence string, or raises fclib.Fail with
the evidence of the broken invariant.  Registered with @scenario(name, kind,
point, quick=...); kind is failpoint | preload | signal | limit.
In-code points run the server under `fiu-run` without -x (the run preload
still provides the control FIFO); preload points add -x.

The areas are modules of this package, imported in AREAS order, which is
the matrix order (each module keeps its scenarios in file order).  A module
of the package that AREAS does not name is an error, never silently left
out.
"""

import importlib
import pkgutil

AREAS = ("spawn",
         "fanout",
         "startup",
         "session",
         "bridge",
         "fed",
         "fedredis",
         "preload",
         "signals",
         "limits")

_found = {m.name for m in pkgutil.iter_modules(__path__)} - {"common"}
if _found != set(AREAS):
    raise ImportError("fault/scenarios/: modules %s, AREAS %s" % (sorted(_found), list(AREAS)))
for _area in AREAS:
    importlib.import_module("scenarios." + _area)

from scenarios.common import SCENARIOS  # noqa: E402 (the registry, filled above)

__all__ = ["AREAS", "SCENARIOS"]
