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

#endif
