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
 */
int memtrim_idle(size_t slack);

#endif
