/*
 * flow.h - the parent's flow control: a room whose members fall behind
 * slows its senders down instead of cutting the readers (docs/PROTOCOL.md
 * "Slow consumers and flow control").
 */
#ifndef FORKCHAT_FLOW_H
#define FORKCHAT_FLOW_H

#include <stddef.h>

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
};

/* Per server, in struct server. */
struct flow {
	size_t high, low, hard;
	long long stall_ms, pace_ms;
	int nhot, npaused;
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
/* Why a verdict cuts, for the log. */
const char *flow_why(enum flow_verdict v);

#endif
