/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * child.c - fork hygiene shared by every server child.
 *
 * A child must hold no other child's pipe ends (the original program leaked
 * one more per slot), must not outlive the parent, and must start with the
 * signals it waits for already blocked, so none sent right after fork() is
 * lost or fatal.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sys/child.h"
#include "sys/failpoint.h"
#include "sys/ipc.h"
#include "sys/log.h"

/* Keep only fds 0-2 and keep[0..n) (sorted ascending). */
static void
close_all_but(const int *keep, int n)
{
	unsigned int from = 3;
	int i;

	for (i = 0; i < n; i++) {
		if ((unsigned int)keep[i] > from)
			close_range(from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

void
child_setup(pid_t parent, int *keep, int n)
{
	sigset_t set;
	int i, j, t;

	/* Die with the parent; it may have died before prctl took effect. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		child_exit(1);
	signal(SIGINT, SIG_IGN); /* ^C is for the parent to handle */
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, IPC_SIG_FLOW); /* fatal by default: queue it */
	sigprocmask(SIG_SETMASK, &set, NULL);
	log_close();
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (keep[j] < keep[i])
				t = keep[i], keep[i] = keep[j], keep[j] = t;
	close_all_but(keep, n);
}
