/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * addrlim.c - per-address connection counts and the refusal log limit.
 *
 * The table is open addressing with linear probing and backward-shift
 * deletion (no tombstones, so a long flood of short connections never
 * degrades it), sized at twice the most groups it can hold.  The hash is
 * keyed with a seed the server picks at startup, so a peer cannot choose
 * addresses that collide.  No system calls: the unit tests drive it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/addrlim.h"
#include "lib/plural.h"

struct entry {
	struct addr16 key;
	int total; /* 0 = empty slot */
	int unreg;
};

struct addrlim {
	struct entry *e;
	size_t mask; /* capacity - 1, capacity a power of two */
	uint64_t seed;
	int used;
};

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
	0xff };

int
addrlim_addr(const struct sockaddr_storage *ss, struct addr16 *out)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		memcpy(out->b, v4mapped, sizeof(v4mapped));
		memcpy(out->b + 12, &sin->sin_addr, 4);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		memcpy(out->b, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

void
addrlim_group(const struct addr16 *a, struct addr16 *key)
{
	*key = *a;
	if (memcmp(a->b, v4mapped, sizeof(v4mapped)) != 0)
		memset(key->b + 8, 0, 8); /* IPv6: the /64 */
}

static void
mask_bits(struct addr16 *a, int bits)
{
	int i;

	for (i = 0; i < 16; i++, bits -= 8)
		if (bits <= 0)
			a->b[i] = 0;
		else if (bits < 8)
			a->b[i] &= (uint8_t)(0xff00u >> bits);
}

int
addrlim_net_parse(const char *s, struct addr_net *n)
{
	char host[64], *end;
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	struct in_addr v4;
	long bits;
	int max;

	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &v4) == 1) {
		memcpy(n->a.b, v4mapped, sizeof(v4mapped));
		memcpy(n->a.b + 12, &v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, host, n->a.b) == 1)
		max = 128;
	else
		return -1;
	bits = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits > max)
			return -1;
	}
	n->bits = (int)bits + (max == 32 ? 96 : 0);
	mask_bits(&n->a, n->bits);
	return 0;
}

int
addrlim_net_match(const struct addr_net *n, const struct addr16 *a)
{
	struct addr16 m = *a;

	mask_bits(&m, n->bits);
	return memcmp(m.b, n->a.b, 16) == 0;
}

void
addrlim_net_format(const struct addr_net *n, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];

	if (memcmp(n->a.b, v4mapped, sizeof(v4mapped)) == 0 && n->bits >= 96) {
		inet_ntop(AF_INET, n->a.b + 12, ip, sizeof(ip));
		snprintf(out, outsz, "%s/%d", ip, n->bits - 96);
	} else {
		inet_ntop(AF_INET6, n->a.b, ip, sizeof(ip));
		snprintf(out, outsz, "%s/%d", ip, n->bits);
	}
}

/* ---- the table ------------------------------------------------------ */

static size_t
hash(const struct addrlim *t, const struct addr16 *k)
{
	uint64_t h = t->seed, w;
	int i;

	for (i = 0; i < 16; i += 8) {
		memcpy(&w, k->b + i, 8);
		h ^= w;
		h *= 0x9e3779b97f4a7c15ULL; /* splitmix64's finaliser */
		h ^= h >> 31;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
	}
	return (size_t)h & t->mask;
}

struct addrlim *
addrlim_new(int max_groups, uint64_t seed)
{
	struct addrlim *t = calloc(1, sizeof(*t));
	size_t cap = 16;

	if (t == NULL)
		return NULL;
	while (cap < (size_t)max_groups * 2)
		cap *= 2;
	if ((t->e = calloc(cap, sizeof(*t->e))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	t->seed = seed;
	return t;
}

void
addrlim_free(struct addrlim *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t);
}

/* The slot of key, or of the empty slot where it would go. */
static size_t
find(const struct addrlim *t, const struct addr16 *key)
{
	size_t i = hash(t, key);

	while (t->e[i].total != 0 && memcmp(t->e[i].key.b, key->b, 16) != 0)
		i = (i + 1) & t->mask;
	return i;
}

void
addrlim_get(
    const struct addrlim *t, const struct addr16 *key, int *total, int *unreg)
{
	const struct entry *e = &t->e[find(t, key)];

	*total = e->total;
	*unreg = e->unreg;
}

int
addrlim_add(struct addrlim *t, const struct addr16 *key)
{
	struct entry *e = &t->e[find(t, key)];

	if (e->total == 0) {
		if ((size_t)t->used * 2 >= t->mask + 1)
			return -1; /* keep half empty: probes stay short */
		e->key = *key;
		t->used++;
	}
	e->total++;
	e->unreg++;
	return 0;
}

void
addrlim_registered(struct addrlim *t, const struct addr16 *key)
{
	struct entry *e = &t->e[find(t, key)];

	if (e->unreg > 0)
		e->unreg--;
}

/* Empty slot i, moving later entries of its probe run back into it. */
static void
delete_at(struct addrlim *t, size_t i)
{
	size_t j = i, home;

	for (;;) {
		t->e[i].total = 0;
		for (;;) {
			j = (j + 1) & t->mask;
			if (t->e[j].total == 0)
				return;
			home = hash(t, &t->e[j].key);
			/* may j's entry live at i? only if home is not in (i, j] */
			if (i <= j ? (home <= i || home > j) :
			             (home <= i && home > j))
				break;
		}
		t->e[i] = t->e[j];
		i = j;
	}
}

void
addrlim_remove(struct addrlim *t, const struct addr16 *key)
{
	size_t i = find(t, key);
	struct entry *e = &t->e[i];

	if (e->total == 0)
		return;
	if (--e->total == 0) {
		delete_at(t, i);
		t->used--;
	} else if (e->unreg > e->total)
		e->unreg = e->total;
}

int
addrlim_groups(const struct addrlim *t)
{
	return t->used;
}

/* ---- the refusal log ------------------------------------------------ */

const char *
addrlim_reason_name(enum addrlim_reason r)
{
	switch (r) {
	case ADDRLIM_SERVER_FULL:
		return "server-full";
	case ADDRLIM_PER_ADDR:
		return "too-many-connections";
	case ADDRLIM_UNREG_PER_ADDR:
		return "too-many-unregistered";
	case ADDRLIM_NREASONS:
		break;
	}
	return "?";
}

int
addrlim_log_allow(
    struct addrlim_log *l, enum addrlim_reason r, long long now_ms)
{
	if (l->window_start == 0 ||
	    now_ms - l->window_start >= ADDRLIM_LOG_WINDOW_MS) {
		unsigned long long n = 0;
		int i;

		for (i = 0; i < ADDRLIM_NREASONS; i++)
			n += l->suppressed[i];
		if (n > 0) /* the summary is due first: count this one */
			goto count;
		l->window_start = now_ms;
		l->logged = 0;
	}
	if (l->logged < ADDRLIM_LOG_BURST) {
		l->logged++;
		return 1;
	}
count:
	l->suppressed[r]++;
	return 0;
}

unsigned long long
addrlim_log_summary(
    struct addrlim_log *l, long long now_ms, char *out, size_t outsz)
{
	unsigned long long n = 0;
	size_t len;
	int i;

	if (l->window_start == 0 ||
	    now_ms - l->window_start < ADDRLIM_LOG_WINDOW_MS)
		return 0;
	for (i = 0; i < ADDRLIM_NREASONS; i++)
		n += l->suppressed[i];
	if (n > 0) {
		len = (size_t)snprintf(out, outsz,
		    "refused %llu more %s in the last %lld s "
		    "(not logged one by one):",
		    n, PLURAL(n, "connection", "connections"),
		    (now_ms - l->window_start + 500) / 1000);
		for (i = 0; i < ADDRLIM_NREASONS && len < outsz; i++)
			len +=
			    (size_t)snprintf(out + len, outsz - len, " %s=%llu",
			        addrlim_reason_name((enum addrlim_reason)i),
			        l->suppressed[i]);
	}
	memset(l->suppressed, 0, sizeof(l->suppressed));
	l->window_start = 0; /* the next refusal opens a new window */
	l->logged = 0;
	return n;
}
