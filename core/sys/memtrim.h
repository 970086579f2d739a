/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memtrim.h - give freed heap back to the kernel after a burst.
 */
#ifndef FORKCHAT_MEMTRIM_H
#define FORKCHAT_MEMTRIM_H

#include <stddef.h>

/*
 * If more than slack bytes of this process's heap are free (malloc keeps
 * what a burst's buffers freed, in the middle of the heap), return the
 * free pages to the kernel with malloc_trim(0).  Returns 1 if it trimmed.
 * Cheap when there is nothing to do: call it when idle or on a tick.
 * *low is the caller's (start it at 0): the least free heap seen since the
 * last trim.  Not a static here: in a session child that would be one more
 * page of the image's data written, 4 kB a child after a burst.
 */
int memtrim_idle(size_t slack, size_t *low);

#endif
