/*
 * failpoint.h - libfiu failure points, compiled in only for fault builds,
 * and child_exit(), which coverage builds hook.
 *
 * FAIL("forkchatd/spawn/fork", EAGAIN) is 0 in a normal build, so the
 * compiler removes it and the binary has no libfiu dependency.  Built with
 * -DFIU_ENABLE (build/fault/, see fault/fault.mk) it asks libfiu whether
 * the named point is enabled; if so it sets errno and is 1, and the call
 * site behaves exactly as if the system call had failed, and the failure is
 * recorded (failpoint_fired()).  The fault runner switches points on in a
 * running server with fiu-ctrl (fault/README.md).
 * Names follow "forkchatd/<place>/<call>".
 */
#ifndef FORKCHAT_FAILPOINT_H
#define FORKCHAT_FAILPOINT_H

#ifdef FIU_ENABLE
#include <errno.h>
#include <fcntl.h>
#include <fiu.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Every injected failure is recorded, so that a scenario can prove its
 * point fired (fault/runner.py's "fired" column): one O_APPEND write of
 * "NAME PID\n" to $FORKCHAT_FAILPOINT_LOG, which the runner creates per
 * scenario; children and the bridge inherit it.  Returns 1 with errno set
 * to err, as the failed call would.
 */
static inline int
failpoint_fired(const char *name, int err)
{
	const char *path = getenv("FORKCHAT_FAILPOINT_LOG");
	char line[160];
	int fd, n;

	if (path != NULL &&
	    (fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) >= 0) {
		n = snprintf(
		    line, sizeof(line), "%s %ld\n", name, (long)getpid());
		if (n > 0 && (size_t)n < sizeof(line))
			(void)!write(fd, line, (size_t)n);
		close(fd);
	}
	errno = err;
	return 1;
}
#define FAIL(name, err)  (fiu_fail(name) ? failpoint_fired(name, err) : 0)
#define FAILPOINT_INIT() fiu_init(0)
#else
#define FAIL(name, err)  0
#define FAILPOINT_INIT() ((void)0)
#endif

/*
 * child_exit(status): how every forked child ends.  It is _exit(), which
 * must not run the parent's atexit handlers or flush its stdio buffers a
 * second time; a coverage build (-DFORKCHAT_COVERAGE) first writes the
 * child's gcov counters, which _exit() would otherwise throw away.
 */
#include <unistd.h>
#ifdef FORKCHAT_COVERAGE
void __gcov_dump(void);
#endif

/* A function, not a macro: the status is computed before the dump. */
static inline __attribute__((noreturn)) void
child_exit(int status)
{
#ifdef FORKCHAT_COVERAGE
	__gcov_dump();
#endif
	_exit(status);
}

#endif
