/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_hist.c - HDR-style log-linear latency histogram.
 *
 * Pure arithmetic, no syscalls.  Values are nanoseconds.  Below 2*LG_SUB
 * every value has its own bin; above, each power of two is cut into LG_SUB
 * equal bins, so a reported quantile is within 1/LG_SUB (1.6 %) of the
 * true sample.  Receivers add into their own slot in shared memory; the
 * parent sums the slots and reads quantiles from the sum.
 */
#include "lg.h"

int
hist_index(int64_t ns)
{
	int e;

	if (ns < 0)
		ns = 0;
	if (ns < 2 * LG_SUB)
		return (int)ns;
	e = 63 - __builtin_clzll((unsigned long long)ns);
	if (e >= LG_MAX_EXP)
		return LG_HIST_BINS - 1;
	return 2 * LG_SUB + (e - LG_SUB_BITS - 1) * LG_SUB +
	    (int)((ns >> (e - LG_SUB_BITS)) & (LG_SUB - 1));
}

/* The middle of the bin, which is what quantiles report. */
int64_t
hist_value(int idx)
{
	int e, sub;
	int64_t lo;

	if (idx < 2 * LG_SUB)
		return idx;
	e = (idx - 2 * LG_SUB) / LG_SUB + LG_SUB_BITS + 1;
	sub = (idx - 2 * LG_SUB) % LG_SUB;
	lo = (int64_t)(LG_SUB + sub) << (e - LG_SUB_BITS);
	return lo + (((int64_t)1 << (e - LG_SUB_BITS)) >> 1);
}

void
hist_add(uint32_t *h, int64_t ns)
{
	h[hist_index(ns)]++;
}

/* Smallest bin value with at least ceil(q * total) samples at or below. */
int64_t
hist_quantile(const uint64_t *h, uint64_t total, double q)
{
	uint64_t rank, acc = 0;
	int i;

	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	for (i = 0; i < LG_HIST_BINS; i++) {
		acc += h[i];
		if (acc >= rank)
			return hist_value(i);
	}
	return hist_value(LG_HIST_BINS - 1);
}
