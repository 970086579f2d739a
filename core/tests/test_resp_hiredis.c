/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_resp_hiredis.c - differential tests of core/fed/resp.c against hiredis,
 * the reference client library (Debian libhiredis-dev, linked by this test
 * only: the server itself never links it, docs/SCALING.md).
 *
 *  - encoding: resp_command() and redisFormatCommandArgv() produce the same
 *    bytes for random argument vectors (empty, binary, CR/LF, long);
 *  - decoding: random RESP2 replies (status, error, integer, bulk incl.
 *    binary and empty, nil bulk, nil array, nested arrays) decode to the
 *    same tree with resp_parse() and with hiredis's redisReader, and take
 *    the same number of bytes;
 *  - streaming: every proper prefix of a reply is "incomplete" for both
 *    (resp_parse() returns 0, the reader yields no reply and no error).
 * The generator is a fixed-seed xorshift, so a failure is reproducible.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed/resp.h"

#define ROUNDS    4000
#define MAX_NODES 512

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

/* Random bytes; for status and error lines, no CR or LF. */
static size_t
rnd_bytes(char *p, size_t max, int line)
{
	size_t n = rnd(4) == 0 ? 0 : rnd((uint32_t)max), i;

	for (i = 0; i < n; i++) {
		p[i] = (char)rnd(256);
		if (line && (p[i] == '\r' || p[i] == '\n'))
			p[i] = 'x';
	}
	return n;
}

static void __attribute__((format(printf, 2, 3)))
put(struct buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_int_equal(buf_append(b, tmp, (size_t)n), 0);
}

/* One random reply, at most depth levels of arrays. */
static void
gen(struct buf *b, int depth)
{
	char data[300];
	size_t n;
	long long v;
	uint32_t i, k;

	switch (rnd(depth > 0 ? 7 : 5)) {
	case 0:
	case 1:
		n = rnd_bytes(data, 40, 1);
		put(b, "%c", rnd(2) ? '+' : '-');
		assert_int_equal(buf_append(b, data, n), 0);
		put(b, "\r\n");
		break;
	case 2:
		v = (long long)(((uint64_t)rnd(UINT32_MAX) << 32) |
		    rnd(UINT32_MAX));
		if (rnd(3) == 0)
			v %= 1000;
		put(b, ":%lld\r\n", v);
		break;
	case 3:
		n = rnd_bytes(data, sizeof(data), 0);
		put(b, "$%zu\r\n", n);
		assert_int_equal(buf_append(b, data, n), 0);
		put(b, "\r\n");
		break;
	case 4:
		put(b, rnd(2) ? "$-1\r\n" : "*-1\r\n");
		break;
	default:
		k = rnd(6);
		put(b, "*%u\r\n", k);
		for (i = 0; i < k; i++)
			gen(b, depth - 1);
	}
}

/* Compare node i (and its subtree) with hiredis's reply; returns the
 * index after the subtree. */
static size_t
same(const struct resp_node *n, size_t count, size_t i, const redisReply *r)
{
	size_t e;

	assert_true(i < count);
	switch (r->type) {
	case REDIS_REPLY_STATUS:
		assert_int_equal(n[i].type, RESP_STRING);
		break;
	case REDIS_REPLY_ERROR:
		assert_int_equal(n[i].type, RESP_ERROR);
		break;
	case REDIS_REPLY_STRING:
		assert_int_equal(n[i].type, RESP_BULK);
		break;
	case REDIS_REPLY_INTEGER:
		assert_int_equal(n[i].type, RESP_INT);
		assert_true(n[i].n == r->integer);
		return i + 1;
	case REDIS_REPLY_NIL:
		assert_int_equal(n[i].type, RESP_NIL);
		return i + 1;
	case REDIS_REPLY_ARRAY:
		assert_int_equal(n[i].type, RESP_ARRAY);
		assert_true((size_t)n[i].n == r->elements);
		for (i++, e = 0; e < r->elements; e++)
			i = same(n, count, i, r->element[e]);
		return i;
	default:
		fail_msg("hiredis reply type %d", r->type);
	}
	assert_int_equal(n[i].len, r->len);
	if (r->len)
		assert_memory_equal(n[i].s, r->str, r->len);
	return i + 1;
}

static void
test_resp_encode_matches_hiredis(void **state)
{
	const char *argv[12];
	size_t argl[12];
	char args[12][300];
	struct buf b = BUF_INIT;
	char *ref;
	int round, argc, i, len;

	for (round = 0; round < ROUNDS; round++) {
		argc = 1 + (int)rnd(12);
		for (i = 0; i < argc; i++) {
			argl[i] = rnd_bytes(args[i], sizeof(args[i]), 0);
			argv[i] = args[i];
		}
		buf_reset(&b);
		assert_int_equal(resp_command(&b, argc, argv, argl), 0);
		len = redisFormatCommandArgv(&ref, argc, argv, argl);
		assert_true(len > 0);
		assert_int_equal(buf_used(&b), (size_t)len);
		assert_memory_equal(buf_head(&b), ref, (size_t)len);
		redisFreeCommand(ref);
	}
	buf_free(&b);
}

static void
test_resp_decode_matches_hiredis(void **state)
{
	static struct resp_node n[MAX_NODES];
	struct buf b = BUF_INIT;
	redisReader *rd;
	void *reply;
	size_t count, cut, end;
	long used;
	int round, nodes = 0;

	for (round = 0; round < ROUNDS; round++) {
		buf_reset(&b);
		gen(&b, 4);
		used = resp_parse(
		    buf_head(&b), buf_used(&b), n, MAX_NODES, &count);
		assert_int_equal(used, (long)buf_used(&b));
		assert_non_null(rd = redisReaderCreate());
		assert_int_equal(
		    redisReaderFeed(rd, buf_head(&b), buf_used(&b)), REDIS_OK);
		assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
		assert_non_null(reply);
		end = same(n, count, 0, reply);
		assert_int_equal(end, count); /* nothing left over */
		nodes += (int)count;
		freeReplyObject(reply);
		redisReaderFree(rd);
		/* a proper prefix is incomplete for both, never an error */
		cut = rnd((uint32_t)buf_used(&b));
		assert_int_equal(
		    resp_parse(buf_head(&b), cut, n, MAX_NODES, &count), 0);
		assert_non_null(rd = redisReaderCreate());
		assert_int_equal(
		    redisReaderFeed(rd, buf_head(&b), cut), REDIS_OK);
		assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
		assert_null(reply);
		redisReaderFree(rd);
	}
	assert_true(nodes > ROUNDS); /* the generator made nested replies */
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp_encode_matches_hiredis),
		cmocka_unit_test(test_resp_decode_matches_hiredis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
