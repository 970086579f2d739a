/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * room.h - the rooms of the chat (room.c): each room's members in join
 * order, which room each slot is in, and lines sent to a room's members.
 *
 * With federation a room may span hubs: each hub has its part of it (its
 * local members), and one of them has the owner.  A part whose owner is on
 * another hub has owner ROOM_OWNER_REMOTE and the owner's nick in rowner
 * ("" when the room has no owner any more); the chat deletes it when its
 * last local member leaves (docs/SCALING.md).
 */
#ifndef FORKCHAT_ROOM_H
#define FORKCHAT_ROOM_H

#include <stddef.h>

#include "chat/chat.h"
#include "chat/name.h"

#define ROOM_OWNER_LOBBY  (-1)
#define ROOM_OWNER_REMOTE (-2)

struct room {
	char name[NAME_SZ]; /* NFC, as created */
	char key[NAME_KEYSZ];
	int owner;             /* slot, ROOM_OWNER_LOBBY or _REMOTE */
	char rowner[NAME_SZ];  /* ROOM_OWNER_REMOTE: the owner's nick, or "" */
	int head, tail, count; /* member list in join order (slots, -1 ends) */
};

struct rooms;

/* The table with its lobby (PROTO_LOBBY); lines go to io.  NULL: memory. */
struct rooms *rooms_new(int max_rooms, int max_slots, const struct chat_io *io);
void rooms_free(struct rooms *t);

/* Rooms, the lobby (index 0) first, in creation order. */
int rooms_count(const struct rooms *t);
struct room *rooms_at(const struct rooms *t, int i);
struct room *room_lobby(const struct rooms *t);
/* Room called name (by its key, name.h), or NULL. */
struct room *room_find(const struct rooms *t, const char *name, size_t len);
struct room *room_find_key(const struct rooms *t, const char *key);
/* A room called name (NFC) whose key is key; NULL without memory. */
struct room *
room_create(struct rooms *t, const char *name, const char *key, int owner);
/* Delete r (not the lobby); its members must have left. */
void room_delete(struct rooms *t, struct room *r);

/* The room slot is in, or NULL. */
struct room *room_of(const struct rooms *t, int slot);
/* Slot joins the end of r's member list / leaves its room. */
void room_link(struct rooms *t, int slot, struct room *r);
void room_unlink(struct rooms *t, int slot);
/* The member after slot in its room, or -1 (the first is r->head). */
int room_next(const struct rooms *t, int slot);

/* Send line (len bytes) to every member of r but except; how many. */
int room_send(const struct rooms *t, const struct room *r, int except,
    const char *line, size_t len);

#endif
