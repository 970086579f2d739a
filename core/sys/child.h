/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * child.h - what every server child (client session, federation bridge)
 * does right after fork(), before it runs.
 */
#ifndef FORKCHAT_CHILD_H
#define FORKCHAT_CHILD_H

#include <sys/types.h>

/*
 * Die with the parent (exits at once if it is already gone), leave ^C and
 * the parent's other signals to the parent, block the child's own wait set
 * {SIGIO, SIGUSR2, SIGTERM}, drop the log, and close every descriptor but
 * 0-2 and the n in keep (which is sorted in place).  Never returns on
 * failure.
 */
void child_setup(pid_t parent, int *keep, int n);

#endif
