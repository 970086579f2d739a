/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * server_int.h - what the server parent's modules share: the client table
 * and the server state.  Private to server.c and fanout.c.
 */
#ifndef FORKCHAT_SERVER_INT_H
#define FORKCHAT_SERVER_INT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "server/addrlim.h"
#include "server/flow.h"
#include "lib/buf.h"
#include "chat/chat.h"
#include "fed/fed.h"
#include "sys/ipc.h"
#include "server/opts.h"
#include "lib/stats.h"

enum cl_state { CL_FREE, CL_ACTIVE, CL_CLOSING, CL_ABORTED };

struct client {
	pid_t pid;
	int fd; /* write end of the child's pipe, or -1 */
	enum cl_state state;
	int dirty;      /* on the dirty list */
	int backlogged; /* out holds what the pipe refused */
	int failed;     /* output was lost (no memory): cut it */
	int wake;       /* on the wake list: SIGUSR2 due */
	struct buf out;
	long long since_ms;
	char peer[48];
	struct addr16 group; /* address group, for the per-address limits */
	int counted;         /* in s->addrs (not exempt) */
	int unreg;           /* counted as waiting for a nickname */
	struct flow_cl flow; /* flow control (flow.c) */
};

struct reaped {
	pid_t pid;
	int status;
};

struct server {
	const struct server_opts *o;
	int lfd, up_r, up_w;
	size_t up_size; /* capacity of the shared pipe */
	struct client *cl;
	int *freel, nfree;
	int *dirty, ndirty, dirtycap;
	int *woken, nwoken; /* children to signal after the writes */
	struct reaped *dead;
	int nbacklog;
	int nchildren;
	struct chat *chat;
	struct fed *fed; /* federation (--redis), or NULL */
	struct buf in;
	int stopping; /* graceful shutdown under way */
	long long deadline_ms;
	long long last_tick_ms;
	long long next_timeout_ms; /* earliest register deadline, 0 = none */
	/* per-address limits (docs/SECURITY.md) */
	struct addrlim *addrs;   /* connections per address group */
	int npool, pool_cap;     /* unregistered non-exempt connections */
	struct addrlim_log rlog; /* rate limit of "refused" log lines */
	/* statistics (/stats and the periodic "stats" log line) */
	long long start_ms, last_stats_ms;
	unsigned long long messages_in, lines_out, deliveries, slow_cuts;
	unsigned long long refused; /* answered BYE before HELLO (admit.c) */
	struct stats_hist fanout;   /* microseconds per batch, read to flush */
	struct flow flow;           /* flow control (flow.c) */
};

/* ---- fanout.c: the output side ------------------------------------- */

/* chat_io callbacks: queue a line for slot; close slot once flushed. */
void fanout_send(void *ctx, int slot, const char *line, size_t len);
void fanout_close(void *ctx, int slot);
/* Cut slot off now, telling its child why (si_value of SIGTERM). */
void fanout_abort(struct server *s, int slot, enum ipc_abort why);
/* Close slot's pipe and drop its backlog. */
void fanout_close_down(struct server *s, struct client *c);
/* One write and one SIGUSR2 per child that got output this turn. */
void fanout_flush(struct server *s);
/* Retry the children whose pipes were full. */
void fanout_flush_backlogs(struct server *s);

/* ---- admit.c: who may connect, register deadlines ------------------ */

struct admit {
	struct addr16 group; /* the peer's address group */
	int exempt;          /* outside the per-address limits */
};

/* Table, pool cap, the "limits" log line; -1 without memory. */
int admit_setup(struct server *s);
void admit_free(struct server *s);
/*
 * May the peer of fd (just accepted) have a slot?  0: yes, a filled in
 * (maybe after evicting the oldest unregistered connection); -1: it was
 * refused with a BYE line, logged, and fd is closed.
 */
int admit_check(struct server *s, int fd, const struct sockaddr_storage *ss,
    const char *peer, struct admit *a);
/* slot's session started (since_ms set): count it, schedule its deadline. */
void admit_connected(struct server *s, int slot, const struct admit *a);
/* slot registered, or is no longer waiting for it: leave the pool. */
void admit_registered(struct server *s, int slot);
/* slot is being freed. */
void admit_released(struct server *s, int slot);
/* Cut what passed --register-timeout; reschedule. */
void admit_timeouts(struct server *s, long long now);
/* Summary of the refusals the log did not list one by one. */
void admit_tick(struct server *s, long long now);

#endif
