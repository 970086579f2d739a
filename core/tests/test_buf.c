/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_buf.c - unit tests for core/lib/buf.c: append, reserve/commit, consume,
 * reset, growth by doubling from 4 KiB, lazy memmove compaction, release
 * of large idle buffers, and failures that leave the buffer unchanged.
 *
 * Pure module: no stubs, no seams.  Allocation failure is provoked with a
 * request no allocator can satisfy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#define MIN_CAP  4096        /* BUF_MIN in buf.c */
#define KEEP_CAP (64 * 1024) /* BUF_KEEP in buf.c */

static void
fill(struct buf *b, char c, size_t n)
{
	char *p = malloc(n);

	assert_non_null(p);
	memset(p, c, n);
	assert_int_equal(buf_append(b, p, n), 0);
	free(p);
}

static void
test_buf_init_is_empty(void **state)
{
	struct buf b = BUF_INIT;

	assert_null(b.data);
	assert_int_equal(buf_used(&b), 0);
	assert_int_equal(b.cap, 0);
	buf_free(&b); /* freeing an empty buffer is fine */
	assert_null(b.data);
}

static void
test_buf_append_and_read_back(void **state)
{
	struct buf b = BUF_INIT;

	assert_int_equal(buf_append(&b, "hello ", 6), 0);
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_int_equal(buf_used(&b), 11);
	assert_memory_equal(buf_head(&b), "hello world", 11);
	assert_int_equal(b.cap, MIN_CAP);
	buf_free(&b);
}

static void
test_buf_append_zero_is_noop(void **state)
{
	struct buf b = BUF_INIT;

	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(buf_used(&b), 0);
}

static void
test_buf_consume_partial(void **state)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "abcdef", 6);
	buf_consume(&b, 2);
	assert_int_equal(buf_used(&b), 4);
	assert_memory_equal(buf_head(&b), "cdef", 4);
	assert_int_equal(b.off, 2); /* no memmove on consume */
	buf_consume(&b, 3);
	assert_int_equal(buf_used(&b), 1);
	assert_memory_equal(buf_head(&b), "f", 1);
	buf_free(&b);
}

static void
test_buf_consume_all_resets_offsets(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	buf_append(&b, "abc", 3);
	data = b.data;
	buf_consume(&b, 3);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, data); /* small: memory kept */
	assert_int_equal(b.cap, MIN_CAP);
	buf_free(&b);
}

static void
test_buf_reserve_commit(void **state)
{
	struct buf b = BUF_INIT;
	char *p;

	buf_append(&b, "ab", 2);
	p = buf_reserve(&b, 10);
	assert_non_null(p);
	assert_ptr_equal(p, b.data + 2);
	memcpy(p, "cdefg", 5);
	assert_int_equal(buf_used(&b), 2); /* nothing until commit */
	buf_commit(&b, 5);
	assert_int_equal(buf_used(&b), 7);
	assert_memory_equal(buf_head(&b), "abcdefg", 7);
	buf_free(&b);
}

static void
test_buf_reserve_existing_room_no_realloc(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	buf_append(&b, "x", 1);
	data = b.data;
	assert_ptr_equal(buf_reserve(&b, MIN_CAP - 1), data + 1);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, MIN_CAP);
	buf_free(&b);
}

static void
test_buf_growth_doubles(void **state)
{
	struct buf b = BUF_INIT;

	fill(&b, 'a', MIN_CAP);
	assert_int_equal(b.cap, MIN_CAP);
	fill(&b, 'b', 1);
	assert_int_equal(b.cap, 2 * MIN_CAP);
	fill(&b, 'c', 3 * MIN_CAP); /* needs 4 KiB * 4 + 1 */
	assert_int_equal(b.cap, 8 * MIN_CAP);
	assert_int_equal(buf_used(&b), 4 * MIN_CAP + 1);
	assert_int_equal(buf_head(&b)[0], 'a');
	assert_int_equal(buf_head(&b)[MIN_CAP], 'b');
	assert_int_equal(buf_head(&b)[MIN_CAP + 1], 'c');
	assert_int_equal(buf_head(&b)[4 * MIN_CAP], 'c');
	buf_free(&b);
}

static void
test_buf_first_large_append_sizes_power_of_two(void **state)
{
	struct buf b = BUF_INIT;

	fill(&b, 'z', 10000);
	assert_int_equal(b.cap, 16384);
	assert_int_equal(buf_used(&b), 10000);
	buf_free(&b);
}

static void
test_buf_compaction_memmoves_instead_of_growing(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	fill(&b, 'a', MIN_CAP - 4);
	buf_append(&b, "WXYZ", 4); /* buffer now full */
	data = b.data;
	buf_consume(&b, MIN_CAP - 4); /* "WXYZ" left at the end */
	assert_int_equal(b.off, MIN_CAP - 4);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_ptr_equal(b.data, data); /* same memory */
	assert_int_equal(b.cap, MIN_CAP);
	assert_int_equal(b.off, 0); /* live bytes moved to front */
	assert_int_equal(buf_used(&b), 14);
	assert_memory_equal(buf_head(&b), "WXYZ0123456789", 14);
	buf_free(&b);
}

static void
test_buf_grow_with_offset_keeps_only_live_bytes(void **state)
{
	struct buf b = BUF_INIT;

	fill(&b, 'a', 100);
	buf_append(&b, "live", 4);
	buf_consume(&b, 100);
	fill(&b, 'q', 2 * MIN_CAP); /* must grow */
	assert_int_equal(b.off, 0);
	assert_int_equal(buf_used(&b), 4 + 2 * MIN_CAP);
	assert_memory_equal(buf_head(&b), "live", 4);
	assert_int_equal(buf_head(&b)[4], 'q');
	assert_int_equal(b.cap, 4 * MIN_CAP); /* sized for live bytes only */
	buf_free(&b);
}

static void
test_buf_reset_keeps_small_memory(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	fill(&b, 'x', KEEP_CAP); /* cap exactly 64 KiB */
	data = b.data;
	assert_int_equal(b.cap, KEEP_CAP);
	buf_reset(&b);
	assert_int_equal(buf_used(&b), 0);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, KEEP_CAP);
	buf_free(&b);
}

static void
test_buf_reset_releases_large_memory(void **state)
{
	struct buf b = BUF_INIT;

	fill(&b, 'x', KEEP_CAP + 1);
	assert_int_equal(b.cap, 2 * KEEP_CAP);
	buf_reset(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(buf_used(&b), 0);
	/* and it is usable again */
	assert_int_equal(buf_append(&b, "ok", 2), 0);
	assert_memory_equal(buf_head(&b), "ok", 2);
	assert_int_equal(b.cap, MIN_CAP);
	buf_free(&b);
}

static void
test_buf_drained_large_buffer_released(void **state)
{
	struct buf b = BUF_INIT;

	fill(&b, 'x', 100000);
	buf_consume(&b, 50000);
	assert_non_null(b.data); /* still holding data */
	buf_consume(&b, 50000);
	assert_null(b.data); /* idle and large: freed */
	assert_int_equal(b.cap, 0);
}

/* A per-client buffer (buf_set_keep): small first, freed once empty above
 * its keep, so a burst's memory goes back (issue 17, goal 3). */
static void
test_buf_small_keep_is_first_size_and_limit(void **state)
{
	struct buf b = BUF_INIT;

	buf_set_keep(&b, 1024);
	assert_int_equal(buf_append(&b, "hi", 2), 0);
	assert_int_equal(b.cap, 1024); /* not BUF_MIN */
	buf_consume(&b, 2);
	assert_non_null(b.data); /* empty, at its keep: kept */
	assert_int_equal(b.cap, 1024);
	fill(&b, 'x', 3000); /* a burst: grows */
	assert_int_equal(b.cap, 4096);
	buf_consume(&b, 1000);
	assert_non_null(b.data); /* not empty yet */
	buf_consume(&b, 2000);
	assert_null(b.data); /* empty above its keep: freed */
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.keep, 1024); /* and the keep stays */
	assert_int_equal(buf_append(&b, "again", 5), 0);
	assert_int_equal(b.cap, 1024);
	buf_free(&b);
}

/* A keep above the default minimum: first size BUF_MIN, kept up to it. */
static void
test_buf_large_keep_keeps_more(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	buf_set_keep(&b, 4 * MIN_CAP);
	fill(&b, 'x', 10);
	assert_int_equal(b.cap, MIN_CAP);
	fill(&b, 'x', 2 * MIN_CAP);
	assert_int_equal(b.cap, 4 * MIN_CAP);
	data = b.data;
	buf_reset(&b);
	assert_ptr_equal(b.data, data); /* 16 KiB <= keep */
	fill(&b, 'x', 4 * MIN_CAP + 1);
	buf_reset(&b);
	assert_null(b.data); /* 32 KiB > keep */
	buf_free(&b);
}

static void
test_buf_free_clears_everything(void **state)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "abc", 3);
	buf_consume(&b, 1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void
test_buf_reserve_overflow_enomem_unchanged(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	buf_append(&b, "keep", 4);
	data = b.data;
	errno = 0;
	assert_null(buf_reserve(&b, SIZE_MAX - 10));
	assert_int_equal(errno, ENOMEM);
	assert_ptr_equal(b.data, data);
	assert_int_equal(buf_used(&b), 4);
	assert_int_equal(b.cap, MIN_CAP);
	assert_memory_equal(buf_head(&b), "keep", 4);
	buf_free(&b);
}

static void
test_buf_append_malloc_failure_unchanged(void **state)
{
	struct buf b = BUF_INIT;
	char *data;

	buf_append(&b, "keep", 4);
	data = b.data;
	errno = 0;
	/* 2^62 bytes: a legal size that malloc cannot provide */
	assert_int_equal(buf_append(&b, "x", (size_t)1 << 62), -1);
	assert_int_equal(errno, ENOMEM);
	assert_ptr_equal(b.data, data);
	assert_int_equal(buf_used(&b), 4);
	assert_memory_equal(buf_head(&b), "keep", 4);
	buf_free(&b);
}

/* buf_put: in place while there is room at the tail, buf_append's growth
 * (and its failure, leaving the buffer as it was) when there is not. */
static void
test_buf_put_in_place_then_grows(void **state)
{
	struct buf b = BUF_INIT;
	volatile size_t huge = (size_t)1 << 62; /* malloc cannot give it */
	char line[100], *data;
	size_t i;

	assert_int_equal(buf_put(&b, "", 0), 0); /* nothing, no memory */
	assert_null(b.data);
	memset(line, 'a', sizeof(line));
	assert_int_equal(buf_put(&b, line, sizeof(line)), 0); /* allocates */
	data = b.data;
	for (i = 1; (i + 1) * sizeof(line) <= b.cap; i++)
		assert_int_equal(buf_put(&b, line, sizeof(line)), 0);
	assert_ptr_equal(b.data, data); /* all in place */
	assert_int_equal(buf_put(&b, "tail", 4), 0);
	assert_int_equal(buf_used(&b), i * sizeof(line) + 4);
	assert_memory_equal(buf_head(&b) + i * sizeof(line), "tail", 4);
	errno = 0;
	assert_int_equal(buf_put(&b, line, huge), -1);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(buf_used(&b), i * sizeof(line) + 4);
	buf_free(&b);
}

static void
test_buf_queue_many_rounds(void **state)
{
	struct buf b = BUF_INIT;
	char in[100], outb[100];
	size_t next_in = 0, next_out = 0, i, k;

	/* a producer/consumer pattern: the stream comes out in order */
	for (k = 0; k < 2000; k++) {
		for (i = 0; i < 37; i++)
			in[i] = (char)(next_in++ & 0x7f);
		assert_int_equal(buf_append(&b, in, 37), 0);
		size_t take = buf_used(&b) < 29 ? buf_used(&b) : 29;
		memcpy(outb, buf_head(&b), take);
		for (i = 0; i < take; i++)
			assert_int_equal(outb[i], (char)(next_out++ & 0x7f));
		buf_consume(&b, take);
	}
	assert_int_equal(buf_used(&b), next_in - next_out);
	assert_true(b.cap <= 2 * KEEP_CAP);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_init_is_empty),
		cmocka_unit_test(test_buf_append_and_read_back),
		cmocka_unit_test(test_buf_append_zero_is_noop),
		cmocka_unit_test(test_buf_put_in_place_then_grows),
		cmocka_unit_test(test_buf_consume_partial),
		cmocka_unit_test(test_buf_consume_all_resets_offsets),
		cmocka_unit_test(test_buf_reserve_commit),
		cmocka_unit_test(test_buf_reserve_existing_room_no_realloc),
		cmocka_unit_test(test_buf_growth_doubles),
		cmocka_unit_test(
		    test_buf_first_large_append_sizes_power_of_two),
		cmocka_unit_test(
		    test_buf_compaction_memmoves_instead_of_growing),
		cmocka_unit_test(
		    test_buf_grow_with_offset_keeps_only_live_bytes),
		cmocka_unit_test(test_buf_reset_keeps_small_memory),
		cmocka_unit_test(test_buf_reset_releases_large_memory),
		cmocka_unit_test(test_buf_drained_large_buffer_released),
		cmocka_unit_test(test_buf_small_keep_is_first_size_and_limit),
		cmocka_unit_test(test_buf_large_keep_keeps_more),
		cmocka_unit_test(test_buf_free_clears_everything),
		cmocka_unit_test(test_buf_reserve_overflow_enomem_unchanged),
		cmocka_unit_test(test_buf_append_malloc_failure_unchanged),
		cmocka_unit_test(test_buf_queue_many_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
