/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fed.c - unit tests for the parent's side of federation, fed.c:
 * dedup of stream events per origin (a resent or re-read event is handled
 * once; our own are ignored; presence is never a duplicate), retention of
 * our events (those Redis acknowledged are kept up to BRIDGE_RETAIN
 * bytes, the unacknowledged ones always, and a new bridge is handed both,
 * in order), nick
 * claims and releases a dead bridge took with it, the restart backoff
 * (not before RESTART_MS; a failed fork retries later and decides the
 * pending claims locally), a corrupt record from the bridge (input
 * dropped, bridge ended), a start that fails (no descriptor left) and the
 * hub's default name (HOSTNAME-PORT).
 *
 * Seams (WRAP_test_fed): fork returns a fake pid (no bridge runs: the
 * test plays it), pipe2 keeps the test a copy of the bridge's ends, kill
 * and waitpid are recorded, and the chat_fed_* calls fed.c makes into the
 * chat are recorded instead.
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
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fed/bridge.h"
#include "lib/buf.h"
#include "sys/clock.h"
#include "fed/fed.h"
#include "fed/fedipc.h"
#include "lib/stats.h"

#define FAKE_PID 800000
#define ORIG     "hub2/1733400000123.4242 "

static struct {
	int forks, fork_fail;
	int pipe_fail_at; /* fail the pipe2 call with this index + 1, or 0 */
	int npipe;        /* pipe2 calls: even = down, odd = up */
	int down_r;       /* the bridge's read end (what the parent sends) */
	int up_w;       /* the bridge's write end (what it tells the parent) */
	int kills_term; /* SIGTERM to the bridge (fed_stop) */
	char lines[64][128];
	int nlines;
	unsigned claimed_token[16];
	int claimed_ok[16];
	int nclaimed;
} rec;

pid_t
__wrap_fork(void)
{
	if (rec.fork_fail) {
		errno = EAGAIN;
		return -1;
	}
	return FAKE_PID + rec.forks++;
}

int __real_pipe2(int p[2], int flags);
int
__wrap_pipe2(int p[2], int flags)
{
	int r;

	if (rec.pipe_fail_at == rec.npipe + 1) {
		rec.npipe++;
		errno = EMFILE;
		return -1;
	}
	r = __real_pipe2(p, flags);
	if (r == 0) {
		if (rec.npipe % 2 == 0) {
			if (rec.down_r >= 0)
				close(rec.down_r);
			rec.down_r = fcntl(p[0], F_DUPFD_CLOEXEC, 3);
			(void)fcntl(rec.down_r, F_SETFL, O_NONBLOCK);
		} else {
			if (rec.up_w >= 0)
				close(rec.up_w);
			rec.up_w = fcntl(p[1], F_DUPFD_CLOEXEC, 3);
		}
		rec.npipe++;
	}
	return r;
}

int
__wrap_kill(pid_t pid, int sig)
{
	if (sig == SIGTERM)
		rec.kills_term++;
	return 0;
}

pid_t
__wrap_waitpid(pid_t pid, int *st, int opt)
{
	*st = 0;
	return pid;
}

void
__wrap_chat_fed_room_line(
    struct chat *c, const char *k, size_t kl, const char *line, size_t len)
{
	if (rec.nlines < 64)
		snprintf(rec.lines[rec.nlines++], 128, "%.*s", (int)len, line);
}

void
__wrap_chat_fed_claimed(struct chat *c, unsigned token, int ok)
{
	if (rec.nclaimed < 16) {
		rec.claimed_token[rec.nclaimed] = token;
		rec.claimed_ok[rec.nclaimed++] = ok;
	}
}

int
__wrap_chat_fed_snapshot(const struct chat *c, struct buf *b)
{
	return 0; /* nobody here: nothing to re-claim */
}

void
__wrap_chat_fed_expire(struct chat *c, long long now_ms, long long ttl_ms)
{
}

void
__wrap_chat_fed_presence(struct chat *c, const char *hub, size_t hlen,
    const char *snap, size_t slen, long long now_ms)
{
}

/* The wall clock fed_start() reads for its origin (HUB/EPOCH_MS.PID). */
int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int
__wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
	if (clk != CLOCK_REALTIME)
		return __real_clock_gettime(clk, ts);
	ts->tv_sec = 1733400000;
	ts->tv_nsec = 555 * 1000000;
	return 0;
}

static struct fed_cfg o;
static struct chat_fed hooks;
static struct fed *f;

static int
setup(void **state)
{
	memset(&rec, 0, sizeof(rec));
	rec.down_r = rec.up_w = -1;
	memset(&o, 0, sizeof(o));
	o.max_clients = 8;
	o.nick_ttl = 30;
	snprintf(o.redis_host, sizeof(o.redis_host), "127.0.0.1");
	o.redis_port = 6379;
	snprintf(o.hub_id, sizeof(o.hub_id), "hub1");
	fed_hooks(&hooks);
	f = fed_start(&o, NULL);
	assert_non_null(f);
	assert_int_equal(rec.forks, 1);
	return 0;
}

static int
teardown(void **state)
{
	if (f != NULL)
		fed_stop(f);
	if (rec.down_r >= 0)
		close(rec.down_r);
	if (rec.up_w >= 0)
		close(rec.up_w);
	return 0;
}

/* The bridge tells the parent something; the parent handles it. */
static void
bridge_says(
    uint16_t type, uint16_t code, uint32_t slot, const void *p, size_t len)
{
	struct ipc_hdr h = { slot, type, code, (uint32_t)len };

	assert_int_equal(write(rec.up_w, &h, IPC_HDR), (ssize_t)IPC_HDR);
	if (len)
		assert_int_equal(write(rec.up_w, p, len), (ssize_t)len);
	(void)fed_drain(f, SIZE_MAX);
}

static void
event(const char *s)
{
	bridge_says(IPC_FED_EVENT, 0, 0, s, strlen(s));
}

static unsigned long long
stat_of(const char *name)
{
	struct stats_item it[STATS_FED_NITEMS];
	size_t i, n = fed_stats(f, it, STATS_FED_NITEMS);

	for (i = 0; i < n; i++)
		if (strcmp(it[i].name, name) == 0)
			return it[i].value;
	fail_msg("no stat %s", name);
	return 0;
}

/* What the parent handed the bridge since the last call: counts by type,
 * and the sequence numbers of the reliable events, in order. */
struct seen_recs {
	int pubs, unreliable, claims, releases;
	unsigned long long seqs[4096];
	int nseq;
	unsigned claim_tokens[16];
};

static void
bridge_reads(struct seen_recs *r)
{
	static struct buf b;
	struct ipc_hdr h;
	char *p;
	ssize_t n;
	unsigned long long seq;

	memset(r, 0, sizeof(*r));
	for (;;) {
		fed_flush(f);
		p = buf_reserve(&b, 1 << 20);
		assert_non_null(p);
		n = read(rec.down_r, p, buf_room(&b));
		if (n <= 0)
			break;
		buf_commit(&b, (size_t)n);
	}
	while (buf_used(&b) >= IPC_HDR) {
		memcpy(&h, buf_head(&b), IPC_HDR);
		assert_true(buf_used(&b) >= IPC_HDR + h.len);
		if (h.type == IPC_FED_PUB && h.code == 0) {
			memcpy(&seq, buf_head(&b) + IPC_HDR, 8);
			if (r->nseq < 4096)
				r->seqs[r->nseq++] = seq;
			r->pubs++;
		} else if (h.type == IPC_FED_PUB)
			r->unreliable++;
		else if (h.type == IPC_FED_CLAIM) {
			if (r->claims < 16)
				r->claim_tokens[r->claims] = h.slot;
			r->claims++;
		} else if (h.type == IPC_FED_RELEASE)
			r->releases++;
		buf_consume(&b, IPC_HDR + h.len);
	}
	assert_int_equal(buf_used(&b), 0);
	buf_free(&b);
}

/* The bridge dies; the next tick before RESTART_MS starts nothing, one
 * after it starts a new one. */
static void
bridge_dies_and_restarts(void)
{
	long long now = clock_mono_ms();
	int forks = rec.forks;

	assert_int_equal(fed_reaped(f, FAKE_PID + forks - 1, 9), 1);
	fed_tick(f, now);
	assert_int_equal(rec.forks, forks); /* not at once */
	fed_tick(f, now + 400);
	assert_int_equal(rec.forks, forks);
	fed_tick(f, now + 5000);
	assert_int_equal(rec.forks, forks + 1);
}

/* Dedup: each (origin, seq) once; an older or equal seq is dropped and
 * counted; our own events are never handled; malformed ones are counted
 * and do not disturb what follows. */
static void
test_dedup_per_origin(void **state)
{
	event(ORIG "1 M lobby MSG Lobby ann one");
	event(ORIG "2 M lobby MSG Lobby ann two");
	event(ORIG "2 M lobby MSG Lobby ann two"); /* resent XADD */
	event(ORIG "1 M lobby MSG Lobby ann one"); /* re-read */
	event("hub3/1733400000999.77 1 M lobby MSG Lobby bob other");
	event(ORIG "3 M lobby MSG Lobby ann three");
	event("not an event");
	event(ORIG "4 M lobby MSG Lobby ann four");
	assert_int_equal(rec.nlines, 5);
	assert_string_equal(rec.lines[0], "MSG Lobby ann one");
	assert_string_equal(rec.lines[1], "MSG Lobby ann two");
	assert_string_equal(rec.lines[2], "MSG Lobby bob other");
	assert_string_equal(rec.lines[3], "MSG Lobby ann three");
	assert_string_equal(rec.lines[4], "MSG Lobby ann four");
	assert_int_equal(stat_of("fed_duplicates_dropped"), 2);
	assert_int_equal(stat_of("fed_events_in"), 5);
	assert_int_equal(stat_of("fed_malformed"), 1);
}

/* Our own events come back from the stream: never handled, not even
 * parsed (a malformed one is not counted); an origin that only starts
 * like ours is another hub's. */
static void
test_own_events_dropped_unparsed(void **state)
{
	char own[64], e[160];

	snprintf(own, sizeof(own), "hub1/1733400000555.%d", (int)getpid());
	snprintf(e, sizeof(e), "%s 1 M lobby MSG Lobby me mine", own);
	event(e);
	snprintf(e, sizeof(e), "%s x not even an event", own);
	event(e);
	assert_int_equal(rec.nlines, 0);
	assert_int_equal(stat_of("fed_events_in"), 0);
	assert_int_equal(stat_of("fed_malformed"), 0);
	snprintf(e, sizeof(e), "%s7 1 M lobby MSG Lobby her hers", own);
	event(e);
	assert_int_equal(rec.nlines, 1);
	assert_string_equal(rec.lines[0], "MSG Lobby her hers");
	snprintf(e, sizeof(e), "%s", own); /* no space: malformed */
	event(e);
	assert_int_equal(stat_of("fed_malformed"), 1);
}

/* Presence (seq 0) is never a duplicate and does not reset the origin's
 * sequence: seq 2 after presence is still a duplicate of seq 2. */
static void
test_presence_never_duplicate(void **state)
{
	event(ORIG "2 M lobby MSG Lobby ann two");
	event(ORIG "0 P hub2\n");
	event(ORIG "0 P hub2\n");
	event(ORIG "2 M lobby MSG Lobby ann two");
	assert_int_equal(rec.nlines, 1);
	assert_int_equal(stat_of("fed_duplicates_dropped"), 1);
}

/* Retention: after an ack, a new bridge is handed the acknowledged events
 * we keep and every unacknowledged one, once each, in order. */
static void
test_new_bridge_gets_unacked_and_retained(void **state)
{
	static struct seen_recs r;
	unsigned long long upto = 3;
	int i;

	for (i = 0; i < 5; i++)
		hooks.room_line(f, "lobby", "MSG Lobby ann hi\n", 17);
	bridge_reads(&r);
	assert_int_equal(r.pubs, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(r.seqs[i], (unsigned long long)i + 1);
	bridge_says(IPC_FED_ACKED, 0, 0, &upto, 8);
	assert_int_equal(stat_of("fed_unacked"), 2);
	bridge_dies_and_restarts();
	bridge_reads(&r);
	/* 5 small events fit BRIDGE_RETAIN: all five, in order */
	assert_int_equal(r.pubs, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(r.seqs[i], (unsigned long long)i + 1);
	assert_int_equal(stat_of("fed_bridge_restarts"), 1);
}

/* Retention is bounded: past BRIDGE_RETAIN bytes of acknowledged events
 * the oldest are dropped; the unacknowledged ones are all kept. */
static void
test_retention_bounded_unacked_kept(void **state)
{
	static char line[16000];
	static struct seen_recs r;
	unsigned long long upto;
	size_t per = 12 + 8 + sizeof(line); /* [seq][len] "M lobby " line */
	int i, total = 1200, kept_acked;

	memset(line, 'z', sizeof(line));
	memcpy(line, "MSG Lobby ann ", 14);
	for (i = 0; i < total; i++) {
		hooks.room_line(f, "lobby", line, sizeof(line));
		if (i % 64 == 0)
			bridge_reads(&r); /* keep the pipe moving */
	}
	bridge_reads(&r);
	upto = (unsigned long long)total - 10; /* 10 left unacknowledged */
	bridge_says(IPC_FED_ACKED, 0, 0, &upto, 8);
	assert_int_equal(stat_of("fed_unacked"), 10);
	bridge_dies_and_restarts();
	bridge_reads(&r);
	kept_acked = (int)(BRIDGE_RETAIN / per);
	/* what is kept of the acked: at most BRIDGE_RETAIN bytes, and as
	 * much of it as fits (one event of slack) */
	assert_in_range(r.pubs - 10, kept_acked - 1, kept_acked);
	assert_true(r.pubs < total);
	/* contiguous, ending with the last event */
	for (i = 0; i < r.nseq; i++)
		assert_int_equal(
		    r.seqs[i], (unsigned long long)(total - r.nseq + i + 1));
}

/* A claim the dead bridge never answered goes to the next one; an
 * answered one does not; the answer reaches the chat. */
static void
test_claims_survive_bridge_death(void **state)
{
	static struct seen_recs r;

	hooks.claim(f, 5, "alice");
	hooks.claim(f, 6, "bob");
	bridge_reads(&r);
	assert_int_equal(r.claims, 2);
	bridge_says(IPC_FED_CLAIMED, 1, 6, "", 0);
	assert_int_equal(rec.nclaimed, 1);
	assert_int_equal(rec.claimed_token[0], 6);
	assert_int_equal(rec.claimed_ok[0], 1);
	bridge_dies_and_restarts();
	bridge_reads(&r);
	assert_int_equal(r.claims, 1);
	assert_int_equal(r.claim_tokens[0], 5);
	/* a released nick is repeated to the next bridge (within the TTL) */
	hooks.release(f, "carol");
	bridge_reads(&r);
	assert_int_equal(r.releases, 1);
	bridge_dies_and_restarts();
	bridge_reads(&r);
	assert_int_equal(r.releases, 1);
}

/* No bridge can be started: retried every RESTART_MS, and meanwhile the
 * pending claims are decided locally (ok) rather than left hanging. */
static void
test_failed_restart_retries_and_decides_claims(void **state)
{
	long long now = clock_mono_ms() + 10000; /* well past the backoff */

	hooks.claim(f, 7, "dave");
	assert_int_equal(fed_reaped(f, FAKE_PID, 9), 1);
	assert_int_equal(fed_reaped(f, 12345, 0), 0); /* not the bridge */
	rec.fork_fail = 1;
	fed_tick(f, now);
	assert_int_equal(rec.forks, 1);
	assert_int_equal(rec.nclaimed, 1);
	assert_int_equal(rec.claimed_token[0], 7);
	assert_int_equal(rec.claimed_ok[0], 1);
	rec.fork_fail = 0;
	fed_tick(f, now + 999); /* the retry is not due yet */
	assert_int_equal(rec.forks, 1);
	fed_tick(f, now + 1000);
	assert_int_equal(rec.forks, 2);
}

/* fed_stop flushes an empty presence snapshot (the other hubs forget our
 * users now), then ends the bridge with SIGTERM. */
static void
test_stop_sends_empty_presence(void **state)
{
	static struct seen_recs r;
	struct ipc_hdr h;
	char body[64];

	bridge_reads(&r);
	fed_stop(f);
	f = NULL;
	assert_int_equal(rec.kills_term, 1);
	assert_int_equal(read(rec.down_r, &h, IPC_HDR), (ssize_t)IPC_HDR);
	assert_int_equal(h.type, IPC_FED_PUB);
	assert_int_equal(h.code, 1);
	assert_int_equal(h.len, 7);
	assert_int_equal(read(rec.down_r, body, h.len), (ssize_t)h.len);
	assert_memory_equal(body, "P hub1\n", 7);
}

/* A record longer than the bridge ever writes: all that is buffered is
 * dropped and the bridge is ended (SIGTERM; reaped and restarted); what
 * it sends next is read from a clean start. */
static void
test_corrupt_record_drops_the_input_and_ends_the_bridge(void **state)
{
	struct ipc_hdr h = { 0, IPC_FED_EVENT, 0, FEDIPC_MAX + 1 };

	assert_int_equal(write(rec.up_w, &h, IPC_HDR), (ssize_t)IPC_HDR);
	assert_int_equal(write(rec.up_w, "junk", 4), 4);
	assert_int_equal(fed_drain(f, SIZE_MAX), 0);
	assert_int_equal(rec.kills_term, 1);
	assert_int_equal(rec.nlines, 0);
	event(ORIG "1 M lobby MSG Lobby ann after");
	assert_int_equal(rec.nlines, 1);
	assert_string_equal(rec.lines[0], "MSG Lobby ann after");
	assert_int_equal(rec.kills_term, 1);
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

static int
bare_setup(void **state)
{
	memset(&rec, 0, sizeof(rec));
	rec.down_r = rec.up_w = -1;
	memset(&o, 0, sizeof(o));
	o.max_clients = 8;
	o.nick_ttl = 30;
	o.port = 4321;
	snprintf(o.redis_host, sizeof(o.redis_host), "127.0.0.1");
	o.redis_port = 6379;
	f = NULL;
	return 0;
}

/* The bridge cannot be started (its second pipe, or the fork, fails):
 * no federation, errno kept, no descriptor left open. */
static void
test_start_fails_without_a_leak(void **state)
{
	int before = open_fds();

	rec.pipe_fail_at = 2;
	errno = 0;
	assert_null(fed_start(&o, NULL));
	assert_int_equal(errno, EMFILE);
	assert_int_equal(rec.forks, 0);
	rec.pipe_fail_at = 0;
	rec.fork_fail = 1;
	errno = 0;
	assert_null(fed_start(&o, NULL));
	assert_int_equal(errno, EAGAIN);
	if (rec.down_r >= 0) /* the test's own copies */
		close(rec.down_r);
	if (rec.up_w >= 0)
		close(rec.up_w);
	rec.down_r = rec.up_w = -1;
	assert_int_equal(open_fds(), before);
}

/* Without --hub-id the hub is HOSTNAME-PORT: its presence names it. */
static void
test_hub_named_after_the_host_and_port(void **state)
{
	char host[64], want[128], body[128];
	struct ipc_hdr h;

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	snprintf(want, sizeof(want), "P %s-4321\n", host);
	f = fed_start(&o, NULL);
	assert_non_null(f);
	fed_stop(f);
	f = NULL;
	assert_int_equal(read(rec.down_r, &h, IPC_HDR), (ssize_t)IPC_HDR);
	assert_int_equal(h.type, IPC_FED_PUB);
	assert_int_equal(h.len, strlen(want));
	assert_int_equal(read(rec.down_r, body, h.len), (ssize_t)h.len);
	assert_memory_equal(body, want, h.len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_dedup_per_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_own_events_dropped_unparsed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_presence_never_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_new_bridge_gets_unacked_and_retained, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retention_bounded_unacked_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_claims_survive_bridge_death, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failed_restart_retries_and_decides_claims, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_sends_empty_presence, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_corrupt_record_drops_the_input_and_ends_the_bridge,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_start_fails_without_a_leak, bare_setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hub_named_after_the_host_and_port, bare_setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
