/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fanout.c - unit tests for the parent's output side, fanout.c: lines
 * queued per slot reach the child's pipe whole and in order with one
 * SIGUSR2 per child per turn; what a full pipe refuses waits in the
 * backlog (the slot is counted in nbacklog) and is retried; a backlog past
 * --max-backlog (not at it) cuts the slot as a slow consumer, told through
 * SIGTERM's si_value; a lost line (append failed) cuts it as an error; a
 * closing slot is flushed, then its pipe closed; a child gone (EPIPE) is
 * closed down without a cut; after BYE SHUTDOWN nothing more is queued;
 * the dirty list grows past its first capacity.
 *
 * Seams (WRAP_test_fanout): kill and sigqueue are recorded, not sent (the
 * pids are fake); chat_nick and chat_disconnect stand in for the chat;
 * buf_append can be made to fail.  The pipes are real, non-blocking, with
 * their capacity set to one page.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"

#define NSLOT    40
#define PIPE_CAP 4096
#define PID0     900000 /* fake child pids: PID0 + slot */

static struct {
	int kills[NSLOT];    /* SIGUSR2 per slot */
	int sigq[NSLOT];     /* SIGTERM via sigqueue per slot */
	int sigq_why[NSLOT]; /* its si_value */
	int disc[NSLOT];     /* chat_disconnect per slot */
	int other_signals;   /* anything else: a bug */
	int fail_append;     /* buf_append fails while set */
} rec;

int
__wrap_kill(pid_t pid, int sig)
{
	int slot = (int)pid - PID0;

	if (slot >= 0 && slot < NSLOT && sig == SIGUSR2)
		rec.kills[slot]++;
	else
		rec.other_signals++;
	return 0;
}

int
__wrap_sigqueue(pid_t pid, int sig, const union sigval v)
{
	int slot = (int)pid - PID0;

	if (slot >= 0 && slot < NSLOT && sig == SIGTERM) {
		rec.sigq[slot]++;
		rec.sigq_why[slot] = v.sival_int;
	} else
		rec.other_signals++;
	return 0;
}

const char *
__wrap_chat_nick(const struct chat *c, int slot)
{
	return "nick";
}

void
__wrap_chat_disconnect(struct chat *c, int slot, const char *reason)
{
	if (slot >= 0 && slot < NSLOT)
		rec.disc[slot]++;
}

int __real_buf_append(struct buf *b, const void *p, size_t n);
int
__wrap_buf_append(struct buf *b, const void *p, size_t n)
{
	if (rec.fail_append)
		return -1;
	return __real_buf_append(b, p, n);
}

static struct server_opts o;
static struct server s;
static struct client cl[NSLOT];
static int rfd[NSLOT]; /* read ends: what each "child" receives */

/* Slot i gets a fresh non-blocking pipe of PIPE_CAP bytes. */
static void
open_slot(int i)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, PIPE_CAP) >= PIPE_CAP);
	rfd[i] = p[0];
	cl[i].fd = p[1];
	cl[i].pid = PID0 + i;
	cl[i].state = CL_ACTIVE;
}

static int
setup(void **state)
{
	int i;

	memset(&rec, 0, sizeof(rec));
	memset(&s, 0, sizeof(s));
	memset(cl, 0, sizeof(cl));
	o.max_clients = NSLOT;
	o.max_backlog = 8192;
	s.o = &o;
	s.cl = cl;
	s.dirtycap = 4; /* small, so that growing it is exercised */
	s.dirty = calloc((size_t)s.dirtycap, sizeof(int));
	s.woken = calloc(NSLOT, sizeof(int));
	assert_non_null(s.dirty);
	assert_non_null(s.woken);
	for (i = 0; i < NSLOT; i++) {
		rfd[i] = -1;
		cl[i].fd = -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	int i;

	for (i = 0; i < NSLOT; i++) {
		if (rfd[i] >= 0)
			close(rfd[i]);
		if (cl[i].fd >= 0)
			close(cl[i].fd);
		buf_free(&cl[i].out);
	}
	free(s.dirty);
	free(s.woken);
	return 0;
}

/* Everything slot i's pipe holds now (at most max bytes). */
static size_t
drain(int i, char *out, size_t max)
{
	size_t got = 0;
	ssize_t n;

	while (got < max && (n = read(rfd[i], out + got, max - got)) > 0)
		got += (size_t)n;
	return got;
}

static void
send_str(int slot, const char *line)
{
	fanout_send(&s, slot, line, strlen(line));
}

/* Two slots, three lines: each pipe gets its lines whole, in order, and
 * each child exactly one SIGUSR2 for the turn. */
static void
test_lines_in_order_one_wake_per_turn(void **state)
{
	char got[256];
	size_t n;

	open_slot(0);
	open_slot(1);
	send_str(0, "MSG a hello\n");
	send_str(1, "MSG a hello\n");
	send_str(0, "MSG b second\n");
	assert_int_equal(s.ndirty, 2); /* slot 0 listed once */
	fanout_flush(&s);
	n = drain(0, got, sizeof(got));
	assert_int_equal(n, 25);
	assert_memory_equal(got, "MSG a hello\nMSG b second\n", 25);
	n = drain(1, got, sizeof(got));
	assert_int_equal(n, 12);
	assert_int_equal(rec.kills[0], 1);
	assert_int_equal(rec.kills[1], 1);
	assert_int_equal(s.lines_out, 3);
	assert_int_equal(s.ndirty, 0);
	assert_int_equal(s.nbacklog, 0);
	/* a turn with nothing queued wakes nobody */
	fanout_flush(&s);
	assert_int_equal(rec.kills[0], 1);
	assert_int_equal(rec.other_signals, 0);
}

/* A full pipe: the rest waits in the backlog, counted, and nothing is
 * lost or reordered when the child reads and the backlog is retried. */
static void
test_backlog_then_retry_delivers_all(void **state)
{
	static char line[6000], got[8192];
	size_t n, i;

	for (i = 0; i < sizeof(line); i++)
		line[i] = (char)('a' + i % 26);
	open_slot(3);
	fanout_send(&s, 3, line, sizeof(line));
	fanout_flush(&s);
	assert_int_equal(cl[3].backlogged, 1);
	assert_int_equal(s.nbacklog, 1);
	assert_int_equal(buf_used(&cl[3].out), sizeof(line) - PIPE_CAP);
	assert_int_equal(cl[3].state, CL_ACTIVE);
	assert_int_equal(rec.sigq[3], 0);
	assert_int_equal(rec.kills[3], 1); /* it got bytes: woken */
	/* still full: a retry writes nothing, keeps the backlog */
	fanout_flush_backlogs(&s);
	assert_int_equal(cl[3].backlogged, 1);
	n = drain(3, got, sizeof(got));
	assert_int_equal(n, PIPE_CAP);
	fanout_flush_backlogs(&s);
	assert_int_equal(cl[3].backlogged, 0);
	assert_int_equal(s.nbacklog, 0);
	n += drain(3, got + n, sizeof(got) - n);
	assert_int_equal(n, sizeof(line));
	assert_memory_equal(got, line, sizeof(line));
	assert_int_equal(rec.kills[3], 2);
	assert_int_equal(rec.sigq[3], 0);
}

/* The cut: a backlog of exactly --max-backlog is kept; one byte more cuts
 * the slot as a slow consumer (SIGTERM with the reason), closes its pipe,
 * drops the backlog and tells the chat; the other slot is untouched. */
static void
test_slow_consumer_cut_past_max_backlog_only(void **state)
{
	static char big[PIPE_CAP + 8192];
	char got[64];

	memset(big, 'x', sizeof(big));
	open_slot(5);
	open_slot(6);
	fanout_send(&s, 5, big, PIPE_CAP + o.max_backlog); /* = max */
	send_str(6, "MSG c hi\n");
	fanout_flush(&s);
	assert_int_equal(buf_used(&cl[5].out), o.max_backlog);
	assert_int_equal(cl[5].state, CL_ACTIVE);
	assert_int_equal(s.slow_cuts, 0);
	send_str(5, "y"); /* one byte past the limit */
	fanout_flush(&s);
	assert_int_equal(cl[5].state, CL_ABORTED);
	assert_int_equal(cl[5].fd, -1);
	assert_int_equal(buf_used(&cl[5].out), 0);
	assert_int_equal(cl[5].backlogged, 0);
	assert_int_equal(s.nbacklog, 0);
	assert_int_equal(s.slow_cuts, 1);
	assert_int_equal(rec.sigq[5], 1);
	assert_int_equal(rec.sigq_why[5], IPC_ABORT_SLOW_CONSUMER);
	assert_int_equal(rec.disc[5], 1);
	/* the bystander got its line and was not cut */
	assert_int_equal(drain(6, got, sizeof(got)), 9);
	assert_int_equal(cl[6].state, CL_ACTIVE);
	assert_int_equal(rec.sigq[6], 0);
	/* an aborted slot takes no more lines */
	send_str(5, "MSG late\n");
	assert_int_equal(buf_used(&cl[5].out), 0);
}

/* A line that could not be queued is never dropped silently: the slot is
 * cut as an error on the next flush. */
static void
test_lost_line_cuts_as_error(void **state)
{
	open_slot(2);
	rec.fail_append = 1;
	send_str(2, "MSG lost\n");
	rec.fail_append = 0;
	assert_int_equal(cl[2].failed, 1);
	fanout_flush(&s);
	assert_int_equal(cl[2].state, CL_ABORTED);
	assert_int_equal(rec.sigq[2], 1);
	assert_int_equal(rec.sigq_why[2], IPC_ABORT_ERROR);
	assert_int_equal(s.slow_cuts, 0);
	assert_int_equal(cl[2].failed, 0);
	assert_int_equal(rec.disc[2], 1);
}

/* Closing: the queued lines go first, then the pipe is closed (the child
 * reads EOF after the last byte) and woken; nothing is cut. */
static void
test_close_flushes_then_eof(void **state)
{
	char got[64];

	open_slot(4);
	send_str(4, "BYE QUIT\n");
	fanout_close(&s, 4);
	assert_int_equal(cl[4].state, CL_CLOSING);
	fanout_flush(&s);
	assert_int_equal(cl[4].fd, -1);
	assert_int_equal(drain(4, got, sizeof(got)), 9);
	assert_memory_equal(got, "BYE QUIT\n", 9);
	assert_int_equal(read(rfd[4], got, sizeof(got)), 0); /* EOF */
	/* one wake for the bytes, one for the EOF */
	assert_int_equal(rec.kills[4], 2);
	assert_int_equal(rec.sigq[4], 0);
}

/* A child that is gone (EPIPE): closed down quietly, no cut, no SIGTERM;
 * reaping frees the slot later. */
static void
test_child_gone_is_closed_not_cut(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	open_slot(7);
	close(rfd[7]);
	rfd[7] = -1;
	send_str(7, "MSG x\n");
	fanout_flush(&s);
	assert_int_equal(cl[7].fd, -1);
	assert_int_equal(cl[7].state, CL_ACTIVE);
	assert_int_equal(rec.sigq[7], 0);
	assert_int_equal(rec.disc[7], 0);
	assert_int_equal(s.slow_cuts, 0);
}

/* After BYE SHUTDOWN (stopping, closing) nothing more reaches the slot. */
static void
test_nothing_after_shutdown(void **state)
{
	char got[64];

	open_slot(8);
	send_str(8, "BYE SHUTDOWN\n");
	fanout_close(&s, 8);
	s.stopping = 1;
	send_str(8, "MSG late\n");
	fanout_flush(&s);
	assert_int_equal(drain(8, got, sizeof(got)), 13);
	assert_memory_equal(got, "BYE SHUTDOWN\n", 13);
	assert_int_equal(s.lines_out, 1);
}

/* More dirty slots than the list's first capacity: every one flushed. */
static void
test_dirty_list_grows(void **state)
{
	char got[16];
	int i;

	for (i = 10; i < 30; i++) {
		open_slot(i);
		send_str(i, "L\n");
	}
	assert_int_equal(s.ndirty, 20);
	assert_true(s.dirtycap >= 20);
	fanout_flush(&s);
	for (i = 10; i < 30; i++) {
		assert_int_equal(drain(i, got, sizeof(got)), 2);
		assert_int_equal(rec.kills[i], 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_lines_in_order_one_wake_per_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backlog_then_retry_delivers_all, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_slow_consumer_cut_past_max_backlog_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_lost_line_cuts_as_error, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_close_flushes_then_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_child_gone_is_closed_not_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_nothing_after_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_dirty_list_grows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
