/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.h - the server child: one per client, a relay between the
 * client's socket and the parent's pipes.
 */
#ifndef FORKCHAT_SESSION_H
#define FORKCHAT_SESSION_H

#include <stddef.h>
#include <sys/types.h>

struct session_cfg {
	int sock;    /* the client's TCP socket */
	int down_fd; /* read end of this child's pipe from the parent */
	int up_fd;   /* write end of the shared pipe to the parent */
	int slot;
	size_t max_line;
	pid_t parent;
};

/* Run the session until it ends; returns the process exit status. */
int session_run(const struct session_cfg *cfg);

#endif
