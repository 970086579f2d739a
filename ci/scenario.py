#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""ci/scenario.py PORT [--hold] - a short scripted chat session against a running
forkchatd on 127.0.0.1:PORT (used by ci/valgrind.sh).

Registers four clients, chats in the lobby, creates/joins/leaves/removes
rooms, whispers, lists, sends a few invalid lines, drops one connection
without /quit, quits the rest.  Exits 0 if every expected reply arrived,
1 (with the reason) otherwise.  --hold registers one client and waits
until the server sends BYE SHUTDOWN (shutdown with a client connected).  Python
stdlib and the harness (integration/lib/harness); every wait is bounded.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration", "lib"))
from harness.client import ChatClient  # noqa: E402

TIMEOUT = 20.0          # generous: the server runs under valgrind


class Client(ChatClient):
    """A registered harness client; expect() takes a line's prefix."""

    def __init__(self, port, nick):
        ChatClient.__init__(self, port, timeout=TIMEOUT, name=nick)
        self.register(nick)

    def expect(self, prefix, timeout=None):
        """Skip lines until one starts with prefix; return it."""
        return ChatClient.expect(self, re.escape(prefix) + ".*", timeout)

    def quit(self):
        self.send("/quit bye")
        self.expect("BYE QUIT")
        self.close()


def scenario(port):
    a, b, c, d = (Client(port, n) for n in ("alice", "bob", "carol", "dave"))
    a.send("hello everyone")
    for x in (b, c, d):
        x.expect("MSG lobby alice hello everyone")
    a.send("/add den")
    a.expect("OK ADD den")
    b.send("/join den")
    b.expect("OK JOIN den")
    a.expect("JOIN den bob")
    b.send("in the den")
    a.expect("MSG den bob in the den")
    c.send("/w alice psst")
    c.expect("OK WHISPER alice")
    a.expect("WHISPER carol psst")
    d.send("/list")
    d.expect("END LIST")
    d.send("/users all")
    d.expect("END USERS 4")
    d.send("/nosuchcommand")
    d.expect("ERR 404")
    d.send("x" * 3000)                  # longer than --max-line
    d.expect("ERR 401")
    d.send("")
    d.expect("ERR 400")
    c.send("/help")
    c.expect("END HELP")
    b.send("/leave")
    b.expect("OK JOIN lobby")
    a.send("/rm den")
    a.expect("OK RM den")
    d.close()                           # no /quit: a disconnect
    c.expect("PART lobby dave disconnected")
    late = Client(port, "erin")         # a slot freed by dave is reused
    late.send("late message")
    b.expect("MSG lobby erin late message")
    for x in (a, b, c, late):
        x.quit()


def hold(port):
    """Stay registered until the server's shutdown says BYE SHUTDOWN."""
    z = Client(port, "zoe")
    print("holding", flush=True)
    z.expect("BYE SHUTDOWN")
    z.close()


def main():
    port = int(sys.argv[1])
    try:
        if sys.argv[2:] == ["--hold"]:
            hold(port)
        else:
            scenario(port)
    except (AssertionError, OSError) as e:
        print("scenario FAILED: %s" % e)
        return 1
    print("scenario: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
