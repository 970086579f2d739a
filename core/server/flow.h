/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flow.h - the server parent's flow control: a room whose members fall
 * behind slows its senders down instead of cutting the readers
 * (docs/PROTOCOL.md "Slow consumers and flow control").
 *
 * fanout.c reports every backlogged slot's state after a flush
 * (flow_backlog) and ends each flush with flow_turn; the server tells it
 * who spoke in a room (flow_spoke) and lets it hold a paused sender's
 * records (flow_hold, flow_replay).  It reaches the chat and the slots'
 * pids only through the callbacks in struct flow_cfg.
 */
#ifndef FORKCHAT_FLOW_H
#define FORKCHAT_FLOW_H

#include <stddef.h>
#include <sys/types.h>

#include "sys/ipc.h"

/* Defaults; the marks are fractions of --max-backlog. */
#define FLOW_HIGH_DIV    4     /* high-water mark: max-backlog / 4 */
#define FLOW_LOW_DIV     16    /* low-water mark: max-backlog / 16 */
#define FLOW_STALL_MS    3000  /* hot and nothing drained: cut */
#define FLOW_PACE_MS     10000 /* hot without reaching the low mark: cut */
#define FLOW_HARD_FACTOR 16    /* backlog past 16 x max-backlog: cut now */

struct flow_cfg {
	int max_clients;
	size_t max_backlog;
	void *ctx;
	/* The room slot is in (a pointer unique while the room lives), or
	 * NULL. */
	const char *(*room)(void *ctx, int slot);
	/* Slot's nickname, for the log. */
	const char *(*nick)(void *ctx, int slot);
	/* Slot's child, or 0 if it takes no more lines (closing, cut). */
	pid_t (*pid)(void *ctx, int slot);
	/* The clock in ms (tests); NULL: CLOCK_MONOTONIC. */
	long long (*now_ms)(void *ctx);
};

enum flow_verdict { FLOW_OK, FLOW_STALLED, FLOW_TOO_SLOW, FLOW_TOO_BIG };

struct flow;

/* flow_spoke, flow_hold and flow_replay take a NULL flow: no control. */
struct flow *flow_new(const struct flow_cfg *cfg);
void flow_free(struct flow *f);

/* slot queued a room message (the chat's message hook). */
void flow_spoke(struct flow *f, int slot);
/* The records handled from now on are slot's (-1: nobody's). */
void flow_from(struct flow *f, int slot);
/* A line was queued for slot `to`: pace the record's sender if `to` is
 * hot (any line: whispers and JOIN/PART lines too). */
void flow_sent(struct flow *f, int to);
/*
 * slot's backlog is `used` bytes after a flush that wrote `wrote` bytes to
 * its pipe (behind: it had a backlog before): update its marks.  Anything
 * but FLOW_OK means cut it as a slow consumer (the reason is logged).
 */
enum flow_verdict
flow_backlog(struct flow *f, int slot, size_t used, size_t wrote, int behind);
/* slot's pipe is closed: it holds nobody back and is told nothing more. */
void flow_forget(struct flow *f, int slot);
/* End of a flush: pause the senders of rooms with a hot member, resume
 * the others. */
void flow_turn(struct flow *f);

/*
 * A record from slot, read from the shared pipe: if slot is paused (or
 * still has held records), keep it for later and return 1, so that what a
 * paused sender wrote before it stopped reading does not reach a room that
 * is behind.  0: handle it now.
 */
int flow_hold(
    struct flow *f, int slot, const struct ipc_hdr *h, const char *payload);
typedef void
flow_handler(void *ctx, const struct ipc_hdr *h, const char *payload);
/*
 * Hand held records to fn, in order: of every slot whose room is no longer
 * behind, at most budget bytes in all (slot -1), telling each one whose
 * records are all handled to read its client again; or all of one slot
 * (a slot about to be freed).  Returns 1 if some that may go now remain.
 */
int flow_replay(
    struct flow *f, int slot, size_t budget, flow_handler *fn, void *ctx);

/* For tests and the log: members hot, senders paused, signals sent. */
int flow_nhot(const struct flow *f);
int flow_npaused(const struct flow *f);
int flow_is_paused(const struct flow *f, int slot);
int flow_is_hot(const struct flow *f, int slot);

#endif
