/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chatfed.c - the chat state machine's federation half (docs/SCALING.md):
 * what this hub knows of the other hubs and what they tell it.
 *
 * Keeps the latest presence snapshot ("R name count owner" and "U nick
 * room" lines) of every other hub and answers chat.c's questions about it
 * (does a room exist elsewhere, who owns it, where is a nick), merges it
 * into /list and /users, and holds the public federation entry points:
 * chat_set_fed, chat_fed_* (claims answered, room lines, removals and
 * whispers from other hubs, presence in and out).  Like chat.c it lives
 * only in the parent and never makes a system call; the state it works on
 * is chat.c's (chat_int.h).  Another hub's text reaches our clients only
 * after plain() has refused control characters in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/chat_int.h"
#include "sys/log.h"

/* ---- other hubs (federation) ------------------------------------------ */

/*
 * Another hub's text goes to our clients: it must be valid UTF-8 without
 * a control character (a '\n' would forge a line), whatever is in Redis.
 */
static int
plain(const char *p, size_t len)
{
	return len == 0 || proto_check_line(p, len) == PERR_NONE;
}

/* Split one snapshot line (without its newline) into kind and 3 fields. */
static int
rline_parse(const char *p, size_t len, struct rline *rl)
{
	const char *end = p + len, *sp;
	int i;

	if (len < 2 || p[1] != ' ' || !plain(p, len))
		return 0;
	rl->kind = p[0];
	p += 2;
	for (i = 0; i < 3; i++) {
		rl->f[i] = end;
		rl->fl[i] = 0;
	}
	for (i = 0; i < 3; i++) {
		sp = i < 2 ? memchr(p, ' ', (size_t)(end - p)) : NULL;
		rl->f[i] = p;
		rl->fl[i] = (size_t)((sp ? sp : end) - p);
		if (sp == NULL)
			return i >= 1;
		p = sp + 1;
	}
	return 1;
}

/*
 * Call fn for every line of every other hub's snapshot until it returns
 * nonzero; returns that value, or 0.
 */
int
remote_each(const struct chat *c,
    int (*fn)(const struct remote *h, const struct rline *rl, void *arg),
    void *arg)
{
	const struct remote *h;
	struct rline rl;
	const char *p, *nl;
	int i, rc;

	for (i = 0; i < c->nremotes; i++) {
		h = &c->remotes[i];
		for (p = h->blob; p < h->blob + h->len; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(h->blob + h->len - p));
			if (nl == NULL)
				break;
			if (rline_parse(p, (size_t)(nl - p), &rl) &&
			    (rc = fn(h, &rl, arg)) != 0)
				return rc;
		}
	}
	return 0;
}

/* May name (from another hub, through Redis) be shown as a name? */
static int
valid_name(const char *name, size_t len)
{
	return name_shown_ok(name, len);
}

/* Is name (from another hub's snapshot) the name whose key is key? */
static int
same_key(const char *name, size_t len, const char *key)
{
	char k[NAME_KEYSZ];

	return name_key(name, len, k) && strcmp(k, key) == 0;
}

static int
is_room(const struct remote *h, const struct rline *rl, void *arg)
{
	(void)h;
	return rl->kind == 'R' && same_key(rl->f[0], rl->fl[0], arg);
}

struct rname_q {
	const char *key;
	char *name; /* NAMESZ; "" until a hub names it */
};

static int
room_name_of(const struct remote *h, const struct rline *rl, void *arg)
{
	struct rname_q *q = arg;
	int owned = !(rl->fl[2] == 1 && rl->f[2][0] == '-');

	(void)h;
	if (rl->kind != 'R' || rl->fl[0] >= NAMESZ ||
	    !same_key(rl->f[0], rl->fl[0], q->key) || (q->name[0] && !owned))
		return 0;
	memcpy(q->name, rl->f[0], rl->fl[0]);
	q->name[rl->fl[0]] = '\0';
	return owned; /* the owner's hub has the name it was created with */
}

/*
 * The name of the room whose key is key, as the other hubs give it: as its
 * owner's hub does (where it was created, issue 14), else as any hub does.
 */
int
remote_room_name(const struct chat *c, const char *key, char *name)
{
	struct rname_q q = { key, name };

	name[0] = '\0';
	if (c->has_fed)
		remote_each(c, room_name_of, &q);
	return name[0] != '\0';
}

int
remote_has_room(const struct chat *c, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	if (!c->has_fed || !name_key(name, len, key))
		return 0;
	return remote_each(c, is_room, key);
}

struct owner_q {
	const char *key;
	char *owner; /* NAMESZ; "" until a hub names one */
};

static int
room_owner_of(const struct remote *h, const struct rline *rl, void *arg)
{
	struct owner_q *q = arg;

	(void)h;
	if (rl->kind == 'R' && same_key(rl->f[0], rl->fl[0], q->key) &&
	    rl->fl[2] < NAMESZ && valid_name(rl->f[2], rl->fl[2])) {
		memcpy(q->owner, rl->f[2], rl->fl[2]);
		q->owner[rl->fl[2]] = '\0';
		return 1;
	}
	return 0;
}

/* The owner other hubs report for room key ("" if none does). */
void
remote_room_owner(const struct chat *c, const char *key, char *owner)
{
	struct owner_q q = { key, owner };

	owner[0] = '\0';
	remote_each(c, room_owner_of, &q);
}

int
is_nick(const struct remote *h, const struct rline *rl, void *arg)
{
	struct nick_q *q = arg;

	if (rl->kind != 'U' || !same_key(rl->f[0], rl->fl[0], q->key))
		return 0;
	q->hub = h;
	snprintf(q->nick, sizeof(q->nick), "%.*s", (int)rl->fl[0], rl->f[0]);
	return 1;
}

/* ---- /list and /users across hubs ------------------------------------- */

struct lrow {
	char name[NAMESZ], key[NAME_KEYSZ], owner[NAMESZ];
	long count;
};

struct ltab {
	struct lrow *row;
	int n, cap;
};

static int
list_add(const struct remote *h, const struct rline *rl, void *arg)
{
	struct ltab *t = arg;
	struct lrow *row;
	char key[NAME_KEYSZ], owner[NAMESZ] = "-";
	int i;

	(void)h;
	if (rl->kind != 'R' || rl->fl[0] >= NAMESZ || rl->fl[2] >= NAMESZ ||
	    !name_key(rl->f[0], rl->fl[0], key))
		return 0;
	if (valid_name(rl->f[2], rl->fl[2])) /* else "-": no owner we know */
		snprintf(
		    owner, sizeof(owner), "%.*s", (int)rl->fl[2], rl->f[2]);
	for (i = 0; i < t->n; i++)
		if (strcmp(t->row[i].key, key) == 0)
			break;
	if (i == t->n) {
		if (t->n == t->cap)
			return 0; /* full: shown on the next /list */
		row = &t->row[t->n++];
		memset(row, 0, sizeof(*row));
		snprintf(row->key, sizeof(row->key), "%s", key);
		snprintf(row->name, sizeof(row->name), "%.*s", (int)rl->fl[0],
		    rl->f[0]);
		snprintf(row->owner, sizeof(row->owner), "%s", owner);
	}
	row = &t->row[i];
	row->count += strtol(rl->f[1], NULL, 10);
	if (strcmp(row->owner, "-") == 0 && i > 0)
		snprintf(row->owner, sizeof(row->owner), "%s", owner);
	return 0;
}

/* /list across hubs: local rooms, counts summed by name, then others'. */
void
cmd_list_fed(struct chat *c, int slot)
{
	struct ltab t;
	struct room *r;
	int i;

	t.cap = c->nrooms + c->lim.max_rooms * (c->nremotes + 1) + 1;
	if ((t.row = calloc((size_t)t.cap, sizeof(*t.row))) == NULL) {
		out_err(c, slot, PERR_INTERNAL, "out of memory");
		return;
	}
	for (t.n = 0; t.n < c->nrooms; t.n++) {
		r = c->rooms[t.n];
		snprintf(t.row[t.n].name, NAMESZ, "%s", r->name);
		snprintf(t.row[t.n].key, NAME_KEYSZ, "%s", r->key);
		snprintf(t.row[t.n].owner, NAMESZ, "%s",
		    r->owner >= 0 ? c->users[r->owner].nick : "-");
		t.row[t.n].count = r->count;
	}
	remote_each(c, list_add, &t);
	for (i = 0; i < t.n; i++)
		out(c, slot, "ROOM %s %ld %s\n", t.row[i].name, t.row[i].count,
		    t.row[i].owner);
	out(c, slot, "END LIST %d\n", t.n);
	free(t.row);
}

int
users_add(const struct remote *h, const struct rline *rl, void *arg)
{
	struct users_q *q = arg;

	(void)h;
	if (rl->kind != 'U' || !valid_name(rl->f[0], rl->fl[0]) ||
	    !valid_name(rl->f[1], rl->fl[1]) ||
	    (q->room_key && !same_key(rl->f[1], rl->fl[1], q->room_key)))
		return 0; /* only names a hub could have accepted are shown */
	out(q->c, q->slot, "USER %.*s %.*s\n", (int)rl->fl[0], rl->f[0],
	    (int)rl->fl[1], rl->f[1]);
	q->n++;
	return 0;
}

/* ---- federation ------------------------------------------------------ */

void
chat_set_fed(struct chat *c, const struct chat_fed *f)
{
	c->fed = *f;
	c->has_fed = 1;
}

void
chat_fed_claimed(struct chat *c, unsigned token, int ok)
{
	struct user *u;
	struct buf pend;
	size_t len;
	int slot;

	for (slot = 0; slot < c->lim.max_clients; slot++)
		if (c->users[slot].in_use && c->users[slot].claim == token)
			break;
	if (slot == c->lim.max_clients || token == 0)
		return; /* gone meanwhile: chat_disconnect released it */
	u = &c->users[slot];
	u->claim = 0;
	if (ok)
		register_done(c, slot);
	else {
		nick_unhash(c, slot);
		out_err(c, slot, PERR_NICK_TAKEN,
		    "nickname %s is in use on another hub, choose another",
		    u->nick);
		c->fed.release(c->fed.ctx, u->key); /* ours if we hold it */
		memset(u->nick, 0, sizeof(u->nick));
		memset(u->key, 0, sizeof(u->key));
		u->nick[0] = '-';
	}
	/* the lines that came meanwhile, in order */
	pend = u->pend;
	memset(&u->pend, 0, sizeof(u->pend));
	while (buf_used(&pend) >= sizeof(len) && c->users[slot].in_use &&
	    !c->users[slot].claim) {
		memcpy(&len, buf_head(&pend), sizeof(len));
		chat_line(c, slot, buf_head(&pend) + sizeof(len), len);
		buf_consume(&pend, sizeof(len) + len);
	}
	if (buf_used(&pend) > 0 && c->users[slot].in_use &&
	    c->users[slot].claim) /* a second claim: keep the rest */
		(void)buf_append(
		    &c->users[slot].pend, buf_head(&pend), buf_used(&pend));
	buf_free(&pend);
}

/* "OWNER ROOM NICK" from another hub (for r's key): r's owner changed. */
static void
owner_line(struct room *r, const char *line, size_t len)
{
	const char *sp, *end = line + len;

	if (len > 6 && memcmp(line, "OWNER ", 6) == 0 &&
	    (sp = memchr(line + 6, ' ', len - 6)) != NULL && sp + 1 < end &&
	    (size_t)(end - sp - 1) < NAMESZ) {
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
	size_t kl, nl = strlen(r->name), rest;

	if (sp1 == NULL)
		return 0;
	kl = (size_t)(sp1 - line) + 1;
	sp2 = memchr(sp1 + 1, ' ', len - kl);
	rest = sp2 ? (size_t)(line + len - sp2) : 0;
	if (kl + nl + rest + 1 > c->linesz)
		return 0;
	memcpy(c->line, line, kl);
	memcpy(c->line + kl, r->name, nl);
	memcpy(c->line + kl + nl, sp2 ? sp2 : "", rest);
	c->line[kl + nl + rest] = '\n';
	return kl + nl + rest + 1;
}

void
chat_fed_room_line(
    struct chat *c, const char *key, size_t klen, const char *line, size_t len)
{
	char k[NAME_KEYSZ];
	size_t n;
	int i;

	if (klen >= NAME_KEYSZ || len + 1 > c->linesz || !plain(line, len))
		return;
	memcpy(k, key, klen);
	k[klen] = '\0';
	for (i = 0; i < c->nrooms; i++)
		if (strcmp(c->rooms[i]->key, k) == 0) {
			if ((n = respell(c, c->rooms[i], line, len)) > 0)
				room_send(c, c->rooms[i], -1, n);
			if (c->rooms[i]->owner == OWNER_REMOTE)
				owner_line(c->rooms[i], line, len);
			return;
		}
}

void
chat_fed_room_removed(
    struct chat *c, const char *key, size_t klen, const char *by, size_t blen)
{
	char k[NAME_KEYSZ], who[NAMESZ];
	struct room *r;

	if (klen >= NAME_KEYSZ || blen >= NAMESZ || !plain(by, blen))
		return;
	memcpy(k, key, klen);
	k[klen] = '\0';
	memcpy(who, by, blen);
	who[blen] = '\0';
	if ((r = room_find_key(c, k)) == NULL || r == c->rooms[0])
		return;
	log_info("room-rm room=%s by=%s members=%d (on another hub)", r->name,
	    who, r->count);
	room_evict(c, r, who);
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
	if ((r = room_find_key(c, k)) != NULL && r->owner == OWNER_REMOTE) {
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
	for (slot = 0; slot < c->lim.max_clients; slot++)
		if (c->users[slot].registered &&
		    strcmp(c->users[slot].key, k) == 0)
			return slot;
	return -1;
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
	    c->users[slot].nick);
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
	    c->users[slot].nick);
	out(c, slot,
	    "NOTICE NICK_KEPT a user of another hub also took %s while the "
	    "hubs were cut off; you took it first and keep it\n",
	    c->users[slot].nick);
}

void
chat_fed_whisper(struct chat *c, const char *from, size_t flen, const char *to,
    size_t tlen, const char *text, size_t len)
{
	int slot = nick_find(c, to, tlen);

	if (slot >= 0 && c->users[slot].registered && valid_name(from, flen) &&
	    plain(text, len))
		out(c, slot, "WHISPER %.*s %.*s\n", (int)flen, from, (int)len,
		    text);
}

void
chat_fed_presence(struct chat *c, const char *hub, size_t hlen,
    const char *blob, size_t len, long long now_ms)
{
	struct remote *h = NULL, *nr;
	char *copy;
	int i;

	if (hlen >= sizeof(h->hub) || (copy = malloc(len + 1)) == NULL)
		return;
	memcpy(copy, blob, len);
	for (i = 0; i < c->nremotes; i++)
		if (strlen(c->remotes[i].hub) == hlen &&
		    memcmp(c->remotes[i].hub, hub, hlen) == 0)
			h = &c->remotes[i];
	if (h == NULL) {
		nr = realloc(c->remotes,
		    (size_t)(c->nremotes + 1) * sizeof(*c->remotes));
		if (nr == NULL) {
			free(copy);
			return;
		}
		c->remotes = nr;
		h = &c->remotes[c->nremotes++];
		memcpy(h->hub, hub, hlen);
		h->hub[hlen] = '\0';
		h->blob = NULL;
	}
	free(h->blob);
	h->blob = copy;
	h->len = len;
	h->seen_ms = now_ms;
}

/*
 * Hub h is gone (killed: it said nothing for the TTL): the rooms it owned
 * have no owner any more, like after an 'O' event from it.
 */
static void
orphan_rooms_of(struct chat *c, const struct remote *h)
{
	const char *p, *nl;
	struct rline rl;
	struct room *r;

	for (p = h->blob; p < h->blob + h->len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(h->blob + h->len - p))) ==
		    NULL)
			break;
		if (!rline_parse(p, (size_t)(nl - p), &rl) || rl.kind != 'R' ||
		    (r = room_find(c, rl.f[0], rl.fl[0])) == NULL ||
		    r->owner != OWNER_REMOTE || r->rowner[0] == '\0' ||
		    strlen(r->rowner) != rl.fl[2] ||
		    memcmp(r->rowner, rl.f[2], rl.fl[2]) != 0)
			continue;
		log_info("room-owner room=%s owner=- (hub %s is gone)", r->name,
		    h->hub);
		r->rowner[0] = '\0';
	}
}

/*
 * Hub h is gone: its users left every room they were in, as in a netsplit.
 * The local members of those rooms see PART ROOM NICK hub-lost (the room
 * spelled as here).  Returns how many users parted.
 */
static int
part_users_of(struct chat *c, const struct remote *h)
{
	const char *p, *nl;
	struct rline rl;
	struct room *r;
	int n, parted = 0;

	for (p = h->blob; p < h->blob + h->len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(h->blob + h->len - p))) ==
		    NULL)
			break;
		if (!rline_parse(p, (size_t)(nl - p), &rl) || rl.kind != 'U' ||
		    rl.fl[0] >= NAMESZ ||
		    (r = room_find(c, rl.f[1], rl.fl[1])) == NULL)
			continue;
		parted++;
		n = snprintf(c->line, c->linesz, "PART %s %.*s hub-lost\n",
		    r->name, (int)rl.fl[0], rl.f[0]);
		if (n > 0 && (size_t)n < c->linesz)
			room_send(c, r, -1, (size_t)n);
	}
	return parted;
}

/* NOTICE MESSAGES_LOST to slot (n events of hub, from the room it is in). */
static void
gap_notice(struct chat *c, int slot, const char *hub, size_t hlen,
    unsigned long long n)
{
	out(c, slot,
	    "NOTICE MESSAGES_LOST %llu events from hub %.*s were lost before "
	    "this hub read them; some lines of %s may be missing\n",
	    n, (int)hlen, hub, c->users[slot].room->name);
}

void
chat_fed_gap(struct chat *c, const char *hub, size_t hlen, unsigned long long n)
{
	const struct remote *h = NULL;
	const char *p, *nl;
	struct rline rl;
	struct room *r;
	char *told;
	int i, s, rooms = 0;

	for (i = 0; i < c->nremotes; i++)
		if (strlen(c->remotes[i].hub) == hlen &&
		    memcmp(c->remotes[i].hub, hub, hlen) == 0)
			h = &c->remotes[i];
	if ((told = calloc((size_t)c->nrooms, 1)) == NULL)
		return;
	for (p = h ? h->blob : NULL; h && p < h->blob + h->len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(h->blob + h->len - p))) ==
		    NULL)
			break;
		if (!rline_parse(p, (size_t)(nl - p), &rl) || rl.kind != 'U' ||
		    (r = room_find(c, rl.f[1], rl.fl[1])) == NULL)
			continue;
		for (i = 0; i < c->nrooms && c->rooms[i] != r; i++)
			;
		if (i == c->nrooms || told[i]++)
			continue;
		rooms++;
		for (s = r->head; s >= 0; s = c->users[s].rnext)
			gap_notice(c, s, hub, hlen, n);
	}
	free(told);
	if (rooms == 0) /* its users unknown here: any room may miss lines */
		for (s = 0; s < c->lim.max_clients; s++)
			if (c->users[s].registered)
				gap_notice(c, s, hub, hlen, n);
}

void
chat_fed_expire(struct chat *c, long long now_ms, long long ttl_ms)
{
	struct remote *h;
	int i, j = 0, n;

	for (i = 0; i < c->nremotes; i++) { /* keep the others, in order */
		h = &c->remotes[i];
		if (now_ms - h->seen_ms <= ttl_ms) {
			if (j != i)
				c->remotes[j] = *h;
			j++;
			continue;
		}
		n = part_users_of(c, h);
		log_warn(
		    "federation: hub %s silent for %lld ms, forgetting its "
		    "users (%d parted: hub-lost)",
		    h->hub, now_ms - h->seen_ms, n);
		orphan_rooms_of(c, h);
		free(h->blob);
	}
	c->nremotes = j;
}

int
chat_fed_snapshot(const struct chat *c, struct buf *b)
{
	char line[4 * NAMESZ + 64];
	const struct room *r;
	int i, n;

	for (i = 0; i < c->nrooms; i++) {
		r = c->rooms[i];
		n = snprintf(line, sizeof(line), "R %s %d %s\n", r->name,
		    r->count, r->owner >= 0 ? c->users[r->owner].nick : "-");
		if (buf_append(b, line, (size_t)n) < 0)
			return -1;
	}
	for (i = 0; i < c->lim.max_clients; i++)
		if (c->users[i].registered) {
			n = snprintf(line, sizeof(line), "U %s %s\n",
			    c->users[i].nick, c->users[i].room->name);
			if (buf_append(b, line, (size_t)n) < 0)
				return -1;
		}
	return 0;
}
