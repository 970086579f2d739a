/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memtrim.h - give freed heap back to the kernel after a burst.
 */
#ifndef FORKCHAT_MEMTRIM_H
#define FORKCHAT_MEMTRIM_H

#include <stddef.h>

/*
 * The caller's state (start it zeroed).  Not a static here: in a session
 * child that would be one more page of the image's data written, 4 kB a
 * child after a burst.
 */
struct memtrim {
	size_t low;  /* the least free heap seen since the last trim */
	size_t kept; /* resident beyond the chunks in use after it */
};

/*
 * If more than slack bytes of this process's heap are free (malloc keeps
 * what a burst's buffers freed, in the middle of the heap) and some of it
 * can be resident, return the free pages to the kernel with
 * malloc_trim(0).  Returns 1 if it trimmed.  Cheap when there is nothing
 * to do: call it when idle or on a tick.  quiet: the caller had no traffic
 * since its last call, so the heap's resident pages are counted too
 * (mincore): a burst that reused freed space and freed it again between
 * two calls leaves the least-free figure unchanged but its pages resident
 * (the parent kept 0.4-3.8 MB after a burst at N=100).  Not while busy:
 * pages given back in a burst come back as faults.
 */
int memtrim_idle(size_t slack, struct memtrim *m, int quiet);

/*
 * The decision alone, from mallinfo2()'s free and in-use bytes and the
 * heap's resident bytes (0: not counted): 1 when a trim is due.
 */
int memtrim_due(size_t slack, const struct memtrim *m, size_t free_now,
    size_t in_use, size_t resident);

#endif
