/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chatfed.c - the chat's federation entry points (docs/SCALING.md): what
 * other hubs tell this one, through fed.c: room lines, removals, orphaned
 * rooms, whispers, nick conflicts after a partition, presence snapshots
 * in (kept by remote.c) and out, hubs gone silent, lost events.
 *
 * Owns no state: it works on chat.c's tables through chat_core.h and on
 * room.c, nick.c and remote.c; chat.c never calls it.  Like chat.c it
 * lives only in the parent and never makes a system call.  Another hub's
 * text reaches our clients only after remote_plain() has refused control
 * characters in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/chat_core.h"
#include "chat/name.h"
#include "chat/nick.h"
#include "chat/remote.h"
#include "chat/room.h"
#include "lib/buf.h"
#include "sys/log.h"

/* "OWNER ROOM NICK" from another hub (for r's key): r's owner changed. */
static void
owner_line(struct room *r, const char *line, size_t len)
{
	const char *sp, *end = line + len;

	if (len > 6 && memcmp(line, "OWNER ", 6) == 0 &&
	    (sp = memchr(line + 6, ' ', len - 6)) != NULL && sp + 1 < end &&
	    (size_t)(end - sp - 1) < NAME_SZ) {
		memcpy(r->rowner, sp + 1, (size_t)(end - sp - 1));
		r->rowner[end - sp - 1] = '\0';
	}
}

/*
 * "KW ROOM REST" from another hub into c->line with ROOM spelled as r is
 * here (one room, one spelling on every hub); its length with the '\n',
 * or 0 if it does not fit or has no room field.
 */
static size_t
respell(struct chat *c, const struct room *r, const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len), *sp2;
	size_t kl, nl = strlen(r->name), rest, linesz;
	char *out = chat_scratch(c, &linesz);

	if (sp1 == NULL)
		return 0;
	kl = (size_t)(sp1 - line) + 1;
	sp2 = memchr(sp1 + 1, ' ', len - kl);
	rest = sp2 ? (size_t)(line + len - sp2) : 0;
	if (kl + nl + rest + 1 > linesz)
		return 0;
	memcpy(out, line, kl);
	memcpy(out + kl, r->name, nl);
	memcpy(out + kl + nl, sp2 ? sp2 : "", rest);
	out[kl + nl + rest] = '\n';
	return kl + nl + rest + 1;
}

void
chat_fed_room_line(
    struct chat *c, const char *key, size_t klen, const char *line, size_t len)
{
	struct rooms *rt = chat_rooms(c);
	char k[NAME_KEYSZ], *out;
	struct room *r;
	size_t n, linesz;

	out = chat_scratch(c, &linesz);
	if (klen >= NAME_KEYSZ || len + 1 > linesz || !remote_plain(line, len))
		return;
	memcpy(k, key, klen);
	k[klen] = '\0';
	if ((r = room_find_key(rt, k)) == NULL)
		return;
	if ((n = respell(c, r, line, len)) > 0)
		room_send(rt, r, -1, out, n);
	if (r->owner == ROOM_OWNER_REMOTE)
		owner_line(r, line, len);
}

void
chat_fed_room_removed(
    struct chat *c, const char *key, size_t klen, const char *by, size_t blen)
{
	char k[NAME_KEYSZ], who[NAME_SZ];
	struct room *r;

	if (klen >= NAME_KEYSZ || blen >= NAME_SZ || !remote_plain(by, blen))
		return;
	memcpy(k, key, klen);
	k[klen] = '\0';
	memcpy(who, by, blen);
	who[blen] = '\0';
	if ((r = room_find_key(chat_rooms(c), k)) == NULL ||
	    r == room_lobby(chat_rooms(c)))
		return;
	log_info("room-rm room=%s by=%s members=%d (on another hub)", r->name,
	    who, r->count);
	chat_room_evict(c, r, who);
}

void
chat_fed_room_orphaned(struct chat *c, const char *key, size_t klen)
{
	char k[NAME_KEYSZ];
	struct room *r;

	if (klen >= NAME_KEYSZ)
		return;
	memcpy(k, key, klen);
	k[klen] = '\0';
	if ((r = room_find_key(chat_rooms(c), k)) != NULL &&
	    r->owner == ROOM_OWNER_REMOTE) {
		log_info("room-owner room=%s owner=- (left on another hub)",
		    r->name);
		r->rowner[0] = '\0';
	}
}

/* The registered local user whose nick key is key, or -1. */
static int
holder_of(struct chat *c, const char *key, size_t klen)
{
	char k[NAME_KEYSZ];
	int slot;

	if (klen >= NAME_KEYSZ)
		return -1;
	memcpy(k, key, klen);
	k[klen] = '\0';
	/* one slot per key: a claim in flight keeps others from it */
	slot = nick_find_key(chat_nicks(c), k);
	return slot >= 0 && chat_is_registered(c, slot) ? slot : -1;
}

/*
 * The partition rule (docs/SCALING.md): a nick given to users on two hubs
 * while they could not reach Redis stays with the one who took it first;
 * both users are told.
 */
void
chat_fed_lost(struct chat *c, const char *key, size_t klen)
{
	int slot = holder_of(c, key, klen);

	if (slot < 0)
		return;
	log_warn("federation: nick %s was taken earlier on another hub while "
	         "the hubs were cut off",
	    chat_nick(c, slot));
	chat_bye(c, slot, "NICK_TAKEN",
	    "a user of another hub took your nickname earlier, while the hubs "
	    "were cut off; reconnect with another one");
}

void
chat_fed_kept(struct chat *c, const char *key, size_t klen)
{
	int slot = holder_of(c, key, klen);

	if (slot < 0)
		return;
	log_info("federation: nick %s kept: a user of another hub took it "
	         "later while the hubs were cut off",
	    chat_nick(c, slot));
	chat_out(c, slot,
	    "NOTICE NICK_KEPT a user of another hub also took %s while the "
	    "hubs were cut off; you took it first and keep it\n",
	    chat_nick(c, slot));
}

void
chat_fed_whisper(struct chat *c, const char *from, size_t flen, const char *to,
    size_t tlen, const char *text, size_t len)
{
	int slot = nick_find(chat_nicks(c), to, tlen);

	if (slot >= 0 && chat_is_registered(c, slot) &&
	    remote_name_ok(from, flen) && remote_plain(text, len))
		chat_out(c, slot, "WHISPER %.*s %.*s\n", (int)flen, from,
		    (int)len, text);
}

void
chat_fed_presence(struct chat *c, const char *hub, size_t hlen,
    const char *blob, size_t len, long long now_ms)
{
	remote_store(chat_remotes(c), hub, hlen, blob, len, now_ms);
}

/*
 * Hub h is gone (killed: it said nothing for the TTL): the rooms it owned
 * have no owner any more, like after an 'O' event from it.  (A
 * remote_hub_each callback: one line of h's snapshot.)
 */
static int
orphan_room(const struct remote *h, const struct rline *rl, void *arg)
{
	struct chat *c = arg;
	struct room *r;

	if (rl->kind != 'R' ||
	    (r = room_find(chat_rooms(c), rl->f[0], rl->fl[0])) == NULL ||
	    r->owner != ROOM_OWNER_REMOTE || r->rowner[0] == '\0' ||
	    strlen(r->rowner) != rl->fl[2] ||
	    memcmp(r->rowner, rl->f[2], rl->fl[2]) != 0)
		return 0;
	log_info(
	    "room-owner room=%s owner=- (hub %s is gone)", r->name, h->hub);
	r->rowner[0] = '\0';
	return 0;
}

struct part_q {
	struct chat *c;
	int parted;
};

/*
 * Hub h is gone: its users left every room they were in, as in a netsplit.
 * The local members of those rooms see PART ROOM NICK hub-lost (the room
 * spelled as here).  Counts the users parted.
 */
static int
part_user(const struct remote *h, const struct rline *rl, void *arg)
{
	struct part_q *q = arg;
	struct rooms *rt = chat_rooms(q->c);
	struct room *r;
	size_t linesz;
	char *line = chat_scratch(q->c, &linesz);
	int n;

	(void)h;
	if (rl->kind != 'U' || rl->fl[0] >= NAME_SZ ||
	    (r = room_find(rt, rl->f[1], rl->fl[1])) == NULL)
		return 0;
	q->parted++;
	n = snprintf(line, linesz, "PART %s %.*s hub-lost\n", r->name,
	    (int)rl->fl[0], rl->f[0]);
	if (n > 0 && (size_t)n < linesz)
		room_send(rt, r, -1, line, (size_t)n);
	return 0;
}

/* NOTICE MESSAGES_LOST to slot (n events of hub, from the room it is in). */
static void
gap_notice(struct chat *c, int slot, const char *hub, size_t hlen,
    unsigned long long n)
{
	chat_out(c, slot,
	    "NOTICE MESSAGES_LOST %llu events from hub %.*s were lost before "
	    "this hub read them; some lines of %s may be missing\n",
	    n, (int)hlen, hub, chat_room(c, slot));
}

struct gap_q {
	struct chat *c;
	const char *hub;
	size_t hlen;
	unsigned long long n;
	char *told; /* per room index: its members were told */
	int rooms;
};

/* A user of the hub with the gap: its room's local members are told. */
static int
gap_room(const struct remote *h, const struct rline *rl, void *arg)
{
	struct gap_q *q = arg;
	struct rooms *rt = chat_rooms(q->c);
	struct room *r;
	int i, s;

	(void)h;
	if (rl->kind != 'U' || (r = room_find(rt, rl->f[1], rl->fl[1])) == NULL)
		return 0;
	for (i = 0; i < rooms_count(rt) && rooms_at(rt, i) != r; i++)
		;
	if (i == rooms_count(rt) || q->told[i]++)
		return 0;
	q->rooms++;
	for (s = r->head; s >= 0; s = room_next(rt, s))
		gap_notice(q->c, s, q->hub, q->hlen, q->n);
	return 0;
}

void
chat_fed_gap(struct chat *c, const char *hub, size_t hlen, unsigned long long n)
{
	const struct remote *h = remote_find(chat_remotes(c), hub, hlen);
	struct gap_q q = { c, hub, hlen, n, NULL, 0 };
	int s;

	if ((q.told = calloc((size_t)rooms_count(chat_rooms(c)), 1)) == NULL)
		return;
	if (h != NULL)
		remote_hub_each(h, gap_room, &q);
	free(q.told);
	if (q.rooms == 0) /* its users unknown here: any room may miss lines */
		for (s = 0; s < chat_slots(c); s++)
			if (chat_is_registered(c, s))
				gap_notice(c, s, hub, hlen, n);
}

struct expire_q {
	struct chat *c;
	long long now_ms;
};

/* Hub h is silent past the TTL: its users part, its rooms lose owners. */
static void
hub_gone(const struct remote *h, void *arg)
{
	const struct expire_q *e = arg;
	struct part_q q = { e->c, 0 };

	remote_hub_each(h, part_user, &q);
	log_warn("federation: hub %s silent for %lld ms, forgetting its "
	         "users (%d parted: hub-lost)",
	    h->hub, e->now_ms - h->seen_ms, q.parted);
	remote_hub_each(h, orphan_room, e->c);
}

void
chat_fed_expire(struct chat *c, long long now_ms, long long ttl_ms)
{
	struct expire_q e = { c, now_ms };

	remote_expire(chat_remotes(c), now_ms, ttl_ms, hub_gone, &e);
}

int
chat_fed_snapshot(const struct chat *c, struct buf *b)
{
	const struct rooms *rt = chat_rooms(c);
	char line[4 * NAME_SZ + 64];
	const struct room *r;
	int i, n;

	for (i = 0; i < rooms_count(rt); i++) {
		r = rooms_at(rt, i);
		n = snprintf(line, sizeof(line), "R %s %d %s\n", r->name,
		    r->count, r->owner >= 0 ? chat_nick(c, r->owner) : "-");
		if (buf_append(b, line, (size_t)n) < 0)
			return -1;
	}
	for (i = 0; i < chat_slots(c); i++)
		if (chat_is_registered(c, i)) {
			n = snprintf(line, sizeof(line), "U %s %s\n",
			    chat_nick(c, i), chat_room(c, i));
			if (buf_append(b, line, (size_t)n) < 0)
				return -1;
		}
	return 0;
}
