/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flow.c - the server parent's flow control, from the rooms' backlogs to
 * the senders' sockets.
 *
 * A member whose backlog (what its pipe refused, fanout.c) reaches the
 * high-water mark is "hot" until it drains to the low-water mark.  While a
 * room has a hot member, every client that sends a message into it is told
 * to stop reading its socket (IPC_SIG_FLOW, si_value 1), so TCP slows the
 * sender down, and the records it wrote before it stopped are held here,
 * in order, instead of reaching the room; once the room has no hot member
 * the sender is told to resume (si_value 0) and its held records are
 * replayed a slice per turn.  Readers that keep reading are therefore
 * never cut for a burst.  A hot member is cut as a slow consumer only when
 * it drains nothing for FLOW_STALL_MS (it stopped reading), when it holds
 * the room for FLOW_PACE_MS without getting down to the low mark (it reads,
 * but slower than (high - low) / FLOW_PACE_MS), or when its backlog passes
 * the memory bound (FLOW_HARD_FACTOR x --max-backlog) all the same.
 *
 * Owns, per slot, the hot and paused states, their clocks and the held
 * records.  Never writes a client socket (the children do) and never calls
 * into the chat but through struct flow_cfg.  A failed signal is retried
 * on a later turn.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "server/flow.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "sys/log.h"

struct fslot {
	int hot;              /* backlog passed high, not back to low yet */
	int paused;           /* its child was told to stop reading */
	int blocked;          /* paused and its room is behind: hold on */
	int spoke;            /* on the spoke list */
	int holding;          /* held is not empty */
	int target;           /* 1 + the hot slot its output went to, or 0 */
	long long hot_ms;     /* when it got hot */
	long long drained_ms; /* when its pipe last took bytes */
	struct buf held;      /* its records read while paused, in order */
};

struct flow {
	struct flow_cfg cfg;
	struct fslot *sl;
	size_t high, low, hard;
	int nhot, npaused, nholding;
	int changed;        /* a member got hot or cooled */
	int origin;         /* the slot whose record is handled, or -1 */
	int *spoke, nspoke; /* room senders since the last turn */
	const char **rooms; /* scratch: the rooms with a hot member */
	unsigned long long pauses, resumes;
	long long log_ms[2]; /* last "flow" log line of each kind */
};

struct flow *
flow_new(const struct flow_cfg *cfg)
{
	struct flow *f = calloc(1, sizeof(*f));
	size_t n = (size_t)cfg->max_clients;

	if (f == NULL)
		return NULL;
	f->cfg = *cfg;
	f->high = cfg->max_backlog / FLOW_HIGH_DIV;
	f->low = cfg->max_backlog / FLOW_LOW_DIV;
	f->hard = cfg->max_backlog * FLOW_HARD_FACTOR;
	f->log_ms[0] = f->log_ms[1] = -1000000;
	f->origin = -1;
	f->sl = calloc(n, sizeof(*f->sl));
	f->spoke = calloc(n, sizeof(int));
	f->rooms = calloc(n, sizeof(char *));
	if (!f->sl || !f->spoke || !f->rooms) {
		flow_free(f);
		return NULL;
	}
	return f;
}

void
flow_free(struct flow *f)
{
	int i;

	if (f == NULL)
		return;
	if (f->pauses > 0)
		log_info(
		    "flow pauses=%llu resumes=%llu", f->pauses, f->resumes);
	for (i = 0; f->sl != NULL && i < f->cfg.max_clients; i++)
		buf_free(&f->sl[i].held);
	free(f->sl);
	free(f->spoke);
	free((void *)f->rooms);
	free(f);
}

static long long
now_ms(const struct flow *f)
{
	return f->cfg.now_ms ? f->cfg.now_ms(f->cfg.ctx) : clock_mono_ms();
}

int
flow_nhot(const struct flow *f)
{
	return f->nhot;
}

int
flow_npaused(const struct flow *f)
{
	return f->npaused;
}

int
flow_is_paused(const struct flow *f, int slot)
{
	return f->sl[slot].paused;
}

int
flow_is_hot(const struct flow *f, int slot)
{
	return f->sl[slot].hot;
}

void
flow_spoke(struct flow *f, int slot)
{
	if (f == NULL || f->sl[slot].spoke)
		return;
	f->sl[slot].spoke = 1;
	f->spoke[f->nspoke++] = slot;
}

void
flow_from(struct flow *f, int slot)
{
	if (f != NULL)
		f->origin = slot;
}

/*
 * A line for slot `to` was queued while f->origin's record was handled:
 * if `to` is hot, the origin is paced too, whatever the line (a whisper,
 * the JOIN and PART lines of a join/leave storm): only room messages were,
 * and a whisper or presence flood cut readers that kept reading.
 */
void
flow_sent(struct flow *f, int to)
{
	int from;

	if (f == NULL || f->nhot == 0 || (from = f->origin) < 0 || from == to ||
	    !f->sl[to].hot)
		return;
	f->sl[from].target = to + 1;
	flow_spoke(f, from);
}

/* slot's output went to a member that is still hot. */
static int
waits(const struct flow *f, int slot)
{
	int t = f->sl[slot].target;

	return t > 0 && f->sl[t - 1].hot;
}

static void
set_hot(struct flow *f, struct fslot *c, int on, long long now)
{
	c->hot = on;
	c->hot_ms = now;
	f->nhot += on ? 1 : -1;
	f->changed = 1;
}

static enum flow_verdict
verdict(struct flow *f, int slot, size_t used, long long now)
{
	struct fslot *c = &f->sl[slot];
	enum flow_verdict v = FLOW_OK;
	long long since;

	if (used > f->hard)
		v = FLOW_TOO_BIG;
	else if (c->hot) {
		since = c->drained_ms > c->hot_ms ? c->drained_ms : c->hot_ms;
		if (now - since >= FLOW_STALL_MS)
			v = FLOW_STALLED;
		else if (now - c->hot_ms >= FLOW_PACE_MS)
			v = FLOW_TOO_SLOW;
	}
	if (v != FLOW_OK)
		log_warn("slot=%d nick=%s: slow consumer: %s (backlog=%zu, "
		         "hot for %lld ms, last drained %lld ms ago)",
		    slot, f->cfg.nick(f->cfg.ctx, slot),
		    v == FLOW_TOO_BIG     ? "over-memory-bound" :
		        v == FLOW_STALLED ? "stalled" :
		                            "too-slow",
		    used, c->hot ? now - c->hot_ms : 0LL, now - c->drained_ms);
	return v;
}

enum flow_verdict
flow_backlog(struct flow *f, int slot, size_t used, size_t wrote, int behind)
{
	struct fslot *c = &f->sl[slot];
	long long now;

	if (used == 0 && !c->hot)
		return FLOW_OK;
	now = now_ms(f);
	if (wrote > 0 || !behind) /* it read, or just fell behind */
		c->drained_ms = now;
	if (!c->hot && used >= f->high)
		set_hot(f, c, 1, now);
	else if (c->hot && used <= f->low)
		set_hot(f, c, 0, now);
	return verdict(f, slot, used, now);
}

void
flow_forget(struct flow *f, int slot)
{
	struct fslot *c = &f->sl[slot];

	if (c->hot)
		set_hot(f, c, 0, 0);
	if (c->paused) { /* its pipe is closed: it ends anyway */
		c->paused = 0;
		f->npaused--;
	}
	c->blocked = 0;
}

int
flow_hold(
    struct flow *f, int slot, const struct ipc_hdr *h, const char *payload)
{
	struct fslot *c;
	char *p;

	if (f == NULL) /* no flow control (unit tests of the server) */
		return 0;
	c = &f->sl[slot];
	if (!c->paused && !c->holding)
		return 0;
	if ((p = buf_reserve(&c->held, IPC_HDR + h->len)) == NULL) {
		/* out of order beats lost: but only without memory */
		log_error("slot=%d: no memory to hold a record", slot);
		return 0;
	}
	memcpy(p, h, IPC_HDR);
	memcpy(p + IPC_HDR, payload, h->len);
	buf_commit(&c->held, IPC_HDR + h->len);
	if (!c->holding) {
		c->holding = 1;
		f->nholding++;
	}
	return 1;
}

static void tell(struct flow *f, int slot, int on);

/* Up to *budget bytes of slot's held records to fn; 1 if some are left. */
static int
replay_slot(
    struct flow *f, int slot, size_t *budget, flow_handler *fn, void *ctx)
{
	struct fslot *c = &f->sl[slot];
	struct ipc_hdr h;
	size_t rec;

	while (buf_used(&c->held) >= IPC_HDR && *budget > 0) {
		memcpy(&h, buf_head(&c->held), IPC_HDR);
		rec = IPC_HDR + h.len;
		fn(ctx, &h, buf_head(&c->held) + IPC_HDR);
		buf_consume(&c->held, rec);
		*budget -= rec < *budget ? rec : *budget;
	}
	if (buf_used(&c->held) > 0)
		return 1;
	buf_free(&c->held); /* a burst's worth: give it back */
	if (c->holding) {
		c->holding = 0;
		f->nholding--;
	}
	return 0;
}

int
flow_replay(
    struct flow *f, int slot, size_t budget, flow_handler *fn, void *ctx)
{
	size_t all = (size_t)-1;
	int left = 0;

	if (f == NULL)
		return 0;
	if (slot >= 0)
		return f->sl[slot].holding ?
		    replay_slot(f, slot, &all, fn, ctx) :
		    0;
	for (slot = 0; f->nholding > 0 && slot < f->cfg.max_clients; slot++)
		if (f->sl[slot].holding && !f->sl[slot].blocked &&
		    !replay_slot(f, slot, &budget, fn, ctx)) {
			if (f->sl[slot].paused) /* all said: read it again */
				tell(f, slot, 0);
		} else if (f->sl[slot].holding && !f->sl[slot].blocked)
			left = 1;
	return left;
}

/* At most one line a second of each kind: bursts pause senders often. */
static void
log_flow(struct flow *f, int slot, int on)
{
	long long now = now_ms(f);
	const char *room = f->cfg.room(f->cfg.ctx, slot);

	if (now - f->log_ms[on] < 1000)
		return;
	f->log_ms[on] = now;
	log_info("flow %s slot=%d nick=%s room=%s pauses=%llu resumes=%llu",
	    on ? "pause" : "resume", slot, f->cfg.nick(f->cfg.ctx, slot),
	    room ? room : "-", f->pauses, f->resumes);
}

/* Tell slot's child to stop (on = 1) or resume reading its client. */
static void
tell(struct flow *f, int slot, int on)
{
	union sigval v = { .sival_int = on };
	pid_t pid = f->cfg.pid(f->cfg.ctx, slot);

	if (pid <= 0) /* no child, or it is being closed: nothing to say */
		return;
	if (FAIL("forkchatd/flow/sigqueue", EAGAIN) ||
	    sigqueue(pid, IPC_SIG_FLOW, v) < 0) {
		log_error("slot=%d: flow %s: sigqueue: %s", slot,
		    on ? "pause" : "resume", strerror(errno));
		f->changed = 1; /* try again next turn */
		return;
	}
	f->sl[slot].paused = on;
	f->sl[slot].blocked = on;
	if (!on)
		f->sl[slot].target = 0;
	f->npaused += on ? 1 : -1;
	if (on)
		f->pauses++;
	else
		f->resumes++;
	log_flow(f, slot, on);
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const char *const *)a;
	uintptr_t y = (uintptr_t) * (const char *const *)b;

	return x < y ? -1 : x > y;
}

/* The rooms that have a hot member, sorted. */
static int
hot_rooms(struct flow *f)
{
	const char *r;
	int slot, n = 0;

	for (slot = 0; slot < f->cfg.max_clients && n < f->nhot; slot++)
		if (f->sl[slot].hot &&
		    (r = f->cfg.room(f->cfg.ctx, slot)) != NULL)
			f->rooms[n++] = r;
	qsort((void *)f->rooms, (size_t)n, sizeof(char *), cmp_ptr);
	return n;
}

static int
room_is_hot(struct flow *f, int slot, int nrooms)
{
	const char *r = f->cfg.room(f->cfg.ctx, slot);

	return r != NULL && nrooms > 0 &&
	    bsearch(&r, (void *)f->rooms, (size_t)nrooms, sizeof(char *),
	        cmp_ptr) != NULL;
}

void
flow_turn(struct flow *f)
{
	int i, slot, nrooms, changed = f->changed;

	if (f->nhot == 0 && f->npaused == 0) { /* the usual case */
		for (i = 0; i < f->nspoke; i++)
			f->sl[f->spoke[i]].spoke = 0;
		f->nspoke = 0;
		f->changed = 0;
		return;
	}
	if (!changed && f->nspoke == 0)
		return;
	f->changed = 0;
	nrooms = f->nhot > 0 ? hot_rooms(f) : 0;
	/* a paused sender whose room caught up: its held records go
	 * first (flow_replay), then it is told to read again */
	for (slot = 0; changed && f->npaused > 0 && slot < f->cfg.max_clients;
	     slot++)
		if (f->sl[slot].paused &&
		    !(f->sl[slot].blocked =
		            room_is_hot(f, slot, nrooms) || waits(f, slot)) &&
		    !f->sl[slot].holding)
			tell(f, slot, 0);
	for (i = 0; i < f->nspoke; i++) {
		slot = f->spoke[i];
		f->sl[slot].spoke = 0;
		if (!room_is_hot(f, slot, nrooms) && !waits(f, slot)) {
			f->sl[slot].target = 0;
			continue;
		}
		if (!f->sl[slot].paused)
			tell(f, slot, 1);
		else /* its replay made the room fall behind again */
			f->sl[slot].blocked = 1;
	}
	f->nspoke = 0;
}
