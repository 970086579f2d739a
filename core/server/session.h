/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.h - the server child: one per client, a relay between the
 * client's socket and the parent's pipes.
 */
#ifndef FORKCHAT_SESSION_H
#define FORKCHAT_SESSION_H

#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SESSION_SNDBUF (128 * 1024) /* the kernel doubles it */

struct session_cfg {
	int sock;    /* the client's TCP socket */
	int down_fd; /* read end of this child's pipe from the parent */
	int up_fd;   /* write end of the shared pipe to the parent */
	int slot;
	size_t max_line;
	pid_t parent;
	int sigs_blocked; /* proc_child_sigs() are blocked already (sessiond) */
};

/*
 * The options of every client's socket, set once on the listening socket:
 * Linux copies them to each socket accept() returns, so no session child
 * sets them (2 system calls fewer per connection).  A fixed send buffer
 * (no autotuning up to megabytes) keeps what a non-reading client can
 * swallow bounded, so --max-backlog decides; chat lines are small and
 * latency matters: no Nagle delay.  0, or -1 (the defaults stay).
 */
static inline int
session_listen_opts(int lfd)
{
	int sndbuf = SESSION_SNDBUF, one = 1;

	if (setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		return -1;
	return setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Run the session until it ends; returns the process exit status. */
int session_run(const struct session_cfg *cfg);

#endif
