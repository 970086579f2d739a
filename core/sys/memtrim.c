/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memtrim.c - returning a burst's freed heap to the kernel.
 *
 * buf.c frees a large buffer once it is empty, but glibc's malloc keeps the
 * freed space: after a burst the parent held 66 MB of free heap at N=1000
 * and every session child about 70 kB more than before it (issue 17,
 * bench/memory.py).  malloc_trim(0) hands every free page back
 * (MADV_DONTNEED in the middle of the heap, a shorter heap at its top).
 * It walks the free lists, so it runs only when mallinfo2() says that
 * enough was freed since the last time, or (quiet callers) when the heap
 * holds more resident pages than its chunks in use by more than the slack,
 * and only from a tick or an idle wake-up, never per message.
 */
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sys/memtrim.h"

/* Resident heap bytes beyond the chunks in use (0 when none). */
static size_t
excess(size_t resident, size_t in_use)
{
	return resident > in_use ? resident - in_use : 0;
}

int
memtrim_due(size_t slack, const struct memtrim *m, size_t free_now,
    size_t in_use, size_t resident)
{
	if (free_now <= slack)
		return 0; /* nothing worth a walk of the free lists */
	if (free_now - m->low > slack)
		return 1; /* freed since the last trim: resident again */
	/*
	 * Freed space reused and freed again between two calls never shows
	 * in the least free (a burst between ticks): resident pages do.
	 * What a trim could not give back (pages shared by a chunk in use
	 * and a free one) is m->kept: only growth past it counts.
	 */
	return excess(resident, in_use) > m->kept + slack;
}

/* Bytes of the main heap (below the break) that have resident pages. */
static size_t
heap_resident(size_t arena)
{
	unsigned char vec[256];
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t end = (uintptr_t)sbrk(0);
	uintptr_t a = (end - arena) & ~(pg - 1);
	size_t res = 0, n, i;

	while (a < end) {
		n = (size_t)((end - a + pg - 1) / pg);
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)a, n * pg, vec) < 0)
			return 0;
		for (i = 0; i < n; i++)
			res += vec[i] & 1;
		a += n * pg;
	}
	return res * pg;
}

int
memtrim_idle(size_t slack, struct memtrim *m, int quiet)
{
	struct mallinfo2 mi = mallinfo2(); /* m->low 0: nothing was free */
	size_t resident = 0;
	int r;

	if (mi.fordblks < m->low)
		m->low = mi.fordblks;
	if (mi.fordblks <= slack)
		return 0;
	if (quiet && mi.fordblks - m->low <= slack)
		resident = heap_resident(mi.arena); /* one mincore a MB */
	if (!memtrim_due(slack, m, mi.fordblks, mi.uordblks, resident))
		return 0;
	r = malloc_trim(0);
	mi = mallinfo2();
	m->low = mi.fordblks;
	m->kept = quiet ? excess(heap_resident(mi.arena), mi.uordblks) : 0;
	return r;
}
