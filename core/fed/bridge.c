/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bridge.c - the federation bridge child (docs/SCALING.md).
 *
 * Two Redis connections: "cmd" carries pipelined commands (XADD of this
 * hub's events, the nick scripts) and "sub" one XREAD BLOCK at a time on
 * the shared event stream.  Both sockets are non-blocking with O_ASYNC, so
 * the kernel's SIGIO joins SIGUSR2 (the parent wrote to our pipe) in one
 * sigtimedwait(); there is no select, poll, thread or event library.
 *
 * Delivery: every reliable event carries ORIGIN and a per-origin sequence
 * number, both given by the parent.  An event stays in the outbox until its
 * XADD is acknowledged; after a reconnect the unacknowledged ones are sent
 * again, in order, and receivers drop a sequence number they have already
 * seen (fed.c), so a lost reply never turns into a duplicate.  The reader
 * resumes XREAD from the last stream id it handled.  The parent is told of
 * both (IPC_FED_ACKED, IPC_FED_CURSOR), so a bridge that dies loses no
 * state: the next one is handed the rest and reads on from the cursor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fed/bridge.h"
#include "lib/buf.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "fed/fedev.h"
#include "fed/fedipc.h"
#include "chat/name.h"
#include "sys/net.h"
#include "sys/proc.h"
#include "fed/resp.h"

#define MAX_NODES      4096
#define XREAD_COUNT    "256"
#define XREAD_BLOCK    "2000" /* ms, as XREAD_BLOCK_MS */
#define XREAD_BLOCK_MS 2000
#define BACKOFF_MIN    100
#define BACKOFF_MAX    5000
#define OUTBOX_MAX     (64u * 1024 * 1024)
#define KEYSZ          NAME_KEYSZ /* a nick key (name.h) and its NUL */

/*
 * Nick keys: KEYS[1] = fc:nick:KEY holds "STAMP ORIGIN", STAMP being when
 * the nick was taken on that hub (ms since the epoch); KEYS[2] =
 * fc:clash:KEY marks a clash its holder has not been told of.  ARGV: our
 * origin, the TTL, our STAMP (0: unknown), now.
 *
 * Claim a nick for a new user: its STAMP if it is ours now, 0 if another
 * hub holds it.
 */
static const char claim_lua[] =
    "local v=redis.call('get',KEYS[1]) "
    "if v then local t,o=string.match(v,'^(%d+) (.+)$') "
    "if o~=ARGV[1] then return 0 end end "
    "redis.call('set',KEYS[1],ARGV[3]..' '..ARGV[1],'EX',ARGV[2]) "
    "return tonumber(ARGV[3])";
/*
 * Refresh a nick a user of ours holds.  Two hubs that could not reach
 * Redis may both have given it away; when they meet here, the user who
 * took it first keeps it (the lower STAMP; equal ones: the lower origin),
 * whichever hub comes first.  Returns the holder's STAMP if it is ours,
 * minus it if it is ours and another hub's user lost it to us (told
 * once), 0 if it is another hub's now (we lost: our user goes).
 */
static const char refresh_lua[] =
    "local v=redis.call('get',KEYS[1]) local s=tonumber(ARGV[3]) "
    "if v then local t,o=string.match(v,'^(%d+) (.+)$') "
    "if o==ARGV[1] then redis.call('expire',KEYS[1],ARGV[2]) "
    "if redis.call('del',KEYS[2])==1 then return -tonumber(t) end "
    "return tonumber(t) end "
    "if t and (s==0 or tonumber(t)<s or (tonumber(t)==s and o<ARGV[1])) "
    "then redis.call('set',KEYS[2],'1','EX',ARGV[2]) return 0 end end "
    "if s==0 then s=tonumber(ARGV[4]) end "
    "redis.call('set',KEYS[1],s..' '..ARGV[1],'EX',ARGV[2]) return s";
static const char release_lua[] =
    "local v=redis.call('get',KEYS[1]) "
    "if v and string.match(v,'^%d+ (.+)$')==ARGV[1] then "
    "redis.call('del',KEYS[2]) return redis.call('del',KEYS[1]) end "
    "return 0";

enum tag_kind {
	TAG_XADD = 1,
	TAG_SYNC,
	TAG_CLAIM,
	TAG_REFRESH,
	TAG_INFO,
	TAG_OTHER
};

struct tag {
	enum tag_kind kind;
	uint32_t token;
	char key[KEYSZ];
};

struct owned {
	char key[KEYSZ];
	long long stamp; /* when it was taken here (wall_ms), 0: unknown */
};

struct conn {
	int fd;
	struct buf out, in;
	struct buf tags;       /* struct tag FIFO, one per reply expected */
	long long progress_ms; /* last reply, or first request after none */
};

struct bridge {
	const struct bridge_cfg *cfg;
	struct conn cmd, sub;
	int up;      /* connected (sockets open) */
	int live;    /* and Redis answered: the parent was told it is up */
	int broken;  /* a record for the parent was lost (out of memory) */
	int reading; /* an XREAD is outstanding on sub */
	char lastid[64];
	long long retry_ms, backoff, last_refresh_ms;
	int outage_logged;
	long long down_since_ms; /* when the outage being logged began */
	long long silent_since;  /* a hang: when Redis last answered */
	/* [seq 8][len 4][body]: nacked bytes of acknowledged events kept
	 * (BRIDGE_RETAIN), then those Redis has not acknowledged */
	struct buf outbox;
	size_t nacked, nsent; /* bytes from the head: acked, written */
	int await_info;       /* connected; INFO not answered: send nothing */
	char run_id[48];      /* the Redis our acknowledged events are in */
	unsigned long long acked, acked_told; /* the parent's view */
	struct owned *owned;                  /* our users' nicks */
	size_t nowned, capowned;
	struct buf pin;  /* records from the parent */
	struct buf pout; /* records for the parent, written once a turn */
	struct resp_node nodes[MAX_NODES];
};

/* ---- to the parent -------------------------------------------------- */

/* Queue a record for the parent; flush_parent() writes the turn's batch. */
static void
to_parent(struct bridge *b, uint16_t type, uint16_t code, uint32_t slot,
    const char *p, size_t len)
{
	if (ipc_put(&b->pout, slot, type, code, p, len) < 0)
		b->broken = 1; /* a record lost: end after this turn */
}

/*
 * One blocking write and one SIGUSR1 per turn, however many events it
 * holds.  The parent never waits for the bridge, so this cannot deadlock.
 * -1 if the pipe failed: what was not written is lost, so the bridge must
 * end, and the parent hands the next one everything from its cursor on.
 */
static int
flush_parent(struct bridge *b)
{
	ssize_t n;

	if (b->acked != b->acked_told) {
		to_parent(b, IPC_FED_ACKED, 0, 0, (const char *)&b->acked, 8);
		b->acked_told = b->acked;
	}
	if (buf_used(&b->pout) == 0)
		return b->broken ? -1 : 0;
	while (buf_used(&b->pout) > 0) {
		n = FAIL("forkchatd/bridge/up", EIO) ?
		    -1 :
		    write(
		        b->cfg->up_fd, buf_head(&b->pout), buf_used(&b->pout));
		if (n > 0)
			buf_consume(&b->pout, (size_t)n);
		else if (n < 0 && errno == EINTR)
			continue;
		else
			return -1;
	}
	kill(b->cfg->parent, SIGUSR1);
	return b->broken ? -1 : 0;
}

static void __attribute__((format(printf, 3, 4)))
blog(struct bridge *b, int level, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n > 0)
		to_parent(b, IPC_FED_LOG, (uint16_t)level, 0, text,
		    strnlen(text, sizeof(text)));
}

/* ---- connections ---------------------------------------------------- */

static int
command(struct conn *c, enum tag_kind kind, uint32_t token, const char *key,
    int argc, const char *const *argv, const size_t *argl)
{
	struct tag t;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	t.token = token;
	if (key != NULL)
		snprintf(t.key, sizeof(t.key), "%s", key);
	if (buf_used(&c->tags) == 0) /* a reply is due from now */
		c->progress_ms = clock_mono_ms();
	if (resp_command(&c->out, argc, argv, argl) < 0 ||
	    buf_append(&c->tags, &t, sizeof(t)) < 0)
		return -1;
	return 0;
}

static int
dial(struct bridge *b)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = { 1, 0 };
	char port[16];
	int fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", b->cfg->port);
	if (getaddrinfo(b->cfg->host, port, &hints, &res) != 0 || res == NULL)
		return -1;
	fd = FAIL("forkchatd/bridge/connect", ECONNREFUSED) ?
	    -1 :
	    socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* a bounded blocking connect: SO_SNDTIMEO applies to connect(2) */
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    net_async(fd) < 0) {
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->out);
	buf_reset(&c->in);
	buf_reset(&c->tags);
}

/* ---- outbox ----------------------------------------------------------- */

static int
send_event(struct bridge *b, unsigned long long seq, const char *body,
    size_t len, enum tag_kind kind)
{
	char head[KEYSZ + 32];
	struct buf e = BUF_INIT;
	int n = snprintf(head, sizeof(head), "%s %llu ", b->cfg->origin, seq);
	/* XADD KEY MAXLEN ~ N * e VALUE */
	const char *av[8] = { "XADD", BRIDGE_STREAM, "MAXLEN", "~",
		BRIDGE_MAXLEN, "*", "e", NULL };
	size_t al[8];
	int i, rc;

	if (buf_append(&e, head, (size_t)n) < 0 ||
	    buf_append(&e, body, len) < 0) {
		buf_free(&e);
		return -1;
	}
	for (i = 0; i < 7; i++)
		al[i] = strlen(av[i]);
	av[7] = buf_head(&e);
	al[7] = buf_used(&e);
	rc = command(&b->cmd, kind, 0, NULL, 8, av, al);
	buf_free(&e);
	return rc;
}

/*
 * Write every outbox entry not yet sent on this connection.  An entry
 * Redis had acknowledged (sent again after a restart) is not acknowledged
 * twice: its reply is ignored (TAG_OTHER).
 */
static void
outbox_send(struct bridge *b)
{
	unsigned long long seq;
	uint32_t len;

	while (fedipc_entry_at(&b->outbox, b->nsent, &seq, &len)) {
		if (send_event(b, seq,
		        buf_head(&b->outbox) + b->nsent + FEDIPC_ENTRY_HDR, len,
		        b->nsent < b->nacked ? TAG_OTHER : TAG_XADD) < 0)
			return;
		b->nsent += fedipc_entry_size(len);
	}
}

/* The entry at nacked was acknowledged; keep BRIDGE_RETAIN bytes of them. */
static void
outbox_ack(struct bridge *b)
{
	unsigned long long seq;
	uint32_t len;

	if (!fedipc_entry_at(&b->outbox, b->nacked, &b->acked, &len))
		return;
	b->nacked += fedipc_entry_size(len);
	while (b->nacked > BRIDGE_RETAIN &&
	    fedipc_entry_at(&b->outbox, 0, &seq, &len)) {
		buf_consume(&b->outbox, fedipc_entry_size(len));
		b->nacked -= fedipc_entry_size(len);
		b->nsent = b->nsent > fedipc_entry_size(len) ?
		    b->nsent - fedipc_entry_size(len) :
		    0;
	}
}

/* Redis answered on a new connection: it is up (logged, parent told). */
static void
now_live(struct bridge *b)
{
	if (b->live)
		return;
	if (b->outage_logged)
		blog(b, 1, "federation: redis %s:%d back after %lld ms out",
		    b->cfg->host, b->cfg->port,
		    clock_mono_ms() - b->down_since_ms);
	b->live = 1;
	b->outage_logged = 0;
	b->backoff = BACKOFF_MIN;
	blog(b, 0, "federation: connected to redis %s:%d as %s", b->cfg->host,
	    b->cfg->port, b->cfg->origin);
	to_parent(b, IPC_FED_UP, 1, 0, "", 0);
}

/*
 * INFO answered on a new connection.  Another run_id than the one our
 * acknowledged events went to means Redis restarted and may have lost
 * some before every hub read them: send the kept ones again (readers drop
 * what they have seen).  Then the unacknowledged ones, as always.
 */
static void
info_reply(struct bridge *b, const struct resp_node *n)
{
	const char *p = NULL, *e;
	size_t i;

	if (n[0].type == RESP_BULK && n[0].len > 7)
		for (i = 0; i + 7 <= n[0].len; i++)
			if (memcmp(n[0].s + i, "run_id:", 7) == 0 &&
			    (i == 0 || n[0].s[i - 1] == '\n')) {
				p = n[0].s + i + 7;
				break;
			}
	b->nsent = b->nacked;
	if (p != NULL) {
		for (e = p; e < n[0].s + n[0].len && *e != '\r' && *e != '\n';
		     e++)
			;
		if ((size_t)(e - p) < sizeof(b->run_id) &&
		    (strlen(b->run_id) != (size_t)(e - p) ||
		        memcmp(b->run_id, p, (size_t)(e - p)) != 0)) {
			if (b->run_id[0] && b->nacked > 0) {
				blog(b, 1,
				    "federation: redis restarted (run_id "
				    "%.8s... was %.8s...): sending again the "
				    "%zu bytes of events it had acknowledged",
				    p, b->run_id, b->nacked);
				b->nsent = 0;
			}
			memcpy(b->run_id, p, (size_t)(e - p));
			b->run_id[e - p] = '\0';
			to_parent(b, IPC_FED_REDIS, 0, 0, b->run_id,
			    strlen(b->run_id));
		}
	}
	b->await_info = 0;
	now_live(b);
	outbox_send(b);
}

/* ---- nicks -------------------------------------------------------------- */

/* Milliseconds since the epoch: nick stamps are compared across hubs. */
static long long
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nick_script(struct bridge *b, enum tag_kind kind, uint32_t token,
    const char *key, long long stamp, const char *script)
{
	char rkey[KEYSZ + 16], ckey[KEYSZ + 16], ttl[16], st[24], now[24];
	const char *av[10];
	size_t al[10];
	int i;

	snprintf(rkey, sizeof(rkey), BRIDGE_NICK_KEY "%s", key);
	snprintf(ckey, sizeof(ckey), BRIDGE_CLASH_KEY "%s", key);
	snprintf(ttl, sizeof(ttl), "%d", b->cfg->nick_ttl);
	snprintf(st, sizeof(st), "%lld", stamp);
	snprintf(now, sizeof(now), "%lld", wall_ms());
	av[0] = "EVAL";
	av[1] = script;
	av[2] = "2";
	av[3] = rkey;
	av[4] = ckey;
	av[5] = b->cfg->origin;
	av[6] = ttl;
	av[7] = st;
	av[8] = now;
	for (i = 0; i < 9; i++)
		al[i] = strlen(av[i]);
	(void)command(&b->cmd, kind, token, key, 9, av, al);
}

static struct owned *
owned_find(struct bridge *b, const char *key)
{
	size_t i;

	for (i = 0; i < b->nowned; i++)
		if (strcmp(b->owned[i].key, key) == 0)
			return &b->owned[i];
	return NULL;
}

/* A nick of ours, taken at stamp (0: unknown, Redis knows). */
static void
owned_add(struct bridge *b, const char *key, long long stamp)
{
	struct owned *o = owned_find(b, key);

	if (o == NULL && b->nowned == b->capowned) {
		o = realloc(b->owned, (b->capowned * 2 + 16) * sizeof(*o));
		if (o == NULL)
			return;
		b->owned = o;
		b->capowned = b->capowned * 2 + 16;
		o = NULL;
	}
	if (o == NULL)
		o = &b->owned[b->nowned++];
	snprintf(o->key, sizeof(o->key), "%s", key);
	o->stamp = stamp;
}

static void
owned_del(struct bridge *b, const char *key)
{
	struct owned *o = owned_find(b, key);

	if (o != NULL)
		*o = b->owned[--b->nowned];
}

static void
refresh_nicks(struct bridge *b)
{
	size_t i;

	for (i = 0; i < b->nowned; i++)
		nick_script(b, TAG_REFRESH, 0, b->owned[i].key,
		    b->owned[i].stamp, refresh_lua);
	b->last_refresh_ms = clock_mono_ms();
}

/* ---- the stream ------------------------------------------------------- */

static void
xread(struct bridge *b)
{
	const char *av[] = { "XREAD", "COUNT", XREAD_COUNT, "BLOCK",
		XREAD_BLOCK, "STREAMS", BRIDGE_STREAM, b->lastid };
	size_t al[8];
	int i;

	for (i = 0; i < 8; i++)
		al[i] = strlen(av[i]);
	if (command(&b->sub, TAG_OTHER, 0, NULL, 8, av, al) == 0)
		b->reading = 1;
}

/* One stream entry's value "ORIGIN SEQ BODY": not ours?  To the parent,
 * which drops what it has seen (fed.c). */
static void
handle_entry(struct bridge *b, const char *v, size_t len)
{
	size_t olen = strlen(b->cfg->origin);

	if (len > olen && v[olen] == ' ' &&
	    memcmp(v, b->cfg->origin, olen) == 0)
		return;      /* our own */
	if (len > FEDEV_MAX) /* not worth a copy: counted by the parent */
		to_parent(b, IPC_FED_EVENT, 2, 0, v, 64);
	else
		to_parent(b, IPC_FED_EVENT, 0, 0, v, len);
}

static void
handle_xread(struct bridge *b, size_t count)
{
	const struct resp_node *n = b->nodes;
	size_t e, end, f;
	int any = 0, got;

	b->reading = 0;
	if (count < 4 || n[0].type != RESP_ARRAY)
		return; /* nil: the block timed out */
	/* [[key, [[id, [field, value, ...]], ...]]] */
	if (n[1].type != RESP_ARRAY || n[2].type != RESP_BULK ||
	    n[3].type != RESP_ARRAY)
		return;
	end = resp_skip(n, count, 3);
	for (e = 4; e < end; e = resp_skip(n, count, e)) {
		if (n[e].type != RESP_ARRAY || n[e].n != 2 ||
		    n[e + 1].type != RESP_BULK || n[e + 2].type != RESP_ARRAY)
			continue;
		if (n[e + 1].len < sizeof(b->lastid)) {
			memcpy(b->lastid, n[e + 1].s, n[e + 1].len);
			b->lastid[n[e + 1].len] = '\0';
			any = 1;
		}
		for (got = 0, f = e + 3; f + 1 < resp_skip(n, count, e + 2);
		     f += 2)
			if (n[f].type == RESP_BULK && n[f].len == 1 &&
			    n[f].s[0] == 'e' && n[f + 1].type == RESP_BULK &&
			    !got++)
				handle_entry(b, n[f + 1].s, n[f + 1].len);
		if (!got) /* counted and logged by the parent */
			to_parent(b, IPC_FED_EVENT, 1, 0, "", 0);
	}
	if (any) /* after the events: a cursor never runs ahead of them */
		to_parent(
		    b, IPC_FED_CURSOR, 0, 0, b->lastid, strlen(b->lastid));
}

/*
 * A refresh answered (refresh_lua): stamp > 0, the nick is ours; < 0, it
 * is ours and a user of another hub who took it during an outage lost it
 * (the parent tells ours); 0, it went to another hub's earlier user (the
 * parent disconnects ours).
 */
static void
refreshed(struct bridge *b, const char *key, long long stamp)
{
	struct owned *o = owned_find(b, key);

	if (o == NULL) /* released meanwhile */
		return;
	if (stamp == 0) {
		blog(b, 1,
		    "federation: nick %s was taken earlier on another hub while "
		    "the hubs were cut off: its local user goes",
		    key);
		owned_del(b, key);
		to_parent(b, IPC_FED_LOST, 0, 0, key, strlen(key));
		return;
	}
	o->stamp = stamp < 0 ? -stamp : stamp;
	if (stamp < 0) {
		blog(b, 1,
		    "federation: nick %s was also taken on another hub while "
		    "the hubs were cut off: taken here first, kept here",
		    key);
		to_parent(b, IPC_FED_LOST, 1, 0, key, strlen(key));
	}
}

/* ---- replies ------------------------------------------------------------ */

static void
handle_reply(struct bridge *b, const struct tag *t, size_t count)
{
	const struct resp_node *n = b->nodes;
	int ok;

	if (n[0].type == RESP_ERROR)
		blog(b, 2, "federation: redis error: %.*s", (int)n[0].len,
		    n[0].s);
	switch (t->kind) {
	case TAG_SYNC: /* our first id: read everything after it */
		if (b->lastid[0] == '\0' && n[0].type == RESP_BULK &&
		    n[0].len < sizeof(b->lastid)) {
			memcpy(b->lastid, n[0].s, n[0].len);
			b->lastid[n[0].len] = '\0';
			to_parent(b, IPC_FED_CURSOR, 0, 0, b->lastid,
			    strlen(b->lastid));
		}
		if (!b->reading && b->lastid[0] != '\0')
			xread(b);
		break;
	case TAG_XADD:
		outbox_ack(b);
		break;
	case TAG_INFO:
		info_reply(b, n);
		break;
	case TAG_CLAIM:
		ok = n[0].type == RESP_INT && n[0].n > 0;
		if (!ok && n[0].type != RESP_ERROR)
			owned_del(b, t->key);
		to_parent(b, IPC_FED_CLAIMED,
		    (uint16_t)(ok || n[0].type == RESP_ERROR), t->token, "", 0);
		break;
	case TAG_REFRESH:
		if (n[0].type == RESP_INT)
			refreshed(b, t->key, n[0].n);
		break;
	case TAG_OTHER:
		break;
	}
	(void)count;
}

/* 0, or -1 if the connection failed. */
static int
conn_read(struct bridge *b, struct conn *c, int is_sub)
{
	struct tag t;
	size_t count;
	ssize_t n;
	long used;
	char *p;

	for (;;) {
		if ((p = buf_reserve(&c->in, 64 * 1024)) == NULL)
			return -1;
		n = FAIL("forkchatd/bridge/read", ECONNRESET) ?
		    -1 :
		    read(c->fd, p, buf_room(&c->in));
		if (n > 0) {
			buf_commit(&c->in, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		return -1; /* EOF or error */
	}
	while (buf_used(&c->in) > 0) {
		used = resp_parse(buf_head(&c->in), buf_used(&c->in), b->nodes,
		    MAX_NODES, &count);
		if (used < 0)
			return -1;
		if (used == 0)
			break;
		c->progress_ms = clock_mono_ms();
		if (is_sub) {
			if (buf_used(&c->tags) >= sizeof(t))
				buf_consume(&c->tags, sizeof(t));
			handle_xread(b, count);
		} else if (buf_used(&c->tags) >= sizeof(t)) {
			memcpy(&t, buf_head(&c->tags), sizeof(t));
			buf_consume(&c->tags, sizeof(t));
			handle_reply(b, &t, count);
		}
		buf_consume(&c->in, (size_t)used);
	}
	if (is_sub && !b->reading && b->lastid[0] != '\0')
		xread(b);
	return 0;
}

static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->fd >= 0 && buf_used(&c->out) > 0) {
		n = FAIL("forkchatd/bridge/write", EPIPE) ?
		    -1 :
		    write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n > 0)
			buf_consume(&c->out, (size_t)n);
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			return 0; /* SIGIO when there is room */
		else
			return -1;
	}
	return 0;
}

/* ---- up and down -------------------------------------------------------- */

static void
go_down(struct bridge *b, const char *why)
{
	struct tag t;

	/* claims in flight: accept them locally, the refresh re-checks */
	while (buf_used(&b->cmd.tags) >= sizeof(t)) {
		memcpy(&t, buf_head(&b->cmd.tags), sizeof(t));
		buf_consume(&b->cmd.tags, sizeof(t));
		if (t.kind == TAG_CLAIM)
			to_parent(b, IPC_FED_CLAIMED, 1, t.token, "", 0);
	}
	conn_close(&b->cmd);
	conn_close(&b->sub);
	b->nsent = b->nacked;
	b->await_info = 0;
	b->reading = 0;
	b->up = 0;
	if (b->live) {
		b->live = 0;
		b->backoff = BACKOFF_MIN;
		to_parent(b, IPC_FED_UP, 0, 0, "", 0);
	}
	if (!b->outage_logged) {
		blog(b, 2,
		    "federation: redis %s:%d unavailable (%s); local service "
		    "continues, reconnecting with backoff",
		    b->cfg->host, b->cfg->port, why);
		b->outage_logged = 1;
		b->down_since_ms =
		    b->silent_since ? b->silent_since : clock_mono_ms();
	}
	b->silent_since = 0;
	b->retry_ms = clock_mono_ms() + b->backoff;
	/* at most the timeout: after a hang, Redis is back that soon */
	b->backoff *= 2;
	if (b->backoff > BACKOFF_MAX || b->backoff > b->cfg->timeout_ms)
		b->backoff = BACKOFF_MAX < b->cfg->timeout_ms ?
		    BACKOFF_MAX :
		    b->cfg->timeout_ms;
}

static void
ask_info(struct bridge *b)
{
	const char *av[] = { "INFO", "server" };
	const size_t al[] = { 4, 6 };

	b->await_info = 1;
	(void)command(&b->cmd, TAG_INFO, 0, NULL, 2, av, al);
}

static void
sync_event(struct bridge *b)
{
	(void)send_event(b, 0, "S", 1, TAG_SYNC);
}

static void
go_up(struct bridge *b)
{
	if ((b->cmd.fd = dial(b)) < 0) {
		go_down(b, strerror(errno));
		return;
	}
	if ((b->sub.fd = dial(b)) < 0) {
		go_down(b, strerror(errno));
		return;
	}
	/* connected, but up only once Redis answers (a stopped Redis
	 * still completes connections: its kernel does) */
	b->up = 1;
	ask_info(b);   /* first: which Redis is this (then the outbox goes) */
	sync_event(b); /* its id is where a new hub starts reading */
	if (b->lastid[0] != '\0')
		xread(b);
	refresh_nicks(b);
}

/*
 * A reply due on c for longer than the timeout (plus extra, the time Redis
 * may legitimately take, as for XREAD BLOCK): Redis hangs.  Returns the
 * ms left until that point (<= 0: it is reached; LLONG_MAX: none due).
 */
static long long
reply_left(const struct bridge *b, const struct conn *c, long long extra,
    long long now)
{
	if (c->fd < 0 || buf_used(&c->tags) == 0)
		return LLONG_MAX;
	return c->progress_ms + b->cfg->timeout_ms + extra - now;
}

/*
 * --redis-timeout: a Redis that stops answering (SIGSTOP, a hung host, a
 * partition that drops packets) is down once a reply is overdue, like a
 * closed connection.  An idle command connection is probed with PING, so
 * an outage is noticed within two timeouts even with nothing to send.
 * Returns the ms until the next check is due.
 */
static long long
watch_replies(struct bridge *b, long long now)
{
	static const char *const ping[] = { "PING" };
	static const size_t pingl[] = { 4 };
	long long cl, sl;
	char why[64];

	if (!b->up)
		return LLONG_MAX;
	cl = reply_left(b, &b->cmd, 0, now);
	sl = reply_left(b, &b->sub, XREAD_BLOCK_MS, now);
	if (cl <= 0 || sl <= 0) {
		snprintf(why, sizeof(why), "no reply for %lld ms",
		    cl <= 0 ? b->cfg->timeout_ms - cl :
		              b->cfg->timeout_ms - sl);
		b->silent_since =
		    cl <= 0 ? b->cmd.progress_ms : b->sub.progress_ms;
		go_down(b, why);
		return LLONG_MAX;
	}
	if (cl == LLONG_MAX && now - b->cmd.progress_ms >= b->cfg->timeout_ms) {
		(void)command(&b->cmd, TAG_OTHER, 0, NULL, 1, ping, pingl);
		cl = b->cfg->timeout_ms;
	}
	return cl < sl ? cl : sl;
}

/* ---- records from the parent -------------------------------------------- */

static void
handle_parent(struct bridge *b, const struct ipc_hdr *h, const char *p)
{
	char key[KEYSZ];
	const struct owned *o;
	uint32_t len = h->len, blen;
	unsigned long long seq;

	switch (h->type) {
	case IPC_FED_PUB:
		if (h->code == 1) { /* presence: only worth sending live */
			if (b->up)
				(void)send_event(b, 0, p, len, TAG_OTHER);
			break;
		}
		/* [seq][len][body], numbered and kept by the parent too */
		if (!fedipc_entry_get(p, len, &seq, &blen) ||
		    fedipc_entry_size(blen) != len)
			break;
		if (buf_used(&b->outbox) > OUTBOX_MAX) {
			blog(b, 2, "federation: outbox full, event dropped");
			break;
		}
		if (buf_append(&b->outbox, p, len) < 0)
			break;
		if (seq <= b->acked) /* handed over */
			b->nacked += len;
		if (b->up && !b->await_info)
			outbox_send(b);
		break;
	case IPC_FED_CLAIM:
	case IPC_FED_RELEASE:
		snprintf(key, sizeof(key), "%.*s", (int)len, p);
		if (h->type == IPC_FED_RELEASE) {
			owned_del(b, key);
			if (b->up)
				nick_script(
				    b, TAG_OTHER, 0, key, 0, release_lua);
			break;
		}
		/* taken now if new; a re-claim's stamp is in Redis */
		owned_add(b, key, h->slot ? wall_ms() : 0);
		o = owned_find(b, key);
		if (h->slot == 0) { /* one of ours again: a refresh */
			if (b->up && o != NULL)
				nick_script(b, TAG_REFRESH, 0, key, o->stamp,
				    refresh_lua);
		} else if (b->up && o != NULL)
			nick_script(
			    b, TAG_CLAIM, h->slot, key, o->stamp, claim_lua);
		else
			to_parent(b, IPC_FED_CLAIMED, 1, h->slot, "", 0);
		break;
	}
}

/*
 * 0, or -1 when the parent closed the pipe, or -2 if what it wrote cannot
 * be framed (never: the parent writes whole records).
 */
static int
read_parent_records(struct bridge *b)
{
	static const struct ipc_rd rd = { 64 * 1024, 0 };
	struct ipc_hdr h;
	size_t n = 0;
	int r;

	if (ipc_read(b->cfg->down_fd, &b->pin, &rd, SIZE_MAX, &n) ==
	    IPC_READ_EOF)
		return -1;
	while ((r = ipc_next(&b->pin, FEDIPC_MAX, &h)) > 0) {
		handle_parent(b, &h, buf_head(&b->pin) + IPC_HDR);
		buf_consume(&b->pin, ipc_size(&h));
	}
	return r < 0 ? -2 : 0;
}

/*
 * SIGTERM: take the parent's last records and give Redis up to a second to
 * acknowledge the outbox, so a hub that stops does not drop what its
 * clients said last.  Nothing more goes to the parent, which is waiting.
 */
static void
drain_on_exit(struct bridge *b)
{
	struct timespec ts = { 0, 20 * 1000000 };
	long long end = clock_mono_ms() + 1000;
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	(void)read_parent_records(b);
	while (b->up &&
	    (buf_used(&b->outbox) > b->nacked || buf_used(&b->cmd.out) > 0) &&
	    clock_mono_ms() < end) {
		if (conn_flush(&b->cmd) < 0 || conn_read(b, &b->cmd, 0) < 0)
			break;
		(void)sigtimedwait(&set, &si, &ts);
	}
}

int
bridge_run(const struct bridge_cfg *cfg)
{
	static struct bridge b;
	struct timespec ts;
	long long now, ms, wait;
	sigset_t set;
	siginfo_t si;
	int sig, r;

	memset(&b, 0, sizeof(b));
	b.cfg = cfg;
	snprintf(b.lastid, sizeof(b.lastid), "%s", cfg->lastid);
	snprintf(b.run_id, sizeof(b.run_id), "%s", cfg->run_id);
	b.acked = b.acked_told = cfg->acked;
	b.cmd.fd = b.sub.fd = -1;
	b.backoff = BACKOFF_MIN;
	proc_child_sigs(&set); /* blocked since the fork */
	if (net_set_flags(cfg->down_fd, O_NONBLOCK) < 0)
		return 1;
	go_up(&b);
	for (;;) {
		now = clock_mono_ms();
		if (!b.up && now >= b.retry_ms)
			go_up(&b);
		if (b.up &&
		    now - b.last_refresh_ms >= cfg->nick_ttl * 1000LL / 3)
			refresh_nicks(&b);
		if ((r = read_parent_records(&b)) == -2)
			return 3; /* the parent logs it and starts another */
		if (r < 0) {
			drain_on_exit(&b);
			return 0;
		}
		if (b.up &&
		    (conn_read(&b, &b.cmd, 0) < 0 ||
		        conn_read(&b, &b.sub, 1) < 0))
			go_down(&b, "connection lost");
		wait = watch_replies(&b, clock_mono_ms());
		if (b.up && (conn_flush(&b.cmd) < 0 || conn_flush(&b.sub) < 0))
			go_down(&b, "write failed");
		if (flush_parent(&b) < 0)
			return 3; /* the parent logs it and starts another */
		ms = b.up ? 1000 : b.retry_ms - clock_mono_ms();
		if (wait < ms)
			ms = wait;
		if (b.up && (buf_used(&b.cmd.out) || buf_used(&b.sub.out)))
			ms = 50;
		if (ms < 0)
			ms = 0;
		if (ms > 1000)
			ms = 1000;
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000;
		sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM) {
			drain_on_exit(&b);
			return 0;
		}
	}
}
