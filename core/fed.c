/*
 * fed.c - the parent's side of federation (docs/SCALING.md).
 *
 * The parent never talks to Redis: it forks the bridge (bridge.c) and
 * exchanges ipc.h records with it over a pipe pair.  Like every pipe the
 * parent writes, the one to the bridge is non-blocking, and what it cannot
 * take waits in a buffer, so a stuck bridge or Redis never stalls a local
 * client.  Event bodies on the stream:
 *   M ROOMKEY LINE            a room-wide line (MSG, JOIN, PART, OWNER)
 *   W HUB FROM TO TEXT        a whisper for TO on HUB
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

#include "bridge.h"
#include "buf.h"
#include "child.h"
#include "clock.h"
#include "failpoint.h"
#include "fed.h"
#include "ipc.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#define PRESENCE_MIN_MS 200  /* at most one snapshot per this */
#define RESTART_MS      1000 /* a dead bridge is restarted after */
#define FED_BACKLOG_MAX (256u << 20)

struct fed {
	const struct server_opts *o;
	struct chat *chat;
	pid_t pid; /* the bridge, 0 while it is not running */
	int to_fd, from_fd;
	struct buf out, in;
	char hub[72];
	char origin[128];
	int dirty, wake;
	long long last_pub_ms, restart_ms;
};

static void
record(struct fed *f, uint16_t type, uint16_t code, uint32_t slot,
    const char *a, size_t al, const char *b, size_t bl)
{
	struct ipc_hdr h = { slot, type, code, (uint32_t)(al + bl) };

	if (f->pid == 0)
		return; /* restarting: re-claims and presence follow */
	if (buf_used(&f->out) > FED_BACKLOG_MAX) {
		log_error("federation: bridge backlog full, event dropped");
		return;
	}
	if (buf_append(&f->out, &h, IPC_HDR) < 0 ||
	    buf_append(&f->out, a, al) < 0 || buf_append(&f->out, b, bl) < 0)
		log_error("federation: out of memory, event dropped");
	f->wake = 1;
}

/* ---- chat_fed hooks --------------------------------------------------- */

static void
h_room_line(void *ctx, const char *key, const char *line, size_t len)
{
	struct fed *f = ctx;
	char head[PROTO_NAME_MAX_BYTES + 8];
	int n = snprintf(head, sizeof(head), "M %s ", key);

	if (len > 0 && line[len - 1] == '\n')
		len--;
	record(f, IPC_FED_PUB, 0, 0, head, (size_t)n, line, len);
}

static void
h_claim(void *ctx, unsigned token, const char *key)
{
	record(ctx, IPC_FED_CLAIM, 0, token, key, strlen(key), "", 0);
}

static void
h_release(void *ctx, const char *key)
{
	record(ctx, IPC_FED_RELEASE, 0, 0, key, strlen(key), "", 0);
}

static void
h_whisper(void *ctx, const char *hub, const char *from, const char *to,
    const char *text, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "W %s %s %s ", hub, from, to);

	record(ctx, IPC_FED_PUB, 0, 0, head, (size_t)n, text, len);
}

static void
h_changed(void *ctx)
{
	((struct fed *)ctx)->dirty = 1;
}

void
fed_hooks(struct chat_fed *hooks)
{
	hooks->room_line = h_room_line;
	hooks->claim = h_claim;
	hooks->release = h_release;
	hooks->whisper = h_whisper;
	hooks->changed = h_changed;
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
	char key[PROTO_NAME_MAX_BYTES + 1];
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
			    (size_t)(sp - p - 2) >= sizeof(key))
				continue;
			proto_fold(
			    p + 2, (size_t)(sp - p - 2), key, sizeof(key));
			h_claim(f, 0, key);
		}
	buf_free(&b);
}

/* ---- the bridge process --------------------------------------------- */

static int
spawn(struct fed *f)
{
	static struct bridge_cfg cfg;
	int down[2], up[2], keep[2];
	pid_t parent = getpid(), pid;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(f->origin, sizeof(f->origin), "%s/%lld.%d", f->hub,
	    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)parent);
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
		child_setup(parent, keep, 2);
		snprintf(cfg.host, sizeof(cfg.host), "%s", f->o->redis_host);
		cfg.port = f->o->redis_port;
		cfg.origin = f->origin;
		cfg.nick_ttl = f->o->nick_ttl;
		cfg.down_fd = down[0];
		cfg.up_fd = up[1];
		cfg.parent = parent;
		child_exit(bridge_run(&cfg));
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
	    (int)pid, f->o->redis_host, f->o->redis_port, f->hub, f->origin);
	reclaim_all(f);
	f->dirty = 1;
	return 0;
}

struct fed *
fed_start(const struct server_opts *o, struct chat *chat)
{
	struct fed *f = calloc(1, sizeof(*f));
	char host[64];

	if (f == NULL)
		return NULL;
	f->o = o;
	f->chat = chat;
	f->to_fd = f->from_fd = -1;
	if (o->hub_id[0])
		snprintf(f->hub, sizeof(f->hub), "%s", o->hub_id);
	else {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "hub");
		host[sizeof(host) - 1] = '\0';
		snprintf(f->hub, sizeof(f->hub), "%s-%d", host, o->port);
	}
	if (spawn(f) < 0) {
		free(f);
		return NULL;
	}
	return f;
}

/* ---- records from the bridge -------------------------------------------- */

static void
handle_event(struct fed *f, const char *p, size_t len)
{
	const char *end = p + len, *body, *slash, *a, *b2, *c2;
	size_t hlen;

	if ((body = memchr(p, ' ', len)) == NULL || ++body >= end)
		return;
	slash = memchr(p, '/', (size_t)(body - p));
	hlen = (size_t)((slash ? slash : body - 1) - p);
	switch (body[0]) {
	case 'M': /* M KEY LINE */
		if (body + 2 < end &&
		    (a = memchr(body + 2, ' ', (size_t)(end - body - 2))))
			chat_fed_room_line(f->chat, body + 2,
			    (size_t)(a - body - 2), a + 1,
			    (size_t)(end - a - 1));
		break;
	case 'W': /* W HUB FROM TO TEXT */
		if (body + 2 >= end ||
		    (a = memchr(body + 2, ' ', (size_t)(end - body - 2))) ==
		        NULL ||
		    (b2 = memchr(a + 1, ' ', (size_t)(end - a - 1))) == NULL ||
		    (c2 = memchr(b2 + 1, ' ', (size_t)(end - b2 - 1))) == NULL)
			break;
		if ((size_t)(a - body - 2) == strlen(f->hub) &&
		    memcmp(body + 2, f->hub, strlen(f->hub)) == 0)
			chat_fed_whisper(f->chat, a + 1, (size_t)(b2 - a - 1),
			    b2 + 1, (size_t)(c2 - b2 - 1), c2 + 1,
			    (size_t)(end - c2 - 1));
		break;
	case 'P': /* P HUB\n SNAPSHOT */
		if ((a = memchr(body, '\n', (size_t)(end - body))) != NULL)
			chat_fed_presence(f->chat, p, hlen, a + 1,
			    (size_t)(end - a - 1), clock_mono_ms());
		break;
	case 'S':
		f->dirty = 1;
		f->last_pub_ms = 0;
		break;
	}
}

static void
handle_record(struct fed *f, const struct ipc_hdr *h, const char *p)
{
	switch (h->type) {
	case IPC_FED_EVENT:
		handle_event(f, p, h->len);
		break;
	case IPC_FED_CLAIMED:
		chat_fed_claimed(f->chat, h->slot, h->code);
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
		chat_fed_lost(f->chat, p, h->len);
		break;
	case IPC_FED_UP:
		if (h->code)
			f->dirty = 1, f->last_pub_ms = 0;
		break;
	}
}

void
fed_drain(struct fed *f)
{
	struct ipc_hdr h;
	ssize_t n;
	char *p;

	while (f->from_fd >= 0) {
		if ((p = buf_reserve(&f->in, 64 * 1024)) == NULL)
			break;
		n = read(f->from_fd, p, buf_room(&f->in));
		if (n > 0)
			buf_commit(&f->in, (size_t)n);
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	while (buf_used(&f->in) >= IPC_HDR) {
		memcpy(&h, buf_head(&f->in), IPC_HDR);
		if (buf_used(&f->in) < IPC_HDR + h.len)
			break;
		handle_record(f, &h, buf_head(&f->in) + IPC_HDR);
		buf_consume(&f->in, IPC_HDR + h.len);
	}
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
	if (f->pid == 0 && now >= f->restart_ms && spawn(f) < 0) {
		log_error("federation: bridge restart: %s", strerror(errno));
		f->restart_ms = now + RESTART_MS;
	}
	if (f->pid > 0 &&
	    ((f->dirty && now - f->last_pub_ms >= PRESENCE_MIN_MS) ||
	        now - f->last_pub_ms >= f->o->nick_ttl * 1000LL / 3))
		publish_presence(f, now);
	chat_fed_expire(f->chat, now, f->o->nick_ttl * 1000LL);
}

int
fed_reaped(struct fed *f, pid_t pid, int status)
{
	if (f == NULL || pid != f->pid)
		return 0;
	log_error("federation: bridge pid=%d ended (%s %d), restarting",
	    (int)pid, WIFSIGNALED(status) ? "signal" : "status",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	fed_drain(f);
	close(f->to_fd);
	close(f->from_fd);
	f->to_fd = f->from_fd = -1;
	f->pid = 0;
	f->restart_ms = clock_mono_ms() + RESTART_MS;
	return 1;
}

void
fed_stop(struct fed *f)
{
	char head[96];
	int st, n;

	if (f == NULL)
		return;
	if (f->pid > 0) {
		/* an empty snapshot: the other hubs forget our users now */
		n = snprintf(head, sizeof(head), "P %s\n", f->hub);
		record(f, IPC_FED_PUB, 1, 0, head, (size_t)n, "", 0);
		fed_flush(f);
		kill(f->pid, SIGTERM);
		while (waitpid(f->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (f->to_fd >= 0)
		close(f->to_fd);
	if (f->from_fd >= 0)
		close(f->from_fd);
	buf_free(&f->out);
	buf_free(&f->in);
	free(f);
}
