/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * clock.h - CLOCK_MONOTONIC in milliseconds and microseconds, for the
 * timers and latency figures of the server parent, the federation side and
 * the bridge.  Never goes back when the wall clock is set.
 */
#ifndef FORKCHAT_CLOCK_H
#define FORKCHAT_CLOCK_H

#include <time.h>

static inline long long
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
