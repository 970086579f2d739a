/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chat_core.h - what chat.c (users, nicknames, commands) gives chatfed.c
 * (the chat_fed_* entry points): its tables, through functions, and its
 * output.  No state is shared through this header.  chat.c never calls
 * chatfed.c: the dependency goes one way.
 */
#ifndef FORKCHAT_CHAT_CORE_H
#define FORKCHAT_CHAT_CORE_H

#include <stddef.h>

#include "chat/chat.h"
#include "chat/nick.h"
#include "chat/remote.h"
#include "chat/room.h"

struct rooms *chat_rooms(const struct chat *c);
struct nicks *chat_nicks(const struct chat *c);
struct remotes *chat_remotes(const struct chat *c);
/* Slots are 0 .. chat_slots(c)-1. */
int chat_slots(const struct chat *c);
/* Scratch room for one outgoing line, of *size bytes. */
char *chat_scratch(struct chat *c, size_t *size);
/* Queue a printf-formatted line for slot. */
void chat_out(struct chat *c, int slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Every member of r goes to the lobby, told who removed r; r is deleted. */
void chat_room_evict(struct chat *c, struct room *r, const char *by);

#endif
