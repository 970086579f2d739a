/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_resp.c - unit tests for core/fed/resp.c: command encoding, every reply
 * type, nested arrays (an XREAD reply), incomplete input at every prefix,
 * malformed input, the node limit and resp_skip().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "fed/resp.h"

static void
test_resp_command(void **state)
{
	struct buf b = BUF_INIT;
	const char *argv[] = { "SET", "k", "" };
	size_t argl[] = { 3, 1, 0 };

	assert_int_equal(resp_command(&b, 3, argv, argl), 0);
	assert_int_equal(
	    buf_used(&b), strlen("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"));
	assert_memory_equal(buf_head(&b),
	    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", buf_used(&b));
	buf_free(&b);
}

static long
parse(const char *s, struct resp_node *n, size_t max, size_t *count)
{
	return resp_parse(s, strlen(s), n, max, count);
}

static void
test_resp_scalars(void **state)
{
	struct resp_node n[4];
	size_t c;

	assert_int_equal(parse("+OK\r\n", n, 4, &c), 5);
	assert_int_equal(n[0].type, RESP_STRING);
	assert_memory_equal(n[0].s, "OK", 2);
	assert_int_equal(parse("-ERR x\r\n", n, 4, &c), 8);
	assert_int_equal(n[0].type, RESP_ERROR);
	assert_int_equal(parse(":-42\r\n", n, 4, &c), 6);
	assert_int_equal(n[0].type, RESP_INT);
	assert_int_equal(n[0].n, -42);
	assert_int_equal(parse("$3\r\na\rb\r\n", n, 4, &c), 9);
	assert_int_equal(n[0].type, RESP_BULK);
	assert_int_equal(n[0].len, 3);
	assert_int_equal(parse("$-1\r\n", n, 4, &c), 5);
	assert_int_equal(n[0].type, RESP_NIL);
	assert_int_equal(parse("*-1\r\n", n, 4, &c), 5);
	assert_int_equal(n[0].type, RESP_NIL);
	assert_int_equal(parse("*0\r\n", n, 4, &c), 4);
	assert_int_equal(n[0].type, RESP_ARRAY);
}

static void
test_resp_xread_and_prefixes(void **state)
{
	static const char r[] =
	    "*1\r\n*2\r\n$2\r\nev\r\n*1\r\n*2\r\n$3\r\n1-0\r\n"
	    "*2\r\n$1\r\ne\r\n$5\r\nhello\r\n";
	struct resp_node n[16];
	size_t c, i;

	assert_int_equal(
	    resp_parse(r, sizeof(r) - 1, n, 16, &c), (long)sizeof(r) - 1);
	assert_int_equal(c, 9);
	assert_int_equal(n[8].len, 5);
	assert_memory_equal(n[8].s, "hello", 5);
	assert_int_equal(resp_skip(n, c, 0), 9);
	assert_int_equal(resp_skip(n, c, 2), 3);
	assert_int_equal(resp_skip(n, c, 3), 9);
	assert_int_equal(resp_skip(n, c, 99), 9);
	for (i = 0; i < sizeof(r) - 1; i++)
		assert_int_equal(resp_parse(r, i, n, 16, &c), 0);
	assert_int_equal(resp_parse(r, sizeof(r) - 1, n, 5, &c), -1);
}

static void
test_resp_malformed(void **state)
{
	struct resp_node n[4];
	size_t c;

	assert_int_equal(parse("?x\r\n", n, 4, &c), -1);
	assert_int_equal(parse(":1x\r\n", n, 4, &c), -1);
	assert_int_equal(parse(":\r\n", n, 4, &c), -1);
	assert_int_equal(parse(":-\r\n", n, 4, &c), -1);
	assert_int_equal(parse("$-2\r\n", n, 4, &c), -1);
	assert_int_equal(parse("$x\r\n", n, 4, &c), -1);
	assert_int_equal(parse("*-2\r\n", n, 4, &c), -1);
	assert_int_equal(parse("*1\r\n?\r\n", n, 4, &c), -1);
	assert_int_equal(parse("+OK\rx", n, 4, &c), -1);
	assert_int_equal(parse(":12345678901234567890\r\n", n, 4, &c), -1);
	/* the long long range exactly: found by test_resp_hiredis */
	assert_int_equal(parse(":9223372036854775807\r\n", n, 4, &c), 22);
	assert_true(n[0].n == LLONG_MAX);
	assert_int_equal(parse(":-9223372036854775808\r\n", n, 4, &c), 23);
	assert_true(n[0].n == LLONG_MIN);
	assert_int_equal(parse(":-9223372036854775807\r\n", n, 4, &c), 23);
	assert_true(n[0].n == -LLONG_MAX);
	assert_int_equal(parse(":9223372036854775808\r\n", n, 4, &c), -1);
	assert_int_equal(parse(":-9223372036854775809\r\n", n, 4, &c), -1);
	assert_int_equal(parse(":9999999999999999999\r\n", n, 4, &c), -1);
	assert_int_equal(parse("$9999999999999999999\r\n", n, 4, &c), -1);
	assert_int_equal(parse("", n, 4, &c), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp_command),
		cmocka_unit_test(test_resp_scalars),
		cmocka_unit_test(test_resp_xread_and_prefixes),
		cmocka_unit_test(test_resp_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
