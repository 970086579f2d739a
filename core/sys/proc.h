/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proc.h - what every forked process of forkchat does around fork(): the
 * server child's wait set and fork hygiene (client session, federation
 * bridge), dying with the parent (the client's keyboard process too), and
 * how a forked child ends.
 */
#ifndef FORKCHAT_PROC_H
#define FORKCHAT_PROC_H

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * The signals every server child waits for, blocked from the moment it is
 * forked: SIGIO (a socket is ready), SIGUSR2 (the parent wrote to its
 * pipe), SIGUSR1 (the parent closed it), SIGTERM (the parent says stop;
 * sys/ipc.h).
 */
void proc_child_sigs(sigset_t *set);

/*
 * Die with the parent: sig is sent when it ends.  -1 if that could not be
 * arranged or it is gone already (it may have died before prctl took
 * effect): the caller must end.  Inline: the client's keyboard process
 * uses it and links nothing of the server.
 */
static inline int
proc_die_with(pid_t parent, int sig)
{
	return prctl(PR_SET_PDEATHSIG, sig) < 0 || getppid() != parent ? -1 : 0;
}

/*
 * Right after fork() in a server child: die with the parent (exits at once
 * if it is already gone), leave ^C and the parent's other signals to the
 * parent, block proc_child_sigs(), and close every descriptor but 0-2
 * and the n in keep (which is sorted in place).  Never returns on failure.
 * A child that was forked with the log open calls log_close() first (the
 * session image, sessiond.c, links no log: it needs no libunistring).
 */
void proc_child_setup(pid_t parent, int *keep, int n);

/*
 * fork() with a unix SOCK_SEQPACKET socketpair between the two, as the
 * server starts its spawner and its name helper.  In the parent: the
 * child's pid, *fd its end of the pair (close-on-exec, reads time out
 * after answer_secs), the child's end closed.  In the child: 0, *fd its
 * end (the parent's is close-on-exec and goes with proc_child_setup()).
 * -1 when either call failed, with nothing left open.
 */
pid_t proc_fork_paired(int *fd, int answer_secs);

/*
 * Reap pid, a child the caller has just told to end (its socket or pipe
 * closed): wait for it up to ms milliseconds, then SIGKILL it and reap it.
 * A stopped or hung child must not hold the server's shutdown (a blocking
 * waitpid() on a SIGSTOPped helper never returns).  0 when it ended by
 * itself, 1 when it had to be killed, -1 if it was not ours to reap.
 */
int proc_reap_within(pid_t pid, int ms);

/*
 * proc_exit(status): how every forked child ends.  It is _exit(), which
 * must not run the parent's atexit handlers or flush its stdio buffers a
 * second time; a coverage build (-DFORKCHAT_COVERAGE) first writes the
 * child's gcov counters, which _exit() would otherwise throw away.
 */
#ifdef FORKCHAT_COVERAGE
void __gcov_dump(void);
#endif

/* A function, not a macro: the status is computed before the dump. */
static inline __attribute__((noreturn)) void
proc_exit(int status)
{
#ifdef FORKCHAT_COVERAGE
	__gcov_dump();
#endif
	_exit(status);
}

#endif
