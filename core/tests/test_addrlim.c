/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_addrlim.c - unit tests for core/server/addrlim.c: address groups (IPv4
 * alone, IPv4-mapped IPv6 as IPv4, IPv6 by /64), network parsing and
 * matching, the per-group table (including deletion inside long probe runs,
 * checked against a plain array model), and the refusal log limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/addrlim.h"

static struct addr16
addr(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct addr16 a;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	assert_int_equal(addrlim_addr(&ss, &a), 0);
	return a;
}

static struct addr16
group(const char *s)
{
	struct addr16 a = addr(s), k;

	addrlim_group(&a, &k);
	return k;
}

static int
in(const struct addr_net *n, const char *ip)
{
	struct addr16 a = addr(ip);

	return addrlim_net_match(n, &a);
}

/* group(ip) in a static, for calls that take a pointer */
static const struct addr16 *
gp(const char *ip)
{
	static struct addr16 k;

	k = group(ip);
	return &k;
}

static void
test_addrlim_groups_v4_exact_v6_by_64(void **state)
{
	struct addr16 a = group("192.0.2.1"), b = group("192.0.2.2");
	struct addr16 m = group("::ffff:192.0.2.1");
	struct addr16 x = group("2001:db8:1:2::1"),
	              y = group("2001:db8:1:2:ff::9");
	struct addr16 z = group("2001:db8:1:3::1");
	struct sockaddr_storage ss;

	assert_memory_not_equal(a.b, b.b, 16);
	assert_memory_equal(a.b, m.b, 16); /* mapped IPv4 is IPv4 */
	assert_memory_equal(x.b, y.b, 16); /* same /64 */
	assert_memory_not_equal(x.b, z.b, 16);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(addrlim_addr(&ss, &a), -1);
}

static void
test_addrlim_net_parse_and_match(void **state)
{
	struct addr_net n;
	char out[64];

	assert_int_equal(addrlim_net_parse("127.0.0.0/8", &n), 0);
	assert_true(in(&n, "127.0.0.1"));
	assert_true(in(&n, "127.255.1.2"));
	assert_false(in(&n, "128.0.0.1"));
	assert_true(in(&n, "::ffff:127.0.0.9"));
	assert_int_equal(addrlim_net_parse("10.9.8.7/12", &n), 0);
	addrlim_net_format(&n, out, sizeof(out));
	assert_string_equal(out, "10.0.0.0/12");
	assert_true(in(&n, "10.15.0.1"));
	assert_false(in(&n, "10.16.0.1"));
	assert_int_equal(addrlim_net_parse("::1", &n), 0);
	addrlim_net_format(&n, out, sizeof(out));
	assert_string_equal(out, "::1/128");
	assert_true(in(&n, "::1"));
	assert_false(in(&n, "::2"));
	assert_int_equal(addrlim_net_parse("0.0.0.0/0", &n), 0);
	assert_true(in(&n, "8.8.8.8"));
	assert_false(in(&n, "2001:db8::1"));
	assert_int_equal(addrlim_net_parse("::/0", &n), 0);
	assert_true(in(&n, "2001:db8::1"));
	assert_int_equal(addrlim_net_parse("2001:db8::/33", &n), 0);
	assert_true(in(&n, "2001:db8:7fff::"));
	assert_false(in(&n, "2001:db8:8000::"));
	assert_int_equal(addrlim_net_parse("", &n), -1);
	assert_int_equal(addrlim_net_parse("/8", &n), -1);
	assert_int_equal(addrlim_net_parse("1.2.3.4/", &n), -1);
	assert_int_equal(addrlim_net_parse("1.2.3.4/33", &n), -1);
	assert_int_equal(addrlim_net_parse("1.2.3.4/+8", &n), -1);
	assert_int_equal(addrlim_net_parse("1.2.3.4/8x", &n), -1);
	assert_int_equal(addrlim_net_parse("::/129", &n), -1);
	assert_int_equal(addrlim_net_parse("1.2.3", &n), -1);
	assert_int_equal(addrlim_net_parse("host.example", &n), -1);
}

static void
test_addrlim_counts(void **state)
{
	struct addrlim *t = addrlim_new(4, 1);
	struct addr16 a = group("192.0.2.1"), b = group("192.0.2.2");
	int total, unreg;

	assert_non_null(t);
	addrlim_get(t, &a, &total, &unreg);
	assert_int_equal(total, 0);
	assert_int_equal(unreg, 0);
	assert_int_equal(addrlim_add(t, &a), 0);
	assert_int_equal(addrlim_add(t, &a), 0);
	assert_int_equal(addrlim_add(t, &b), 0);
	addrlim_registered(t, &a);
	addrlim_get(t, &a, &total, &unreg);
	assert_int_equal(total, 2);
	assert_int_equal(unreg, 1);
	assert_int_equal(addrlim_groups(t), 2);
	addrlim_registered(t, &a);
	addrlim_registered(t, &a); /* never below 0 */
	addrlim_get(t, &a, &total, &unreg);
	assert_int_equal(unreg, 0);
	addrlim_remove(t, &a);
	addrlim_remove(t, &a);
	addrlim_remove(t, &a); /* unknown: ignored */
	addrlim_get(t, &a, &total, &unreg);
	assert_int_equal(total, 0);
	assert_int_equal(addrlim_groups(t), 1);
	addrlim_get(t, &b, &total, &unreg);
	assert_int_equal(total, 1);
	assert_int_equal(unreg, 1);
	addrlim_free(t);
	addrlim_free(NULL);
}

/*
 * Random adds and removes over many groups in a small table (long probe
 * runs, wrap-around), checked against an array after every step.
 */
static void
test_addrlim_matches_model(void **state)
{
	enum { NG = 200, STEPS = 20000 };
	static int model[NG];
	struct addrlim *t = addrlim_new(NG, 0x1234);
	struct addr16 k[NG];
	char ip[32];
	int i, step, g, total, unreg, groups;

	assert_non_null(t);
	for (i = 0; i < NG; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		k[i] = group(ip);
	}
	srand(7);
	for (step = 0; step < STEPS; step++) {
		g = rand() % NG;
		if (model[g] > 0 && rand() % 2) {
			addrlim_remove(t, &k[g]);
			model[g]--;
		} else if (model[g] < 5) {
			assert_int_equal(addrlim_add(t, &k[g]), 0);
			addrlim_registered(t, &k[g]);
			model[g]++;
		}
		if (step % 97 != 0)
			continue;
		for (i = 0, groups = 0; i < NG; i++) {
			addrlim_get(t, &k[i], &total, &unreg);
			assert_int_equal(total, model[i]);
			groups += model[i] > 0;
		}
		assert_int_equal(addrlim_groups(t), groups);
	}
	addrlim_free(t);
}

static void
test_addrlim_table_full(void **state)
{
	struct addrlim *t = addrlim_new(1, 1); /* 16 entries, 8 groups */
	char ip[32];
	int i;

	assert_non_null(t);
	for (i = 0; i < 8; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		assert_int_equal(addrlim_add(t, gp(ip)), 0);
	}
	assert_int_equal(addrlim_add(t, gp("10.0.0.99")), -1);
	/* a known group still counts */
	assert_int_equal(addrlim_add(t, gp("10.0.0.1")), 0);
	addrlim_free(t);
}

static void
test_addrlim_log_burst_then_summary(void **state)
{
	struct addrlim_log l;
	char line[256];
	long long now = 1000;
	int i, logged = 0;

	memset(&l, 0, sizeof(l));
	for (i = 0; i < 1000; i++)
		logged += addrlim_log_allow(&l,
		    i % 2 ? ADDRLIM_PER_ADDR : ADDRLIM_SERVER_FULL, now + i);
	assert_int_equal(logged, ADDRLIM_LOG_BURST);
	/* not before the window ends */
	assert_int_equal(
	    addrlim_log_summary(&l, now + 5000, line, sizeof(line)), 0);
	/* a refusal after the window, before the summary: only counted */
	assert_int_equal(addrlim_log_allow(&l, ADDRLIM_UNREG_PER_ADDR,
	                     now + ADDRLIM_LOG_WINDOW_MS),
	    0);
	assert_int_equal(addrlim_log_summary(&l, now + ADDRLIM_LOG_WINDOW_MS,
	                     line, sizeof(line)),
	    1000 - ADDRLIM_LOG_BURST + 1);
	assert_string_equal(line,
	    "refused 981 more connections in the last 10 s (not logged one "
	    "by one): server-full=490 too-many-connections=490 "
	    "too-many-unregistered=1");
	/* a new window: lines again */
	assert_int_equal(
	    addrlim_log_allow(&l, ADDRLIM_PER_ADDR, now + 20000), 1);
	/* a window without suppressed refusals: no summary */
	assert_int_equal(
	    addrlim_log_summary(&l, now + 40000, line, sizeof(line)), 0);
	assert_string_equal(addrlim_reason_name(ADDRLIM_NREASONS), "?");
}

/* One refusal past the burst: "1 more connection", not "connections". */
static void
test_addrlim_log_summary_singular(void **state)
{
	struct addrlim_log l;
	char line[256];
	int i;

	memset(&l, 0, sizeof(l));
	for (i = 0; i <= ADDRLIM_LOG_BURST; i++)
		addrlim_log_allow(&l, ADDRLIM_PER_ADDR, 1000 + i);
	assert_int_equal(addrlim_log_summary(&l, 1000 + ADDRLIM_LOG_WINDOW_MS,
	                     line, sizeof(line)),
	    1);
	assert_string_equal(line,
	    "refused 1 more connection in the last 10 s (not logged one by "
	    "one): server-full=0 too-many-connections=1 "
	    "too-many-unregistered=0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addrlim_groups_v4_exact_v6_by_64),
		cmocka_unit_test(test_addrlim_net_parse_and_match),
		cmocka_unit_test(test_addrlim_counts),
		cmocka_unit_test(test_addrlim_matches_model),
		cmocka_unit_test(test_addrlim_table_full),
		cmocka_unit_test(test_addrlim_log_burst_then_summary),
		cmocka_unit_test(test_addrlim_log_summary_singular),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
