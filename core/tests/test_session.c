/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_session.c - unit tests for the session child, session.c, run in
 * this process (session_run() returns when the session ends): the
 * client's lines become records on the shared pipe (IPC_LINE; IPC_REJECT
 * with the reason for a line too long, a control character, bad UTF-8; one
 * IPC_EOF, with the errno of a failed read) in the order sent, in writes of
 * whole records of at most PIPE_BUF bytes, and no kill() to the parent
 * (the write raises its SIGUSR1: O_ASYNC on its end); a full shared pipe holds the records back, in order, until it
 * takes them; a parent that is gone (EPIPE) ends the child with status 1
 * after BYE INTERNAL; only whole lines of the parent's output reach the
 * socket; after a partial send, a SIGTERM from the parent first completes
 * the line, then says BYE with the reason it carries (slow consumer, error,
 * shutdown); a SIGTERM from anyone else says nothing; buffers a busy
 * client grew are kept until the idle tick (one read per batch).
 *
 * Seams (WRAP_test_session): kill is recorded, not sent (the parent's pid
 * is fake); sigtimedwait pops a scripted signal or reports a timeout at
 * once (no test waits for a tick); write to the shared pipe and send to
 * the socket can be made to fail, stop short or say EAGAIN; read of the
 * socket can fail with ECONNRESET.  The socket is one end of an AF_UNIX
 * socketpair, the pipes are real.  session.c is included, so its static
 * helpers are the ones under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/session.c"

#define PARENT   900001 /* fake parent pid */
#define SLOT     7
#define MAX_LINE 64
#define NSCRIPT  16

static struct session_cfg cfg;
static int client = -1; /* the test's end of the socket */
static int down_w = -1; /* the test writes the parent's output here */
static int up_r = -1;   /* the test reads the records here */

static struct {
	int usr1;          /* SIGUSR1 to PARENT */
	int other_signals; /* anything else: a bug */
	/* sigtimedwait: scripted signals, then "timeout" */
	siginfo_t sig[NSCRIPT];
	int nsig, sigpos, waits;
	int runaway; /* the loop did not end by itself */
	/* write to the shared pipe */
	int up_fail;    /* errno for every write while set */
	int up_eagain;  /* this many writes say EAGAIN first */
	int up_writes;  /* writes that went through */
	int up_badcut;  /* a write did not end at a record boundary */
	size_t up_most; /* largest write */
	/* send to the socket: per call, -1 pass, 0 EAGAIN, k at most k */
	int send_plan[NSCRIPT];
	int nsend, sendpos;
	/* read of the socket */
	int read_reset; /* the next read fails with ECONNRESET */
	int down_reads; /* reads of the parent's pipe that got bytes */
	/* as the parent does: close the child's pipe once its EOF record is
	 * in the shared pipe (the session then ends) */
	int close_after_eof, eof_written;
} rec;

int
__wrap_kill(pid_t pid, int sig)
{
	if (pid == PARENT && sig == SIGUSR1)
		rec.usr1++;
	else
		rec.other_signals++;
	return 0;
}

int
__wrap_sigtimedwait(
    const sigset_t *set, siginfo_t *si, const struct timespec *ts)
{
	if (rec.close_after_eof && rec.eof_written && down_w >= 0) {
		close(down_w);
		down_w = -1;
	}
	if (rec.sigpos < rec.nsig) {
		*si = rec.sig[rec.sigpos++];
		return si->si_signo;
	}
	if (++rec.waits > 200) { /* end a loop that would spin forever */
		rec.runaway = 1;
		memset(si, 0, sizeof(*si));
		si->si_signo = SIGTERM;
		return SIGTERM;
	}
	errno = EAGAIN;
	return -1;
}

ssize_t __real_write(int fd, const void *p, size_t n);
ssize_t
__wrap_write(int fd, const void *p, size_t n)
{
	struct ipc_hdr h;
	size_t off = 0;
	ssize_t r;

	if (fd != cfg.up_fd)
		return __real_write(fd, p, n);
	if (rec.up_fail) {
		errno = rec.up_fail;
		return -1;
	}
	if (rec.up_eagain > 0) {
		rec.up_eagain--;
		errno = EAGAIN;
		return -1;
	}
	while (off + IPC_HDR <= n) { /* whole records only */
		memcpy(&h, (const char *)p + off, IPC_HDR);
		rec.eof_written += h.type == IPC_EOF;
		off += IPC_HDR + h.len;
	}
	if (off != n)
		rec.up_badcut++;
	if (n > rec.up_most)
		rec.up_most = n;
	r = __real_write(fd, p, n);
	if (r > 0)
		rec.up_writes++;
	return r;
}

ssize_t __real_send(int fd, const void *p, size_t n, int flags);
ssize_t
__wrap_send(int fd, const void *p, size_t n, int flags)
{
	int plan = rec.sendpos < rec.nsend ? rec.send_plan[rec.sendpos++] : -1;

	if (fd != cfg.sock || plan < 0)
		return __real_send(fd, p, n, flags);
	if (plan == 0) {
		errno = EAGAIN;
		return -1;
	}
	return __real_send(fd, p, n < (size_t)plan ? n : (size_t)plan, flags);
}

ssize_t __real_read(int fd, void *p, size_t n);
ssize_t
__wrap_read(int fd, void *p, size_t n)
{
	ssize_t r;

	if (fd == cfg.sock && rec.read_reset) {
		rec.read_reset = 0;
		errno = ECONNRESET;
		return -1;
	}
	r = __real_read(fd, p, n);
	if (fd == cfg.down_fd && r > 0)
		rec.down_reads++;
	return r;
}

static void
script_sigterm(pid_t from, int why)
{
	siginfo_t *si = &rec.sig[rec.nsig++];

	memset(si, 0, sizeof(*si));
	si->si_signo = SIGTERM;
	si->si_code = SI_QUEUE;
	si->si_pid = from;
	si->si_value.sival_int = why;
}

static int
setup(void **state)
{
	int sv[2], d[2], u[2];

	memset(&rec, 0, sizeof(rec));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe2(d, O_CLOEXEC), 0);
	assert_int_equal(pipe2(u, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(fcntl(u[0], F_SETPIPE_SZ, 1 << 20) > 0);
	client = sv[1];
	down_w = d[1];
	up_r = u[0];
	cfg.sock = sv[0];
	cfg.down_fd = d[0];
	cfg.up_fd = u[1];
	cfg.slot = SLOT;
	cfg.max_line = MAX_LINE;
	cfg.parent = PARENT;
	return 0;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int
teardown(void **state)
{
	close_fd(&client);
	close_fd(&down_w);
	close_fd(&up_r);
	(void)fcntl(cfg.sock, F_SETFL, 0); /* closed by the session, or not */
	close(cfg.sock);
	close(cfg.down_fd);
	close(cfg.up_fd);
	return 0;
}

/* Everything the client has been sent until EOF (the session ended). */
static size_t
client_got(char *out, size_t max)
{
	size_t len = 0;
	ssize_t n;

	while (len < max - 1 &&
	    (n = recv(client, out + len, max - 1 - len, MSG_DONTWAIT)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	return len;
}

struct rrec {
	struct ipc_hdr h;
	char body[MAX_LINE + 8];
};

/* The records on the shared pipe, in order. */
static int
records(struct rrec *r, int max)
{
	static char buf[1 << 20];
	size_t len = 0, off = 0;
	ssize_t n;
	int k = 0;

	while ((n = read(up_r, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	while (off + IPC_HDR <= len && k < max) {
		memcpy(&r[k].h, buf + off, IPC_HDR);
		assert_true(off + IPC_HDR + r[k].h.len <= len);
		assert_true(r[k].h.len <= MAX_LINE);
		memcpy(r[k].body, buf + off + IPC_HDR, r[k].h.len);
		r[k].body[r[k].h.len] = '\0';
		off += IPC_HDR + r[k].h.len;
		k++;
	}
	assert_int_equal(off, len); /* nothing cut, nothing left over */
	return k;
}

static void
send_client(const char *s)
{
	assert_int_equal(write(client, s, strlen(s)), (ssize_t)strlen(s));
}

static void
assert_record(
    const struct rrec *r, enum ipc_type type, int code, const char *body)
{
	assert_int_equal(r->h.slot, SLOT);
	assert_int_equal(r->h.type, type);
	assert_int_equal(r->h.code, code);
	assert_string_equal(r->body, body);
}

/* ---- the client's side: records ------------------------------------- */

static void
lines_become_records_in_order(void **state)
{
	char too_long[MAX_LINE + 20];
	struct rrec r[8];
	char got[64];

	memset(too_long, 'x', sizeof(too_long) - 2);
	too_long[sizeof(too_long) - 2] = '\n';
	too_long[sizeof(too_long) - 1] = '\0';
	send_client("hello\n");
	send_client("bad\001char\n");
	send_client(too_long);
	send_client("bad \377 utf8\n");
	send_client("world\n");
	shutdown(client, SHUT_WR);
	rec.close_after_eof = 1;
	assert_int_equal(session_run(&cfg), 0);
	assert_int_equal(records(r, 8), 6);
	assert_record(&r[0], IPC_LINE, 0, "hello");
	assert_record(&r[1], IPC_REJECT, PERR_CONTROL_CHAR, "");
	assert_record(&r[2], IPC_REJECT, PERR_LINE_TOO_LONG, "");
	assert_record(&r[3], IPC_REJECT, PERR_BAD_UTF8, "");
	assert_record(&r[4], IPC_LINE, 0, "world");
	assert_record(&r[5], IPC_EOF, 0, "");
	assert_int_equal(rec.usr1, 0); /* the writes signal the parent */
	assert_int_equal(rec.other_signals, 0);
	assert_int_equal(rec.runaway, 0);
	assert_int_equal(client_got(got, sizeof(got)), 0); /* EOF, no BYE */
}

static void
reset_connection_is_an_eof_record_with_its_errno(void **state)
{
	struct rrec r[4];

	rec.read_reset = 1; /* the socket is dead: the session ends at once */
	assert_int_equal(session_run(&cfg), 0);
	assert_int_equal(records(r, 4), 1);
	assert_record(&r[0], IPC_EOF, ECONNRESET, "");
	assert_int_equal(rec.usr1, 0);
	assert_int_equal(rec.runaway, 0);
}

static void
records_go_in_whole_atomic_batches_one_signal_per_turn(void **state)
{
	static char all[300 * 50 + 1];
	char line[64];
	struct rrec r[400];
	int i, n;

	/* 300 x 50-byte lines: 300 x 62 bytes of records, ~5 pipe batches;
	 * one write (an AF_UNIX socket counts buffer space per write) */
	for (i = 0; i < 300; i++) {
		snprintf(line, sizeof(line), "line %03d %040d\n", i, i);
		memcpy(all + i * 50, line, 50);
	}
	send_client(all);
	shutdown(client, SHUT_WR);
	rec.close_after_eof = 1;
	assert_int_equal(session_run(&cfg), 0);
	n = records(r, 400);
	assert_int_equal(n, 301);
	for (i = 0; i < 300; i++) {
		snprintf(line, sizeof(line), "line %03d %040d", i, i);
		assert_record(&r[i], IPC_LINE, 0, line);
	}
	assert_record(&r[300], IPC_EOF, 0, "");
	assert_int_equal(rec.up_badcut, 0);
	assert_true(rec.up_most <= IPC_BATCH);
	assert_true(rec.up_writes >= 5);
	/* no kill() at all: each write raises the parent's SIGUSR1 */
	assert_int_equal(rec.usr1, 0);
}

static void
full_shared_pipe_holds_records_in_order(void **state)
{
	struct rrec r[8];

	rec.up_eagain = 3; /* the parent is behind for three tries */
	send_client("one\ntwo\n");
	shutdown(client, SHUT_WR);
	rec.close_after_eof = 1;
	assert_int_equal(session_run(&cfg), 0);
	assert_int_equal(records(r, 8), 3);
	assert_record(&r[0], IPC_LINE, 0, "one");
	assert_record(&r[1], IPC_LINE, 0, "two");
	assert_record(&r[2], IPC_EOF, 0, "");
	assert_int_equal(rec.up_eagain, 0);
	assert_int_equal(rec.runaway, 0);
}

static void
parent_gone_ends_the_child_with_bye_internal(void **state)
{
	char got[128];
	pid_t pid;
	int st;

	rec.up_fail = EPIPE;
	send_client("hi\n");
	pid = fork(); /* give_up() ends the process: run it in a child */
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)session_run(&cfg);
		_exit(99); /* give_up() must not return */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	close(cfg.sock); /* the child's copy is gone: EOF */
	cfg.sock = -1;
	assert_true(client_got(got, sizeof(got)) > 0);
	assert_string_equal(
	    got, "BYE INTERNAL server error, please reconnect\n");
	cfg.sock = socket(AF_UNIX, SOCK_STREAM, 0); /* for teardown */
}

/* ---- the parent's side: output to the socket ------------------------ */

static void
only_whole_lines_reach_the_socket(void **state)
{
	static const char out[] = "MSG lobby a one\nMSG lobby a tw";
	char got[128];

	assert_int_equal(
	    write(down_w, out, sizeof(out) - 1), (ssize_t)sizeof(out) - 1);
	close_fd(&down_w); /* cut off mid-line: the tail is never sent */
	assert_int_equal(session_run(&cfg), 0);
	client_got(got, sizeof(got));
	assert_string_equal(got, "MSG lobby a one\n");
	assert_int_equal(rec.runaway, 0);
}

static void
slow_consumer_bye_comes_after_the_line_in_progress(void **state)
{
	static const char out[] = "MSG lobby a one\nMSG lobby a two\n";
	char got[256];

	assert_int_equal(
	    write(down_w, out, sizeof(out) - 1), (ssize_t)sizeof(out) - 1);
	rec.send_plan[0] = 5; /* "MSG l": the socket takes part of a line */
	rec.send_plan[1] = 0; /* then it is full */
	rec.nsend = 2;
	script_sigterm(PARENT, IPC_ABORT_SLOW_CONSUMER);
	assert_int_equal(session_run(&cfg), 0);
	client_got(got, sizeof(got));
	assert_string_equal(got,
	    "MSG lobby a one\n"
	    "BYE SLOW_CONSUMER you stopped reading; too much output was "
	    "waiting for you\n");
	assert_int_equal(rec.runaway, 0);
}

static void
abort_reason_comes_from_the_parents_signal(void **state)
{
	static const struct {
		int why;
		const char *bye;
	} t[] = {
		{ IPC_ABORT_ERROR,
		    "BYE INTERNAL server error, please reconnect\n" },
		{ IPC_ABORT_SHUTDOWN,
		    "BYE SHUTDOWN server is shutting down\n" },
	};
	char got[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (i > 0) {
			teardown(state);
			setup(state);
		}
		script_sigterm(PARENT, t[i].why);
		assert_int_equal(session_run(&cfg), 0);
		client_got(got, sizeof(got));
		assert_string_equal(got, t[i].bye);
	}
}

static void
sigterm_from_anyone_else_says_nothing(void **state)
{
	char got[128];

	script_sigterm(PARENT + 1, IPC_ABORT_SLOW_CONSUMER);
	assert_int_equal(session_run(&cfg), 0);
	assert_int_equal(client_got(got, sizeof(got)), 0);
}

static void
bye_never_lands_in_the_middle_of_a_line(void **state)
{
	char got[128];

	assert_int_equal(write(down_w, "MSG lobby a one\n", 16), 16);
	rec.send_plan[0] = 5; /* "MSG l" */
	rec.send_plan[1] = 0; /* full */
	rec.send_plan[2] = 3; /* finishing the line: "obb", still short */
	rec.nsend = 3;
	script_sigterm(PARENT, IPC_ABORT_SLOW_CONSUMER);
	assert_int_equal(session_run(&cfg), 0);
	client_got(got, sizeof(got));
	assert_string_equal(got, "MSG lobb"); /* and no BYE glued to it */
}

/*
 * Back to back, a wake-up's batch is larger than a child's first buffers
 * (pending: 4 KiB, upq: 1 KiB).  What they grew to is kept while the
 * client is busy, so the next batch is one read() of the pipe and no
 * malloc; it used to be freed each time it emptied, and the next turn
 * started small again (two reads, a malloc, a copy, a free: issue 17,
 * goal 4).  The idle tick gives both back.
 */
static void
busy_buffers_are_kept_until_idle(void **state)
{
	static char batch[6000], got[8192];
	struct session s;
	sigset_t set; /* blocked from now on, as by session_run() */
	size_t i;

	assert_int_equal(session_setup(&s, &cfg, &set), 0);
	for (i = 0; i < sizeof(batch); i++) /* 75 lines of 80 bytes */
		batch[i] = i % 80 == 79 ? '\n' : 'x';
	assert_int_equal(write(down_w, batch, sizeof(batch)), sizeof(batch));
	read_down(&s, 0);
	write_client(&s);
	assert_int_equal(client_got(got, sizeof(got)), sizeof(batch));
	assert_true(s.pending.cap >= sizeof(batch)); /* kept */
	rec.down_reads = 0;
	assert_int_equal(write(down_w, batch, sizeof(batch)), sizeof(batch));
	read_down(&s, 0);
	assert_int_equal(rec.down_reads, 1); /* the whole batch at once */
	write_client(&s);
	assert_int_equal(client_got(got, sizeof(got)), sizeof(batch));
	for (i = 0; i < 40; i++) /* 40 records of about 50 bytes */
		send_client("a line of about forty bytes, to the room\n");
	read_client(&s);
	assert_int_equal(buf_used(&s.upq), 0); /* all on the shared pipe */
	assert_true(s.upq.cap > UPQ_KEEP);     /* kept */
	idle_release(&s);
	assert_int_equal(s.pending.cap, 0);
	assert_int_equal(s.upq.cap, 0);
	free(s.fr.line);
}

/* The session ends (a SIGTERM) while the shared pipe is full: the records
 * still queued are given to the parent before the child exits, retried
 * until the pipe takes them. */
static void
queued_records_are_drained_at_exit(void **state)
{
	struct rrec r[4];

	rec.up_eagain = 5; /* the parent is behind past the SIGTERM */
	send_client("one\ntwo\n");
	script_sigterm(PARENT + 1, 0);
	assert_int_equal(session_run(&cfg), 0);
	assert_int_equal(rec.up_eagain, 0);
	assert_int_equal(records(r, 4), 2);
	assert_record(&r[0], IPC_LINE, 0, "one");
	assert_record(&r[1], IPC_LINE, 0, "two");
	assert_int_equal(rec.runaway, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    lines_become_records_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    reset_connection_is_an_eof_record_with_its_errno, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    records_go_in_whole_atomic_batches_one_signal_per_turn,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    full_shared_pipe_holds_records_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    queued_records_are_drained_at_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    parent_gone_ends_the_child_with_bye_internal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    only_whole_lines_reach_the_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    slow_consumer_bye_comes_after_the_line_in_progress, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    abort_reason_comes_from_the_parents_signal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    sigterm_from_anyone_else_says_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    bye_never_lands_in_the_middle_of_a_line, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    busy_buffers_are_kept_until_idle, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
