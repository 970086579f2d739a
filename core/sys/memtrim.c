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
 * enough was freed since the last time, and only from a tick or an idle
 * wake-up, never per message.
 */
#include <malloc.h>

#include "sys/memtrim.h"

/*
 * Pages given back stay "free" in mallinfo2(), so the test is against the
 * least free seen since the last trim: only what was in use at some tick
 * and is free now can be resident again.
 */
int
memtrim_idle(size_t slack, size_t *low)
{
	struct mallinfo2 mi = mallinfo2(); /* *low 0: nothing was free */
	int r;

	if (mi.fordblks < *low)
		*low = mi.fordblks;
	if (mi.fordblks <= slack || mi.fordblks - *low <= slack)
		return 0;
	r = malloc_trim(0);
	*low = mallinfo2().fordblks;
	return r;
}
