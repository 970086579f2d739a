#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""ci/provenance.py - tie a results file to the code that produced it (stdlib).

    ci/provenance.py stamp FILE.json [BINARY]   add "provenance" to a JSON object
    ci/provenance.py check FILE...              warn if FILE was measured on other code
    ci/provenance.py line [BINARY]              print {"provenance": ...} as one JSON line
    ci/provenance.py show                       print what stamp would record

Every results file (bench/results/*.json, fault/results/*.json) carries

    "provenance": {"commit": SHA, "dirty": bool, "dirty_files": [...],
                   "compiler": "gcc (Debian 12.2.0-14) 12.2.0", "kernel": "6.1.0-...",
                   "machine": {"cpu": ..., "cores": N, "arch": "x86_64"},
                   "recorded": "2026-12-05T17:00:00Z"}

bench/report.py and fault/runner.py call collect() when they write; the
hyperfine exports and bench/federated.sh's file are stamped by their
scripts.  "dirty" looks at tracked files outside the results directories
(writing results does not make the tree dirty).

check() compares a file's provenance with the tree now: it warns when no
provenance was recorded, when the tree was dirty when measured, or when
the code differs from the commit measured (files changed since, other
than results and documentation).  `make results-check` runs it on every
committed results file; RESULTS_STRICT=1 makes a warning fail.
"""
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# not code: results, documentation
NOT_CODE = (":(exclude)bench/results", ":(exclude)fault/results", ":(exclude)docs",
            ":(exclude)*.md")


def git(*args, root=ROOT, strip=True):
    try:
        p = subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return p.stdout.strip() if strip else p.stdout


def dirty_files(root=ROOT):
    out = git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE,
              root=root, strip=False)   # "XY path": the first column may be a space
    if out is None:
        return None
    return [line[3:] for line in out.splitlines() if line.strip()]


def compiler():
    cc = os.environ.get("CC", "gcc")
    try:
        p = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        return (p.stdout.splitlines() or ["?"])[0].strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (%s)" % cc


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "arch": platform.machine()}


def collect(root=ROOT, binary=None):
    """The provenance of results measured now from the tree at root."""
    files = dirty_files(root)
    prov = {"commit": git("rev-parse", "HEAD", root=root),
            "dirty": bool(files) if files is not None else None,
            "dirty_files": (files or [])[:20],
            "compiler": compiler(), "kernel": platform.release(), "machine": machine(),
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if binary:
        prov["binary"] = str(binary)
    return prov


def check(prov, root=ROOT, what="results"):
    """Warnings (strings) about results with provenance prov, vs the tree now."""
    if not prov or not prov.get("commit"):
        return ["%s: no provenance recorded: which code produced them is unknown" % what]
    out = []
    sha = prov["commit"]
    if prov.get("dirty"):
        out.append("%s: measured on %s with uncommitted changes (%s)" % (
            what, sha[:10], ", ".join(prov.get("dirty_files", [])[:5])))
    if git("cat-file", "-e", sha + "^{commit}", root=root) is None:
        out.append("%s: measured on %s, which this repository does not have" % (what, sha[:10]))
        return out
    changed = git("diff", "--name-only", sha, "--", ".", *NOT_CODE, root=root)
    if changed:
        files = changed.splitlines()
        out.append("%s: measured on %s; the code differs now in %d file(s): %s%s" % (
            what, sha[:10], len(files), ", ".join(files[:5]), " ..." if len(files) > 5 else ""))
    return out


def stamp(path, binary=None):
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise SystemExit("%s: not a JSON object" % path)
    doc["provenance"] = collect(binary=binary)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def load_prov(path):
    """provenance of a results file: a JSON object, or JSON lines (each
    line may carry its own; the last one counts)."""
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
        return doc.get("provenance") if isinstance(doc, dict) else None
    except ValueError:
        prov = None
        for line in text.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("provenance"):
                prov = d["provenance"]
        return prov


def main(argv):
    if len(argv) >= 3 and argv[1] == "stamp":
        stamp(argv[2], argv[3] if len(argv) > 3 else None)
        return 0
    if len(argv) in (2, 3) and argv[1] == "line":
        print(json.dumps({"provenance": collect(binary=argv[2] if len(argv) > 2 else None)}))
        return 0
    if len(argv) == 2 and argv[1] == "show":
        print(json.dumps(collect(), indent=1))
        return 0
    if len(argv) >= 3 and argv[1] == "check":
        n = 0
        for path in argv[2:]:
            for w in check(load_prov(path), what=os.path.relpath(path, ROOT)):
                print("WARNING: " + w)
                n += 1
        if n and os.environ.get("RESULTS_STRICT") == "1":
            return 1
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
