/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * server.c - the server parent, the control tower.
 *
 * Owns the listening socket, the read end of the shared child-to-parent
 * pipe, one write end per child, and (through chat.c) all chat state.  It
 * must never block on a child: every pipe it writes is non-blocking, and
 * what a pipe cannot take waits in that child's bounded backlog; past
 * --max-backlog the child is cut off as a slow consumer, so nobody else
 * ever slows down.
 *
 * One loop, like PostgreSQL's ServerLoop: wait for signals with
 * sigtimedwait() (they are blocked, so none is ever lost between a check
 * and the wait), then drain every source until EAGAIN, because standard
 * signals coalesce.  Output produced while handling a batch of records is
 * collected per child and written with one write(2) and one SIGUSR2 each
 * by fanout.c, which owns the output side (queues, backlogs, cuts) and
 * reports the cuts it makes through a callback (srv_cut) once it has gone
 * through its dirty list; admit.c owns the door (per-address limits,
 * register deadlines).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "sys/clock.h"
#include "chat/chat.h"
#include "sys/failpoint.h"
#include "fed/fed.h"
#include "sys/ipc.h"
#include "sys/log.h"
#include "sys/memtrim.h"
#include "sys/net.h"
#include "lib/plural.h"
#include "server/admit.h"
#include "server/fanout.h"
#include "server/flow.h"
#include "server/names.h"
#include "server/server.h"
#include "server/spawner.h"
#include "lib/stats.h"

#define DOWN_PIPE_SIZE    (256 * 1024)  /* parent -> child pipe capacity */
#define UP_PIPE_SIZE      (1024 * 1024) /* shared child -> parent pipe */
#define IN_CHUNK          (64 * 1024)
#define IN_BUDGET         (1024 * 1024) /* per turn, then look at signals */
#define SHUTDOWN_MS       5000          /* graceful bound, then SIGKILL */
#define PARENT_TRIM_SLACK (256 * 1024)  /* freed heap kept, memtrim.c */
#define CORK_MIN_MESSAGES 2 /* a turn with as many: behind (flush_turn) */

struct reaped {
	pid_t pid;
	int status;
};

struct server {
	const struct server_opts *o;
	int lfd, up_r, up_w;
	pid_t pid;      /* ours, for every child's F_SETOWN and death check */
	size_t up_size; /* capacity of the shared pipe */
	int *freel, nfree;
	struct reaped *dead;
	int nchildren;
	struct fanout *fo;     /* the output side: pipes, queues, cuts */
	struct flow *flow;     /* pacing of rooms that are behind */
	struct admit_tab *adm; /* the door: per-address limits, deadlines */
	struct chat *chat;
	struct fed *fed;     /* federation (--redis), or NULL */
	struct spawner sp;   /* forks the session children (spawner.c) */
	struct memtrim trim; /* memtrim.c's state */
	unsigned long long trim_lines; /* lines out at the last tick */
	struct buf in;
	int stopping; /* graceful shutdown under way */
	long long deadline_ms;
	long long last_tick_ms;
	/* statistics (/stats and the periodic "stats" log line) */
	long long start_ms, last_stats_ms;
	unsigned long long messages_in, deliveries;
	unsigned long long turn_in; /* messages_in when the turn began */
	struct stats_hist fanout;   /* microseconds per batch, read to flush */
};

/* ---- output to children -------------------------------------------- */

/*
 * fanout.c cut slot off (its child is told why, its pipe closed): forget
 * it in the chat, after the fan-out's pass, so the PART lines this queues
 * go out on the same flush.
 */
static void
srv_cut(void *ctx, int slot, enum ipc_abort why, size_t backlog)
{
	struct server *s = ctx;

	log_warn("disconnect slot=%d nick=%s reason=%s backlog=%zu", slot,
	    chat_nick(s->chat, slot),
	    why == IPC_ABORT_SLOW_CONSUMER ? "slow-consumer" : "error",
	    backlog);
	chat_disconnect(s->chat, slot, "disconnected");
}

/*
 * Presence lines may wait a little (fanout.h, FANOUT_LAZY_MS): JOIN and
 * PART of others (a user's own room change is "OK JOIN").
 */
static int
srv_lazy(const char *line, size_t len)
{
	return (len > 5 && memcmp(line, "JOIN ", 5) == 0) ||
	    (len > 5 && memcmp(line, "PART ", 5) == 0);
}

/* flow.c's view of the slots: their room, nick and child. */
static const char *
srv_room(void *ctx, int slot)
{
	return chat_room(((struct server *)ctx)->chat, slot);
}

static const char *
srv_nick(void *ctx, int slot)
{
	return chat_nick(((struct server *)ctx)->chat, slot);
}

static pid_t
srv_pid(void *ctx, int slot)
{
	struct server *s = ctx;

	return fanout_state(s->fo, slot) == FANOUT_ACTIVE ?
	    fanout_pid(s->fo, slot) :
	    0;
}

/*
 * The chat's output: a line for a hot member paces the sender of the
 * record being handled, whatever the line (flow.c, flow_sent()).
 */
static void
srv_send(void *ctx, int slot, const char *line, size_t len)
{
	struct server *s = ctx;

	flow_sent(s->flow, slot);
	fanout_send(s->fo, slot, line, len);
}

static void
srv_close(void *ctx, int slot)
{
	fanout_close(((struct server *)ctx)->fo, slot);
}

static void
srv_message(void *ctx, int slot, int recipients)
{
	struct server *s = ctx;

	flow_spoke(s->flow, slot); /* paced if its room is behind */
	s->messages_in++;
	s->deliveries += (unsigned long long)recipients;
}

static size_t
srv_stats(void *ctx, struct stats_item *it, size_t max)
{
	struct server *s = ctx;
	const struct stats_item all[STATS_NITEMS] = {
		{ "uptime_s",
		    (unsigned long long)(clock_mono_ms() - s->start_ms) /
		        1000 },
		{ "clients", (unsigned long long)s->nchildren },
		{ "users", (unsigned long long)chat_user_count(s->chat) },
		{ "rooms", (unsigned long long)chat_room_count(s->chat) },
		{ "messages_in", s->messages_in },
		{ "lines_out", fanout_lines_out(s->fo) },
		{ "deliveries", s->deliveries },
		{ "slow_consumer_cuts", fanout_slow_cuts(s->fo) },
		{ "fanout_p50_us", stats_hist_quantile(&s->fanout, 0.50) },
		{ "fanout_p99_us", stats_hist_quantile(&s->fanout, 0.99) },
		{ "fanout_max_us", s->fanout.max },
		{ "refused_connections", admit_refused(s->adm) },
	};
	size_t n = max < STATS_NITEMS ? max : STATS_NITEMS;

	memcpy(it, all, n * sizeof(*it));
	if (s->fed != NULL && max > STATS_NITEMS)
		n += fed_stats(s->fed, it + n, max - STATS_NITEMS);
	return n;
}

static void
log_stats(struct server *s)
{
	struct stats_item it[STATS_MAX_ITEMS];
	char line[1024];
	size_t n = srv_stats(s, it, STATS_MAX_ITEMS);

	stats_format(line, sizeof(line), it, n);
	log_info("stats %s", line);
}

static void
srv_registered(void *ctx, int slot)
{
	struct server *s = ctx;

	admit_registered(s->adm, slot);
}

/* ---- input from children ------------------------------------------- */

/* A record of an active slot, now (flow.c may have held it). */
static void
dispatch(void *ctx, const struct ipc_hdr *h, const char *p)
{
	struct server *s = ctx;
	int slot = (int)h->slot;

	if (fanout_state(s->fo, slot) != FANOUT_ACTIVE)
		return;           /* said after /quit or a cut: ignored */
	flow_from(s->flow, slot); /* what it makes for others paces it */
	switch (h->type) {
	case IPC_LINE:
		chat_line(s->chat, slot, p, h->len);
		break;
	case IPC_REJECT:
		chat_reject(s->chat, slot, (enum proto_err)h->code);
		break;
	case IPC_EOF: /* code: errno of a failed read */
		if (h->code == ECONNRESET || h->code == EPIPE) /* peer left */
			log_info("disconnect slot=%d nick=%s reason=eof (%s)",
			    slot, chat_nick(s->chat, slot), strerror(h->code));
		else if (h->code)
			log_warn("disconnect slot=%d nick=%s reason=error (%s)",
			    slot, chat_nick(s->chat, slot), strerror(h->code));
		else
			log_info("disconnect slot=%d nick=%s reason=eof", slot,
			    chat_nick(s->chat, slot));
		chat_disconnect(s->chat, slot, "disconnected");
		fanout_close(s->fo, slot);
		break;
	}
	flow_from(s->flow, -1);
}

static void
handle_child_record(struct server *s, const struct ipc_hdr *h, const char *p)
{
	if (h->slot >= (uint32_t)s->o->max_clients ||
	    fanout_state(s->fo, (int)h->slot) != FANOUT_ACTIVE)
		return; /* said after /quit or a cut: ignored */
	if (!flow_hold(s->flow, (int)h->slot, h, p)) /* paused: later */
		dispatch(s, h, p);
}

static void
parse_records(struct server *s)
{
	struct ipc_hdr h;
	int r;

	while ((r = ipc_next(&s->in, IPC_SHARED_MAX, &h)) > 0) {
		handle_child_record(s, &h, buf_head(&s->in) + IPC_HDR);
		buf_consume(&s->in, ipc_size(&h));
	}
	if (r < 0) { /* no child writes that: nothing after it can be framed */
		log_error("corrupt record on the shared pipe (length %u), "
		          "%zu bytes dropped",
		    h.len, buf_used(&s->in));
		buf_reset(&s->in);
	}
}

/*
 * Read the shared pipe until it is empty, or for IN_BUDGET bytes: under a
 * flood the loop must come back to the signals (SIGTERM, SIGCHLD...).
 * Returns 1 if input is probably left.
 */
static int
drain_inbound(struct server *s, size_t budget)
{
	static const struct ipc_rd rd = { IN_CHUNK, IPC_RD_SHORT };
	enum ipc_read_end end;
	size_t total = 0, n;
	long long t0;

	while (total < budget) {
		n = 0;
		t0 =
		    clock_mono_us(); /* fan-out latency: read to end of flush */
		end = FAIL("forkchatd/inbound/read", EIO) ?
		    IPC_READ_ERROR :
		    ipc_read(s->up_r, &s->in, &rd, 1, &n); /* one read */
		if (n > 0) {
			parse_records(s);
			/*
			 * Flush per chunk: a flooding sender must not make the
			 * parent pile up output (and cut readers who keep up
			 * as slow consumers) before anything is written.  Only
			 * what is worth a child's wake-up goes now; the end of
			 * the turn writes the rest unless more input waits.
			 */
			fanout_flush_busy(s->fo, clock_mono_us());
			stats_hist_add(
			    &s->fanout, (uint64_t)(clock_mono_us() - t0));
			total += n;
		}
		if (end == IPC_READ_MORE)
			continue;
		if (end == IPC_READ_ERROR && errno == ENOMEM) {
			log_error("out of memory reading children");
			return 1;
		}
		if (end == IPC_READ_ERROR) /* retried next turn */
			log_error("read from children: %s", strerror(errno));
		return 0; /* drained; more brings SIGUSR1 */
	}
	return 1;
}

/* ---- accept and fork ------------------------------------------------ */

/* Say why and hang up; used when a session could not start. */
static void
hang_up(int fd, const char *line)
{
	(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/*
 * A connection whose session the spawner was asked for: the parent reads
 * the answers in order, while it prepares the next connections and the
 * spawner clones (a round trip per connection would hold the parent for
 * every clone: issue 17, the connect storm).
 */
struct pending {
	int slot, sock, down_r, down_w;
	char peer[48];
};

#define SPAWN_WINDOW 8 /* requests the spawner holds at most at once */

static const char busy[] = "BYE INTERNAL server cannot start a session now\n";

/*
 * Take a slot for sock, make its pipe and ask the spawner for its child.
 * The slot is counted at the door (admit_connected) at once, so that the
 * per-address limits see the requests not answered yet.  0, or -1 (the
 * client was told and hung up on; the slot is free again).
 */
static int
spawn_request(struct server *s, struct pending *ps, int sock, const char *peer,
    const struct admit *a)
{
	int slot = s->freel[--s->nfree], p[2];

	/* non-blocking both ends: the parent's never blocks, the child's is
	 * read until EAGAIN (no fcntl per connection for it) */
	if (FAIL("forkchatd/spawn/pipe", EMFILE) ||
	    pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pipe for %s: %s", peer, strerror(errno));
		goto fail;
	}
	(void)fcntl(p[1], F_SETPIPE_SZ, DOWN_PIPE_SIZE);
	/* the spawner forks (spawner.c); the failpoint makes it fail */
	if (spawner_request(&s->sp, slot, sock, p[0],
	        FAIL("forkchatd/spawn/fork", EAGAIN) ? EAGAIN : 0) < 0) {
		log_error("fork for %s: %s", peer, strerror(errno));
		close(p[0]);
		close(p[1]);
		goto fail;
	}
	ps->slot = slot;
	ps->sock = sock;
	ps->down_r = p[0];
	ps->down_w = p[1];
	snprintf(ps->peer, sizeof(ps->peer), "%s", peer);
	admit_connected(s->adm, slot, a, clock_mono_ms());
	return 0;
fail:
	hang_up(sock, busy);
	s->freel[s->nfree++] = slot;
	return -1;
}

/* The spawner's answer for ps: the session starts, or the client is told. */
static void
spawn_finish(struct server *s, struct pending *ps)
{
	pid_t pid = spawner_answer(&s->sp);
	int slot = ps->slot;

	close(ps->down_r);
	if (pid < 0) {
		log_error("fork for %s: %s", ps->peer, strerror(errno));
		close(ps->down_w);
		hang_up(ps->sock, busy);
		admit_released(s->adm, slot);
		s->freel[s->nfree++] = slot;
		return;
	}
	close(ps->sock);
	s->nchildren++;
	fanout_open(s->fo, slot, pid, ps->down_w);
	log_info("connect slot=%d pid=%d peer=%s", slot, (int)pid, ps->peer);
	admit_clock(s->adm, slot, clock_mono_ms()); /* from the log line */
	chat_connect(s->chat, slot);
	if (FAIL("forkchatd/spawn/fcntl", EBADF) ||
	    fcntl(ps->down_w, F_SETOWN, s->pid) < 0) {
		/* no SIGIO when its backlog drains: never keep such a pipe */
		log_error("slot=%d: fcntl: %s", slot, strerror(errno));
		fanout_abort(s->fo, slot, IPC_ABORT_ERROR);
	}
}

/*
 * Accept every pending connection (until EAGAIN).  The spawner is asked
 * for up to SPAWN_WINDOW sessions before the oldest answer is read; all
 * are answered before this returns.
 */
static void
accept_all(struct server *s)
{
	struct pending pend[SPAWN_WINDOW];
	struct sockaddr_storage ss;
	struct admit a;
	socklen_t sl;
	char peer[48];
	int fd, head = 0, n = 0;

	while (!s->stopping) {
		if (n == SPAWN_WINDOW) { /* full: the oldest first */
			spawn_finish(s, &pend[head]);
			head = (head + 1) % SPAWN_WINDOW;
			n--;
		}
		sl = sizeof(ss);
		fd = FAIL("forkchatd/accept/accept", EMFILE) ?
		    -1 :
		    accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno !=
			    EAGAIN) /* EMFILE...: retried on the tick */
				log_error("accept: %s", strerror(errno));
			break;
		}
		net_peer(&ss, peer, sizeof(peer));
		if (admit_check(s->adm, fd, &ss, peer, s->nfree, &a) == 0 &&
		    spawn_request(
		        s, &pend[(head + n) % SPAWN_WINDOW], fd, peer, &a) == 0)
			n++;
	}
	for (; n > 0; n--, head = (head + 1) % SPAWN_WINDOW)
		spawn_finish(s, &pend[head]);
}

/* ---- children ending ------------------------------------------------ */

static int
slot_of(struct server *s, pid_t pid)
{
	int i;

	for (i = 0; i < s->o->max_clients; i++)
		if (fanout_state(s->fo, i) != FANOUT_FREE &&
		    fanout_pid(s->fo, i) == pid)
			return i;
	return -1;
}

/* Slot's child ended; unasked: it was active (nobody asked it to go). */
static void
free_slot(struct server *s, int slot, int status, int unasked)
{
	flow_replay(s->flow, slot, 0, dispatch, s); /* kill_all: none left */
	if (unasked) {
		if (WIFSIGNALED(status))
			log_warn("disconnect slot=%d nick=%s "
			         "reason=killed-by-signal-%d",
			    slot, chat_nick(s->chat, slot), WTERMSIG(status));
		else
			log_warn(
			    "disconnect slot=%d nick=%s reason=exit-status-%d",
			    slot, chat_nick(s->chat, slot),
			    WEXITSTATUS(status));
		chat_disconnect(s->chat, slot, "disconnected");
	}
	admit_released(s->adm, slot);
	fanout_release(s->fo, slot);
	s->freel[s->nfree++] = slot;
	s->nchildren--;
}

/*
 * Reap every child that ended.  Records a child wrote before it exited are
 * in the pipe by now: read them before its slot can be reused.
 */
static void
reap(struct server *s)
{
	int n = 0, i, st, slot;
	pid_t pid;

	while (n < s->o->max_clients &&
	    !FAIL("forkchatd/reap/waitpid", ECHILD) &&
	    (pid = waitpid(-1, &st, WNOHANG)) > 0) {
		s->dead[n].pid = pid;
		s->dead[n++].status = st;
	}
	if (n == 0)
		return;
	/* all a dead child wrote is within one pipe's capacity from the head */
	drain_inbound(s, s->up_size + IN_CHUNK);
	for (i = 0; i < n; i++)
		if (spawner_reaped(&s->sp, s->dead[i].pid, s->dead[i].status) ||
		    names_reaped(s->dead[i].pid, s->dead[i].status) ||
		    fed_reaped(s->fed, s->dead[i].pid, s->dead[i].status))
			continue;
		else if ((slot = slot_of(s, s->dead[i].pid)) >= 0) {
			/* what it said while paused, its EOF too, comes first */
			flow_replay(s->flow, slot, 0, dispatch, s);
			free_slot(s, slot, s->dead[i].status,
			    fanout_state(s->fo, slot) == FANOUT_ACTIVE);
		}
}

/* ---- shutdown ------------------------------------------------------- */

static void
begin_shutdown(struct server *s, int sig)
{
	static const char bye[] = "BYE SHUTDOWN server is shutting down\n";
	int slot;

	log_info("shutdown begin (SIG%s), %d %s",
	    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", s->nchildren,
	    PLURAL(s->nchildren, "child", "children"));
	s->stopping = 1;
	fanout_stopping(s->fo);
	s->deadline_ms = clock_mono_ms() + SHUTDOWN_MS;
	close(s->lfd);
	s->lfd = -1;
	for (slot = 0; slot < s->o->max_clients; slot++)
		if (fanout_state(s->fo, slot) == FANOUT_ACTIVE) {
			log_info("disconnect slot=%d nick=%s reason=shutdown",
			    slot, chat_nick(s->chat, slot));
			fanout_send(s->fo, slot, bye, sizeof(bye) - 1);
			fanout_close(s->fo, slot);
		}
	/*
	 * Forget them all now (nicks released, rooms passed on, on other
	 * hubs too) so the figures at the end add up; what that says to the
	 * local members, who are all leaving, is dropped by fanout_send.
	 */
	for (slot = 0; slot < s->o->max_clients; slot++)
		chat_disconnect(s->chat, slot, "disconnected");
	fanout_flush(s->fo);
	fanout_hang_up_backlogged(s->fo);
}

/* SIGKILL whatever is left and wait for all of it. */
static void
kill_all(struct server *s)
{
	int slot, st;
	pid_t pid;

	for (slot = 0; slot < s->o->max_clients; slot++)
		if (fanout_state(s->fo, slot) != FANOUT_FREE)
			kill(fanout_pid(s->fo, slot), SIGKILL);
	for (slot = 0; slot < s->o->max_clients; slot++)
		if (fanout_state(s->fo, slot) != FANOUT_FREE) {
			pid = fanout_pid(s->fo, slot);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			if (s->stopping) /* its disconnect line is logged */
				log_warn("shutdown: slot=%d pid=%d killed",
				    slot, (int)pid);
			/* unless stopping: log it as unasked */
			free_slot(s, slot, st,
			    !s->stopping ||
			        fanout_state(s->fo, slot) == FANOUT_ACTIVE);
		}
}

/* ---- the loop ------------------------------------------------------- */

enum {
	EV_INPUT = 1 << 0,
	EV_IO = 1 << 1,
	EV_CHILD = 1 << 2,
	EV_HUP = 1 << 3,
	EV_STOP = 1 << 4,
	EV_QUIT = 1 << 5
};

/* Wait up to us microseconds for signals, then take every other one
 * already pending. */
static unsigned
wait_events(const sigset_t *set, long long us, int *stopsig)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	unsigned ev = 0;
	siginfo_t si;
	int sig;

	while ((sig = sigtimedwait(set, &si, &ts)) > 0) {
		switch (sig) {
		case SIGUSR1:
			ev |= EV_INPUT;
			break;
		case SIGIO:
			ev |= EV_IO;
			break;
		case SIGCHLD:
			ev |= EV_CHILD;
			break;
		case SIGHUP:
			ev |= EV_HUP;
			break;
		case SIGQUIT:
			ev |= EV_QUIT;
			*stopsig = sig;
			break;
		default:
			ev |= EV_STOP;
			*stopsig = sig;
			break;
		}
		ts.tv_sec = ts.tv_nsec = 0;
	}
	return ev;
}

/*
 * A child wrote to the shared pipe since the last wait (SIGUSR1 pending):
 * the next turn comes at once, so small output may wait for it
 * (fanout_flush_busy()).
 */
static int
input_waiting(void)
{
	sigset_t p;

	return sigpending(&p) == 0 && sigismember(&p, SIGUSR1) == 1;
}

/* How long the next wait may be, in microseconds (now: in ms). */
static long long
wait_budget(const struct server *s, long long now, int more)
{
	long long ms = 1000 - (now - s->last_tick_ms);
	long long due = admit_next_timeout(s->adm);
	long long lazy = fanout_next_lazy(s->fo);
	long long cork = fanout_cork_due(s->fo);

	if (more)
		return 0; /* input left over: just collect signals */
	if (fanout_nbacklog(s->fo) > 0 && ms > 20)
		ms = 20; /* in case a SIGIO was merged away */
	if (s->stopping && ms > 50)
		ms = 50;
	if (s->fed != NULL && ms > 200)
		ms = 200; /* presence updates, the bridge's backlog */
	if (due != 0 && ms > due - now)
		ms = due - now; /* a register deadline */
	if (lazy != 0 && ms > lazy - now)
		ms = lazy - now; /* presence lines that waited */
	if (ms < 0)
		ms = 0;
	if (cork != 0) { /* corked output: at most FANOUT_CORK_US */
		cork -= clock_mono_us();
		return cork < 0 ? 0 : cork < ms * 1000 ? cork : ms * 1000;
	}
	return ms * 1000;
}

/*
 * The end of a turn: write every child's output, unless more input waits,
 * or this turn handled several messages (the parent is behind) and the
 * fan-out wrote less than FANOUT_CORK_US ago (back to back): then small
 * output waits for the next turn's, up to FANOUT_CORK_US, so that a
 * child's wake-up carries more lines (fanout_flush_busy()).  Paced
 * traffic, a message a turn, goes out at once.
 */
static void
flush_turn(struct server *s, int more)
{
	long long now = clock_mono_us();
	unsigned long long msgs = s->messages_in - s->turn_in;

	s->turn_in = s->messages_in;
	if (more || (msgs >= CORK_MIN_MESSAGES && fanout_busy(s->fo, now)) ||
	    input_waiting()) /* the system call last */
		fanout_flush_busy(s->fo, now);
	else /* a large room's fan-out gives way to input that arrives */
		fanout_flush_until(s->fo, input_waiting);
}

static void
serve(struct server *s, const sigset_t *set)
{
	unsigned ev;
	long long now;
	int sig = 0, more = 0;

	for (;;) {
		now = clock_mono_ms();
		ev = wait_events(set, wait_budget(s, now, more), &sig);
		now = clock_mono_ms();
		more = drain_inbound(s, IN_BUDGET); /* first: a nick may wait */
		if (flow_replay(s->flow, -1, IN_BUDGET / 4, dispatch, s))
			more = 1; /* resumed senders' held records, a slice */
		if (s->fed != NULL) { /* a burst in slices, paced by backlogs */
			if (fed_drain(s->fed,
			        fanout_nbacklog(s->fo) > 0 ?
			            FED_SLICE_BACKLOGGED :
			            FED_SLICE) &&
			    fanout_nbacklog(s->fo) == 0)
				more = 1;
			fed_tick(s->fed, now);
		}
		if (now - s->last_tick_ms >= 1000) { /* periodic safety net */
			ev |= EV_IO | EV_CHILD;
			s->last_tick_ms = now;
			admit_tick(s->adm, now);
			fanout_trim_idle(s->fo);
			memtrim_idle(PARENT_TRIM_SLACK, &s->trim,
			    fanout_lines_out(s->fo) == s->trim_lines);
			s->trim_lines = fanout_lines_out(s->fo);
			names_tick(now);
		}
		if (admit_next_timeout(s->adm) != 0 &&
		    now >= admit_next_timeout(s->adm))
			admit_timeouts(s->adm, now);
		if (s->o->stats_interval > 0 &&
		    now - s->last_stats_ms >= s->o->stats_interval * 1000LL) {
			s->last_stats_ms = now;
			log_stats(s);
		}
		if (ev & EV_CHILD)
			reap(s);
		if (ev & EV_IO) {
			accept_all(s);
			fanout_flush_backlogs(s->fo);
		}
		if (ev & EV_HUP) {
			if (log_reopen() < 0)
				log_error("log reopen: %s", strerror(errno));
			else
				log_info("log reopened (SIGHUP)");
		}
		if ((ev & EV_STOP) && !s->stopping)
			begin_shutdown(s, sig);
		else if ((ev & EV_QUIT) || ((ev & EV_STOP) && s->stopping)) {
			log_warn("immediate shutdown (SIG%s)",
			    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
			kill_all(s);
		}
		fanout_flush_lazy(s->fo, clock_mono_ms()); /* its cuts: next */
		flush_turn(s, more);
		if (s->fed != NULL)
			fed_flush(s->fed);
		if (s->stopping && s->nchildren > 0 && now >= s->deadline_ms) {
			log_warn("shutdown: %d %s still running after %d "
			         "ms, killing them",
			    s->nchildren,
			    PLURAL(s->nchildren, "child", "children"),
			    SHUTDOWN_MS);
			kill_all(s);
		}
		if ((s->stopping || (ev & EV_QUIT)) && s->nchildren == 0)
			return;
	}
}

static void
unused_handler(int sig)
{
	(void)sig; /* never runs while blocked; just exists */
}

/* Federation is given the part of the command line it needs. */
static struct fed *
start_fed(const struct server_opts *o, struct chat *chat)
{
	struct fed_cfg c;

	memset(&c, 0, sizeof(c));
	snprintf(c.redis_host, sizeof(c.redis_host), "%s", o->redis_host);
	c.redis_port = o->redis_port;
	snprintf(c.hub_id, sizeof(c.hub_id), "%s", o->hub_id);
	c.port = o->port;
	c.max_clients = o->max_clients;
	c.nick_ttl = o->nick_ttl;
	c.redis_timeout_ms = o->redis_timeout_ms;
	return fed_start(&c, chat);
}

static int
setup(struct server *s, const struct server_opts *o, int lfd, sigset_t *set)
{
	static const int sigs[] = { SIGUSR1, SIGIO, SIGCHLD, SIGHUP, SIGTERM,
		SIGINT, SIGQUIT };
	struct chat_io io = { NULL, srv_send, srv_close };
	struct chat_hooks hooks = { srv_message, srv_stats, srv_registered, s };
	struct fanout_cfg fc = { o->max_clients, o->max_backlog, s, srv_cut,
		NULL, srv_lazy };
	struct flow_cfg flc = { o->max_clients, o->max_backlog, s, srv_room,
		srv_nick, srv_pid, NULL };
	struct chat_fed fh;
	struct chat_limits lim = { o->max_clients, o->max_rooms, o->max_line };
	struct sigaction sa;
	sigset_t block;
	int p[2], i;

	memset(s, 0, sizeof(*s));
	s->o = o;
	s->lfd = lfd;
	s->pid = getpid(); /* after daemonizing: the final pid */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = unused_handler;
	sigemptyset(set);
	sigemptyset(&block);
	for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++) {
		sigaddset(set, sigs[i]);
		/* SIGCHLD must not be SIG_IGN, or children reap themselves */
		if (FAIL("forkchatd/setup/sigaction", EINVAL) ||
		    sigaction(sigs[i], &sa, NULL) < 0)
			return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * SIGUSR2 and IPC_SIG_FLOW are blocked too, though the parent never
	 * waits for them: a child inherits the mask, so one sent right after
	 * fork() stays pending until the child waits for it instead of
	 * killing it.
	 */
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, IPC_SIG_FLOW);
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0 ||
	    sigprocmask(SIG_BLOCK, &block, NULL) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	s->up_r = p[0];
	s->up_w = p[1];
	(void)fcntl(s->up_r, F_SETPIPE_SZ, UP_PIPE_SIZE);
	/* every child's write raises SIGUSR1 here by itself: no kill() */
	if (fcntl(s->up_r, F_SETOWN, s->pid) < 0 ||
	    fcntl(s->up_r, F_SETSIG, SIGUSR1) < 0 ||
	    net_set_flags(s->up_r, O_ASYNC) < 0)
		return -1;
	i = fcntl(s->up_r, F_GETPIPE_SZ);
	s->up_size = i > 0 ? (size_t)i : UP_PIPE_SIZE;
	/* first, while the heap is small: the sessions start from its image */
	if (spawner_start(&s->sp, getpid(), s->up_w, o->max_line) < 0)
		return -1;
	name_set_backend(names_check); /* ICU in the name helper only */
	s->freel = calloc((size_t)o->max_clients, sizeof(int));
	s->dead = calloc((size_t)o->max_clients, sizeof(*s->dead));
	if ((s->flow = fc.flow = flow_new(&flc)) == NULL ||
	    (s->fo = fanout_new(&fc)) == NULL)
		return -1;
	io.ctx = s;
	s->chat = chat_new(&lim, &io);
	if (s->chat != NULL)
		s->adm = admit_new(o, s->chat, s->fo);
	/* children share up_w's description: non-blocking for all of them */
	if (!s->freel || !s->dead || !s->chat || !s->adm ||
	    net_set_flags(s->up_r, O_NONBLOCK) < 0 ||
	    net_set_flags(s->up_w, O_NONBLOCK) < 0 || net_async(lfd) < 0)
		return -1;
	chat_set_hooks(s->chat, &hooks);
	if (o->redis_host[0] != '\0') {
		if ((s->fed = start_fed(o, s->chat)) == NULL)
			return -1;
		fed_hooks(&fh);
		fh.ctx = s->fed;
		chat_set_fed(s->chat, &fh);
	}
	for (i = o->max_clients - 1; i >= 0; i--)
		s->freel[s->nfree++] = i; /* slot 0 is handed out first */
	s->last_tick_ms = s->start_ms = s->last_stats_ms = clock_mono_ms();
	stats_hist_reset(&s->fanout);
	return 0;
}

int
server_run(const struct server_opts *o, int lfd)
{
	struct server s;
	sigset_t set;

	if (setup(&s, o, lfd, &set) < 0) {
		log_error("startup: %s", strerror(errno));
		return 1;
	}
	accept_all(&s); /* connections queued before O_ASYNC */
	serve(&s, &set);
	log_stats(&s); /* first: it reads the fed's counters */
	fed_stop(s.fed);
	s.fed = NULL;
	spawner_stop(&s.sp);
	names_stop();
	log_info("shutdown complete");
	buf_free(&s.in);
	admit_free(s.adm);
	chat_free(s.chat);
	fanout_free(s.fo);
	flow_free(s.flow);
	free(s.freel);
	free(s.dead);
	close(s.up_r);
	close(s.up_w);
	return 0;
}
