# SPDX-License-Identifier: BSD-3-Clause
"""Operating forkchat like a real daemon: the man pages (render without
warnings, document exactly the long options --help lists), the systemd unit
(systemd-analyze verify), `make install`/`make uninstall` into a DESTDIR,
and `make deb` (contents, control file, installed into a scratch root and
run from there)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.server import ROOT, SERVER

BUILD = ROOT / "build"
MAN = ROOT / "docs" / "man"
UNIT = ROOT / "docs" / "forkchatd.service"
PROGRAMS = [
    ("forkchatd", BUILD / "forkchatd", MAN / "forkchatd.8"),
    ("forkchat", BUILD / "forkchat", MAN / "forkchat.1"),
    ("forkchat-load", BUILD / "forkchat-load", MAN / "forkchat-load.1"),
]
LONGOPT = re.compile(r"--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def sh(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed (make deps installs it)" % tool)


# ---- man pages ---------------------------------------------------------------
def help_options(binary):
    assert binary.exists(), "%s is missing: run `make all build/forkchat-load`" % binary
    p = sh([str(binary), "--help"])
    assert p.returncode == 0, p
    return set(LONGOPT.findall(p.stdout))


def man_options(page, section="OPTIONS"):
    """Long options named in one section of the roff source."""
    text = page.read_text().replace("\\-", "-").replace("\\%", "")
    m = re.search(r"(?ms)^\.SH %s\n(.*?)(?=^\.SH )" % section, text)
    assert m, "%s has no %s section" % (page.name, section)
    body = "\n".join(l for l in m.group(1).splitlines() if not l.startswith('.\\"'))
    return set(LONGOPT.findall(body))


@pytest.mark.parametrize("name,binary,page", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_man_page_and_help_list_the_same_long_options(name, binary, page):
    in_help, in_man = help_options(binary), man_options(page)
    assert in_help, "no long options found in %s --help" % name
    assert in_help - in_man == set(), "in --help but not in %s" % page.name
    assert in_man - in_help == set(), "in %s but not in --help" % page.name
    assert man_options(page, "SYNOPSIS") <= in_help


@pytest.mark.parametrize("name,binary,page", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_man_page_renders_without_warnings(name, binary, page):
    need("man")
    p = sh(["man", "--warnings", "-l", str(page)], env=dict(os.environ, MANWIDTH="80"))
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS",
                    "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(r"(?m)^%s$" % section, p.stdout), "%s: no %s" % (page.name, section)


def test_forkchatd_man_page_covers_signals_files_and_exit_statuses():
    text = MAN.joinpath("forkchatd.8").read_text()
    for word in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "forkchatd_", "log-dir",
                 "pid-file", "/stats", "world-writable"):
        assert word.replace("-", "\\-") in text or word in text, word
    exits = re.search(r"(?s)\.SH EXIT STATUS(.*?)\.SH", text).group(1)
    assert all(".B %d" % n in exits for n in (0, 1, 2)), exits


# ---- the systemd unit ----------------------------------------------------------
def analyze_problem():
    """Why systemd-analyze verify cannot run here, or None."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        return "systemd-analyze is not installed (Debian package systemd)"
    p = sh([exe, "--version"])
    if p.returncode != 0:
        return "systemd-analyze --version failed: %s" % (p.stderr or p.stdout).strip()
    return None


def unit_copy(tmp_path, text=None):
    """The unit with ExecStart at build/forkchatd (verify needs the binary),
    and a MANPATH holding our forkchatd.8 (verify checks Documentation=)."""
    unit = tmp_path / "forkchatd.service"
    text = text if text is not None else UNIT.read_text()
    unit.write_text(text.replace("ExecStart=/usr/sbin/forkchatd", "ExecStart=%s" % SERVER))
    (tmp_path / "man" / "man8").mkdir(parents=True)
    shutil.copy(MAN / "forkchatd.8", tmp_path / "man" / "man8")
    return unit, dict(os.environ, MANPATH=str(tmp_path / "man"), SYSTEMD_LOG_LEVEL="notice")


def test_unit_passes_systemd_analyze_verify(tmp_path):
    why = analyze_problem()
    if why:
        pytest.skip(why)
    unit, env = unit_copy(tmp_path)
    p = sh(["systemd-analyze", "verify", str(unit)], env=env, cwd=str(tmp_path))
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_unit_verify_is_not_vacuous(tmp_path):
    """The same check rejects a unit whose binary is missing."""
    why = analyze_problem()
    if why:
        pytest.skip(why)
    unit, env = unit_copy(tmp_path)
    unit.write_text(UNIT.read_text().replace(
        "ExecStart=/usr/sbin/forkchatd", "ExecStart=%s" % (tmp_path / "no-such-forkchatd")))
    p = sh(["systemd-analyze", "verify", str(unit)], env=env, cwd=str(tmp_path))
    assert p.returncode != 0 or p.stdout + p.stderr != ""


def test_unit_contents():
    text = UNIT.read_text()
    keys = dict(l.split("=", 1) for l in text.splitlines()
                if "=" in l and not l.startswith("#"))
    exec_start = keys["ExecStart"].split()
    assert exec_start[0] == "/usr/sbin/forkchatd" and "-f" in exec_start
    assert exec_start[exec_start.index("-l") + 1] == "/var/log/forkchat"
    assert keys["LogsDirectory"] == "forkchat"
    assert keys["Restart"] == "on-failure"
    assert keys["DynamicUser"] == "yes" or "--user" in exec_start
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                 ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
        assert keys.get(k) == v, k


def test_unit_security_exposure_is_low(tmp_path):
    """systemd-analyze security --offline: the sandbox is real (score < 3)."""
    why = analyze_problem()
    if why:
        pytest.skip(why)
    unit, env = unit_copy(tmp_path)
    p = sh(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
           env=env, cwd=str(tmp_path))
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    if m is None:
        pytest.skip("systemd-analyze security --offline unsupported: %r" % (p.stdout + p.stderr)[-200:])
    assert float(m.group(1)) < 3.0, p.stdout[-2000:]


# ---- make install / uninstall ------------------------------------------------------
def make(*args):
    p = sh(["make", "--no-print-directory", "-C", str(ROOT)] + list(args), timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


@pytest.mark.parametrize("prefix", ["/usr/local", "/opt/fc"])
def test_make_install_and_uninstall_into_destdir(tmp_path, prefix, server_factory, user):
    dest = tmp_path / "root"
    make("install", "DESTDIR=%s" % dest, "PREFIX=%s" % prefix)
    p = Path(str(dest) + prefix)
    want = ["sbin/forkchatd", "lib/forkchat/forkchatd-session", "bin/forkchat", "bin/forkchat-load",
            "share/man/man1/forkchat.1", "share/man/man1/forkchat-load.1",
            "share/man/man8/forkchatd.8", "share/doc/forkchat/README.md",
            "share/doc/forkchat/PROTOCOL.md", "share/doc/forkchat/SERVER-CLI.md",
            "share/doc/forkchat/ARCHITECTURE.md", "lib/systemd/system/forkchatd.service"]
    for rel in want:
        assert (p / rel).is_file(), rel
    for rel in want[:4]:
        assert os.access(p / rel, os.X_OK), rel
    unit = (p / "lib/systemd/system/forkchatd.service").read_text()
    assert "ExecStart=%s/sbin/forkchatd -f " % prefix in unit
    out = sh([str(p / "sbin/forkchatd"), "-V"])
    assert out.returncode == 0 and out.stdout == "forkchatd 1.0\n"
    # the installed server finds its session image in ../lib/forkchat and
    # its session children run it
    srv = server_factory(binary=str(p / "sbin/forkchatd"))
    c = user("inst", port=srv.port)
    image = p / "lib/forkchat/forkchatd-session"
    assert os.readlink("/proc/%d/exe" % srv.child_for(c)) == str(image)
    assert os.readlink("/proc/%d/exe" % srv.spawner()) == str(image)
    assert not srv.stop()
    make("uninstall", "DESTDIR=%s" % dest, "PREFIX=%s" % prefix)
    left = [str(f.relative_to(dest)) for f in dest.rglob("*") if not f.is_dir()]
    assert left == [], left


# ---- make deb -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deb():
    need("dpkg-deb")
    make("deb")
    debs = sorted(BUILD.glob("forkchat_*.deb"))
    assert debs, "make deb produced no build/forkchat_*.deb"
    return debs[-1]


def test_deb_contents(deb):
    p = sh(["dpkg-deb", "-c", str(deb)])
    assert p.returncode == 0, p.stderr
    files = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        files[parts[5].lstrip(".")] = (parts[0], parts[1])
    for path in ("/usr/sbin/forkchatd", "/usr/lib/forkchat/forkchatd-session",
                 "/usr/bin/forkchat", "/usr/bin/forkchat-load"):
        assert files[path] == ("-rwxr-xr-x", "root/root"), path
    for path in ("/usr/share/man/man8/forkchatd.8.gz", "/usr/share/man/man1/forkchat.1.gz",
                 "/usr/share/man/man1/forkchat-load.1.gz",
                 "/lib/systemd/system/forkchatd.service",
                 "/usr/share/doc/forkchat/copyright",
                 "/usr/share/doc/forkchat/changelog.Debian.gz"):
        assert files[path][0] == "-rw-r--r--", path
    assert any(f.startswith("/usr/share/doc/forkchat/PROTOCOL.md") for f in files)
    assert not any(f.endswith((".1", ".8")) for f in files), "man pages not gzipped"


def test_deb_control(deb):
    p = sh(["dpkg-deb", "-I", str(deb)])
    assert p.returncode == 0, p.stderr
    fields = dict(re.findall(r"(?m)^ ([A-Z][A-Za-z-]+): (.*)$", p.stdout))
    assert fields["Package"] == "forkchat"
    assert fields["Version"] == "1.0-1"
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    assert fields["Architecture"] == arch
    # libc6, and for forkchatd's name profile libunistring and ICU: nothing else
    deps = sorted(d.strip() for d in fields["Depends"].split(","))
    assert len(deps) == 3, fields["Depends"]
    assert re.fullmatch(r"libc6 \(>= 2\.\d+\)", deps[0]), fields["Depends"]
    assert re.fullmatch(r"libicu\d+( \(>= [^)]+\))?", deps[1]), fields["Depends"]
    assert re.fullmatch(r"libunistring\d+( \(>= [^)]+\))?", deps[2]), fields["Depends"]
    assert int(fields["Installed-Size"]) > 0
    for script in ("postinst", "prerm", "postrm", "md5sums"):
        assert script in p.stdout, script


def test_deb_installs_into_scratch_root_and_runs(deb, tmp_path, server_factory, user):
    need("dpkg")
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    p = sh(["dpkg", "--root=%s" % root, "--force-depends", "--force-not-root",
            "--force-script-chrootless", "--log=/dev/null", "-i", str(deb)])
    if p.returncode != 0:
        # some dpkg builds refuse maintainer scripts outside a chroot: unpack
        shutil.rmtree(root)
        root.mkdir()
        p = sh(["dpkg-deb", "-x", str(deb), str(root)])
    assert p.returncode == 0, p.stdout + p.stderr
    out = sh([str(root / "usr/sbin/forkchatd"), "-V"])
    assert out.returncode == 0 and out.stdout == "forkchatd 1.0\n", out
    # it serves, its (stripped) session image from /usr/lib/forkchat
    srv = server_factory(binary=str(root / "usr/sbin/forkchatd"))
    c = user("debu", port=srv.port)
    assert os.readlink("/proc/%d/exe" % srv.child_for(c)) == \
        str(root / "usr/lib/forkchat/forkchatd-session")
    assert not srv.stop()
    out = sh([str(root / "usr/bin/forkchat"), "-V"])
    assert out.returncode == 0 and out.stdout.startswith("forkchat 1.0"), out
    assert (root / "lib/systemd/system/forkchatd.service").is_file()
    man = sh(["man", "--warnings", "-l", str(root / "usr/share/man/man8/forkchatd.8.gz")]) \
        if shutil.which("man") else None
    assert man is None or (man.returncode == 0 and man.stderr == ""), man


def test_deb_lintian_if_available(deb):
    need("lintian")
    p = sh(["lintian", "--tag-display-limit", "0", str(deb)], timeout=300)
    tags = [l for l in p.stdout.splitlines() if l.startswith(("E:", "W:"))]
    assert tags == [], p.stdout


# ---- the sandbox does not break the server ---------------------------------------------
def syscall_groups():
    out = sh(["systemd-analyze", "syscall-filter", "--no-pager"]).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip())

    def expand(name, seen):
        res = set()
        for m in groups.get(name, []):
            if m.startswith("@"):
                if m not in seen:
                    seen.add(m)
                    res |= expand(m, seen)
            else:
                res.add(m)
        return res
    return lambda name: expand(name, set())


def test_unit_syscall_filter_allows_every_syscall_the_server_makes(tmp_path):
    """Run the unit's command line under strace through a whole session
    (connect, register, room, message, /stats, SIGHUP, SIGTERM) and check each
    system call against the unit's SystemCallFilter= (as systemd expands it)."""
    if os.environ.get("FORKCHAT_SANITIZED") == "1":
        pytest.skip("a sanitizer runtime makes system calls of its own; "
                    "the filter is checked against the normal build")
    why = analyze_problem()
    if why:
        pytest.skip(why)
    need("strace")
    filters = [l.split("=", 1)[1] for l in UNIT.read_text().splitlines()
               if l.startswith("SystemCallFilter=")]
    assert filters == ["@system-service", "~@privileged"], filters
    expand = syscall_groups()
    allowed = expand("@system-service") - expand("@privileged")
    assert len(allowed) > 100, "systemd-analyze syscall-filter gave %d calls" % len(allowed)

    from harness.client import ChatClient
    from harness.procfs import free_port, is_listening
    from harness.timescale import wait_until
    import signal
    port, trace, pidfile = free_port(), tmp_path / "trace", tmp_path / "pid"
    p = subprocess.Popen(["strace", "-f", "-qq", "-o", str(trace), str(SERVER), "-f",
                          "-b", "127.0.0.1", "-p", str(port), "-l", str(tmp_path / "logs"),
                          "--pid-file", str(pidfile)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        try:
            wait_until(lambda: is_listening(port) and pidfile.exists()
                       and pidfile.read_text().strip(), 10.0, what="server under strace")
        except AssertionError:
            if p.poll() is not None:
                pytest.skip("strace cannot trace here (ptrace not permitted?)")
            raise
        pid = int(pidfile.read_text())
        a, b = ChatClient(port).register("a"), ChatClient(port).register("b")
        a.send("/add r")
        a.expect_exact("OK JOIN r")
        b.send("/join r")
        b.expect_exact("OK JOIN r")
        a.send("hello")
        b.expect_exact("MSG r a hello")
        assert b.stats()["deliveries"] == 1
        a.quit()
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "log reopened" in "".join(
            f.read_text() for f in (tmp_path / "logs").glob("*.log")), 5.0, what="SIGHUP")
        os.kill(pid, signal.SIGTERM)
        assert p.wait(15) == 0
        b.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    used = set()
    for line in trace.read_text().splitlines():
        m = re.match(r"\d+\s+([a-z_0-9]+)\(", line)
        if m:
            used.add(m.group(1))
    used.discard("execve")           # strace starting the program
    assert {"clone", "pipe2", "rt_sigtimedwait", "accept4"} <= used, sorted(used)
    assert sorted(used - allowed) == [], "blocked by SystemCallFilter: %r" % sorted(used - allowed)


# ---- licence ----------------------------------------------------------------------
COPYRIGHT = ROOT / "docs" / "packaging" / "copyright"
LICENSE = ROOT / "LICENSE"


def dep5_stanzas(text):
    """Debian machine-readable copyright (DEP-5): a list of {field: value}
    stanzas; continuation lines are kept (without their leading space)."""
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        fields, last = {}, None
        for line in block.split("\n"):
            if line[:1] in (" ", "\t"):
                assert last, "continuation line without a field: %r" % line
                fields[last] += "\n" + line[1:]
            else:
                m = re.fullmatch(r"([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)", line)
                assert m, "not a field line: %r" % line
                last = m.group(1)
                assert last not in fields, "field %s twice in one stanza" % last
                fields[last] = m.group(2)
        stanzas.append(fields)
    return stanzas


def licence_words(text):
    return re.sub(r"\s+", " ", text).strip()


def test_copyright_file_is_machine_readable_bsd_3_clause():
    """docs/packaging/copyright follows copyright-format 1.0: a header stanza,
    a Files: * stanza, and the full BSD-3-Clause text identical to LICENSE."""
    stanzas = dep5_stanzas(COPYRIGHT.read_text())
    head = stanzas[0]
    assert head["Format"] == "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    assert head["Upstream-Name"] == "forkchat"
    files = [s for s in stanzas if "Files" in s]
    assert files and files[0]["Files"] == "*", files
    for s in files:
        assert s["Copyright"].strip() and s["License"] == "BSD-3-Clause", s
    standalone = [s for s in stanzas if "License" in s and "Files" not in s and s is not head]
    assert len(standalone) == 1, standalone
    short, _, body = standalone[0]["License"].partition("\n")
    assert short == "BSD-3-Clause"
    body = "\n".join("" if l == "." else l for l in body.split("\n"))
    lic = LICENSE.read_text()
    assert "Copyright (c) 2026, the forkchat maintainers" in lic
    assert licence_words(body) == licence_words(lic[lic.index("Redistribution"):])
    for clause in ("Neither the name of the copyright holder",
                   "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS"):
        assert clause in body
    assert "none" not in (s.get("License") for s in stanzas)


def test_deb_ships_the_copyright_file(deb, tmp_path):
    p = sh(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    assert p.returncode == 0, p.stderr
    shipped = tmp_path / "usr/share/doc/forkchat/copyright"
    assert shipped.read_bytes() == COPYRIGHT.read_bytes()
