/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fanout.c - the server parent's output side: per-child output queues,
 * the batched fan-out (one write per child per turn; the write raises the
 * child's SIGUSR2 itself, see session.c), the bounded backlogs and the
 * cuts.
 *
 * Must never block on a child: every pipe it writes is non-blocking, and
 * what a pipe cannot take waits in that child's backlog.  With flow
 * control (flow.c) a backlog past the high-water mark paces the room's
 * senders, and a child that stops draining it is cut off as a slow
 * consumer; without it, a backlog past --max-backlog is cut at once.
 *
 * Owns, per slot, the child's pid, the write end of its pipe, its output
 * queue and its state (fanout.h), and the dirty and cut lists.  It
 * never calls into the chat: the cuts it makes are reported through
 * cfg.cut after each pass over the dirty list.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "server/fanout.h"
#include "server/flow.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "sys/log.h"
#include "sys/net.h"

struct slot {
	pid_t pid;
	int fd; /* write end of the child's pipe, or -1 */
	enum fanout_state state;
	int dirty;      /* on the dirty list */
	int backlogged; /* out holds what the pipe refused */
	int failed;     /* output was lost (no memory): cut it */
	int lazy;       /* on the lazy list (presence lines may wait) */
	int used;       /* out took bytes since the last tick */
	struct buf out;
};

struct cut {
	int slot;
	enum ipc_abort why;
	size_t backlog;
};

struct fanout {
	struct fanout_cfg cfg;
	struct slot *sl;
	int *dirty, ndirty, dirtycap;
	int *lazyl, nlazy;  /* slots whose presence lines wait */
	long long lazy_due; /* when they go out (ms), 0 = none wait */
	struct cut *cuts;   /* to report after the pass (cfg.cut) */
	int ncuts;
	int nbacklog;
	int stopping;
	long long corked_us;  /* when output was first left corked, 0 = none */
	long long flushed_us; /* when the last flush that wrote ended */
	int wrote;            /* this flush wrote to a pipe */
	unsigned long long lines_out, slow_cuts;
};

struct fanout *
fanout_new(const struct fanout_cfg *cfg)
{
	struct fanout *f = calloc(1, sizeof(*f));
	size_t n = (size_t)cfg->max_clients;
	int i;

	if (f == NULL)
		return NULL;
	f->cfg = *cfg;
	f->dirtycap = cfg->max_clients * 2;
	f->sl = calloc(n, sizeof(*f->sl));
	f->dirty = calloc((size_t)f->dirtycap, sizeof(int));
	f->cuts = calloc(n, sizeof(*f->cuts));
	f->lazyl = calloc(n, sizeof(int));
	if (!f->sl || !f->dirty || !f->cuts || !f->lazyl) {
		fanout_free(f);
		return NULL;
	}
	for (i = 0; i < cfg->max_clients; i++)
		f->sl[i].fd = -1;
	return f;
}

void
fanout_free(struct fanout *f)
{
	int i;

	if (f == NULL)
		return;
	for (i = 0; f->sl != NULL && i < f->cfg.max_clients; i++) {
		if (f->sl[i].fd >= 0)
			close(f->sl[i].fd);
		buf_free(&f->sl[i].out);
	}
	free(f->sl);
	free(f->dirty);
	free(f->cuts);
	free(f->lazyl);
	free(f);
}

void
fanout_open(struct fanout *f, int slot, pid_t pid, int fd)
{
	struct slot *c = &f->sl[slot];

	c->pid = pid;
	c->fd = fd;
	c->state = FANOUT_ACTIVE;
	/* buf.c's keep: a burst reuses its backlog from turn to turn (a
	 * 1 KiB keep freed and regrew it every turn: 3x fewer deliveries/s at
	 * N=100); fanout_trim_idle() gives it back once the client is idle */
}

/*
 * Only a backlog that took nothing for a whole tick is idle: freeing every
 * empty one on each tick, in the middle of a burst, made all N slots
 * regrow theirs from a page (malloc, copies, fresh pages: 40 % of the
 * parent's CPU back to back at N=1000, issue 17).
 */
void
fanout_trim_idle(struct fanout *f)
{
	struct slot *c;
	int i;

	for (i = 0; i < f->cfg.max_clients; i++) {
		c = &f->sl[i];
		if (c->used)
			c->used = 0;
		else if (c->out.cap > 0 && buf_used(&c->out) == 0)
			buf_free(&c->out);
	}
}

size_t
fanout_backlog_cap(const struct fanout *f, int slot)
{
	return f->sl[slot].out.cap;
}

enum fanout_state
fanout_state(const struct fanout *f, int slot)
{
	return f->sl[slot].state;
}

pid_t
fanout_pid(const struct fanout *f, int slot)
{
	return f->sl[slot].pid;
}

int
fanout_nbacklog(const struct fanout *f)
{
	return f->nbacklog;
}

unsigned long long
fanout_lines_out(const struct fanout *f)
{
	return f->lines_out;
}

unsigned long long
fanout_slow_cuts(const struct fanout *f)
{
	return f->slow_cuts;
}

void
fanout_stopping(struct fanout *f)
{
	f->stopping = 1;
}

/* A slot can rejoin the list while it is being flushed: let it grow. */
static int
grow_dirty(struct fanout *f)
{
	int *d = realloc(f->dirty, (size_t)f->dirtycap * 2 * sizeof(int));

	if (d == NULL) {
		log_error("out of memory for the dirty list");
		return -1;
	}
	f->dirty = d;
	f->dirtycap *= 2;
	return 0;
}

void
fanout_send(void *ctx, int slot, const char *line, size_t len)
{
	struct fanout *f = ctx;
	struct slot *c = &f->sl[slot];

	if (c->state != FANOUT_ACTIVE && c->state != FANOUT_CLOSING)
		return;
	if (f->stopping && c->state == FANOUT_CLOSING)
		return; /* after BYE SHUTDOWN: nothing more */
	if (len > 0) {
		f->lines_out++;
		c->used = 1;
	}
	if (FAIL("forkchatd/fanout/append", ENOMEM) ||
	    buf_put(&c->out, line, len) < 0)
		c->failed = 1; /* never drop a line silently */
	/* presence lines wait, but not past a cork's worth: a join/leave
	 * storm must reach the backlog checks (flow.c) like any output */
	if (!c->dirty && f->cfg.lazy != NULL && len > 0 &&
	    buf_used(&c->out) < FANOUT_CORK_BYTES && f->cfg.lazy(line, len)) {
		/* a slot is on the list once: lazy stays set until it is read */
		if (!c->lazy) {
			c->lazy = 1;
			f->lazyl[f->nlazy++] = slot;
		}
		if (f->lazy_due == 0)
			f->lazy_due = clock_mono_ms() + FANOUT_LAZY_MS;
		return;
	}
	if (!c->dirty) {
		if (f->ndirty == f->dirtycap && grow_dirty(f) < 0)
			return;
		c->dirty = 1;
		f->dirty[f->ndirty++] = slot;
	}
}

void
fanout_close(void *ctx, int slot)
{
	struct fanout *f = ctx;

	if (f->sl[slot].state == FANOUT_ACTIVE)
		f->sl[slot].state = FANOUT_CLOSING;
	fanout_send(ctx, slot, "", 0); /* flush (and close) on this turn */
}

static void
set_backlogged(struct fanout *f, struct slot *c, int on)
{
	if (c->backlogged == on)
		return;
	c->backlogged = on;
	f->nbacklog += on ? 1 : -1;
	/* SIGIO when the child reads, only while something waits for it */
	if (c->fd >= 0)
		(void)(on ? net_set_flags(c->fd, O_ASYNC) :
		            net_clear_flags(c->fd, O_ASYNC));
}

/* Close slot's pipe and drop its backlog. */
static void
close_down(struct fanout *f, struct slot *c)
{
	if (f->cfg.flow != NULL)
		flow_forget(f->cfg.flow, (int)(c - f->sl));
	set_backlogged(f, c, 0);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->out);
}

/*
 * A signal to a child failed (errno).  ESRCH is expected, not an error:
 * the child is gone, and the pipe just closed says all the signal would
 * have (a lost signal only delays: the child ticks); its exit is logged
 * where it is reaped.  Anything else (EPERM, EINVAL) means a wrong pid
 * or a broken environment: logged as an error.
 */
static void
signal_failed(int slot, const char *what)
{
	if (errno != ESRCH)
		log_error("slot=%d: %s: %s", slot, what, strerror(errno));
}

void
fanout_release(struct fanout *f, int slot)
{
	struct slot *c = &f->sl[slot];

	close_down(f, c);
	buf_free(&c->out);
	c->state = FANOUT_FREE;
	c->dirty = 0;
	c->used = 0;
	c->pid = 0;
}

/*
 * Cut a client off at once, telling its child why through SIGTERM's
 * si_value (its pipe may be full, so a BYE line could not get through).
 * Closing the pipe also ends the child if the signal is lost.  The server
 * hears of it (cfg.cut) after the pass over the dirty list.
 */
void
fanout_abort(struct fanout *f, int slot, enum ipc_abort why)
{
	struct slot *c = &f->sl[slot];
	union sigval v = { .sival_int = (int)why };

	if (why == IPC_ABORT_SLOW_CONSUMER)
		f->slow_cuts++;
	if (f->ncuts < f->cfg.max_clients) { /* once per slot: ABORTED */
		f->cuts[f->ncuts].slot = slot;
		f->cuts[f->ncuts].why = why;
		f->cuts[f->ncuts++].backlog = buf_used(&c->out);
	}
	/* the reason first: the child looks for it when it sees pipe EOF */
	if (FAIL("forkchatd/abort/sigqueue", ESRCH) ||
	    sigqueue(c->pid, SIGTERM, v) < 0)
		signal_failed(slot, "sigqueue SIGTERM");
	close_down(f, c);
	c->state = FANOUT_ABORTED;
	c->failed = 0;
}

/* Tell the server about the cuts (each slot is cut once: ABORTED). */
static void
report_cuts(struct fanout *f)
{
	struct cut k;
	int i;

	for (i = 0; i < f->ncuts; i++) {
		k = f->cuts[i];
		if (f->sl[k.slot].state == FANOUT_ABORTED && f->cfg.cut)
			f->cfg.cut(f->cfg.ctx, k.slot, k.why, k.backlog);
	}
	f->ncuts = 0;
}

static void
flush_client(struct fanout *f, int slot)
{
	struct slot *c = &f->sl[slot];
	size_t wrote = 0; /* the child drained its pipe: flow.c */
	ssize_t n;

	if (c->failed && c->state != FANOUT_ABORTED) {
		fanout_abort(f, slot, IPC_ABORT_ERROR);
		return;
	}
	while (c->fd >= 0 && buf_used(&c->out) > 0) {
		n = FAIL("forkchatd/fanout/write", EIO) ?
		    -1 :
		    write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			wrote += (size_t)n;
			f->wrote = 1;
		} else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			break;
		else if (errno ==
		    EPIPE) { /* the child is gone: reap frees it */
			close_down(f, c);
			return;
		} else {
			log_error("slot=%d: write to child: %s", slot,
			    strerror(errno));
			fanout_abort(f, slot, IPC_ABORT_ERROR);
			return;
		}
	}
	/* behind, but reading: the room is paced (flow.c), not cut */
	if (f->cfg.flow != NULL &&
	    flow_backlog(f->cfg.flow, slot, buf_used(&c->out), wrote,
	        c->backlogged) != FLOW_OK)
		fanout_abort(f, slot, IPC_ABORT_SLOW_CONSUMER);
	else if (buf_used(&c->out) > 0) {
		set_backlogged(f, c, 1);
		if (f->cfg.flow == NULL &&
		    buf_used(&c->out) > f->cfg.max_backlog)
			fanout_abort(f, slot, IPC_ABORT_SLOW_CONSUMER);
	} else {
		set_backlogged(f, c, 0);
		if (c->state == FANOUT_CLOSING && c->fd >= 0) {
			close_down(f, c); /* EOF tells the child to finish */
			/* a lost one only delays: the child ticks */
			if (FAIL("forkchatd/fanout/kill", ESRCH) ||
			    kill(c->pid, SIGUSR1) < 0)
				signal_failed(slot, "kill SIGUSR1");
		}
	}
}

/*
 * The end of a flush that left `left` slots corked (now_us: its end): when
 * the cork began, when a write last ended (fanout_busy), the cuts not yet
 * reported, and the flow control's turn.
 */
static void
end_flush(struct fanout *f, int left, long long now_us)
{
	if (left == 0)
		f->corked_us = 0;
	else if (f->corked_us == 0)
		f->corked_us = now_us;
	if (f->wrote) {
		f->wrote = 0;
		f->flushed_us = now_us;
	}
	report_cuts(f);
	if (f->cfg.flow != NULL)
		flow_turn(f->cfg.flow);
}

/* Keep the dirty list's entries from `from` on that are still dirty, once
 * each (a released and reused slot can be listed twice); returns how many. */
static int
keep_dirty(struct fanout *f, int from)
{
	int i, k = 0, slot;

	for (i = from; i < f->ndirty; i++)
		if (f->sl[slot = f->dirty[i]].dirty == 1) {
			f->sl[slot].dirty = 2;
			f->dirty[k++] = slot;
		}
	f->ndirty = k;
	for (i = 0; i < k; i++)
		f->sl[f->dirty[i]].dirty = 1;
	return k;
}

/*
 * One write per child that got output this turn; each write raises that
 * child's SIGUSR2 (O_ASYNC + F_SETSIG on its read end, session.c), so the
 * parent makes no kill() per delivery, and a child never misses bytes
 * written after its last read.  The
 * cuts are reported after each pass; what the server queues then (PART
 * lines) makes another pass, until nothing is dirty.  With input (not
 * NULL), every FANOUT_PEEK_SLOTS writes it asks whether more input waits;
 * if so, it stops there and leaves the rest corked (fanout.h).
 */
void
fanout_flush_until(struct fanout *f, int (*input)(void))
{
	int i, slot, n = 0;

	do {
		for (i = 0; i < f->ndirty; i++) { /* may grow while we loop */
			slot = f->dirty[i];
			if (!f->sl[slot].dirty)
				continue;
			f->sl[slot].dirty = 0;
			flush_client(f, slot);
			if (input != NULL && ++n % FANOUT_PEEK_SLOTS == 0 &&
			    input()) {
				end_flush(
				    f, keep_dirty(f, i + 1), clock_mono_us());
				return;
			}
		}
		f->ndirty = 0;
		report_cuts(f);
	} while (f->ndirty > 0);
	end_flush(f, 0, clock_mono_us());
}

void
fanout_flush(struct fanout *f)
{
	fanout_flush_until(f, NULL);
}

/*
 * The parent is busy: more input waits (server.c).  Write only the slots
 * whose output is worth a wake-up of their child on its own (at least
 * FANOUT_CORK_BYTES, FANOUT_CORK_FEW_BYTES when at most FANOUT_CORK_FEW
 * slots are dirty, fanout.h; or closing, failed or behind), and leave the rest
 * "corked" on the dirty list for the next flush, at most FANOUT_CORK_US
 * after the first was left.  Each write wakes a child, whose turn (signal,
 * read, send to its client, the receiver's wake-up) costs the same for one
 * line as for fifty: writing every turn's few lines made 2x the child
 * wake-ups of the floor per delivery back to back (issue 17, goal 4).
 * A slot left corked stays dirty; a kept slot is marked 2 for the pass,
 * so that a second entry of it in the list is dropped.
 */
void
fanout_flush_busy(struct fanout *f, long long now_us)
{
	size_t big = f->ndirty <= FANOUT_CORK_FEW ? FANOUT_CORK_FEW_BYTES :
	                                            FANOUT_CORK_BYTES;
	int i, k = 0, slot;
	struct slot *c;

	if (f->corked_us != 0 && now_us - f->corked_us >= FANOUT_CORK_US) {
		fanout_flush(f);
		return;
	}
	for (i = 0; i < f->ndirty; i++) { /* may grow while we loop */
		c = &f->sl[slot = f->dirty[i]];
		if (c->dirty != 1)
			continue; /* flushed or freed since, or kept already */
		if (c->state == FANOUT_ACTIVE && !c->failed && !c->backlogged &&
		    buf_used(&c->out) < big) {
			c->dirty = 2;
			f->dirty[k++] = slot;
			continue;
		}
		c->dirty = 0;
		flush_client(f, slot);
	}
	f->ndirty = k;
	for (i = 0; i < k; i++)
		f->sl[f->dirty[i]].dirty = 1;
	end_flush(f, k, now_us); /* its cuts' PART lines: the next flush */
}

long long
fanout_cork_due(const struct fanout *f)
{
	return f->corked_us != 0 ? f->corked_us + FANOUT_CORK_US : 0;
}

int
fanout_busy(const struct fanout *f, long long now_us)
{
	return f->flushed_us != 0 && now_us - f->flushed_us < FANOUT_CORK_US;
}

void
fanout_flush_lazy(struct fanout *f, long long now_ms)
{
	struct slot *c;
	int i;

	if (f->lazy_due == 0 || now_ms < f->lazy_due)
		return;
	for (i = 0; i < f->nlazy; i++) {
		c = &f->sl[f->lazyl[i]];
		c->lazy = 0;
		/* what a write since took along, or a cut dropped, is gone */
		if (!c->dirty && c->fd >= 0 && buf_used(&c->out) > 0 &&
		    (c->state == FANOUT_ACTIVE || c->state == FANOUT_CLOSING))
			flush_client(f, f->lazyl[i]);
	}
	f->nlazy = 0;
	f->lazy_due = 0;
	report_cuts(f);
	if (f->cfg.flow != NULL)
		flow_turn(f->cfg.flow);
}

long long
fanout_next_lazy(const struct fanout *f)
{
	return f->lazy_due;
}

void
fanout_flush_backlogs(struct fanout *f)
{
	int slot;

	for (slot = 0; f->nbacklog > 0 && slot < f->cfg.max_clients; slot++)
		if (f->sl[slot].backlogged)
			flush_client(f, slot);
	report_cuts(f);
	if (f->cfg.flow != NULL)
		flow_turn(f->cfg.flow);
}

void
fanout_hang_up_backlogged(struct fanout *f)
{
	union sigval v = { .sival_int = IPC_ABORT_SHUTDOWN };
	struct slot *c;
	int slot;

	for (slot = 0; slot < f->cfg.max_clients; slot++) {
		c = &f->sl[slot];
		if (c->state == FANOUT_CLOSING && c->backlogged) {
			(void)sigqueue(c->pid, SIGTERM, v);
			close_down(f, c); /* pipe full: say it */
		}
	}
}
