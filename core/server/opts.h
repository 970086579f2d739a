/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * opts.h - forkchatd command line (docs/SERVER-CLI.md).
 */
#ifndef FORKCHAT_OPTS_H
#define FORKCHAT_OPTS_H

#include <stddef.h>

#include "server/addrlim.h"

#define OPTS_MAX_EXEMPT 32

struct server_opts {
	int port;
	char bind[64];
	int max_clients;
	int max_rooms;
	size_t max_line;
	size_t max_backlog;
	int register_timeout; /* seconds, 0 = none */
	char log_dir[4096];
	char pid_file[4096]; /* "" = none */
	int foreground;
	int stats_interval;   /* seconds between "stats" log lines, 0 = none */
	char user[256];       /* drop to this user after startup, "" = stay */
	char redis_host[256]; /* --redis HOST:PORT: federation, "" = none */
	int redis_port;
	char hub_id[65];      /* --hub-id, "" = HOSTNAME-PORT */
	int nick_ttl;         /* seconds a dead hub's nicks stay taken */
	int redis_timeout_ms; /* a reply due this long: Redis is down */
	/* per-address limits (docs/SECURITY.md), 0 = none */
	int max_per_addr;       /* connections from one address group */
	int max_unreg_per_addr; /* of them without a nickname yet */
	int reserve; /* slots never given to unregistered peers; -1 = -m/10 */
	struct addr_net exempt[OPTS_MAX_EXEMPT]; /* outside every limit */
	int nexempt;
};

enum opts_result { OPTS_RUN, OPTS_EXIT_OK, OPTS_USAGE };

/*
 * Parse argv into o (defaults first).  On OPTS_USAGE, err holds a one-line
 * reason; OPTS_EXIT_OK means --help or --version was printed to out.
 */
enum opts_result opts_parse(struct server_opts *o, int argc, char **argv,
    char *err, size_t errsz, void *out);

#endif
