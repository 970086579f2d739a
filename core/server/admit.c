/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * admit.c - the server parent's door: who may open a connection, and how
 * long a connection may stay without a nickname.
 *
 * Owns the per-address counts (addrlim.c), the pool of unregistered
 * connections and its cap (--max-clients minus --reserve), the rate limit
 * of the "refused" log lines and the register deadlines.  Refusals happen
 * before fork: a refused peer costs one accept, one send and one close.
 * Exempt peers (--exempt, loopback by default) skip every per-address
 * limit and the pool, and are not counted: the benchmarks' 1000 clients
 * from 127.0.0.1 cost no table work.  docs/SECURITY.md says why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/chat.h"
#include "lib/plural.h"
#include "server/addrlim.h"
#include "server/admit.h"
#include "server/fanout.h"
#include "sys/clock.h"
#include "sys/log.h"

#define TIMEOUT_SCAN_MS 10 /* register deadlines: cut at most this late */

/* What admit.c keeps per slot. */
struct entry {
	long long since_ms;  /* when the session started */
	struct addr16 group; /* address group, for the per-address limits */
	int counted;         /* in t->addrs (not exempt) */
	int unreg;           /* counted as waiting for a nickname */
};

struct admit_tab {
	const struct server_opts *o;
	struct chat *chat;
	const struct fanout *fo;
	struct entry *e;
	struct addrlim *addrs;     /* connections per address group */
	int npool, pool_cap;       /* unregistered non-exempt connections */
	struct addrlim_log rlog;   /* rate limit of "refused" log lines */
	long long next_timeout_ms; /* earliest register deadline, 0 = none */
	unsigned long long refused;
};

static int
active(const struct admit_tab *t, int slot)
{
	return fanout_state(t->fo, slot) == FANOUT_ACTIVE;
}

/* Say why and hang up, and log it (rate-limited). */
static void
refuse(struct admit_tab *t, int fd, const char *peer, enum addrlim_reason r,
    const char *line)
{
	t->refused++;
	if (addrlim_log_allow(&t->rlog, r, clock_mono_ms()))
		log_warn(
		    "refused peer=%s reason=%s", peer, addrlim_reason_name(r));
	(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static int
is_exempt(const struct admit_tab *t, const struct addr16 *a)
{
	int i;

	for (i = 0; i < t->o->nexempt; i++)
		if (addrlim_net_match(&t->o->exempt[i], a))
			return 1;
	return 0;
}

/*
 * The pool of unregistered connections is full: the one that has waited
 * longest for its nickname makes room (a flood of idle connections from
 * many addresses then churns through itself, and a newcomer who sends its
 * nickname at once always gets in).
 */
static void
evict_oldest(struct admit_tab *t)
{
	int slot, old = -1;

	for (slot = 0; slot < t->o->max_clients; slot++)
		if (active(t, slot) && t->e[slot].unreg &&
		    (old < 0 || t->e[slot].since_ms < t->e[old].since_ms))
			old = slot;
	if (old < 0)
		return;
	admit_registered(t, old); /* leaves the pool now */
	chat_bye(t->chat, old, "REGISTER_EVICTED",
	    "you sent no nickname and the server needed your place for a "
	    "newer connection; reconnect and send your nickname at once");
}

int
admit_check(struct admit_tab *t, int fd, const struct sockaddr_storage *ss,
    const char *peer, int nfree, struct admit *a)
{
	char line[200];
	int total, unreg;

	a->exempt = addrlim_addr(ss, &a->group) < 0 || is_exempt(t, &a->group);
	if (!a->exempt) {
		addrlim_group(&a->group, &a->group);
		addrlim_get(t->addrs, &a->group, &total, &unreg);
		if (t->o->max_per_addr > 0 && total >= t->o->max_per_addr) {
			snprintf(line, sizeof(line),
			    "BYE TOO_MANY_CONNECTIONS your address has %d "
			    "%s open, the most allowed; close one "
			    "and try again\n",
			    total, PLURAL(total, "connection", "connections"));
			refuse(t, fd, peer, ADDRLIM_PER_ADDR, line);
			return -1;
		}
		if (t->o->max_unreg_per_addr > 0 &&
		    unreg >= t->o->max_unreg_per_addr) {
			snprintf(line, sizeof(line),
			    "BYE TOO_MANY_UNREGISTERED your address has %d "
			    "%s without a nickname, the most "
			    "allowed; send a nickname on one first\n",
			    unreg, PLURAL(unreg, "connection", "connections"));
			refuse(t, fd, peer, ADDRLIM_UNREG_PER_ADDR, line);
			return -1;
		}
	}
	if (nfree == 0) {
		refuse(t, fd, peer, ADDRLIM_SERVER_FULL,
		    "BYE SERVER_FULL the server is full, try again later\n");
		return -1;
	}
	if (!a->exempt && t->npool >= t->pool_cap)
		evict_oldest(t);
	return 0;
}

void
admit_connected(
    struct admit_tab *t, int slot, const struct admit *a, long long now_ms)
{
	struct entry *c = &t->e[slot];

	c->group = a->group;
	c->counted = c->unreg = 0;
	if (!a->exempt && addrlim_add(t->addrs, &c->group) == 0) {
		c->counted = c->unreg = 1;
		t->npool++;
	}
	admit_clock(t, slot, now_ms);
}

void
admit_clock(struct admit_tab *t, int slot, long long now_ms)
{
	long long due;

	t->e[slot].since_ms = now_ms;
	if (t->o->register_timeout > 0) {
		/* +1: whole milliseconds, so that the cut is never early */
		due = now_ms + t->o->register_timeout * 1000LL + 1;
		if (t->next_timeout_ms == 0 || due < t->next_timeout_ms)
			t->next_timeout_ms = due;
	}
}

void
admit_registered(struct admit_tab *t, int slot)
{
	struct entry *c = &t->e[slot];

	if (!c->unreg)
		return;
	c->unreg = 0;
	t->npool--;
	addrlim_registered(t->addrs, &c->group);
}

void
admit_released(struct admit_tab *t, int slot)
{
	struct entry *c = &t->e[slot];

	admit_registered(t, slot);
	if (c->counted)
		addrlim_remove(t->addrs, &c->group);
	c->counted = 0;
}

/*
 * Cut the connections whose register deadline has passed; set the next
 * deadline.  Called when t->next_timeout_ms is reached, so the cut comes
 * at --register-timeout, not at the next one-second tick after it.
 */
void
admit_timeouts(struct admit_tab *t, long long now)
{
	long long wait = t->o->register_timeout * 1000LL, due;
	char text[80];
	int slot;

	t->next_timeout_ms = 0;
	if (wait <= 0)
		return;
	snprintf(text, sizeof(text), "no nickname within %d %s",
	    t->o->register_timeout,
	    PLURAL(t->o->register_timeout, "second", "seconds"));
	for (slot = 0; slot < t->o->max_clients; slot++) {
		if (!active(t, slot) || chat_is_registered(t->chat, slot))
			continue;
		due = t->e[slot].since_ms + wait + 1;
		if (now >= due) {
			admit_registered(t, slot);
			chat_bye(t->chat, slot, "REGISTER_TIMEOUT", text);
		} else if (t->next_timeout_ms == 0 || due < t->next_timeout_ms)
			t->next_timeout_ms = due;
	}
	/* each scan reads every slot: at most one per TIMEOUT_SCAN_MS */
	if (t->next_timeout_ms != 0 &&
	    t->next_timeout_ms < now + TIMEOUT_SCAN_MS)
		t->next_timeout_ms = now + TIMEOUT_SCAN_MS;
}

void
admit_tick(struct admit_tab *t, long long now)
{
	char line[256];

	if (t->rlog.window_start != 0 &&
	    addrlim_log_summary(&t->rlog, now, line, sizeof(line)) > 0)
		log_warn("%s", line);
}

long long
admit_next_timeout(const struct admit_tab *t)
{
	return t->next_timeout_ms;
}

unsigned long long
admit_refused(const struct admit_tab *t)
{
	return t->refused;
}

struct admit_tab *
admit_new(
    const struct server_opts *o, struct chat *chat, const struct fanout *fo)
{
	int reserve = o->reserve < 0 ? o->max_clients / 10 : o->reserve, i;
	char list[OPTS_MAX_EXEMPT * 52] = "none", net[52];
	struct admit_tab *t;
	uint64_t seed;
	size_t len = 0;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->e = calloc((size_t)o->max_clients, sizeof(*t->e))) == NULL) {
		free(t);
		return NULL;
	}
	t->o = o;
	t->chat = chat;
	t->fo = fo;
	if (reserve >= o->max_clients) /* -m lowered to fit RLIMIT_NOFILE */
		reserve = o->max_clients - 1;
	t->pool_cap = o->max_clients - reserve;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(seed))
		seed = (uint64_t)clock_mono_us() ^ (uint64_t)getpid() << 32;
	if ((t->addrs = addrlim_new(o->max_clients, seed)) == NULL) {
		admit_free(t);
		return NULL;
	}
	for (i = 0; i < o->nexempt && len < sizeof(list); i++) {
		addrlim_net_format(&o->exempt[i], net, sizeof(net));
		len += (size_t)snprintf(
		    list + len, sizeof(list) - len, "%s%s", i ? "," : "", net);
	}
	log_info("limits max-per-addr=%d max-unreg-per-addr=%d reserve=%d "
	         "exempt=%s",
	    o->max_per_addr, o->max_unreg_per_addr, reserve, list);
	return t;
}

void
admit_free(struct admit_tab *t)
{
	if (t == NULL)
		return;
	addrlim_free(t->addrs);
	free(t->e);
	free(t);
}
