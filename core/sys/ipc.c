/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipc.c - reading a pipe of records (ipc.h): the one loop every record
 * reader uses (the parent on the shared pipe and on the bridge's, the
 * bridge on the parent's).
 *
 * Owns nothing: the caller's buffer keeps what was read, and the caller
 * frames it with ipc_get().  Never blocks (the fd is non-blocking) and
 * never decides what a failure means: it says why it stopped.
 */
#include <errno.h>
#include <unistd.h>

#include "sys/ipc.h"

enum ipc_read_end
ipc_read(
    int fd, struct buf *in, const struct ipc_rd *how, size_t want, size_t *got)
{
	size_t total = 0, room;
	ssize_t n;
	char *p;

	for (;;) {
		if ((p = buf_reserve(in, how->chunk / 4)) == NULL)
			return IPC_READ_ERROR; /* errno ENOMEM */
		room = buf_room(in) < how->chunk ? buf_room(in) : how->chunk;
		n = read(fd, p, room);
		if (n > 0) {
			buf_commit(in, (size_t)n);
			total += (size_t)n;
			*got += (size_t)n;
			if ((how->flags & IPC_RD_SHORT) && (size_t)n < room)
				return IPC_READ_DRAINED;
			if (total >= want)
				return IPC_READ_MORE;
		} else if (n == 0)
			return IPC_READ_EOF;
		else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IPC_READ_DRAINED;
		else
			return IPC_READ_ERROR;
	}
}
