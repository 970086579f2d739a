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
 *   SIGCHLD  kernel -> parent "a child ended": reap with waitpid(WNOHANG)
 *   SIGHUP   -> parent        "reopen the log"
 */
#ifndef FORKCHAT_IPC_H
#define FORKCHAT_IPC_H

#include <limits.h>
#include <stdint.h>

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

/* Reasons the parent gives in a SIGTERM's si_value. */
enum ipc_abort {
	IPC_ABORT_SHUTDOWN = 1,
	IPC_ABORT_SLOW_CONSUMER = 2,
	IPC_ABORT_ERROR = 3,
};

#endif
