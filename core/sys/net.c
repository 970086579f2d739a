/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net.c - the listening socket and fd flag helpers.
 *
 * The listen backlog is large (the original program used 5 and a
 * 25-client storm spent 3 s in SYN retries) and SO_REUSEADDR is set (the
 * original could not restart for 60 s after a shutdown).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sys/net.h"

#define LISTEN_BACKLOG 4096

int
net_listen(const char *addr, int port)
{
	struct sockaddr_in sin;
	int fd, one = 1, saved;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

void
net_peer(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char ip[INET_ADDRSTRLEN];

	if (ss->ss_family != AF_INET ||
	    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL) {
		snprintf(out, outsz, "unknown");
		return;
	}
	snprintf(out, outsz, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
}

int
net_set_flags(int fd, int flags)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | flags);
}

int
net_clear_flags(int fd, int flags)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~flags);
}

int
net_async(int fd)
{
	if (fcntl(fd, F_SETOWN, getpid()) < 0)
		return -1;
	return net_set_flags(fd, O_ASYNC | O_NONBLOCK);
}
