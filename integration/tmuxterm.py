# SPDX-License-Identifier: BSD-3-Clause
"""A person's terminal for the tests: build/forkchat inside a detached tmux.

Each Term runs its own tmux server on a private socket in a fresh /tmp
directory (never the user's tmux), types with send-keys and reads the screen with
capture-pane, as a person would see it.  close() kills that tmux server by
the pid tmux reports, so nothing is left behind even when a test fails.
"""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from harness.procfs import is_gone
from harness.server import CLIENT, STARTED
from harness.timescale import wait_until

TMUX = "tmux"


class Term:
    def __init__(self, tmp_path, argv, width=80, height=24, env=None, name="t"):
        # a socket path must fit sun_path (108 bytes): tmp_path may not
        self.sockdir = tempfile.mkdtemp(prefix="fct")
        self.sock = os.path.join(self.sockdir, "s")
        self.width, self.height = width, height
        e = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "NO_COLOR": "1"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):  # sanitizer builds
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        # The program runs under `env -i` so the test decides every variable;
        # when it ends the pane stays (remain-on-exit) so its last screen and
        # exit status can still be read.
        envs = " ".join(shlex.quote("%s=%s" % kv) for kv in e.items() if kv[1] is not None)
        cmd = "exec env -i PATH=/usr/bin:/bin %s %s" % (
            envs, " ".join(shlex.quote(str(a)) for a in argv))
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", str(width),
                   "-y", str(height), cmd)
        self.target = name
        self.pid = int(self._tmux("display-message", "-p", "-t", name, "#{pid}").strip())
        STARTED.add(self.pid)
        self._tmux("set-option", "-t", name, "remain-on-exit", "on")
        self.pane_pid = int(self._tmux("display-message", "-p", "-t", name,
                                       "#{pane_pid}").strip())

    def _tmux(self, *args):
        r = subprocess.run([TMUX, "-u", "-S", self.sock] + list(args), capture_output=True,
                           timeout=10, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                            "LANG": "C.UTF-8", "TERM": "xterm"})
        if r.returncode != 0:
            raise AssertionError("tmux %r: %s" % (args, r.stderr.decode(errors="replace")))
        return r.stdout.decode("utf-8", "replace")

    def keys(self, *keys):
        """send-keys with tmux key names (Enter, Left, C-a, BSpace, ...)."""
        self._tmux("send-keys", "-t", self.target, *keys)

    def type(self, text):
        """Type text literally (UTF-8 included)."""
        self._tmux("send-keys", "-t", self.target, "-l", text)

    def screen(self):
        """The visible rows, trailing spaces stripped (capture-pane -p)."""
        out = self._tmux("capture-pane", "-p", "-t", self.target)
        return [row.rstrip() for row in out.split("\n")[:self.height]]

    def cursor(self):
        x, y = self._tmux("display-message", "-p", "-t", self.target,
                          "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def resize(self, width, height=None):
        self.width, self.height = width, height or self.height
        self._tmux("resize-window", "-t", self.target, "-x", str(width), "-y",
                   str(self.height))

    def wait_screen(self, pred, timeout=10, what="screen"):
        last = []

        def check():
            last[:] = self.screen()
            return pred(last)
        try:
            wait_until(check, timeout, interval=0.05, what=what)
            return list(last)
        except AssertionError as e:
            raise AssertionError("%s; screen:\n%s" % (e, "\n".join(last)))

    def wait_text(self, text, timeout=10):
        return self.wait_screen(lambda rows: any(text in r for r in rows), timeout,
                                what=repr(text))

    def dead(self):
        return self._tmux("display-message", "-p", "-t", self.target,
                          "#{pane_dead}").strip() == "1"

    def exit_status(self, timeout=10):
        wait_until(self.dead, timeout, interval=0.05, what="the program to exit")
        return int(self._tmux("display-message", "-p", "-t", self.target,
                              "#{pane_dead_status}").strip())

    def close(self):
        try:
            self._tmux("kill-server")
        except (AssertionError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + 5
        for pid in (self.pane_pid, self.pid):
            while not is_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not is_gone(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.sockdir, ignore_errors=True)


def client_argv(port, *args):
    return [str(CLIENT)] + list(args) + ["127.0.0.1", str(port)]
