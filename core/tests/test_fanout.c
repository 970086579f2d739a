/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fanout.c - unit tests for the parent's output side, fanout.c: lines
 * queued per slot reach the child's pipe whole and in order with one
 * SIGUSR2 per child per turn; what a full pipe refuses waits in the
 * backlog (the slot is counted in nbacklog) and is retried; a cut is told
 * through SIGTERM's si_value; flow control (flow.c): a backlog past the high-water
 * mark pauses the senders of that member's room (IPC_SIG_FLOW 1) and
 * resumes them (0) once it is back to the low-water mark, and a member is
 * cut only when it stalls, holds its room too long or passes the memory
 * bound; a lost line (append failed) cuts it as an error; a
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
	int kills[NSLOT];        /* SIGUSR2 per slot */
	int sigq[NSLOT];         /* SIGTERM via sigqueue per slot */
	int sigq_why[NSLOT];     /* its si_value */
	int disc[NSLOT];         /* chat_disconnect per slot */
	int other_signals;       /* anything else: a bug */
	int fail_append;         /* buf_append fails while set */
	int flow[NSLOT];         /* IPC_SIG_FLOW per slot */
	int flow_on[NSLOT];      /* its last si_value */
	const char *room[NSLOT]; /* chat_room per slot */
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
	} else if (slot >= 0 && slot < NSLOT && sig == IPC_SIG_FLOW) {
		rec.flow[slot]++;
		rec.flow_on[slot] = v.sival_int;
	} else
		rec.other_signals++;
	return 0;
}

const char *
__wrap_chat_nick(const struct chat *c, int slot)
{
	return "nick";
}

const char *
__wrap_chat_room(const struct chat *c, int slot)
{
	return slot >= 0 && slot < NSLOT ? rec.room[slot] : NULL;
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
	assert_int_equal(flow_setup(&s), 0);
	for (i = 0; i < NSLOT; i++) {
		rfd[i] = -1;
		cl[i].fd = -1;
		rec.room[i] = "lobby";
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
	flow_free(&s);
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

/* Fill slot's pipe and leave `backlog` bytes in its backlog. */
static void
behind_by(int slot, size_t backlog)
{
	static char big[PIPE_CAP + 16 * 8192 * 2];

	memset(big, 'x', sizeof(big));
	fanout_send(&s, slot, big, PIPE_CAP + backlog);
}

/* The cut: slot 5 is cut as a slow consumer (SIGTERM with the reason),
 * its pipe closed, its backlog dropped, the chat told; slot 6 untouched. */
static void
assert_cut(void)
{
	char got[64];

	assert_int_equal(cl[5].state, CL_ABORTED);
	assert_int_equal(cl[5].fd, -1);
	assert_int_equal(buf_used(&cl[5].out), 0);
	assert_int_equal(cl[5].backlogged, 0);
	assert_int_equal(cl[5].flow.hot, 0);
	assert_int_equal(s.flow.nhot, 0);
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

/* Behind by more than --max-backlog but under the memory bound, and still
 * draining: kept (the room is paced instead); past the bound: cut. */
static void
test_backlog_past_max_is_kept_until_the_memory_bound(void **state)
{
	open_slot(5);
	open_slot(6);
	behind_by(5, s.flow.hard); /* = the bound */
	send_str(6, "MSG c hi\n");
	fanout_flush(&s);
	assert_int_equal(buf_used(&cl[5].out), s.flow.hard);
	assert_true(s.flow.hard > o.max_backlog);
	assert_int_equal(cl[5].state, CL_ACTIVE);
	assert_int_equal(cl[5].flow.hot, 1);
	assert_int_equal(s.flow.nhot, 1);
	assert_int_equal(s.slow_cuts, 0);
	send_str(5, "y"); /* one byte past it */
	fanout_flush(&s);
	assert_cut();
}

/* Hot and nothing drained for the stall time: cut.  (The clock is not
 * raced: the timestamps are moved back instead.) */
static void
test_hot_member_that_stalls_is_cut(void **state)
{
	open_slot(5);
	open_slot(6);
	behind_by(5, s.flow.high);
	send_str(6, "MSG c hi\n");
	fanout_flush(&s);
	assert_int_equal(cl[5].flow.hot, 1);
	fanout_flush_backlogs(&s); /* nothing drained, but not for long */
	assert_int_equal(cl[5].state, CL_ACTIVE);
	cl[5].flow.hot_ms -= s.flow.stall_ms;
	cl[5].flow.drained_ms -= s.flow.stall_ms;
	fanout_flush_backlogs(&s);
	assert_cut();
}

/* Hot, draining, but not down to the low-water mark within the pace
 * time: it holds its room too long, cut. */
static void
test_hot_member_too_slow_is_cut(void **state)
{
	char got[PIPE_CAP];

	open_slot(5);
	open_slot(6);
	behind_by(5, s.flow.high + 2 * PIPE_CAP);
	send_str(6, "MSG c hi\n");
	fanout_flush(&s);
	cl[5].flow.hot_ms -= s.flow.pace_ms - 1000;
	assert_int_equal(drain(5, got, sizeof(got)), PIPE_CAP);
	fanout_flush_backlogs(&s); /* it read: kept */
	assert_int_equal(cl[5].state, CL_ACTIVE);
	assert_int_equal(cl[5].flow.hot, 1);
	cl[5].flow.hot_ms -= 1000;
	assert_int_equal(drain(5, got, sizeof(got)), PIPE_CAP);
	fanout_flush_backlogs(&s); /* it read, but too slowly */
	assert_cut();
}

/* A member past the high-water mark pauses whoever speaks in its room,
 * once, and not a speaker of another room; back at the low-water mark
 * the paused speaker is resumed, once; nothing is lost meanwhile. */
static void
test_hot_room_pauses_its_senders_then_resumes(void **state)
{
	static char got[PIPE_CAP + 16384];
	size_t n = 0;

	open_slot(5); /* the reader behind */
	open_slot(6); /* a sender in its room */
	open_slot(7); /* a sender in another room */
	rec.room[7] = "elsewhere";
	behind_by(5, s.flow.high + 2 * PIPE_CAP);
	fanout_flush(&s);
	assert_int_equal(cl[5].flow.hot, 1);
	flow_spoke(&s, 6);
	flow_spoke(&s, 6); /* listed once */
	flow_spoke(&s, 7);
	assert_int_equal(s.flow.nspoke, 2);
	fanout_flush(&s);
	assert_int_equal(rec.flow[6], 1);
	assert_int_equal(rec.flow_on[6], 1);
	assert_int_equal(cl[6].flow.paused, 1);
	assert_int_equal(rec.flow[7], 0);
	assert_int_equal(s.flow.npaused, 1);
	flow_spoke(&s, 6); /* already paused: told nothing more */
	fanout_flush(&s);
	assert_int_equal(rec.flow[6], 1);
	/* the reader drains part: above the low mark, still paused */
	n += drain(5, got, PIPE_CAP);
	fanout_flush_backlogs(&s);
	assert_true(buf_used(&cl[5].out) > s.flow.low);
	assert_int_equal(cl[5].flow.hot, 1);
	assert_int_equal(rec.flow[6], 1);
	/* and the rest: cool, the sender resumes */
	while (cl[5].backlogged) {
		n += drain(5, got + n, sizeof(got) - n);
		fanout_flush_backlogs(&s);
	}
	n += drain(5, got + n, sizeof(got) - n);
	assert_int_equal(n, 3 * PIPE_CAP + s.flow.high);
	assert_int_equal(cl[5].flow.hot, 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
	assert_int_equal(cl[6].flow.paused, 0);
	assert_int_equal(s.flow.npaused, 0);
	assert_int_equal(s.slow_cuts, 0);
	assert_int_equal(rec.sigq[5], 0);
}

/* A member cut while hot holds its room back no longer: the paused
 * sender is resumed. */
static void
test_cut_member_releases_its_room(void **state)
{
	open_slot(5);
	open_slot(6);
	behind_by(5, s.flow.high);
	flow_spoke(&s, 6);
	fanout_flush(&s);
	assert_int_equal(rec.flow_on[6], 1);
	fanout_abort(&s, 5, IPC_ABORT_SLOW_CONSUMER);
	fanout_flush(&s);
	assert_int_equal(s.flow.nhot, 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
	assert_int_equal(cl[6].flow.paused, 0);
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
		    test_backlog_past_max_is_kept_until_the_memory_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_hot_member_that_stalls_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hot_member_too_slow_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hot_room_pauses_its_senders_then_resumes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cut_member_releases_its_room, setup, teardown),
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
