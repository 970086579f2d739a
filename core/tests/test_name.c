/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_name.c - unit tests for core/chat/name.c, the name profile: what is
 * refused (and which code point is named), the stored NFC form, and which
 * names share a key (case, compatibility forms, confusables) and which do
 * not.  The lookalike pairs are those of issue 12; with the hand-written
 * folding of the old proto_fold every "same key" pair here had two keys.
 *
 * Pure module (libunistring, ICU): no stubs, no seams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "chat/name.h"
#include "lib/proto.h"

/* ---- helpers --------------------------------------------------------- */

#define NAMESZ_T (PROTO_NAME_MAX_BYTES + 1)

static enum name_fault
prep(const char *s, size_t max, char *nfc, char *key, uint32_t *cp)
{
	return name_prepare(s, strlen(s), max, nfc, NAMESZ_T, key, cp);
}

static enum name_fault
nick(const char *s)
{
	char nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp;

	return prep(s, PROTO_NICK_MAX_CHARS, nfc, key, &cp);
}

/* The fault of nick s and the code point it names. */
static void
assert_refused(const char *s, enum name_fault f, uint32_t badcp)
{
	char nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp = 0;

	assert_int_equal(prep(s, PROTO_NICK_MAX_CHARS, nfc, key, &cp), f);
	assert_int_equal(cp, badcp);
	assert_string_equal(key, ""); /* nothing to compare by */
}

static void
assert_same_key(const char *a, const char *b)
{
	char ka[NAME_KEYSZ], kb[NAME_KEYSZ];

	assert_true(name_key(a, strlen(a), ka) > 0);
	assert_true(name_key(b, strlen(b), kb) > 0);
	assert_string_equal(ka, kb);
}

static void
assert_other_key(const char *a, const char *b)
{
	char ka[NAME_KEYSZ], kb[NAME_KEYSZ];

	assert_true(name_key(a, strlen(a), ka) > 0);
	assert_true(name_key(b, strlen(b), kb) > 0);
	assert_string_not_equal(ka, kb);
}

/* ---- what is accepted ------------------------------------------------- */

static void
test_name_accepts_what_worked_before(void **state)
{
	assert_int_equal(nick("alice"), NAME_OK);
	assert_int_equal(nick("a"), NAME_OK);
	assert_int_equal(nick("김철수"), NAME_OK);
	assert_int_equal(nick("a/b"), NAME_OK); /* / only banned first */
	assert_int_equal(nick("1234567890123456"), NAME_OK);
	assert_int_equal(nick("Élan"), NAME_OK);
	assert_int_equal(nick("ΑΛΦΑ"), NAME_OK);
	assert_int_equal(nick("ИВАН"), NAME_OK);
	assert_int_equal(nick("x-y_z.1"), NAME_OK);
	assert_int_equal(nick("😀"), NAME_OK);
	assert_int_equal(nick("--"), NAME_OK); /* only "-" itself */
}

static void
test_name_length_in_code_points(void **state)
{
	char s[80] = "";
	int i;

	for (i = 0; i < 16; i++) /* 16 Hangul syllables = 48 bytes */
		strncat(s, "한", sizeof(s) - strlen(s) - 1);
	assert_int_equal(nick(s), NAME_OK);
	strncat(s, "한", sizeof(s) - strlen(s) - 1);
	assert_int_equal(nick(s), NAME_TOO_LONG);
	assert_int_equal(nick("12345678901234567"), NAME_TOO_LONG);
}

static void
test_name_room_length(void **state)
{
	char room[40], nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp;

	memset(room, 'r', 33);
	room[33] = '\0';
	assert_int_equal(name_prepare(room, 32, PROTO_ROOM_MAX_CHARS, nfc,
	                     sizeof(nfc), key, &cp),
	    NAME_OK);
	assert_int_equal(name_prepare(room, 33, PROTO_ROOM_MAX_CHARS, nfc,
	                     sizeof(nfc), key, &cp),
	    NAME_TOO_LONG);
}

/* A key may outgrow its name (U+3300 SQUARE APAATO: 3 bytes, key 14). */
static void
test_name_key_too_long(void **state)
{
	char s[32 * 3 + 1] = "", nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp;
	int i;

	for (i = 0; i < 16; i++)
		memcpy(s + 3 * i, "\xe3\x8c\x80", 4); /* and the NUL */
	assert_int_equal(prep(s, PROTO_NICK_MAX_CHARS, nfc, key, &cp), NAME_OK);
	assert_true(strlen(key) > strlen(s)); /* fits NAME_KEYSZ */
	for (i = 16; i < 32; i++)
		memcpy(s + 3 * i, "\xe3\x8c\x80", 4);
	assert_int_equal(
	    prep(s, PROTO_ROOM_MAX_CHARS, nfc, key, &cp), NAME_KEY_TOO_LONG);
}

/* ---- what is refused -------------------------------------------------- */

static void
test_name_refuses_syntax(void **state)
{
	char nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp;

	assert_int_equal(nick(""), NAME_EMPTY);
	assert_int_equal(nick("/alice"), NAME_SLASH);
	assert_int_equal(nick("al\xff"), NAME_BAD_UTF8);
	assert_int_equal(nick("\xed\xa0\x80x"), NAME_BAD_UTF8); /* surrogate */
	assert_int_equal(
	    name_prepare("a\0b", 3, 16, nfc, sizeof(nfc), key, &cp),
	    NAME_CONTROL);
}

static void
test_name_refuses_spaces_and_controls(void **state)
{
	assert_refused("al ice", NAME_SPACE, ' ');
	assert_refused("al\tice", NAME_CONTROL, '\t');
	assert_refused("al\xc2\xa0ice", NAME_SPACE, 0xa0);       /* NBSP */
	assert_refused("al\xe3\x80\x80ice", NAME_SPACE, 0x3000); /* ideogr. */
	assert_refused("al\xe2\x80\xa8", NAME_SPACE, 0x2028);    /* LS */
	assert_refused("al\x01", NAME_CONTROL, 1);
	assert_refused("al\x7f", NAME_CONTROL, 0x7f);
	assert_refused("al\xc2\x85", NAME_CONTROL, 0x85); /* NEL */
}

/* Issue 12: each of these looked exactly like "bob" and registered. */
static void
test_name_refuses_invisible(void **state)
{
	assert_refused("bob\xe2\x81\xa0", NAME_INVISIBLE, 0x2060); /* WJ */
	assert_refused("b\xc2\xadob", NAME_INVISIBLE, 0xad);       /* SHY */
	assert_refused("bo\xe2\x80\x8d"
	               "b",
	    NAME_INVISIBLE, 0x200d); /* ZWJ */
	assert_refused("bo\xe2\x80\x8c"
	               "b",
	    NAME_INVISIBLE, 0x200c); /* ZWNJ */
	assert_refused("bo\xe2\x80\x8b"
	               "b",
	    NAME_INVISIBLE, 0x200b); /* ZWSP */
	assert_refused("\xef\xbb\xbf"
	               "bob",
	    NAME_INVISIBLE, 0xfeff);                               /* BOM */
	assert_refused("bob\xe3\x85\xa4", NAME_INVISIBLE, 0x3164); /* filler */
	assert_refused("bob\xef\xbe\xa0", NAME_INVISIBLE, 0xffa0); /* half */
	assert_refused("\xe1\x85\x9f", NAME_INVISIBLE, 0x115f);
	assert_refused("\xe2\x9d\xa4\xef\xb8\x8f", NAME_INVISIBLE, 0xfe0f);
	assert_refused(
	    "bob\xf3\xa0\x80\x81", NAME_INVISIBLE, 0xe0001); /* tag */
}

static void
test_name_refuses_bidi_controls(void **state)
{
	static const uint32_t bidi[] = { 0x200e, 0x200f, 0x202a, 0x202b, 0x202c,
		0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x61c };
	char s[16];
	size_t i;

	for (i = 0; i < sizeof(bidi) / sizeof(bidi[0]); i++) {
		if (bidi[i] < 0x800)
			snprintf(s, sizeof(s), "bob%c%c",
			    (char)(0xc0 | (bidi[i] >> 6)),
			    (char)(0x80 | (bidi[i] & 0x3f)));
		else
			snprintf(s, sizeof(s), "bob%c%c%c",
			    (char)(0xe0 | (bidi[i] >> 12)),
			    (char)(0x80 | ((bidi[i] >> 6) & 0x3f)),
			    (char)(0x80 | (bidi[i] & 0x3f)));
		assert_refused(s, NAME_BIDI, bidi[i]);
	}
}

static void
test_name_refuses_unassigned_marks_and_compat_spaces(void **state)
{
	assert_refused("a\xcd\xb8", NAME_UNASSIGNED, 0x378);      /* Cn */
	assert_refused("a\xef\xbf\xbe", NAME_UNASSIGNED, 0xfffe); /* nonchar */
	assert_refused("a\xee\x80\x80", NAME_UNASSIGNED, 0xe000); /* Co */
	assert_refused("\xcc\x81"
	               "bob",
	    NAME_MARK_FIRST, 0x301);
	assert_refused("a\xc2\xa8", NAME_FOLDS_BAD, 0xa8); /* " \u0308" */
}

/* "-" means nobody (unregistered, a room without owner): so do lookalikes. */
static void
test_name_dash_is_reserved(void **state)
{
	char nfc[NAMESZ_T], key[NAME_KEYSZ];
	uint32_t cp;

	assert_int_equal(nick("-"), NAME_RESERVED);
	assert_int_equal(nick("\xe2\x80\x90"), NAME_RESERVED); /* U+2010 */
	assert_int_equal(nick("\xe2\x88\x92"), NAME_RESERVED); /* U+2212 */
	assert_int_equal(
	    prep("-", PROTO_ROOM_MAX_CHARS, nfc, key, &cp), NAME_RESERVED);
	assert_int_equal(name_key("-", 1, key), 0);
}

/* ---- the stored form and the key ------------------------------------- */

static void
test_name_stored_in_nfc(void **state)
{
	char nfc[NAMESZ_T], key[NAME_KEYSZ], k2[NAME_KEYSZ];
	uint32_t cp;

	/* e + COMBINING ACUTE is stored as U+00E9 and is the same name */
	assert_int_equal(prep("e\xcc\x81lan", 16, nfc, key, &cp), NAME_OK);
	assert_string_equal(nfc, "\xc3\xa9lan");
	name_key("\xc3\x89LAN", 5, k2);
	assert_string_equal(key, k2);
	/* 17 code points, 16 once composed: fine */
	assert_int_equal(nick("abcdefghijklmnoe\xcc\x81"), NAME_OK);
}

static void
test_name_case_folding_is_full(void **state)
{
	assert_same_key("alice", "ALICE");
	assert_same_key("Élan", "élan");
	assert_same_key("ΑΛΦΑ", "αλφα");
	assert_same_key("ИВАН", "иван");
	/* issue 12: these pairs coexisted with the hand-written tables */
	assert_same_key("Σοφία", "ΣΟΦΊΑ");
	assert_same_key("σας", "ΣΑΣ");
	assert_same_key("ґрета", "Ґрета");
	assert_same_key("\xc2\xb5u", "\xce\xbcu"); /* MICRO SIGN, mu */
	assert_same_key("Straße", "STRASSE");
	assert_same_key("\xc5\xb8", "\xc3\xbf"); /* Ÿ ÿ (old KB1) */
	assert_same_key("ｂｏｂ", "bob");        /* fullwidth */
}

static void
test_name_confusables_share_a_key(void **state)
{
	assert_same_key("bob",
	    "b\xd0\xbe"
	    "b");                                 /* Cyrillic o */
	assert_same_key("apple", "\xd0\xb0pple"); /* Cyrillic a */
	assert_same_key("paypal", "PAYPAL");
	assert_same_key("mary", "rnary");
}

static void
test_name_different_names_differ(void **state)
{
	assert_other_key("김철수", "김영희");
	assert_other_key("alice", "bob");
	assert_other_key("bob", "bobby");
	assert_other_key("하늘", "하느");
}

static void
test_name_key_of_invalid_is_empty(void **state)
{
	char key[NAME_KEYSZ];

	snprintf(key, sizeof(key), "x");
	assert_int_equal(name_key("a b", 3, key), 0);
	assert_string_equal(key, "");
	assert_int_equal(name_key("", 0, key), 0);
}

static void
test_name_explain_names_the_code_point(void **state)
{
	char buf[160];

	name_explain(NAME_BIDI, 0x202e, buf, sizeof(buf));
	assert_string_equal(buf, "contains the bidi control U+202E");
	name_explain(NAME_INVISIBLE, 0xe0001, buf, sizeof(buf));
	assert_string_equal(buf, "contains the invisible character U+E0001");
	name_explain(NAME_RESERVED, 0, buf, sizeof(buf));
	assert_string_equal(buf, "is reserved: - means nobody");
	name_explain((enum name_fault)99, 0, buf, sizeof(buf));
	assert_string_equal(buf, "could not be checked (out of memory)");
}

/* The cheap check for names other hubs send: characters only, no key. */
static void
test_name_shown_ok(void **state)
{
	assert_true(name_shown_ok("alice", 5));
	assert_true(name_shown_ok("김철수", strlen("김철수")));
	assert_true(name_shown_ok("--", 2));
	assert_false(name_shown_ok("", 0));
	assert_false(name_shown_ok("-", 1));
	assert_false(name_shown_ok("/x", 2));
	assert_false(name_shown_ok("a b", 3));
	assert_false(name_shown_ok("bob\xe2\x80\xae", 6));
	assert_false(name_shown_ok("bob\xe2\x81\xa0", 6));
	assert_false(name_shown_ok("\xe3\x85\xa4", 3));
	assert_false(name_shown_ok("\xcc\x81x", 3));
	assert_false(name_shown_ok("a\xff", 2));
	assert_false(name_shown_ok("a\x01", 2));
}

/* The checker can be closed and opened again (name_cleanup at exit). */
static void
test_name_cleanup_then_reuse(void **state)
{
	name_cleanup();
	assert_same_key("bob", "BOB");
	name_cleanup();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_accepts_what_worked_before),
		cmocka_unit_test(test_name_length_in_code_points),
		cmocka_unit_test(test_name_room_length),
		cmocka_unit_test(test_name_key_too_long),
		cmocka_unit_test(test_name_refuses_syntax),
		cmocka_unit_test(test_name_refuses_spaces_and_controls),
		cmocka_unit_test(test_name_refuses_invisible),
		cmocka_unit_test(test_name_refuses_bidi_controls),
		cmocka_unit_test(
		    test_name_refuses_unassigned_marks_and_compat_spaces),
		cmocka_unit_test(test_name_dash_is_reserved),
		cmocka_unit_test(test_name_stored_in_nfc),
		cmocka_unit_test(test_name_case_folding_is_full),
		cmocka_unit_test(test_name_confusables_share_a_key),
		cmocka_unit_test(test_name_different_names_differ),
		cmocka_unit_test(test_name_key_of_invalid_is_empty),
		cmocka_unit_test(test_name_explain_names_the_code_point),
		cmocka_unit_test(test_name_shown_ok),
		cmocka_unit_test(test_name_cleanup_then_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
