/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fanout.c - the server parent's output side: per-child output queues,
 * the batched fan-out (one write and one SIGUSR2 per child per turn), the
 * bounded backlogs and the cuts.
 *
 * Must never block on a child: every pipe it writes is non-blocking, and
 * what a pipe cannot take waits in that child's backlog.  A backlog past
 * the high-water mark paces the room's senders (flow.c); a child that
 * stops draining it is cut off as a slow consumer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sys/failpoint.h"
#include "sys/log.h"
#include "sys/net.h"
#include "server/server_int.h"

/* A slot can rejoin the list while it is being flushed: let it grow. */
static int
grow_dirty(struct server *s)
{
	int *d = realloc(s->dirty, (size_t)s->dirtycap * 2 * sizeof(int));

	if (d == NULL) {
		log_error("out of memory for the dirty list");
		return -1;
	}
	s->dirty = d;
	s->dirtycap *= 2;
	return 0;
}

void
fanout_send(void *ctx, int slot, const char *line, size_t len)
{
	struct server *s = ctx;
	struct client *c = &s->cl[slot];

	if (c->state != CL_ACTIVE && c->state != CL_CLOSING)
		return;
	if (s->stopping && c->state == CL_CLOSING)
		return; /* after BYE SHUTDOWN: nothing more */
	if (len > 0)
		s->lines_out++;
	if (FAIL("forkchatd/fanout/append", ENOMEM) ||
	    buf_append(&c->out, line, len) < 0)
		c->failed = 1; /* never drop a line silently */
	if (!c->dirty) {
		if (s->ndirty == s->dirtycap && grow_dirty(s) < 0)
			return;
		c->dirty = 1;
		s->dirty[s->ndirty++] = slot;
	}
}

void
fanout_close(void *ctx, int slot)
{
	struct server *s = ctx;

	if (s->cl[slot].state == CL_ACTIVE)
		s->cl[slot].state = CL_CLOSING;
	fanout_send(ctx, slot, "", 0); /* flush (and close) on this turn */
}

static void
set_backlogged(struct server *s, struct client *c, int on)
{
	if (c->backlogged == on)
		return;
	c->backlogged = on;
	s->nbacklog += on ? 1 : -1;
	/* SIGIO when the child reads, only while something waits for it */
	if (c->fd >= 0)
		(void)(on ? net_set_flags(c->fd, O_ASYNC) :
		            net_clear_flags(c->fd, O_ASYNC));
}

void
fanout_close_down(struct server *s, struct client *c)
{
	flow_forget(s, (int)(c - s->cl));
	set_backlogged(s, c, 0);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->out);
}

/*
 * Cut a client off at once, telling its child why through SIGTERM's
 * si_value (its pipe may be full, so a BYE line could not get through).
 * Closing the pipe also ends the child if the signal is lost.
 */
void
fanout_abort(struct server *s, int slot, enum ipc_abort why)
{
	struct client *c = &s->cl[slot];
	union sigval v = { .sival_int = (int)why };

	if (why == IPC_ABORT_SLOW_CONSUMER)
		s->slow_cuts++;
	log_warn("disconnect slot=%d nick=%s reason=%s backlog=%zu", slot,
	    chat_nick(s->chat, slot),
	    why == IPC_ABORT_SLOW_CONSUMER ? "slow-consumer" : "error",
	    buf_used(&c->out));
	/* the reason first: the child looks for it when it sees pipe EOF */
	if (FAIL("forkchatd/abort/sigqueue", ESRCH) ||
	    sigqueue(c->pid, SIGTERM, v) < 0)
		log_error("slot=%d: sigqueue: %s", slot, strerror(errno));
	fanout_close_down(s, c);
	c->state = CL_ABORTED;
	c->failed = 0;
	chat_disconnect(s->chat, slot, "disconnected");
}

static void
flush_client(struct server *s, int slot)
{
	struct client *c = &s->cl[slot];
	enum flow_verdict v;
	size_t wrote = 0;
	ssize_t n;

	if (c->failed && c->state != CL_ABORTED) {
		fanout_abort(s, slot, IPC_ABORT_ERROR);
		return;
	}
	while (c->fd >= 0 && buf_used(&c->out) > 0) {
		n = FAIL("forkchatd/fanout/write", EIO) ?
		    -1 :
		    write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			wrote += (size_t)n;
		} else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			break;
		else if (errno ==
		    EPIPE) { /* the child is gone: reap frees it */
			fanout_close_down(s, c);
			return;
		} else {
			log_error("slot=%d: write to child: %s", slot,
			    strerror(errno));
			fanout_abort(s, slot, IPC_ABORT_ERROR);
			return;
		}
	}
	if (wrote && !c->wake) {
		c->wake = 1;
		s->woken[s->nwoken++] = slot;
	}
	/* behind, but reading: the room is paced (flow.c), not cut */
	if ((v = flow_backlog(s, slot, wrote)) != FLOW_OK) {
		log_warn("slot=%d nick=%s: slow consumer: %s", slot,
		    chat_nick(s->chat, slot), flow_why(v));
		fanout_abort(s, slot, IPC_ABORT_SLOW_CONSUMER);
	} else if (buf_used(&c->out) > 0)
		set_backlogged(s, c, 1);
	else {
		set_backlogged(s, c, 0);
		if (c->state == CL_CLOSING && c->fd >= 0) {
			fanout_close_down(
			    s, c); /* EOF tells the child to finish */
			kill(c->pid, SIGUSR2);
		}
	}
}

/*
 * Signal the children whose pipes got bytes, after all the writes (as the
 * floor benchmark does), so a woken child does not preempt the parent in
 * the middle of a fan-out.  A lost wake-up only delays: the child also
 * wakes on its own tick.
 */
static void
wake_children(struct server *s)
{
	struct client *c;
	int i;

	for (i = 0; i < s->nwoken; i++) {
		c = &s->cl[s->woken[i]];
		c->wake = 0;
		if (c->state == CL_FREE)
			continue;
		if (FAIL("forkchatd/fanout/kill", ESRCH) ||
		    kill(c->pid, SIGUSR2) < 0)
			log_error("slot=%d: kill SIGUSR2: %s", s->woken[i],
			    strerror(errno));
	}
	s->nwoken = 0;
}

/* One write and one SIGUSR2 per child that got output this turn. */
void
fanout_flush(struct server *s)
{
	int i, slot;

	for (i = 0; i < s->ndirty; i++) { /* may grow while we loop */
		slot = s->dirty[i];
		if (!s->cl[slot].dirty)
			continue;
		s->cl[slot].dirty = 0;
		flush_client(s, slot);
	}
	s->ndirty = 0;
	wake_children(s);
	flow_turn(s);
}

void
fanout_flush_backlogs(struct server *s)
{
	int slot;

	for (slot = 0; s->nbacklog > 0 && slot < s->o->max_clients; slot++)
		if (s->cl[slot].backlogged)
			flush_client(s, slot);
	wake_children(s);
	flow_turn(s);
}
