/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_flow.c - unit tests for flow control, flow.c, driven through the
 * fan-out it is plugged into (fanout.c, real pipes of one page): a member
 * behind by more than --max-backlog but still draining is kept and paces
 * its room instead; the senders of a room with a hot member (backlog past
 * the high-water mark) are paused once each (IPC_SIG_FLOW, 1), a sender
 * of another room is not, and they resume (0) once the member is back to
 * the low-water mark; a member that drains nothing for the stall time, or
 * that stays hot for the pace time, or whose backlog passes the memory
 * bound, is cut as a slow consumer; a cut member releases its room; a
 * paused sender's records are held in order and replayed in slices once
 * its room has caught up, and only then is it told to resume; a failed
 * pause is retried.
 *
 * Seams (WRAP_test_flow): kill and sigqueue are recorded, not sent (the
 * pids are fake).  The clock is the test's (flow_cfg.now_ms), so no test
 * races the wall clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "server/fanout.h"
#include "server/flow.h"

#define NSLOT    16
#define PIPE_CAP 4096
#define PID0     900000 /* fake child pids: PID0 + slot */
#define MAXB     8192   /* --max-backlog: high 2048, low 512 */

static struct {
	int sigterm[NSLOT]; /* cuts: SIGTERM via sigqueue */
	int flow[NSLOT];    /* IPC_SIG_FLOW per slot */
	int flow_on[NSLOT]; /* its last si_value */
	int cuts[NSLOT];    /* the fan-out's cut callback */
	int fail_flow;      /* sigqueue(IPC_SIG_FLOW) fails while set */
	const char *room[NSLOT];
	long long now;
	char replayed[256]; /* payloads handed back by flow_replay */
	size_t nreplayed;
} rec;

int
__wrap_kill(pid_t pid, int sig)
{
	return 0;
}

int
__wrap_sigqueue(pid_t pid, int sig, const union sigval v)
{
	int slot = (int)pid - PID0;

	assert_true(slot >= 0 && slot < NSLOT);
	if (sig == SIGTERM)
		rec.sigterm[slot]++;
	else if (sig == IPC_SIG_FLOW) {
		if (rec.fail_flow)
			return -1;
		rec.flow[slot]++;
		rec.flow_on[slot] = v.sival_int;
	} else
		fail_msg("unexpected signal %d", sig);
	return 0;
}

static struct fanout *fo;
static struct flow *fl;
static int rfd[NSLOT];

static const char *
room_of(void *ctx, int slot)
{
	return rec.room[slot];
}

static const char *
nick_of(void *ctx, int slot)
{
	return "nick";
}

static pid_t
pid_of(void *ctx, int slot)
{
	return fanout_state(fo, slot) == FANOUT_ACTIVE ? PID0 + slot : 0;
}

static long long
clock_of(void *ctx)
{
	return rec.now;
}

static void
on_cut(void *ctx, int slot, enum ipc_abort why, size_t backlog)
{
	assert_int_equal(why, IPC_ABORT_SLOW_CONSUMER);
	rec.cuts[slot]++;
}

static int
setup(void **state)
{
	struct flow_cfg fc = { NSLOT, MAXB, NULL, room_of, nick_of, pid_of,
		clock_of };
	struct fanout_cfg cfg = { NSLOT, MAXB, NULL, on_cut, NULL, NULL };
	int i, p[2];

	memset(&rec, 0, sizeof(rec));
	rec.now = 1000000;
	fl = flow_new(&fc);
	assert_non_null(fl);
	cfg.flow = fl;
	fo = fanout_new(&cfg);
	assert_non_null(fo);
	for (i = 0; i < NSLOT; i++) {
		rec.room[i] = "lobby";
		assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
		assert_true(fcntl(p[1], F_SETPIPE_SZ, PIPE_CAP) >= PIPE_CAP);
		rfd[i] = p[0];
		fanout_open(fo, i, PID0 + i, p[1]);
	}
	return 0;
}

static int
teardown(void **state)
{
	int i;

	for (i = 0; i < NSLOT; i++)
		close(rfd[i]);
	fanout_free(fo);
	flow_free(fl);
	return 0;
}

static size_t
drain(int i, size_t max)
{
	static char junk[65536];
	size_t got = 0;
	ssize_t n;

	if (max > sizeof(junk))
		max = sizeof(junk);
	while (got < max && (n = read(rfd[i], junk, max - got)) > 0)
		got += (size_t)n;
	return got;
}

/* Fill slot's pipe and leave `backlog` bytes in its backlog. */
static void
behind_by(int slot, size_t backlog)
{
	static char big[PIPE_CAP + MAXB * FLOW_HARD_FACTOR + 16];

	memset(big, 'x', sizeof(big));
	fanout_send(fo, slot, big, PIPE_CAP + backlog);
	fanout_flush(fo);
}

static void
assert_cut(int slot)
{
	assert_int_equal(fanout_state(fo, slot), FANOUT_ABORTED);
	assert_int_equal(rec.cuts[slot], 1);
	assert_int_equal(rec.sigterm[slot], 1);
	assert_int_equal(fanout_slow_cuts(fo), 1);
	assert_int_equal(flow_nhot(fl), 0);
	assert_int_equal(flow_is_hot(fl, slot), 0);
}

/* Behind by 16 x --max-backlog (far past it) and still there: kept, hot;
 * one byte more is past the memory bound: cut. */
static void
test_backlog_past_max_is_kept_until_the_memory_bound(void **state)
{
	behind_by(5, MAXB * FLOW_HARD_FACTOR);
	assert_int_equal(fanout_state(fo, 5), FANOUT_ACTIVE);
	assert_int_equal(flow_is_hot(fl, 5), 1);
	assert_int_equal(fanout_slow_cuts(fo), 0);
	fanout_send(fo, 5, "y", 1);
	fanout_flush(fo);
	assert_cut(5);
}

/* Hot and nothing drained: kept for just under the stall time, cut at it. */
static void
test_hot_member_that_stalls_is_cut(void **state)
{
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	assert_int_equal(flow_is_hot(fl, 5), 1);
	rec.now += FLOW_STALL_MS - 1;
	fanout_flush_backlogs(fo);
	assert_int_equal(fanout_state(fo, 5), FANOUT_ACTIVE);
	rec.now += 1;
	fanout_flush_backlogs(fo);
	assert_cut(5);
}

/* Hot, draining a page just before each stall time, never down to the
 * low mark: kept while it drains, cut once hot for the pace time. */
static void
test_hot_member_too_slow_is_cut(void **state)
{
	int i;

	behind_by(5, 6 * PIPE_CAP); /* a page drained per step */
	for (i = 1; i * (FLOW_STALL_MS - 1) < FLOW_PACE_MS; i++) {
		rec.now += FLOW_STALL_MS - 1;
		fanout_send(fo, 5, "z", 1); /* the room still talks a bit */
		assert_int_equal(drain(5, PIPE_CAP), PIPE_CAP);
		fanout_flush_backlogs(fo);
		assert_int_equal(fanout_state(fo, 5), FANOUT_ACTIVE);
		assert_int_equal(flow_is_hot(fl, 5), 1);
	}
	rec.now += FLOW_STALL_MS - 1;
	assert_int_equal(drain(5, PIPE_CAP), PIPE_CAP);
	fanout_flush_backlogs(fo);
	assert_cut(5);
}

/* The room's senders are paused once each, another room's sender not;
 * back at the low mark they resume, once; nothing is lost meanwhile. */
static void
test_hot_room_pauses_its_senders_then_resumes(void **state)
{
	size_t n = 0;

	rec.room[7] = "elsewhere";
	behind_by(5, MAXB / FLOW_HIGH_DIV + 2 * PIPE_CAP);
	assert_int_equal(flow_nhot(fl), 1);
	flow_spoke(fl, 6);
	flow_spoke(fl, 6); /* listed once */
	flow_spoke(fl, 7);
	fanout_flush(fo);
	assert_int_equal(rec.flow[6], 1);
	assert_int_equal(rec.flow_on[6], 1);
	assert_int_equal(flow_is_paused(fl, 6), 1);
	assert_int_equal(rec.flow[7], 0);
	assert_int_equal(flow_npaused(fl), 1);
	flow_spoke(fl, 6); /* already paused: told nothing more */
	fanout_flush(fo);
	assert_int_equal(rec.flow[6], 1);
	/* one page read: still above the low mark, still paused */
	n += drain(5, PIPE_CAP);
	fanout_flush_backlogs(fo);
	assert_int_equal(flow_is_hot(fl, 5), 1);
	assert_int_equal(rec.flow[6], 1);
	while (fanout_nbacklog(fo) > 0) {
		n += drain(5, PIPE_CAP);
		fanout_flush_backlogs(fo);
	}
	n += drain(5, PIPE_CAP);
	assert_int_equal(n, 3 * PIPE_CAP + MAXB / FLOW_HIGH_DIV);
	assert_int_equal(flow_is_hot(fl, 5), 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
	assert_int_equal(flow_npaused(fl), 0);
	assert_int_equal(fanout_slow_cuts(fo), 0);
}

/* Output for a hot member from another room's client (a whisper, the
 * JOIN/PART lines of a join/leave storm) pauses that client, who stays
 * paused while another member cools and resumes once its target has;
 * output for a member that is not hot, or to itself, pauses nobody. */
static void
test_output_to_a_hot_member_paces_its_origin(void **state)
{
	rec.room[5] = rec.room[4] = "elsewhere";
	rec.room[3] = "third";
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	behind_by(3, MAXB / FLOW_HIGH_DIV);
	assert_int_equal(flow_nhot(fl), 2);
	flow_from(fl, 6);
	flow_sent(fl, 6); /* its own reply */
	flow_sent(fl, 4); /* not hot */
	flow_from(fl, -1);
	flow_sent(fl, 5); /* nobody's record */
	fanout_flush(fo);
	assert_int_equal(rec.flow[6], 0);
	flow_from(fl, 6); /* in the lobby, whispers 5 in "elsewhere" */
	flow_sent(fl, 5);
	fanout_send(fo, 5, "WHISPER x y\n", 12);
	flow_from(fl, -1);
	fanout_flush(fo);
	assert_int_equal(rec.flow[6], 1);
	assert_int_equal(rec.flow_on[6], 1);
	assert_int_equal(flow_is_paused(fl, 6), 1);
	while (flow_is_hot(fl, 3)) { /* another member cools first */
		drain(3, PIPE_CAP);
		fanout_flush_backlogs(fo);
	}
	assert_int_equal(flow_is_paused(fl, 6), 1);
	while (flow_is_hot(fl, 5)) {
		drain(5, PIPE_CAP);
		fanout_flush_backlogs(fo);
	}
	assert_int_equal(flow_is_paused(fl, 6), 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
	assert_int_equal(rec.flow[7], 0);
	assert_int_equal(fanout_slow_cuts(fo), 0);
}

/* A member cut while hot holds its room back no longer. */
static void
test_cut_member_releases_its_room(void **state)
{
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	flow_spoke(fl, 6);
	fanout_flush(fo);
	assert_int_equal(rec.flow_on[6], 1);
	fanout_abort(fo, 5, IPC_ABORT_SLOW_CONSUMER);
	fanout_flush(fo);
	assert_int_equal(flow_nhot(fl), 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
}

/* A pause that could not be sent is not counted as sent, and is sent on
 * the next turn. */
static void
test_failed_pause_is_retried(void **state)
{
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	flow_spoke(fl, 6);
	rec.fail_flow = 1;
	fanout_flush(fo);
	assert_int_equal(flow_is_paused(fl, 6), 0);
	rec.fail_flow = 0;
	flow_spoke(fl, 6); /* it keeps talking */
	fanout_flush(fo);
	assert_int_equal(flow_is_paused(fl, 6), 1);
	assert_int_equal(rec.flow[6], 1);
}

static void
on_record(void *ctx, const struct ipc_hdr *h, const char *p)
{
	assert_true(rec.nreplayed + h->len <= sizeof(rec.replayed));
	memcpy(rec.replayed + rec.nreplayed, p, h->len);
	rec.nreplayed += h->len;
}

static int
hold(int slot, const char *text)
{
	struct ipc_hdr h = { (uint32_t)slot, IPC_LINE, 0,
		(uint32_t)strlen(text) };

	return flow_hold(fl, slot, &h, text);
}

/* Records of a paused sender are held, in order, even once it resumes,
 * until replayed; the replay goes a slice at a time, and only for senders
 * that are no longer paused; a slot being freed gives up all it holds. */
static void
test_paused_sender_records_held_then_replayed_in_order(void **state)
{
	assert_int_equal(hold(6, "not paused"), 0); /* goes now */
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	flow_spoke(fl, 6);
	flow_spoke(fl, 8);
	fanout_flush(fo);
	assert_int_equal(hold(6, "a1 "), 1);
	assert_int_equal(hold(6, "a2 "), 1);
	assert_int_equal(hold(8, "b1 "), 1);
	/* paused: nothing replayed */
	assert_int_equal(flow_replay(fl, -1, 1000, on_record, NULL), 0);
	assert_int_equal(rec.nreplayed, 0);
	while (fanout_nbacklog(fo) > 0) { /* the reader catches up */
		drain(5, PIPE_CAP);
		fanout_flush_backlogs(fo);
	}
	/* still paused until what it holds is handled */
	assert_int_equal(flow_is_paused(fl, 6), 1);
	assert_int_equal(rec.flow[6], 1);
	assert_int_equal(hold(6, "a3 "), 1); /* behind its held ones */
	/* a slice of 1 byte: one record, then more is left */
	assert_int_equal(flow_replay(fl, -1, 1, on_record, NULL), 1);
	assert_int_equal(rec.nreplayed, 3);
	assert_memory_equal(rec.replayed, "a1 ", 3);
	assert_int_equal(flow_is_paused(fl, 6), 1);
	assert_int_equal(flow_replay(fl, -1, 1000, on_record, NULL), 0);
	assert_int_equal(rec.nreplayed, 12);
	assert_memory_equal(rec.replayed, "a1 a2 a3 b1 ", 12);
	/* all handled: told to read again, once each */
	assert_int_equal(flow_is_paused(fl, 6), 0);
	assert_int_equal(flow_is_paused(fl, 8), 0);
	assert_int_equal(rec.flow[6], 2);
	assert_int_equal(rec.flow_on[6], 0);
	assert_int_equal(rec.flow_on[8], 0);
	assert_int_equal(hold(6, "now"), 0); /* nothing held: goes now */
	/* paused again, then freed: all of it, at once */
	behind_by(5, MAXB / FLOW_HIGH_DIV);
	flow_spoke(fl, 6);
	fanout_flush(fo);
	assert_int_equal(hold(6, "c1 "), 1);
	assert_int_equal(flow_replay(fl, 6, 0, on_record, NULL), 0);
	assert_memory_equal(rec.replayed + 12, "c1 ", 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
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
		    test_output_to_a_hot_member_paces_its_origin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cut_member_releases_its_room, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failed_pause_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_paused_sender_records_held_then_replayed_in_order,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
