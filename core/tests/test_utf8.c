/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_utf8.c - unit tests for core/lib/utf8.c: strict decoding (overlongs,
 * surrogates, out-of-range and truncated sequences), validation, counting,
 * encoding round trips and control/space classification.  Case folding
 * is name.c's (libunistring, ICU): core/tests/test_name.c.
 *
 * Pure module: no stubs, no seams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/utf8.h"

/* Decode s (a C string literal), expecting n bytes and code point want. */
static void
expect_decode(const char *s, size_t len, size_t n, uint32_t want)
{
	uint32_t cp = 0xdeadbeef;

	assert_int_equal(utf8_decode(s, len, &cp), n);
	if (n)
		assert_int_equal(cp, want);
	else
		assert_int_equal(cp, 0xdeadbeef); /* untouched on error */
}

/* ---- decode ---------------------------------------------------------- */

static void
test_utf8_decode_ascii(void **state)
{
	expect_decode("A", 1, 1, 'A');
	expect_decode("\x7f", 1, 1, 0x7f);
	expect_decode("\0", 1, 1, 0); /* NUL is a valid code point */
}

static void
test_utf8_decode_empty_returns_zero(void **state)
{
	expect_decode("A", 0, 0, 0);
}

static void
test_utf8_decode_two_three_four_bytes(void **state)
{
	expect_decode("\xc3\xa9", 2, 2, 0xe9);             /* é */
	expect_decode("\xed\x95\x9c", 3, 3, 0xd55c);       /* 한 */
	expect_decode("\xf0\x9f\x98\x80", 4, 4, 0x1f600);  /* emoji */
	expect_decode("\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff); /* max */
}

static void
test_utf8_decode_boundaries(void **state)
{
	expect_decode("\xc2\x80", 2, 2, 0x80);
	expect_decode("\xdf\xbf", 2, 2, 0x7ff);
	expect_decode("\xe0\xa0\x80", 3, 3, 0x800);
	expect_decode("\xef\xbf\xbf", 3, 3, 0xffff);
	expect_decode("\xf0\x90\x80\x80", 4, 4, 0x10000);
	expect_decode("\xed\x9f\xbf", 3, 3, 0xd7ff); /* below surrogates */
	expect_decode("\xee\x80\x80", 3, 3, 0xe000); /* above surrogates */
}

static void
test_utf8_decode_consumes_only_first_char(void **state)
{
	expect_decode("\xc3\xa9xyz", 5, 2, 0xe9);
	expect_decode("ab", 2, 1, 'a');
}

static void
test_utf8_decode_rejects_overlong(void **state)
{
	expect_decode("\xc0\x80", 2, 0, 0); /* overlong NUL */
	expect_decode("\xc1\xbf", 2, 0, 0);
	expect_decode("\xe0\x80\xaf", 3, 0, 0); /* overlong '/' */
	expect_decode("\xe0\x9f\xbf", 3, 0, 0);
	expect_decode("\xf0\x8f\xbf\xbf", 4, 0, 0);
}

static void
test_utf8_decode_rejects_surrogates(void **state)
{
	expect_decode("\xed\xa0\x80", 3, 0, 0); /* U+D800 */
	expect_decode("\xed\xbf\xbf", 3, 0, 0); /* U+DFFF */
}

static void
test_utf8_decode_rejects_above_max(void **state)
{
	expect_decode("\xf4\x90\x80\x80", 4, 0, 0); /* U+110000 */
	expect_decode("\xf5\x80\x80\x80", 4, 0, 0);
	expect_decode("\xf7\xbf\xbf\xbf", 4, 0, 0);
}

static void
test_utf8_decode_rejects_bad_lead_bytes(void **state)
{
	expect_decode("\x80", 1, 0, 0); /* lone continuation */
	expect_decode("\xbf", 1, 0, 0);
	expect_decode("\xf8\x88\x80\x80\x80", 5, 0, 0); /* 5-byte form */
	expect_decode("\xfc\x84\x80\x80\x80\x80", 6, 0, 0);
	expect_decode("\xfe", 1, 0, 0);
	expect_decode("\xff", 1, 0, 0);
}

static void
test_utf8_decode_rejects_truncated(void **state)
{
	expect_decode("\xc3\xa9", 1, 0, 0);
	expect_decode("\xed\x95\x9c", 2, 0, 0);
	expect_decode("\xf0\x9f\x98\x80", 3, 0, 0);
}

static void
test_utf8_decode_rejects_bad_continuation(void **state)
{
	expect_decode("\xc3\x41", 2, 0, 0);
	expect_decode("\xe2\x82\x41", 3, 0, 0);
	expect_decode("\xf0\x9f\xc0\x80", 4, 0, 0);
	expect_decode("\xc3\xc3", 2, 0, 0);
}

/* ---- valid / count --------------------------------------------------- */

static void
test_utf8_valid_accepts_mixed_text(void **state)
{
	const char *s =
	    "hi \xec\x95\x88\xeb\x85\x95 \xce\xb1\xce\xb2 \xf0\x9f\x98\x80";

	assert_int_equal(utf8_valid(s, strlen(s)), 1);
	assert_int_equal(utf8_valid("", 0), 1);
	assert_int_equal(utf8_valid("a\0b", 3), 1); /* NUL is valid UTF-8 */
}

static void
test_utf8_valid_rejects_anywhere(void **state)
{
	assert_int_equal(utf8_valid("\xff", 1), 0);
	assert_int_equal(utf8_valid("abc\xff", 4), 0);
	assert_int_equal(utf8_valid("abc\xc3", 4), 0); /* truncated end */
	assert_int_equal(utf8_valid("\xed\xa0\x80xyz", 6), 0);
	assert_int_equal(utf8_valid("ok\xc0\x80ok", 6), 0);
}

static void
test_utf8_valid_respects_length(void **state)
{
	/* the bad byte lies beyond len, so it is not looked at */
	assert_int_equal(utf8_valid("abc\xff", 3), 1);
	/* cutting a sequence in the middle makes it invalid */
	assert_int_equal(utf8_valid("\xc3\xa9", 1), 0);
}

static void
test_utf8_count_code_points(void **state)
{
	assert_int_equal(utf8_count("", 0), 0);
	assert_int_equal(utf8_count("abc", 3), 3);
	assert_int_equal(
	    utf8_count("\xea\xb9\x80\xec\xb2\xa0\xec\x88\x98", 9), 3);
	assert_int_equal(utf8_count("a\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
}

/* ---- encode ---------------------------------------------------------- */

static void
test_utf8_encode_lengths(void **state)
{
	char out[4];

	assert_int_equal(utf8_encode('A', out), 1);
	assert_memory_equal(out, "A", 1);
	assert_int_equal(utf8_encode(0xe9, out), 2);
	assert_memory_equal(out, "\xc3\xa9", 2);
	assert_int_equal(utf8_encode(0xd55c, out), 3);
	assert_memory_equal(out, "\xed\x95\x9c", 3);
	assert_int_equal(utf8_encode(0x1f600, out), 4);
	assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
}

static void
test_utf8_encode_rejects_invalid(void **state)
{
	char out[4];

	assert_int_equal(utf8_encode(0xd800, out), 0);
	assert_int_equal(utf8_encode(0xdfff, out), 0);
	assert_int_equal(utf8_encode(0x110000, out), 0);
	assert_int_equal(utf8_encode(0xffffffff, out), 0);
}

static void
test_utf8_encode_decode_roundtrip_all(void **state)
{
	char out[4];
	uint32_t cp, back;
	size_t n;

	for (cp = 0; cp <= 0x10ffff; cp++) {
		n = utf8_encode(cp, out);
		if (cp >= 0xd800 && cp <= 0xdfff) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_int_equal(n,
		    cp < 0x80        ? 1 :
		        cp < 0x800   ? 2 :
		        cp < 0x10000 ? 3 :
		                       4);
		assert_int_equal(utf8_decode(out, n, &back), n);
		assert_int_equal(back, cp);
		assert_int_equal(utf8_valid(out, n), 1);
		assert_int_equal(utf8_count(out, n), 1);
	}
}

/* ---- classification -------------------------------------------------- */

static void
test_utf8_is_control_c0_del_c1(void **state)
{
	uint32_t cp;

	for (cp = 0; cp < 0x20; cp++)
		assert_int_equal(utf8_is_control(cp), cp != '\t');
	assert_true(utf8_is_control(0x7f));
	for (cp = 0x80; cp <= 0x9f; cp++)
		assert_true(utf8_is_control(cp));
}

static void
test_utf8_is_control_false_for_text(void **state)
{
	assert_false(utf8_is_control('\t'));
	assert_false(utf8_is_control(' '));
	assert_false(utf8_is_control('~'));
	assert_false(utf8_is_control(0xa0));
	assert_false(utf8_is_control(0xd55c));
	assert_false(utf8_is_control(0x1f600));
}

static void
test_utf8_is_space_ascii_and_unicode(void **state)
{
	static const uint32_t sp[] = { ' ', '\t', 0xa0, 0x1680, 0x2000, 0x2005,
		0x200a, 0x200b, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
		0xfeff };
	size_t i;

	for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
		assert_true(utf8_is_space(sp[i]));
}

static void
test_utf8_is_space_false_for_letters(void **state)
{
	assert_false(utf8_is_space('a'));
	assert_false(utf8_is_space('_'));
	assert_false(utf8_is_space(0x1fff));
	assert_false(utf8_is_space(0x200c));
	assert_false(utf8_is_space(0xac00)); /* 가 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_decode_ascii),
		cmocka_unit_test(test_utf8_decode_empty_returns_zero),
		cmocka_unit_test(test_utf8_decode_two_three_four_bytes),
		cmocka_unit_test(test_utf8_decode_boundaries),
		cmocka_unit_test(test_utf8_decode_consumes_only_first_char),
		cmocka_unit_test(test_utf8_decode_rejects_overlong),
		cmocka_unit_test(test_utf8_decode_rejects_surrogates),
		cmocka_unit_test(test_utf8_decode_rejects_above_max),
		cmocka_unit_test(test_utf8_decode_rejects_bad_lead_bytes),
		cmocka_unit_test(test_utf8_decode_rejects_truncated),
		cmocka_unit_test(test_utf8_decode_rejects_bad_continuation),
		cmocka_unit_test(test_utf8_valid_accepts_mixed_text),
		cmocka_unit_test(test_utf8_valid_rejects_anywhere),
		cmocka_unit_test(test_utf8_valid_respects_length),
		cmocka_unit_test(test_utf8_count_code_points),
		cmocka_unit_test(test_utf8_encode_lengths),
		cmocka_unit_test(test_utf8_encode_rejects_invalid),
		cmocka_unit_test(test_utf8_encode_decode_roundtrip_all),
		cmocka_unit_test(test_utf8_is_control_c0_del_c1),
		cmocka_unit_test(test_utf8_is_control_false_for_text),
		cmocka_unit_test(test_utf8_is_space_ascii_and_unicode),
		cmocka_unit_test(test_utf8_is_space_false_for_letters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
