/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_spawner.c - unit tests for the parent's side of the session
 * spawner, spawner.c: finding the session image (next to the program or
 * in ../lib/forkchat/, refused when not a regular executable file, the
 * names tried when missing), starting the spawner when socketpair() or
 * fork() fails, the request/answer exchange against a fake spawner on a
 * real socketpair (the slot, the inject errno and both descriptors go
 * over; an answer's pid or errno comes back), a spawner that is lost
 * (send fails, EOF, a short answer: killed, EPIPE for what is pending),
 * the restart after it was reaped, and the reaping itself (what is
 * logged, and when).
 *
 * Seams (Makefile, WRAP_test_spawner): fork (never forks here: a fake
 * pid), socketpair, sendmsg and recv (fail on demand, else real), kill
 * (recorded, never sent), waitpid, readlink (the program's own path),
 * log_msg (recorded).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/spawner.h"
#include "sys/log.h"

#define FAKE_PID 4242

/* ---- seams ---------------------------------------------------------- */

static struct {
	int socketpair_err; /* errno to fail socketpair() with, or 0 */
	int fork_err;       /* errno to fail fork() with, or 0 */
	int sendmsg_eintr;  /* fail this many sendmsg() with EINTR first */
	int recv_eintr;     /* same for recv() */
	int forks;
	int kills, kill_sig;
	pid_t kill_pid;
	int waits, wait_eintr;
	const char *exe; /* what readlink("/proc/self/exe") gives, or NULL */
	ssize_t exe_len; /* or -1: readlink fails */
	int nlog;
	char log[8][256];
} w;

pid_t __real_fork(void);
int __real_socketpair(int, int, int, int[2]);
ssize_t __real_sendmsg(int, const struct msghdr *, int);
ssize_t __real_recv(int, void *, size_t, int);
ssize_t __real_readlink(const char *, char *, size_t);

pid_t
__wrap_fork(void)
{
	w.forks++;
	if (w.fork_err) {
		errno = w.fork_err;
		return -1;
	}
	return FAKE_PID; /* the parent's side only: nothing is forked */
}

int
__wrap_socketpair(int d, int t, int p, int sv[2])
{
	if (w.socketpair_err) {
		errno = w.socketpair_err;
		return -1;
	}
	return __real_socketpair(d, t, p, sv);
}

ssize_t
__wrap_sendmsg(int fd, const struct msghdr *mh, int flags)
{
	if (w.sendmsg_eintr > 0) {
		w.sendmsg_eintr--;
		errno = EINTR;
		return -1;
	}
	return __real_sendmsg(fd, mh, flags);
}

ssize_t
__wrap_recv(int fd, void *p, size_t n, int flags)
{
	if (w.recv_eintr > 0) {
		w.recv_eintr--;
		errno = EINTR;
		return -1;
	}
	return __real_recv(fd, p, n, flags);
}

int
__wrap_kill(pid_t pid, int sig)
{
	w.kills++;
	w.kill_pid = pid;
	w.kill_sig = sig;
	return 0;
}

pid_t
__wrap_waitpid(pid_t pid, int *st, int flags)
{
	w.waits++;
	if (w.wait_eintr > 0) {
		w.wait_eintr--;
		errno = EINTR;
		return -1;
	}
	*st = 0;
	return pid;
}

ssize_t
__wrap_readlink(const char *path, char *buf, size_t sz)
{
	size_t n;

	if (strcmp(path, "/proc/self/exe") != 0 || w.exe == NULL)
		return __real_readlink(path, buf, sz);
	if (w.exe_len < 0) {
		errno = EACCES;
		return -1;
	}
	n = strlen(w.exe) < sz ? strlen(w.exe) : sz;
	memcpy(buf, w.exe, n);
	return (ssize_t)n;
}

void __wrap_log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void
__wrap_log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
{
	va_list ap;

	(void)lvl;
	(void)func;
	assert_true(w.nlog < 8);
	va_start(ap, fmt);
	vsnprintf(w.log[w.nlog++], sizeof(w.log[0]), fmt, ap);
	va_end(ap);
}

static int
setup(void **state)
{
	(void)state;
	memset(&w, 0, sizeof(w));
	return 0;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- finding the image ---------------------------------------------- */

static char tmp[PATH_MAX];

static void
mkfile(const char *rel, mode_t mode)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", tmp, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
}

static void
mkdir_in(const char *rel)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", tmp, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

static int
tmp_setup(void **state)
{
	setup(state);
	snprintf(tmp, sizeof(tmp), "/tmp/test_spawner.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	return 0;
}

static int
tmp_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void
exe_is(const char *rel)
{
	static char exe[PATH_MAX + 64];

	snprintf(exe, sizeof(exe), "%s/%s", tmp, rel);
	w.exe = exe;
}

/* Next to the program: found, by its absolute path. */
static void
test_image_next_to_the_program(void **state)
{
	char want[PATH_MAX + 64];

	(void)state;
	mkdir_in("sbin");
	mkfile("sbin/" SPAWNER_IMAGE, 0700);
	exe_is("sbin/forkchatd");
	assert_int_equal(spawner_find_image(), 0);
	snprintf(want, sizeof(want), "%s/sbin/" SPAWNER_IMAGE, tmp);
	assert_string_equal(spawner_image(), want);
}

/* make install's layout: DIR/../lib/forkchat/, named without "..". */
static void
test_image_in_lib_forkchat_is_found_and_canonical(void **state)
{
	char want[PATH_MAX + 64];

	(void)state;
	mkdir_in("sbin");
	mkdir_in("lib");
	mkdir_in("lib/forkchat");
	mkfile("lib/forkchat/" SPAWNER_IMAGE, 0755);
	exe_is("sbin/forkchatd");
	assert_int_equal(spawner_find_image(), 0);
	snprintf(want, sizeof(want), "%s/lib/forkchat/" SPAWNER_IMAGE, tmp);
	assert_string_equal(spawner_image(), want);
}

/* Not executable, or a directory: EACCES (the first one's errno wins). */
static void
test_image_that_cannot_run_is_refused_with_eacces(void **state)
{
	(void)state;
	mkdir_in("sbin");
	mkfile("sbin/" SPAWNER_IMAGE, 0600);
	exe_is("sbin/forkchatd");
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, EACCES);

	mkdir_in("bin");
	mkdir_in("bin/" SPAWNER_IMAGE);
	exe_is("bin/forkchatd");
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, EACCES);
}

/* Nowhere: ENOENT, and the message names both places tried. */
static void
test_missing_image_names_both_places(void **state)
{
	char want[PATH_MAX + 128];

	(void)state;
	mkdir_in("sbin");
	exe_is("sbin/forkchatd");
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof(want),
	    "%s/sbin/" SPAWNER_IMAGE " (or ../lib/forkchat/)", tmp);
	assert_string_equal(spawner_image(), want);
}

/* Only the second place is wrong: its errno (EACCES), not ENOENT. */
static void
test_missing_first_and_bad_second_gives_the_seconds_errno(void **state)
{
	(void)state;
	mkdir_in("sbin");
	mkdir_in("lib");
	mkdir_in("lib/forkchat");
	mkfile("lib/forkchat/" SPAWNER_IMAGE, 0644);
	exe_is("sbin/forkchatd");
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, EACCES);
}

/* /proc/self/exe unreadable, or a name without a slash. */
static void
test_own_path_unknown(void **state)
{
	(void)state;
	w.exe = "x";
	w.exe_len = -1;
	assert_int_equal(spawner_find_image(), -1);
	assert_string_equal(spawner_image(), "/proc/self/exe");

	w.exe_len = 0;
	w.exe = "forkchatd";
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, ENOENT);
}

/* A directory so long that DIR/forkchatd-session does not fit. */
static void
test_image_path_too_long(void **state)
{
	static char exe[PATH_MAX + 16];

	(void)state;
	/* DIR fits, DIR/forkchatd-session does not */
	memset(exe, 'a', PATH_MAX - 16);
	exe[0] = '/';
	memcpy(exe + PATH_MAX - 16, "/forkchatd", 11);
	w.exe = exe;
	errno = 0;
	assert_int_equal(spawner_find_image(), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_int_equal(strncmp(spawner_image(), exe, 3000), 0);
	assert_int_equal(strlen(spawner_image()),
	    3000 + strlen("/" SPAWNER_IMAGE " (or ../lib/forkchat/)"));

	/* the program's own path does not fit: not truncated, refused */
	memset(exe, 'a', sizeof(exe) - 1);
	exe[0] = '/';
	exe[sizeof(exe) - 1] = '\0';
	assert_int_equal(spawner_find_image(), -1);
	assert_string_equal(spawner_image(), "/proc/self/exe");
}

/* ---- starting -------------------------------------------------------- */

static void
test_start_fails_when_socketpair_fails(void **state)
{
	struct spawner sp;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	w.socketpair_err = EMFILE;
	assert_int_equal(spawner_start(&sp, getpid(), 7, 512), -1);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(w.forks, 0);
	assert_int_equal(sp.pid, 0);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(sp.starts, 0);
}

/* fork() fails: -1 with its errno, both ends of the socketpair closed. */
static void
test_start_fails_when_fork_fails_and_leaks_no_fd(void **state)
{
	struct spawner sp;
	int before = open_fds();

	(void)state;
	memset(&sp, 0, sizeof(sp));
	w.fork_err = EAGAIN;
	assert_int_equal(spawner_start(&sp, getpid(), 7, 512), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(w.forks, 1);
	assert_int_equal(sp.pid, 0);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(open_fds(), before);
}

/* ---- request and answer against a fake spawner ------------------------ */

/* sp talks on one end of a real SEQPACKET pair; *peer is the spawner's. */
static void
fake_spawner(struct spawner *sp, int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	memset(sp, 0, sizeof(*sp));
	sp->pid = FAKE_PID;
	sp->fd = sv[0];
	sp->parent = getpid();
	sp->up_w = -1;
	*peer = sv[1];
}

/* What the spawner receives: the request, and its two descriptors. */
static void
take_request(int peer, struct spawner_req *rq, int fds[2])
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { rq, sizeof(*rq) };
	struct msghdr mh;
	struct cmsghdr *cm;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	assert_int_equal(recvmsg(peer, &mh, 0), (ssize_t)sizeof(*rq));
	cm = CMSG_FIRSTHDR(&mh);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
	assert_int_equal(cm->cmsg_len, CMSG_LEN(2 * sizeof(int)));
	memcpy(fds, CMSG_DATA(cm), 2 * sizeof(int));
}

static void
answer(int peer, int32_t pid, int32_t err)
{
	struct spawner_ans an = { pid, err };

	assert_int_equal(send(peer, &an, sizeof(an), 0), (ssize_t)sizeof(an));
}

/* Two requests in a row (pipelined), answered in order. */
static void
test_requests_carry_slot_inject_and_both_fds(void **state)
{
	struct spawner sp;
	struct spawner_req rq;
	int peer, p[2], fds[2];
	char c;

	(void)state;
	fake_spawner(&sp, &peer);
	assert_int_equal(pipe(p), 0);
	w.sendmsg_eintr = 1; /* an interrupted send is retried */
	assert_int_equal(spawner_request(&sp, 5, p[1], p[0], 0), 0);
	assert_int_equal(spawner_request(&sp, 6, p[1], p[0], ENOMEM), 0);
	assert_int_equal(w.sendmsg_eintr, 0);

	take_request(peer, &rq, fds);
	assert_int_equal(rq.slot, 5);
	assert_int_equal(rq.inject, 0);
	/* they are copies of the caller's: what goes in one comes out */
	assert_int_equal(write(fds[0], "z", 1), 1);
	assert_int_equal(read(fds[1], &c, 1), 1);
	assert_int_equal(c, 'z');
	close(fds[0]);
	close(fds[1]);
	take_request(peer, &rq, fds);
	assert_int_equal(rq.slot, 6);
	assert_int_equal(rq.inject, ENOMEM);
	close(fds[0]);
	close(fds[1]);

	answer(peer, 31337, 0);
	answer(peer, -1, ENOMEM);
	w.recv_eintr = 1;
	assert_int_equal(spawner_answer(&sp), 31337);
	errno = 0;
	assert_int_equal(spawner_answer(&sp), -1);
	assert_int_equal(errno, ENOMEM);
	/* a failure without an errno still is one */
	answer(peer, 0, 0);
	errno = 0;
	assert_int_equal(spawner_answer(&sp), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(w.kills, 0); /* none of that lost the spawner */
	assert_int_equal(sp.fd >= 0, 1);
	close(p[0]);
	close(p[1]);
	close(peer);
	close(sp.fd);
}

/* The spawner closed its end: the answer is EPIPE, the spawner killed. */
static void
test_eof_loses_the_spawner(void **state)
{
	struct spawner sp;
	int peer;

	(void)state;
	fake_spawner(&sp, &peer);
	close(peer);
	errno = 0;
	assert_int_equal(spawner_answer(&sp), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(w.kills, 1);
	assert_int_equal(w.kill_pid, FAKE_PID);
	assert_int_equal(w.kill_sig, SIGKILL);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(sp.pid, FAKE_PID); /* kept for spawner_reaped() */
	assert_int_equal(w.nlog, 1);
	assert_non_null(strstr(w.log[0], "spawner pid=4242: answer: "));
	/* every answer still pending gets EPIPE, without another kill */
	errno = 0;
	assert_int_equal(spawner_answer(&sp), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(w.kills, 1);
	/* and a new request too, until it is reaped: no new spawner */
	errno = 0;
	assert_int_equal(spawner_request(&sp, 1, 0, 0, 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(w.forks, 0);
}

/* A packet that is not an answer: EPROTO logged, the spawner lost. */
static void
test_short_answer_is_a_protocol_error(void **state)
{
	struct spawner sp;
	int peer;

	(void)state;
	fake_spawner(&sp, &peer);
	assert_int_equal(send(peer, "abc", 3, 0), 3);
	errno = 0;
	assert_int_equal(spawner_answer(&sp), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(w.kills, 1);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(w.nlog, 1);
	assert_non_null(strstr(w.log[0], strerror(EPROTO)));
	close(peer);
}

/* The send fails (the spawner is gone): killed, EPIPE, fd closed. */
static void
test_failed_send_loses_the_spawner(void **state)
{
	struct spawner sp;
	int peer, p[2];

	(void)state;
	fake_spawner(&sp, &peer);
	close(peer);
	assert_int_equal(pipe(p), 0);
	errno = 0;
	assert_int_equal(spawner_request(&sp, 3, p[1], p[0], 0), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(w.kills, 1);
	assert_int_equal(w.kill_pid, FAKE_PID);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(w.nlog, 1);
	assert_non_null(strstr(w.log[0], "spawner pid=4242: send: "));
	close(p[0]);
	close(p[1]);
}

/* ---- reaping and restarting ------------------------------------------ */

/* Reaped after it was lost: logged, forgotten; the next request starts a
 * new one (the restart failing is reported with fork's errno). */
static void
test_reaped_spawner_is_restarted_by_the_next_request(void **state)
{
	struct spawner sp;
	int peer;

	(void)state;
	fake_spawner(&sp, &peer);
	close(peer);
	close(sp.fd);
	sp.fd = -1; /* lost */
	assert_int_equal(spawner_reaped(&sp, FAKE_PID + 1, 0), 0);
	assert_int_equal(sp.pid, FAKE_PID);
	assert_int_equal(spawner_reaped(&sp, FAKE_PID, 9), 1); /* SIGKILL */
	assert_int_equal(sp.pid, 0);
	assert_int_equal(w.nlog, 1);
	assert_non_null(strstr(w.log[0], "killed by signal 9"));

	w.fork_err = EAGAIN;
	errno = 0;
	assert_int_equal(spawner_request(&sp, 1, 0, 0, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(w.forks, 1);
	assert_int_equal(w.nlog, 2);
	assert_non_null(strstr(w.log[1], "cannot start a new one"));

	w.fork_err = 0; /* the fake fork: the parent's side starts it */
	assert_int_equal(spawner_start(&sp, getpid(), -1, 512), 0);
	assert_int_equal(sp.pid, FAKE_PID);
	assert_true(sp.fd >= 0);
	assert_int_equal(sp.starts, 1);
	assert_int_equal(w.nlog, 3);
	assert_non_null(strstr(w.log[2], "spawner started pid=4242"));
	close(sp.fd);
}

/* Exit statuses: a clean exit after the parent closed is not logged;
 * an exit while it was in use, or a non-zero one, is. */
static void
test_reaped_exit_is_logged_unless_a_clean_shutdown(void **state)
{
	struct spawner sp;
	int peer;

	(void)state;
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(spawner_reaped(&sp, 0, 0), 0); /* no spawner */

	sp.pid = FAKE_PID;
	sp.fd = -1;
	assert_int_equal(spawner_reaped(&sp, FAKE_PID, 0), 1);
	assert_int_equal(w.nlog, 0);

	sp.pid = FAKE_PID;
	assert_int_equal(spawner_reaped(&sp, FAKE_PID, 2 << 8), 1);
	assert_int_equal(w.nlog, 1);
	assert_non_null(strstr(w.log[0], "exited with status 2"));

	fake_spawner(&sp, &peer);
	assert_int_equal(spawner_reaped(&sp, FAKE_PID, 0), 1);
	assert_int_equal(w.nlog, 2);
	assert_non_null(strstr(w.log[1], "exited with status 0"));
	assert_int_equal(sp.fd, -1);
	/* its socket was closed: the peer sees EOF */
	assert_int_equal(__real_recv(peer, &sp, 1, MSG_DONTWAIT), 0);
	close(peer);
}

/* stop: closes the socket, waits for the spawner (EINTR retried); with
 * no spawner it waits for nothing. */
static void
test_stop_closes_and_waits(void **state)
{
	struct spawner sp;
	int peer;

	(void)state;
	fake_spawner(&sp, &peer);
	w.wait_eintr = 1;
	spawner_stop(&sp);
	assert_int_equal(w.waits, 2);
	assert_int_equal(sp.fd, -1);
	assert_int_equal(sp.pid, 0);
	assert_int_equal(__real_recv(peer, &sp, 1, MSG_DONTWAIT), 0);
	close(peer);
	spawner_stop(&sp);
	assert_int_equal(w.waits, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_image_next_to_the_program, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(
		    test_image_in_lib_forkchat_is_found_and_canonical,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(
		    test_image_that_cannot_run_is_refused_with_eacces,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(
		    test_missing_image_names_both_places, tmp_setup,
		    tmp_teardown),
		cmocka_unit_test_setup_teardown(
		    test_missing_first_and_bad_second_gives_the_seconds_errno,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup(test_own_path_unknown, setup),
		cmocka_unit_test_setup(test_image_path_too_long, setup),
		cmocka_unit_test_setup(
		    test_start_fails_when_socketpair_fails, setup),
		cmocka_unit_test_setup(
		    test_start_fails_when_fork_fails_and_leaks_no_fd, setup),
		cmocka_unit_test_setup(
		    test_requests_carry_slot_inject_and_both_fds, setup),
		cmocka_unit_test_setup(test_eof_loses_the_spawner, setup),
		cmocka_unit_test_setup(
		    test_short_answer_is_a_protocol_error, setup),
		cmocka_unit_test_setup(
		    test_failed_send_loses_the_spawner, setup),
		cmocka_unit_test_setup(
		    test_reaped_spawner_is_restarted_by_the_next_request,
		    setup),
		cmocka_unit_test_setup(
		    test_reaped_exit_is_logged_unless_a_clean_shutdown, setup),
		cmocka_unit_test_setup(test_stop_closes_and_waits, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
