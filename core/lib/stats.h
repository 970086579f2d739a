/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stats.h - live server statistics: a log-linear latency histogram and
 * the "name value" items that /stats and the periodic log line report.
 *
 * Pure: no system calls, no allocation.  The server parent owns the
 * counters and one histogram; chat.c formats the items it is handed.
 */
#ifndef FORKCHAT_STATS_H
#define FORKCHAT_STATS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Log-linear buckets: values below 2^STATS_SUB_BITS have a bucket each;
 * above, every power of two is split into 2^STATS_SUB_BITS equal buckets,
 * so a bucket is at most 12.5% wide relative to its value.  Covers the
 * whole uint64_t range, so nothing is ever clamped.
 */
#define STATS_SUB_BITS     3
#define STATS_SUB          (1u << STATS_SUB_BITS)
#define STATS_HIST_BUCKETS ((64 - STATS_SUB_BITS + 1) * STATS_SUB)

struct stats_hist {
	uint64_t count;
	uint64_t max;
	uint64_t sum;
	uint64_t b[STATS_HIST_BUCKETS];
};

void stats_hist_reset(struct stats_hist *h);
void stats_hist_add(struct stats_hist *h, uint64_t v);

/* Bucket index of v, and the smallest and largest value of a bucket. */
size_t stats_bucket(uint64_t v);
uint64_t stats_bucket_low(size_t i);
uint64_t stats_bucket_high(size_t i);

/*
 * The q-quantile (0 < q <= 1): the upper bound of the bucket that holds
 * the ceil(q * count)-th smallest value, never above the exact maximum.
 * 0 for an empty histogram.
 */
uint64_t stats_hist_quantile(const struct stats_hist *h, double q);

/* One reported statistic. */
struct stats_item {
	const char *name; /* [a-z0-9_]+ */
	unsigned long long value;
};

/* How many items the server reports (docs/PROTOCOL.md, /stats); a
 * federated hub (--redis) adds STATS_FED_NITEMS after them. */
#define STATS_NITEMS     12
#define STATS_FED_NITEMS 8
#define STATS_MAX_ITEMS  (STATS_NITEMS + STATS_FED_NITEMS)

/*
 * "name=value name=value ..." into buf (always NUL-terminated when bufsz
 * > 0).  Returns the length it needed, like snprintf.
 */
size_t
stats_format(char *buf, size_t bufsz, const struct stats_item *it, size_t n);

#endif
