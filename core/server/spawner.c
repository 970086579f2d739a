/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spawner.c - the parent's side of the session spawner.
 *
 * A session child forked straight from the server parent inherits the
 * parent's address space: its heap, grown by every burst and never given
 * back to the kernel whole, the client table, ICU's data once a nickname
 * was checked.  Copy-on-write shares the pages, but every child still gets
 * page tables for all of it, and counts it in its RSS (issue 17: per-child
 * RSS 3.1 -> 18.4 MB after a burst).  A child forked from a small process
 * forked at startup still mapped ICU, libstdc++ and libunistring (56-60 kB
 * of page tables each).  So the parent forks one process at startup, and
 * that process execs the session image (forkchatd-session, sessiond.c),
 * linked with libc only, which creates every session child.
 *
 * The image's path comes from /proc/self/exe, found once before the
 * server detaches (a missing image fails the start on the terminal), and
 * is exec'd by its absolute path: no PATH lookup.  The environment is
 * passed on (the sanitizers', libfiu's and gcov's settings are there).
 *
 * The parent sends one request per connection on a unix socketpair (the
 * slot, the socket and the pipe's read end as SCM_RIGHTS).  It may send
 * several before it reads their answers (in order: the spawner serves one
 * at a time), so that it prepares the next connection while the spawner
 * clones (server.c, SPAWN_WINDOW).  Each wait for an answer is bounded,
 * but not by the machine's speed: it waits in slices of ANSWER_SECS
 * (SO_RCVTIMEO), and after a silent slice it looks at the spawner in
 * /proc.  A spawner that is runnable or in an uninterruptible wait (R, D:
 * a loaded or throttled machine), or that used CPU since the last slice,
 * is still working: the wait goes on, up to ANSWER_CAP_SECS in all.  One
 * that is stopped (T), asleep and idle, or gone is dead to us after one
 * slice, as is any spawner at the cap, or at a slice's end when a
 * shutdown signal is pending (the parent's signals are blocked while it
 * waits: a SIGTERM is seen within a slice).  If the spawner dies, the
 * parent reaps it, logs it, and
 * starts a new one (exec'd again: as small) at the next connection.  The
 * spawner exits when the parent closes its end (shutdown) and dies with
 * the parent.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/spawner.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "sys/proc.h"
#include "sys/log.h"

#define ANSWER_SECS     5    /* silent and not working that long: dead */
#define ANSWER_CAP_SECS 60   /* silent that long, even while working: hung */
#define STOP_MS         5000 /* closed at shutdown and still there: killed */
#define STR_(x)         #x
#define STR(x)          STR_(x)

extern char **environ;

static char image[PATH_MAX]; /* the session image, or what was tried */

/* dir/rel if it is a regular executable file: 0, else -1 (errno). */
static int
try_image(const char *dir, const char *rel)
{
	char canon[PATH_MAX];
	struct stat st;
	int n;

	n = snprintf(image, sizeof(image), "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= sizeof(image)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (stat(image, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || access(image, X_OK) < 0) {
		errno = EACCES;
		return -1;
	}
	if (realpath(image, canon) != NULL) /* no "sbin/../lib" in the log */
		memcpy(image, canon, strlen(canon) + 1);
	return 0;
}

int
spawner_find_image(void)
{
	char dir[PATH_MAX], *slash;
	ssize_t n;
	int e;

	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0 || (size_t)n >= sizeof(dir) - 1) {
		snprintf(image, sizeof(image), "/proc/self/exe");
		return -1;
	}
	dir[n] = '\0';
	if ((slash = strrchr(dir, '/')) == NULL) {
		errno = ENOENT;
		return -1;
	}
	*slash = '\0';
	if (try_image(dir, SPAWNER_IMAGE) == 0)
		return 0;
	e = errno; /* the first one's, unless it is not there at all */
	if (try_image(dir, "../lib/forkchat/" SPAWNER_IMAGE) == 0)
		return 0;
	if (e == ENOENT)
		e = errno;
	(void)snprintf(image, sizeof(image), "%.3000s/%s (or ../lib/forkchat/)",
	    dir, SPAWNER_IMAGE); /* fits: 3000 + 40 < PATH_MAX */
	errno = e;
	return -1;
}

const char *
spawner_image(void)
{
	return image;
}

/*
 * In the forked spawner: keep sock and up_w open across exec and exec the
 * session image (sessiond.c) with them, the parent's pid and max_line.
 */
static __attribute__((noreturn)) void
exec_image(pid_t parent, int sock, int up_w, size_t max_line)
{
	char a[4][24];
	char *argv[6] = { SPAWNER_NAME, a[0], a[1], a[2], a[3], NULL };

	snprintf(a[0], sizeof(a[0]), "%d", sock);
	snprintf(a[1], sizeof(a[1]), "%d", up_w);
	snprintf(a[2], sizeof(a[2]), "%d", (int)parent);
	snprintf(a[3], sizeof(a[3]), "%zu", max_line);
	if (fcntl(sock, F_SETFD, 0) < 0 || fcntl(up_w, F_SETFD, 0) < 0 ||
	    image[0] != '/')
		proc_exit(126);
	execve(image, argv, environ);
	proc_exit(127); /* the parent logs the exit status */
}

/* ---- the parent's side ---------------------------------------------- */

int
spawner_start(struct spawner *sp, pid_t parent, int up_w, size_t max_line)
{
	int fd, keep[3];
	pid_t pid;

	sp->pid = 0;
	sp->fd = -1;
	sp->parent = parent;
	sp->up_w = up_w;
	sp->max_line = max_line;
	if ((pid = proc_fork_paired(&fd, ANSWER_SECS)) < 0)
		return -1;
	if (pid == 0) {
		keep[0] = fd;
		keep[1] = up_w;
		keep[2] =
		    failpoint_nth_fd(); /* fault builds: the sweep's page */
		log_close();
		proc_child_setup(parent, keep, keep[2] >= 0 ? 3 : 2);
		(void)prctl(PR_SET_NAME, SPAWNER_NAME);
		exec_image(parent, fd, up_w, max_line);
	}
	sp->pid = pid;
	sp->fd = fd;
	sp->starts++;
	log_info("spawner started pid=%d image=%s", (int)pid, image);
	return 0;
}

/*
 * The state letter of pid and its CPU time so far (utime + stime, in
 * clock ticks), from /proc/pid/stat: 0, or -1.  The name in parentheses
 * may hold anything: the fields are counted from its last ')'.
 */
static int
proc_cpu(pid_t pid, char *state, unsigned long long *ticks)
{
	char path[32], buf[512], *p, *end;
	unsigned long long ut;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == '\0')
		return -1;
	*state = p[2];
	/* utime and stime: the 12th and 13th fields after the name */
	for (i = 0; i < 12 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return -1;
	errno = 0;
	ut = strtoull(p + 1, &end, 10);
	*ticks = ut + strtoull(end, &p, 10);
	return errno != 0 || p == end ? -1 : 0;
}

/* A shutdown signal is pending (blocked in the parent, not taken yet). */
static int
shutdown_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 &&
	    (sigismember(&set, SIGTERM) == 1 ||
	        sigismember(&set, SIGINT) == 1 ||
	        sigismember(&set, SIGQUIT) == 1);
}

/*
 * A slice went by without an answer: wait another one?  Yes while the
 * spawner works (R or D, or its CPU time moved since the last slice:
 * *ticks, -1 before the first look) and the cap is not reached; started:
 * when the wait began.  Keeps errno; *why names a "no".
 */
static int
wait_more(struct spawner *sp, long long started, unsigned long long *ticks,
    const char **why)
{
	long long waited = clock_mono_ms() - started;
	unsigned long long now = 0;
	int e = errno, working;
	char state = '?';

	working = proc_cpu(sp->pid, &state, &now) == 0 &&
	    (state == 'R' || state == 'D' ||
	        (*ticks != ~0ULL && now != *ticks));
	*why = "answer";
	if (working && shutdown_pending()) {
		*why = "answer (shutdown pending)";
		working = 0;
	} else if (working &&
	    waited + ANSWER_SECS * 1000LL > ANSWER_CAP_SECS * 1000LL) {
		*why = "answer (still working after " STR(
		    ANSWER_CAP_SECS) " s: hung)";
		working = 0;
	} else if (working && *ticks == ~0ULL)
		log_info("spawner pid=%d: no answer in %d s, but working "
		         "(state %c); waiting up to %d s",
		    (int)sp->pid, ANSWER_SECS, state, ANSWER_CAP_SECS);
	*ticks = now;
	errno = e;
	return working;
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
send_req(struct spawner *sp, struct spawner_req *rq, int sock, int down)
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
	struct spawner_req rq = { slot, inject };
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
	unsigned long long ticks = ~0ULL; /* not looked at yet */
	const char *why = "answer";
	struct spawner_ans an;
	long long started = 0;
	ssize_t n;

	if (sp->fd < 0) { /* lost with this request in it */
		errno = EPIPE;
		return -1;
	}
	for (;;) {
		while ((n = recv(sp->fd, &an, sizeof(an), 0)) < 0 &&
		    errno == EINTR)
			;
		if (n >= 0 || errno != EAGAIN)
			break;
		if (started == 0) /* a clock read only for a slow answer */
			started = clock_mono_ms() - ANSWER_SECS * 1000LL;
		if (!wait_more(sp, started, &ticks, &why))
			break;
	}
	if (n != (ssize_t)sizeof(an)) {
		if (n >= 0)
			errno = n == 0 ? EPIPE : EPROTO;
		lost(sp, why);
		return -1;
	}
	if (ticks != ~0ULL)
		log_info("spawner pid=%d answered after %lld ms", (int)sp->pid,
		    clock_mono_ms() - started);
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
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	if (sp->pid <= 0)
		return;
	if (proc_reap_within(sp->pid, STOP_MS) > 0)
		log_warn("spawner pid=%d did not end in %d ms: killed",
		    (int)sp->pid, STOP_MS);
	sp->pid = 0;
}
