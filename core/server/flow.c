/*
 * flow.c - the server parent's flow control, from the rooms' backlogs to
 * the senders' sockets.
 *
 * A member whose backlog (what its pipe refused, fanout.c) reaches the
 * high-water mark is "hot" until it drains to the low-water mark.  While a
 * room has a hot member, every client that sends a message into it is told
 * to stop reading its socket (IPC_SIG_FLOW, si_value 1), so TCP slows the
 * sender down; once the room has no hot member they are told to resume
 * (si_value 0).  Readers that keep reading are therefore never cut for a
 * burst.  A hot member is cut as a slow consumer only when it drains
 * nothing for FLOW_STALL_MS (it stopped reading), when it holds the room
 * for FLOW_PACE_MS without getting down to the low mark (it reads, but
 * slower than (high - low) / FLOW_PACE_MS), or when its backlog passes the
 * memory bound (FLOW_HARD_FACTOR x --max-backlog) all the same.
 *
 * Must never block or write a client socket: the children do that; the
 * parent only signals them.  A failed signal is retried on a later turn.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/flow.h"
#include "server/server_int.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "sys/ipc.h"
#include "sys/log.h"

int
flow_setup(struct server *s)
{
	struct flow *f = &s->flow;

	f->high = s->o->max_backlog / FLOW_HIGH_DIV;
	f->low = s->o->max_backlog / FLOW_LOW_DIV;
	f->hard = s->o->max_backlog * FLOW_HARD_FACTOR;
	f->stall_ms = FLOW_STALL_MS;
	f->log_ms[0] = f->log_ms[1] = -1000000;
	f->pace_ms = FLOW_PACE_MS;
	f->spoke = calloc((size_t)s->o->max_clients, sizeof(int));
	f->rooms = calloc((size_t)s->o->max_clients, sizeof(char *));
	return f->spoke && f->rooms ? 0 : -1;
}

void
flow_free(struct server *s)
{
	if (s->flow.pauses > 0)
		log_info("flow pauses=%llu resumes=%llu", s->flow.pauses,
		    s->flow.resumes);
	free(s->flow.spoke);
	free((void *)s->flow.rooms);
	s->flow.spoke = NULL;
	s->flow.rooms = NULL;
}

void
flow_spoke(struct server *s, int slot)
{
	struct flow_cl *fc = &s->cl[slot].flow;

	if (fc->spoke || s->flow.spoke == NULL)
		return;
	fc->spoke = 1;
	s->flow.spoke[s->flow.nspoke++] = slot;
}

static void
set_hot(struct server *s, struct flow_cl *fc, int on, long long now)
{
	fc->hot = on;
	fc->hot_ms = now;
	s->flow.nhot += on ? 1 : -1;
	s->flow.changed = 1;
}

enum flow_verdict
flow_backlog(struct server *s, int slot, size_t wrote)
{
	struct client *c = &s->cl[slot];
	struct flow_cl *fc = &c->flow;
	size_t used = buf_used(&c->out);
	long long now, since;

	if (used == 0 && !fc->hot)
		return FLOW_OK;
	now = clock_mono_ms();
	if (wrote > 0 || !c->backlogged) /* it read, or just fell behind */
		fc->drained_ms = now;
	if (!fc->hot && used >= s->flow.high)
		set_hot(s, fc, 1, now);
	else if (fc->hot && used <= s->flow.low)
		set_hot(s, fc, 0, now);
	if (used > s->flow.hard)
		return FLOW_TOO_BIG;
	if (!fc->hot)
		return FLOW_OK;
	since = fc->drained_ms > fc->hot_ms ? fc->drained_ms : fc->hot_ms;
	if (now - since >= s->flow.stall_ms)
		return FLOW_STALLED;
	if (now - fc->hot_ms >= s->flow.pace_ms)
		return FLOW_TOO_SLOW;
	return FLOW_OK;
}

const char *
flow_why(enum flow_verdict v)
{
	switch (v) {
	case FLOW_STALLED:
		return "stalled";
	case FLOW_TOO_SLOW:
		return "too-slow";
	case FLOW_TOO_BIG:
		return "over-memory-bound";
	default:
		return "none";
	}
}

void
flow_forget(struct server *s, int slot)
{
	struct flow_cl *fc = &s->cl[slot].flow;

	if (fc->hot)
		set_hot(s, fc, 0, 0);
	if (fc->paused) { /* its pipe is closed: it ends anyway */
		fc->paused = 0;
		s->flow.npaused--;
	}
}

int
flow_hold(
    struct server *s, int slot, const struct ipc_hdr *h, const char *payload)
{
	struct flow_cl *fc = &s->cl[slot].flow;
	char *p;

	if (!fc->paused && !fc->holding)
		return 0;
	if ((p = buf_reserve(&fc->held, IPC_HDR + h->len)) == NULL) {
		/* out of order beats lost: but only without memory */
		log_error("slot=%d: no memory to hold a record", slot);
		return 0;
	}
	memcpy(p, h, IPC_HDR);
	memcpy(p + IPC_HDR, payload, h->len);
	buf_commit(&fc->held, IPC_HDR + h->len);
	if (!fc->holding) {
		fc->holding = 1;
		s->flow.nholding++;
	}
	return 1;
}

/* Up to budget bytes of slot's held records to fn; 1 if some are left. */
static int
replay_slot(struct server *s, int slot, size_t *budget, flow_handler *fn)
{
	struct flow_cl *fc = &s->cl[slot].flow;
	struct ipc_hdr h;
	size_t rec;

	while (buf_used(&fc->held) >= IPC_HDR && *budget > 0) {
		memcpy(&h, buf_head(&fc->held), IPC_HDR);
		rec = IPC_HDR + h.len;
		fn(s, &h, buf_head(&fc->held) + IPC_HDR);
		buf_consume(&fc->held, rec);
		*budget -= rec < *budget ? rec : *budget;
	}
	if (buf_used(&fc->held) > 0)
		return 1;
	buf_free(&fc->held); /* a burst's worth: give it back */
	if (fc->holding) {
		fc->holding = 0;
		s->flow.nholding--;
	}
	return 0;
}

int
flow_replay(struct server *s, int slot, size_t budget, flow_handler *fn)
{
	size_t all = (size_t)-1;
	int left = 0;

	if (slot >= 0)
		return s->cl[slot].flow.holding ?
		    replay_slot(s, slot, &all, fn) :
		    0;
	for (slot = 0; s->flow.nholding > 0 && slot < s->o->max_clients; slot++)
		if (s->cl[slot].flow.holding && !s->cl[slot].flow.paused)
			left |= replay_slot(s, slot, &budget, fn);
	return left;
}

/* At most one line a second of each kind: bursts pause senders often. */
static void
log_flow(struct server *s, int slot, int on)
{
	long long now = clock_mono_ms();

	if (now - s->flow.log_ms[on] < 1000)
		return;
	s->flow.log_ms[on] = now;
	log_info("flow %s slot=%d nick=%s room=%s pauses=%llu resumes=%llu",
	    on ? "pause" : "resume", slot, chat_nick(s->chat, slot),
	    chat_room(s->chat, slot) ? chat_room(s->chat, slot) : "-",
	    s->flow.pauses, s->flow.resumes);
}

/* Tell slot's child to stop (on = 1) or resume reading its client. */
static void
tell(struct server *s, int slot, int on)
{
	struct client *c = &s->cl[slot];
	union sigval v = { .sival_int = on };

	if (FAIL("forkchatd/flow/sigqueue", EAGAIN) ||
	    sigqueue(c->pid, IPC_SIG_FLOW, v) < 0) {
		log_error("slot=%d: flow %s: sigqueue: %s", slot,
		    on ? "pause" : "resume", strerror(errno));
		s->flow.changed = 1; /* try again next turn */
		return;
	}
	c->flow.paused = on;
	s->flow.npaused += on ? 1 : -1;
	if (on)
		s->flow.pauses++;
	else
		s->flow.resumes++;
	log_flow(s, slot, on);
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const char *const *)a;
	uintptr_t y = (uintptr_t) * (const char *const *)b;

	return x < y ? -1 : x > y;
}

/* The rooms that have a hot member, sorted (room names are unique
 * pointers while the rooms live). */
static int
hot_rooms(struct server *s)
{
	const char *r;
	int slot, n = 0;

	for (slot = 0; slot < s->o->max_clients && n < s->flow.nhot; slot++)
		if (s->cl[slot].flow.hot &&
		    (r = chat_room(s->chat, slot)) != NULL)
			s->flow.rooms[n++] = r;
	qsort((void *)s->flow.rooms, (size_t)n, sizeof(char *), cmp_ptr);
	return n;
}

static int
room_is_hot(struct server *s, int slot, int nrooms)
{
	const char *r = chat_room(s->chat, slot);

	return r != NULL && nrooms > 0 &&
	    bsearch(&r, (void *)s->flow.rooms, (size_t)nrooms, sizeof(char *),
	        cmp_ptr) != NULL;
}

void
flow_turn(struct server *s)
{
	struct flow *f = &s->flow;
	int i, slot, nrooms, changed = f->changed;

	if (f->nhot == 0 && f->npaused == 0) { /* the usual case */
		for (i = 0; i < f->nspoke; i++)
			s->cl[f->spoke[i]].flow.spoke = 0;
		f->nspoke = 0;
		f->changed = 0;
		return;
	}
	if (!changed && f->nspoke == 0)
		return;
	f->changed = 0;
	nrooms = f->nhot > 0 ? hot_rooms(s) : 0;
	for (slot = 0; changed && f->npaused > 0 && slot < s->o->max_clients;
	     slot++)
		if (s->cl[slot].flow.paused && !room_is_hot(s, slot, nrooms))
			tell(s, slot, 0);
	for (i = 0; i < f->nspoke; i++) {
		slot = f->spoke[i];
		s->cl[slot].flow.spoke = 0;
		if (s->cl[slot].state == CL_ACTIVE && s->cl[slot].fd >= 0 &&
		    !s->cl[slot].flow.paused && room_is_hot(s, slot, nrooms))
			tell(s, slot, 1);
	}
	f->nspoke = 0;
}
