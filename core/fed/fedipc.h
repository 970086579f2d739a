/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fedipc.h - the records between the server parent (fed.c) and the
 * federation bridge (bridge.c), on the bridge's own pair of pipes.  Same
 * header and codec as every server pipe (sys/ipc.h); slot is unused
 * unless noted.  A record may exceed PIPE_BUF: nobody else writes those
 * pipes.
 */
#ifndef FORKCHAT_FEDIPC_H
#define FORKCHAT_FEDIPC_H

#include "sys/ipc.h"

enum ipc_fed_type {
	/* parent -> bridge */
	IPC_FED_PUB =
	    16,          /* code 0: [seq 8][len 4][body]; 1: body, unreliable */
	IPC_FED_CLAIM,   /* slot: token, 0 = re-claim; payload: folded nick */
	IPC_FED_RELEASE, /* payload: folded nick */
	/* bridge -> parent */
	IPC_FED_EVENT,   /* payload: "ORIGIN SEQ BODY" of a stream entry;
			  * code 1: the entry had no "e" field, 2: its
			  * value was too long (payload: its start) */
	IPC_FED_CLAIMED, /* slot: token; code: 1 ok, 0 taken */
	IPC_FED_LOG,     /* code: 0 info, 1 warn, 2 error; payload: text */
	IPC_FED_UP,      /* code: 1 connected to Redis, 0 lost */
	IPC_FED_LOST,    /* payload: folded nick; code 0: another hub holds it
			  * now (our user goes), 1: another hub's user lost
			  * it to ours (ours is told) */
	IPC_FED_ACKED,   /* payload: seq 8: Redis has every event up to it */
	IPC_FED_CURSOR,  /* payload: stream id of the last entry read */
	IPC_FED_REDIS,   /* payload: the run_id of the Redis connected to */
};

/*
 * The largest payload on the bridge's pipes, both ways: a presence
 * snapshot of every room and user is the largest record; the parent reads
 * at most FED_IN_MAX (fed.c) ahead, so a record must fit in that.  A
 * longer length means a corrupt stream.
 */
#define FEDIPC_MAX ((16u << 20) - IPC_HDR)

/*
 * A reliable event as the parent keeps it, hands it to the bridge (the
 * payload of IPC_FED_PUB with code 0) and the bridge keeps it in its
 * outbox: [seq 8][len 4][body len], host byte order.
 */
#define FEDIPC_ENTRY_HDR 12

static inline size_t
fedipc_entry_size(uint32_t len)
{
	return FEDIPC_ENTRY_HDR + (size_t)len;
}

static inline void
fedipc_entry_head(char *e, unsigned long long seq, uint32_t len)
{
	memcpy(e, &seq, 8);
	memcpy(e + 8, &len, 4);
}

/* The head of the entry at p[0..n): 1 with *seq and *len (its body's
 * bytes, which may not all be there), or 0 if n is too short. */
static inline int
fedipc_entry_get(
    const char *p, size_t n, unsigned long long *seq, uint32_t *len)
{
	if (n < FEDIPC_ENTRY_HDR)
		return 0;
	memcpy(seq, p, 8);
	memcpy(len, p + 8, 4);
	return 1;
}

/* The same for the entry at offset off of a buffer of entries. */
static inline int
fedipc_entry_at(
    const struct buf *b, size_t off, unsigned long long *seq, uint32_t *len)
{
	return off < buf_used(b) &&
	    fedipc_entry_get(buf_head(b) + off, buf_used(b) - off, seq, len);
}

#endif
