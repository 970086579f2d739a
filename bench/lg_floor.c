/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_floor.c - the floors: forkchatd's fan-out mechanism with nothing else.
 *
 * floor-pipe (the raw pipe+SIGUSR2 floor; "floor" is an alias):
 * the parent plays the server's parent process: it fans each message out
 * to N children over one pipe per child (parent end non-blocking) and then
 * wakes each child with one SIGUSR2; a child waits in sigwaitinfo() and
 * drains its pipe until EAGAIN.  No TCP, no parsing of commands, no rooms
 * beyond "child i is in room i % K".  The batching policy is the server's:
 * paced, one message per write and per signal unless the parent fell
 * behind, then everything due; back to back, up to --batch messages per
 * pipe write and one signal per batch per child.  If a pipe
 * is full the parent signals that child and finishes the write blocking
 * (a floor has no slow-consumer policy; it measures the mechanism).
 *
 * With --batch 1 every message is one write and one signal per child, as
 * the raw floor; a larger batch (64 by default) is the batched floor,
 * whose back-to-back throughput is an upper bound of batching, not of the
 * per-message mechanism.
 *
 * floor-tcp (the pipe+SIGUSR2+TCP floor): the same parent and fan-out in a
 * server process of its own (floor_tcp_server, forked by lg_client.c),
 * whose N children each own one accepted TCP connection: woken by
 * SIGUSR2, a child makes one read() of its pipe and one send() of what it
 * read to its receiver, an ordinary client process that timestamps the
 * line.  The least a fork + pipe + signal + TCP design can do per
 * delivery.  The server's CPU is that process tree alone.
 *
 * Back to back with --window W (both floors), the parent sends a virtual
 * sender's message q once every receiver of the room has counted its
 * message q - W, polling the receivers' counters every 100 us as the
 * clients' writers do, and batches whatever the window lets go (at most
 * --batch messages per pipe write).
 *
 * The virtual senders 0..S-1 are not children, so every child of the room
 * receives every message: N deliveries per message where forkchat makes
 * N-1 (no echo to the sender).
 *
 * floor-tcp-send (the TCP floor with real senders): floor-tcp's virtual
 * senders cost its server nothing, where forkchatd's senders are clients
 * whose session children read their sockets and hand the lines to the
 * parent, and Redis reads its publishers' connections too.  Here the
 * senders are the generator's clients, as for forkchat (same clients,
 * writers and window: lg_client.c), except that a sender's writer writes
 * on a connection of its own (as a Redis publisher), named by a first
 * line "s<i>".  The floor's server accepts the N receivers and the S
 * sender connections; a sender's child (floor_sender_child) is woken by
 * SIGIO, reads its socket without blocking until drained, and writes the
 * whole lines, with a 4-byte header (sender, length), to one pipe shared
 * by all sender children, whose every write raises the parent's SIGUSR1
 * (F_SETSIG): the least forkchatd's sender hop can be (its session child
 * also frames and checks every line and makes a record per line).  The
 * parent reads that pipe until drained and fans the lines out as
 * floor-tcp does: at most --batch messages per pipe write, one write per
 * receiver's child and one kill(SIGUSR2) per child written to, the rest of
 * a turn flushed at its end; not to the sender (a receiver that is also a
 * sender gets the batch less its own lines), so N-1 deliveries per message
 * in a room of N, as forkchat.  The server's CPU is the floor's process
 * tree: parent, receivers' and senders' children.
 *
 * --cork (floor-tcp-send only) adds forkchatd's two economies on the
 * output side: the receivers' pipes raise SIGUSR2 by themselves (F_SETSIG,
 * no kill()), and a busy parent corks as core/server/fanout.h does
 * (floor_turn).  Without it the floor's fan-out is floor-tcp's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "lg.h"
#include "lg_report.h"

#define FLOOR_BUF (256 * 1024)

static pid_t *kids;
static int *wfd;

static void
floor_drain(int fd, struct lg_sink *k, char *buf, size_t *len)
{
	char *p, *nl, *end;
	ssize_t r;
	int64_t t;

	for (;;) {
		r = read(fd, buf + *len, FLOOR_BUF - *len);
		if (r <= 0)
			return; /* EAGAIN: drained */
		t = now_ns();
		*len += (size_t)r;
		p = buf;
		end = buf + *len;
		while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			sink_payload(k, p, (size_t)(nl - p), t);
			p = nl + 1;
		}
		*len = (size_t)(end - p);
		memmove(buf, p, *len);
	}
}

static void
floor_child(int idx, int rfd)
{
	static char buf[FLOOR_BUF];
	struct lg_sink *k;
	sigset_t set;
	siginfo_t si;
	size_t len = 0;
	int keep[2] = { rfd, lg_status_wr }, done = 0, sig;

	lg_child_setup(keep, 2);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fcntl(rfd, F_SETFL, O_NONBLOCK);
	arm_alarm(lg.timeout);
	if ((k = sink_new(idx, &lg_shm->slot[idx])) == NULL) {
		slot_fail(idx, "out of memory");
		_exit(1);
	}
	status_send(idx, ST_REG);
	status_send(idx, ST_READY);
	for (;;) {
		if (!done && sink_complete(k)) {
			status_send(idx, ST_COMPLETE);
			done = 1;
		}
		sig = sigwaitinfo(&set, &si);
		if (sig == SIGUSR2)
			floor_drain(rfd, k, buf, &len);
		else if (sig == SIGUSR1 || sig == SIGALRM)
			break;
	}
	floor_drain(rfd, k, buf, &len);
	sink_final(k);
	status_send(idx, ST_FINAL);
	_exit(0);
}

static int
floor_fork(void)
{
	int i, p[2];

	kids = calloc((size_t)lg.n, sizeof(pid_t));
	wfd = calloc((size_t)lg.n, sizeof(int));
	if (kids == NULL || wfd == NULL)
		return -1;
	for (i = 0; i < lg.n; i++) {
		if (pipe(p) < 0 || (kids[i] = fork()) < 0) {
			perror("forkchat-load: floor pipe/fork");
			while (--i >= 0)
				kill(kids[i], SIGKILL);
			return -1;
		}
		if (kids[i] == 0)
			floor_child(i, p[0]);
		close(p[0]);
		wfd[i] = p[1];
		fcntl(wfd[i], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

/* One pipe write to child i (a full pipe: wake it, finish blocking). */
static void
floor_write(int i, const char *buf, size_t len)
{
	ssize_t w;
	size_t off = 0;

	while (off < len) {
		w = write(wfd[i], buf + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		/* full: wake the child, then wait for room */
		kill(kids[i], SIGUSR2);
		fcntl(wfd[i], F_SETFL, 0);
		w = write(wfd[i], buf + off, len - off);
		fcntl(wfd[i], F_SETFL, O_NONBLOCK);
		if (w > 0)
			off += (size_t)w;
		else if (errno != EINTR)
			break;
	}
}

/* One pipe write per child of the room, then one signal per child. */
static void
floor_fanout(int room, const char *buf, size_t len)
{
	int i;

	for (i = room; i < lg.n; i += lg.rooms)
		floor_write(i, buf, len);
	for (i = room; i < lg.n; i += lg.rooms)
		kill(kids[i], SIGUSR2);
}

/* Appends message k (sender k % S, seq k / S), stamped t, to its room's
 * buffer; late: t is the time it fell due (floor_send). */
static void
floor_add(char **rb, size_t *rl, long k, int rep, int64_t t, int late)
{
	int s = (int)(k % lg.senders), room = lg_room_of(s), n;
	long q = k / lg.senders + lg_phase_q0(rep);

	n = lg_format(rb[room] + rl[room], LG_MAX_SIZE + 64, s, (uint64_t)q, t);
	if (n < 0)
		return;
	rl[room] += (size_t)n;
	rb[room][rl[room]++] = '\n';
	if (lg_shm->snd[s].first_ns == 0)
		lg_shm->snd[s].first_ns = t;
	lg_shm->snd[s].last_ns = t;
	lg_shm->snd[s].sent++;
	if (late)
		lg_shm->snd[s].late++;
}

/*
 * Repetition rep's messages (sequence numbers from rep * M), paced from
 * lg_shm->t_start or back to back.
 *
 * The floor's parent is its own sender, so paced it must not measure from
 * the moment it gets round to a message (coordinated omission): a message
 * that fell due while the parent was still fanning out the previous ones
 * is stamped with the time it was due, as a sender process would have
 * written it then and forkchat's senders do (the wait for the busy parent
 * counts, as it does for every server).  A message the parent slept for
 * is stamped when it wakes, as a sender stamps after its sleep.
 */
static int64_t
floor_due(int64_t t0, long k, double rate)
{
	return t0 + (int64_t)((double)k * 1e9 / rate);
}

/* Messages of virtual sender s that every receiver of its room has
 * counted (every child of the room receives them, s's own included). */
static uint64_t
floor_acked(int s)
{
	uint64_t min = UINT64_MAX, v;
	int i;

	for (i = lg_room_of(s); i < lg.n; i += lg.rooms)
		if ((v = lg_shm->slot[i].from[s]) < min)
			min = v;
	return min;
}

/*
 * --window W back to back: message k (sender k % S, sequence q) may go
 * once every receiver has counted the sender's message q - W, as the
 * clients' writers do (lg_client.c).  acked[] caches each sender's last
 * reading; it is read again only when the cache says no.
 */
static int
floor_window_ok(long k, int rep, uint64_t *acked)
{
	int s = (int)(k % lg.senders);
	uint64_t q = (uint64_t)(k / lg.senders + lg_phase_q0(rep));

	if (q < acked[s] + (uint64_t)lg.window)
		return 1;
	acked[s] = floor_acked(s);
	return q < acked[s] + (uint64_t)lg.window;
}

/* Repetition rep's messages: paced (floor_due), back to back, or back to
 * back within --window. */
static void
floor_send(int rep)
{
	long k = 0, total = lg_phase_msgs(rep) * lg.senders, b;
	double rate = lg_phase_rate(rep);
	int64_t t0 = lg_shm->t_start, stop, t, due;
	size_t rl[LG_MAX_ROOMS];
	char *rb[LG_MAX_ROOMS];
	int room, per = lg.batch, late;
	int windowed = rate == 0 && lg.window > 0;
	uint64_t acked[LG_MAX_SENDERS] = { 0 };

	stop = t0 + (int64_t)(lg.duration * 1e9);
	for (room = 0; room < lg.rooms; room++)
		if ((rb[room] = malloc((size_t)per * (LG_MAX_SIZE + 80))) ==
		    NULL)
			return;
	while (k < total) {
		late = 0;
		if (rate > 0) {
			due = floor_due(t0, k, rate);
			/* busy when it fell due (the first: slept for) */
			late = k > 0 && now_ns() > due;
			sleep_until(due);
		}
		/* windowed: poll the receivers' counters every 100 us, as
		 * the clients' writers do */
		while (windowed && !floor_window_ok(k, rep, acked) &&
		    !lg_got_alrm && now_ns() <= stop)
			sleep_until(now_ns() + 100000);
		if ((t = now_ns()) > stop || lg_got_alrm)
			break;
		memset(rl, 0, sizeof(rl));
		/* paced: everything that is due (one message unless behind);
		 * windowed: everything the window lets go, up to --batch */
		for (b = 0; b < per && k < total &&
		     (rate == 0 || b == 0 || floor_due(t0, k, rate) <= t) &&
		     (!windowed || b == 0 || floor_window_ok(k, rep, acked));
		     b++, k++) {
			late = rate > 0 && (late || b > 0);
			floor_add(rb, rl, k, rep,
			    late ? floor_due(t0, k, rate) : now_ns(), late);
		}
		for (room = 0; room < lg.rooms; room++)
			if (rl[room] > 0)
				floor_fanout(room, rb[room], rl[room]);
	}
	for (room = 0; room < lg.rooms; room++)
		free(rb[room]);
}

int
floor_run(struct lg_result *r)
{
	struct lg_wait w;
	sigset_t set;
	int64_t t0, cpu0, wk0;
	int rc, rep;

	memset(&w, 0, sizeof(w));
	if (lg.senders < 1 || lg.connect_only || lg.hold) {
		fprintf(stderr,
		    "forkchat-load: floor needs senders >= 1 and "
		    "has no connect-only/hold mode\n");
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL); /* children start blocked */
	t0 = now_ns();
	if (floor_fork() < 0)
		return -1;
	if (parent_wait(lg_status_rd, &w, ST_READY, lg.n,
	        now_ns() + (int64_t)(lg.timeout / 2 * 1e9), 0) < 0) {
		parent_finish(lg_status_rd, &w, kids, lg.n);
		return -1;
	}
	r->connect_ns = now_ns() - t0;
	if (lg.settle > 0)
		sleep_until(now_ns() + (int64_t)(lg.settle * 1e9));
	lg.server_pid = getpid(); /* parent + children: the floor */
	for (rep = 0, rc = 0; rep < lg_phases() && rc == 0; rep++) {
		if (rep > 0)
			sleep_until(now_ns() + 200000000);
		report_rep_start(r);
		cpu0 = report_server_cpu();
		wk0 = report_server_wakeups();
		lg_shm->t_start = now_ns() + 1000000;
		sleep_until(lg_shm->t_start);
		floor_send(rep);
		if ((rc = parent_drain(lg_status_rd, &w, lg.drain)) < 0)
			fprintf(stderr,
			    "forkchat-load: not everything delivered "
			    "within %g s\n",
			    lg.drain);
		if (cpu0 >= 0 && (r->cpu_ns = report_server_cpu()) >= 0)
			r->cpu_ns -= cpu0;
		if (wk0 >= 0 && (r->wakeups = report_server_wakeups()) >= 0)
			r->wakeups -= wk0;
		report_server_mem(r);
		report_rep_end(r, rep, rc < 0 || w.failed);
	}
	parent_finish(lg_status_rd, &w, kids, lg.n);
	return rc < 0 || w.failed ? -1 : 0;
}

/* A TCP floor child: one read of the pipe, one send() to the receiver.
 * setsig (floor-tcp-send --cork): the parent's writes raise SIGUSR2 by
 * themselves (F_SETSIG on the pipe, as forkchatd's session child). */
static void
floor_tcp_child(int sock, int rfd, int setsig)
{
	static char buf[FLOOR_BUF];
	sigset_t set;
	siginfo_t si;
	ssize_t r, w;
	size_t off;
	int keep[2] = { sock, rfd }, sig;

	lg_child_setup(keep, 2);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fcntl(rfd, F_SETFL, O_NONBLOCK);
	if (setsig &&
	    (fcntl(rfd, F_SETOWN, getpid()) < 0 ||
	        fcntl(rfd, F_SETSIG, SIGUSR2) < 0 ||
	        fcntl(rfd, F_SETFL, O_NONBLOCK | O_ASYNC) < 0))
		_exit(1);
	if (write(sock, "k\n", 2) != 2)
		_exit(1);
	for (;;) {
		sig = sigwaitinfo(&set, &si);
		if (sig != SIGUSR2)
			_exit(0);
		do { /* a short read emptied the pipe: no EAGAIN read */
			r = read(rfd, buf, sizeof(buf));
			for (off = 0; r > 0 && off < (size_t)r;
			     off += (size_t)w)
				if ((w = send(sock, buf + off, (size_t)r - off,
				         MSG_NOSIGNAL)) <= 0)
					_exit(w < 0 && errno == EPIPE ? 0 : 1);
		} while (r == (ssize_t)sizeof(buf));
	}
}

/* Reads the receiver's index line from a just accepted connection. */
static int
floor_tcp_index(int fd)
{
	char line[16];
	size_t len = 0;
	ssize_t r;
	long v;
	char *end;

	while (len < sizeof(line) - 1) {
		r = read(fd, line + len, 1);
		if (r <= 0)
			return -1;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	v = strtol(line, &end, 10);
	return end == line || *end != '\0' || v < 0 || v >= lg.n ? -1 : (int)v;
}

/*
 * The TCP floor's server process: accept the N receivers (each names its
 * index), fork one child per connection with a pipe, then on `start` fan
 * the messages out exactly as floor-pipe does, report the virtual senders
 * SENT (every repetition on its barrier), and wait for SIGTERM from the generator; the children are killed
 * and reaped on the way out.  Bounded by the alarm.  Returns the exit
 * status.
 */
int
floor_tcp_server(int lfd)
{
	sigset_t set, wset;
	siginfo_t si;
	int i, fd, idx, p[2], got = 0, s, rep;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL); /* children start blocked */
	arm_alarm(lg.timeout);
	kids = calloc((size_t)lg.n, sizeof(pid_t));
	wfd = calloc((size_t)lg.n, sizeof(int));
	if (kids == NULL || wfd == NULL)
		return 1;
	while (got < lg.n) {
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			if (errno == EINTR && !lg_got_alrm)
				continue;
			goto out;
		}
		if ((idx = floor_tcp_index(fd)) < 0 || kids[idx] != 0 ||
		    pipe(p) < 0 || (kids[idx] = fork()) < 0)
			goto out;
		if (kids[idx] == 0)
			floor_tcp_child(fd, p[0], 0);
		close(p[0]);
		close(fd);
		wfd[idx] = p[1];
		fcntl(wfd[idx], F_SETFL, O_NONBLOCK);
		got++;
	}
	close(lfd);
	for (rep = 0; rep < lg_phases(); rep++) {
		if (wait_barrier(lg_go[rep][0]) < 0)
			goto out;
		sleep_until(lg_shm->t_start);
		floor_send(rep);
		for (s = 0; s < lg.senders; s++)
			status_send(s, ST_SENT);
	}
	sigemptyset(&wset);
	sigaddset(&wset, SIGTERM);
	sigaddset(&wset, SIGUSR1);
	sigaddset(&wset, SIGALRM);
	sigprocmask(SIG_BLOCK, &wset, NULL);
	arm_alarm(lg.timeout);
	sigwaitinfo(&wset, &si);
out:
	for (i = 0; i < lg.n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; i < lg.n; i++)
		if (kids[i] > 0)
			waitpid(kids[i], NULL, 0);
	return got == lg.n ? 0 : 1;
}

/* ---- floor-tcp-send: the TCP floor with real senders --------------- */

/* A record on the shared pipe: the sender's index and that many bytes of
 * its whole lines; one write of at most PIPE_BUF bytes, so the sender
 * children's records never interleave. */
struct floor_rec {
	uint16_t idx;
	uint16_t len;
};
#define FLOOR_REC_MAX (PIPE_BUF - sizeof(struct floor_rec))

/* Sender idx's whole lines p[0..len) to the parent, in records. */
static void
floor_up(int up, int idx, const char *p, size_t len)
{
	struct floor_rec h;
	struct iovec iov[2];
	size_t n;
	ssize_t w;

	while (len > 0) {
		/* a record ends after the last newline that fits */
		for (n = len < FLOOR_REC_MAX ? len : FLOOR_REC_MAX;
		     n > 0 && p[n - 1] != '\n'; n--)
			;
		if (n == 0)
			_exit(1); /* a line longer than a record */
		h.idx = (uint16_t)idx;
		h.len = (uint16_t)n;
		iov[0].iov_base = &h;
		iov[0].iov_len = sizeof(h);
		iov[1].iov_base = (void *)(uintptr_t)p;
		iov[1].iov_len = n;
		do
			w = writev(up, iov, 2);
		while (w < 0 && errno == EINTR);
		if (w != (ssize_t)(sizeof(h) + n))
			_exit(1);
		p += n;
		len -= n;
	}
}

/*
 * A sender's child: it owns the sender's connection, is woken by SIGIO
 * (O_ASYNC on the socket), reads what arrived without blocking until a
 * short read or EAGAIN says the socket is drained, and writes the whole
 * lines to the parent's shared pipe, which raises the parent's SIGUSR1 by
 * itself (F_SETSIG on its read end): forkchatd's session child less the
 * parsing, the per-line records and the output side.  After EOF (the
 * writer is done) it waits for SIGTERM, as a session child stays while
 * its client does (bench/cost_split.py reads it after the traffic).
 */
static void
floor_sender_child(int sock, int up, int idx)
{
	static char buf[FLOOR_BUF];
	sigset_t set;
	siginfo_t si;
	size_t len = 0, old, whole;
	ssize_t r;
	int keep[2] = { sock, up }, fl;

	lg_child_setup(keep, 2);
	prctl(PR_SET_NAME, "lg-floor-send"); /* bench/cost_split.py's kind */
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fl = fcntl(sock, F_GETFL);
	if (fl < 0 || fcntl(sock, F_SETOWN, getpid()) < 0 ||
	    fcntl(sock, F_SETFL, fl | O_NONBLOCK | O_ASYNC) < 0)
		_exit(1);
	for (;;) {
		/* first without a signal: what came before O_ASYNC */
		do {
			r = read(sock, buf + len, sizeof(buf) - len);
			if (r <= 0)
				break;
			old = len;
			len += (size_t)r;
			/* the rest before `old` holds no newline */
			for (whole = len; whole > old && buf[whole - 1] != '\n';
			     whole--)
				;
			if (whole > old) {
				floor_up(up, idx, buf, whole);
				memmove(buf, buf + whole, len - whole);
				len -= whole;
			} else if (len == sizeof(buf))
				_exit(1);
		} while (r == (ssize_t)(sizeof(buf) - old));
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (sigwaitinfo(&set, &si) != SIGIO)
			_exit(0);
	}
	sigdelset(&set, SIGIO);
	sigwaitinfo(&set, &si);
	_exit(r == 0 ? 0 : 1);
}

/* A room's batch: the lines and, for the echo rule, who sent which. */
struct floor_seg {
	int s;
	size_t off, len;
};
struct floor_batch {
	char *buf;
	size_t len;
	int nmsg, nseg;
	struct floor_seg *seg;
	int64_t held; /* --cork: when first left corked, 0 = not */
};

/*
 * --cork: forkchatd's corking (core/server/fanout.h, server.c's
 * flush_turn): when the parent is busy (a turn that read 2 messages or
 * more within 1 ms of the last flush, or more input already waiting), a
 * room's batch under 4 KiB (at most 32 receivers) or 16 KiB waits, at most
 * 1 ms from when it was first left.
 */
#define FLOOR_CORK_NS       1000000
#define FLOOR_CORK_FEW      32
#define FLOOR_CORK_FEW_SIZE 4096
#define FLOOR_CORK_SIZE     16384

static long floor_msgs;       /* messages relayed, in all */
static int64_t floor_flushed; /* the last flush */

static char *floor_scratch;        /* a batch less one sender's lines */
static unsigned char *floor_wrote; /* per child: written this flush */

/* The room's batch to each of its receivers but a sender's own lines
 * (forkchat does not echo): one pipe write per child, then one signal
 * per child written to, as floor_fanout. */
static void
floor_send_flush(int room, struct floor_batch *b)
{
	const char *p;
	size_t len;
	int i, j, mine;

	for (i = room; i < lg.n; i += lg.rooms) {
		p = b->buf;
		len = b->len;
		for (j = 0, mine = 0; i < lg.senders && j < b->nseg; j++)
			mine |= b->seg[j].s == i;
		if (mine) {
			for (j = 0, len = 0; j < b->nseg; j++)
				if (b->seg[j].s != i) {
					memcpy(floor_scratch + len,
					    b->buf + b->seg[j].off,
					    b->seg[j].len);
					len += b->seg[j].len;
				}
			p = floor_scratch;
		}
		if ((floor_wrote[i] = len > 0))
			floor_write(i, p, len);
	}
	for (i = room; i < lg.n && !lg.cork; i += lg.rooms)
		if (floor_wrote[i])
			kill(kids[i], SIGUSR2);
	b->len = 0;
	b->nmsg = b->nseg = 0;
	b->held = 0;
	floor_flushed = now_ns();
}

/* Sender s's whole lines into its room's batch, flushed at --batch
 * messages, as floor_send batches. */
static void
floor_send_lines(struct floor_batch *rb, int s, const char *p, size_t len)
{
	struct floor_batch *b = &rb[lg_room_of(s)];
	const char *end = p + len, *q;
	size_t n;
	int n0;

	while (p < end) {
		/* up to the batch's last message */
		for (q = p, n0 = b->nmsg; q < end && b->nmsg < lg.batch;
		     b->nmsg++)
			q = (const char *)memchr(q, '\n', (size_t)(end - q)) +
			    1;
		floor_msgs += b->nmsg - n0;
		n = (size_t)(q - p);
		memcpy(b->buf + b->len, p, n);
		if (b->nseg > 0 && b->seg[b->nseg - 1].s == s)
			b->seg[b->nseg - 1].len += n;
		else
			b->seg[b->nseg++] = (struct floor_seg){ s, b->len, n };
		b->len += n;
		p = q;
		if (b->nmsg == lg.batch)
			floor_send_flush(lg_room_of(s), b);
	}
}

/* Woken by SIGUSR1: read the shared pipe until a short read (drained;
 * every later write raises SIGUSR1 again) into the rooms' batches. */
static void
floor_relay(int up, char *in, size_t *inlen, struct floor_batch *rb)
{
	struct floor_rec h;
	ssize_t r;
	size_t off, space;

	do {
		space = FLOOR_BUF - *inlen;
		r = read(up, in + *inlen, space);
		if (r <= 0)
			break;
		*inlen += (size_t)r;
		for (off = 0; *inlen - off >= sizeof(h);
		     off += sizeof(h) + h.len) {
			memcpy(&h, in + off, sizeof(h));
			if (*inlen - off < sizeof(h) + h.len)
				break;
			if (h.idx < lg.senders)
				floor_send_lines(
				    rb, h.idx, in + off + sizeof(h), h.len);
		}
		memmove(in, in + off, *inlen - off);
		*inlen -= off;
	} while (r == (ssize_t)space);
}

/*
 * The end of a turn that relayed msgs messages: flush every room's batch
 * (without --cork, as floor-tcp flushes what the window let go) or, when
 * busy, only those past the cork's size or time.  Returns when the
 * earliest corked batch must go, 0 if none waits.
 */
static int64_t
floor_turn(struct floor_batch *rb, long msgs)
{
	int64_t now = now_ns(), due = 0;
	struct floor_batch *b;
	sigset_t p;
	size_t big;
	int room, busy;

	busy = lg.cork &&
	    ((msgs >= 2 && now - floor_flushed < FLOOR_CORK_NS) ||
	        (sigpending(&p) == 0 && sigismember(&p, SIGUSR1) == 1));
	for (room = 0; room < lg.rooms; room++) {
		b = &rb[room];
		if (b->nmsg == 0)
			continue;
		big =
		    (lg.n - room + lg.rooms - 1) / lg.rooms <= FLOOR_CORK_FEW ?
		    FLOOR_CORK_FEW_SIZE :
		    FLOOR_CORK_SIZE;
		if (!busy || b->len >= big ||
		    (b->held != 0 && now - b->held >= FLOOR_CORK_NS)) {
			floor_send_flush(room, b);
			continue;
		}
		if (b->held == 0)
			b->held = now;
		if (due == 0 || b->held + FLOOR_CORK_NS < due)
			due = b->held + FLOOR_CORK_NS;
	}
	return due;
}

/* The first line of a connection: "<i>" names receiver i, "s<i>" the
 * connection of sender i's writer.  The index, -1 if bad; *snd. */
static int
floor_send_index(int fd, int *snd)
{
	char line[16], *p = line, *end;
	size_t len = 0;
	long v;

	while (len < sizeof(line) - 1) {
		if (read(fd, line + len, 1) != 1)
			return -1;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	if ((*snd = line[0] == 's') != 0)
		p++;
	v = strtol(p, &end, 10);
	return end == p || *end != '\0' || v < 0 ||
	        v >= (*snd ? lg.senders : lg.n) ?
	    -1 :
	    (int)v;
}

/*
 * floor-tcp-send's server process: accept the N receivers and the S
 * senders' connections (any order), fork one child per connection (a
 * receiver's: floor_tcp_child with its pipe; a sender's:
 * floor_sender_child with the shared pipe), then relay: on SIGUSR1 read
 * the shared pipe and fan the lines out as floor-tcp does, until SIGTERM
 * from the generator or the alarm.  Returns the exit status.
 */
int
floor_tcp_send_server(int lfd)
{
	static char in[FLOOR_BUF];
	struct floor_batch rb[LG_MAX_ROOMS];
	sigset_t set;
	siginfo_t si;
	struct timespec ts;
	pid_t *snd;
	int64_t due;
	long m0;
	size_t inlen = 0, cap = (size_t)lg.batch * (LG_MAX_SIZE + 80);
	int i, fd, idx, is_snd, p[2], up[2], got = 0, want, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL); /* children start blocked */
	sigdelset(&set, SIGUSR2);
	arm_alarm(lg.timeout);
	want = lg.n + lg.senders;
	kids = calloc((size_t)lg.n, sizeof(pid_t));
	wfd = calloc((size_t)lg.n, sizeof(int));
	snd = calloc((size_t)lg.senders + 1, sizeof(pid_t));
	floor_wrote = calloc((size_t)lg.n, 1);
	floor_scratch = malloc(cap);
	if (kids == NULL || wfd == NULL || snd == NULL || floor_wrote == NULL ||
	    floor_scratch == NULL || pipe(up) < 0)
		return 1;
	for (i = 0; i < lg.rooms; i++) {
		rb[i].buf = malloc(cap);
		rb[i].seg = calloc((size_t)lg.batch, sizeof(struct floor_seg));
		rb[i].len = 0;
		rb[i].nmsg = rb[i].nseg = 0;
		rb[i].held = 0;
		if (rb[i].buf == NULL || rb[i].seg == NULL)
			return 1;
	}
	/* every write of a sender child raises SIGUSR1 here: no kill() */
	if (fcntl(up[0], F_SETOWN, getpid()) < 0 ||
	    fcntl(up[0], F_SETSIG, SIGUSR1) < 0 ||
	    fcntl(up[0], F_SETFL, O_NONBLOCK | O_ASYNC) < 0)
		return 1;
	while (got < want) {
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			if (errno == EINTR && !lg_got_alrm)
				continue;
			goto out;
		}
		if ((idx = floor_send_index(fd, &is_snd)) < 0)
			goto out;
		if (is_snd) {
			if (snd[idx] != 0 || (snd[idx] = fork()) < 0)
				goto out;
			if (snd[idx] == 0)
				floor_sender_child(fd, up[1], idx);
		} else {
			if (kids[idx] != 0 || pipe(p) < 0 ||
			    (kids[idx] = fork()) < 0)
				goto out;
			if (kids[idx] == 0)
				floor_tcp_child(fd, p[0], lg.cork);
			close(p[0]);
			wfd[idx] = p[1];
			fcntl(wfd[idx], F_SETFL, O_NONBLOCK);
		}
		close(fd);
		got++;
	}
	close(lfd);
	close(up[1]);
	arm_alarm(lg.timeout);
	for (;;) {
		/* first without a signal: what came before the last one */
		m0 = floor_msgs;
		floor_relay(up[0], in, &inlen, rb);
		if ((due = floor_turn(rb, floor_msgs - m0)) == 0)
			sig = sigwaitinfo(&set, &si);
		else { /* a corked batch: until it must go */
			due = due > now_ns() ? due - now_ns() : 0;
			ts.tv_sec = (time_t)(due / 1000000000);
			ts.tv_nsec = (long)(due % 1000000000);
			sig = sigtimedwait(&set, &si, &ts);
		}
		if (sig < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (sig != SIGUSR1)
			break;
	}
out:
	for (i = 0; i < lg.n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; i < lg.senders; i++)
		if (snd[i] > 0)
			kill(snd[i], SIGKILL);
	for (i = 0; i < lg.n; i++)
		if (kids[i] > 0)
			waitpid(kids[i], NULL, 0);
	for (i = 0; i < lg.senders; i++)
		if (snd[i] > 0)
			waitpid(snd[i], NULL, 0);
	return got == want ? 0 : 1;
}
