/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fanout.h - the server parent's output side: one output queue, pipe and
 * state per child slot, the dirty list, the bounded backlogs and the cuts.
 *
 * The fan-out never calls into the chat: a slot it cuts (slow consumer,
 * lost output, write error) is reported through cfg.cut once the flush has
 * gone through its dirty list, and what the server does about it (chat_
 * disconnect, which queues PART lines for the others) is flushed on the
 * same turn.
 */
#ifndef FORKCHAT_FANOUT_H
#define FORKCHAT_FANOUT_H

#include <stddef.h>
#include <sys/types.h>

#include "sys/ipc.h"

enum fanout_state {
	FANOUT_FREE,    /* no child */
	FANOUT_ACTIVE,  /* takes lines */
	FANOUT_CLOSING, /* flushed, then its pipe is closed (EOF ends it) */
	FANOUT_ABORTED  /* cut off; waits to be reaped */
};

struct flow;

struct fanout_cfg {
	int max_clients;    /* slots 0 .. max_clients-1 */
	size_t max_backlog; /* bytes a pipe may refuse before the cut */
	void *ctx;
	/*
	 * Slot was cut off (its child told why through SIGTERM's si_value,
	 * its pipe closed), with backlog bytes left undelivered.  Called
	 * after a flush's pass over the dirty list, never during it; it may
	 * queue lines for other slots (they go out on the same flush).
	 */
	void (*cut)(void *ctx, int slot, enum ipc_abort why, size_t backlog);
	/*
	 * Flow control (flow.c), or NULL: then a backlog past max_backlog
	 * is cut at once.  With it, the backlogs pace the rooms' senders
	 * and flow decides the cuts.
	 */
	struct flow *flow;
	/*
	 * Presence lines (JOIN, PART: the server says which), or NULL.  A
	 * slot that has only such lines waits up to FANOUT_LAZY_MS before
	 * its write, so that the lines of many arrivals go out together:
	 * without it, 1000 clients arriving one by one wake each lobby
	 * member about once per arrival (issue 17, the connect storm).  Any
	 * other line for the slot takes them along at once, in order.
	 */
	int (*lazy)(const char *line, size_t len);
};

#define FANOUT_LAZY_MS 200
/*
 * Corking (fanout_flush_busy): a slot with FANOUT_CORK_BYTES queued is
 * written at once, the others wait at most FANOUT_CORK_US.  When the flush
 * has at most FANOUT_CORK_FEW slots to write (a small room), 4 KiB is
 * enough (about 50 chat lines of a 64-byte text, the floor's batch of 64,
 * bench/lg_floor.c): a flush then wakes few children, and what the parent
 * holds may be all that the room's senders have in flight (4 senders x 32
 * messages at N=10 in the bench never filled 16 KiB, so every corked
 * write waited for the timer while the senders waited for their
 * deliveries).  With many slots, each flush wakes many children and
 * batching pays: 16 KiB.
 */
#define FANOUT_CORK_BYTES     (16 * 1024)
#define FANOUT_CORK_FEW_BYTES (4 * 1024)
#define FANOUT_CORK_FEW       32
#define FANOUT_CORK_US        1000
/* fanout_flush_until(): writes between two looks at the input; a room
 * of at most that many members is never stopped. */
#define FANOUT_PEEK_SLOTS 128

struct fanout;

struct fanout *fanout_new(const struct fanout_cfg *cfg);
void fanout_free(struct fanout *f);

/* Slot's child pid started; fd is the write end of its pipe: ACTIVE. */
void fanout_open(struct fanout *f, int slot, pid_t pid, int fd);
/* Slot's child was reaped: close its pipe, drop its queue: FREE. */
void fanout_release(struct fanout *f, int slot);

/* chat_io callbacks (ctx is the fanout): queue a line for slot; close
 * slot once what is queued is flushed. */
void fanout_send(void *ctx, int slot, const char *line, size_t len);
void fanout_close(void *ctx, int slot);
/* Cut slot off now (reported through cfg.cut by the next flush). */
void fanout_abort(struct fanout *f, int slot, enum ipc_abort why);

/* One write per child that got output since the last (the write raises
 * the child's SIGUSR2, session.c). */
void fanout_flush(struct fanout *f);
/*
 * The same, but every FANOUT_PEEK_SLOTS writes it calls input(), and if
 * more input waits it stops: the slots not yet written stay queued
 * ("corked", as fanout_flush_busy() leaves them) for the next flush, which
 * writes them first and with whatever that input adds, in one write each.
 * A fan-out to many children takes long enough (each write wakes a child
 * that competes with the parent for the CPU) for the room's other senders'
 * messages to arrive meanwhile: written after it, they made a round of
 * their own, each round a wake-up of every member's child and client,
 * and the senders' windows stayed apart for the rest of the run (issue
 * 17, goal 4, N=1000: 6 rounds for 300 messages where 3 would do).
 */
void fanout_flush_until(struct fanout *f, int (*input)(void));
/*
 * The same while more input waits: only slots with FANOUT_CORK_BYTES or
 * more (or closing, failed, behind) are written; the others stay queued
 * ("corked") until a fanout_flush(), or a fanout_flush_busy() at least
 * FANOUT_CORK_US after the first was left (now_us: clock_mono_us()).
 */
void fanout_flush_busy(struct fanout *f, long long now_us);
/* When corked output must be written (clock_mono_us()), 0 = none. */
long long fanout_cork_due(const struct fanout *f);
int fanout_busy(const struct fanout *f, long long now_us);
/* Write the presence lines that waited, once their time (the first
 * one's + FANOUT_LAZY_MS) has come: now_ms, from clock_mono_ms(). */
void fanout_flush_lazy(struct fanout *f, long long now_ms);
/* Free the storage of every empty backlog that took no output since the
 * previous call (the parent's 1 s tick): a burst keeps its buffers while
 * it lasts, a client idle for two ticks holds none. */
void fanout_trim_idle(struct fanout *f);
/* Bytes of storage slot's backlog holds (memory accounting, tests). */
size_t fanout_backlog_cap(const struct fanout *f, int slot);
/* When fanout_flush_lazy() has work: clock_mono_ms() time, 0 = none. */
long long fanout_next_lazy(const struct fanout *f);
/* Retry the children whose pipes were full. */
void fanout_flush_backlogs(struct fanout *f);

/* Graceful shutdown: a CLOSING slot takes no more lines. */
void fanout_stopping(struct fanout *f);
/* Shutdown: a CLOSING slot whose pipe is still full is told SHUTDOWN
 * through SIGTERM's si_value and its pipe is closed. */
void fanout_hang_up_backlogged(struct fanout *f);

enum fanout_state fanout_state(const struct fanout *f, int slot);
pid_t fanout_pid(const struct fanout *f, int slot);
/* Slots whose pipe refused output (retried on SIGIO or the tick). */
int fanout_nbacklog(const struct fanout *f);
/* Counters for /stats: lines queued, slow-consumer cuts. */
unsigned long long fanout_lines_out(const struct fanout *f);
unsigned long long fanout_slow_cuts(const struct fanout *f);

#endif
