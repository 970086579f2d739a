/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_render.c - unit tests for render.c, the client's output formatter.
 *
 * Scope: one friendly line per server keyword (docs/PROTOCOL.md), colours
 * only when asked, and above all that nothing from the network reaches the
 * terminal unsanitised: control characters, ESC sequences, C1 controls,
 * bidi overrides and invalid UTF-8 are replaced, Korean text survives, and
 * truncated or garbage lines (and tiny output buffers) never crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "client/render.h"
#include "lib/utf8.h"

static char out[RENDER_OUT_MAX];

/* Render s without colour and return the text. */
static const char *
plain(const char *s)
{
	render_line(s, strlen(s), 0, out, sizeof(out));
	return out;
}

static enum render_kind
kind(const char *s, int *code)
{
	return render_classify(s, strlen(s), code);
}

static const char *
coloured(const char *s)
{
	render_line(s, strlen(s), 1, out, sizeof(out));
	return out;
}

/* No byte below 0x20 (TAB included), no DEL, no ESC anywhere. */
static void
assert_no_controls(const char *s)
{
	for (; *s != '\0'; s++) {
		assert_true((unsigned char)*s >= 0x20);
		assert_true((unsigned char)*s != 0x7f);
	}
}

static void
test_render_msg(void **state)
{
	assert_string_equal(
	    plain("MSG rust bob hi alice"), "[rust] <bob> hi alice");
	assert_string_equal(plain("MSG lobby bob  two  spaces "),
	    "[lobby] <bob>  two  spaces ");
}

static void
test_render_whisper(void **state)
{
	assert_string_equal(
	    plain("WHISPER alice psst"), "[whisper] <alice> psst");
}

static void
test_render_join_part(void **state)
{
	assert_string_equal(plain("JOIN rust bob"), "[rust] * bob joined");
	assert_string_equal(plain("PART rust bob left"), "[rust] * bob left");
	assert_string_equal(plain("PART rust bob quit"), "[rust] * bob quit");
	assert_string_equal(plain("PART rust bob quit see \033[2Jyou"),
	    "[rust] * bob quit (see ?[2Jyou)");
	assert_string_equal(coloured("PART rust bob quit bye"),
	    "\033[2m[rust] * bob quit (bye)\033[0m");
	assert_string_equal(
	    plain("PART rust bob disconnected"), "[rust] * bob disconnected");
	assert_string_equal(
	    plain("PART rust bob vanished"), "[rust] * bob left (vanished)");
}

static void
test_render_ok_replies(void **state)
{
	assert_string_equal(
	    plain("OK NICK alice"), "* you are now known as alice");
	assert_string_equal(
	    plain("OK JOIN lobby"), "* you are now in room lobby");
	assert_string_equal(plain("OK ADD rust"), "* created room rust");
	assert_string_equal(plain("OK RM rust"), "* removed room rust");
	assert_string_equal(plain("OK WHISPER bob"), "* whispered to bob");
	assert_string_equal(plain("OK FUTURE thing"), "* ok: FUTURE thing");
}

static void
test_render_room_and_user_listings(void **state)
{
	assert_string_equal(
	    plain("ROOM lobby 0 -"), "  lobby  members: 0  owner: (none)");
	assert_string_equal(
	    plain("ROOM rust 2 alice"), "  rust  members: 2  owner: alice");
	assert_string_equal(plain("END LIST 2"), "* rooms: 2");
	assert_string_equal(plain("USER bob rust"), "  bob  in rust");
	assert_string_equal(plain("END USERS 2"), "* users: 2");
	assert_string_equal(plain("STAT uptime_s 61"), "  uptime_s 61");
	assert_string_equal(plain("END STATS 11"), "* statistics: 11");
}

static void
test_render_help(void **state)
{
	assert_string_equal(plain("HELP /join ROOM  enter a room"),
	    "  /join ROOM  enter a room");
	assert_int_equal(render_line("END HELP", 8, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void
test_render_err(void **state)
{
	int code = -1;

	assert_string_equal(plain("ERR 422 NICK_TAKEN nickname in use"),
	    "error: nickname in use (422 NICK_TAKEN)");
	assert_string_equal(
	    plain("ERR 400 EMPTY_LINE"), "error: (400 EMPTY_LINE)");
	assert_int_equal(kind("ERR 421 NICK_TOO_LONG x", &code), RENDER_ERR);
	assert_int_equal(code, 421);
}

static void
test_render_err_is_red_with_colour(void **state)
{
	const char *s = coloured("ERR 404 UNKNOWN_COMMAND no such command");

	assert_non_null(strstr(s, "\033[1;31m"));
	assert_non_null(strstr(s, "no such command"));
	assert_non_null(strstr(s, "\033[0m"));
}

static void
test_render_bye_removed_owner_hello(void **state)
{
	assert_string_equal(
	    plain("NOTICE NICK_KEPT you keep it"), "* you keep it (NICK_KEPT)");
	assert_string_equal(plain("BYE SHUTDOWN server going down"),
	    "* server closed the connection: server going down (SHUTDOWN)");
	assert_string_equal(plain("REMOVED rust alice"),
	    "* room rust was removed by alice; you are back in the lobby");
	assert_string_equal(
	    plain("OWNER rust bob"), "[rust] * bob now owns this room");
	assert_string_equal(plain("HELLO forkchatd/1.0 welcome"),
	    "* connected to forkchatd/1.0: welcome");
}

static void
test_render_no_colour_means_no_escape(void **state)
{
	static const char *lines[] = {
		"HELLO forkchatd/1.0 hi",
		"OK NICK a",
		"MSG r n t",
		"WHISPER n t",
		"JOIN r n",
		"PART r n left",
		"REMOVED r n",
		"OWNER r n",
		"ROOM r 1 n",
		"USER n r",
		"END LIST 1",
		"HELP h",
		"ERR 404 UNKNOWN_COMMAND x",
		"BYE QUIT bye",
		"WHAT is this",
	};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_null(strchr(plain(lines[i]), '\033'));
}

static void
test_render_colour_msg_balanced(void **state)
{
	const char *s = coloured("MSG rust bob hi");
	size_t len = strlen(s);

	assert_non_null(strstr(s, "\033[36m[rust]"));
	assert_non_null(strstr(s, "\033[1mbob\033[0m"));
	assert_true(len >= 2 && strcmp(s + len - 2, "hi") == 0);
	assert_string_equal(coloured("HELLO v x") + strlen(out) - 4, "\033[0m");
}

static void
test_render_strips_escape_sequences(void **state)
{
	const char *s = plain("MSG lobby mallory \033[2J\033]0;title\007x\010");

	assert_null(strchr(s, '\033'));
	assert_no_controls(s);
	assert_string_equal(s, "[lobby] <mallory> ?[2J?]0;title?x?");
}

static void
test_render_strips_escapes_in_fields(void **state)
{
	const char *s = coloured("MSG \033[31mroom \033]2;nick\007 t");

	/* Only our own SGR codes remain: each ESC is followed by "[" + digit. */
	for (; (s = strchr(s, '\033')) != NULL; s++)
		assert_true(s[1] == '[' && s[2] >= '0' && s[2] <= '9');
	assert_null(strstr(plain("MSG \033[31mroom n t"), "\033"));
}

static void
test_render_strips_c1_and_del(void **state)
{
	/* U+009B (CSI) as UTF-8, a raw 0x9b byte, DEL. */
	const char *s = plain("MSG r n \xc2\x9b"
	                      "31m \x9b"
	                      "1m \x7f"
	                      "del");

	assert_null(strstr(s, "\xc2\x9b"));
	assert_null(strchr(s, '\x7f'));
	assert_string_equal(s,
	    "[r] <n> ?31m \xef\xbf\xbd"
	    "1m ?del");
}

static void
test_render_tab_and_bidi(void **state)
{
	assert_string_equal(plain("MSG r n a\tb"), "[r] <n> a b");
	assert_string_equal(plain("MSG r n \xe2\x80\xae"
	                          "evil"),
	    "[r] <n> ?evil"); /* U+202E RIGHT-TO-LEFT OVERRIDE */
}

static void
test_render_invalid_utf8_replaced(void **state)
{
	const char *s = plain("MSG r n bad \xff\xfe \xed\xa0\x80 \xc0\xaf end");

	assert_int_equal(utf8_valid(s, strlen(s)), 1);
	assert_non_null(strstr(s, "\xef\xbf\xbd"));
	assert_non_null(strstr(s, " end"));
	assert_null(strstr(s, "\xff"));
}

static void
test_render_korean_preserved(void **state)
{
	assert_string_equal(plain("MSG 방 철수 안녕하세요 여러분"),
	    "[방] <철수> 안녕하세요 여러분");
	assert_string_equal(
	    plain("WHISPER 영희 비밀"), "[whisper] <영희> 비밀");
}

static void
test_render_unknown_keyword_as_is(void **state)
{
	assert_string_equal(plain("NEWTHING a b c"), "NEWTHING a b c");
	assert_string_equal(plain("NEW\033[1mTHING"), "NEW?[1mTHING");
	assert_string_equal(plain("lowercase ok nick"), "lowercase ok nick");
}

static void
test_render_truncated_lines(void **state)
{
	/* Missing fields: shown sanitised as they are. */
	assert_string_equal(plain("MSG"), "MSG");
	assert_string_equal(plain("MSG rust"), "MSG rust");
	assert_string_equal(plain("PART rust bob"), "PART rust bob");
	assert_string_equal(plain("ROOM  2 x"), "ROOM  2 x");
	assert_string_equal(plain("ERR"), "ERR");
	assert_string_equal(plain("BYE"), "BYE");
	assert_int_equal(render_line("", 0, 0, out, sizeof(out)), 0);
	assert_string_equal(plain("MSG r n hi\r"), "[r] <n> hi");
	assert_string_equal(plain("MSG r n "), "[r] <n> ");
}

static void
test_render_small_buffers(void **state)
{
	const char *ko = "MSG 방 철수 안녕";
	char small[8];
	size_t n, k;

	assert_int_equal(render_line("MSG r n hi", 10, 0, small, 0), 0);
	for (k = 1; k <= sizeof(small); k++) {
		memset(small, 'Z', sizeof(small));
		n = render_line(ko, strlen(ko), 0, small, k);
		assert_true(n < k);
		assert_int_equal(strlen(small), n);
		assert_int_equal(utf8_valid(small, n), 1); /* never split */
	}
	/* A cut coloured line still ends with a reset. */
	n = render_line("MSG r n 0123456789", 18, 1, out, 24);
	assert_true(n >= 4 && strcmp(out + n - 4, "\033[0m") == 0);
}

static void
test_render_garbage_never_crashes(void **state)
{
	unsigned char buf[64];
	uint32_t seed = 12345;
	size_t i, j, n;

	for (i = 0; i < 20000; i++) {
		n = seed % sizeof(buf);
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = (unsigned char)(seed >> 16);
			if (j < 4 && (seed & 0x300) == 0)
				buf[j] =
				    (unsigned char)"MSG "[j]; /* the parsers */
		}
		render_line((char *)buf, n, (int)(i & 1), out, sizeof(out));
		assert_int_equal(utf8_valid(out, strlen(out)), 1);
		if ((i & 1) == 0)
			assert_no_controls(out);
		render_classify((char *)buf, n, NULL);
	}
}

static void
test_render_classify(void **state)
{
	int code = 7;

	assert_int_equal(kind("HELLO forkchatd/1.0 hi", NULL), RENDER_HELLO);
	assert_int_equal(kind("OK NICK alice", NULL), RENDER_NICK_OK);
	assert_int_equal(kind("OK JOIN lobby", NULL), RENDER_OTHER);
	assert_int_equal(kind("BYE QUIT goodbye", NULL), RENDER_BYE_QUIT);
	assert_int_equal(kind("BYE SHUTDOWN going", NULL), RENDER_BYE_OTHER);
	assert_int_equal(kind("BYE", NULL), RENDER_BYE_OTHER);
	assert_int_equal(kind("ERR x4z BAD t", &code), RENDER_ERR);
	assert_int_equal(code, 0);
	assert_int_equal(kind("MSG r n BYE QUIT", NULL), RENDER_OTHER);
	assert_int_equal(kind("", NULL), RENDER_OTHER);
}

static void
test_render_sanitize(void **state)
{
	char small[4];

	assert_int_equal(render_sanitize("a\033b", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "a?b");
	assert_int_equal(render_sanitize("한", 3, small, sizeof(small)), 3);
	assert_string_equal(small, "한");
	assert_int_equal(render_sanitize("x한", 4, small, sizeof(small)), 1);
	assert_string_equal(small, "x");
	assert_int_equal(render_sanitize("\0z", 2, out, sizeof(out)), 2);
	assert_string_equal(out, "?z");
}

static void
test_render_width(void **state)
{
	assert_int_equal(render_locale(), 0);
	assert_int_equal(render_width("abc", 3), 3);
	assert_int_equal(render_width("한국어", 9), 6);    /* Hangul: 2 each */
	assert_int_equal(render_width("e\xcc\x81", 3), 1); /* combining */
	assert_int_equal(render_width("\033[1;31mab\033[0m", 13), 2);
	assert_int_equal(render_width("\xff", 1), 1);
	assert_int_equal(render_cp_width(0x10ffff), 2); /* unknown: wide */
}

/* Rows of s, each row's width, through render_wrap at width w. */
static void
assert_rows(const char *in, unsigned w, const char *want)
{
	static char wrapped[RENDER_WRAP_OUT];
	size_t n = render_wrap(in, strlen(in), w, wrapped, sizeof(wrapped));
	const char *row = wrapped, *nl;

	assert_int_equal(n, strlen(wrapped));
	assert_string_equal(wrapped, want);
	for (;; row = nl + 1) { /* no row wider than w */
		nl = strchr(row, '\n');
		assert_true(w == 0 ||
		    render_width(row, nl ? (size_t)(nl - row) : strlen(row)) <=
		        w);
		if (nl == NULL)
			break;
		assert_memory_equal(nl + 1, RENDER_CONT, RENDER_CONT_COLS);
	}
}

static void
test_render_wrap(void **state)
{
	char small[8];

	assert_int_equal(render_locale(), 0);
	/* exactly the width: one row; one more column: marked continuation */
	assert_rows("0123456789abcdef", 16, "0123456789abcdef");
	assert_rows(
	    "0123456789abcdefX", 16, "0123456789abcdef\n" RENDER_CONT "X");
	assert_rows("0123456789abcdefghijklmnopqrstuvwxyz", 16,
	    "0123456789abcdef\n" RENDER_CONT "ghijklmnopq\n" RENDER_CONT
	    "rstuvwxyz");
	/* a wide syllable that does not fit goes to the next row whole */
	assert_rows(
	    "0123456789abcde한", 16, "0123456789abcde\n" RENDER_CONT "한");
	assert_rows("0123456789abcd한", 16, "0123456789abcd한");
	/* colour codes take no columns and are never split */
	assert_rows("\033[36m[r]\033[0m 0123456789ab\033[1mX\033[0m", 16,
	    "\033[36m[r]\033[0m 0123456789ab\033[1m\n" RENDER_CONT "X\033[0m");
	/* width 0 (not a terminal): unchanged; tiny widths count as 16 */
	assert_rows("0123456789abcdefghij", 0, "0123456789abcdefghij");
	assert_int_equal(
	    render_wrap("0123456789abcdefg", 17, 3, out, sizeof(out)),
	    17 + 1 + RENDER_CONT_COLS);
	/* out too small: cut at a character boundary, NUL-terminated */
	assert_int_equal(render_wrap("ab한", 5, 80, small, 4), 2);
	assert_string_equal(small, "ab");
	assert_int_equal(render_wrap("ab", 2, 80, small, 0), 0);
}

static void
test_render_own_lines(void **state)
{
	render_own("lobby", "하늘", NULL, "hi \033[2J", 7, 0, out, sizeof(out));
	assert_string_equal(out, "> [lobby] <하늘> hi ?[2J");
	render_own("rust", "bob", "alice", "psst", 4, 0, out, sizeof(out));
	assert_string_equal(out, "> [whisper to alice] <bob> psst");
	render_own("rust", "bob", NULL, "x", 1, 1, out, sizeof(out));
	assert_string_equal(out,
	    "\033[32m> \033[0m\033[36m[rust]\033[0m <\033[32mbob\033[0m> x");
	/* own lines are never taken for a wrapped row or a server line */
	assert_memory_equal(out + 5, "> ", 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_msg),
		cmocka_unit_test(test_render_whisper),
		cmocka_unit_test(test_render_join_part),
		cmocka_unit_test(test_render_ok_replies),
		cmocka_unit_test(test_render_room_and_user_listings),
		cmocka_unit_test(test_render_help),
		cmocka_unit_test(test_render_err),
		cmocka_unit_test(test_render_err_is_red_with_colour),
		cmocka_unit_test(test_render_bye_removed_owner_hello),
		cmocka_unit_test(test_render_no_colour_means_no_escape),
		cmocka_unit_test(test_render_colour_msg_balanced),
		cmocka_unit_test(test_render_strips_escape_sequences),
		cmocka_unit_test(test_render_strips_escapes_in_fields),
		cmocka_unit_test(test_render_strips_c1_and_del),
		cmocka_unit_test(test_render_tab_and_bidi),
		cmocka_unit_test(test_render_invalid_utf8_replaced),
		cmocka_unit_test(test_render_korean_preserved),
		cmocka_unit_test(test_render_unknown_keyword_as_is),
		cmocka_unit_test(test_render_truncated_lines),
		cmocka_unit_test(test_render_small_buffers),
		cmocka_unit_test(test_render_garbage_never_crashes),
		cmocka_unit_test(test_render_classify),
		cmocka_unit_test(test_render_sanitize),
		cmocka_unit_test(test_render_width),
		cmocka_unit_test(test_render_wrap),
		cmocka_unit_test(test_render_own_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
