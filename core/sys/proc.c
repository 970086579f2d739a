/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proc.c - fork hygiene shared by every server child.
 *
 * A child must hold no other child's pipe ends (the original program leaked
 * one more per slot), must not outlive the parent, and must start with the
 * signals it waits for already blocked, so none sent right after fork() is
 * lost or fatal.  The wait set is written here once (proc_child_sigs).
 */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys/ipc.h"
#include "sys/proc.h"

void
proc_child_sigs(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGIO);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTERM);
	sigaddset(set, IPC_SIG_FLOW); /* flow control: fatal by default */
}

pid_t
proc_fork_paired(int *fd, int answer_secs)
{
	struct timeval tv = { answer_secs, 0 };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		*fd = sv[1];
		return 0;
	}
	close(sv[1]);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*fd = sv[0];
	return pid;
}

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
proc_child_setup(pid_t parent, int *keep, int n)
{
	sigset_t set;
	int i, j, t;

	if (proc_die_with(parent, SIGKILL) < 0)
		proc_exit(1);
	signal(SIGINT, SIG_IGN); /* ^C is for the parent to handle */
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	proc_child_sigs(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (keep[j] < keep[i])
				t = keep[i], keep[i] = keep[j], keep[j] = t;
	close_all_but(keep, n);
}

int
proc_reap_within(pid_t pid, int ms)
{
	const struct timespec step = { 0, 10 * 1000 * 1000 };
	pid_t r;
	int st, waited = 0;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (waited >= ms)
			break;
		(void)nanosleep(&step, NULL);
		waited += 10;
	}
	(void)kill(pid, SIGKILL);
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return r == pid ? 1 : -1;
}
