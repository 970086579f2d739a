/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_bridge.c - unit tests for the federation bridge's own state,
 * bridge.c: the reconnect backoff (doubles from BACKOFF_MIN, capped at
 * BACKOFF_MAX and at the reply timeout, back to the minimum once Redis
 * answered), what an outage does (claims in flight accepted locally, the
 * parent told "down" once and the outage logged once, unsent position
 * rewound to the acknowledged one) and the acknowledgement of the outbox
 * (acked follows the entries in order; what Redis has is kept up to
 * BRIDGE_RETAIN bytes, and the send position follows the trimming), and
 * what Redis's replies do, parsed from RESP bytes: stream entries to the
 * parent (ours skipped, none without an "e" field lost, a huge one cut to
 * a counted stub) then the cursor, nil or malformed XREAD replies
 * ignored, errors logged, claim and refresh answers, the first stream id,
 * and INFO's run_id (a restarted Redis gets the kept events again).
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

/* ---- replies from Redis --------------------------------------------- */

/* One record for the parent, in order: type, code, payload. */
struct rec {
	uint16_t type, code;
	uint32_t slot;
	char p[256];
	size_t len;
};

static int
next_rec(struct rec *r)
{
	struct ipc_hdr h;
	size_t n;

	if (buf_used(&br.pout) < IPC_HDR)
		return 0;
	memcpy(&h, buf_head(&br.pout), IPC_HDR);
	assert_true(buf_used(&br.pout) >= IPC_HDR + h.len);
	r->type = h.type;
	r->code = h.code;
	r->slot = h.slot;
	n = h.len < sizeof(r->p) - 1 ? h.len : sizeof(r->p) - 1;
	memcpy(r->p, buf_head(&br.pout) + IPC_HDR, n);
	r->p[n] = '\0';
	r->len = h.len;
	buf_consume(&br.pout, IPC_HDR + h.len);
	return 1;
}

static void
expect_rec(uint16_t type, uint16_t code, const char *payload)
{
	struct rec r;

	assert_int_equal(next_rec(&r), 1);
	assert_int_equal(r.type, type);
	assert_int_equal(r.code, code);
	if (payload != NULL)
		assert_string_equal(r.p, payload);
}

static void
expect_no_rec(void)
{
	struct rec r;

	assert_int_equal(next_rec(&r), 0);
}

/* Parse one RESP reply into br.nodes: its node count. */
static size_t
reply(const char *resp, size_t len)
{
	size_t count = 0;

	assert_int_equal(
	    resp_parse(resp, len, br.nodes, MAX_NODES, &count), (long)len);
	return count;
}

#define REPLY(s) reply((s), sizeof(s) - 1)

/* Entries: [id, [field, value...]]: others' to the parent, ours not; an
 * entry without an "e" field is counted (code 1); then the cursor. */
static void
test_xread_entries_to_the_parent_then_the_cursor(void **state)
{
	static const char r[] =
	    "*1\r\n*2\r\n$5\r\nfc:ev\r\n*4\r\n"
	    "*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\ne\r\n$11\r\nhub2/2 1 hi\r\n"
	    "*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\ne\r\n$14\r\nhub1/1.1 7 own\r\n"
	    "*2\r\n$3\r\n1-3\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
	    "*2\r\n:5\r\n*0\r\n";

	br.reading = 1;
	handle_xread(&br, REPLY(r));
	assert_int_equal(br.reading, 0);
	expect_rec(IPC_FED_EVENT, 0, "hub2/2 1 hi");
	expect_rec(IPC_FED_EVENT, 1, ""); /* 1-3: no "e" */
	expect_rec(IPC_FED_CURSOR, 0, "1-3");
	expect_no_rec();
	assert_string_equal(br.lastid, "1-3");
}

/* A nil (the block timed out) or a reply of another shape: nothing. */
static void
test_xread_nil_or_malformed_is_ignored(void **state)
{
	br.reading = 1;
	handle_xread(&br, REPLY("*-1\r\n"));
	assert_int_equal(br.reading, 0);
	handle_xread(&br, REPLY("$2\r\nno\r\n"));
	handle_xread(&br, REPLY("*1\r\n*2\r\n:1\r\n*0\r\n"));
	handle_xread(&br, REPLY("*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"));
	handle_xread(&br, REPLY("*1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n"));
	expect_no_rec();
	assert_string_equal(br.lastid, "");
}

/* An id too long for the cursor: the entry goes on, the cursor does not
 * move; an entry too big for the parent is cut to a counted stub. */
static void
test_xread_long_id_and_huge_entry(void **state)
{
	static char r[FEDEV_MAX + 512];
	char id[80];
	size_t n, big = FEDEV_MAX + 1;

	memset(id, '9', sizeof(id));
	n = (size_t)snprintf(r, sizeof(r),
	    "*1\r\n*2\r\n$5\r\nfc:ev\r\n*1\r\n*2\r\n$%zu\r\n%.*s\r\n*2\r\n"
	    "$1\r\ne\r\n$%zu\r\nhub2/2 1 ",
	    sizeof(id), (int)sizeof(id), id, big);
	memset(r + n, 'b', big - 9);
	n += big - 9;
	memcpy(r + n, "\r\n", 2);
	n += 2;
	handle_xread(&br, reply(r, n));
	expect_rec(IPC_FED_EVENT, 2, NULL);
	expect_no_rec(); /* no cursor */
	assert_string_equal(br.lastid, "");
}

/* Tags and their replies. */
static void
push_tag(enum tag_kind kind, uint32_t token, const char *key)
{
	struct tag t;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	t.token = token;
	if (key != NULL)
		snprintf(t.key, sizeof(t.key), "%s", key);
	handle_reply(&br, &t, 0);
}

/* An error reply is logged as an error, whatever it answers. */
static void
test_redis_error_reply_is_logged(void **state)
{
	REPLY("-ERR wrong number of arguments\r\n");
	push_tag(TAG_OTHER, 0, NULL);
	expect_rec(IPC_FED_LOG, 2,
	    "federation: redis error: ERR wrong number of arguments");
	expect_no_rec();
}

/* A claim: a positive stamp is ok; 0 is taken (the nick forgotten); an
 * error is accepted locally (logged; the refresh re-checks it). */
static void
test_claim_replies(void **state)
{
	owned_add(&br, "ann", 0);
	owned_add(&br, "bea", 0);
	REPLY(":1700000000000\r\n");
	push_tag(TAG_CLAIM, 3, "ann");
	expect_rec(IPC_FED_CLAIMED, 1, NULL);
	assert_non_null(owned_find(&br, "ann"));

	REPLY(":0\r\n");
	push_tag(TAG_CLAIM, 4, "ann");
	expect_rec(IPC_FED_CLAIMED, 0, NULL);
	assert_null(owned_find(&br, "ann"));

	REPLY("-BUSY script\r\n");
	push_tag(TAG_CLAIM, 5, "bea");
	expect_rec(IPC_FED_LOG, 2, NULL);
	expect_rec(IPC_FED_CLAIMED, 1, NULL);
	assert_non_null(owned_find(&br, "bea"));
	expect_no_rec();
	free(br.owned);
}

/* A refresh: > 0 kept, < 0 kept and the other hub's user told, 0 lost;
 * for a nick released meanwhile, or a reply that is no number: nothing. */
static void
test_refresh_replies(void **state)
{
	owned_add(&br, "ann", 0);
	owned_add(&br, "bea", 0);
	REPLY(":1700000000001\r\n");
	push_tag(TAG_REFRESH, 0, "ann");
	expect_no_rec();
	assert_int_equal(owned_find(&br, "ann")->stamp, 1700000000001LL);

	REPLY(":-1700000000002\r\n");
	push_tag(TAG_REFRESH, 0, "ann");
	expect_rec(IPC_FED_LOG, 1, NULL);
	expect_rec(IPC_FED_LOST, 1, "ann");
	assert_int_equal(owned_find(&br, "ann")->stamp, 1700000000002LL);

	REPLY(":0\r\n");
	push_tag(TAG_REFRESH, 0, "bea");
	expect_rec(IPC_FED_LOG, 1, NULL);
	expect_rec(IPC_FED_LOST, 0, "bea");
	assert_null(owned_find(&br, "bea"));

	push_tag(TAG_REFRESH, 0, "bea"); /* released: ignored */
	REPLY("$2\r\nno\r\n");
	push_tag(TAG_REFRESH, 0, "ann");
	expect_no_rec();
	assert_int_equal(owned_find(&br, "ann")->stamp, 1700000000002LL);
	free(br.owned);
}

/* The first id of the stream is the cursor (once) and reading starts;
 * an answer without an id starts nothing. */
static void
test_sync_sets_the_cursor_once_and_starts_reading(void **state)
{
	REPLY("$-1\r\n");
	push_tag(TAG_SYNC, 0, NULL);
	expect_no_rec();
	assert_int_equal(br.reading, 0);

	REPLY("$3\r\n5-0\r\n");
	push_tag(TAG_SYNC, 0, NULL);
	expect_rec(IPC_FED_CURSOR, 0, "5-0");
	assert_int_equal(br.reading, 1);
	assert_true(buf_used(&br.sub.out) > 0); /* the XREAD */

	br.reading = 0;
	REPLY("$3\r\n9-0\r\n");
	push_tag(TAG_SYNC, 0, NULL);
	expect_no_rec(); /* the cursor is kept */
	assert_string_equal(br.lastid, "5-0");
	assert_int_equal(br.reading, 1);
}

/* INFO: the run_id at a line start; a new one is told to the parent; a
 * changed one with acknowledged events sends them again; the same one, a
 * missing or an oversized one changes nothing. */
static void
test_info_run_id(void **state)
{
	static const char a[] =
	    "$33\r\n# Server\r\nxrun_id:zz\r\nrun_id:aaaa\r\n";
	char big[128], r[200];
	size_t n;

	br.await_info = 1;
	REPLY(a);
	push_tag(TAG_INFO, 0, NULL);
	assert_int_equal(br.await_info, 0);
	assert_string_equal(br.run_id, "aaaa");
	expect_rec(IPC_FED_REDIS, 0, "aaaa");
	expect_rec(IPC_FED_LOG, 0, NULL); /* connected */
	expect_rec(IPC_FED_UP, 1, NULL);
	expect_no_rec();

	REPLY(a); /* the same Redis */
	push_tag(TAG_INFO, 0, NULL);
	expect_no_rec();

	br.nacked = br.nsent = 224; /* acknowledged, kept */
	REPLY("$16\r\nrun_id:bbbb\r\nx:1\r\n");
	push_tag(TAG_INFO, 0, NULL);
	expect_rec(IPC_FED_LOG, 1, NULL); /* restarted: sent again */
	expect_rec(IPC_FED_REDIS, 0, "bbbb");
	expect_no_rec();
	assert_int_equal(br.nsent, 0);
	assert_string_equal(br.run_id, "bbbb");

	memset(big, 'c', sizeof(big));
	n = (size_t)snprintf(r, sizeof(r), "$%zu\r\nrun_id:%.*s\r\n",
	    7 + sizeof(big), (int)sizeof(big), big);
	reply(r, n);
	push_tag(TAG_INFO, 0, NULL);
	REPLY("$10\r\nno run id\n\r\n");
	push_tag(TAG_INFO, 0, NULL);
	REPLY(":1\r\n");
	push_tag(TAG_INFO, 0, NULL);
	expect_no_rec();
	assert_string_equal(br.run_id, "bbbb");
	assert_int_equal(br.nsent, 224);
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
		cmocka_unit_test_setup_teardown(
		    test_xread_entries_to_the_parent_then_the_cursor, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_xread_nil_or_malformed_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_xread_long_id_and_huge_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_redis_error_reply_is_logged, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_claim_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_refresh_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sync_sets_the_cursor_once_and_starts_reading, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_info_run_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
