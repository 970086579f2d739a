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
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/addrlim.h"
#include "chat/chat.h"
#include "sys/clock.h"
#include "sys/log.h"
#include "lib/plural.h"
#include "server/server_int.h"

#define TIMEOUT_SCAN_MS 10 /* register deadlines: cut at most this late */

/* Say why and hang up, and log it (rate-limited). */
static void
refuse(struct server *s, int fd, const char *peer, enum addrlim_reason r,
    const char *line)
{
	s->refused++;
	if (addrlim_log_allow(&s->rlog, r, clock_mono_ms()))
		log_warn(
		    "refused peer=%s reason=%s", peer, addrlim_reason_name(r));
	(void)!send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static int
is_exempt(const struct server *s, const struct addr16 *a)
{
	int i;

	for (i = 0; i < s->o->nexempt; i++)
		if (addrlim_net_match(&s->o->exempt[i], a))
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
evict_oldest(struct server *s)
{
	int slot, old = -1;

	for (slot = 0; slot < s->o->max_clients; slot++)
		if (s->cl[slot].state == CL_ACTIVE && s->cl[slot].unreg &&
		    (old < 0 || s->cl[slot].since_ms < s->cl[old].since_ms))
			old = slot;
	if (old < 0)
		return;
	admit_registered(s, old); /* leaves the pool now */
	chat_bye(s->chat, old, "REGISTER_EVICTED",
	    "you sent no nickname and the server needed your place for a "
	    "newer connection; reconnect and send your nickname at once");
}

int
admit_check(struct server *s, int fd, const struct sockaddr_storage *ss,
    const char *peer, struct admit *a)
{
	char line[200];
	int total, unreg;

	a->exempt = addrlim_addr(ss, &a->group) < 0 || is_exempt(s, &a->group);
	if (!a->exempt) {
		addrlim_group(&a->group, &a->group);
		addrlim_get(s->addrs, &a->group, &total, &unreg);
		if (s->o->max_per_addr > 0 && total >= s->o->max_per_addr) {
			snprintf(line, sizeof(line),
			    "BYE TOO_MANY_CONNECTIONS your address has %d "
			    "%s open, the most allowed; close one "
			    "and try again\n",
			    total, PLURAL(total, "connection", "connections"));
			refuse(s, fd, peer, ADDRLIM_PER_ADDR, line);
			return -1;
		}
		if (s->o->max_unreg_per_addr > 0 &&
		    unreg >= s->o->max_unreg_per_addr) {
			snprintf(line, sizeof(line),
			    "BYE TOO_MANY_UNREGISTERED your address has %d "
			    "%s without a nickname, the most "
			    "allowed; send a nickname on one first\n",
			    unreg, PLURAL(unreg, "connection", "connections"));
			refuse(s, fd, peer, ADDRLIM_UNREG_PER_ADDR, line);
			return -1;
		}
	}
	if (s->nfree == 0) {
		refuse(s, fd, peer, ADDRLIM_SERVER_FULL,
		    "BYE SERVER_FULL the server is full, try again later\n");
		return -1;
	}
	if (!a->exempt && s->npool >= s->pool_cap)
		evict_oldest(s);
	return 0;
}

void
admit_connected(struct server *s, int slot, const struct admit *a)
{
	struct client *c = &s->cl[slot];
	long long due;

	c->group = a->group;
	c->counted = c->unreg = 0;
	if (!a->exempt && addrlim_add(s->addrs, &c->group) == 0) {
		c->counted = c->unreg = 1;
		s->npool++;
	}
	if (s->o->register_timeout > 0) {
		/* +1: whole milliseconds, so that the cut is never early */
		due = c->since_ms + s->o->register_timeout * 1000LL + 1;
		if (s->next_timeout_ms == 0 || due < s->next_timeout_ms)
			s->next_timeout_ms = due;
	}
}

void
admit_registered(struct server *s, int slot)
{
	struct client *c = &s->cl[slot];

	if (!c->unreg)
		return;
	c->unreg = 0;
	s->npool--;
	addrlim_registered(s->addrs, &c->group);
}

void
admit_released(struct server *s, int slot)
{
	struct client *c = &s->cl[slot];

	admit_registered(s, slot);
	if (c->counted)
		addrlim_remove(s->addrs, &c->group);
	c->counted = 0;
}

/*
 * Cut the connections whose register deadline has passed; set the next
 * deadline.  Called when s->next_timeout_ms is reached, so the cut comes
 * at --register-timeout, not at the next one-second tick after it.
 */
void
admit_timeouts(struct server *s, long long now)
{
	long long wait = s->o->register_timeout * 1000LL, due;
	char text[80];
	int slot;

	s->next_timeout_ms = 0;
	if (wait <= 0)
		return;
	snprintf(text, sizeof(text), "no nickname within %d %s",
	    s->o->register_timeout,
	    PLURAL(s->o->register_timeout, "second", "seconds"));
	for (slot = 0; slot < s->o->max_clients; slot++) {
		if (s->cl[slot].state != CL_ACTIVE ||
		    chat_is_registered(s->chat, slot))
			continue;
		due = s->cl[slot].since_ms + wait + 1;
		if (now >= due) {
			admit_registered(s, slot);
			chat_bye(s->chat, slot, "REGISTER_TIMEOUT", text);
		} else if (s->next_timeout_ms == 0 || due < s->next_timeout_ms)
			s->next_timeout_ms = due;
	}
	/* each scan reads every slot: at most one per TIMEOUT_SCAN_MS */
	if (s->next_timeout_ms != 0 &&
	    s->next_timeout_ms < now + TIMEOUT_SCAN_MS)
		s->next_timeout_ms = now + TIMEOUT_SCAN_MS;
}

void
admit_tick(struct server *s, long long now)
{
	char line[256];

	if (s->rlog.window_start != 0 &&
	    addrlim_log_summary(&s->rlog, now, line, sizeof(line)) > 0)
		log_warn("%s", line);
}

int
admit_setup(struct server *s)
{
	const struct server_opts *o = s->o;
	int reserve = o->reserve < 0 ? o->max_clients / 10 : o->reserve, i;
	char list[OPTS_MAX_EXEMPT * 52] = "none", net[52];
	uint64_t seed;
	size_t len = 0;

	if (reserve >= o->max_clients) /* -m lowered to fit RLIMIT_NOFILE */
		reserve = o->max_clients - 1;
	s->pool_cap = o->max_clients - reserve;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(seed))
		seed = (uint64_t)clock_mono_us() ^ (uint64_t)getpid() << 32;
	if ((s->addrs = addrlim_new(o->max_clients, seed)) == NULL)
		return -1;
	for (i = 0; i < o->nexempt && len < sizeof(list); i++) {
		addrlim_net_format(&o->exempt[i], net, sizeof(net));
		len += (size_t)snprintf(
		    list + len, sizeof(list) - len, "%s%s", i ? "," : "", net);
	}
	log_info("limits max-per-addr=%d max-unreg-per-addr=%d reserve=%d "
	         "exempt=%s",
	    o->max_per_addr, o->max_unreg_per_addr, reserve, list);
	return 0;
}

void
admit_free(struct server *s)
{
	addrlim_free(s->addrs);
	s->addrs = NULL;
}
