/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fedev.c - unit tests for fedev.c, the checks on every event read
 * from Redis (issue 12, docs/SECURITY.md): the events hubs write
 * are taken apart field by field; hostile ones (overflowing, signed or
 * non-decimal sequence numbers, wrong origins, bad names, control
 * characters, invalid UTF-8, forged keywords, wrong room, over-long) are
 * refused with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fed/fedev.h"

#define O "hub1/1733400000123.4242 "

static const char *
parse(const char *s, struct fedev *ev)
{
	return fedev_parse(s, strlen(s), ev);
}

static void
test_fedev_valid_events(void **state)
{
	struct fedev ev;

	assert_null(parse(O "7 M lobby MSG Lobby ann hi there", &ev));
	assert_int_equal(ev.seq, 7);
	assert_int_equal(ev.kind, 'M');
	assert_int_equal(ev.hlen, 4);
	assert_memory_equal(ev.hub, "hub1", 4);
	assert_int_equal(ev.fl[0], 5);
	assert_memory_equal(ev.f[1], "MSG Lobby ann hi there", ev.fl[1]);
	assert_memory_equal(ev.f[2], "Lobby", ev.fl[2]);
	assert_memory_equal(ev.f[3], "ann", ev.fl[3]);
	assert_null(parse(O "8 M r7 JOIN R7 bob", &ev));
	assert_null(parse(O "9 M r7 PART R7 bob left", &ev));
	assert_null(parse(O "10 M r7 OWNER R7 bob", &ev));
	/* the key of 하늘 (name.h): 하, then ᄂ ー ᄅ (a jamo skeleton) */
	assert_null(parse(O "11 M 하\xe1\x84\x82\xe3\x83\xbc\xe1\x84\x85 "
	                    "MSG 하늘 민수 안녕",
	    &ev));
	assert_non_null(parse(O "11 M 하늘 MSG 하늘 민수 안녕", &ev));
	assert_null(parse(O "12 W hub2 ann bob psst psst", &ev));
	assert_memory_equal(ev.f[3], "psst psst", ev.fl[3]);
	assert_null(parse(O "13 D ops ann", &ev));
	assert_null(parse(O "14 O ops", &ev));
	assert_null(parse(O "0 P hub1\nR lobby 1 -\nU ann lobby\n", &ev));
	assert_int_equal(ev.kind, 'P');
	assert_null(parse(O "0 P hub1\n", &ev));
	assert_int_equal(ev.fl[0], 0);
	assert_null(parse(O "0 S", &ev));
	assert_null(parse(O "999999999999999 O ops", &ev));
}

static void
test_fedev_hostile_events(void **state)
{
	static const char *const bad[] = {
		/* sequence numbers */
		O "99999999999999999999999 M lobby MSG lobby ann x",
		O "18446744073709551617 M lobby MSG lobby ann x",
		O "1000000000000000 M lobby MSG lobby ann x",
		O "-1 M lobby MSG lobby ann x",
		O "+1 M lobby MSG lobby ann x",
		O "1a M lobby MSG lobby ann x",
		O "01 M lobby MSG lobby ann x",
		O " M lobby MSG lobby ann x",
		O "0 M lobby MSG lobby ann x",
		O "1 S",
		O "1 P hub1\n",
		/* origins */
		"hub1 1 M lobby MSG lobby ann x",
		"/1.2 1 M lobby MSG lobby ann x",
		"hub1/x.2 1 M lobby MSG lobby ann x",
		"hub1/1.2x 1 M lobby MSG lobby ann x",
		"hub1/12 1 M lobby MSG lobby ann x",
		"h\x01ub/1.2 1 M lobby MSG lobby ann x",
		" 1 M lobby MSG lobby ann x",
		"",
		"hub1/1.2",
		/* bodies */
		O "1 ",
		O "1 X what",
		O "1 M",
		O "1 M lobby",
		O "1 M lobby ERR 500 INTERNAL forged",
		O "1 M lobby BYE SHUTDOWN",
		O "1 M lobby MSG lobby ann",
		O "1 M lobby MSG ops ann x",
		O "1 M lobby JOIN lobby ann extra",
		O "1 M lobby MSG lobby an\x01n x",
		O "1 M lobby MSG lobby ann x\ny",
		O "1 M lobby MSG lobby ann \xff\xfe",
		O "1 M lobby MSG lobby ann \xe2\x80",
		O "1 M lobby MSG lobby /ann x",
		O "1 W hub2 ann bob",
		O "1 W hub2 ann bob ",
		O "1 W hub/2 ann bob x",
		O "1 W hub2 ann b\x7fob x",
		O "1 D ops",
		O "1 D ops a b",
		O "1 O ",
		O "1 O o ps",
		O "0 P hub2\nR lobby 1 -\n",
		O "0 P hub1",
		O "0 S extra",
	};
	struct fedev ev;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &ev) == NULL)
			fail_msg("accepted: %s", bad[i]);
	/* an embedded NUL, and over-long events */
	assert_non_null(
	    fedev_parse(O "1 O o\0ps", sizeof(O "1 O o\0ps") - 1, &ev));
}

static void
test_fedev_bounds(void **state)
{
	size_t n = strlen(O "1 M lobby MSG lobby ann "), big = FEDEV_MAX + 10;
	char *p = malloc(big);
	struct fedev ev;

	assert_non_null(p);
	memcpy(p, O "1 M lobby MSG lobby ann ", n);
	memset(p + n, 'x', big - n);
	assert_null(fedev_parse(p, n + FEDEV_TEXT_MAX - 24 - 5, &ev));
	assert_non_null(fedev_parse(p, n + FEDEV_TEXT_MAX + 1, &ev));
	assert_non_null(fedev_parse(p, big, &ev));
	n = strlen(O "0 P hub1\n");
	memcpy(p, O "0 P hub1\n", n);
	assert_null(fedev_parse(p, n + FEDEV_SNAPSHOT_MAX, &ev));
	assert_non_null(fedev_parse(p, n + FEDEV_SNAPSHOT_MAX + 1, &ev));
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fedev_valid_events),
		cmocka_unit_test(test_fedev_hostile_events),
		cmocka_unit_test(test_fedev_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
