/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_proto.c - unit tests for core/lib/proto.c: error names, line checks,
 * the framer (CRLF, over-long lines
 * discarded then recovery, lines split across feeds, several lines per
 * feed, NUL bytes, early stop) and command parsing and usage rules.
 *
 * Pure module: no stubs, no seams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/proto.h"
#include "lib/utf8.h"

/* ---- helpers --------------------------------------------------------- */

#define MAXEV 32

/* What the framer reported, in order. */
struct rec {
	int n;
	enum proto_frame_ev ev[MAXEV];
	char line[MAXEV][128];
	size_t len[MAXEV];
	int stop_after; /* return -1 after this many, 0 = never */
};

static int
rec_cb(enum proto_frame_ev ev, const char *line, size_t len, void *arg)
{
	struct rec *r = arg;

	assert_true(r->n < MAXEV);
	r->ev[r->n] = ev;
	r->len[r->n] = len;
	if (ev == PFRAME_LINE) {
		assert_non_null(line);
		assert_true(len < sizeof(r->line[0]));
		memcpy(r->line[r->n], line, len);
	} else {
		assert_null(line);
		assert_int_equal(len, 0);
	}
	r->n++;
	return (r->stop_after && r->n >= r->stop_after) ? -1 : 0;
}

struct fx {
	struct proto_framer f;
	char buf[64];
	struct rec r;
};

/* A framer with a max of max bytes (max < 63). */
static void
fx_init(struct fx *x, size_t max)
{
	memset(x, 0, sizeof(*x));
	x->f.line = x->buf;
	x->f.max = max;
}

static int
feed(struct fx *x, const char *s)
{
	return proto_frame(&x->f, s, strlen(s), rec_cb, &x->r);
}

static void
assert_line(struct fx *x, int i, const char *want)
{
	assert_true(i < x->r.n);
	assert_int_equal(x->r.ev[i], PFRAME_LINE);
	assert_int_equal(x->r.len[i], strlen(want));
	assert_memory_equal(x->r.line[i], want, strlen(want));
}

static void
assert_too_long(struct fx *x, int i)
{
	assert_true(i < x->r.n);
	assert_int_equal(x->r.ev[i], PFRAME_TOO_LONG);
}

static void
parse(const char *s, struct proto_cmd *c)
{
	proto_parse(s, strlen(s), c);
}

static void
assert_span(const char *p, size_t len, const char *want)
{
	if (want == NULL) {
		assert_null(p);
		assert_int_equal(len, 0);
		return;
	}
	assert_non_null(p);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

static enum proto_err
check_line(const char *s)
{
	return proto_check_line(s, strlen(s));
}

static const char *
usage_of(const char *s)
{
	static struct proto_cmd c;

	parse(s, &c);
	return proto_usage(&c);
}

/* ---- error names ----------------------------------------------------- */

static void
test_proto_err_name_every_code(void **state)
{
	static const struct {
		enum proto_err c;
		const char *n;
	} t[] = {
		{ 400, "EMPTY_LINE" },
		{ 401, "LINE_TOO_LONG" },
		{ 402, "BAD_UTF8" },
		{ 403, "CONTROL_CHAR" },
		{ 404, "UNKNOWN_COMMAND" },
		{ 405, "USAGE" },
		{ 410, "NOT_REGISTERED" },
		{ 420, "BAD_NICK" },
		{ 421, "NICK_TOO_LONG" },
		{ 422, "NICK_TAKEN" },
		{ 430, "NO_SUCH_ROOM" },
		{ 431, "ROOM_EXISTS" },
		{ 432, "BAD_ROOM" },
		{ 433, "TOO_MANY_ROOMS" },
		{ 434, "NOT_OWNER" },
		{ 435, "IS_LOBBY" },
		{ 436, "ALREADY_IN_ROOM" },
		{ 440, "NO_SUCH_USER" },
		{ 441, "WHISPER_SELF" },
		{ 500, "INTERNAL" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(proto_err_name(t[i].c), t[i].n);
}

static void
test_proto_err_name_unknown_is_null(void **state)
{
	assert_null(proto_err_name(PERR_NONE));
	assert_null(proto_err_name((enum proto_err)999));
	assert_null(proto_err_name((enum proto_err)406));
}

/* ---- check_line ------------------------------------------------------ */

static void
test_proto_check_line_accepts_text(void **state)
{
	assert_int_equal(check_line("hello"), PERR_NONE);
	assert_int_equal(check_line("  hi  "), PERR_NONE);
	assert_int_equal(check_line("tab\there"), PERR_NONE);
	assert_int_equal(check_line("\xec\x95\x88\xeb\x85\x95"), PERR_NONE);
	assert_int_equal(check_line("/join room"), PERR_NONE);
}

static void
test_proto_check_line_empty_and_blank(void **state)
{
	assert_int_equal(proto_check_line("", 0), PERR_EMPTY_LINE);
	assert_int_equal(check_line(" "), PERR_EMPTY_LINE);
	assert_int_equal(check_line("   \t  "), PERR_EMPTY_LINE);
	/* Unicode spaces only (NBSP, ideographic space) are blank too */
	assert_int_equal(check_line("\xc2\xa0\xe3\x80\x80"), PERR_EMPTY_LINE);
}

static void
test_proto_check_line_bad_utf8(void **state)
{
	assert_int_equal(check_line("abc\xff"), PERR_BAD_UTF8);
	assert_int_equal(check_line("\xc0\x80"), PERR_BAD_UTF8);
	assert_int_equal(check_line("\xed\xa0\x80"), PERR_BAD_UTF8);
	assert_int_equal(proto_check_line("\xc3\xa9", 1), PERR_BAD_UTF8);
}

static void
test_proto_check_line_control_chars(void **state)
{
	assert_int_equal(proto_check_line("a\0b", 3), PERR_CONTROL_CHAR);
	assert_int_equal(check_line("a\x01"), PERR_CONTROL_CHAR);
	assert_int_equal(check_line("a\x1b[31m"), PERR_CONTROL_CHAR);
	assert_int_equal(check_line("a\rb"), PERR_CONTROL_CHAR);
	assert_int_equal(check_line("del\x7f"), PERR_CONTROL_CHAR);
	assert_int_equal(check_line("c1\xc2\x85"), PERR_CONTROL_CHAR); /* NEL */
	assert_int_equal(check_line("c1\xc2\x9f"), PERR_CONTROL_CHAR);
}

static void
test_proto_check_line_control_beats_blank(void **state)
{
	/* a blank line that also holds a control character is CONTROL_CHAR */
	assert_int_equal(check_line("  \x07 "), PERR_CONTROL_CHAR);
}

/*
 * The definition proto_check_line() must keep (its ASCII path is inlined
 * for speed): every code point decoded by utf8_decode(), control as
 * utf8_is_control() says, blank as utf8_is_space() says.
 */
static enum proto_err
check_line_ref(const char *s, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;
	int blank = 1;

	while (i < len) {
		if ((n = utf8_decode(s + i, len - i, &cp)) == 0)
			return PERR_BAD_UTF8;
		if (utf8_is_control(cp))
			return PERR_CONTROL_CHAR;
		if (!utf8_is_space(cp))
			blank = 0;
		i += n;
	}
	return blank ? PERR_EMPTY_LINE : PERR_NONE;
}

/* Every string of 1 or 2 bytes, and of 3 bytes whose first byte is ASCII
 * or a lead byte, gets the reference's answer. */
static void
test_proto_check_line_matches_reference(void **state)
{
	char b[3];
	unsigned x, y, z;

	for (x = 0; x < 256; x++) {
		b[0] = (char)x;
		assert_int_equal(proto_check_line(b, 1), check_line_ref(b, 1));
		for (y = 0; y < 256; y++) {
			b[1] = (char)y;
			assert_int_equal(
			    proto_check_line(b, 2), check_line_ref(b, 2));
		}
	}
	for (x = 0; x < 256; x += (x < 0x80 ? 7 : 1))
		for (y = 0; y < 256; y++)
			for (z = 0; z < 256; z += 3) {
				b[0] = (char)x;
				b[1] = (char)y;
				b[2] = (char)z;
				assert_int_equal(proto_check_line(b, 3),
				    check_line_ref(b, 3));
			}
}

/* ---- framer ---------------------------------------------------------- */

static void
test_proto_frame_single_line(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "hello\n"), 1);
	assert_int_equal(x.r.n, 1);
	assert_line(&x, 0, "hello");
	assert_int_equal(x.f.len, 0);
}

static void
test_proto_frame_crlf_stripped(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "hi\r\nyo\n"), 2);
	assert_line(&x, 0, "hi");
	assert_line(&x, 1, "yo");
}

static void
test_proto_frame_only_one_cr_stripped(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	feed(&x, "a\r\r\n\r\n");
	assert_int_equal(x.r.n, 2);
	assert_line(&x, 0, "a\r"); /* check_line rejects it later */
	assert_line(&x, 1, "");    /* a bare CRLF is an empty line */
}

static void
test_proto_frame_cr_in_middle_kept(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	feed(&x, "a\rb\n");
	assert_line(&x, 0, "a\rb");
}

static void
test_proto_frame_several_lines_per_feed(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "one\ntwo\nthree\n"), 3);
	assert_int_equal(x.r.n, 3);
	assert_line(&x, 0, "one");
	assert_line(&x, 1, "two");
	assert_line(&x, 2, "three");
}

static void
test_proto_frame_empty_lines(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "\n\n"), 2);
	assert_line(&x, 0, "");
	assert_line(&x, 1, "");
}

static void
test_proto_frame_line_split_across_feeds(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "hel"), 0);
	assert_int_equal(x.r.n, 0);
	assert_int_equal(feed(&x, "lo wor"), 0);
	assert_int_equal(feed(&x, "ld\nnext"), 1);
	assert_line(&x, 0, "hello world");
	assert_int_equal(feed(&x, "\n"), 1);
	assert_line(&x, 1, "next");
}

static void
test_proto_frame_crlf_split_across_feeds(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	feed(&x, "abc\r");
	assert_int_equal(x.r.n, 0);
	feed(&x, "\n");
	assert_int_equal(x.r.n, 1);
	assert_line(&x, 0, "abc");
}

static void
test_proto_frame_byte_by_byte(void **state)
{
	const char *s = "ab\r\ncd\n";
	struct fx x;
	size_t i;
	int lines = 0;

	fx_init(&x, 20);
	for (i = 0; i < strlen(s); i++)
		lines += proto_frame(&x.f, s + i, 1, rec_cb, &x.r);
	assert_int_equal(lines, 2);
	assert_line(&x, 0, "ab");
	assert_line(&x, 1, "cd");
}

static void
test_proto_frame_exact_max_accepted(void **state)
{
	struct fx x;

	fx_init(&x, 8);
	feed(&x, "12345678\n");
	assert_line(&x, 0, "12345678");
	/* max bytes plus the CR of CRLF still fit */
	feed(&x, "abcdefgh\r\n");
	assert_line(&x, 1, "abcdefgh");
}

static void
test_proto_frame_max_plus_one_too_long(void **state)
{
	struct fx x;

	fx_init(&x, 8);
	assert_int_equal(feed(&x, "123456789\n"), 1);
	assert_int_equal(x.r.n, 1);
	assert_too_long(&x, 0);
}

static void
test_proto_frame_too_long_discarded_then_recovers(void **state)
{
	struct fx x;

	fx_init(&x, 8);
	assert_int_equal(feed(&x, "this line is far too long\nok\n"), 2);
	assert_int_equal(x.r.n, 2);
	assert_too_long(&x, 0);
	assert_line(&x, 1, "ok");
	assert_int_equal(x.f.discarding, 0);
}

static void
test_proto_frame_too_long_across_feeds_reported_once(void **state)
{
	struct fx x;
	int i;

	fx_init(&x, 8);
	for (i = 0; i < 10; i++)
		assert_int_equal(feed(&x, "xxxxxxxxxxxx"), 0);
	assert_int_equal(x.r.n, 0);
	assert_int_equal(x.f.discarding, 1);
	assert_int_equal(feed(&x, "tail\r\nafter\n"), 2);
	assert_int_equal(x.r.n, 2);
	assert_too_long(&x, 0);
	assert_line(&x, 1, "after"); /* the tail was not glued onto it */
}

static void
test_proto_frame_too_long_when_prefix_buffered(void **state)
{
	struct fx x;

	fx_init(&x, 8);
	feed(&x, "12345"); /* fits so far */
	feed(&x, "67890"); /* now over max: discard all of it */
	feed(&x, "\nz\n");
	assert_int_equal(x.r.n, 2);
	assert_too_long(&x, 0);
	assert_line(&x, 1, "z");
}

static void
test_proto_frame_nul_bytes_kept_in_line(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(proto_frame(&x.f, "a\0b\nc\n", 6, rec_cb, &x.r), 2);
	assert_int_equal(x.r.len[0], 3);
	assert_memory_equal(x.r.line[0], "a\0b", 3);
	assert_line(&x, 1, "c");
	/* and the line check rejects it */
	assert_int_equal(
	    proto_check_line(x.r.line[0], x.r.len[0]), PERR_CONTROL_CHAR);
}

static void
test_proto_frame_callback_stop_drops_rest(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	x.r.stop_after = 1;
	assert_int_equal(feed(&x, "a\nb\nc\n"), 1);
	assert_int_equal(x.r.n, 1);
	assert_line(&x, 0, "a");
}

static void
test_proto_frame_no_newline_no_line(void **state)
{
	struct fx x;

	fx_init(&x, 20);
	assert_int_equal(feed(&x, "partial"), 0);
	assert_int_equal(x.f.len, 7);
	assert_int_equal(proto_frame(&x.f, "", 0, rec_cb, &x.r), 0);
	assert_int_equal(x.r.n, 0);
}

/* ---- parse ----------------------------------------------------------- */

static void
test_proto_parse_plain_text(void **state)
{
	struct proto_cmd c;

	parse("hello  world ", &c);
	assert_int_equal(c.id, CMD_TEXT);
	assert_span(c.text, c.textlen, "hello  world "); /* verbatim */
	assert_null(c.arg);
}

static void
test_proto_parse_double_slash_is_text(void **state)
{
	struct proto_cmd c;

	parse("//shrug", &c);
	assert_int_equal(c.id, CMD_TEXT);
	assert_span(c.text, c.textlen, "/shrug");
	parse("//", &c);
	assert_int_equal(c.id, CMD_TEXT);
	assert_span(c.text, c.textlen, "/");
}

static void
test_proto_parse_every_command(void **state)
{
	static const struct {
		const char *s;
		enum proto_cmd_id id;
	} t[] = {
		{ "/add r", CMD_ADD },
		{ "/rm r", CMD_RM },
		{ "/join r", CMD_JOIN },
		{ "/leave", CMD_LEAVE },
		{ "/list", CMD_LIST },
		{ "/users", CMD_USERS },
		{ "/whisper a b", CMD_WHISPER },
		{ "/w a b", CMD_WHISPER },
		{ "/help", CMD_HELP },
		{ "/stats", CMD_STATS },
		{ "/STATS", CMD_STATS },
		{ "/quit", CMD_QUIT },
	};
	struct proto_cmd c;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		parse(t[i].s, &c);
		assert_int_equal(c.id, t[i].id);
	}
}

static void
test_proto_parse_case_insensitive(void **state)
{
	struct proto_cmd c;

	parse("/JOIN Room", &c);
	assert_int_equal(c.id, CMD_JOIN);
	assert_span(c.arg, c.arglen, "Room"); /* argument keeps its case */
	parse("/Help", &c);
	assert_int_equal(c.id, CMD_HELP);
	parse("/W bob hi", &c);
	assert_int_equal(c.id, CMD_WHISPER);
}

static void
test_proto_parse_unknown_and_prefixes(void **state)
{
	struct proto_cmd c;

	parse("/dance now", &c);
	assert_int_equal(c.id, CMD_UNKNOWN);
	assert_span(c.name, c.namelen, "dance");
	parse("/joi r", &c); /* no prefix matching */
	assert_int_equal(c.id, CMD_UNKNOWN);
	parse("/joinx r", &c);
	assert_int_equal(c.id, CMD_UNKNOWN);
	parse("/wh a b", &c);
	assert_int_equal(c.id, CMD_UNKNOWN);
	parse("/", &c);
	assert_int_equal(c.id, CMD_UNKNOWN);
	assert_int_equal(c.namelen, 0);
}

static void
test_proto_parse_arg_and_text(void **state)
{
	struct proto_cmd c;

	parse("/whisper bob  hello there  ", &c);
	assert_int_equal(c.id, CMD_WHISPER);
	assert_span(c.name, c.namelen, "whisper");
	assert_span(c.arg, c.arglen, "bob");
	assert_span(c.text, c.textlen, "hello there"); /* trimmed */
}

static void
test_proto_parse_no_arg_is_null(void **state)
{
	struct proto_cmd c;

	parse("/join", &c);
	assert_null(c.arg);
	assert_null(c.text);
	parse("/join   ", &c);
	assert_null(c.arg);
	assert_null(c.text);
}

static void
test_proto_parse_tabs_separate_words(void **state)
{
	struct proto_cmd c;

	parse("/w\tbob\thi", &c);
	assert_int_equal(c.id, CMD_WHISPER);
	assert_span(c.arg, c.arglen, "bob");
	assert_span(c.text, c.textlen, "hi");
}

static void
test_proto_parse_utf8_argument(void **state)
{
	struct proto_cmd c;

	parse("/join \xed\x95\x9c\xea\xb5\xad", &c);
	assert_int_equal(c.id, CMD_JOIN);
	assert_span(c.arg, c.arglen, "\xed\x95\x9c\xea\xb5\xad");
}

/* ---- usage ----------------------------------------------------------- */

static void
test_proto_usage_room_commands(void **state)
{
	assert_null(usage_of("/add r"));
	assert_string_equal(usage_of("/add"), "/add ROOM");
	assert_null(usage_of("/stats"));
	assert_string_equal(usage_of("/stats all"), "/stats");
	assert_string_equal(usage_of("/add a b"), "/add ROOM");
	assert_null(usage_of("/rm r"));
	assert_string_equal(usage_of("/rm"), "/rm ROOM");
	assert_string_equal(usage_of("/rm a b"), "/rm ROOM");
	assert_null(usage_of("/join r"));
	assert_string_equal(usage_of("/join"), "/join ROOM");
	assert_string_equal(usage_of("/JOIN a b"), "/join ROOM");
}

static void
test_proto_usage_no_arg_commands(void **state)
{
	assert_null(usage_of("/leave"));
	assert_string_equal(usage_of("/leave now"), "/leave");
	assert_null(usage_of("/list"));
	assert_string_equal(usage_of("/list x"), "/list");
	assert_null(usage_of("/help"));
	assert_string_equal(usage_of("/help me"), "/help");
}

static void
test_proto_usage_users(void **state)
{
	assert_null(usage_of("/users"));
	assert_null(usage_of("/users all"));
	assert_null(usage_of("/users ALL"));
	assert_string_equal(usage_of("/users some"), "/users [all]");
	assert_string_equal(usage_of("/users al"), "/users [all]");
	assert_string_equal(usage_of("/users allx"), "/users [all]");
	assert_string_equal(usage_of("/users all x"), "/users [all]");
}

static void
test_proto_usage_whisper(void **state)
{
	assert_null(usage_of("/whisper bob hi"));
	assert_null(usage_of("/w bob hi there"));
	assert_string_equal(usage_of("/whisper"), "/whisper NICK TEXT");
	assert_string_equal(usage_of("/whisper bob"), "/whisper NICK TEXT");
	assert_string_equal(usage_of("/w bob   "), "/whisper NICK TEXT");
}

static void
test_proto_usage_free_commands(void **state)
{
	assert_null(usage_of("/quit"));
	assert_null(usage_of("/quit see you later"));
	assert_null(usage_of("hello"));
	assert_null(usage_of("/nope"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_err_name_every_code),
		cmocka_unit_test(test_proto_err_name_unknown_is_null),
		cmocka_unit_test(test_proto_check_line_accepts_text),
		cmocka_unit_test(test_proto_check_line_empty_and_blank),
		cmocka_unit_test(test_proto_check_line_bad_utf8),
		cmocka_unit_test(test_proto_check_line_control_chars),
		cmocka_unit_test(test_proto_check_line_control_beats_blank),
		cmocka_unit_test(test_proto_check_line_matches_reference),
		cmocka_unit_test(test_proto_frame_single_line),
		cmocka_unit_test(test_proto_frame_crlf_stripped),
		cmocka_unit_test(test_proto_frame_only_one_cr_stripped),
		cmocka_unit_test(test_proto_frame_cr_in_middle_kept),
		cmocka_unit_test(test_proto_frame_several_lines_per_feed),
		cmocka_unit_test(test_proto_frame_empty_lines),
		cmocka_unit_test(test_proto_frame_line_split_across_feeds),
		cmocka_unit_test(test_proto_frame_crlf_split_across_feeds),
		cmocka_unit_test(test_proto_frame_byte_by_byte),
		cmocka_unit_test(test_proto_frame_exact_max_accepted),
		cmocka_unit_test(test_proto_frame_max_plus_one_too_long),
		cmocka_unit_test(
		    test_proto_frame_too_long_discarded_then_recovers),
		cmocka_unit_test(
		    test_proto_frame_too_long_across_feeds_reported_once),
		cmocka_unit_test(
		    test_proto_frame_too_long_when_prefix_buffered),
		cmocka_unit_test(test_proto_frame_nul_bytes_kept_in_line),
		cmocka_unit_test(test_proto_frame_callback_stop_drops_rest),
		cmocka_unit_test(test_proto_frame_no_newline_no_line),
		cmocka_unit_test(test_proto_parse_plain_text),
		cmocka_unit_test(test_proto_parse_double_slash_is_text),
		cmocka_unit_test(test_proto_parse_every_command),
		cmocka_unit_test(test_proto_parse_case_insensitive),
		cmocka_unit_test(test_proto_parse_unknown_and_prefixes),
		cmocka_unit_test(test_proto_parse_arg_and_text),
		cmocka_unit_test(test_proto_parse_no_arg_is_null),
		cmocka_unit_test(test_proto_parse_tabs_separate_words),
		cmocka_unit_test(test_proto_parse_utf8_argument),
		cmocka_unit_test(test_proto_usage_room_commands),
		cmocka_unit_test(test_proto_usage_no_arg_commands),
		cmocka_unit_test(test_proto_usage_users),
		cmocka_unit_test(test_proto_usage_whisper),
		cmocka_unit_test(test_proto_usage_free_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
