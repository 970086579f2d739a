/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_log_escape.c - what users and other hubs send never reaches the
 * log raw (issue 12): log_escape() on its own, and log_msg() writing a real
 * file whose bytes are then read back.
 *
 * Uses a temporary directory; no stubs, no seams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sys/log.h"

static const char *
esc(const char *s, size_t outsz)
{
	static char out[512];

	log_escape(s, strlen(s), out, outsz);
	return out;
}

static void
test_log_escape_controls_and_bidi(void **state)
{
	assert_string_equal(
	    esc("plain text, 김철수 ok", 512), "plain text, 김철수 ok");
	assert_string_equal(esc("a\x1b[2Jb", 512), "a\\u{001B}[2Jb");
	assert_string_equal(esc("a\tb\nc\rd\x7f", 512),
	    "a\\u{0009}b\\u{000A}c\\u{000D}d\\u{007F}");
	assert_string_equal(esc("x\xc2\x85y", 512), "x\\u{0085}y"); /* NEL */
	assert_string_equal(
	    esc("evil\xe2\x80\xaegnp.exe", 512), "evil\\u{202E}gnp.exe");
	assert_string_equal(esc("\xe2\x81\xa6"
	                        "a\xe2\x81\xa9",
	                        512),
	    "\\u{2066}a\\u{2069}");
	assert_string_equal(esc("bob\xe2\x81\xa0", 512), "bob\\u{2060}");
	assert_string_equal(esc("\xe3\x85\xa4", 512), "\\u{3164}");
	assert_string_equal(esc("a\xe2\x80\xa8"
	                        "b",
	                        512),
	    "a\\u{2028}b");
	assert_string_equal(esc("\xf3\xa0\x80\x81", 512), "\\u{E0001}");
}

static void
test_log_escape_invalid_bytes(void **state)
{
	assert_string_equal(esc("a\xff\xc3(", 512), "a\\xFF\\xC3(");
	assert_string_equal(esc("\xed\xa0\x80", 512), "\\xED\\xA0\\x80");
}

/* Cut at the end of the buffer: whole characters and escapes only. */
static void
test_log_escape_bounded(void **state)
{
	char out[8];

	memset(out, 'z', sizeof(out));
	assert_int_equal(log_escape("abcdefghij", 10, out, 5), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(log_escape("ab\x1b", 3, out, 8), 2);
	assert_string_equal(out, "ab"); /* \u{001B} does not fit */
	assert_int_equal(log_escape("a\xea\xb9\x80", 4, out, 4), 1);
	assert_string_equal(out, "a"); /* 김 (3 bytes) does not fit */
	assert_int_equal(log_escape("abc", 3, out, 0), 0);
}

/* The log file's bytes hold neither U+202E nor ESC, whatever was logged. */
static void
test_log_msg_file_has_no_raw_controls(void **state)
{
	char dir[] = "/tmp/test_log_escape.XXXXXX", buf[4096], cmd[128];
	ssize_t n;
	int fd;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(log_open(dir, 0), 0);
	log_info("register nick=%s", "bob\xe2\x80\xae\x1b[31m");
	log_warn("federation: hub %s", "h\xe2\x81\xa7\n2026-01-01 forged");
	fd = open(log_path(), O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	log_close();
	assert_true(n > 0);
	buf[n] = '\0';
	assert_null(memmem(buf, (size_t)n, "\xe2\x80\xae", 3));
	assert_null(memmem(buf, (size_t)n, "\xe2\x81\xa7", 3));
	assert_null(memchr(buf, 0x1b, (size_t)n));
	assert_non_null(
	    strstr(buf, "register nick=bob\\u{202E}\\u{001B}[31m\n"));
	assert_non_null(strstr(
	    buf, "federation: hub h\\u{2067}\\u{000A}2026-01-01 forged\n"));
	/* two lines: the forged one stayed inside the second */
	assert_int_equal(memchr(buf, '\n', (size_t)n) != NULL, 1);
	assert_non_null(strchr(strchr(buf, '\n') + 1, '\n'));
	assert_null(strchr(strchr(strchr(buf, '\n') + 1, '\n') + 1, '\n'));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_escape_controls_and_bidi),
		cmocka_unit_test(test_log_escape_invalid_bytes),
		cmocka_unit_test(test_log_escape_bounded),
		cmocka_unit_test(test_log_msg_file_has_no_raw_controls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
