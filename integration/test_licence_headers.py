# SPDX-License-Identifier: BSD-3-Clause
"""Every source file names its licence with an SPDX line (issue 15 item 3).
LICENSE holds the text; docs/packaging/copyright the Debian form."""

import subprocess

from harness.server import ROOT

SPDX = "SPDX-License-Identifier: BSD-3-Clause"
KINDS = (".c", ".h", ".py", ".sh", ".mk")


def source_files():
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True,
                         text=True, check=True).stdout.split()
    return [f for f in out if f.endswith(KINDS) or f in ("Makefile", ".ci/run")]


def test_every_source_file_has_an_spdx_line():
    files = source_files()
    assert len(files) > 50, files            # the listing itself works
    missing = [f for f in files
               if SPDX not in "\n".join((ROOT / f).read_text(errors="replace")
                                        .split("\n")[:12])]
    assert not missing, "no '%s' in the first 12 lines of: %s" % (SPDX, ", ".join(missing))
