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

/* Write getpid() to path; -1 with errno on failure. */
int daemon_write_pidfile(const char *path);

#endif
