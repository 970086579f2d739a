/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_stats.c - unit tests for core/lib/stats.c: bucket boundaries (linear
 * below 2^STATS_SUB_BITS, then STATS_SUB buckets per power of two, the
 * whole uint64_t range), the relative bucket width, quantiles (empty,
 * single value, uniform and skewed data, never above the maximum), reset,
 * and the "name=value" line format with truncation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/stats.h"

static struct stats_hist h;

static void
test_stats_bucket_linear_below_sub(void **state)
{
	uint64_t v;

	for (v = 0; v < STATS_SUB; v++) {
		assert_int_equal(stats_bucket(v), v);
		assert_int_equal(stats_bucket_low(v), v);
		assert_int_equal(stats_bucket_high(v), v);
	}
	/* the first power of two above is still one value per bucket */
	for (v = STATS_SUB; v < 2 * STATS_SUB; v++) {
		assert_int_equal(stats_bucket(v), v);
		assert_int_equal(stats_bucket_low(v), v);
		assert_int_equal(stats_bucket_high(v), v);
	}
}

static void
test_stats_bucket_log_linear_boundaries(void **state)
{
	/* 16..31: width 2, 32..63: width 4, 1024..2047: width 128 */
	assert_int_equal(stats_bucket(16), stats_bucket(17));
	assert_int_not_equal(stats_bucket(17), stats_bucket(18));
	assert_int_equal(stats_bucket_low(stats_bucket(17)), 16);
	assert_int_equal(stats_bucket_high(stats_bucket(17)), 17);
	assert_int_equal(stats_bucket_low(stats_bucket(35)), 32);
	assert_int_equal(stats_bucket_high(stats_bucket(35)), 35);
	assert_int_equal(stats_bucket_low(stats_bucket(1100)), 1024);
	assert_int_equal(stats_bucket_high(stats_bucket(1100)), 1151);
	assert_int_equal(stats_bucket(UINT64_MAX), STATS_HIST_BUCKETS - 1);
	assert_true(stats_bucket_high(STATS_HIST_BUCKETS - 1) == UINT64_MAX);
}

/* Every bucket is contiguous with the next, and v lies in its own bucket. */
static void
test_stats_bucket_contiguous_and_narrow(void **state)
{
	uint64_t v, lo, hi;
	size_t i;
	int shift;

	for (i = 0; i + 1 < STATS_HIST_BUCKETS; i++)
		assert_true(
		    stats_bucket_high(i) + 1 == stats_bucket_low(i + 1));
	for (shift = 0; shift < 64; shift++) {
		for (v = (uint64_t)1 << shift;
		     v != 0 && v < ((uint64_t)2 << shift);
		     v += ((uint64_t)1 << shift) / 7 + 1) {
			i = stats_bucket(v);
			lo = stats_bucket_low(i);
			hi = stats_bucket_high(i);
			assert_true(lo <= v && v <= hi);
			/* width at most 1/STATS_SUB of the bucket's low end */
			assert_true(hi - lo <= lo / STATS_SUB);
			if (shift == 63)
				break;
		}
	}
}

static void
test_stats_quantile_empty(void **state)
{
	stats_hist_reset(&h);
	assert_int_equal(stats_hist_quantile(&h, 0.5), 0);
	assert_int_equal(stats_hist_quantile(&h, 0.99), 0);
	assert_int_equal(h.max, 0);
	assert_int_equal(h.count, 0);
}

static void
test_stats_quantile_single_value_is_exact(void **state)
{
	stats_hist_reset(&h);
	stats_hist_add(&h, 1000); /* bucket 960..1023 */
	assert_int_equal(stats_hist_quantile(&h, 0.5), 1000);
	assert_int_equal(stats_hist_quantile(&h, 0.99), 1000);
	assert_int_equal(stats_hist_quantile(&h, 1.0), 1000);
	assert_int_equal(h.max, 1000);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.sum, 1000);
}

static void
test_stats_quantile_uniform(void **state)
{
	uint64_t v, p50, p99;

	stats_hist_reset(&h);
	for (v = 1; v <= 10000; v++)
		stats_hist_add(&h, v);
	p50 = stats_hist_quantile(&h, 0.50);
	p99 = stats_hist_quantile(&h, 0.99);
	/* the true values are 5000 and 9900; a bucket is <= 12.5% wide */
	assert_true(p50 >= 5000 && p50 <= 5000 + 5000 / 8);
	assert_true(p99 >= 9900 && p99 <= 10000);
	assert_int_equal(h.max, 10000);
	assert_int_equal(h.count, 10000);
	assert_int_equal(h.sum, 10000ULL * 10001 / 2);
}

static void
test_stats_quantile_skewed_tail(void **state)
{
	int i;

	stats_hist_reset(&h);
	for (i = 0; i < 990; i++)
		stats_hist_add(&h, 20);
	for (i = 0; i < 10; i++)
		stats_hist_add(&h, 50000);
	assert_int_equal(stats_hist_quantile(&h, 0.50), 21); /* bucket 20..21 */
	assert_int_equal(stats_hist_quantile(&h, 0.99), 21); /* 990th of 1000 */
	assert_int_equal(stats_hist_quantile(&h, 0.995), 50000);
	stats_hist_add(&h, 7);
	assert_int_equal(h.max, 50000);
}

static void
test_stats_reset_clears_everything(void **state)
{
	size_t i;

	stats_hist_add(&h, 5);
	stats_hist_add(&h, UINT64_MAX);
	assert_true(h.max == UINT64_MAX);
	stats_hist_reset(&h);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.max, 0);
	for (i = 0; i < STATS_HIST_BUCKETS; i++)
		assert_int_equal(h.b[i], 0);
}

static void
test_stats_format_line(void **state)
{
	const struct stats_item it[] = { { "uptime_s", 61 }, { "clients", 0 },
		{ "fanout_p99_us", 1234567 } };
	char buf[128];
	size_t n;

	n = stats_format(buf, sizeof(buf), it, 3);
	assert_string_equal(buf, "uptime_s=61 clients=0 fanout_p99_us=1234567");
	assert_int_equal(n, strlen(buf));
	n = stats_format(buf, sizeof(buf), it, 0);
	assert_string_equal(buf, "");
	assert_int_equal(n, 0);
}

static void
test_stats_format_truncates_safely(void **state)
{
	const struct stats_item it[] = { { "uptime_s", 61 }, { "clients", 9 } };
	char buf[12];
	size_t n;

	memset(buf, 'x', sizeof(buf));
	n = stats_format(buf, sizeof(buf), it, 2);
	assert_int_equal(n, strlen("uptime_s=61 clients=9"));
	assert_string_equal(buf, "uptime_s=61");
	assert_int_equal(stats_format(NULL, 0, it, 2), n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_bucket_linear_below_sub),
		cmocka_unit_test(test_stats_bucket_log_linear_boundaries),
		cmocka_unit_test(test_stats_bucket_contiguous_and_narrow),
		cmocka_unit_test(test_stats_quantile_empty),
		cmocka_unit_test(test_stats_quantile_single_value_is_exact),
		cmocka_unit_test(test_stats_quantile_uniform),
		cmocka_unit_test(test_stats_quantile_skewed_tail),
		cmocka_unit_test(test_stats_reset_clears_everything),
		cmocka_unit_test(test_stats_format_line),
		cmocka_unit_test(test_stats_format_truncates_safely),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
