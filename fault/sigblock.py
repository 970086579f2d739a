"""Exec argv[1:] with every signal blocked.

libfiu's fiu_run_preload.so starts its remote-control thread in a library
constructor, before forkchatd's main() blocks the signals it waits for with
sigtimedwait().  That thread inherits the signal mask at creation; with an
empty mask it would take (and lose to the no-op handler) every SIGUSR1,
SIGCHLD, SIGIO, SIGHUP or SIGTERM that arrives while the main thread is busy.
Starting the process with everything blocked gives the thread a full mask;
forkchatd only ever adds to its mask (children set their own), so the server
itself behaves as usual.  See fault/README.md, "Harness notes".
"""
import os
import signal
import sys

signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
os.execvp(sys.argv[1], sys.argv[1:])
