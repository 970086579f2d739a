/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * admit.h - the server parent's door (admit.c): who may open a
 * connection, and how long a connection may stay without a nickname.
 */
#ifndef FORKCHAT_ADMIT_H
#define FORKCHAT_ADMIT_H

#include <sys/socket.h>

#include "chat/chat.h"
#include "server/addrlim.h"
#include "server/fanout.h"
#include "server/opts.h"

/* What admit_check decided about one peer. */
struct admit {
	struct addr16 group; /* the peer's address group */
	int exempt;          /* outside the per-address limits */
};

struct admit_tab;

/*
 * Table, pool cap, the "limits" log line; NULL without memory.  The chat
 * is told of evictions and timeouts (chat_bye); fo says which slots are
 * active.
 */
struct admit_tab *admit_new(
    const struct server_opts *o, struct chat *chat, const struct fanout *fo);
void admit_free(struct admit_tab *t);
/*
 * May the peer of fd (just accepted) have a slot, nfree being free?  0:
 * yes, a filled in (maybe after evicting the oldest unregistered
 * connection); -1: it was refused with a BYE line, logged, and fd closed.
 */
int admit_check(struct admit_tab *t, int fd, const struct sockaddr_storage *ss,
    const char *peer, int nfree, struct admit *a);
/*
 * slot's session was asked for at now_ms: count it, schedule its deadline
 * (admit_clock moves it to when the session started).
 */
void admit_connected(
    struct admit_tab *t, int slot, const struct admit *a, long long now_ms);
/* slot's session started at now_ms: its register deadline counts from
 * here, as its "connect" log line says. */
void admit_clock(struct admit_tab *t, int slot, long long now_ms);
/* slot registered, or is no longer waiting for it: leave the pool. */
void admit_registered(struct admit_tab *t, int slot);
/* slot is being freed. */
void admit_released(struct admit_tab *t, int slot);
/* The next register deadline (0: none): admit_timeouts is due then. */
long long admit_next_timeout(const struct admit_tab *t);
/* Cut what passed --register-timeout; reschedule. */
void admit_timeouts(struct admit_tab *t, long long now);
/* Summary of the refusals the log did not list one by one. */
void admit_tick(struct admit_tab *t, long long now);
/* Connections answered BYE before HELLO (/stats). */
unsigned long long admit_refused(const struct admit_tab *t);

#endif
