/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spawner.c - the session spawner, and the parent's side of it.
 *
 * A session child forked straight from the server parent inherits the
 * parent's address space: its heap, grown by every burst and never given
 * back to the kernel whole, the client table, ICU's data once a nickname
 * was checked.  Copy-on-write shares the pages, but every child still gets
 * page tables for all of it, and counts it in its RSS (issue 17: per-child
 * RSS 3.1 -> 18.4 MB after a burst).  So the parent forks one small
 * process at startup, before any of that exists, and that process creates
 * every session child: each one starts from the spawner's small image.
 *
 * The spawner holds no chat state and makes no decision.  It reads one
 * request at a time on a unix socketpair: the slot number, and the
 * client's socket and the read end of its pipe as SCM_RIGHTS.  It creates
 * the child with clone(CLONE_PARENT | SIGCHLD), so the child is the server
 * parent's child: the parent's SIGCHLD and waitpid() reap it, its
 * PR_SET_PDEATHSIG names the parent, and its getppid() is the parent's pid,
 * exactly as if the parent had forked it.  It answers with the pid (or the
 * errno), closes its copies of the descriptors, and waits for the next.
 *
 * The parent may send several requests before it reads their answers
 * (in order: the spawner serves one at a time), so that it prepares the
 * next connection while the spawner clones (server.c, SPAWN_WINDOW); each
 * wait for an answer is bounded by SO_RCVTIMEO.  If the spawner dies, the parent
 * reaps it, logs it, and starts a new one at the next connection; that one
 * is forked from the parent as it is then (so its children are as large as
 * a fork of the parent would be: service first).  The spawner exits when
 * the parent closes its end (shutdown) and dies with the parent.
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/session.h"
#include "server/spawner.h"
#include "sys/failpoint.h"
#include "sys/proc.h"
#include "sys/log.h"

#ifdef FIU_ENABLE
#include <fiu-control.h>
#include <stdlib.h>
#endif

#define ANSWER_SECS 5 /* a spawner that takes longer is dead to us */

struct spawn_req {
	int32_t slot;
	int32_t inject; /* errno to answer instead of forking, or 0 */
};

struct spawn_ans {
	int32_t pid; /* > 0, or -1 */
	int32_t err; /* errno of the failed clone */
};

/* ---- the spawner process ------------------------------------------- */

/* One request and its two descriptors; 0 at EOF, -1 on error. */
static int
recv_req(int fd, struct spawn_req *rq, int fds[2])
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

/* The new session child: same hygiene as a child forked by the parent. */
static __attribute__((noreturn)) void
session_child(const struct spawner *sp, int slot, int sock, int down)
{
	struct session_cfg cfg = { sock, down, sp->up_w, slot, sp->max_line,
		sp->parent };
	int keep[3] = { sock, down, sp->up_w };

	(void)prctl(PR_SET_NAME, "forkchatd");
	proc_child_setup(sp->parent, keep, 3);
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
spawner_main(const struct spawner *sp, int fd)
{
	struct spawn_req rq = { 0, 0 };
	struct spawn_ans an;
	int fds[2], r;
	pid_t pid;

	for (;;) {
		if ((r = recv_req(fd, &rq, fds)) == 0)
			proc_exit(0); /* the parent closed: shutdown */
		if (r < 0)
			proc_exit(errno == EPROTO ? 2 : 1);
		an.err = rq.inject;
		pid = rq.inject ? -1 : clone_parent();
		if (pid == 0) {
			close(fd);
			session_child(sp, (int)rq.slot, fds[0], fds[1]);
		}
		if (pid < 0 && !rq.inject)
			an.err = errno;
		an.pid = (int32_t)pid;
		close(fds[0]);
		close(fds[1]);
		if (send(fd, &an, sizeof(an), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(an))
			proc_exit(1);
	}
}

/* ---- the parent's side ---------------------------------------------- */

int
spawner_start(struct spawner *sp, pid_t parent, int up_w, size_t max_line)
{
	struct timeval tv = { ANSWER_SECS, 0 };
	int sv[2], keep[2];
	pid_t pid;

	sp->pid = 0;
	sp->fd = -1;
	sp->parent = parent;
	sp->up_w = up_w;
	sp->max_line = max_line;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		keep[0] = sv[1];
		keep[1] = up_w;
		proc_child_setup(parent, keep, 2);
		(void)prctl(PR_SET_NAME, "forkchatd-spawn");
		(void)malloc_trim(0); /* a restart: give back what it can */
		spawner_main(sp, sv[1]);
	}
	close(sv[1]);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sp->pid = pid;
	sp->fd = sv[0];
	sp->starts++;
	log_info("spawner started pid=%d", (int)pid);
	return 0;
}

/* The spawner did not answer: it is dead to us (reaped later). */
static void
lost(struct spawner *sp, const char *what)
{
	log_error("spawner pid=%d: %s: %s", (int)sp->pid, what,
	    errno == EAGAIN ? "no answer" : strerror(errno));
	if (sp->pid > 0)
		kill(sp->pid, SIGKILL);
	close(sp->fd);
	sp->fd = -1;
	errno = EPIPE;
}

static int
send_req(struct spawner *sp, struct spawn_req *rq, int sock, int down)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { rq, sizeof(*rq) };
	int fds[2] = { sock, down };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	while ((n = sendmsg(sp->fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(*rq) ? 0 : -1;
}

int
spawner_request(struct spawner *sp, int slot, int sock, int down, int inject)
{
	struct spawn_req rq = { slot, inject };
	int e;

	if (sp->fd < 0) {
		if (sp->pid > 0) { /* lost, not reaped yet */
			errno = EPIPE;
			return -1;
		}
		if (spawner_start(sp, sp->parent, sp->up_w, sp->max_line) < 0) {
			e = errno; /* the caller logs it for the client too */
			log_error(
			    "spawner: cannot start a new one: %s", strerror(e));
			errno = e;
			return -1;
		}
	}
	if (send_req(sp, &rq, sock, down) < 0) {
		lost(sp, "send");
		return -1;
	}
	return 0;
}

pid_t
spawner_answer(struct spawner *sp)
{
	struct spawn_ans an;
	ssize_t n;

	if (sp->fd < 0) { /* lost with this request in it */
		errno = EPIPE;
		return -1;
	}
	while ((n = recv(sp->fd, &an, sizeof(an), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(an)) {
		if (n >= 0)
			errno = n == 0 ? EPIPE : EPROTO;
		lost(sp, "answer");
		return -1;
	}
	if (an.pid <= 0) {
		errno = an.err ? an.err : EAGAIN;
		return -1;
	}
	return (pid_t)an.pid;
}

int
spawner_reaped(struct spawner *sp, pid_t pid, int status)
{
	if (pid != sp->pid || pid <= 0)
		return 0;
	if (WIFSIGNALED(status))
		log_error("spawner pid=%d killed by signal %d; a new one "
		          "starts with the next connection",
		    (int)pid, WTERMSIG(status));
	else if (sp->fd >= 0 || WEXITSTATUS(status) != 0)
		log_error("spawner pid=%d exited with status %d; a new one "
		          "starts with the next connection",
		    (int)pid, WEXITSTATUS(status));
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	sp->pid = 0;
	return 1;
}

void
spawner_stop(struct spawner *sp)
{
	int st;

	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (sp->pid <= 0)
		return;
	while (waitpid(sp->pid, &st, 0) < 0 && errno == EINTR)
		;
	sp->pid = 0;
}
