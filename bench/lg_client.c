/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_client.c - real TCP clients for forkchat, IRC and Redis pub/sub, and
 * the receivers of the pipe+SIGUSR2+TCP floor.
 *
 * One process per client; it blocks in read() on its socket (a load
 * generator may block: it is not the system under test).  A client that
 * sends forks a writer process that shares (forkchat) or opens (Redis) the
 * sending connection, so the client keeps reading while its writer
 * writes.  Redis needs a second connection because a subscribed RESP2
 * connection cannot PUBLISH; the writer forks a drainer that reads and
 * discards the PUBLISH replies.
 *
 * IRC (ngircd, InspIRCd): NICK + USER, registered at numeric 001; every
 * client JOINs its channel (#lobby, or #rNN with rooms) and is in once
 * 366 (end of NAMES) arrives; a PING is answered with PONG at any time;
 * a message is "PRIVMSG #chan :text".  No echo to the sender, as forkchat.
 *
 * The TCP floor's receivers connect to the floor's server process
 * (lg_floor.c), send their index as one line and read bare text lines.
 * floor-tcp-send's clients are the same receivers, and its senders'
 * writers open a connection of their own (as Redis's publishers), name it
 * with "s" and the index as one line, then write bare text lines, as
 * forkchat's writers do.
 * The connect-storm floor's clients (--connect-only; bench/storm_floor.c)
 * send the nickname line they send forkchatd and wait for one "OK" line.
 *
 * Phases, each started by the parent closing a barrier pipe:
 *   0 connect + register (forkchat: nickname, sent without waiting for
 *     HELLO; IRC: NICK/USER; Redis:
 *     SUBSCRIBE; TCP floor: index line, then the server's "k")
 *   1 room creators /add (IRC: JOIN) their room
 *   2 everybody else /join (IRC: JOIN, also with one room)
 *   3 traffic: writers send; receivers read until told to stop (SIGUSR1)
 * With --window W a writer keeps at most W of its messages in flight: it
 * sends message q once every receiver of its room has counted message
 * q - W (the receivers' per-sender counters in shared memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "lg.h"
#include "lg_report.h"

#define CONN_BUF (256 * 1024)

struct conn {
	int fd;
	size_t off, len;
	int64_t t; /* time of the read that completed the data */
	char buf[CONN_BUF];
};

static int bar[3][2];  /* set-up phases; traffic: lg_go */
static struct conn cn; /* a client process has one reading conn */

static int
conn_open(int idx)
{
	struct sockaddr_in a;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(
	    (uint16_t)(lg.nports > 0 ? lg.ports[idx % lg.nports] : lg.port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != EINTR || lg_got_alrm) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR && !lg_got_alrm)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/*
 * Next line (CR LF or LF stripped, NUL-terminated in place).  Returns 1,
 * 0 at EOF, -2 when a signal interrupted the read, -1 on error.
 */
static int
conn_line(struct conn *c, char **line)
{
	char *nl;
	ssize_t r;
	int one = 1;

	for (;;) {
		nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		if (nl != NULL) {
			*line = c->buf + c->off;
			c->off = (size_t)(nl - c->buf) + 1;
			*nl = '\0';
			if (nl > *line && nl[-1] == '\r')
				nl[-1] = '\0';
			return 1;
		}
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len == sizeof(c->buf) - 1)
			return -1;
		r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (r > 0) {
			c->t = now_ns();
			c->len += (size_t)r;
			if (lg.quickack) /* re-armed: the kernel clears it */
				setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK,
				    &one, sizeof(one));
		} else if (r == 0)
			return 0;
		else
			return errno == EINTR ? -2 : -1;
	}
}

static int send_line(int idx, const char *fmt, const char *arg);

/* IRC: the command (or numeric) of a line, after the optional :prefix;
 * its length in *len. */
static const char *
irc_command(const char *l, size_t *len)
{
	const char *sp;

	if (l[0] == ':') {
		if ((sp = strchr(l, ' ')) == NULL)
			return NULL;
		l = sp + 1;
	}
	sp = strchr(l, ' ');
	*len = sp != NULL ? (size_t)(sp - l) : strlen(l);
	return l;
}

/* IRC: answers PING; returns -1 for ERROR or an error numeric (4xx and
 * 5xx but 422, "no MOTD"), 1 if the line is the numeric/command `want`. */
static int
irc_check(int idx, const char *l, const char *want)
{
	const char *c;
	size_t n;

	if (strncmp(l, "PING", 4) == 0)
		return send_line(idx, "PONG%s\r\n", l + 4) < 0 ? -1 : 0;
	if ((c = irc_command(l, &n)) == NULL)
		return 0;
	if (want != NULL && n == strlen(want) && memcmp(c, want, n) == 0)
		return 1;
	if ((n == 5 && memcmp(c, "ERROR", 5) == 0) ||
	    (n == 3 && (c[0] == '4' || c[0] == '5') &&
	        memcmp(c, "422", 3) != 0)) {
		slot_fail(idx, "irc: %.70s", l);
		return -1;
	}
	return 0;
}

/* Reads lines until one starts with `want` (IRC: whose command or numeric
 * is `want`); fails on ERR/BYE/-ERR and IRC errors. */
static int
expect(int idx, const char *want, const char *what)
{
	char *l;
	int r;

	for (;;) {
		r = conn_line(&cn, &l);
		if (r == -2 && !lg_got_alrm)
			continue;
		if (r <= 0) {
			slot_fail(idx, "%s: %s", what,
			    r == 0          ? "server closed" :
			        lg_got_alrm ? "timeout" :
			                      strerror(errno));
			return -1;
		}
		if (lg.sys == SYS_IRC) {
			if ((r = irc_check(idx, l, want)) != 0)
				return r > 0 ? 0 : -1;
			continue;
		}
		if (strncmp(l, want, strlen(want)) == 0)
			return 0;
		if (strncmp(l, "ERR ", 4) == 0 || strncmp(l, "BYE ", 4) == 0 ||
		    l[0] == '-') {
			slot_fail(idx, "%s: %.60s", what, l);
			return -1;
		}
	}
}

static void
room_name(char *buf, size_t cap, int idx)
{
	const char *hash = lg.sys == SYS_IRC ? "#" : "";

	if (lg.rooms == 1)
		snprintf(buf, cap, "%slobby", hash);
	else
		snprintf(buf, cap, "%sr%02d", hash, lg_room_of(idx));
}

static int
send_line(int idx, const char *fmt, const char *arg)
{
	char line[256];
	int n;

	n = snprintf(line, sizeof(line), fmt, arg);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    write_all(cn.fd, line, (size_t)n) < 0) {
		slot_fail(idx, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
redis_subscribe(int idx, const char *room)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
	    strlen(room), room);
	if (send_line(idx, "%s", cmd) < 0)
		return -1;
	return expect(idx, ":", "subscribe");
}

/* Phase 0: connect and register (or subscribe). */
static int
client_register(int idx)
{
	char nick[32], room[40], reg[96];

	if ((cn.fd = conn_open(idx)) < 0) {
		slot_fail(idx, "connect: %s", strerror(errno));
		return -1;
	}
	if (lg.sys == SYS_REDIS) {
		room_name(room, sizeof(room), idx);
		return redis_subscribe(idx, room);
	}
	snprintf(nick, sizeof(nick), "%s%04d", lg.nick_prefix, idx);
	if (lg.sys == SYS_FLOOR_TCP || lg.sys == SYS_FLOOR_TCP_SEND)
		return send_line(idx, "%s\n", nick + strlen(lg.nick_prefix)) <
		        0 ?
		    -1 :
		    expect(idx, "k", "floor-tcp accept");
	if (lg.sys == SYS_FLOOR_STORM) /* forkchat's first line, one answer */
		return send_line(idx, "%s\n", nick) < 0 ?
		    -1 :
		    expect(idx, "OK", "floor-storm answer");
	if (lg.sys == SYS_IRC) {
		snprintf(reg, sizeof(reg), "NICK %s\r\nUSER %s 0 * :b\r\n",
		    nick, nick);
		return send_line(idx, "%s", reg) < 0 ?
		    -1 :
		    expect(idx, "001", "register");
	}
	/* the nickname at once, as IRC clients send NICK and Redis clients
	 * SUBSCRIBE: HELLO need not come first (docs/PROTOCOL.md) */
	if (send_line(idx, "%s\n", nick) < 0 ||
	    expect(idx, "HELLO", "hello") < 0 ||
	    expect(idx, "OK NICK", "register") < 0 ||
	    expect(idx, "OK JOIN", "register") < 0)
		return -1;
	return 0;
}

/*
 * IRC: ngircd listens with a backlog of 10 (compile-time).  Every client
 * connecting at once overflows it, and those whose handshake was dropped
 * retry on TCP's back-off (1, 3, 7 ... 63 s): at N = 500 on a loaded
 * machine only 428 of 504 had registered after 105 s.  So client idx
 * connects once all but LG_IRC_CONNECTING of the clients before it are
 * in, never more than that many at a time.  The alarm bounds the wait.
 */
#define LG_IRC_CONNECTING 8

static void
irc_wait_turn(int idx)
{
	int now, max;

	while (__atomic_load_n(&lg_shm->registered, __ATOMIC_ACQUIRE) <=
	        idx - LG_IRC_CONNECTING &&
	    !lg_got_alrm)
		sleep_until(now_ns() + 200000);
	now = __atomic_add_fetch(&lg_shm->connecting, 1, __ATOMIC_ACQ_REL);
	max = __atomic_load_n(&lg_shm->connecting_max, __ATOMIC_ACQUIRE);
	while (now > max &&
	    !__atomic_compare_exchange_n(&lg_shm->connecting_max, &max, now, 0,
	        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

static void
irc_done_turn(void)
{
	__atomic_sub_fetch(&lg_shm->connecting, 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&lg_shm->registered, 1, __ATOMIC_ACQ_REL);
}

/* Phases 1 and 2: forkchat rooms.  Client i < K creates room i. */
static int
client_enter_room(int idx)
{
	char room[40];

	int irc = lg.sys == SYS_IRC;

	if (lg.sys == SYS_REDIS || lg.sys == SYS_FLOOR_TCP ||
	    lg.sys == SYS_FLOOR_TCP_SEND || (lg.rooms == 1 && !irc))
		return 0;
	room_name(room, sizeof(room), idx);
	if (idx < lg.rooms) {
		if (wait_barrier(bar[1][0]) < 0)
			return -1;
		if (send_line(idx, irc ? "JOIN %s\r\n" : "/add %s\n", room) < 0)
			return -1;
	} else {
		if (wait_barrier(bar[2][0]) < 0)
			return -1;
		if (send_line(idx, irc ? "JOIN %s\r\n" : "/join %s\n", room) <
		    0)
			return -1;
	}
	return expect(idx, irc ? "366" : "OK JOIN", "room");
}

/* Messages of sender idx that every receiver of its room has counted. */
static uint64_t
window_acked(int idx)
{
	uint64_t min = UINT64_MAX, v;
	int i;

	for (i = 0; i < lg.n; i++)
		if (i != idx && lg_room_of(i) == lg_room_of(idx) &&
		    (v = lg_shm->slot[i].from[idx]) < min)
			min = v;
	return min;
}

/* --window: until message q is within W of the slowest receiver, polling
 * the shared counters every 100 us; -1 at `stop` or the alarm. */
static int
window_wait(int idx, long q, uint64_t *acked, int64_t stop)
{
	while ((uint64_t)q >= *acked + (uint64_t)lg.window) {
		if ((*acked = window_acked(idx)) + (uint64_t)lg.window >
		    (uint64_t)q)
			return 0;
		if (lg_got_alrm || now_ns() > stop)
			return -1;
		sleep_until(now_ns() + 100000);
	}
	return 0;
}

/* The messages of sender idx on fd for repetition rep (sequence numbers
 * rep * M ...), paced or back to back. */
static void
writer_send(int idx, int fd, int rep)
{
	char text[LG_MAX_SIZE + 16], out[LG_MAX_SIZE + 128], room[40];
	struct lg_sender *sd = &lg_shm->snd[idx];
	int64_t t0, stop, gap = 0, t;
	uint64_t acked = 0;
	long q, q0 = lg_phase_q0(rep), msgs = lg_phase_msgs(rep);
	double rate = lg_phase_rate(rep);
	int n, len;

	room_name(room, sizeof(room), idx);
	t0 = lg_shm->t_start;
	stop = t0 + (int64_t)(lg.duration * 1e9);
	if (rate > 0) {
		gap = (int64_t)(1e9 * lg.senders / rate);
		t0 += (int64_t)(1e9 * idx / rate);
	}
	for (q = q0; q < q0 + msgs; q++) {
		if (rate > 0)
			sleep_until(t0 + (q - q0) * gap);
		if (lg.window > 0 && rate == 0 &&
		    window_wait(idx, q, &acked, stop) < 0)
			break;
		if ((t = now_ns()) > stop || lg_got_alrm)
			break;
		len = lg_format(text, sizeof(text), idx, (uint64_t)q, t);
		if (lg.sys == SYS_IRC)
			n = snprintf(
			    out, sizeof(out), "PRIVMSG %s :%s\r\n", room, text);
		else if (lg.sys == SYS_REDIS)
			n = snprintf(out, sizeof(out),
			    "*3\r\n$7\r\nPUBLISH\r\n"
			    "$%zu\r\n%s\r\n$%d\r\n%s\r\n",
			    strlen(room), room, len, text);
		else
			n = snprintf(out, sizeof(out), "%s\n", text);
		if (n < 0 || (size_t)n >= sizeof(out) ||
		    write_all(fd, out, (size_t)n) < 0) {
			slot_fail(idx, "send: %s", strerror(errno));
			break;
		}
		if (q == q0)
			sd->first_ns = t;
		sd->last_ns = t;
		sd->sent++;
	}
	status_send(idx, ST_SENT);
}

/* Every repetition: wait for its barrier, send.  0, or -1 if a barrier
 * failed (the alarm). */
static int
writer_reps(int idx, int fd)
{
	int rep;

	for (rep = 0; rep < lg_phases(); rep++) {
		if (wait_barrier(lg_go[rep][0]) < 0)
			return -1;
		writer_send(idx, fd, rep);
	}
	return 0;
}

/* Redis publisher connection: a drainer child eats the PUBLISH replies. */
static void
writer_redis(int idx, int ready)
{
	char buf[65536];
	pid_t dr;
	int fd, keep[2];

	if ((fd = conn_open(idx)) < 0) {
		slot_fail(idx, "connect (publisher): %s", strerror(errno));
		_exit(1);
	}
	if ((dr = fork()) == 0) {
		keep[0] = fd;
		keep[1] = lg_status_wr;
		lg_child_setup(keep, 2);
		arm_alarm(lg.timeout);
		while (read(fd, buf, sizeof(buf)) > 0 && !lg_got_alrm)
			;
		_exit(0);
	}
	close(ready);
	if (dr < 0 || writer_reps(idx, fd) < 0)
		_exit(1);
	write_all(fd, "*1\r\n$4\r\nQUIT\r\n", 14);
	waitpid(dr, NULL, 0); /* Redis closes after QUIT; alarm bounds it */
	_exit(0);
}

/* floor-tcp-send: the writer's own connection, named "s<idx>"; the
 * floor never answers on it. */
static void
writer_floor(int idx, int ready)
{
	char name[16];
	int fd, n;

	n = snprintf(name, sizeof(name), "s%d\n", idx);
	if ((fd = conn_open(idx)) < 0 || write_all(fd, name, (size_t)n) < 0) {
		slot_fail(idx, "connect (sender): %s", strerror(errno));
		_exit(1);
	}
	close(ready);
	_exit(writer_reps(idx, fd) < 0 ? 1 : 0);
}

/* Forks the writer; returns once it is ready to start on barrier 3. */
static int
client_fork_writer(int idx)
{
	int rp[2], keep[4 + LG_MAX_REPEAT], nk = 0, r;
	pid_t pid;
	char c;

	if (pipe(rp) < 0 || (pid = fork()) < 0) {
		slot_fail(idx, "writer: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		keep[nk++] = cn.fd;
		keep[nk++] = lg_status_wr;
		keep[nk++] = rp[1];
		for (r = 0; r < lg_phases(); r++)
			keep[nk++] = lg_go[r][0];
		lg_child_setup(keep, nk);
		arm_alarm(lg.timeout);
		if (lg.sys == SYS_REDIS)
			writer_redis(idx, rp[1]);
		if (lg.sys == SYS_FLOOR_TCP_SEND)
			writer_floor(idx, rp[1]);
		close(rp[1]);
		writer_reps(idx, cn.fd);
		_exit(0);
	}
	close(rp[1]);
	while (read(rp[0], &c, 1) < 0 && errno == EINTR && !lg_got_alrm)
		;
	close(rp[0]);
	return 0;
}

static void
client_line(int idx, struct lg_sink *k, char *l)
{
	char *p;

	if (lg.sys == SYS_FLOOR_TCP || lg.sys == SYS_FLOOR_TCP_SEND) {
		sink_payload(k, l, strlen(l), cn.t);
		return;
	}
	if (lg.sys == SYS_IRC) {
		if ((p = strstr(l, " PRIVMSG ")) != NULL &&
		    (p = strstr(p + 9, " :")) != NULL)
			sink_payload(k, p + 2, strlen(p + 2), cn.t);
		else
			irc_check(idx, l, NULL);
		return;
	}
	if (lg.sys == SYS_REDIS) {
		if (l[0] == 's' && l[1] == '=')
			sink_payload(k, l, strlen(l), cn.t);
		else if (l[0] == '-')
			slot_fail(idx, "redis: %.60s", l);
		return;
	}
	if (strncmp(l, "MSG ", 4) == 0) {
		if ((p = strstr(l + 4, " s=")) != NULL)
			sink_payload(k, p + 1, strlen(p + 1), cn.t);
		else
			sink_payload(k, l, strlen(l), cn.t); /* counts it bad */
	} else if (strncmp(l, "BYE ", 4) == 0)
		slot_fail(idx, "server said: %.70s", l);
}

/* Phase 3: read until the parent says stop (SIGUSR1) or the alarm. */
static void
client_receive(int idx)
{
	struct lg_sink *k;
	int done = 0, r;
	char *l;

	if ((k = sink_new(idx, &lg_shm->slot[idx])) == NULL) {
		slot_fail(idx, "out of memory");
		return;
	}
	for (;;) {
		if (!done && sink_complete(k)) {
			status_send(idx, ST_COMPLETE);
			done = 1;
		}
		if (lg_got_usr1 || lg_got_alrm)
			break;
		r = conn_line(&cn, &l);
		if (r == 1)
			client_line(idx, k, l);
		else if (r == 0 || r == -1) {
			if (!lg_got_usr1)
				slot_fail(idx, "%s while receiving",
				    r == 0 ? "server closed" : strerror(errno));
			break;
		}
	}
	sink_final(k);
	if (lg_shm->slot[idx].state != ST_ERR)
		status_send(idx, ST_FINAL);
}

static void
client_main(int idx)
{
	int keep[4 + LG_MAX_REPEAT] = { bar[0][0], bar[1][0], bar[2][0],
		lg_status_wr };
	int r;
	char *l;

	for (r = 0; r < lg_phases(); r++)
		keep[4 + r] = lg_go[r][0];
	lg_child_setup(keep, 4 + lg_phases());
	arm_alarm(lg.hold > 0 ? lg.hold + lg.timeout : lg.timeout);
	if (wait_barrier(bar[0][0]) < 0)
		_exit(1);
	if (lg.sys == SYS_IRC)
		irc_wait_turn(idx);
	if (client_register(idx) < 0)
		_exit(1);
	if (lg.sys == SYS_IRC)
		irc_done_turn();
	status_send(idx, ST_REG);
	if (lg.connect_only) { /* connected until every client is in */
		wait_barrier(bar[1][0]);
		_exit(0);
	}
	if (lg.hold > 0) { /* until the server closes us */
		while (conn_line(&cn, &l) != 0 && !lg_got_alrm)
			;
		_exit(0);
	}
	if (client_enter_room(idx) < 0)
		_exit(1);
	if (idx < lg.senders && !LG_VIRTUAL_SENDERS() &&
	    client_fork_writer(idx) < 0)
		_exit(1);
	status_send(idx, ST_READY);
	client_receive(idx);
	_exit(0);
}

static pid_t *
fork_clients(void)
{
	pid_t *pids;
	int i;

	if ((pids = calloc((size_t)lg.n, sizeof(pid_t))) == NULL)
		return NULL;
	for (i = 0; i < lg.n; i++) {
		if ((pids[i] = fork()) == 0)
			client_main(i);
		if (pids[i] < 0) {
			fprintf(stderr, "forkchat-load: fork client %d: %s\n",
			    i, strerror(errno));
			while (--i >= 0)
				kill(pids[i], SIGKILL);
			return NULL;
		}
	}
	return pids;
}

static int64_t
secs(double s)
{
	return now_ns() + (int64_t)(s * 1e9);
}

static int
run_fail(struct lg_wait *w, pid_t *pids, const char *what)
{
	fprintf(stderr,
	    "forkchat-load: %s %s n=%d: %s did not complete "
	    "(reg %d, ready %d, sent %d, complete %d, errors %d)\n",
	    lg.sysname, lg.scenario, lg.n, what, w->count[ST_REG],
	    w->count[ST_READY], w->count[ST_SENT], w->count[ST_COMPLETE],
	    w->count[ST_ERR]);
	parent_finish(lg_status_rd, w, pids, lg.n);
	return -1;
}

/*
 * --hold: the caller gets its exit status once every client is registered,
 * while a detached middle process keeps the clients (and reaps them) until
 * the server closes them or the hold time runs out.
 */
static int
hold_detach(int *notify)
{
	int p[2];
	pid_t pid;
	char c = 0;

	if (pipe(p) < 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		setsid();
		*notify = p[1];
		return 0;
	}
	close(p[1]);
	arm_alarm(lg.timeout);
	if (read(p[0], &c, 1) != 1)
		c = 0;
	arm_alarm(0);
	_exit(c == 'k' ? 0 : 1);
}

static int
client_setup_phase(struct lg_result *r, struct lg_wait *w, pid_t *pids)
{
	int64_t t0, cpu0;

	cpu0 = report_server_cpu(); /* before the storm: the server alone */
	t0 = now_ns();
	close(bar[0][1]);
	if (parent_wait(
	        lg_status_rd, w, ST_REG, lg.n, secs(lg.timeout / 2), 1) < 0)
		return run_fail(w, pids, "connect+register");
	r->connect_ns = now_ns() - t0;
	/* the storm's server CPU: every process it made is still there (its
	 * clients stay connected) */
	if (cpu0 >= 0 && (r->connect_cpu_ns = report_server_cpu()) >= 0)
		r->connect_cpu_ns -= cpu0;
	if (lg.hold)
		return 0;
	close(bar[1][1]);
	if (lg.connect_only)
		return 0;
	if (parent_wait(lg_status_rd, w, ST_READY, lg.rooms > 1 ? lg.rooms : 0,
	        secs(30), 0) < 0)
		return run_fail(w, pids, "room creation");
	close(bar[2][1]);
	if (parent_wait(lg_status_rd, w, ST_READY, lg.n, secs(30), 0) < 0)
		return run_fail(w, pids, "room join");
	return 0;
}

/*
 * Repetition rep: release the writers (barrier lg_go[rep]), wait until
 * they sent and everything arrived, then print this repetition's result
 * (the difference to the previous totals; report.c).  0, or -1 if the
 * senders or the deliveries did not finish in time.
 */
static int
client_traffic(struct lg_result *r, struct lg_wait *w, int rep)
{
	int64_t cpu0, wk0;
	int rc;

	if (rep > 0)
		sleep_until(secs(0.2));
	report_rep_start(r);
	cpu0 = report_server_cpu();
	wk0 = report_server_wakeups();
	lg_shm->t_start = now_ns() + 1000000;
	close(lg_go[rep][1]);
	rc = parent_wait(lg_status_rd, w, ST_SENT, lg.senders * (rep + 1),
	    secs(lg.duration + lg.drain + 1), 1);
	if (rc < 0)
		fprintf(stderr, "forkchat-load: senders did not finish\n");
	else if ((rc = parent_drain(lg_status_rd, w, lg.drain)) < 0)
		fprintf(stderr,
		    "forkchat-load: not everything delivered "
		    "within %g s\n",
		    lg.drain);
	if (cpu0 >= 0 && (r->cpu_ns = report_server_cpu()) >= 0)
		r->cpu_ns -= cpu0;
	if (wk0 >= 0 && (r->wakeups = report_server_wakeups()) >= 0)
		r->wakeups -= wk0;
	report_server_mem(r);
	report_rep_end(r, rep, rc < 0 || w->failed);
	return rc < 0 || w->failed ? -1 : 0;
}

/*
 * The TCP floor: a listening socket on an ephemeral 127.0.0.1 port and the
 * floor's server process (lg_floor.c) that accepts the N receivers; it
 * starts sending on barrier 3, like the writers.  Its pid is the server's.
 */
static pid_t
floor_tcp_start(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int lfd, keep[2 + LG_MAX_REPEAT], r;
	pid_t pid;

	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0 ||
	    (pid = fork()) < 0) {
		close(lfd);
		return -1;
	}
	if (pid == 0) {
		keep[0] = lfd;
		keep[1] = lg_status_wr;
		for (r = 0; r < lg_phases(); r++)
			keep[2 + r] = lg_go[r][0];
		lg_child_setup(keep, 2 + lg_phases());
		_exit(lg.sys == SYS_FLOOR_TCP_SEND ?
		        floor_tcp_send_server(lfd) :
		        floor_tcp_server(lfd));
	}
	close(lfd);
	lg.port = ntohs(a.sin_port);
	lg.server_pid = pid;
	return pid;
}

/* SIGTERM to the TCP floor's server, then reap it (bounded). */
static void
floor_tcp_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	arm_alarm(5);
	if (waitpid(pid, NULL, 0) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	arm_alarm(0);
}

int
client_run(struct lg_result *r)
{
	struct lg_wait w;
	pid_t *pids, fpid = 0;
	int i, notify = -1, rc;

	memset(&w, 0, sizeof(w));
	if (lg.hold && hold_detach(&notify) < 0)
		return -1;
	for (i = 0; i < 3; i++)
		if (pipe(bar[i]) < 0)
			return -1;
	for (i = 0; i < lg_phases(); i++)
		if (pipe(lg_go[i]) < 0)
			return -1;
	if ((lg.sys == SYS_FLOOR_TCP || lg.sys == SYS_FLOOR_TCP_SEND) &&
	    (fpid = floor_tcp_start()) < 0) {
		perror("forkchat-load: floor-tcp server");
		return -1;
	}
	if ((pids = fork_clients()) == NULL) {
		floor_tcp_stop(fpid);
		return -1;
	}
	if (client_setup_phase(r, &w, pids) < 0) {
		floor_tcp_stop(fpid);
		return -1;
	}
	if (lg.connect_only || lg.hold) {
		if (!lg.quiet) /* --hold: before the caller returns */
			fprintf(stderr,
			    "%s: %d clients connected and registered "
			    "in %.1f ms\n",
			    lg.sysname, lg.n, (double)r->connect_ns / 1e6);
		if (notify >= 0 && write(notify, "k", 1) == 1)
			close(notify);
		arm_alarm(lg.hold > 0 ? lg.hold + 10 : 10);
		for (i = 0; i < lg.n; i++)
			waitpid(pids[i], NULL, 0);
		if (lg.hold)
			_exit(0);
		return 0;
	}
	if (lg.settle > 0)
		sleep_until(secs(lg.settle));
	for (i = 0, rc = 0; i < lg_phases() && rc == 0; i++)
		rc = client_traffic(r, &w, i);
	if (lg.linger > 0) /* bench/cost_split.py reads the server now */
		sleep_until(secs(lg.linger));
	parent_finish(lg_status_rd, &w, pids, lg.n);
	floor_tcp_stop(fpid);
	return rc < 0 || w.failed ? -1 : 0;
}
