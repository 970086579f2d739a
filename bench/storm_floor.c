/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * storm_floor.c - the connect-storm floor (issue 17, goal 5): the least a
 * process-per-client design can do per connection.
 *
 *   forkchat-storm-floor -p PORT [-b ADDR]
 *
 * One process listens (backlog 4096, as Redis's --tcp-backlog in the
 * bench), accepts each connection and forks one child per connection
 * after the accept, with the client's socket: the design's process per
 * client.  The child reads the client's first line (forkchat-load -s
 * floor-storm sends the nickname line it sends forkchatd) and answers one
 * line ("OK"), in one write: the same round trip as a forkchat
 * registration (nickname -> HELLO, OK NICK, OK JOIN) or a Redis SUBSCRIBE.
 * Then it keeps the connection until the client closes it, as a session
 * child does.  Nothing else: no spawner, no admission, no names, no rooms,
 * no log, no exec.  Linked static (bench/bench.mk), like the session image
 * every forkchatd session child is cloned from, and the child made by the
 * raw clone() system call as forkchatd's spawner makes them (glibc's fork()
 * also runs its at-fork work, which writes pages in the child), so that a
 * child starts with as few pages to copy as this design allows.
 *
 * The parent reaps its children after every accept and every 100 ms (an
 * interval timer's SIGALRM interrupts accept(): not SO_RCVTIMEO, which an
 * accepted socket would inherit; a child inherits no timer); on SIGTERM or
 * SIGINT it sends SIGTERM to each child it has not reaped (by PID), waits
 * for them and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#define FIRST_LINE_MAX 512

static volatile sig_atomic_t stop;
static pid_t *kids; /* live children, in no order */
static size_t nkids, capkids;

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_alarm(int sig)
{
	(void)sig; /* only interrupts accept() */
}

/* The child: first line in, one line out, then hold until EOF. */
static void
child(int fd)
{
	static const char ok[] = "OK\n";
	char buf[FIRST_LINE_MAX];
	size_t len = 0;
	ssize_t r;

	while (memchr(buf, '\n', len) == NULL) {
		if (len == sizeof(buf))
			_exit(1);
		r = read(fd, buf + len, sizeof(buf) - len);
		if (r == 0 || (r < 0 && errno != EINTR))
			_exit(r == 0 ? 0 : 1);
		if (r > 0)
			len += (size_t)r;
	}
	if (write(fd, ok, sizeof(ok) - 1) != (ssize_t)(sizeof(ok) - 1))
		_exit(1);
	for (;;) {
		r = read(fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno != EINTR))
			_exit(0);
	}
}

static void
forget(pid_t pid)
{
	size_t i;

	for (i = 0; i < nkids; i++)
		if (kids[i] == pid) {
			kids[i] = kids[--nkids];
			return;
		}
}

static void
reap(int options)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, options)) > 0)
		forget(pid);
}

static int
listen_on(const char *addr, int port)
{
	struct sockaddr_in a;
	int fd, one = 1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "forkchat-storm-floor: bad address %s\n", addr);
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 4096) < 0) {
		perror("forkchat-storm-floor: listen");
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct itimerval tick = { { 0, 100000 }, { 0, 100000 } };
	struct sigaction sa;
	const char *addr = "127.0.0.1";
	int lfd, cfd, opt, port = 0;
	pid_t pid;
	size_t i;

	while ((opt = getopt(argc, argv, "p:b:")) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'b')
			addr = optarg;
		else
			port = -1;
	}
	if (port < 1 || port > 65535 || optind != argc) {
		fprintf(
		    stderr, "usage: forkchat-storm-floor -p PORT [-b ADDR]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: accept() returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0)
		return 1;
	sa.sa_handler = on_alarm;
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		return 1;
	if ((lfd = listen_on(addr, port)) < 0 ||
	    setitimer(ITIMER_REAL, &tick, NULL) < 0)
		return 1;
	while (!stop) {
		cfd = accept(lfd, NULL, NULL);
		if (cfd >= 0) {
			if (nkids == capkids) {
				capkids = capkids ? capkids * 2 : 1024;
				kids = realloc(kids, capkids * sizeof(pid_t));
				if (kids == NULL)
					return 1;
			}
			pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD,
			    NULL, NULL, NULL, 0UL);
			if (pid == 0) {
				signal(SIGTERM, SIG_DFL);
				signal(SIGINT, SIG_DFL);
				close(lfd);
				child(cfd);
			}
			close(cfd);
			if (pid > 0)
				kids[nkids++] = pid;
		}
		reap(WNOHANG);
	}
	close(lfd);
	for (i = 0; i < nkids; i++)
		kill(kids[i], SIGTERM);
	reap(0);
	return 0;
}
