/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net.h - sockets: the listening socket and small fd helpers.
 */
#ifndef FORKCHAT_NET_H
#define FORKCHAT_NET_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Listen on addr:port (SO_REUSEADDR, a large backlog, non-blocking,
 * close-on-exec).  Returns the fd, or -1 with errno set.
 */
int net_listen(const char *addr, int port);

/* "ip:port" of a peer address into out. */
void net_peer(const struct sockaddr_storage *ss, char *out, size_t outsz);

/* Add flags to an fd's status flags; -1 on error. */
int net_set_flags(int fd, int flags);
/* Remove flags from an fd's status flags; -1 on error. */
int net_clear_flags(int fd, int flags);

/* Route SIGIO for fd to this process and switch O_ASYNC on. */
int net_async(int fd);

#endif
