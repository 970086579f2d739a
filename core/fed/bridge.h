/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bridge.h - the federation bridge: a child of the server parent that owns
 * the Redis connections (docs/SCALING.md).  It waits on signals like every
 * other process: SIGIO for its sockets, SIGUSR2 for the parent's pipe.
 */
#ifndef FORKCHAT_BRIDGE_H
#define FORKCHAT_BRIDGE_H

#include <sys/types.h>

struct bridge_cfg {
	char host[256];
	int port;
	const char *origin; /* "HUB-ID/EPOCH.PID": unique per hub run */
	char lastid[64];    /* resume reading after this id ("": from now) */
	unsigned long long acked; /* Redis has our events up to this seq */
	char run_id[48];          /* of the Redis that did ("": none yet) */
	int nick_ttl;             /* seconds a nick claim lives unrefreshed */
	long long timeout_ms;     /* a reply overdue this long: Redis is down */
	int down_fd; /* records from the parent (read, non-blocking) */
	int up_fd;   /* records to the parent (write, blocking) */
	pid_t parent;
};

/* Run until SIGTERM or the parent's pipe closes; returns an exit status. */
int bridge_run(const struct bridge_cfg *cfg);

/* Redis keys and scripts, shared with the tests' expectations. */
#define BRIDGE_STREAM    "fc:ev"
#define BRIDGE_NICK_KEY  "fc:nick:"
#define BRIDGE_CLASH_KEY "fc:clash:"
#define BRIDGE_MAXLEN    "100000"
/* Acknowledged events kept to be sent again if Redis restarts and may
 * have lost them before every hub read them (docs/SCALING.md). */
#define BRIDGE_RETAIN (8u << 20)

#endif
