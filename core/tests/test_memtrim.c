/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_memtrim.c - core/sys/memtrim.c: when freed heap goes back.
 *
 * The decision (memtrim_due) is tested on figures in every build.  The
 * real heap tests need glibc's malloc: an ASan build replaces it (its
 * mallinfo2() sees an unused arena), so they are compiled only without
 * ASan; they read the heap's resident size from /proc/self/smaps, not
 * through memtrim.c's own mincore().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys/memtrim.h"

#define K 1024

static void
test_nothing_free_no_trim(void **state)
{
	struct memtrim m = { 0, 0 };

	(void)state;
	assert_int_equal(memtrim_due(256 * K, &m, 100 * K, 0, 10000 * K), 0);
}

static void
test_freed_since_last_trim_trims(void **state)
{
	struct memtrim m = { 1000 * K, 0 };

	(void)state;
	/* 300 kB more free than the least seen: due without resident */
	assert_int_equal(memtrim_due(256 * K, &m, 1300 * K, 500 * K, 0), 1);
	assert_int_equal(memtrim_due(256 * K, &m, 1200 * K, 500 * K, 0), 0);
}

static void
test_resident_reuse_between_calls_trims(void **state)
{
	struct memtrim m = { 4000 * K, 0 };

	(void)state;
	/* free as after the last trim, but 3 MB of it resident again */
	assert_int_equal(
	    memtrim_due(256 * K, &m, 4000 * K, 300 * K, 3300 * K), 1);
	/* resident within the slack of what is in use: not due */
	assert_int_equal(
	    memtrim_due(256 * K, &m, 4000 * K, 300 * K, 500 * K), 0);
	/* not counted (a busy caller): not due */
	assert_int_equal(memtrim_due(256 * K, &m, 4000 * K, 300 * K, 0), 0);
}

static void
test_what_a_trim_kept_is_not_trimmed_again(void **state)
{
	struct memtrim m = { 4000 * K, 600 * K };

	(void)state;
	/* 700 kB beyond in use, 600 kB of it left by the last trim */
	assert_int_equal(
	    memtrim_due(256 * K, &m, 4000 * K, 300 * K, 1000 * K), 0);
	assert_int_equal(
	    memtrim_due(256 * K, &m, 4000 * K, 300 * K, 1200 * K), 1);
}

#ifndef __SANITIZE_ADDRESS__
/* Rss of the [heap] mapping in kB, from /proc/self/smaps. */
static long
heap_rss_kb(void)
{
	char line[256];
	long kb = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strchr(line, '-') != NULL && strstr(line, " r") != NULL)
			in = strstr(line, "[heap]") != NULL;
		else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	assert_true(kb >= 0);
	return kb;
}

#define NBLK 160
#define BLK  (24 * K) /* below the mmap threshold: from the heap */

/* Fill the heap with NBLK touched blocks under a pin, then free them. */
static void *
churn(void)
{
	void *b[NBLK], *pin;
	int i;

	for (i = 0; i < NBLK; i++) {
		assert_non_null(b[i] = malloc(BLK));
		memset(b[i], 0x5a, BLK);
	}
	pin = malloc(64); /* above them: the heap cannot shrink at its top */
	assert_non_null(pin);
	for (i = 0; i < NBLK; i++)
		free(b[i]);
	return pin;
}

/*
 * The bug it fixes: a burst that reuses freed, already trimmed space and
 * frees it again between two calls left the least-free figure as it was,
 * so the 3.8 MB it made resident stayed (bench/memory.py at N=100).
 */
static void
test_burst_between_calls_is_given_back(void **state)
{
	struct memtrim m = { 0, 0 };
	void *pin, *pin2;
	long before, after;

	(void)state;
	assert_int_equal(mallopt(M_MMAP_THRESHOLD, 128 * K), 1);
	pin = churn();
	(void)memtrim_idle(256 * K, &m, 1);                /* the first trim */
	assert_int_equal(memtrim_idle(256 * K, &m, 1), 0); /* done */
	pin2 = churn(); /* the same space again, between two calls */
	before = heap_rss_kb();
	assert_int_equal(memtrim_idle(256 * K, &m, 0), 0); /* busy: no */
	assert_int_equal(memtrim_idle(256 * K, &m, 1), 1);
	after = heap_rss_kb();
	assert_true(before - after >= (NBLK * BLK) / K / 2);
	assert_int_equal(memtrim_idle(256 * K, &m, 1), 0); /* kept: no */
	free(pin2);
	free(pin);
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_free_no_trim),
		cmocka_unit_test(test_freed_since_last_trim_trims),
		cmocka_unit_test(test_resident_reuse_between_calls_trims),
		cmocka_unit_test(test_what_a_trim_kept_is_not_trimmed_again),
#ifndef __SANITIZE_ADDRESS__
		cmocka_unit_test(test_burst_between_calls_is_given_back),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
