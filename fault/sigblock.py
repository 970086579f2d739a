# SPDX-License-Identifier: BSD-3-Clause
"""fiu-run's launch, with every signal blocked:

    sigblock.py [-x] [-p LIB] [-f CTRLPREFIX] [-c COMMAND]... -- PROGRAM [ARGS...]

takes the options of /usr/bin/fiu-run and exports exactly what that script
exports (LD_PRELOAD=/usr/lib/fiu/fiu_run_preload.so [fiu_posix_preload.so],
FIU_CTRL_FIFO, FIU_ENABLE = the -c commands, one a line), then execs PROGRAM
with all signals blocked.  -p LIB puts LIB first in LD_PRELOAD: the
harness's fiu_count.so (fault/fiu_count.c), which counts the preload's
failures for the fired column.

Why not fiu-run itself: fiu_run_preload.so starts its remote-control thread
in a library constructor, before forkchatd's main() blocks the signals it
waits for with sigtimedwait(), and that thread keeps the mask it was created
with.  fiu-run is a bash script, and bash unblocks SIGCHLD before `exec`, so
the thread would take SIGCHLD: the main loop would lose the wake-up, and the
thread's blocking open() of the control FIFO fails with EINTR, after which
libfiu silently ends the thread (no more fiu-ctrl).  With everything blocked
at exec the thread never takes a signal; forkchatd only ever adds to its own
mask (children set theirs), so the server behaves as usual.
"""
import os
import signal
import sys

PLIB = "/usr/lib/fiu"


def main(argv):
    posix, prefix, cmds, first = False, None, [], []
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "-x":
            posix = True
        elif argv[i] == "-p":
            i += 1
            first.append(argv[i])
        elif argv[i] == "-f":
            i += 1
            prefix = argv[i]
        elif argv[i] == "-c":
            i += 1
            cmds.append(argv[i])
        else:
            sys.exit("sigblock.py: unknown option %s" % argv[i])
        i += 1
    prog = argv[i + 1:]
    if not prog:
        sys.exit("usage: sigblock.py [-x] [-p lib] [-f prefix] [-c cmd]... -- prog [args]")
    libs = first + [PLIB + "/fiu_run_preload.so"] + ([PLIB + "/fiu_posix_preload.so"] if posix else [])
    os.environ["LD_PRELOAD"] = " ".join(libs)
    os.environ["FIU_CTRL_FIFO"] = prefix if prefix is not None else "/tmp/fiu-ctrl"
    os.environ["FIU_ENABLE"] = "\n".join(cmds)
    signal.pthread_sigmask(signal.SIG_BLOCK,
                           set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
    os.execvp(prog[0], prog)


if __name__ == "__main__":
    main(sys.argv[1:])
