/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * daemon.h - detach from the terminal, and the pid file.
 */
#ifndef FORKCHAT_DAEMON_H
#define FORKCHAT_DAEMON_H

/*
 * Double-fork into the background.  Returns in the daemon with a "ready"
 * fd that daemon_ready() closes once startup is complete; the launching
 * process waits for it and exits 0, or 1 if the daemon died first.
 * Returns -1 (in the caller) if the first fork fails.
 */
int daemon_start(void);
void daemon_ready(int fd);

/*
 * In the daemon: close every fd the launcher left open except 0-2 and
 * keep[0..n) (at most 8; negative entries are ignored).
 */
void daemon_close_fds(const int *keep, int n);

/*
 * Write getpid() to path (absolute), safely (safefile.h): -1 with errno on
 * failure, and daemon_pidfile_error() says why in a sentence.
 */
int daemon_write_pidfile(const char *path);
const char *daemon_pidfile_error(void);

#endif
