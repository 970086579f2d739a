/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * room.c - the rooms of the chat: the room table (the lobby first), each
 * room's members and which room each slot is in.
 *
 * Owns the rooms and the membership links; a room keeps its members in a
 * doubly linked list threaded through the per-slot links (join order, O(1)
 * join and leave).  It knows nothing of users, commands or other hubs:
 * chat.c decides who goes where and what is said.  Never makes a system
 * call; lines leave through struct chat_io.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/room.h"
#include "lib/proto.h"
#include "sys/failpoint.h"

struct member {
	struct room *room;
	int prev, next;
};

struct rooms {
	struct chat_io io;
	struct room **r; /* r[0] is the lobby */
	int n, max;      /* rooms; the most besides the lobby */
	struct member *m;
	int nslots;
};

struct rooms *
rooms_new(int max_rooms, int max_slots, const struct chat_io *io)
{
	char lobby_key[NAME_KEYSZ];
	struct rooms *t;
	int i;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->io = *io;
	t->max = max_rooms;
	t->nslots = max_slots;
	t->r = calloc((size_t)max_rooms + 1, sizeof(struct room *));
	t->m = calloc((size_t)max_slots, sizeof(*t->m));
	name_key(PROTO_LOBBY, strlen(PROTO_LOBBY), lobby_key);
	if (t->r == NULL || t->m == NULL ||
	    room_create(t, PROTO_LOBBY, lobby_key, ROOM_OWNER_LOBBY) == NULL) {
		rooms_free(t);
		return NULL;
	}
	for (i = 0; i < max_slots; i++)
		t->m[i].prev = t->m[i].next = -1;
	return t;
}

void
rooms_free(struct rooms *t)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; t->r != NULL && i < t->n; i++)
		free(t->r[i]);
	free(t->r);
	free(t->m);
	free(t);
}

int
rooms_count(const struct rooms *t)
{
	return t->n;
}

struct room *
rooms_at(const struct rooms *t, int i)
{
	return t->r[i];
}

struct room *
room_lobby(const struct rooms *t)
{
	return t->r[0];
}

struct room *
room_find_key(const struct rooms *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->r[i]->key, key) == 0)
			return t->r[i];
	return NULL;
}

struct room *
room_find(const struct rooms *t, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	return name_key(name, len, key) ? room_find_key(t, key) : NULL;
}

struct room *
room_create(struct rooms *t, const char *name, const char *key, int owner)
{
	struct room *r;

	if (t->n > t->max || FAIL("forkchatd/chat/calloc", ENOMEM) ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->owner = owner;
	r->head = r->tail = -1;
	t->r[t->n++] = r;
	return r;
}

void
room_delete(struct rooms *t, struct room *r)
{
	int i;

	for (i = 1; i < t->n; i++)
		if (t->r[i] == r) {
			memmove(&t->r[i], &t->r[i + 1],
			    (size_t)(t->n - i - 1) * sizeof(struct room *));
			t->n--;
			break;
		}
	free(r);
}

struct room *
room_of(const struct rooms *t, int slot)
{
	return t->m[slot].room;
}

int
room_next(const struct rooms *t, int slot)
{
	return t->m[slot].next;
}

void
room_unlink(struct rooms *t, int slot)
{
	struct member *u = &t->m[slot];
	struct room *r = u->room;

	if (r == NULL)
		return;
	if (u->prev >= 0)
		t->m[u->prev].next = u->next;
	else
		r->head = u->next;
	if (u->next >= 0)
		t->m[u->next].prev = u->prev;
	else
		r->tail = u->prev;
	r->count--;
	u->room = NULL;
	u->prev = u->next = -1;
}

void
room_link(struct rooms *t, int slot, struct room *r)
{
	struct member *u = &t->m[slot];

	u->room = r;
	u->next = -1;
	u->prev = r->tail;
	if (r->tail >= 0)
		t->m[r->tail].next = slot;
	else
		r->head = slot;
	r->tail = slot;
	r->count++;
}

int
room_send(const struct rooms *t, const struct room *r, int except,
    const char *line, size_t len)
{
	int s, n = 0;

	for (s = r->head; s >= 0; s = t->m[s].next)
		if (s != except) {
			t->io.send(t->io.ctx, s, line, len);
			n++;
		}
	return n;
}
