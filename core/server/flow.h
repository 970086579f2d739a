/*
 * flow.h - the parent's flow control: a room whose members fall behind
 * slows its senders down instead of cutting the readers (docs/PROTOCOL.md
 * "Slow consumers and flow control").
 */
#ifndef FORKCHAT_FLOW_H
#define FORKCHAT_FLOW_H

#include <stddef.h>

#include "lib/buf.h"
#include "sys/ipc.h"

/* Defaults; the marks are fractions of --max-backlog. */
#define FLOW_HIGH_DIV    4     /* high-water mark: max-backlog / 4 */
#define FLOW_LOW_DIV     16    /* low-water mark: max-backlog / 16 */
#define FLOW_STALL_MS    3000  /* hot and nothing drained: cut */
#define FLOW_PACE_MS     10000 /* hot without reaching the low mark: cut */
#define FLOW_HARD_FACTOR 16    /* backlog past 16 x max-backlog: cut now */

/* Per client, in struct client. */
struct flow_cl {
	int hot;              /* backlog passed high, not back to low yet */
	int paused;           /* its child was told to stop reading */
	int spoke;            /* on the spoke list this turn */
	long long hot_ms;     /* when it got hot */
	long long drained_ms; /* when its pipe last took bytes */
	int holding;          /* held is not empty */
	struct buf held;      /* its records read while paused, in order */
};

/* Per server, in struct server. */
struct flow {
	size_t high, low, hard;
	long long stall_ms, pace_ms;
	int nhot, npaused, nholding;
	int changed;        /* a member got hot or cooled */
	int *spoke, nspoke; /* room senders this turn */
	const char **rooms; /* scratch: the rooms with a hot member */
	unsigned long long pauses, resumes; /* signals sent (the log) */
	long long log_ms[2]; /* last "flow" log line of each kind */
};

enum flow_verdict { FLOW_OK, FLOW_STALLED, FLOW_TOO_SLOW, FLOW_TOO_BIG };

struct server;

/* Marks from --max-backlog, the scratch lists; -1 without memory. */
int flow_setup(struct server *s);
void flow_free(struct server *s);
/* slot queued a room message this turn (chat hook). */
void flow_spoke(struct server *s, int slot);
/*
 * slot's backlog after a flush that wrote `wrote` bytes to its pipe:
 * update its marks; anything but FLOW_OK means cut it as a slow consumer.
 */
enum flow_verdict flow_backlog(struct server *s, int slot, size_t wrote);
/* slot's pipe is closed: it holds nobody back and is told nothing more. */
void flow_forget(struct server *s, int slot);
/* End of a turn: pause the senders of rooms with a hot member, resume the
 * others. */
void flow_turn(struct server *s);
/*
 * A record from slot, read from the shared pipe: if slot is paused (or
 * still has held records), keep it for later and return 1; the records a
 * paused sender wrote before it stopped reading must not reach the room
 * while the room is behind, or the backlogs would grow by all that was in
 * flight.  0: handle it now.
 */
int flow_hold(
    struct server *s, int slot, const struct ipc_hdr *h, const char *payload);
typedef void
flow_handler(struct server *s, const struct ipc_hdr *h, const char *payload);
/*
 * Hand held records to fn, in order: of every slot that is no longer
 * paused, at most budget bytes in all (slot -1); or all of one slot, paused
 * or not (a slot that is being freed).  Returns 1 if some remain that may
 * go now.
 */
int flow_replay(struct server *s, int slot, size_t budget, flow_handler *fn);
/* Why a verdict cuts, for the log. */
const char *flow_why(enum flow_verdict v);

#endif
