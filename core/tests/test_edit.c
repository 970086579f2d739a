/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_edit.c - unit tests for edit.c, the client's input line editor.
 *
 * Scope: every key forkchat(1) documents, fed as the bytes a terminal in
 * raw mode sends (xterm and VT100 escape sequences included, split at any
 * byte), over ASCII, Hangul (3 bytes, 2 columns) and 4-byte characters;
 * the buffer stays valid UTF-8 whatever arrives; history; and the
 * horizontal view of a line wider than the terminal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "client/edit.h"
#include "client/render.h"
#include "lib/utf8.h"

static struct edit ed;

static int
setup(void **state)
{
	(void)state;
	render_locale();
	edit_init(&ed);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	edit_free(&ed);
	return 0;
}

/* Feed s byte by byte; return the last action that was not EDIT_NONE. */
static enum edit_action
keys(const char *s)
{
	enum edit_action a, last = EDIT_NONE;

	for (; *s != '\0'; s++)
		if ((a = edit_feed(&ed, (unsigned char)*s)) != EDIT_NONE)
			last = a;
	return last;
}

/* The line and the cursor as "before|after". */
static const char *
shown(void)
{
	static char out[EDIT_MAX + 2];

	memcpy(out, ed.buf, ed.cur);
	out[ed.cur] = '|';
	memcpy(out + ed.cur + 1, ed.buf + ed.cur, ed.len - ed.cur + 1);
	return out;
}

#define LEFT  "\033[D"
#define RIGHT "\033[C"
#define UP    "\033[A"
#define DOWN  "\033[B"
#define HOME  "\033[H"
#define END   "\033[F"
#define DEL   "\033[3~"
#define BS    "\177"

static void
test_edit_insert_and_move(void **state)
{
	assert_int_equal(keys("hello"), EDIT_REDRAW);
	assert_string_equal(shown(), "hello|");
	keys(LEFT LEFT "X");
	assert_string_equal(shown(), "helX|lo");
	keys("\001"); /* Ctrl-A */
	assert_string_equal(shown(), "|helXlo");
	keys("\005"); /* Ctrl-E */
	assert_string_equal(shown(), "helXlo|");
	keys(HOME RIGHT);
	assert_string_equal(shown(), "h|elXlo");
	keys(END LEFT "\002\006"); /* Ctrl-B, Ctrl-F */
	assert_string_equal(shown(), "helXl|o");
	keys("\033OH"); /* Home in application mode */
	assert_string_equal(shown(), "|helXlo");
	keys("\033[4~"); /* End on a VT220 */
	assert_string_equal(shown(), "helXlo|");
	assert_int_equal(keys(RIGHT), EDIT_NONE); /* at the end already */
}

static void
test_edit_hangul_is_one_character(void **state)
{
	keys("가나다");
	assert_int_equal(ed.len, 9);
	keys(LEFT);
	assert_string_equal(shown(), "가나|다");
	keys(BS);
	assert_string_equal(shown(), "가|다");
	keys(DEL);
	assert_string_equal(shown(), "가|");
	keys(LEFT "\004"); /* Ctrl-D deletes under the cursor */
	assert_string_equal(shown(), "|");
	keys("a\xf0\x9f\x98\x80"
	     "b" LEFT LEFT); /* a 4-byte emoji */
	assert_string_equal(shown(),
	    "a|\xf0\x9f\x98\x80"
	    "b");
	keys(RIGHT BS);
	assert_string_equal(shown(), "a|b");
	assert_true(utf8_valid(ed.buf, ed.len));
}

static void
test_edit_kill_keys(void **state)
{
	keys("one two  three");
	keys("\027"); /* Ctrl-W */
	assert_string_equal(shown(), "one two  |");
	keys("\027");
	assert_string_equal(shown(), "one |");
	keys("x y" LEFT LEFT);
	keys("\025"); /* Ctrl-U: everything before the cursor */
	assert_string_equal(shown(), "| y");
	keys(RIGHT "\013"); /* Ctrl-K: everything after it */
	assert_string_equal(shown(), " |");
	keys("\025");
	assert_int_equal(keys("\025"), EDIT_NONE); /* empty: nothing changes */
	keys("한국 말"
	     "\027");
	assert_string_equal(shown(), "한국 |");
}

static void
test_edit_enter_and_ctrl_d(void **state)
{
	const char *line;
	size_t n;

	assert_int_equal(keys("\004"), EDIT_EOF); /* empty line: leave */
	keys("hi");
	assert_int_equal(keys("\r"), EDIT_SUBMIT);
	line = edit_line(&ed, &n);
	assert_int_equal(n, 2);
	assert_string_equal(line, "hi");
	edit_done(&ed);
	assert_string_equal(shown(), "|");
	assert_int_equal(keys("\n"), EDIT_SUBMIT); /* LF is Enter too */
	edit_done(&ed);
	assert_int_equal(ed.nhist, 1); /* empty lines are not kept */
}

static void
submit(const char *s)
{
	keys(s);
	assert_int_equal(keys("\r"), EDIT_SUBMIT);
	edit_done(&ed);
}

static void
test_edit_history(void **state)
{
	int i;

	assert_int_equal(keys(UP), EDIT_NONE); /* nothing sent yet */
	submit("first");
	submit("두번째");
	submit("두번째"); /* the same line twice: kept once */
	keys("draft");
	keys(UP);
	assert_string_equal(shown(), "두번째|");
	keys(UP);
	assert_string_equal(shown(), "first|");
	assert_int_equal(keys(UP), EDIT_NONE); /* the oldest */
	keys("\033OB");                        /* Down, application mode */
	assert_string_equal(shown(), "두번째|");
	keys(DOWN);
	assert_string_equal(shown(), "draft|"); /* the draft is back */
	assert_int_equal(keys(DOWN), EDIT_NONE);
	keys("\020"); /* Ctrl-P */
	assert_string_equal(shown(), "두번째|");
	keys("\016"); /* Ctrl-N */
	for (i = 0; i < EDIT_HISTORY + 5; i++) {
		char s[16];

		snprintf(s, sizeof(s), "l%d", i);
		keys("\025");
		submit(s);
	}
	assert_int_equal(ed.nhist, EDIT_HISTORY);
	for (i = 0; i < EDIT_HISTORY; i++)
		keys(UP);
	assert_string_equal(shown(), "l5|"); /* the oldest 5 were dropped */
}

static void
test_edit_garbage_keeps_utf8_valid(void **state)
{
	/* stray continuation bytes, a cut sequence, an overlong form, a
	 * surrogate, a C1 control and ESC sequences we do not use */
	keys("a\x80"
	     "b\xe1\x84"
	     "c\xc0\xaf"
	     "d\xed\xa0\x80"
	     "e\xc2\x9b"
	     "f");
	keys("\033[15~\033[1;5C\033Ox\033[200~g\033x\033");
	assert_true(utf8_valid(ed.buf, ed.len));
	assert_string_equal(ed.buf, "abcdefgx");
	keys("\x01\x07\x1a\x1c"); /* Ctrl-A, then bell, ^Z, ^\: ignored */
	assert_string_equal(shown(), "|abcdefgx");
	keys("\t");
	assert_string_equal(shown(), " |abcdefgx");
}

static void
test_edit_full_line_drops_keys(void **state)
{
	size_t i;

	for (i = 0; i < EDIT_MAX - 1; i++)
		edit_feed(&ed, 'x');
	assert_int_equal(keys("가"), EDIT_NONE); /* 3 bytes do not fit */
	assert_int_equal(keys("y"), EDIT_REDRAW);
	assert_int_equal(keys("z"), EDIT_NONE);
	assert_int_equal(ed.len, EDIT_MAX);
	assert_true(utf8_valid(ed.buf, ed.len));
}

static void
test_edit_view_scrolls_to_the_cursor(void **state)
{
	size_t start, end;
	unsigned col;

	keys("abc");
	edit_view(&ed, 10, &start, &end, &col);
	assert_int_equal(start, 0);
	assert_int_equal(end, 3);
	assert_int_equal(col, 3);
	keys("\025한국어한국어"); /* 12 columns */
	edit_view(&ed, 10, &start, &end, &col);
	assert_true(render_width(ed.buf + start, ed.cur - start) <= 9);
	assert_int_equal(col, render_width(ed.buf + start, ed.cur - start));
	assert_int_equal(end, ed.len);
	assert_int_equal(start, 3 * 2); /* two syllables scrolled away */
	keys(HOME);
	edit_view(&ed, 10, &start, &end, &col);
	assert_int_equal(start, 0);
	assert_int_equal(col, 0);
	assert_int_equal(end, 5 * 3); /* 5 syllables = 10 columns */
	edit_view(&ed, 9, &start, &end, &col);
	assert_int_equal(end, 4 * 3); /* a fifth would need column 10 */
	edit_view(&ed, 0, &start, &end, &col); /* tiny: still sane */
	assert_int_equal(end, 3);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_edit_insert_and_move),
		T(test_edit_hangul_is_one_character),
		T(test_edit_kill_keys),
		T(test_edit_enter_and_ctrl_d),
		T(test_edit_history),
		T(test_edit_garbage_keeps_utf8_valid),
		T(test_edit_full_line_drops_keys),
		T(test_edit_view_scrolls_to_the_cursor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
