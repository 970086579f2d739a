/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fed.c - the parent's side of federation (docs/SCALING.md).
 *
 * The parent never talks to Redis: it forks the bridge (bridge.c) and
 * exchanges ipc.h records with it over a pipe pair.  Like every pipe the
 * parent writes, the one to the bridge is non-blocking, and what it cannot
 * take waits in a buffer, so a stuck bridge or Redis never stalls a local
 * client.
 *
 * What must survive a bridge that dies lives here, not in the bridge: the
 * origin (one per run of the hub), the sequence numbers of our events, the
 * events the bridge has not yet seen acknowledged by Redis, the nick claims
 * it has not answered, the stream id up to which remote events were handed
 * over, and the last sequence number seen from every other origin.  A new
 * bridge is given all of it, so a bridge crash loses and duplicates nothing
 * (docs/SCALING.md).  Event values on the stream are "ORIGIN SEQ BODY":
 *   M ROOMKEY LINE            a room-wide line (MSG, JOIN, PART, OWNER)
 *   W HUB FROM TO TEXT        a whisper for TO on HUB
 *   D ROOMKEY BY              the owner BY removed the room: everywhere
 *   O ROOMKEY                 the room's owner left; nobody inherited it
 *   P HUB\n SNAPSHOT          presence: rooms and users (unreliable)
 *   S                         a hub (re)joined: publish presence
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fed/bridge.h"
#include "lib/buf.h"
#include "sys/proc.h"
#include "sys/clock.h"
#include "sys/failpoint.h"
#include "fed/fed.h"
#include "fed/fedev.h"
#include "fed/fedipc.h"
#include "sys/log.h"
#include "chat/name.h"
#include "sys/net.h"
#include "lib/plural.h"
#include "lib/proto.h"

#define PRESENCE_MIN_MS 200  /* at most one snapshot per this */
#define RESTART_MS      1000 /* a dead bridge is restarted after */
#define FED_BACKLOG_MAX (256u << 20)
#define UNACKED_MAX     (64u << 20) /* our events Redis has not taken */
#define MAX_ORIGINS     256         /* dedup state: LRU by last use */
#define KEYSZ           128
#define RELEASED        256         /* releases a new bridge repeats */
#define STOP_MS         3000        /* a bridge told to stop is killed after */
#define FED_IN_MAX      (16u << 20) /* records read ahead of handling */

struct seen { /* the last sequence number handled from one origin */
	char origin[KEYSZ];
	unsigned long long seq;
	long long used_ms;
};

struct claim { /* a nick claim the bridge has not answered */
	unsigned token;
	char key[NAME_KEYSZ];
};

struct release { /* a nick given up, repeated to a new bridge */
	long long at_ms;
	char key[NAME_KEYSZ];
};

struct fed {
	struct fed_cfg cfg;
	struct chat *chat;
	pid_t pid; /* the bridge, 0 while it is not running */
	int to_fd, from_fd;
	struct buf out, in;
	char hub[72];
	char origin[KEYSZ];
	int dirty, wake, spawn_failed;
	long long last_pub_ms, restart_ms;
	unsigned long long seq; /* of our last reliable event */
	/* [seq 8][len 4][body]: first up to BRIDGE_RETAIN bytes (nacked) of
	 * events Redis acknowledged (sent again if it restarts), then the
	 * ones it has not acknowledged yet */
	struct buf events;
	size_t nacked;
	unsigned long long acked; /* Redis has every event up to this seq */
	char run_id[48];          /* of that Redis */
	struct release released[RELEASED]; /* the last releases (a ring) */
	size_t nreleased;                  /* ever; the ring holds the last */
	struct claim *claims; /* sent, or to send, and not answered */
	size_t nclaims;       /* at most one per client slot */
	char lastid[64];      /* the stream id read up to */
	struct seen seen[MAX_ORIGINS];
	/* for /stats */
	unsigned long long events_in, dups, restarts, malformed, lost;
	int redis_up;
	/* the presence clock: stands still while Redis is down, so other
	 * hubs are forgotten only when they, not Redis, went silent */
	long long down_since_ms, down_total_ms;
};

/* Redis up or down (the bridge said so, or it died). */
static void
set_up(struct fed *f, int up)
{
	long long now = clock_mono_ms();

	if (up && !f->redis_up)
		f->down_total_ms += now - f->down_since_ms;
	if (!up && f->redis_up)
		f->down_since_ms = now;
	f->redis_up = up;
}

/* Monotonic ms without the time Redis was down. */
static long long
presence_clock(const struct fed *f, long long now)
{
	return now - f->down_total_ms -
	    (f->redis_up ? 0 : now - f->down_since_ms);
}

/* A record for the bridge; dropped while none runs (see publish()). */
static void
record(struct fed *f, uint16_t type, uint16_t code, uint32_t slot,
    const void *a, size_t al, const void *b, size_t bl)
{
	if (f->pid == 0)
		return;
	if (buf_used(&f->out) > FED_BACKLOG_MAX) {
		log_error("federation: bridge backlog full, event dropped");
		return;
	}
	if (ipc_put2(&f->out, slot, type, code, a, al, b, bl) < 0) {
		log_error("federation: out of memory, record dropped");
		return;
	}
	f->wake = 1;
}

/*
 * A reliable event: numbered, kept until the bridge reports that Redis has
 * it, and handed to the bridge now if one runs (else to the next one).  The
 * record's payload is the kept entry itself: [seq 8][len 4][body].
 */
static void
publish(struct fed *f, const char *head, size_t hl, const char *body, size_t bl)
{
	uint32_t len = (uint32_t)(hl + bl);
	char *e;

	if (buf_used(&f->events) - f->nacked > UNACKED_MAX) {
		log_error("federation: %zu bytes of events not acknowledged by "
		          "redis, event dropped",
		    buf_used(&f->events) - f->nacked);
		return;
	}
	if ((e = buf_reserve(&f->events, fedipc_entry_size(len))) == NULL) {
		log_error("federation: out of memory, event dropped");
		return;
	}
	f->seq++;
	fedipc_entry_head(e, f->seq, len);
	memcpy(e + FEDIPC_ENTRY_HDR, head, hl);
	memcpy(e + FEDIPC_ENTRY_HDR + hl, body, bl);
	buf_commit(&f->events, fedipc_entry_size(len));
	record(f, IPC_FED_PUB, 0, 0, e, fedipc_entry_size(len), "", 0);
}

/* Redis has every event up to seq; keep BRIDGE_RETAIN bytes of them. */
static void
acked(struct fed *f, unsigned long long upto)
{
	unsigned long long seq;
	uint32_t len;

	while (
	    fedipc_entry_at(&f->events, f->nacked, &seq, &len) && seq <= upto)
		f->nacked += fedipc_entry_size(len);
	if (upto > f->acked)
		f->acked = upto;
	while (f->nacked > BRIDGE_RETAIN &&
	    fedipc_entry_at(&f->events, 0, &seq, &len)) {
		buf_consume(&f->events, fedipc_entry_size(len));
		f->nacked -= fedipc_entry_size(len);
	}
}

/* ---- chat_fed hooks --------------------------------------------------- */

static void
h_room_line(void *ctx, const char *key, const char *line, size_t len)
{
	struct fed *f = ctx;
	char head[NAME_KEYSZ + 8];
	int n = snprintf(head, sizeof(head), "M %s ", key);

	if (len > 0 && line[len - 1] == '\n')
		len--;
	publish(f, head, (size_t)n, line, len);
}

/* Token 0: re-claim a nick we hold (a conflict ends in IPC_FED_LOST). */
static void
h_claim(void *ctx, unsigned token, const char *key)
{
	struct fed *f = ctx;
	struct claim *c;

	if (token != 0 && f->nclaims < (size_t)f->cfg.max_clients) {
		c = &f->claims[f->nclaims++];
		c->token = token;
		snprintf(c->key, sizeof(c->key), "%s", key);
	}
	record(f, IPC_FED_CLAIM, 0, token, key, strlen(key), "", 0);
}

static void
forget_claim(struct fed *f, size_t i)
{
	f->claims[i] = f->claims[--f->nclaims];
}

static void
h_release(void *ctx, const char *key)
{
	struct fed *f = ctx;
	struct release *r = &f->released[f->nreleased % RELEASED];
	size_t i;

	f->nreleased++;
	for (i = 0; i < f->nclaims; i++) /* its claim is moot now */
		if (strcmp(f->claims[i].key, key) == 0)
			forget_claim(f, i--);
	/* kept: a bridge that dies before running it is replaced by one that
	 * runs it again (compare-and-delete: harmless if done already) */
	r->at_ms = clock_mono_ms();
	snprintf(r->key, sizeof(r->key), "%s", key);
	record(f, IPC_FED_RELEASE, 0, 0, key, strlen(key), "", 0);
}

static void
h_whisper(void *ctx, const char *hub, const char *from, const char *to,
    const char *text, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "W %s %s %s ", hub, from, to);

	publish(ctx, head, (size_t)n, text, len);
}

static void
h_changed(void *ctx)
{
	((struct fed *)ctx)->dirty = 1;
}

static void
h_room_removed(void *ctx, const char *key, const char *by)
{
	char head[NAME_KEYSZ + 8];
	int n = snprintf(head, sizeof(head), "D %s ", key);

	publish(ctx, head, (size_t)n, by, strlen(by));
}

static void
h_room_orphaned(void *ctx, const char *key)
{
	publish(ctx, "O ", 2, key, strlen(key));
}

void
fed_hooks(struct chat_fed *hooks)
{
	hooks->room_line = h_room_line;
	hooks->claim = h_claim;
	hooks->release = h_release;
	hooks->whisper = h_whisper;
	hooks->changed = h_changed;
	hooks->room_removed = h_room_removed;
	hooks->room_orphaned = h_room_orphaned;
}

/* ---- presence ----------------------------------------------------------- */

static void
publish_presence(struct fed *f, long long now)
{
	struct buf b = BUF_INIT;
	int n;
	char head[96];

	n = snprintf(head, sizeof(head), "P %s\n", f->hub);
	if (buf_append(&b, head, (size_t)n) == 0 &&
	    chat_fed_snapshot(f->chat, &b) == 0)
		record(f, IPC_FED_PUB, 1, 0, buf_head(&b), buf_used(&b), "", 0);
	buf_free(&b);
	f->dirty = 0;
	f->last_pub_ms = now;
}

/* A new bridge knows none of our nicks: claim them again (token 0). */
static void
reclaim_all(struct fed *f)
{
	struct buf b = BUF_INIT;
	char key[NAME_KEYSZ];
	const char *p, *nl, *sp;

	if (chat_fed_snapshot(f->chat, &b) == 0)
		for (p = buf_head(&b); p < buf_head(&b) + buf_used(&b);
		     p = nl + 1) {
			nl = memchr(
			    p, '\n', (size_t)(buf_head(&b) + buf_used(&b) - p));
			if (nl == NULL)
				break;
			if (p[0] != 'U' ||
			    (sp = memchr(p + 2, ' ', (size_t)(nl - p - 2))) ==
			        NULL ||
			    name_key(p + 2, (size_t)(sp - p - 2), key) == 0)
				continue;
			h_claim(f, 0, key);
		}
	buf_free(&b);
}

/* ---- the bridge process --------------------------------------------- */

/*
 * A new bridge gets what the last one may have taken with it, in this
 * order: the releases of the last nick-ttl seconds (the last RELEASED of
 * them; older keys have expired), our nicks (re-claimed, so a nick
 * released and taken again here stays ours), the claims nobody answered,
 * and our events: those Redis acknowledged that we keep (cfg.acked says
 * which; sent again only if Redis turns out to have restarted) and every
 * one it has not.  It reads the stream from where the last one stopped
 * (cfg.lastid).
 */
static void
resume(struct fed *f)
{
	long long now = clock_mono_ms();
	const struct release *r;
	size_t i, off, n = 0;
	unsigned long long seq;
	uint32_t len;

	for (i = f->nreleased > RELEASED ? f->nreleased - RELEASED : 0;
	     i < f->nreleased; i++) {
		r = &f->released[i % RELEASED];
		if (now - r->at_ms <= f->cfg.nick_ttl * 1000LL)
			record(f, IPC_FED_RELEASE, 0, 0, r->key, strlen(r->key),
			    "", 0);
	}
	reclaim_all(f);
	for (i = 0; i < f->nclaims; i++)
		record(f, IPC_FED_CLAIM, 0, f->claims[i].token,
		    f->claims[i].key, strlen(f->claims[i].key), "", 0);
	for (off = 0; fedipc_entry_at(&f->events, off, &seq, &len);
	     off += fedipc_entry_size(len)) {
		record(f, IPC_FED_PUB, 0, 0, buf_head(&f->events) + off,
		    fedipc_entry_size(len), "", 0);
		n += off >= f->nacked;
	}
	if (f->lastid[0] || n || f->nclaims)
		log_info("federation: resuming: stream read from %s, %zu %s "
		         "and %zu %s handed over again",
		    f->lastid[0] ? f->lastid : "the start", n,
		    PLURAL(n, "event", "events"), f->nclaims,
		    PLURAL(f->nclaims, "nick claim", "nick claims"));
	f->dirty = 1;
	f->wake = 1;
}

/* No bridge can be started: decide the claims locally, like a bridge that
 * cannot reach Redis (the re-claim of the next bridge checks them). */
static void
claims_local(struct fed *f)
{
	struct claim c;

	while (f->nclaims > 0) {
		c = f->claims[--f->nclaims];
		chat_fed_claimed(f->chat, c.token, 1);
	}
}

static int
spawn_bridge(struct fed *f)
{
	static struct bridge_cfg cfg;
	int down[2], up[2], keep[2];
	pid_t parent = getpid(), pid;

	if (FAIL("forkchatd/fed/pipe", EMFILE) || pipe2(down, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]);
		close(down[1]);
		return -1;
	}
	(void)fcntl(down[1], F_SETPIPE_SZ, 1024 * 1024);
	if ((pid = FAIL("forkchatd/fed/fork", EAGAIN) ? -1 : fork()) < 0) {
		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		return -1;
	}
	if (pid == 0) {
		keep[0] = down[0];
		keep[1] = up[1];
		log_close();
		proc_child_setup(parent, keep, 2);
		snprintf(cfg.host, sizeof(cfg.host), "%s", f->cfg.redis_host);
		cfg.port = f->cfg.redis_port;
		cfg.origin = f->origin;
		snprintf(cfg.lastid, sizeof(cfg.lastid), "%s", f->lastid);
		snprintf(cfg.run_id, sizeof(cfg.run_id), "%s", f->run_id);
		cfg.acked = f->acked;
		cfg.nick_ttl = f->cfg.nick_ttl;
		cfg.timeout_ms = f->cfg.redis_timeout_ms;
		cfg.down_fd = down[0];
		cfg.up_fd = up[1];
		cfg.parent = parent;
		proc_exit(bridge_run(&cfg));
	}
	close(down[0]);
	close(up[1]);
	f->to_fd = down[1];
	f->from_fd = up[0];
	f->pid = pid;
	buf_reset(&f->out);
	buf_reset(&f->in);
	if (net_set_flags(f->to_fd, O_NONBLOCK) < 0 ||
	    net_set_flags(f->from_fd, O_NONBLOCK) < 0)
		log_error("federation: fcntl: %s", strerror(errno));
	log_info("federation: bridge pid=%d redis=%s:%d hub=%s origin=%s",
	    (int)pid, f->cfg.redis_host, f->cfg.redis_port, f->hub, f->origin);
	resume(f);
	return 0;
}

struct fed *
fed_start(const struct fed_cfg *cfg, struct chat *chat)
{
	struct fed *f = calloc(1, sizeof(*f));
	struct timespec ts;
	char host[64];

	if (f == NULL)
		return NULL;
	if ((f->claims = calloc(
	         (size_t)cfg->max_clients, sizeof(*f->claims))) == NULL) {
		free(f);
		return NULL;
	}
	f->cfg = *cfg;
	f->chat = chat;
	f->to_fd = f->from_fd = -1;
	f->down_since_ms = clock_mono_ms(); /* down until the bridge says */
	if (cfg->hub_id[0])
		snprintf(f->hub, sizeof(f->hub), "%s", cfg->hub_id);
	else {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "hub");
		host[sizeof(host) - 1] = '\0';
		snprintf(f->hub, sizeof(f->hub), "%s-%d", host, cfg->port);
	}
	/* one origin per run of the hub: a restarted bridge keeps it */
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(f->origin, sizeof(f->origin), "%s/%lld.%d", f->hub,
	    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)getpid());
	if (spawn_bridge(f) < 0) {
		free(f->claims);
		free(f);
		return NULL;
	}
	return f;
}

/* ---- records from the bridge -------------------------------------------- */

/*
 * 1 if (origin, seq) was not handled yet, and remember it.  One origin's
 * events come in stream order, so its last sequence number is all the
 * state needed; seq 0 (presence) is never a duplicate.  Every hub reads
 * every event, so a jump forward means events this hub never read: the
 * stream was trimmed past them (retention), and *gap says how many.  A resent XADD
 * whose first copy Redis had applied, and what a new bridge reads again
 * from the last cursor, are dropped here.
 */
static int
seen_new(struct fed *f, const char *origin, size_t olen, unsigned long long seq,
    unsigned long long *gap)
{
	struct seen *s, *old = &f->seen[0];
	long long now = clock_mono_ms();
	int i;

	if (olen >= KEYSZ)
		return 0;
	for (i = 0; i < MAX_ORIGINS; i++) {
		s = &f->seen[i];
		if (strlen(s->origin) == olen &&
		    memcmp(s->origin, origin, olen) == 0) {
			s->used_ms = now;
			if (seq != 0 && seq <= s->seq)
				return 0;
			if (seq != 0 && s->seq != 0 && seq > s->seq + 1)
				*gap = seq - s->seq - 1; /* never read: lost */
			if (seq != 0)
				s->seq = seq;
			return 1;
		}
		if (s->used_ms < old->used_ms)
			old = s;
	}
	memcpy(old->origin, origin, olen);
	old->origin[olen] = '\0';
	old->seq = seq;
	old->used_ms = now;
	return 1;
}

/*
 * A stream entry fedev_parse() refused: counted, logged (the first ones,
 * then every 1000th, so a flood cannot fill the disk) with a printable
 * excerpt, and skipped.  Nothing of it is remembered: the entries after
 * it are handled as if it had never been there.
 */
static void
malformed(struct fed *f, const char *why, const char *p, size_t len)
{
	char ex[64];
	size_t i;

	f->malformed++;
	if (f->malformed > 20 && f->malformed % 1000 != 0)
		return;
	for (i = 0; i < len && i + 1 < sizeof(ex); i++)
		ex[i] = (char)(p[i] >= ' ' && p[i] <= '~' ? p[i] : '?');
	ex[i] = '\0';
	log_warn("federation: malformed stream entry skipped (%s, %zu %s, "
	         "%llu so far): %s%s",
	    why, len, PLURAL(len, "byte", "bytes"), f->malformed, ex,
	    len > i ? "..." : "");
}

static void
handle_event(struct fed *f, const char *p, size_t len)
{
	struct fedev ev;
	size_t olen = strlen(f->origin);
	const char *why;
	unsigned long long gap = 0;

	/*
	 * Our own events come back from the stream (a third of what each
	 * of three hubs reads): dropped before the parse, which is most of
	 * the cost of an event.  Nothing that names our origin is ever acted
	 * on, so a forged one goes the same way, unparsed.
	 */
	if (len > olen && p[olen] == ' ' && memcmp(p, f->origin, olen) == 0)
		return;
	if ((why = fedev_parse(p, len, &ev)) != NULL) {
		malformed(f, why, p, len);
		return;
	}
	if (!seen_new(f, ev.origin, ev.olen, ev.seq, &gap)) {
		f->dups++; /* handled already */
		return;
	}
	if (gap > 0) {
		f->lost += gap;
		log_warn(
		    "federation: %llu events of hub %.*s lost (seq %llu to "
		    "%llu of %.*s, past the stream's retention)",
		    gap, (int)ev.hlen, ev.hub, ev.seq - gap, ev.seq - 1,
		    (int)ev.olen, ev.origin);
		chat_fed_gap(f->chat, ev.hub, ev.hlen, gap);
	}
	if (ev.seq != 0)
		f->events_in++;
	switch (ev.kind) {
	case 'M': /* M KEY LINE */
		chat_fed_room_line(
		    f->chat, ev.f[0], ev.fl[0], ev.f[1], ev.fl[1]);
		break;
	case 'D': /* D KEY BY: the room was removed by its owner */
		chat_fed_room_removed(
		    f->chat, ev.f[0], ev.fl[0], ev.f[1], ev.fl[1]);
		break;
	case 'W': /* W HUB FROM TO TEXT */
		if (ev.fl[0] == strlen(f->hub) &&
		    memcmp(ev.f[0], f->hub, ev.fl[0]) == 0)
			chat_fed_whisper(f->chat, ev.f[1], ev.fl[1], ev.f[2],
			    ev.fl[2], ev.f[3], ev.fl[3]);
		break;
	case 'O': /* O KEY */
		chat_fed_room_orphaned(f->chat, ev.f[0], ev.fl[0]);
		break;
	case 'P': /* P HUB\n SNAPSHOT */
		chat_fed_presence(f->chat, ev.hub, ev.hlen, ev.f[0], ev.fl[0],
		    presence_clock(f, clock_mono_ms()));
		break;
	case 'S':
		f->dirty = 1;
		f->last_pub_ms = 0;
		break;
	}
}

static void
handle_bridge_record(struct fed *f, const struct ipc_hdr *h, const char *p)
{
	unsigned long long seq;
	size_t i;

	switch (h->type) {
	case IPC_FED_EVENT:
		if (h->code != 0) /* the bridge found no usable value */
			malformed(f,
			    h->code == 1 ? "no event field" : "value too long",
			    p, h->len);
		else
			handle_event(f, p, h->len);
		break;
	case IPC_FED_CLAIMED:
		for (i = 0; i < f->nclaims; i++)
			if (f->claims[i].token == h->slot) {
				forget_claim(f, i);
				break;
			}
		chat_fed_claimed(f->chat, h->slot, h->code);
		break;
	case IPC_FED_ACKED:
		if (h->len == 8) {
			memcpy(&seq, p, 8);
			acked(f, seq);
		}
		break;
	case IPC_FED_REDIS:
		if (h->len < sizeof(f->run_id)) {
			memcpy(f->run_id, p, h->len);
			f->run_id[h->len] = '\0';
		}
		break;
	case IPC_FED_CURSOR:
		if (h->len < sizeof(f->lastid)) {
			memcpy(f->lastid, p, h->len);
			f->lastid[h->len] = '\0';
		}
		break;
	case IPC_FED_LOG:
		if (h->code == 0)
			log_info("%.*s", (int)h->len, p);
		else if (h->code == 1)
			log_warn("%.*s", (int)h->len, p);
		else
			log_error("%.*s", (int)h->len, p);
		break;
	case IPC_FED_LOST:
		(h->code ? chat_fed_kept : chat_fed_lost)(f->chat, p, h->len);
		break;
	case IPC_FED_UP:
		set_up(f, h->code != 0);
		if (h->code)
			f->dirty = 1, f->last_pub_ms = 0;
		break;
	}
}

/*
 * Read what the bridge sent (up to FED_IN_MAX unhandled), then handle
 * records in order until budget bytes of them are done.  A catch-up burst
 * (a bridge resuming after a pause or an outage) is so handed to the rooms
 * in slices, between which the children drain their pipes, instead of in
 * one turn that would push readers who keep up past --max-backlog.
 * Returns 1 if records are left for the next turn.
 */
int
fed_drain(struct fed *f, size_t budget)
{
	static const struct ipc_rd rd = { 64 * 1024, 0 };
	struct ipc_hdr h;
	size_t done = 0, n = 0;
	int r;

	if (f->from_fd >= 0 && buf_used(&f->in) < FED_IN_MAX)
		(void)ipc_read(
		    f->from_fd, &f->in, &rd, FED_IN_MAX - buf_used(&f->in), &n);
	while (done < budget && ipc_next(&f->in, FEDIPC_MAX, &h) > 0) {
		handle_bridge_record(f, &h, buf_head(&f->in) + IPC_HDR);
		buf_consume(&f->in, ipc_size(&h));
		done += ipc_size(&h);
	}
	if ((r = ipc_next(&f->in, FEDIPC_MAX, &h)) < 0) {
		/* the bridge never writes that: drop it all, restart it */
		log_error("federation: corrupt record from the bridge (length "
		          "%u), %zu bytes dropped",
		    h.len, buf_used(&f->in));
		buf_reset(&f->in);
		if (f->pid > 0)
			kill(f->pid, SIGTERM);
		return 0;
	}
	return r; /* a whole one left? */
}

void
fed_flush(struct fed *f)
{
	ssize_t n;

	while (f->to_fd >= 0 && buf_used(&f->out) > 0) {
		n = write(f->to_fd, buf_head(&f->out), buf_used(&f->out));
		if (n > 0)
			buf_consume(&f->out, (size_t)n);
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break; /* EAGAIN: the next turn; EPIPE: reaped soon */
	}
	if (f->wake && f->pid > 0) {
		kill(f->pid, SIGUSR2);
		f->wake = 0;
	}
}

void
fed_tick(struct fed *f, long long now)
{
	if (f->pid == 0 && now >= f->restart_ms) {
		f->spawn_failed = spawn_bridge(f) < 0;
		if (f->spawn_failed) {
			log_error(
			    "federation: bridge restart: %s", strerror(errno));
			f->restart_ms = now + RESTART_MS;
		}
	}
	if (f->pid == 0 && f->spawn_failed)
		claims_local(f);
	if (f->pid > 0 &&
	    ((f->dirty && now - f->last_pub_ms >= PRESENCE_MIN_MS) ||
	        now - f->last_pub_ms >= f->cfg.nick_ttl * 1000LL / 3))
		publish_presence(f, now);
	chat_fed_expire(
	    f->chat, presence_clock(f, now), f->cfg.nick_ttl * 1000LL);
}

int
fed_reaped(struct fed *f, pid_t pid, int status)
{
	if (f == NULL || pid != f->pid)
		return 0;
	log_error("federation: bridge pid=%d ended (%s %d), restarting",
	    (int)pid, WIFSIGNALED(status) ? "signal" : "status",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	(void)fed_drain(f, SIZE_MAX);
	close(f->to_fd);
	close(f->from_fd);
	f->to_fd = f->from_fd = -1;
	f->pid = 0;
	set_up(f, 0);
	f->restarts++;
	f->restart_ms = clock_mono_ms() + RESTART_MS;
	return 1;
}

size_t
fed_stats(const struct fed *f, struct stats_item *it, size_t max)
{
	const struct stats_item all[STATS_FED_NITEMS] = {
		{ "fed_redis_up", (unsigned long long)f->redis_up },
		{ "fed_events_out", f->seq },
		{ "fed_events_in", f->events_in },
		{ "fed_duplicates_dropped", f->dups },
		{ "fed_unacked", f->seq - f->acked },
		{ "fed_bridge_restarts", f->restarts },
		{ "fed_malformed", f->malformed },
		{ "fed_events_lost", f->lost },
	};
	size_t n = max < STATS_FED_NITEMS ? max : STATS_FED_NITEMS;

	memcpy(it, all, n * sizeof(*it));
	return n;
}

/*
 * Wait for the bridge told to stop.  It may be blocked writing records to
 * us (a catch-up in progress): read and drop them meanwhile, or both would
 * wait for ever.  Bounded: killed after STOP_MS.
 */
static void
reap_bridge(struct fed *f)
{
	struct timespec ts = { 0, 10 * 1000000 };
	long long end = clock_mono_ms() + STOP_MS;
	char sink[64 * 1024];
	pid_t r;
	int st;

	for (;;) {
		r = waitpid(f->pid, &st, WNOHANG);
		if (r == f->pid || (r < 0 && errno != EINTR))
			return;
		while (
		    f->from_fd >= 0 && read(f->from_fd, sink, sizeof(sink)) > 0)
			;
		if (end != 0 && clock_mono_ms() >= end) {
			log_warn(
			    "federation: bridge pid=%d still running %d ms "
			    "after SIGTERM, killed",
			    (int)f->pid, STOP_MS);
			kill(f->pid, SIGKILL);
			end = 0;
		}
		nanosleep(&ts, NULL);
	}
}

void
fed_stop(struct fed *f)
{
	char head[96];
	int n;

	if (f == NULL)
		return;
	if (f->pid > 0) {
		/* an empty snapshot: the other hubs forget our users now */
		n = snprintf(head, sizeof(head), "P %s\n", f->hub);
		record(f, IPC_FED_PUB, 1, 0, head, (size_t)n, "", 0);
		fed_flush(f);
		kill(f->pid, SIGTERM);
		reap_bridge(f);
	}
	if (f->to_fd >= 0)
		close(f->to_fd);
	if (f->from_fd >= 0)
		close(f->from_fd);
	buf_free(&f->out);
	buf_free(&f->in);
	buf_free(&f->events);
	free(f->claims);
	free(f);
}
