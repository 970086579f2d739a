/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipc.h - records on the shared child-to-parent pipe, and the meaning of
 * each signal between server processes.
 *
 * Every child writes to one pipe that only the parent reads.  A write of at
 * most PIPE_BUF bytes is atomic, so a child packs whole records into
 * batches of at most PIPE_BUF bytes and records of different children never
 * interleave.  Each record carries the sender's slot number, so the parent
 * knows who spoke without trusting anything the client sent.
 *
 * Signals (see also docs/ARCHITECTURE.md):
 *   SIGUSR1  child -> parent  "records are waiting on the shared pipe"
 *   SIGUSR2  parent -> child  "bytes are waiting on your pipe"
 *   SIGIO    kernel -> owner  "a socket (or a full pipe you write) is ready"
 *   SIGTERM  parent -> child  via sigqueue: "stop now", si_value = enum ipc_abort
 *   IPC_SIG_FLOW parent -> child via sigqueue: si_value 1 "stop reading your
 *            client" (its room is behind), 0 "read it again" (flow.c)
 *   SIGCHLD  kernel -> parent "a child ended": reap with waitpid(WNOHANG)
 *   SIGHUP   -> parent        "reopen the log"
 */
#ifndef FORKCHAT_IPC_H
#define FORKCHAT_IPC_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>

enum ipc_type {
	IPC_LINE = 1, /* payload: one validated line */
	IPC_REJECT,   /* code: enum proto_err of a refused line */
	IPC_EOF,      /* the client closed its side; code: errno if it failed */
};

/*
 * Records between the parent and the federation bridge (bridge.c), on the
 * bridge's own pair of pipes (a record may exceed PIPE_BUF: nobody else
 * writes those pipes).  Same header; slot is unused unless noted.
 */
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

struct ipc_hdr {
	uint32_t slot;
	uint16_t type;
	uint16_t code;
	uint32_t len; /* payload bytes that follow */
};

#define IPC_HDR   sizeof(struct ipc_hdr)
#define IPC_BATCH PIPE_BUF /* largest atomic write */

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

#endif
