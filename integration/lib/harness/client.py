# SPDX-License-Identifier: BSD-3-Clause
"""client - one protocol client for every forkchat harness.

ChatClient speaks docs/PROTOCOL.md over a plain TCP socket to 127.0.0.1:
line framing with a receive buffer, a deadline on every wait (scaled for
slow builds, timescale.py), expect helpers that match lines by regular
expression.  Lines are str decoded from UTF-8 with 'surrogateescape', so a
test still sees exactly which bytes arrived.

Every line received goes to two lists: `lines`, the queue that readline()
and expect() consume, and `history`, everything ever received (snapshot(),
wait_line(), wait_count() search it without consuming).  Bytes after the
last newline when the server closes (not resets) the connection are
`partial` (a cut line); they are queued in `lines` too.

By default the caller's waits do the reading.  reading=True starts a reader
thread instead (the fault matrix: many clients must keep reading while a
scenario does other things; pause()/resume() make one stop reading).
"""

import errno
import re
import selectors
import socket
import threading
import time

from harness import Fail
from harness.timescale import scaled

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0      # seconds, x timescale.SCALE (slow builds)


class ProtocolError(Fail):
    """The server did not send what a test expected."""


class ConnectionClosed(ProtocolError):
    """The server closed the connection while we waited for a line."""


def decode(raw):
    return raw.decode("utf-8", "surrogateescape")


def encode(line):
    if isinstance(line, bytes):
        return line
    return line.encode("utf-8", "surrogateescape")


class ChatClient:
    """One TCP connection to forkchatd.

    hello: read the HELLO line now (else register() waits for it).
    rcvbuf: SO_RCVBUF before connecting; source: local address to bind
    (e.g. "127.0.0.2", another peer address); nodelay: TCP_NODELAY.
    """

    def __init__(self, port, nick=None, host=HOST, timeout=DEFAULT_TIMEOUT, hello=True,
                 rcvbuf=None, name=None, source=None, reading=False, nodelay=False):
        self.port = port
        self.timeout = timeout
        self.name = name
        self.nick = nick
        self.buf = bytearray()
        self.lines = []          # complete lines received, not yet consumed
        self.history = []        # every line ever received
        self.skipped = []        # lines passed over by expect()
        self.eof = False         # EOF or reset seen
        self.reset = False       # ... and it was a reset
        self.partial = b""       # bytes after the last newline at EOF
        self.hello = None
        self.keep_history = True
        self.cond = threading.Condition()
        self.thread = None
        self.go = threading.Event()     # cleared: the reader thread pauses
        self.go.set()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(scaled(timeout))
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        if reading:
            self.start_reading()
        if hello:
            self.hello = self.expect_next(r"HELLO forkchatd/\S+( .*)?")

    # ---- receiving --------------------------------------------------------
    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def _feed(self, data):
        """Add received bytes; data == b"" is the end of the connection."""
        with self.cond:
            if not data:
                self.eof = True
                if self.buf:        # a last line without '\n' (a cut line,
                    tail = bytes(self.buf)      # unless the connection was reset)
                    self.buf.clear()
                    self.lines.append(decode(tail))
                    if not self.reset:
                        self.partial = tail
            self.buf += data
            while True:
                i = self.buf.find(b"\n")
                if i < 0:
                    break
                line = decode(bytes(self.buf[:i]))
                del self.buf[:i + 1]
                self.lines.append(line)
                if self.keep_history:
                    self.history.append(line)
            self.cond.notify_all()

    def _recv(self, size):
        """One recv(): the bytes, b"" at EOF or a reset, None if nothing
        arrived within the socket's timeout."""
        try:
            return self.sock.recv(size)
        except (socket.timeout, BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                self.reset = True
                return b""
            raise

    def start_reading(self):
        """Read in a thread from now on (the socket blocks without timeout)."""
        if self.thread is None:
            self.sock.settimeout(None)
            self.thread = threading.Thread(target=self._reader, daemon=True)
            self.thread.start()

    def _reader(self):
        while not self.eof:
            self.go.wait()
            try:
                data = self.sock.recv(65536)
            except OSError:
                self.reset = True
                data = b""
            self._feed(data)

    def pause(self):
        """Stop reading (after the recv in progress): the socket fills up."""
        self.go.clear()

    def resume(self):
        self.go.set()

    def pump(self):
        """Non-blocking: receive whatever is available.  Returns False once
        the server has closed the connection."""
        self.sock.settimeout(0.0)
        while True:
            data = self._recv(262144)
            if data is None:
                return True
            self._feed(data)
            if not data:
                return False

    def _wait(self, pred, deadline):
        """Until pred() (True), the end of the connection or the deadline
        (False).  Reads the socket itself unless a reader thread does."""
        with self.cond:
            while True:
                if pred():
                    return True
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    return False
                if self.thread is not None:
                    self.cond.wait(left)
                    continue
                self.sock.settimeout(left)
                data = self._recv(65536)
                if data is not None:
                    self._feed(data)

    def _deadline(self, timeout):
        """A wait's deadline: timeout (default self.timeout) seconds, scaled."""
        return time.monotonic() + scaled(self.timeout if timeout is None else timeout)

    def _diag(self, what):
        tail = self.history[-8:] + (["%r<no-newline>" % self.partial] if self.partial else [])
        return "%s [%s] last lines received: %r" % (what, self.name or self.nick, tail)

    # ---- sending ----------------------------------------------------------
    def send_raw(self, data):
        if self.thread is None:
            self.sock.settimeout(scaled(self.timeout))  # pump() leaves it non-blocking
        self.sock.sendall(encode(data))

    def send(self, line):
        """Send one line; '\\n' is appended."""
        self.send_raw(encode(line) + b"\n")

    def try_send(self, line):
        """send(); False if the connection is broken."""
        try:
            self.send(line)
            return True
        except OSError:
            return False

    def send_lines(self, lines):
        """Send several lines in a single write (one TCP segment if small)."""
        self.send_raw(b"".join(encode(l) + b"\n" for l in lines))

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes a reader thread
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.go.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- consuming lines (the queue) ----------------------------------------
    def readline(self, timeout=None):
        """The next line (without '\\n').  Raises on timeout or EOF."""
        return self._readline_by(self._deadline(timeout))

    def _readline_by(self, deadline):
        if not self._wait(lambda: self.lines, deadline):
            if self.eof:
                raise ConnectionClosed(self._diag("connection closed by server"))
            raise ProtocolError(self._diag("timeout waiting for a line"))
        with self.cond:
            return self.lines.pop(0)

    def try_readline(self, timeout=0.0):
        """The next line, or None if none arrives within timeout."""
        try:
            return self.readline(timeout)
        except ConnectionClosed:
            raise
        except ProtocolError:
            return None

    def expect_next(self, pattern, timeout=None):
        """The very next line must fullmatch pattern (a regex string)."""
        line = self.readline(timeout)
        if re.fullmatch(pattern, line) is None:
            raise ProtocolError(self._diag("expected %r as next line, got %r" % (pattern, line)))
        return line

    def expect(self, pattern, timeout=None):
        """Skip lines until one fullmatches pattern; return it.

        Skipped lines are kept in self.skipped so a test can inspect them.
        """
        deadline = self._deadline(timeout)
        while True:
            try:
                line = self._readline_by(deadline)
            except ConnectionClosed:
                raise ConnectionClosed(self._diag("closed while waiting for %r" % pattern))
            except ProtocolError:
                raise ProtocolError(self._diag("timeout waiting for %r" % pattern))
            if re.fullmatch(pattern, line):
                return line
            self.skipped.append(line)

    def expect_exact(self, text, timeout=None):
        """Skip lines until one equals text exactly."""
        return self.expect(re.escape(text), timeout)

    def expect_next_exact(self, text, timeout=None):
        return self.expect_next(re.escape(text), timeout)

    def expect_err(self, code, timeout=None):
        """The next line must be 'ERR <code> <NAME> [text]'."""
        return self.expect_next(r"ERR %d [A-Z_]+( .*)?" % code, timeout)

    def expect_closed(self, timeout=None):
        """Read (and return) lines until the server closes; fail on timeout."""
        deadline = self._deadline(timeout)
        got = []
        while True:
            try:
                got.append(self._readline_by(deadline))
            except ConnectionClosed:
                return got
            except ProtocolError:
                raise ProtocolError(self._diag("server did not close the connection"))

    def assert_silent(self, timeout=0.3):
        """Nothing must arrive within timeout (use only where no marker works)."""
        line = self.try_readline(timeout)
        assert line is None, self._diag("expected silence, got %r" % line)

    def drain(self, timeout=0.1):
        """Consume whatever arrives within timeout; return the lines."""
        got = []
        while True:
            line = self.try_readline(timeout)
            if line is None:
                return got
            got.append(line)

    # ---- searching what arrived (the history) ----------------------------------
    def snapshot(self):
        with self.cond:
            return list(self.history)

    def wait_line(self, pattern, timeout=5.0, start=0):
        """Index in history of the first line (from start) that the regex
        searches successfully, waiting up to timeout; None if none came."""
        rx = re.compile(pattern)
        found = []

        def match():
            for i in range(start, len(self.history)):
                if rx.search(self.history[i]):
                    found.append(i)
                    return True
            return False
        self._wait(match, self._deadline(timeout))
        return found[0] if found else None

    def wait_count(self, pattern, n, timeout=5.0):
        """Until n lines match the regex (or EOF, or timeout); the count."""
        rx = re.compile(pattern)

        def count():
            return sum(1 for x in self.history if rx.search(x))
        self._wait(lambda: count() >= n, self._deadline(timeout))
        with self.cond:
            return count()

    def wait_eof(self, timeout=5.0):
        """True once the server has closed the connection (within timeout)."""
        self._wait(lambda: False, self._deadline(timeout))
        return self.eof

    def bye(self):
        """The BYE/ERR 500 line the client got, if any."""
        for x in self.snapshot():
            if x.startswith("BYE ") or x.startswith("ERR 500"):
                return x
        return None

    # ---- protocol helpers -----------------------------------------------------
    def register(self, nick=None, timeout=None):
        """Send nick and require OK NICK nick, OK JOIN lobby (after HELLO)."""
        nick = nick or self.nick
        with self.cond:     # the HELLO line: not yet read by the caller?
            read = any(x.startswith("HELLO ") for x in self.history) and \
                not any(x.startswith("HELLO ") for x in self.lines)
        if self.hello is None and not read:
            self.hello = self.expect(r"HELLO forkchatd/\S+( .*)?", timeout)
        self.send(nick)
        self.expect_next_exact("OK NICK %s" % nick, timeout)
        self.expect_next_exact("OK JOIN lobby", timeout)
        self.nick = nick
        return self

    def listing(self, command, what, timeout=None):
        """Send a listing command; return (entries, count) up to 'END <what>'.

        Lines that are not part of the listing (notices that arrive in
        between) are kept in self.skipped.
        """
        self.send(command)
        entries = []
        prefix = {"LIST": "ROOM ", "USERS": "USER ", "HELP": "HELP",
                  "STATS": "STAT "}[what]
        deadline = self._deadline(timeout)
        while True:
            line = self._readline_by(deadline)
            if line.startswith("END %s" % what):
                m = re.fullmatch(r"END %s(?: (\d+))?" % what, line)
                if m is None:
                    raise ProtocolError(self._diag("bad END line %r" % line))
                return entries, (int(m.group(1)) if m.group(1) else None)
            if line.startswith(prefix):
                entries.append(line)
            elif line.startswith("ERR "):
                raise ProtocolError(self._diag("%s refused: %r" % (command, line)))
            else:
                self.skipped.append(line)

    def rooms(self):
        """/list as {name: (members, owner)}; asserts END LIST count."""
        entries, count = self.listing("/list", "LIST")
        assert count == len(entries), (count, entries)
        out = {}
        for e in entries:
            _, name, members, owner = e.split(" ")
            out[name] = (int(members), owner)
        assert entries and entries[0].startswith("ROOM lobby "), entries
        return out

    def users(self, all_=False):
        """/users [all] as a list of (nick, room) in server order."""
        entries, count = self.listing("/users all" if all_ else "/users", "USERS")
        assert count == len(entries), (count, entries)
        return [tuple(e.split(" ")[1:3]) for e in entries]

    def stats(self):
        """/stats as an ordered dict {name: int}; asserts END STATS count."""
        entries, count = self.listing("/stats", "STATS")
        assert count == len(entries), (count, entries)
        out = {}
        for e in entries:
            m = re.fullmatch(r"STAT ([a-z0-9_]+) (\d+)", e)
            if m is None:
                raise ProtocolError(self._diag("bad STAT line %r" % e))
            out[m.group(1)] = int(m.group(2))
        return out

    def sync(self, peer, text=None):
        """Barrier: self says text in its room; peer waits for it.

        Since the server keeps per-client order, every line the server
        produced for peer before this message arrives before it.  Returns the
        lines peer skipped on the way.
        """
        return self.barrier([peer], text)[0]

    def barrier(self, peers, text=None):
        """Like sync() for several peers in self's room: one message, every
        peer waits for it.  Returns the list of skipped lines per peer."""
        text = text or "sync-%d" % time.monotonic_ns()
        self.send(text)
        out = []
        for peer in peers:
            peer.skipped = []
            peer.expect(r"MSG \S+ %s %s" % (re.escape(self.nick), re.escape(text)))
            out.append(list(peer.skipped))
        return out

    def quit(self, text=None):
        self.send("/quit" if text is None else "/quit %s" % text)
        got = self.expect_closed()
        assert any(l.startswith("BYE QUIT") for l in got), got
        self.close()
        return got


def pump_all(clients, timeout):
    """Wait up to timeout for any of clients to become readable, then pump
    every readable one.  Returns the clients that received data."""
    sel = selectors.DefaultSelector()
    try:
        for c in clients:
            if not c.eof:
                sel.register(c.sock, selectors.EVENT_READ, c)
        ready = [key.data for key, _ in sel.select(timeout)] if sel.get_map() else []
    finally:
        sel.close()
    for c in ready:
        c.pump()
    return ready


def connect_many(port, n, prefix, timeout=10.0):
    """Open and register n clients named prefix0..prefix{n-1}."""
    out = []
    for i in range(n):
        c = ChatClient(port, timeout=timeout, name="%s%d" % (prefix, i))
        c.register("%s%d" % (prefix, i))
        out.append(c)
    return out


def exchange(clients, per, room="lobby", timeout=60.0):
    """Every client sends per numbered lines "m I SEQ" into room (all
    clients must be in it); check that every client receives every other
    client's lines exactly once and in order.  Returns (errors, short,
    elapsed): errors are out-of-place lines (wrong order, duplicate, own,
    other room, BYE/ERR), short the (index, received) of clients that got
    fewer than (len(clients) - 1) * per within timeout."""
    n = len(clients)
    for c in clients:
        c.keep_history = False
    index = {c.nick: i for i, c in enumerate(clients)}
    pos = {id(c): i for i, c in enumerate(clients)}
    expected = [[0] * n for _ in range(n)]  # receiver -> sender -> next seq
    received = [0] * n
    errors = []
    want = (n - 1) * per

    def consume(c):
        i = pos[id(c)]
        lines, c.lines = c.lines, []
        exp = expected[i]
        for line in lines:
            if not line.startswith("MSG "):
                if line.startswith(("BYE", "ERR")):
                    errors.append((i, line))
                continue
            _, where, nick, text = line.split(" ", 3)
            s = index[nick]
            seq = int(text.split(" ")[2])
            if s == i or where != room or seq != exp[s]:
                errors.append((i, line, exp[s]))
            exp[s] = seq + 1
            received[i] += 1

    start = time.monotonic()
    for seq in range(per):
        for i, c in enumerate(clients):
            c.send("m %d %d" % (i, seq))
        for c in pump_all(clients, 0):
            consume(c)
    deadline = start + scaled(timeout)
    while sum(received) < n * want and time.monotonic() < deadline and not errors:
        for c in pump_all(clients, 1.0):
            consume(c)
    elapsed = time.monotonic() - start
    short = [(i, r) for i, r in enumerate(received) if r != want]
    if not short:
        assert all(expected[i][s] == per for i in range(n) for s in range(n) if s != i)
    return errors, short, elapsed


# ---- sequence-numbered traffic (fault matrix, sweep, soak) -----------------------
SEQ_RX = re.compile(r"^MSG (\S+) (\S+) seq (\S+) (\d+)")


def seq_received(client):
    """{sender: [n, ...]} of 'seq SENDER n' messages the client got."""
    got = {}
    for line in client.snapshot():
        m = SEQ_RX.match(line)
        if m and m.group(2) == m.group(3):
            got.setdefault(m.group(2), []).append(int(m.group(4)))
    return got


def check_seq(receivers, sent, complete=()):
    """Verify sequence-numbered delivery.

    sent: {sender: count sent}.  Every receiver must get, from every sender
    other than itself, a gap-free, duplicate-free run 1..k in order; for
    pairs where both are in `complete`, k must equal the count sent.
    Returns a list of problem strings (empty = fine).
    """
    problems = []
    complete = set(complete)
    for r in receivers:
        got = seq_received(r)
        for s, n in sent.items():
            if s == r.nick:
                continue
            seq = got.get(s, [])
            if seq != list(range(1, len(seq) + 1)):
                dups = len(seq) - len(set(seq))
                problems.append("%s<-%s out of order/gap/dup (%d dups, first %s)"
                                % (r.nick, s, dups, seq[:6]))
            elif r.nick in complete and s in complete and len(seq) != n:
                problems.append("%s<-%s got %d of %d" % (r.nick, s, len(seq), n))
    return problems
