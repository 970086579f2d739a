/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_bridge.c - unit tests for the federation bridge's own state,
 * bridge.c: the reconnect backoff (doubles from BACKOFF_MIN, capped at
 * BACKOFF_MAX and at the reply timeout, back to the minimum once Redis
 * answered), what an outage does (claims in flight accepted locally, the
 * parent told "down" once and the outage logged once, unsent position
 * rewound to the acknowledged one) and the acknowledgement of the outbox
 * (acked follows the entries in order; what Redis has is kept up to
 * BRIDGE_RETAIN bytes, and the send position follows the trimming).
 *
 * The static functions are reached by including bridge.c (its bridge_run
 * then comes from here, not from libforkchat.a).  No socket, no Redis:
 * the connections are closed fds (-1) and records for the parent are read
 * back from the bridge's own queue (pout).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fed/bridge.c"

static struct bridge_cfg cfg;
static struct bridge br;

static int
setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	cfg.port = 6379;
	cfg.origin = "hub1/1.1";
	cfg.timeout_ms = 10000;
	cfg.up_fd = -1;
	memset(&br, 0, sizeof(br));
	br.cfg = &cfg;
	br.cmd.fd = br.sub.fd = -1;
	br.backoff = BACKOFF_MIN;
	return 0;
}

static int
teardown(void **state)
{
	buf_free(&br.cmd.out);
	buf_free(&br.cmd.in);
	buf_free(&br.cmd.tags);
	buf_free(&br.sub.out);
	buf_free(&br.sub.in);
	buf_free(&br.sub.tags);
	buf_free(&br.outbox);
	buf_free(&br.pout);
	return 0;
}

/* Records queued for the parent, by type; consumed. */
struct recs {
	int up0, up1, claimed_ok, logs, acked;
	uint32_t tokens[8];
};

static void
take_records(struct recs *r)
{
	struct ipc_hdr h;

	memset(r, 0, sizeof(*r));
	while (buf_used(&br.pout) >= IPC_HDR) {
		memcpy(&h, buf_head(&br.pout), IPC_HDR);
		assert_true(buf_used(&br.pout) >= IPC_HDR + h.len);
		if (h.type == IPC_FED_UP)
			*(h.code ? &r->up1 : &r->up0) += 1;
		else if (h.type == IPC_FED_CLAIMED && h.code == 1) {
			if (r->claimed_ok < 8)
				r->tokens[r->claimed_ok] = h.slot;
			r->claimed_ok++;
		} else if (h.type == IPC_FED_LOG)
			r->logs++;
		else if (h.type == IPC_FED_ACKED)
			r->acked++;
		buf_consume(&br.pout, IPC_HDR + h.len);
	}
}

/*
 * go_down() schedules the retry backoff ms from now and then doubles the
 * backoff: the delay it chose is the backoff before the call.  Checked
 * without an upper bound on the clock (no race with a slow machine): the
 * retry is at least that far from a clock read before the call.
 */
static long long
down_delay(const char *why)
{
	long long t0 = clock_mono_ms(), d = br.backoff;

	go_down(&br, why);
	assert_true(br.retry_ms >= t0 + d);
	return d;
}

static void
assert_delay(long long got, long long want)
{
	assert_int_equal(got, want);
}

/* 100, 200, 400, ..., then BACKOFF_MAX (5000) for good. */
static void
test_backoff_doubles_to_the_cap(void **state)
{
	long long want[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000 };
	size_t i;
	struct recs r;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_delay(down_delay("connection refused"), want[i]);
	take_records(&r);
	assert_int_equal(r.logs, 1); /* the outage is logged once */
	assert_int_equal(r.up0, 0);  /* never was live: nothing to retract */
}

/* A reply timeout shorter than BACKOFF_MAX caps the backoff: after a
 * hang, Redis is back that soon. */
static void
test_backoff_capped_by_timeout(void **state)
{
	long long want[] = { 100, 200, 400, 800, 1000, 1000 };
	size_t i;

	cfg.timeout_ms = 1000;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_delay(down_delay("timeout"), want[i]);
}

/* Live again: the backoff starts over, the parent is told up, and the
 * next outage is told and logged again. */
static void
test_live_resets_backoff_and_tells_parent(void **state)
{
	struct recs r;

	(void)down_delay("x");
	(void)down_delay("x");
	(void)down_delay("x"); /* next would be 800 */
	now_live(&br);
	take_records(&r);
	assert_int_equal(r.up1, 1);
	assert_int_equal(br.live, 1);
	assert_int_equal(br.outage_logged, 0);
	/* the first outage, "back after N ms out", "connected to" */
	assert_int_equal(r.logs, 3);
	assert_delay(down_delay("connection lost"), 100);
	take_records(&r);
	assert_int_equal(r.up0, 1);  /* told down once */
	assert_int_equal(r.logs, 1); /* this outage logged once */
	(void)down_delay("again");
	take_records(&r);
	assert_int_equal(r.up0, 0);
	assert_int_equal(r.logs, 0);
}

/* Claims sent and not answered when Redis goes: accepted locally (the
 * refresh re-checks them), each once; other replies are dropped. */
static void
test_outage_accepts_claims_in_flight(void **state)
{
	struct tag t = { 0 };
	struct recs r;

	t.kind = TAG_CLAIM;
	t.token = 7;
	assert_int_equal(buf_append(&br.cmd.tags, &t, sizeof(t)), 0);
	t.kind = TAG_XADD;
	t.token = 0;
	assert_int_equal(buf_append(&br.cmd.tags, &t, sizeof(t)), 0);
	t.kind = TAG_CLAIM;
	t.token = 9;
	assert_int_equal(buf_append(&br.cmd.tags, &t, sizeof(t)), 0);
	go_down(&br, "connection reset");
	take_records(&r);
	assert_int_equal(r.claimed_ok, 2);
	assert_int_equal(r.tokens[0], 7);
	assert_int_equal(r.tokens[1], 9);
	assert_int_equal(buf_used(&br.cmd.tags), 0);
	go_down(&br, "connection reset");
	take_records(&r);
	assert_int_equal(r.claimed_ok, 0);
}

/* An outbox entry: [seq 8][len 4][body]. */
static void
outbox_add(unsigned long long seq, size_t len)
{
	uint32_t l = (uint32_t)len;
	char *e = buf_reserve(&br.outbox, 12 + len);

	assert_non_null(e);
	memcpy(e, &seq, 8);
	memcpy(e + 8, &l, 4);
	memset(e + 12, 'e', len);
	buf_commit(&br.outbox, 12 + len);
}

/* Each acknowledgement moves acked to the next entry, in order; an outage
 * rewinds the send position to the first unacknowledged entry (they are
 * sent again; the acknowledged ones are not). */
static void
test_ack_in_order_and_outage_rewinds(void **state)
{
	int i;

	for (i = 1; i <= 4; i++)
		outbox_add((unsigned long long)i, 100);
	br.nsent = buf_used(&br.outbox); /* all four written */
	outbox_ack(&br);
	outbox_ack(&br);
	assert_int_equal(br.acked, 2);
	assert_int_equal(br.nacked, 2 * 112);
	go_down(&br, "lost");
	assert_int_equal(br.nsent, 2 * 112);
	/* more acks than entries: acked stays at the last one */
	outbox_ack(&br);
	outbox_ack(&br);
	outbox_ack(&br);
	assert_int_equal(br.acked, 4);
	assert_int_equal(br.nacked, 4 * 112);
}

/* Acknowledged entries are kept up to BRIDGE_RETAIN bytes (to send again
 * if Redis restarts); the oldest go first, and the send position moves
 * with the trimmed head. */
static void
test_retain_trims_oldest_acked(void **state)
{
	size_t body = 1u << 20, per = 12 + body;
	unsigned long long first;
	int i, n = 12;

	for (i = 1; i <= n; i++)
		outbox_add((unsigned long long)i, body);
	br.nsent = buf_used(&br.outbox);
	for (i = 0; i < n - 2; i++)
		outbox_ack(&br); /* 10 acknowledged, 2 not */
	assert_int_equal(br.acked, (unsigned long long)(n - 2));
	assert_true(br.nacked <= BRIDGE_RETAIN);
	assert_int_equal(br.nacked, (BRIDGE_RETAIN / per) * per);
	/* what is left: the newest acknowledged ones, then the 2 others */
	memcpy(&first, buf_head(&br.outbox), 8);
	assert_int_equal(
	    first, (unsigned long long)(n - 2) - BRIDGE_RETAIN / per + 1);
	assert_int_equal(buf_used(&br.outbox), br.nacked + 2 * per);
	assert_int_equal(br.nsent, buf_used(&br.outbox));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_backoff_doubles_to_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_capped_by_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_live_resets_backoff_and_tells_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_outage_accepts_claims_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ack_in_order_and_outage_rewinds, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retain_trims_oldest_acked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
