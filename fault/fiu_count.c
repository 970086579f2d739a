/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fiu_count.so - counts libfiu's preload failures (fault/README.md).
 *
 * libfiu's POSIX preload (fiu_posix_preload.so) asks fiu_fail("posix/...")
 * in every wrapper, through the PLT; preloaded before it, this library's
 * fiu_fail() is the one those calls reach.  It asks the real one (the next
 * in the search order, libfiu.so) and, when it says "fail", appends
 * "NAME PID\n" to $FORKCHAT_FAILPOINT_LOG, the file where core/sys/failpoint.h
 * records the in-code points (those it leaves to core/sys/failpoint.h: no
 * double count).  The failure decision is libfiu's, unchanged.
 *
 * Only raw system calls here: the preload wraps open() and write() (its
 * own posix/io/oc/open may be the point that is failing).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int (*real_fail)(const char *);

__attribute__((constructor)) static void
count_init(void)
{
	real_fail = (int (*)(const char *))dlsym(RTLD_NEXT, "fiu_fail");
}

static void
record(const char *name)
{
	const char *path = getenv("FORKCHAT_FAILPOINT_LOG");
	char line[192], digits[24];
	size_t n = strlen(name), k = 0;
	long pid = (long)syscall(SYS_getpid), fd;

	if (path == NULL || n + sizeof(digits) + 2 > sizeof(line))
		return;
	memcpy(line, name, n);
	line[n++] = ' ';
	do {
		digits[k++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0);
	while (k > 0)
		line[n++] = digits[--k];
	line[n++] = '\n';
	fd = syscall(
	    SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)syscall(SYS_write, (int)fd, line, n);
	(void)syscall(SYS_close, (int)fd);
}

int fiu_fail(const char *name);

int
fiu_fail(const char *name)
{
	int saved = errno, r;

	if (real_fail == NULL)
		return 0;
	r = real_fail(name);
	if (r != 0 && strncmp(name, "forkchatd/", 10) != 0)
		record(name);
	errno = saved;
	return r;
}
