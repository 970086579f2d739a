/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_failpoint.c - unit tests for sys/failpoint.h.
 *
 * Built with -DFIU_ENABLE (the coverage build; the fault build's objects
 * use the same header): the Nth-call sweep's FORKCHAT_FAILPOINT_NTH
 * ("NAME:N") fails the Nth evaluation of FAIL(NAME) once, with the errno
 * of the call site, counting other names not at all and every process
 * together (a forked child and an image that maps the inherited page count
 * on the same counter); a malformed setting arms nothing; every injected
 * failure is one "NAME PID" line in $FORKCHAT_FAILPOINT_LOG; a point
 * enabled through libfiu fails as well.
 *
 * Built without it (make unit): FAIL() is 0 and FAILPOINT_INIT() does
 * nothing, whatever the environment says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/failpoint.h"

#ifdef FIU_ENABLE
#include <fiu-control.h>

#define POINT "forkchatd/test/call"

static int
setup(void **state)
{
	(void)state;
	unsetenv("FORKCHAT_FAILPOINT_NTH");
	unsetenv("FORKCHAT_FAILPOINT_NTH_FD");
	unsetenv("FORKCHAT_FAILPOINT_LOG");
	failpoint_nth_state = NULL;
	failpoint_nth_memfd = -1;
	return 0;
}

/* What FAIL(POINT, EIO) gives, and errno when it fails. */
static int
fail_once(void)
{
	errno = 0;
	if (FAIL(POINT, EIO)) {
		assert_int_equal(errno, EIO);
		return 1;
	}
	assert_int_equal(errno, 0);
	return 0;
}

/* The 3rd call fails, once; other names neither fail nor count. */
static void
test_nth_call_fails_once(void **state)
{
	(void)state;
	setenv("FORKCHAT_FAILPOINT_NTH", POINT ":3", 1);
	FAILPOINT_INIT();
	assert_non_null(failpoint_nth_state);
	assert_true(failpoint_nth_fd() >= 0);
	assert_non_null(getenv("FORKCHAT_FAILPOINT_NTH_FD"));
	assert_int_equal(fail_once(), 0);
	assert_int_equal(FAIL("forkchatd/test/other", EIO), 0);
	assert_int_equal(fail_once(), 0);
	assert_int_equal(fail_once(), 1);
	assert_int_equal(fail_once(), 0);
	assert_int_equal(fail_once(), 0);
}

/* A child's calls count with the parent's (the shared page), and an image
 * exec'd with FORKCHAT_FAILPOINT_NTH_FD maps the same counter. */
static void
test_calls_are_counted_across_processes(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	setenv("FORKCHAT_FAILPOINT_NTH", POINT ":4", 1);
	FAILPOINT_INIT();
	assert_int_equal(fail_once(), 0); /* 1 */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(FAIL(POINT, EIO) + FAIL(POINT, EIO)); /* 2, 3 */
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* what sessiond.c's FAILPOINT_INIT does after the exec */
	failpoint_nth_state = NULL;
	FAILPOINT_INIT();
	assert_non_null(failpoint_nth_state);
	assert_int_equal(fail_once(), 1); /* 4 */
	assert_int_equal(fail_once(), 0);
}

/* No colon, or a name longer than the page holds: nothing armed. */
static void
test_malformed_setting_arms_nothing(void **state)
{
	static char longname[100];
	int i;

	(void)state;
	setenv("FORKCHAT_FAILPOINT_NTH", POINT, 1);
	FAILPOINT_INIT();
	assert_null(failpoint_nth_state);
	memset(longname, 'x', 70);
	memcpy(longname + 70, ":1", 3);
	setenv("FORKCHAT_FAILPOINT_NTH", longname, 1);
	FAILPOINT_INIT();
	assert_null(failpoint_nth_state);
	assert_int_equal(failpoint_nth_fd(), -1);
	assert_null(getenv("FORKCHAT_FAILPOINT_NTH_FD"));
	for (i = 0; i < 5; i++)
		assert_int_equal(fail_once(), 0);
}

/* Each injected failure is logged as "NAME PID"; a log that is not there
 * (the runner creates it) is not created, and the failure still is one. */
static void
test_fired_failures_are_logged(void **state)
{
	char path[] = "/tmp/test_failpoint.XXXXXX", want[128], got[256];
	FILE *fp;
	size_t n;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	setenv("FORKCHAT_FAILPOINT_LOG", path, 1);
	setenv("FORKCHAT_FAILPOINT_NTH", POINT ":2", 1);
	FAILPOINT_INIT();
	assert_int_equal(fail_once(), 0);
	assert_int_equal(fail_once(), 1);
	assert_int_equal(fail_once(), 0);
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(got, 1, sizeof(got) - 1, fp);
	fclose(fp);
	got[n] = '\0';
	snprintf(want, sizeof(want), "%s %ld\n", POINT, (long)getpid());
	assert_string_equal(got, want);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(failpoint_fired(POINT, ENOSPC), 1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(access(path, F_OK), -1);
}

/* A point switched on through libfiu (fiu-ctrl's way) fails too. */
static void
test_libfiu_enabled_point_fails(void **state)
{
	(void)state;
	FAILPOINT_INIT();
	assert_int_equal(fail_once(), 0);
	assert_int_equal(fiu_enable(POINT, 1, NULL, FIU_ONETIME), 0);
	assert_int_equal(fail_once(), 1);
	assert_int_equal(fail_once(), 0);
	fiu_disable(POINT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_nth_call_fails_once, setup),
		cmocka_unit_test_setup(
		    test_calls_are_counted_across_processes, setup),
		cmocka_unit_test_setup(
		    test_malformed_setting_arms_nothing, setup),
		cmocka_unit_test_setup(test_fired_failures_are_logged, setup),
		cmocka_unit_test_setup(test_libfiu_enabled_point_fails, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !FIU_ENABLE */

/* The normal build: no failpoint, whatever the environment says. */
static void
test_fail_is_zero_without_fiu(void **state)
{
	int i;

	(void)state;
	setenv("FORKCHAT_FAILPOINT_NTH", "forkchatd/test/call:1", 1);
	FAILPOINT_INIT();
	assert_int_equal(failpoint_nth_fd(), -1);
	for (i = 0; i < 3; i++) {
		errno = 0;
		assert_int_equal(FAIL("forkchatd/test/call", EIO), 0);
		assert_int_equal(errno, 0);
	}
	assert_null(getenv("FORKCHAT_FAILPOINT_NTH_FD"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fail_is_zero_without_fiu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
