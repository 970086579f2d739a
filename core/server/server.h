/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * server.h - the server parent: accept, fork, route, reap, shut down.
 */
#ifndef FORKCHAT_SERVER_H
#define FORKCHAT_SERVER_H

#include "server/opts.h"

/*
 * Serve on the listening socket lfd until SIGTERM/SIGINT (graceful) or
 * SIGQUIT (immediate).  Returns the exit status for main.
 */
int server_run(const struct server_opts *o, int lfd);

#endif
