#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""check_layout.py - the module boundaries of core/ (issue 13), checked.

    check_layout.py CORE_DIR OBJ_DIR

CORE_DIR is core/ (sources, by role folder); OBJ_DIR holds the objects
built from them (build/obj/<folder>/<file>.o).  Four rules, each failure
printed as "layout: <rule>: ..." and the exit status 1:

  include cycle   no cycle of #include "..." between files;
  call cycle      no cycle of calls between files: file A calls file B when
                  an undefined symbol of A.o is defined by B.o (nm);
  lib purity      lib/*.o use nothing but pure libc (LIB_PURE below) and
                  each other: no system call wrapper, no I/O;
  folder rule     a file includes and calls only files of its own folder
                  and of the folders FOLDER_DEPS allows it.

core/tests/ is not checked: unit tests reach into everything on purpose.
"""
import os
import re
import subprocess
import sys

# Which folder may use (include, call) which, besides itself.
FOLDER_DEPS = {
    "lib": set(),
    "sys": {"lib"},
    "chat": {"lib", "sys"},
    "fed": {"lib", "sys", "chat"},
    "server": {"lib", "sys", "chat", "fed"},
    "client": {"lib", "sys"},
}

# Exceptions to the folder rule, each with its reason.  Keep it short.
FOLDER_ALLOW = {
    # FAIL() is an empty macro (0) unless built with FIU_ENABLE for the
    # fault and fuzz builds; it keeps buf_reserve's ENOMEM path testable.
    ("lib/buf.c", "sys/failpoint.h"),
}

# Call cycles that are truly needed: frozenset of files, and why.  None.
CALL_CYCLE_ALLOW = {}

# Pure libc: what lib/ may call besides lib/ itself (no system call wrapper,
# no I/O, no clock).  __*_chk are _FORTIFY_SOURCE's checked variants.
LIB_PURE = {
    "memcpy", "memmove", "memchr", "memrchr", "memcmp", "memset", "strlen",
    "strnlen", "strcmp", "strncmp", "strcasecmp", "strncasecmp", "strchr",
    "strrchr", "strstr", "strspn", "strcspn", "malloc", "calloc", "realloc",
    "free", "snprintf", "vsnprintf", "strtol", "strtoul", "strtoll",
    "strtoull", "qsort", "bsearch", "abs", "labs", "__errno_location",
    "__stack_chk_fail", "__memcpy_chk", "__memmove_chk", "__memset_chk",
    "__snprintf_chk", "__vsnprintf_chk", "__strnlen_chk",
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(core):
    """{'lib/buf.c': path, ...} for every .c and .h in the role folders."""
    out = {}
    for folder in sorted(FOLDER_DEPS):
        d = os.path.join(core, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                out[folder + "/" + name] = os.path.join(d, name)
    return out


def include_graph(files):
    graph = {}
    for rel, path in files.items():
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        graph[rel] = sorted(set(INCLUDE_RE.findall(text)))
    return graph


def objects(objdir, files):
    """{'lib/buf.c': (defined, undefined)} for the object of every source
    in files: the external symbols each defines and uses (one nm for all).
    An object left over from a source that is gone is not read."""
    paths = {}
    for folder in sorted(FOLDER_DEPS):
        d = os.path.join(objdir, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            src = folder + "/" + name[:-2] + ".c"
            if name.endswith(".o") and src in files:
                paths[os.path.join(d, name)] = src
    out = {src: (set(), set()) for src in paths.values()}
    if not paths:
        return out
    text = subprocess.run(["nm", "-A", "-P", *paths], check=True,
                          capture_output=True, text=True).stdout
    for line in text.splitlines():
        path, _, rest = line.partition(": ")
        parts = rest.split()
        if path not in paths or len(parts) < 2:
            continue
        defined, undefined = out[paths[path]]
        sym, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(sym)
        elif kind in "TDBRCGSVW" and kind.isupper():
            defined.add(sym)
    return out


def call_graph(objs):
    owner = {}
    for src, (defined, _) in objs.items():
        for sym in defined:
            owner.setdefault(sym, src)
    graph, via = {}, {}
    for src, (_, undefined) in objs.items():
        graph[src] = set()
        for sym in sorted(undefined):
            dst = owner.get(sym)
            if dst is not None and dst != src:
                graph[src].add(dst)
                via.setdefault((src, dst), sym)
    return {k: sorted(v) for k, v in graph.items()}, via


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def folder_of(rel):
    return rel.split("/", 1)[0]


def allowed(src, dst):
    a, b = folder_of(src), folder_of(dst)
    return a == b or b in FOLDER_DEPS.get(a, set()) or (src, dst) in FOLDER_ALLOW


def check(core, objdir):
    errors = []
    files = sources(core)
    inc = include_graph(files)
    for comp in cycles(inc):
        errors.append("include cycle: " + " -> ".join(comp + comp[:1]))
    for src, targets in sorted(inc.items()):
        for dst in targets:
            if folder_of(dst) in FOLDER_DEPS and not allowed(src, dst):
                errors.append("folder rule: %s includes %s (%s may use %s)" % (
                    src, dst, folder_of(src),
                    ", ".join(sorted(FOLDER_DEPS[folder_of(src)])) or "nothing"))
    objs = objects(objdir, files)
    if not objs:
        errors.append("no objects under %s: build first" % objdir)
    calls, via = call_graph(objs)
    for comp in cycles(calls):
        if frozenset(comp) in CALL_CYCLE_ALLOW:
            continue
        edges = ["%s -> %s (%s)" % (a, b, via[(a, b)])
                 for a in comp for b in calls[a] if b in comp]
        errors.append("call cycle: %s: %s" % (" ".join(comp), "; ".join(edges)))
    for src, targets in sorted(calls.items()):
        for dst in targets:
            if not allowed(src, dst):
                errors.append("folder rule: %s calls %s (%s)" % (
                    src, dst, via[(src, dst)]))
    lib_defined = set()
    for src, (defined, _) in objs.items():
        if folder_of(src) == "lib":
            lib_defined |= defined
    for src, (_, undefined) in sorted(objs.items()):
        if folder_of(src) != "lib":
            continue
        bad = sorted(s for s in undefined
                     if s not in LIB_PURE and s not in lib_defined)
        if bad:
            errors.append("lib purity: %s uses %s" % (src, ", ".join(bad)))
    return errors, len(files), len(objs)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    errors, nfiles, nobjs = check(argv[1], argv[2])
    for e in errors:
        print("layout: " + e)
    if errors:
        print("check-layout: %d problem(s)" % len(errors))
        return 1
    print("check-layout: %d files, %d objects: no include or call cycle, "
          "lib/ pure, folder rules kept" % (nfiles, nobjs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
