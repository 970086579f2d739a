/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * daemon.c - detach like Redis's daemonize(), but report readiness.
 *
 * Startup errors must reach the terminal, so the launching process does
 * not exit at once: it waits on a pipe until the daemon writes "ok" after
 * it has written its pid file, or until the pipe closes because the daemon
 * died.  Only then does it exit, 0 or 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/daemon.h"
#include "sys/failpoint.h"
#include "sys/proc.h"
#include "sys/safefile.h"

int
daemon_start(void)
{
	char ok[2] = { 0, 0 };
	int p[2], fd, saved;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		saved = errno;
		close(p[0]);
		close(p[1]);
		errno = saved;
		return -1;
	}
	if (pid > 0) { /* the launching process */
		close(p[1]);
		while (read(p[0], ok, sizeof(ok)) < 0 && errno == EINTR)
			;
		proc_exit(ok[0] == 'o' ? 0 : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		proc_exit(1);
	if ((pid = fork()) < 0)
		proc_exit(1);
	if (pid > 0)
		proc_exit(0); /* not a session leader: no tty ever again */
	umask(022);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

void
daemon_ready(int fd)
{
	if (fd < 0)
		return;
	(void)!write(fd, "ok", 2);
	close(fd);
	/* stderr stayed open until now so late startup errors were visible */
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

/* Keep only fds 0-2 and keep[0..n); close every other one. */
void
daemon_close_fds(const int *keep, int n)
{
	int sorted[8], i, j, t;
	unsigned int from = 3;

	if (n > (int)(sizeof(sorted) / sizeof(sorted[0])))
		n = (int)(sizeof(sorted) / sizeof(sorted[0]));
	for (i = 0; i < n; i++)
		sorted[i] = keep[i];
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (sorted[j] < sorted[i])
				t = sorted[i], sorted[i] = sorted[j],
				sorted[j] = t;
	for (i = 0; i < n; i++) {
		if (sorted[i] < 0 || (unsigned int)sorted[i] < from)
			continue;
		if ((unsigned int)sorted[i] > from)
			(void)close_range(from, (unsigned int)sorted[i] - 1, 0);
		from = (unsigned int)sorted[i] + 1;
	}
	(void)close_range(from, ~0U, 0);
}

static char pid_err[PATH_MAX + 256];

const char *
daemon_pidfile_error(void)
{
	return pid_err;
}

/*
 * Through safefile.c: the directory checked level by level, the file
 * opened O_NOFOLLOW without O_TRUNC and checked (regular, one link, ours
 * or the service user's) before it is truncated on its descriptor, so a
 * link planted in its place is refused and nobody else's file is cut.
 */
int
daemon_write_pidfile(const char *path)
{
	char dir[PATH_MAX], buf[32];
	const char *base;
	int dfd, fd, n, saved;
	ssize_t w;

	pid_err[0] = '\0';
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		snprintf(pid_err, sizeof(pid_err), "%s", strerror(errno));
		return -1;
	}
	base = strrchr(path, '/');
	if (base == NULL || base[1] == '\0') {
		errno = EINVAL;
		snprintf(pid_err, sizeof(pid_err),
		    "%s: not an absolute file name", path);
		return -1;
	}
	dir[base - path == 0 ? 1 : base - path] = '\0';
	base++;
	dfd = safefile_dir(
	    dir, 0, "pid file directory", NULL, 0, pid_err, sizeof(pid_err));
	if (dfd < 0)
		return -1;
	fd = safefile_open(dfd, base, path, 0, pid_err, sizeof(pid_err));
	if (fd < 0) {
		saved = errno;
		close(dfd);
		errno = saved;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	w = -1;
	if (ftruncate(fd, 0) == 0)
		w = write(fd, buf, (size_t)n);
	if (w != n) {
		saved = w < 0 ? errno : EIO; /* short write: EIO */
		close(fd);
		(void)unlinkat(dfd, base, 0);
		close(dfd);
		snprintf(
		    pid_err, sizeof(pid_err), "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	close(dfd);
	return close(fd);
}
