/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * remote.c - what this hub knows of the other hubs (docs/SCALING.md): the
 * latest presence snapshot of each, and the answers drawn from them (does
 * a room exist elsewhere, by what name, who owns it, where is a nick).
 *
 * Owns the snapshots; knows nothing of local users or rooms (chat.c and
 * chatfed.c merge the answers).  Another hub's text is used only after
 * remote_plain() has refused control characters in it.  Pure: no system
 * call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/name.h"
#include "chat/remote.h"
#include "lib/proto.h"

struct remotes {
	struct remote *h;
	int n;
};

struct remotes *
remotes_new(void)
{
	return calloc(1, sizeof(struct remotes));
}

void
remotes_free(struct remotes *t)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->h[i].blob);
	free(t->h);
	free(t);
}

int
remotes_count(const struct remotes *t)
{
	return t->n;
}

int
remote_plain(const char *p, size_t len)
{
	return len == 0 || proto_check_line(p, len) == PERR_NONE;
}

int
remote_name_ok(const char *name, size_t len)
{
	return name_shown_ok(name, len);
}

int
remote_same_key(const char *name, size_t len, const char *key)
{
	char k[NAME_KEYSZ];

	return name_key(name, len, k) && strcmp(k, key) == 0;
}

/* Split one snapshot line (without its newline) into kind and 3 fields. */
static int
rline_parse(const char *p, size_t len, struct rline *rl)
{
	const char *end = p + len, *sp;
	int i;

	if (len < 2 || p[1] != ' ' || !remote_plain(p, len))
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

int
remote_hub_each(const struct remote *h, remote_fn fn, void *arg)
{
	struct rline rl;
	const char *p, *nl;
	int rc;

	for (p = h->blob; p < h->blob + h->len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(h->blob + h->len - p));
		if (nl == NULL)
			break;
		if (rline_parse(p, (size_t)(nl - p), &rl) &&
		    (rc = fn(h, &rl, arg)) != 0)
			return rc;
	}
	return 0;
}

int
remote_each(const struct remotes *t, remote_fn fn, void *arg)
{
	int i, rc;

	for (i = 0; i < t->n; i++)
		if ((rc = remote_hub_each(&t->h[i], fn, arg)) != 0)
			return rc;
	return 0;
}

/* Index of the hub called hub, or -1. */
static int
hub_index(const struct remotes *t, const char *hub, size_t hlen)
{
	int i, at = -1;

	for (i = 0; i < t->n; i++)
		if (strlen(t->h[i].hub) == hlen &&
		    memcmp(t->h[i].hub, hub, hlen) == 0)
			at = i;
	return at;
}

const struct remote *
remote_find(const struct remotes *t, const char *hub, size_t hlen)
{
	int i = hub_index(t, hub, hlen);

	return i < 0 ? NULL : &t->h[i];
}

void
remote_store(struct remotes *t, const char *hub, size_t hlen, const char *blob,
    size_t len, long long now_ms)
{
	struct remote *h = NULL, *nr;
	char *copy;
	int i;

	if (hlen >= sizeof(h->hub) || (copy = malloc(len + 1)) == NULL)
		return;
	memcpy(copy, blob, len);
	if ((i = hub_index(t, hub, hlen)) >= 0)
		h = &t->h[i];
	if (h == NULL) {
		nr = realloc(t->h, (size_t)(t->n + 1) * sizeof(*t->h));
		if (nr == NULL) {
			free(copy);
			return;
		}
		t->h = nr;
		h = &t->h[t->n++];
		memcpy(h->hub, hub, hlen);
		h->hub[hlen] = '\0';
		h->blob = NULL;
	}
	free(h->blob);
	h->blob = copy;
	h->len = len;
	h->seen_ms = now_ms;
}

void
remote_expire(struct remotes *t, long long now_ms, long long ttl_ms,
    void (*gone)(const struct remote *h, void *arg), void *arg)
{
	struct remote *h;
	int i, j = 0;

	for (i = 0; i < t->n; i++) { /* keep the others, in order */
		h = &t->h[i];
		if (now_ms - h->seen_ms <= ttl_ms) {
			if (j != i)
				t->h[j] = *h;
			j++;
			continue;
		}
		gone(h, arg);
		free(h->blob);
	}
	t->n = j;
}

static int
is_room(const struct remote *h, const struct rline *rl, void *arg)
{
	(void)h;
	return rl->kind == 'R' && remote_same_key(rl->f[0], rl->fl[0], arg);
}

int
remote_has_room(const struct remotes *t, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	if (!name_key(name, len, key))
		return 0;
	return remote_each(t, is_room, key);
}

struct rname_q {
	const char *key;
	char *name; /* NAME_SZ; "" until a hub names it */
};

static int
room_name_of(const struct remote *h, const struct rline *rl, void *arg)
{
	struct rname_q *q = arg;
	int owned = !(rl->fl[2] == 1 && rl->f[2][0] == '-');

	(void)h;
	if (rl->kind != 'R' || rl->fl[0] >= NAME_SZ ||
	    !remote_same_key(rl->f[0], rl->fl[0], q->key) ||
	    (q->name[0] && !owned))
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
remote_room_name(const struct remotes *t, const char *key, char *name)
{
	struct rname_q q = { key, name };

	name[0] = '\0';
	remote_each(t, room_name_of, &q);
	return name[0] != '\0';
}

struct owner_q {
	const char *key;
	char *owner; /* NAME_SZ; "" until a hub names one */
};

static int
room_owner_of(const struct remote *h, const struct rline *rl, void *arg)
{
	struct owner_q *q = arg;

	(void)h;
	if (rl->kind == 'R' && remote_same_key(rl->f[0], rl->fl[0], q->key) &&
	    rl->fl[2] < NAME_SZ && remote_name_ok(rl->f[2], rl->fl[2])) {
		memcpy(q->owner, rl->f[2], rl->fl[2]);
		q->owner[rl->fl[2]] = '\0';
		return 1;
	}
	return 0;
}

void
remote_room_owner(const struct remotes *t, const char *key, char *owner)
{
	struct owner_q q = { key, owner };

	owner[0] = '\0';
	remote_each(t, room_owner_of, &q);
}

struct nick_q {
	const char *key;
	const struct remote *hub;
	char *nick; /* NAME_SZ */
};

static int
is_nick(const struct remote *h, const struct rline *rl, void *arg)
{
	struct nick_q *q = arg;

	if (rl->kind != 'U' || !remote_same_key(rl->f[0], rl->fl[0], q->key))
		return 0;
	q->hub = h;
	snprintf(q->nick, NAME_SZ, "%.*s", (int)rl->fl[0], rl->f[0]);
	return 1;
}

int
remote_find_nick(const struct remotes *t, const char *key,
    const struct remote **hub, char *nick)
{
	struct nick_q q = { key, NULL, nick };

	if (!remote_each(t, is_nick, &q))
		return 0;
	*hub = q.hub;
	return 1;
}
