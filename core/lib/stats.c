/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stats.c - a log-linear histogram and the statistics line format.
 *
 * The server parent records one fan-out latency per batch of records, so
 * adding must be O(1) and the memory fixed: a bucket index is the position
 * of the highest set bit plus the next STATS_SUB_BITS bits.  No system
 * calls and no allocation, so the unit tests drive it directly.
 */
#include <stdio.h>
#include <string.h>

#include "lib/stats.h"

void
stats_hist_reset(struct stats_hist *h)
{
	memset(h, 0, sizeof(*h));
}

size_t
stats_bucket(uint64_t v)
{
	unsigned e;

	if (v < STATS_SUB)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= STATS_SUB_BITS */
	return (size_t)(e - STATS_SUB_BITS + 1) * STATS_SUB +
	    (size_t)((v >> (e - STATS_SUB_BITS)) & (STATS_SUB - 1));
}

uint64_t
stats_bucket_low(size_t i)
{
	unsigned e;

	if (i < STATS_SUB)
		return (uint64_t)i;
	e = (unsigned)(i / STATS_SUB) + STATS_SUB_BITS - 1;
	return (uint64_t)(STATS_SUB + i % STATS_SUB) << (e - STATS_SUB_BITS);
}

uint64_t
stats_bucket_high(size_t i)
{
	unsigned e;

	if (i < STATS_SUB)
		return (uint64_t)i;
	e = (unsigned)(i / STATS_SUB) + STATS_SUB_BITS - 1;
	return stats_bucket_low(i) + ((uint64_t)1 << (e - STATS_SUB_BITS)) - 1;
}

void
stats_hist_add(struct stats_hist *h, uint64_t v)
{
	h->b[stats_bucket(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

uint64_t
stats_hist_quantile(const struct stats_hist *h, double q)
{
	uint64_t rank, seen = 0, hi;
	size_t i;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		q = 0;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++; /* ceil */
	if (rank == 0)
		rank = 1;
	for (i = 0; i < STATS_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			hi = stats_bucket_high(i);
			return hi < h->max ? hi : h->max;
		}
	}
	return h->max;
}

size_t
stats_format(char *buf, size_t bufsz, const struct stats_item *it, size_t n)
{
	size_t len = 0, i;
	int m;

	if (bufsz > 0)
		buf[0] = '\0';
	for (i = 0; i < n; i++) {
		m = snprintf(len < bufsz ? buf + len : NULL,
		    len < bufsz ? bufsz - len : 0, "%s%s=%llu", i ? " " : "",
		    it[i].name, it[i].value);
		if (m < 0)
			break;
		len += (size_t)m;
	}
	return len;
}
