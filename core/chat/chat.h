/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chat.h - the chat state machine the server parent runs: who is
 * connected, their nicknames, the rooms and who owns them, and what every
 * command does (docs/PROTOCOL.md).
 *
 * Pure logic: it makes no system calls.  Output leaves through the
 * callbacks in struct chat_io, so unit tests can drive it directly and the
 * server can batch what it produces into one pipe write per child.
 */
#ifndef FORKCHAT_CHAT_H
#define FORKCHAT_CHAT_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/proto.h"
#include "lib/stats.h"

struct chat;

struct chat_io {
	void *ctx;
	/* Queue one complete line (ending in '\n') for slot. */
	void (*send)(void *ctx, int slot, const char *line, size_t len);
	/* Close slot's connection once what was queued is delivered. */
	void (*close)(void *ctx, int slot);
};

/*
 * Optional hooks for statistics, called with ctx (chat_set_hooks; a NULL
 * member is never called).
 */
struct chat_hooks {
	/* A room message from slot was queued for recipients other members. */
	void (*message)(void *ctx, int slot, int recipients);
	/* Fill at most max items for /stats; returns how many. */
	size_t (*stats)(void *ctx, struct stats_item *it, size_t max);
	/* slot's nickname was accepted (per-address limits count it). */
	void (*registered)(void *ctx, int slot);
	void *ctx; /* passed to the hooks; NULL: struct chat_io's ctx */
};

/*
 * Federation (docs/SCALING.md), installed with chat_set_fed; without it
 * the chat is exactly a lone hub's.  Called with ctx.
 */
struct chat_fed {
	void *ctx;
	/* A room-wide line (MSG, JOIN, PART, OWNER) for room key's members
	 * on the other hubs. */
	void (*room_line)(
	    void *ctx, const char *room_key, const char *line, size_t len);
	/* Claim nick key across hubs; answer with chat_fed_claimed(). */
	void (*claim)(void *ctx, unsigned token, const char *key);
	void (*release)(void *ctx, const char *key);
	/* A whisper for nick `to` on hub `hub`. */
	void (*whisper)(void *ctx, const char *hub, const char *from,
	    const char *to, const char *text, size_t len);
	/* Rooms or users changed: the presence snapshot is stale. */
	void (*changed)(void *ctx);
	/* Room key was removed here by its owner `by`: remove it everywhere. */
	void (*room_removed)(void *ctx, const char *room_key, const char *by);
	/* Room key lost its owner and has no member left here: it has no
	 * owner anywhere now. */
	void (*room_orphaned)(void *ctx, const char *room_key);
};

struct chat_limits {
	int max_clients; /* slots are 0 .. max_clients-1 */
	int max_rooms;   /* rooms besides the lobby */
	size_t max_line;
};

struct chat *chat_new(const struct chat_limits *lim, const struct chat_io *io);
void chat_free(struct chat *c);
/* Install statistics hooks (without them /stats answers END STATS 0). */
void chat_set_hooks(struct chat *c, const struct chat_hooks *h);

/* A new connection in slot: sends HELLO.  Slot must be free. */
void chat_connect(struct chat *c, int slot);

/* A complete, validated (proto_check_line) line from slot's client. */
void chat_line(struct chat *c, int slot, const char *line, size_t len);

/* A line from slot that failed validation with code (answered with ERR). */
void chat_reject(struct chat *c, int slot, enum proto_err code);

/*
 * Forget slot: leave its room (the room sees PART with reason "quit" or
 * "disconnected"), free its nickname, pass on or delete the rooms it owns.
 * Safe to call on a free slot.  Does not call io->close.
 */
void chat_disconnect(struct chat *c, int slot, const char *reason);

/* Server-initiated goodbye: queue "BYE name text", forget slot, close it. */
void chat_bye(struct chat *c, int slot, const char *name, const char *text);

void chat_set_fed(struct chat *c, const struct chat_fed *f);
/* The answer to claim(token): ok 1 registers the nick, 0 refuses it. */
void chat_fed_claimed(struct chat *c, unsigned token, int ok);
/* A room-wide line from another hub for local members of room key. */
void chat_fed_room_line(
    struct chat *c, const char *key, size_t klen, const char *line, size_t len);
/*
 * Nick key was given to a user of another hub while the hubs were cut off,
 * and that user took it first: its local holder is disconnected with
 * BYE NICK_TAKEN.
 */
void chat_fed_lost(struct chat *c, const char *key, size_t klen);
/*
 * Nick key was also given to a user of another hub while the hubs were cut
 * off, and ours took it first: ours keeps it and is told with NOTICE.
 */
void chat_fed_kept(struct chat *c, const char *key, size_t klen);
/* Another hub removed room key (its owner `by` did): our members go to the
 * lobby with REMOVED, and this hub's part of the room is deleted. */
void chat_fed_room_removed(
    struct chat *c, const char *key, size_t klen, const char *by, size_t blen);
/* Room key's owner left and nobody on its hub inherited it. */
void chat_fed_room_orphaned(struct chat *c, const char *key, size_t klen);
/* A whisper from another hub to local nick `to`. */
void chat_fed_whisper(struct chat *c, const char *from, size_t flen,
    const char *to, size_t tlen, const char *text, size_t len);
/* Hub's presence ("R name count owner" and "U nick room" lines). */
void chat_fed_presence(struct chat *c, const char *hub, size_t hlen,
    const char *blob, size_t len, long long now_ms);
/*
 * n events of hub were never read here (the stream was trimmed past them):
 * the local members of the rooms its users are in get NOTICE
 * MESSAGES_LOST (every local user if no user of hub is known here).
 */
void chat_fed_gap(
    struct chat *c, const char *hub, size_t hlen, unsigned long long n);
/* Forget hubs not heard from since now_ms - ttl_ms. */
void chat_fed_expire(struct chat *c, long long now_ms, long long ttl_ms);
/* This hub's presence snapshot into b; -1 when out of memory. */
int chat_fed_snapshot(const struct chat *c, struct buf *b);

int chat_in_use(const struct chat *c, int slot);
int chat_is_registered(const struct chat *c, int slot);
/* Nickname of slot, or "-" when it has none yet. */
const char *chat_nick(const struct chat *c, int slot);
/* Room slot is in, or NULL. */
const char *chat_room(const struct chat *c, int slot);
int chat_room_count(const struct chat *c); /* including the lobby */
int chat_user_count(const struct chat *c); /* registered users */

#endif
