/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ipc.c - unit tests for the pipe record codec, sys/ipc.h and
 * sys/ipc.c: every record type (session and federation) survives
 * ipc_put()/ipc_get() unchanged; a stream of records split at every byte
 * boundary is framed into the same records; several records that arrive
 * in one read come out in order; a length past the reader's bound is
 * refused (and ipc_put refuses a payload the header cannot count); the
 * federation's event entries walk by offset; and ipc_read() stops for the right reason (EAGAIN, EOF, want reached, a
 * short read with IPC_RD_SHORT, EINTR retried) on real pipes.
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
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fed/fedipc.h"
#include "lib/buf.h"
#include "sys/ipc.h"

/* One record as the tests think of it. */
struct rec {
	uint32_t slot;
	unsigned type, code;
	const char *p;
	size_t len;
};

static const char big[] = "ORIGIN 7 M lobby MSG lobby alice hello, "
                          "everyone \xea\xb0\x80\xeb\x82\x98";

/* Every type, with payloads of 0, 1, 8 and more bytes. */
static const struct rec every[] = {
	{ 3, IPC_LINE, 0, "hello", 5 },
	{ 4, IPC_REJECT, 7, NULL, 0 },
	{ 5, IPC_EOF, ECONNRESET, NULL, 0 },
	{ 0, IPC_FED_PUB, 1, "P hub1\n", 7 },
	{ 42, IPC_FED_CLAIM, 0, "alice", 5 },
	{ 0, IPC_FED_RELEASE, 0, "bob", 3 },
	{ 0, IPC_FED_EVENT, 0, big, sizeof(big) - 1 },
	{ 42, IPC_FED_CLAIMED, 1, "", 0 },
	{ 0, IPC_FED_LOG, 2, "federation: x", 13 },
	{ 0, IPC_FED_UP, 1, "", 0 },
	{ 0, IPC_FED_LOST, 1, "carol", 5 },
	{ 0, IPC_FED_ACKED, 0, "\x01\x02\x03\x04\x05\x06\x07\x08", 8 },
	{ 0, IPC_FED_CURSOR, 0, "1733400000123-0", 15 },
	{ 0, IPC_FED_REDIS, 0, "0123456789abcdef", 16 },
	{ UINT32_MAX, IPC_LINE, UINT16_MAX, "x", 1 },
};
#define NEVERY (sizeof(every) / sizeof(every[0]))

static void
put_all(struct buf *b)
{
	size_t i;

	for (i = 0; i < NEVERY; i++)
		assert_int_equal(ipc_put(b, every[i].slot, every[i].type,
		                     every[i].code, every[i].p, every[i].len),
		    0);
}

static void
assert_rec(const struct ipc_hdr *h, const char *payload, const struct rec *r)
{
	assert_int_equal(h->slot, r->slot);
	assert_int_equal(h->type, r->type);
	assert_int_equal(h->code, r->code);
	assert_int_equal(h->len, r->len);
	if (r->len > 0)
		assert_memory_equal(payload, r->p, r->len);
}

/* Frame every record out of b, checking each against every[]. */
static void
take_all(struct buf *b)
{
	struct ipc_hdr h = { 0 };
	size_t i;

	for (i = 0; i < NEVERY; i++) {
		assert_int_equal(ipc_next(b, FEDIPC_MAX, &h), 1);
		assert_rec(&h, buf_head(b) + IPC_HDR, &every[i]);
		buf_consume(b, ipc_size(&h));
	}
	assert_int_equal(buf_used(b), 0);
	assert_int_equal(ipc_next(b, FEDIPC_MAX, &h), 0);
}

static void
test_ipc_round_trip_every_type(void **state)
{
	struct buf b = BUF_INIT;

	put_all(&b);
	take_all(&b);
	buf_free(&b);
}

/* The header is the wire format: 12 bytes, fields in this order. */
static void
test_ipc_header_layout(void **state)
{
	struct buf b = BUF_INIT;
	uint32_t slot = 0x01020304, len = 3;
	uint16_t type = IPC_LINE, code = 0x0506;

	assert_int_equal(IPC_HDR, 12);
	assert_int_equal(ipc_put(&b, slot, type, code, "abc", 3), 0);
	assert_int_equal(buf_used(&b), 15);
	assert_memory_equal(buf_head(&b), &slot, 4);
	assert_memory_equal(buf_head(&b) + 4, &type, 2);
	assert_memory_equal(buf_head(&b) + 6, &code, 2);
	assert_memory_equal(buf_head(&b) + 8, &len, 4);
	assert_memory_equal(buf_head(&b) + 12, "abc", 3);
	buf_free(&b);
}

/* ipc_put2: the payload is a then b, counted together. */
static void
test_ipc_put2_joins_pieces(void **state)
{
	struct buf b = BUF_INIT;
	struct ipc_hdr h = { 0 };

	assert_int_equal(
	    ipc_put2(&b, 9, IPC_FED_PUB, 0, "head ", 5, "body", 4), 0);
	assert_int_equal(
	    ipc_put2(&b, 9, IPC_FED_PUB, 1, "only", 4, NULL, 0), 0);
	assert_int_equal(ipc_next(&b, FEDIPC_MAX, &h), 1);
	assert_int_equal(h.len, 9);
	assert_memory_equal(buf_head(&b) + IPC_HDR, "head body", 9);
	buf_consume(&b, ipc_size(&h));
	assert_int_equal(ipc_next(&b, FEDIPC_MAX, &h), 1);
	assert_int_equal(h.code, 1);
	assert_int_equal(h.len, 4);
	assert_memory_equal(buf_head(&b) + IPC_HDR, "only", 4);
	buf_free(&b);
}

/*
 * The stream of every record, fed to a reader one prefix at a time, cut
 * at every byte boundary: until a record's last byte arrives, ipc_get
 * says "more" (0), never a wrong record; then it gives exactly it.
 */
static void
test_ipc_split_at_every_byte(void **state)
{
	struct buf all = BUF_INIT, in = BUF_INIT;
	struct ipc_hdr h = { 0 };
	size_t cut, total, next, i;
	int r;

	put_all(&all);
	total = buf_used(&all);
	for (cut = 0; cut <= total; cut++) {
		/* two pieces: [0, cut) then [cut, total) */
		buf_reset(&in);
		assert_int_equal(buf_append(&in, buf_head(&all), cut), 0);
		i = 0;
		next = 0; /* stream offset of record i */
		while ((r = ipc_next(&in, FEDIPC_MAX, &h)) == 1) {
			assert_rec(&h, buf_head(&in) + IPC_HDR, &every[i]);
			next += ipc_size(&h);
			buf_consume(&in, ipc_size(&h));
			i++;
		}
		assert_int_equal(r, 0);
		assert_true(next <= cut);
		assert_int_equal(buf_used(&in), cut - next);
		assert_int_equal(
		    buf_append(&in, buf_head(&all) + cut, total - cut), 0);
		for (; i < NEVERY; i++) {
			assert_int_equal(ipc_next(&in, FEDIPC_MAX, &h), 1);
			assert_rec(&h, buf_head(&in) + IPC_HDR, &every[i]);
			buf_consume(&in, ipc_size(&h));
		}
		assert_int_equal(buf_used(&in), 0);
	}
	buf_free(&all);
	buf_free(&in);
}

/* Byte by byte: the reader sees each record complete exactly once. */
static void
test_ipc_one_byte_at_a_time(void **state)
{
	struct buf all = BUF_INIT, in = BUF_INIT;
	struct ipc_hdr h = { 0 };
	size_t off, i = 0;

	put_all(&all);
	for (off = 0; off < buf_used(&all); off++) {
		assert_int_equal(buf_append(&in, buf_head(&all) + off, 1), 0);
		while (ipc_next(&in, FEDIPC_MAX, &h) == 1) {
			assert_true(i < NEVERY);
			assert_rec(&h, buf_head(&in) + IPC_HDR, &every[i++]);
			buf_consume(&in, ipc_size(&h));
		}
	}
	assert_int_equal(i, NEVERY);
	assert_int_equal(buf_used(&in), 0);
	buf_free(&all);
	buf_free(&in);
}

/* A length past the reader's bound: refused, before any payload came. */
static void
test_ipc_oversize_length_refused(void **state)
{
	struct buf b = BUF_INIT;
	struct ipc_hdr h = { 1, IPC_LINE, 0, IPC_SHARED_MAX + 1 }, got = { 0 };

	assert_int_equal(buf_append(&b, &h, IPC_HDR), 0);
	assert_int_equal(ipc_next(&b, IPC_SHARED_MAX, &got), -1);
	assert_int_equal(got.len, IPC_SHARED_MAX + 1);
	/* the largest allowed one is only waiting for its payload */
	buf_reset(&b);
	h.len = IPC_SHARED_MAX;
	assert_int_equal(buf_append(&b, &h, IPC_HDR), 0);
	assert_int_equal(ipc_next(&b, IPC_SHARED_MAX, &got), 0);
	/* a huge length, as a corrupt stream would carry */
	buf_reset(&b);
	h.len = UINT32_MAX;
	assert_int_equal(buf_append(&b, &h, IPC_HDR), 0);
	assert_int_equal(ipc_next(&b, FEDIPC_MAX, &got), -1);
	/* a bad record behind a good one: the good one still comes out */
	buf_reset(&b);
	assert_int_equal(ipc_put(&b, 2, IPC_LINE, 0, "ok", 2), 0);
	assert_int_equal(buf_append(&b, &h, IPC_HDR), 0);
	assert_int_equal(ipc_next(&b, IPC_SHARED_MAX, &got), 1);
	assert_memory_equal(buf_head(&b) + IPC_HDR, "ok", 2);
	buf_consume(&b, ipc_size(&got));
	assert_int_equal(ipc_next(&b, IPC_SHARED_MAX, &got), -1);
	buf_free(&b);
}

/* A header cut short is never taken for a record. */
static void
test_ipc_short_header_needs_more(void **state)
{
	char z[IPC_HDR] = { 0 };
	struct ipc_hdr h = { 0 };
	size_t n;

	for (n = 0; n < IPC_HDR; n++)
		assert_int_equal(ipc_get(z, n, 0, &h), 0);
	assert_int_equal(ipc_get(z, IPC_HDR, 0, &h), 1); /* len 0: whole */
}

/* A payload the 32-bit length cannot count: refused, b unchanged. */
static void
test_ipc_put_refuses_uncountable(void **state)
{
	struct buf b = BUF_INIT;

	assert_int_equal(ipc_put(&b, 1, IPC_LINE, 0, "x", 1), 0);
	errno = 0;
	assert_int_equal(
	    ipc_put2(&b, 1, IPC_LINE, 0, "a", (size_t)UINT32_MAX, "b", 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	errno = 0;
	assert_int_equal(
	    ipc_put2(&b, 1, IPC_LINE, 0, "a", SIZE_MAX, "b", 2), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(buf_used(&b), IPC_HDR + 1);
	buf_free(&b);
}

/* A session's batches: the records a child packs up to IPC_BATCH. */
static void
test_ipc_shared_max_fits_a_batch(void **state)
{
	struct buf b = BUF_INIT;
	static char line[IPC_SHARED_MAX];

	memset(line, 'a', sizeof(line));
	assert_int_equal(ipc_put(&b, 1, IPC_LINE, 0, line, IPC_SHARED_MAX), 0);
	assert_int_equal(buf_used(&b), IPC_BATCH);
	buf_free(&b);
}

/* Event entries [seq 8][len 4][body] (fedipc.h): written, walked by
 * offset, a header cut short never taken for one. */
static void
test_fedipc_entries_walk(void **state)
{
	static const char *const bodies[] = { "M lobby hi", "", "O room" };
	struct buf b = BUF_INIT;
	unsigned long long seq = 0;
	uint32_t len = 0;
	size_t i, off;
	char *e;

	for (i = 0; i < 3; i++) {
		len = (uint32_t)strlen(bodies[i]);
		e = buf_reserve(&b, fedipc_entry_size(len));
		assert_non_null(e);
		fedipc_entry_head(e, 100 + i, len);
		memcpy(e + FEDIPC_ENTRY_HDR, bodies[i], len);
		buf_commit(&b, fedipc_entry_size(len));
	}
	for (i = 0, off = 0; fedipc_entry_at(&b, off, &seq, &len);
	     i++, off += fedipc_entry_size(len)) {
		assert_true(i < 3);
		assert_int_equal(seq, 100 + i);
		assert_int_equal(len, strlen(bodies[i]));
		assert_memory_equal(
		    buf_head(&b) + off + FEDIPC_ENTRY_HDR, bodies[i], len);
	}
	assert_int_equal(i, 3);
	assert_int_equal(off, buf_used(&b));
	assert_int_equal(
	    fedipc_entry_get(buf_head(&b), FEDIPC_ENTRY_HDR - 1, &seq, &len),
	    0);
	assert_int_equal(fedipc_entry_at(&b, buf_used(&b) - 11, &seq, &len), 0);
	buf_free(&b);
}

/* ---- ipc_read on real pipes ------------------------------------------ */

static int p[2];

static int
pipe_setup(void **state)
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	return 0;
}

static int
pipe_teardown(void **state)
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return 0;
}

static const struct ipc_rd rd_all = { 4096, 0 };

/* Several records in one read: all of them, in order, then EAGAIN. */
static void
test_ipc_read_many_records_one_read(void **state)
{
	struct buf out = BUF_INIT, in = BUF_INIT;
	size_t got = 0;

	put_all(&out);
	assert_int_equal(write(p[1], buf_head(&out), buf_used(&out)),
	    (ssize_t)buf_used(&out));
	assert_int_equal(
	    ipc_read(p[0], &in, &rd_all, SIZE_MAX, &got), IPC_READ_DRAINED);
	assert_int_equal(got, buf_used(&out));
	take_all(&in);
	buf_free(&out);
	buf_free(&in);
}

/* An empty pipe: drained, nothing read; a closed one: EOF after the
 * bytes still in it. */
static void
test_ipc_read_eagain_and_eof(void **state)
{
	struct buf in = BUF_INIT;
	size_t got = 0;

	assert_int_equal(
	    ipc_read(p[0], &in, &rd_all, SIZE_MAX, &got), IPC_READ_DRAINED);
	assert_int_equal(got, 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	close(p[1]);
	p[1] = -1;
	assert_int_equal(
	    ipc_read(p[0], &in, &rd_all, SIZE_MAX, &got), IPC_READ_EOF);
	assert_int_equal(got, 3);
	assert_int_equal(buf_used(&in), 3);
	assert_memory_equal(buf_head(&in), "abc", 3);
	buf_free(&in);
}

/* want: stops once that many bytes are in (want 1: one read), reads at
 * most chunk per read, and says more may be waiting. */
static void
test_ipc_read_want_and_chunk(void **state)
{
	static char data[10000];
	const struct ipc_rd rd = { 1000, 0 };
	struct buf in = BUF_INIT;
	size_t got = 0;

	memset(data, 'x', sizeof(data));
	assert_int_equal(write(p[1], data, sizeof(data)), sizeof(data));
	assert_int_equal(ipc_read(p[0], &in, &rd, 1, &got), IPC_READ_MORE);
	assert_int_equal(got, 1000);
	assert_int_equal(ipc_read(p[0], &in, &rd, 2500, &got), IPC_READ_MORE);
	assert_int_equal(got, 4000);
	assert_int_equal(
	    ipc_read(p[0], &in, &rd, SIZE_MAX, &got), IPC_READ_DRAINED);
	assert_int_equal(got, sizeof(data));
	assert_int_equal(buf_used(&in), sizeof(data));
	buf_free(&in);
}

/* IPC_RD_SHORT: a read shorter than the room means drained, without the
 * read that would say EAGAIN. */
static void
test_ipc_read_short_means_drained(void **state)
{
	const struct ipc_rd rd = { 4096, IPC_RD_SHORT };
	struct buf in = BUF_INIT;
	size_t got = 0;

	assert_int_equal(write(p[1], "hello", 5), 5);
	assert_int_equal(
	    ipc_read(p[0], &in, &rd, SIZE_MAX, &got), IPC_READ_DRAINED);
	assert_int_equal(got, 5);
	/* the writer's next bytes are still there for the next call */
	assert_int_equal(write(p[1], "world", 5), 5);
	assert_int_equal(
	    ipc_read(p[0], &in, &rd, SIZE_MAX, &got), IPC_READ_DRAINED);
	assert_int_equal(got, 10);
	assert_memory_equal(buf_head(&in), "helloworld", 10);
	buf_free(&in);
}

/* A read error other than EAGAIN/EINTR: reported with errno. */
static void
test_ipc_read_error(void **state)
{
	struct buf in = BUF_INIT;
	size_t got = 0;

	errno = 0;
	assert_int_equal(ipc_read(p[1], &in, &rd_all, SIZE_MAX, &got),
	    IPC_READ_ERROR); /* the write end cannot be read */
	assert_int_equal(errno, EBADF);
	assert_int_equal(got, 0);
	buf_free(&in);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

/*
 * EINTR is retried: a blocking read interrupted by a signal (SA_RESTART
 * off) goes on reading until the bytes come.  The writer is a child that
 * writes after the signal; the parent is blocked in ipc_read meanwhile.
 */
static void
test_ipc_read_retries_eintr(void **state)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 0 }, { 0, 50 * 1000 } };
	struct buf in = BUF_INIT;
	size_t got = 0;
	pid_t pid;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: read returns EINTR */
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, 0), 0); /* blocking */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		(void)!write(p[1], "late", 4);
		_exit(0);
	}
	close(p[1]);
	p[1] = -1;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(ipc_read(p[0], &in, &rd_all, 4, &got), IPC_READ_MORE);
	assert_int_equal(got, 4);
	assert_memory_equal(buf_head(&in), "late", 4);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	signal(SIGALRM, SIG_DFL);
	buf_free(&in);
}

int
main(void)
{
#define T(f)  cmocka_unit_test(f)
#define TP(f) cmocka_unit_test_setup_teardown(f, pipe_setup, pipe_teardown)
	const struct CMUnitTest tests[] = {
		T(test_ipc_round_trip_every_type),
		T(test_ipc_header_layout),
		T(test_ipc_put2_joins_pieces),
		T(test_ipc_split_at_every_byte),
		T(test_ipc_one_byte_at_a_time),
		T(test_ipc_oversize_length_refused),
		T(test_ipc_short_header_needs_more),
		T(test_ipc_put_refuses_uncountable),
		T(test_ipc_shared_max_fits_a_batch),
		T(test_fedipc_entries_walk),
		TP(test_ipc_read_many_records_one_read),
		TP(test_ipc_read_eagain_and_eof),
		TP(test_ipc_read_want_and_chunk),
		TP(test_ipc_read_short_means_drained),
		TP(test_ipc_read_error),
		TP(test_ipc_read_retries_eintr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
