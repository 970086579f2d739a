/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_recv.c - what a receiver does with one message payload.
 *
 * Payload format (the message text, identical on every system):
 *	s=<sender> q=<seq> t=<CLOCK_MONOTONIC send ns> xxxx...
 * A receiver keeps one bitmap of seen sequence numbers per sender, so it
 * counts duplicates exactly and loss as expected - unique; a sequence number
 * below the highest already seen from that sender is out of order.  Every
 * counter lives in the receiver's slot of shared memory, so the parent can
 * show progress and merge without another round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

struct lg_sink {
	int self;
	struct lg_slot *slot;
	long words;       /* bitmap words per sender */
	uint64_t *seen;   /* senders x words */
	int64_t *highest; /* per sender, -1 = none */
	uint64_t want;    /* expected if every sender sends all */
};

/* Receivers of sender s: every client of its room but the sender itself
 * (forkchat does not echo).  The floor has no sending client, so a floor
 * sender id is never a receiver index. */
static int
sink_hears(const struct lg_sink *k, int s)
{
	if (LG_VIRTUAL_SENDERS())
		return lg_room_of(s) == lg_room_of(k->self);
	return s != k->self && lg_room_of(s) == lg_room_of(k->self);
}

struct lg_sink *
sink_new(int self, struct lg_slot *slot)
{
	struct lg_sink *k;
	int s;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->self = self;
	k->slot = slot;
	k->words = (lg_phase_q0(lg_phases()) + 63) / 64;
	k->seen = calloc((size_t)lg.senders * (size_t)k->words, 8);
	k->highest = malloc((size_t)lg.senders * sizeof(int64_t));
	if (k->seen == NULL || k->highest == NULL)
		return NULL;
	for (s = 0; s < lg.senders; s++) {
		k->highest[s] = -1;
		if (sink_hears(k, s))
			k->want += (uint64_t)lg_phase_q0(lg_phases());
	}
	return k;
}

static int
parse_u64(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	*v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		*v = *v * 10 + (uint64_t)(*p++ - '0');
	*pp = p;
	return 0;
}

/* p points at "s=..."; returns 0, or -1 for a malformed payload. */
int
sink_payload(struct lg_sink *k, const char *p, size_t len, int64_t now)
{
	const char *end = p + len, *start = p;
	struct lg_slot *sl = k->slot;
	uint64_t s, q, t, bit;
	int64_t lat;

	if (len < 2 || memcmp(p, "s=", 2) != 0)
		goto bad;
	p += 2;
	if (parse_u64(&p, end, &s) || end - p < 3 || memcmp(p, " q=", 3))
		goto bad;
	p += 3;
	if (parse_u64(&p, end, &q) || end - p < 3 || memcmp(p, " t=", 3))
		goto bad;
	p += 3;
	if (parse_u64(&p, end, &t))
		goto bad;
	/* the rest must be the padding, exactly as sent: catches truncated
	 * or spliced lines whose header still parses */
	if (len != (size_t)lg.size || p >= end || *p++ != ' ')
		goto bad;
	while (p < end && *p == 'x')
		p++;
	if (p != end)
		goto bad;
	/* Redis delivers a publisher's message to its own subscription too;
	 * forkchat never echoes, so the Redis receiver drops its own. */
	if (lg.sys == SYS_REDIS && s == (uint64_t)k->self)
		return 0;
	if (s >= (uint64_t)lg.senders ||
	    q >= (uint64_t)lg_phase_q0(lg_phases()) || !sink_hears(k, (int)s))
		goto bad;
	sl->received++;
	bit = (uint64_t)1 << (q & 63);
	if (k->seen[s * (uint64_t)k->words + q / 64] & bit) {
		sl->dup++;
		return 0;
	}
	k->seen[s * (uint64_t)k->words + q / 64] |= bit;
	if ((int64_t)q < k->highest[s])
		sl->ooo++;
	else
		k->highest[s] = (int64_t)q;
	sl->unique++;
	sl->from[s]++;
	lat = now - (int64_t)t;
	hist_add(sl->hist, lat);
	if (lat > sl->max_ns)
		sl->max_ns = lat;
	if (sl->first_ns == 0)
		sl->first_ns = now;
	sl->last_ns = now;
	return 0;
bad:
	if (sl->bad++ == 0 && sl->err[0] == '\0')
		snprintf(sl->err, sizeof(sl->err), "malformed line: %.*s",
		    (int)(len > 70 ? 70 : len), start);
	return -1;
}

int
sink_complete(const struct lg_sink *k)
{
	return k->slot->unique >= k->want;
}

/* Expected deliveries from what the senders really sent (a sender stops
 * early when --duration runs out). */
void
sink_final(struct lg_sink *k)
{
	uint64_t exp = 0;
	int s;

	for (s = 0; s < lg.senders; s++)
		if (sink_hears(k, s))
			exp += lg_shm->snd[s].sent;
	k->slot->expected = exp;
}

/* The message text of exactly lg.size bytes (at least the header). */
int
lg_format(char *buf, size_t cap, int sender, uint64_t seq, int64_t t)
{
	int n;

	n = snprintf(buf, cap, "s=%d q=%llu t=%lld ", sender,
	    (unsigned long long)seq, (long long)t);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	while (n < lg.size && (size_t)n < cap - 1)
		buf[n++] = 'x';
	buf[n] = '\0';
	return n;
}
