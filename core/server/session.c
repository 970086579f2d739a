/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.c - the server child: relays one client.
 *
 * Owns the client's socket, the read end of its own pipe from the parent
 * and the write end of the shared pipe to the parent.  Holds no chat state:
 * it frames and validates what the client sends, forwards it as records,
 * and copies whatever the parent sends straight to the socket.  All
 * decisions are the parent's.
 *
 * It waits only in sigwaitinfo()/sigtimedwait() on SIGIO (socket readable
 * or writable), SIGUSR2 (the parent wrote: raised by the write itself),
 * SIGUSR1 (the parent closed the pipe), IPC_SIG_FLOW (the parent says pause
 * or resume reading the client) and SIGTERM (the parent says stop);
 * after each wake-up it drains every source until EAGAIN, because one
 * signal may stand for many events.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "sys/failpoint.h"
#include "sys/proc.h"
#include "sys/ipc.h"
#include "lib/proto.h"
#include "server/session.h"
#include "sys/memtrim.h"

#define READ_CHUNK         (64 * 1024)
#define READ_MIN           (16 * 1024) /* least room to read the pipe into */
#define READ_FIRST         (2 * 1024)  /* ... into an empty pending buffer */
#define READ_BUDGET        (256 * 1024) /* socket bytes per turn, then serve output */
#define PENDING_CAP        (256 * 1024) /* stop reading the pipe past this */
#define FLUSH_SECS         2 /* to deliver the last bytes at the end */
#define TICK_SECS          2 /* wake anyway: a lost signal only delays */
#define UPQ_CAP            (64 * 1024) /* stop reading the client past this */
#define UP_RETRY_NS        (2 * 1000 * 1000) /* retry a full shared pipe */
#define SESSION_TRIM_SLACK (8 * 1024)        /* freed heap kept, memtrim.c */
#define UPQ_KEEP           1024 /* first size; larger, an empty upq is freed */
#define BUSY_KEEP          (64 * 1024) /* kept while busy: see busy_keep() */
/* retry a full socket: see write_client() */
#define FULL_RETRY_NS (500 * 1000 * 1000)

struct session {
	const struct session_cfg *cfg;
	struct proto_framer fr;
	struct buf upq;      /* records the shared pipe has not taken */
	struct buf pending;  /* parent output not yet on the socket */
	int sock_eof;        /* client closed its side (or the socket died) */
	int down_eof;        /* parent closed our pipe: finish and exit */
	int dead;            /* socket unusable: exit now */
	int midline;         /* the socket got part of a line */
	int capped;          /* pipe not read: pending is full */
	int sock_more;       /* socket not drained: read it again */
	int paused;          /* the parent said: do not read the client */
	int lines;           /* lines read from the client */
	int greeted;         /* the socket got its first bytes (HELLO) */
	int sock_full;       /* the socket refused whole lines: retry soon */
	struct memtrim trim; /* memtrim.c's state (on the stack: see there) */
};

/* Bytes of whole records at the head of upq that fit one atomic write. */
static size_t
up_batch(const struct session *s)
{
	const char *p = buf_head(&s->upq);
	size_t used = buf_used(&s->upq), total = 0;
	struct ipc_hdr h;

	while (ipc_get(p + total, used - total, IPC_SHARED_MAX, &h) > 0 &&
	    total + ipc_size(&h) <= IPC_BATCH)
		total += ipc_size(&h);
	return total;
}

/*
 * A turn needed more than the small first buffer b holds (pending's 4 KiB,
 * upq's 1 KiB): keep what it grew to while the client is busy, instead of
 * freeing it when emptied and growing it again on the next turn (back to
 * back, a malloc, a free, a copy and a second read() per wake-up); the
 * idle tick gives it back (idle_release()).
 */
static void
busy_keep(struct buf *b)
{
	if (b->keep < BUSY_KEEP)
		buf_set_keep(b, BUSY_KEEP);
}

static int finish_line(struct session *s);

/*
 * What read_client() reads the socket into, and close_client() drains into.
 * Static, not on the stack: only the pages a read touches are dirty, and
 * the stack stays a page or two deep (a 64 KiB frame put the deeper calls
 * on pages of their own: 8-12 kB more per idle child, bench/memory.py).
 * In .lbss (gcc on x86-64), which the linker puts right after .bss: its
 * first bytes, where a client's first lines are read, then share the page
 * of libc's malloc state at the end of .bss, which every child writes
 * anyway, instead of a page of their own (8 private pages per idle child
 * of the session image instead of 9; bench/memory.py).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((section(".lbss")))
#endif
static char rbuf[READ_CHUNK];

/*
 * This child cannot go on (its parent's pipe failed, or no memory to keep
 * the client's input whole): tell the client, if at a line start, then
 * end.  Found by the Nth-call sweep (fault/sweep.py): the client used to
 * see only EOF.
 */
static __attribute__((noreturn)) void
give_up(struct session *s)
{
	static const char error[] = "BYE INTERNAL server error, please "
	                            "reconnect\n";

	if (finish_line(s))
		(void)!send(s->cfg->sock, error, sizeof(error) - 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	proc_exit(1);
}

/*
 * Write queued records in batches of at most PIPE_BUF bytes: each write is
 * atomic, so batches of different children never interleave.  No kill():
 * every write raises the parent's SIGUSR1 by itself (O_ASYNC + F_SETSIG on
 * the pipe's read end, server.c), so a turn costs no signal system call.  The shared
 * pipe is non-blocking: when the parent is behind, the rest waits here
 * (and the client is not read) while this child keeps serving its output.
 */
static void
up_flush(struct session *s)
{
	size_t len;
	ssize_t n;

	while ((len = up_batch(s)) > 0) {
		n = FAIL("forkchatd/session/write", EIO) ?
		    -1 :
		    write(s->cfg->up_fd, buf_head(&s->upq), len);
		if (n == (ssize_t)len)
			buf_consume(&s->upq, len);
		else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		else /* EPIPE: the parent is gone */
			give_up(s);
	}
}

static void
up_record(
    struct session *s, enum ipc_type type, int code, const char *p, size_t len)
{
	if (ipc_put(&s->upq, (uint32_t)s->cfg->slot, type, (unsigned)code, p,
	        len) < 0)
		give_up(s); /* cannot keep the stream whole */
}

/* Before exiting: give the parent what is queued, for a bounded time. */
static void
up_drain(struct session *s)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	int tries;

	for (tries = 0; tries < 500 && buf_used(&s->upq) > 0; tries++) {
		up_flush(s);
		if (buf_used(&s->upq) > 0)
			nanosleep(&ts, NULL);
	}
}

static int
on_line(enum proto_frame_ev ev, const char *line, size_t len, void *arg)
{
	struct session *s = arg;
	enum proto_err e;

	s->lines++;
	if (ev == PFRAME_TOO_LONG)
		up_record(s, IPC_REJECT, PERR_LINE_TOO_LONG, NULL, 0);
	else if ((e = proto_check_line(line, len)) != PERR_NONE)
		up_record(s, IPC_REJECT, (int)e, NULL, 0);
	else
		up_record(s, IPC_LINE, 0, line, len);
	return 0;
}

/*
 * Read the client until it is drained, or until the budget or a full queue
 * to the parent stops us; in those cases no new SIGIO will say that bytes
 * are waiting, so s->sock_more remembers it.
 */
static void
read_client(struct session *s)
{
	char *buf = rbuf;
	size_t total = 0;
	ssize_t n;

	s->sock_more = 0;
	/* the parent is behind: let TCP hold the client back */
	while (!s->sock_eof && total < READ_BUDGET &&
	    buf_used(&s->upq) < UPQ_CAP) {
		n = FAIL("forkchatd/session/read", ECONNRESET) ?
		    -1 :
		    read(s->cfg->sock, buf, sizeof(rbuf));
		if (n > 0) {
			proto_frame(&s->fr, buf, (size_t)n, on_line, s);
			total += (size_t)n;
			if ((size_t)n < sizeof(rbuf))
				goto done; /* drained: more raises a SIGIO */
		} else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			goto done;
		else { /* EOF, or a reset connection */
			s->sock_eof = 1;
			if (n < 0)
				s->dead = 1;
			up_record(s, IPC_EOF, n < 0 ? errno : 0, NULL, 0);
		}
	}
	s->sock_more = !s->sock_eof; /* stopped by the budget or the queue */
done:
	if (buf_used(&s->upq) > UPQ_KEEP)
		busy_keep(&s->upq);
	up_flush(s);
}

/*
 * Read the pipe from the parent.  Woken by SIGUSR2 (a write), stop at the
 * first short read: the pipe was empty then, and any later write raises
 * SIGUSR2 again.  The EOF is different: it raises no signal of its own
 * that could not merge with a write's, so the parent sends SIGUSR1 after
 * closing (fanout.c), and on that, a tick or anything else, read on until
 * EAGAIN or the EOF.
 */
static void
read_down(struct session *s, int to_eof)
{
	size_t room, want;
	ssize_t n;
	char *p;

	s->capped = 0;
	while (!s->down_eof &&
	    !(s->capped = buf_used(&s->pending) >= PENDING_CAP)) {
		/* read into whatever room there is: no realloc per message */
		/* an idle child's first buffer is small (a page), and so is
		 * a registering one's: HELLO waiting in it for the answer
		 * (hello_waits()) does not make it grow to 32 KiB, 2 heap
		 * pages more, to be freed as soon as both are sent */
		if ((p = buf_reserve(&s->pending,
		         buf_used(&s->pending) && s->greeted ? READ_MIN :
		                                               READ_FIRST)) ==
		    NULL)
			return; /* retried on the next turn */
		room = buf_room(&s->pending);
		/* never past the cap: a slow reader's child then takes from
		 * its pipe as its socket takes, so the parent sees it drain
		 * (flow.c); reading all the room, it took 250 KiB at once and
		 * nothing for the next 10 s of a 25 KB/s reader, which was
		 * cut as stalled */
		want = PENDING_CAP - buf_used(&s->pending);
		if (want > room)
			want = room;
		n = read(s->cfg->down_fd, p, want);
		if (n > 0) {
			if ((size_t)n == room)
				busy_keep(&s->pending); /* more than it held */
			buf_commit(&s->pending, (size_t)n);
			if (!to_eof && (size_t)n < want)
				return; /* drained: the next write signals */
		} else if (n == 0)
			s->down_eof = 1;
		else if (errno != EINTR)
			return; /* EAGAIN */
	}
}

/*
 * Bytes of pending up to its last newline.  A pipe write may end inside a
 * line; only whole lines go to the socket, so that if the parent cuts us
 * off (and drops the rest of that line) the client never sees half of it.
 */
static size_t
complete(const struct session *s)
{
	const char *nl;

	if (buf_used(&s->pending) == 0)
		return 0;
	nl = memrchr(buf_head(&s->pending), '\n', buf_used(&s->pending));
	return nl ? (size_t)(nl - buf_head(&s->pending)) + 1 : 0;
}

static void
write_client(struct session *s)
{
	size_t len;
	ssize_t n;

	s->sock_full = 0;
	while (!s->dead && (len = complete(s)) > 0) {
		n = FAIL("forkchatd/session/send", EPIPE) ?
		    -1 :
		    send(
		        s->cfg->sock, buf_head(&s->pending), len, MSG_NOSIGNAL);
		if (n > 0) {
			s->midline = buf_head(&s->pending)[n - 1] != '\n';
			buf_consume(&s->pending, (size_t)n);
		} else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN) {
			/* SIGIO tells us when a third of the buffer is free;
			 * a slow reader frees less between two ticks, and
			 * the parent must see it drain (flow.c): retry */
			s->sock_full = 1;
			return;
		} else {
			s->dead = 1;
			if (!s->sock_eof) {
				s->sock_eof = 1;
				up_record(s, IPC_EOF, errno, NULL, 0);
				up_flush(s);
			}
		}
	}
}

/*
 * If the socket got part of a line, send the rest of it, so that a last
 * BYE never lands in the middle of a line.  Returns 1 if at a line start.
 */
static int
finish_line(struct session *s)
{
	const char *nl;
	size_t len;

	if (!s->midline)
		return 1;
	nl = memchr(buf_head(&s->pending), '\n', buf_used(&s->pending));
	if (nl == NULL)
		return 0;
	len = (size_t)(nl - buf_head(&s->pending)) + 1;
	return send(s->cfg->sock, buf_head(&s->pending), len,
	           MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
}

/* The parent asked us to stop (sigqueue SIGTERM): say why if we can. */
static void
abort_session(struct session *s, const siginfo_t *si)
{
	static const char shut[] = "BYE SHUTDOWN server is shutting down\n";
	static const char slow[] = "BYE SLOW_CONSUMER you stopped reading; "
	                           "too much output was waiting for you\n";
	static const char error[] = "BYE INTERNAL server error, please "
	                            "reconnect\n";
	const char *msg = NULL;
	size_t len = 0;

	if (si->si_code == SI_QUEUE && si->si_pid == s->cfg->parent) {
		if (si->si_value.sival_int == IPC_ABORT_SLOW_CONSUMER)
			msg = slow, len = sizeof(slow) - 1;
		else if (si->si_value.sival_int == IPC_ABORT_ERROR)
			msg = error, len = sizeof(error) - 1;
		else
			msg = shut, len = sizeof(shut) - 1;
	}
	if (msg && !s->dead && finish_line(s))
		(void)!send(
		    s->cfg->sock, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * The parent paces this client's room (flow.c): stop reading the socket,
 * so TCP holds the sender back, or read it again.  Bytes already read are
 * still forwarded; the pipe and the socket's output are served either way.
 */
static void
flow_signal(struct session *s, const siginfo_t *si)
{
	if (si->si_code == SI_QUEUE && si->si_pid == s->cfg->parent)
		s->paused = si->si_value.sival_int != 0;
}

/* Orderly close: FIN first, so unread input does not turn it into a RST. */
static void
close_client(struct session *s)
{
	shutdown(s->cfg->sock, SHUT_WR);
	while (read(s->cfg->sock, rbuf, sizeof(rbuf)) > 0)
		;
	close(s->cfg->sock);
}

/*
 * Idle for a tick: the output buffer a burst grew goes back (it is kept
 * while busy: no malloc per wake-up), and memtrim.c returns the freed
 * pages, so an idle child is as small after a burst as before it.  The
 * first buffer of a quiet client's output (BUF_MIN, a page) stays: freed
 * at every tick, it was malloc'd again by the next read of the pipe, and
 * the heap trimmed and grown again, a page fault and three brk() per idle
 * child every TICK_SECS (a storm's 1000 idle children: 500 a second).
 */
static void
idle_release(struct session *s)
{
	buf_set_keep(&s->pending, READ_MIN);
	buf_set_keep(&s->upq, UPQ_KEEP);
	if (buf_used(&s->pending) == 0 && s->pending.cap > BUF_MIN)
		buf_free(&s->pending);
	if (buf_used(&s->upq) == 0 && s->upq.cap > UPQ_KEEP)
		buf_free(&s->upq);
	memtrim_idle(SESSION_TRIM_SLACK, &s->trim, 1);
}

/*
 * Registration: the client sent a line before it got HELLO (a storm's
 * clients send their nickname at once, docs/PROTOCOL.md), and the parent's
 * output is HELLO alone so far.  The parent answers every line, in a
 * moment: HELLO waits for that answer, so that the client gets both in
 * one send (one segment, one read) instead of two.  The wait ends with
 * a second line from the parent, its EOF, the client's EOF or an idle
 * tick (a lost answer only delays); once the client got its first bytes,
 * nothing waits.
 */
static int
hello_waits(struct session *s)
{
	const char *p = buf_head(&s->pending), *nl;
	size_t used = buf_used(&s->pending);

	if (s->greeted || used == 0)
		return 0;
	nl = memchr(p, '\n', used);
	if (s->lines > 0 && !s->down_eof && !s->sock_eof && nl != NULL &&
	    memchr(nl + 1, '\n', used - (size_t)(nl + 1 - p)) == NULL)
		return 1;
	s->greeted = nl != NULL;
	return 0;
}

static int
session_setup(struct session *s, const struct session_cfg *cfg, sigset_t *set)
{
	pid_t me = getpid();

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	/* what a burst grew is freed once empty (memtrim.c returns it) */
	buf_set_keep(&s->pending, READ_MIN);
	buf_set_keep(&s->upq, UPQ_KEEP);
	s->fr.max = cfg->max_line;
	if ((s->fr.line = malloc(cfg->max_line + 2)) == NULL)
		return -1;
	proc_child_sigs(set); /* IO, USR2, TERM, IPC_SIG_FLOW */
	if (!cfg->sigs_blocked && sigprocmask(SIG_BLOCK, set, NULL) < 0)
		return -1;
	/*
	 * Signal-driven I/O on the pipe: every write of the parent raises
	 * SIGUSR2 here by itself (F_SETSIG), so the parent makes no kill()
	 * per delivery.  Bytes written before this are read by the first
	 * turn of the loop.  F_SETFL sets the status flags whole, with no
	 * F_GETFL first: of those it can change, a pipe or a socket of ours
	 * has only O_NONBLOCK (or nothing) before (one system call less each).
	 */
	if (fcntl(cfg->down_fd, F_SETOWN, me) < 0 ||
	    fcntl(cfg->down_fd, F_SETSIG, SIGUSR2) < 0 ||
	    fcntl(cfg->down_fd, F_SETFL, O_NONBLOCK | O_ASYNC) < 0)
		return -1;
	/* its SO_SNDBUF and TCP_NODELAY: the listening socket's (session.h) */
	if (fcntl(cfg->sock, F_SETOWN, me) < 0 ||
	    fcntl(cfg->sock, F_SETFL, O_NONBLOCK | O_ASYNC) < 0)
		return -1;
	return 0;
}

int
session_run(const struct session_cfg *cfg)
{
	struct timespec ts = { 0, 0 };
	struct session s;
	siginfo_t si;
	time_t deadline = 0;
	sigset_t set;
	int sig = 0;

	if (session_setup(&s, cfg, &set) < 0) {
		free(s.fr.line); /* NULL unless setup failed after malloc */
		return 1;
	}
	for (;;) {
		/*
		 * Work first: data may have arrived before O_ASYNC was set.
		 * Then read only what the signal names: SIGUSR2 the pipe,
		 * SIGIO the socket (a timeout or a retry, both).
		 */
		if ((sig != SIGUSR2 || s.sock_more) && !s.paused)
			read_client(&s);
		else if (buf_used(&s.upq) > 0)
			up_flush(&s);
		/*
		 * The first turn (sig 0) reads what the parent wrote before
		 * O_ASYNC was set up to a short read, not to EAGAIN: any later
		 * write raises SIGUSR2, and an EOF comes with SIGUSR1 (fanout.c).
		 */
		if (sig != SIGIO || s.capped)
			read_down(&s, sig != SIGUSR2 && sig != 0);
		if (!hello_waits(&s))
			write_client(&s);
		if (s.capped && buf_used(&s.pending) < PENDING_CAP) {
			/* the socket took some: refill from the pipe now, or a
			 * slow reader woken by the tick alone drained the pipe
			 * every other tick, and was cut as stalled (flow.c) */
			read_down(&s, 1);
			write_client(&s);
		}
		if (s.dead)
			break;
		if (s.down_eof && complete(&s) == 0) {
			/* the parent queues SIGTERM before it closes a cut pipe */
			ts.tv_sec = ts.tv_nsec = 0;
			if (sigtimedwait(&set, &si, &ts) == SIGTERM)
				abort_session(&s, &si);
			break;
		}
		ts.tv_sec = TICK_SECS;
		ts.tv_nsec = 0;
		if (s.sock_full && !s.down_eof) { /* see write_client() */
			ts.tv_sec = 0;
			ts.tv_nsec = FULL_RETRY_NS;
		}
		if (buf_used(&s.upq) > 0) { /* shared pipe full: retry soon */
			ts.tv_sec = 0;
			ts.tv_nsec = UP_RETRY_NS;
		}
		if (s.down_eof) { /* bounded wait for a slow reader */
			if (deadline == 0)
				deadline = time(NULL) + FLUSH_SECS;
			ts.tv_sec = deadline - time(NULL);
			if (ts.tv_sec <= 0)
				break;
		}
		/*
		 * More input and room for it: go on, but take the signals
		 * first, so that a flood cannot hide a pause (flow.c).
		 */
		if (s.sock_more && !s.paused && buf_used(&s.upq) == 0)
			ts.tv_sec = ts.tv_nsec = 0;
		sig = sigtimedwait(&set, &si, &ts);
		if (sig < 0 &&
		    ts.tv_sec == TICK_SECS) { /* idle: after a burst */
			idle_release(&s);
			s.greeted = 1; /* HELLO waits no more */
		}
		if (sig == IPC_SIG_FLOW)
			flow_signal(&s, &si);
		else if (sig == SIGTERM) {
			abort_session(&s, &si);
			break;
		}
	}
	if (!s.down_eof)
		up_drain(&s); /* e.g. the EOF record of a dead socket */
	if (!s.dead)
		close_client(&s);
	buf_free(&s.upq);
	buf_free(&s.pending);
	free(s.fr.line);
	return 0;
}
