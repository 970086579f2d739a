/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chat_int.h - what chat.c and chatfed.c share: the chat state (users,
 * rooms, other hubs' snapshots) and the internal helpers each calls in the
 * other.  Private to those two files; everything else uses chat.h.
 */
#ifndef FORKCHAT_CHAT_INT_H
#define FORKCHAT_CHAT_INT_H

#include <stddef.h>

#include "lib/buf.h"
#include "chat/chat.h"
#include "chat/name.h"
#include "lib/proto.h"

#define NAMESZ (PROTO_NAME_MAX_BYTES + 1)

/*
 * A room.  With federation a room may span hubs: each hub has its part of
 * it (its local members), and one of them has the owner.  A part whose
 * owner is on another hub has owner OWNER_REMOTE and the owner's nick in
 * rowner ("" when the room has no owner any more); it is deleted when its
 * last local member leaves (docs/SCALING.md).
 */
#define OWNER_LOBBY  (-1)
#define OWNER_REMOTE (-2)

struct room {
	char name[NAMESZ]; /* NFC, as created */
	char key[NAME_KEYSZ];
	int owner;             /* slot, OWNER_LOBBY or OWNER_REMOTE */
	char rowner[NAMESZ];   /* OWNER_REMOTE: the owner's nick, or "" */
	int head, tail, count; /* member list in join order */
};

struct user {
	int in_use, registered;
	char nick[NAMESZ]; /* NFC, as registered */
	char key[NAME_KEYSZ];
	struct room *room;
	int rprev, rnext; /* room member list */
	int hnext;        /* nick hash chain */
	unsigned claim;   /* federation: nick claim in flight */
	struct buf pend;  /* lines received while the claim is in flight */
};

/* Another hub's presence snapshot (federation). */
struct remote {
	char hub[NAMESZ * 2];
	char *blob;
	size_t len;
	long long seen_ms;
};

/* One "R name count owner" or "U nick room" line of a snapshot. */
struct rline {
	char kind;
	const char *f[3];
	size_t fl[3];
};

struct chat {
	struct chat_limits lim;
	struct chat_io io;
	struct chat_hooks hooks;
	struct user *users;
	struct room **rooms; /* rooms[0] is the lobby */
	int nrooms;
	int nusers;
	int *hash; /* nick key hash -> first slot */
	size_t hashsz;
	char *line; /* scratch for one outgoing line */
	size_t linesz;
	struct chat_fed fed; /* federation hooks, when has_fed */
	int has_fed;
	unsigned claim_seq;
	struct remote *remotes;
	int nremotes;
};

#define PEND_MAX (64 * 1024) /* lines held during a nick claim */

/* cmd_whisper's question to is_nick: who on which hub has nick key. */
struct nick_q {
	const char *key;
	const struct remote *hub;
	char nick[NAMESZ];
};

/* cmd_users's state for users_add: one USER line per remote user. */
struct users_q {
	struct chat *c;
	int slot, n;
	const char *room_key; /* NULL: all */
};

/* ---- chat.c ------------------------------------------------------------ */

void out(struct chat *c, int slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ERR code with text (cut at a character boundary) to slot. */
void out_err(struct chat *c, int slot, enum proto_err code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* Send c->line (len bytes) to every member of r but except; how many. */
int room_send(struct chat *c, struct room *r, int except, size_t len);
/* Slot of the user called name (by its key, name.h), or -1. */
int nick_find(struct chat *c, const char *name, size_t len);
void nick_unhash(struct chat *c, int slot);
/* Local room called name (by its key, name.h), or NULL. */
struct room *room_find(struct chat *c, const char *name, size_t len);
/* Local room whose key is key, or NULL. */
struct room *room_find_key(struct chat *c, const char *key);
/* Slot's nick is its own now: OK NICK, into the lobby. */
void register_done(struct chat *c, int slot);
/* Every member of r goes to the lobby, told who removed r; r is deleted. */
void room_evict(struct chat *c, struct room *r, const char *by);

/* ---- chatfed.c --------------------------------------------------------- */

/*
 * Call fn for every line of every other hub's snapshot until it returns
 * nonzero; returns that value, or 0.
 */
int remote_each(const struct chat *c,
    int (*fn)(const struct remote *h, const struct rline *rl, void *arg),
    void *arg);
/* remote_each callbacks: arg is a struct nick_q / struct users_q. */
int is_nick(const struct remote *h, const struct rline *rl, void *arg);
int users_add(const struct remote *h, const struct rline *rl, void *arg);
/* Does another hub have a room called name? */
int remote_has_room(const struct chat *c, const char *name, size_t len);
/* The name of the room whose key is key as other hubs give it (the owner's
 * hub's first, where it was created) into name (NAMESZ): 1, or 0 if no hub
 * has it. */
int remote_room_name(const struct chat *c, const char *key, char *name);
/* The owner other hubs report for room key into owner (NAMESZ; "" if none). */
void remote_room_owner(const struct chat *c, const char *key, char *owner);
/* /list across hubs: local rooms, counts summed by name, then others'. */
void cmd_list_fed(struct chat *c, int slot);

#endif
