/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sessiond.c - main of forkchatd-session: the spawner's own small image.
 *
 * The server parent forks the spawner at startup, and the spawner execs
 * this program once (spawner.c, spawner_start()).  It links libc and the
 * session code only: no ICU, no libstdc++, no libunistring (those are the
 * parent's, for the name profile and the log).  Every session child is
 * then cloned from this image, so it has page tables and private pages
 * for this program alone, not for the libraries of the parent (issue 17,
 * goal 3: 56-60 kB of page tables per child before, when the spawner was
 * a fork of forkchatd).
 *
 * The spawner reads one request at a time on a unix socketpair: the slot
 * number, and the client's socket and the read end of its pipe as
 * SCM_RIGHTS.  It creates the child with clone(CLONE_PARENT | SIGCHLD), so
 * the child is the server parent's child: the parent's SIGCHLD and
 * waitpid() reap it, its PR_SET_PDEATHSIG names the parent, and its
 * getppid() is the parent's pid, exactly as if the parent had forked it.
 * It answers with the pid (or the errno), closes its copies of the
 * descriptors, and waits for the next.  It holds no chat state and makes
 * no decision; it exits when the parent closes its end and dies with it.
 *
 * Usage (by spawner.c only, never by hand):
 *     forkchatd-session SOCKFD UPFD PARENTPID MAXLINE
 * Anything else exits with status 2 and a line on stderr.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/proto.h"
#include "server/session.h"
#include "server/spawner.h"
#include "sys/failpoint.h"
#include "sys/proc.h"

#ifdef FIU_ENABLE
#include <fiu-control.h>
#endif

struct sessiond {
	int fd;       /* our end of the socketpair */
	int up_w;     /* write end of the shared pipe, for the sessions */
	pid_t parent; /* the server parent */
	size_t max_line;
};

/* One request and its two descriptors; 0 at EOF, -1 on error. */
static int
recv_req(int fd, struct spawner_req *rq, int fds[2])
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { rq, sizeof(*rq) };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	while ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return (int)n;
	cm = CMSG_FIRSTHDR(&mh);
	if (n != (ssize_t)sizeof(*rq) || cm == NULL ||
	    cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(2 * sizeof(int))) {
		errno = EPROTO;
		return -1;
	}
	memcpy(fds, CMSG_DATA(cm), 2 * sizeof(int));
	return 1;
}

#ifdef FIU_ENABLE
/*
 * Fault builds under fiu-run: libfiu gives each forked process its own
 * control FIFO from an atfork handler, which a raw clone() does
 * not run; so the child asks for one itself (fault/README.md: points are
 * switched on in a child through its FIFO).  Its thread gets every signal
 * blocked, as under fault/sigblock.py.
 */
static void
fiu_reattach(void)
{
	const char *base = getenv("FIU_CTRL_FIFO");
	sigset_t all, old;

	if (base == NULL || *base == '\0')
		return;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	(void)fiu_rc_fifo(base);
	sigprocmask(SIG_SETMASK, &old, NULL);
}
#else
#define fiu_reattach() ((void)0)
#endif

/*
 * The new session child: same hygiene as a child forked by the parent, but
 * most of it is inherited from the spawner, which did it once at its start
 * (main(): proc_child_setup()): ^C, SIGHUP and SIGQUIT ignored, SIGCHLD
 * default, proc_child_sigs() blocked, and no descriptor but 0-2, its
 * socket, up_w and the request's two (closed after each answer).  So the
 * child closes the spawner's socket (serve()), names itself and dies with
 * the parent: 4 system calls, not 11, and session_run() does not block
 * the signals again (issue 17, goal 5: a connect storm's
 * session children made ~30 system calls to register, the floor's 5).
 */
static __attribute__((noreturn)) void
session_child(const struct sessiond *sd, int slot, int sock, int down)
{
	struct session_cfg cfg = { sock, down, sd->up_w, slot, sd->max_line,
		sd->parent, 1 };

	(void)prctl(PR_SET_NAME, "forkchatd");
	if (proc_die_with(sd->parent, SIGKILL) < 0)
		proc_exit(1);
	fiu_reattach();
	proc_exit(session_run(&cfg));
}

/*
 * A fork whose child's parent is our parent.  The raw system call: glibc's
 * fork() has no such flag, and its clone() wants a new stack.
 */
static pid_t
clone_parent(void)
{
	return (pid_t)syscall(SYS_clone,
	    (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0UL);
}

static __attribute__((noreturn)) void
serve(const struct sessiond *sd)
{
	struct spawner_req rq = { 0, 0 };
	struct spawner_ans an;
	int fds[2], r;
	pid_t pid;

	for (;;) {
		if ((r = recv_req(sd->fd, &rq, fds)) == 0)
			proc_exit(0); /* the parent closed: shutdown */
		if (r < 0)
			proc_exit(errno == EPROTO ? 2 : 1);
		an.err = rq.inject;
		pid = rq.inject ? -1 : clone_parent();
		if (pid == 0) {
			close(sd->fd);
			session_child(sd, (int)rq.slot, fds[0], fds[1]);
		}
		if (pid < 0 && !rq.inject)
			an.err = errno;
		an.pid = (int32_t)pid;
		close(fds[0]);
		close(fds[1]);
		if (send(sd->fd, &an, sizeof(an), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(an))
			proc_exit(1);
	}
}

/* A decimal argument in [lo, hi], or -1. */
static long long
arg(const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	return v;
}

int
main(int argc, char **argv)
{
	/* SOCKFD UPFD PARENTPID MAXLINE: the bounds of each */
	static const long long lo[4] = { 3, 3, 1, PROTO_MIN_LINE_LIMIT };
	static const long long hi[4] = { INT_MAX, INT_MAX, INT_MAX,
		PROTO_MAX_LINE_LIMIT };
	long long v[4] = { -1, -1, -1, -1 };
	struct sessiond sd;
	int keep[2], i;

	FAILPOINT_INIT();
	for (i = 0; i < 4 && argc == 5; i++)
		v[i] = arg(argv[i + 1], lo[i], hi[i]);
	if (argc != 5 || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0 ||
	    v[0] == v[1]) {
		fprintf(stderr,
		    "forkchatd-session: started by forkchatd only "
		    "(usage: forkchatd-session SOCKFD UPFD PARENTPID MAXLINE)\n");
		return 2;
	}
	sd.fd = (int)v[0];
	sd.up_w = (int)v[1];
	sd.parent = (pid_t)v[2];
	sd.max_line = (size_t)v[3];
	(void)prctl(PR_SET_NAME, SPAWNER_NAME);
	keep[0] = sd.fd;
	keep[1] = sd.up_w;
	proc_child_setup(sd.parent, keep, 2);
	serve(&sd);
}
