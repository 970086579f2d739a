/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * remote.h - what this hub knows of the other hubs (remote.c): the latest
 * presence snapshot of each ("R name count owner" and "U nick room"
 * lines, docs/SCALING.md), and the questions the chat asks of them.
 */
#ifndef FORKCHAT_REMOTE_H
#define FORKCHAT_REMOTE_H

#include <stddef.h>

#include "chat/name.h"

/* Another hub's presence snapshot. */
struct remote {
	char hub[NAME_SZ * 2];
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

typedef int (*remote_fn)(
    const struct remote *h, const struct rline *rl, void *arg);

struct remotes;

struct remotes *remotes_new(void);
void remotes_free(struct remotes *t);
int remotes_count(const struct remotes *t);

/*
 * Call fn for every line of every hub's snapshot (of hub h's) until it
 * returns nonzero; returns that value, or 0.  Lines that are not plain
 * text (remote_plain) are skipped.
 */
int remote_each(const struct remotes *t, remote_fn fn, void *arg);
int remote_hub_each(const struct remote *h, remote_fn fn, void *arg);

/* The hub called hub, or NULL. */
const struct remote *
remote_find(const struct remotes *t, const char *hub, size_t hlen);
/* Hub's snapshot is blob now (copied), heard at now_ms. */
void remote_store(struct remotes *t, const char *hub, size_t hlen,
    const char *blob, size_t len, long long now_ms);
/*
 * Forget the hubs not heard from since now_ms - ttl_ms, calling gone for
 * each first (the others stay in order).
 */
void remote_expire(struct remotes *t, long long now_ms, long long ttl_ms,
    void (*gone)(const struct remote *h, void *arg), void *arg);

/* Does another hub have a room called name? */
int remote_has_room(const struct remotes *t, const char *name, size_t len);
/*
 * The name of the room whose key is key as other hubs give it (the owner's
 * hub's first, where it was created) into name (NAME_SZ): 1, or 0 if no
 * hub has it.
 */
int remote_room_name(const struct remotes *t, const char *key, char *name);
/* The owner other hubs report for room key into owner (NAME_SZ; "" if
 * none does). */
void remote_room_owner(const struct remotes *t, const char *key, char *owner);
/* Which hub has a user with nick key: 1 with *hub and nick (NAME_SZ). */
int remote_find_nick(const struct remotes *t, const char *key,
    const struct remote **hub, char *nick);

/* Another hub's text may reach our clients: valid UTF-8 without a
 * control character (a '\n' would forge a line), whatever is in Redis. */
int remote_plain(const char *p, size_t len);
/* May name (from another hub) be shown as a name? */
int remote_name_ok(const char *name, size_t len);
/* Is name (from another hub's snapshot) the name whose key is key? */
int remote_same_key(const char *name, size_t len, const char *key);

#endif
