/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipc.h - the record format of every pipe between server processes (one
 * codec: ipc_put() encodes, ipc_get() decodes, ipc_read() reads a pipe
 * into a buffer), the records on the shared child-to-parent pipe, and the
 * meaning of each signal between server processes.  The federation's
 * record types are in fed/fedipc.h; they use the same header and codec.
 *
 * Every child writes to one pipe that only the parent reads.  A write of at
 * most PIPE_BUF bytes is atomic, so a child packs whole records into
 * batches of at most PIPE_BUF bytes and records of different children never
 * interleave.  Each record carries the sender's slot number, so the parent
 * knows who spoke without trusting anything the client sent.
 *
 * A record is a struct ipc_hdr in host byte order (both ends are the same
 * program on the same machine) followed by hdr.len payload bytes.
 *
 * Signals (see also docs/ARCHITECTURE.md):
 *   SIGUSR1  child -> parent  "records are waiting on the shared pipe": raised
 *            by the child's write itself (O_ASYNC + F_SETSIG on the parent's end)
 *   SIGUSR2  parent -> child  "bytes are waiting on your pipe": raised by the
 *            parent's write itself (O_ASYNC + F_SETSIG on the child's end)
 *   SIGUSR1  parent -> child  "your pipe is closed: read on to the EOF"
 *   SIGIO    kernel -> owner  "a socket (or a full pipe you write) is ready"
 *   SIGTERM  parent -> child  via sigqueue: "stop now", si_value = enum ipc_abort
 *   IPC_SIG_FLOW parent -> child via sigqueue: si_value 1 "stop reading your
 *            client" (its room is behind), 0 "read it again" (flow.c)
 *   SIGCHLD  kernel -> parent "a child ended": reap with waitpid(WNOHANG)
 *   SIGHUP   -> parent        "reopen the log"
 */
#ifndef FORKCHAT_IPC_H
#define FORKCHAT_IPC_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"

enum ipc_type {
	IPC_LINE = 1, /* payload: one validated line */
	IPC_REJECT,   /* code: enum proto_err of a refused line */
	IPC_EOF,      /* the client closed its side; code: errno if it failed */
};

struct ipc_hdr {
	uint32_t slot;
	uint16_t type;
	uint16_t code;
	uint32_t len; /* payload bytes that follow */
};

#define IPC_HDR   sizeof(struct ipc_hdr)
#define IPC_BATCH PIPE_BUF /* largest atomic write */
/* The largest payload on the shared pipe: a record goes out whole in one
 * batch of at most IPC_BATCH bytes, so a longer one is never written. */
#define IPC_SHARED_MAX (IPC_BATCH - IPC_HDR)

/*
 * Flow control (parent -> session child): a real-time signal, so that
 * pause and resume queue in order instead of merging; blocked in every
 * server process (a default real-time signal would kill the child).
 */
#define IPC_SIG_FLOW (SIGRTMIN + 1)

/* Reasons the parent gives in a SIGTERM's si_value. */
enum ipc_abort {
	IPC_ABORT_SHUTDOWN = 1,
	IPC_ABORT_SLOW_CONSUMER = 2,
	IPC_ABORT_ERROR = 3,
};

/*
 * Append one whole record to out: the header, then a[0..al) and
 * b[0..bl) as its payload (two pieces, so a caller never assembles one).
 * Returns 0, or -1 (errno ENOMEM, or EMSGSIZE for a payload the header
 * cannot count) with out unchanged: a record is queued whole or not at all.
 * Inline: it is on the message hot path (a child, for every line).
 */
static inline int
ipc_put2(struct buf *out, uint32_t slot, unsigned type, unsigned code,
    const void *a, size_t al, const void *b, size_t bl)
{
	struct ipc_hdr h;
	char *d;

	if (al + bl > UINT32_MAX || al + bl < al) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((d = buf_reserve(out, IPC_HDR + al + bl)) == NULL)
		return -1;
	h.slot = slot;
	h.type = (uint16_t)type;
	h.code = (uint16_t)code;
	h.len = (uint32_t)(al + bl);
	memcpy(d, &h, IPC_HDR);
	if (al > 0)
		memcpy(d + IPC_HDR, a, al);
	if (bl > 0)
		memcpy(d + IPC_HDR + al, b, bl);
	buf_commit(out, IPC_HDR + al + bl);
	return 0;
}

static inline int
ipc_put(struct buf *out, uint32_t slot, unsigned type, unsigned code,
    const void *p, size_t len)
{
	return ipc_put2(out, slot, type, code, p, len, NULL, 0);
}

/*
 * The record at the head of p[0..n): 1 if it is whole (*h is its header,
 * its payload starts at p + IPC_HDR, it takes ipc_size(h) bytes), 0 if
 * more bytes are needed, -1 if its length passes max: no writer of this
 * stream makes such a record, so the stream is corrupt and nothing after
 * it can be framed.
 */
static inline int
ipc_get(const char *p, size_t n, size_t max, struct ipc_hdr *h)
{
	if (n < IPC_HDR)
		return 0;
	memcpy(h, p, IPC_HDR);
	if (h->len > max)
		return -1;
	return n - IPC_HDR >= h->len;
}

/* Bytes the record of header h takes, header included. */
static inline size_t
ipc_size(const struct ipc_hdr *h)
{
	return IPC_HDR + (size_t)h->len;
}

/* ipc_get() on the unconsumed bytes of a buffer. */
static inline int
ipc_next(const struct buf *in, size_t max, struct ipc_hdr *h)
{
	return ipc_get(buf_head(in), buf_used(in), max, h);
}

/*
 * How a reader reads its pipe (ipc_read).  Each read(2) takes at most
 * chunk bytes, into at least chunk / 4 bytes of room.  IPC_RD_SHORT: a
 * short read means the pipe is drained (saves the read that would say
 * EAGAIN; for a reader that the writer's next signal or a tick brings
 * back).
 */
#define IPC_RD_SHORT 1u
struct ipc_rd {
	size_t chunk;
	unsigned flags;
};

enum ipc_read_end {
	IPC_READ_MORE = 0, /* want bytes were read: more may be waiting */
	IPC_READ_DRAINED,  /* EAGAIN (or a short read with IPC_RD_SHORT) */
	IPC_READ_EOF,      /* every writer closed the pipe */
	IPC_READ_ERROR,    /* errno: a read error, or ENOMEM for the buffer */
};

/*
 * The one "read until EAGAIN" loop of every record reader: read the
 * non-blocking fd into in until it is drained or closed, or until at least
 * want bytes have been read (want 1: one read(2), so that a caller can
 * put its FAIL() point before each read).  Retries EINTR.  Adds the bytes
 * read to *got.
 */
enum ipc_read_end ipc_read(
    int fd, struct buf *in, const struct ipc_rd *how, size_t want, size_t *got);

#endif
