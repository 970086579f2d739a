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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "failpoint.h"

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
		child_exit(ok[0] == 'o' ? 0 : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		child_exit(1);
	if ((pid = fork()) < 0)
		child_exit(1);
	if (pid > 0)
		child_exit(0); /* not a session leader: no tty ever again */
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

int
daemon_write_pidfile(const char *path)
{
	char buf[32];
	int fd, n, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if ((saved = (int)write(fd, buf, (size_t)n)) != n) {
		saved = saved < 0 ? errno : EIO; /* short write: EIO */
		close(fd);
		unlink(path);
		errno = saved;
		return -1;
	}
	return close(fd);
}
