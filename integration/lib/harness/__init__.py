# SPDX-License-Identifier: BSD-3-Clause
"""harness - the one Python test harness of forkchat.

Shared by integration/ (pytest), fault/ (the fault matrix, sweep, soak,
netfuzz), ci/ and bench/ Python:

  timescale  the time scale of every deadline (slow builds), wait_for/wait_until
  procfs     /proc: process state (Z counts as gone), children, zombies, fds,
             RSS, listening sockets, free_port, kill by PID
  server     Server: start a forkchatd (foreground or daemon), wait until it
             listens, inspect its log and children, stop it by PID leaving no
             process or zombie; Redis: a redis-server for federation
  client     ChatClient: one protocol connection (docs/PROTOCOL.md) with
             deadlines on every read, optionally read by a thread
  wakeups    what woke a session child (strace on its sigtimedwait), for
             verdicts that must not time a wake-up

Put integration/lib on sys.path (integration/conftest.py, fault/runner.py,
... do) and import the modules: `from harness.server import Server`.
"""


class Fail(AssertionError):
    """An expectation did not hold; the message is the one-line evidence."""
