/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fed.h - the server parent's side of federation (docs/SCALING.md): starts
 * the bridge child, turns the chat's federation hooks (chatfed.c) into
 * records on the bridge's pipe, and remote events from the bridge into
 * chatfed.c calls.
 */
#ifndef FORKCHAT_FED_H
#define FORKCHAT_FED_H

#include <sys/types.h>

#include "chat/chat.h"
#include "lib/stats.h"

struct fed;

/* What federation needs of the server's configuration (filled by it). */
struct fed_cfg {
	char redis_host[256];
	int redis_port;
	char hub_id[65];      /* "" = HOSTNAME-PORT */
	int port;             /* this hub's listening port */
	int max_clients;      /* nick claims in flight: one per slot at most */
	int nick_ttl;         /* seconds a dead hub's nicks stay taken */
	int redis_timeout_ms; /* a reply due this long: Redis is down */
};

/* Start the bridge (cfg->redis_host set; cfg is copied); NULL with errno
 * on failure. */
struct fed *fed_start(const struct fed_cfg *cfg, struct chat *chat);

/* The chat_fed hooks to install, with ctx = the fed. */
void fed_hooks(struct chat_fed *hooks);

/*
 * Handle what the bridge sent, at most budget bytes of records (a turn's
 * slice: FED_SLICE, FED_SLICE_BACKLOGGED while some client's pipe is full);
 * 1 if some are left.  fed_flush() writes what is queued for the bridge.
 */
#define FED_SLICE            (512u << 10)
#define FED_SLICE_BACKLOGGED (64u << 10)
int fed_drain(struct fed *f, size_t budget);
void fed_flush(struct fed *f);

/* Periodic work: presence heartbeat, forgetting silent hubs. */
void fed_tick(struct fed *f, long long now_ms);

/* 1 if pid was the bridge (it is restarted on the next tick). */
int fed_reaped(struct fed *f, pid_t pid, int status);

/* The federation items of /stats (STATS_FED_NITEMS at most max). */
size_t fed_stats(const struct fed *f, struct stats_item *it, size_t max);

/* Stop the bridge and wait for it; frees f. */
void fed_stop(struct fed *f);

#endif
