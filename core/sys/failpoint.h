/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * failpoint.h - libfiu failure points, compiled in only for fault builds.
 *
 * FAIL("forkchatd/spawn/fork", EAGAIN) is 0 in a normal build, so the
 * compiler removes it and the binary has no libfiu dependency.  Built with
 * -DFIU_ENABLE (build/fault/, see fault/fault.mk) it asks libfiu whether
 * the named point is enabled; if so it sets errno and is 1, and the call
 * site behaves exactly as if the system call had failed, and the failure is
 * recorded (failpoint_fired()).  The fault runner switches points on in a
 * running server with fiu-ctrl (fault/README.md), and fault/sweep.py fails
 * a point's Nth call (FORKCHAT_FAILPOINT_NTH, below).
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
#include <string.h>
#include <sys/mman.h>
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

/*
 * The Nth-call sweep (fault/sweep.py): FORKCHAT_FAILPOINT_NTH="NAME:N"
 * makes the Nth evaluation of FAIL(NAME) fail, once, counting the calls of
 * the server and of all its children together: the counter lives in a
 * shared page that failpoint_init() maps before the first fork.  The page
 * is a memfd whose number is exported as FORKCHAT_FAILPOINT_NTH_FD, so the
 * session image that the spawner execs (sessiond.c) maps the same page
 * (the spawner keeps that descriptor open: failpoint_nth_fd()).  Weak: one
 * pointer for every file that includes this header.
 */
struct failpoint_nth {
	char name[64];
	long n;     /* the call to fail (1 = the first) */
	long calls; /* so far, every process */
};
__attribute__((weak)) struct failpoint_nth *failpoint_nth_state;
__attribute__((weak)) int failpoint_nth_memfd = -1;

/* The shared page's descriptor (to keep open across exec), or -1. */
static inline int
failpoint_nth_fd(void)
{
	return failpoint_nth_memfd;
}

static inline void
failpoint_init(void)
{
	const char *e = getenv("FORKCHAT_FAILPOINT_NTH"), *c;
	const char *inherited = getenv("FORKCHAT_FAILPOINT_NTH_FD");
	struct failpoint_nth *p;
	char num[16];
	int fd;

	fiu_init(0);
	if (e == NULL || (c = strrchr(e, ':')) == NULL ||
	    (size_t)(c - e) >= sizeof(p->name))
		return;
	if (inherited != NULL) { /* exec'd by the spawner: the same page */
		fd = (int)strtol(inherited, NULL, 10);
		p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
		if (p != MAP_FAILED) {
			failpoint_nth_memfd = fd;
			failpoint_nth_state = p;
		}
		return;
	}
	if ((fd = memfd_create("forkchat-failpoint-nth", 0)) < 0 ||
	    ftruncate(fd, (off_t)sizeof(*p)) < 0)
		return;
	p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return;
	memcpy(p->name, e, (size_t)(c - e));
	p->name[c - e] = '\0';
	p->n = strtol(c + 1, NULL, 10);
	p->calls = 0;
	failpoint_nth_state = p;
	failpoint_nth_memfd = fd;
	snprintf(num, sizeof(num), "%d", fd);
	setenv("FORKCHAT_FAILPOINT_NTH_FD", num, 1);
}

static inline int
failpoint_nth_hit(const char *name)
{
	struct failpoint_nth *p = failpoint_nth_state;

	return p != NULL && strcmp(name, p->name) == 0 &&
	    __atomic_add_fetch(&p->calls, 1, __ATOMIC_SEQ_CST) == p->n;
}

#define FAIL(name, err)                                \
	((failpoint_nth_hit(name) || fiu_fail(name)) ? \
	        failpoint_fired(name, err) :           \
	        0)
#define FAILPOINT_INIT() failpoint_init()
#else
#define FAIL(name, err)    0
#define FAILPOINT_INIT()   ((void)0)
#define failpoint_nth_fd() (-1)
#endif

#endif
