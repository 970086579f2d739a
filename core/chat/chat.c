/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * chat.c - users, nicknames, rooms and the commands that change them.
 *
 * Owns all chat state of the server; it lives only in the parent, so no
 * two processes ever disagree about who is where.  It never blocks and
 * never makes a system call: every line it produces goes to io->send, in
 * the order it was produced, which is what gives each client a single,
 * ordered stream.
 *
 * Rooms keep their members in a doubly linked list threaded through the
 * user table (join order, O(1) join and leave); nicknames are found through
 * a chained hash of their case-folded keys.
 *
 * The federation half (other hubs' presence snapshots, /list and /users
 * across hubs, chat_set_fed and the chat_fed_* entry points) is in
 * chatfed.c; chat_int.h holds the state and helpers the two share.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/chat_int.h"
#include "sys/failpoint.h"
#include "sys/log.h"
#include "lib/plural.h"
#include "lib/utf8.h"

#define QUIT_TEXT_MAX 200 /* bytes of a /quit reason that are passed on */

static const char *help_lines[] = {
	"text                 send text to everyone in your room (//text sends /text)",
	"/add ROOM            create ROOM and enter it (you own it)",
	"/join ROOM           enter an existing room",
	"/leave               go back to the lobby",
	"/rm ROOM             remove a room you own; its members go to the lobby",
	"/list                list rooms with member counts and owners",
	"/users [all]         users in your room, or everyone",
	"/whisper NICK TEXT   private message (alias /w)",
	"/stats               server statistics (STAT lines)",
	"/help                this text",
	"/quit [TEXT]         leave the server",
};

/* ---- output ---------------------------------------------------------- */

void __attribute__((format(printf, 3, 4)))
out(struct chat *c, int slot, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->line, c->linesz, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= c->linesz) { /* cannot happen: bounded inputs */
		n = (int)c->linesz - 1;
		c->line[n - 1] = '\n';
	}
	c->io.send(c->io.ctx, slot, c->line, (size_t)n);
}

void __attribute__((format(printf, 4, 5)))
out_err(struct chat *c, int slot, enum proto_err code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	uint32_t cp;
	size_t n;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (len >= (int)sizeof(text)) { /* cut at a character boundary */
		n = sizeof(text) - 2;   /* the last byte kept */
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
		if (utf8_decode(text + n, sizeof(text) - 1 - n, &cp) == 0)
			text[n] = '\0'; /* its character was cut */
	}
	out(c, slot, "ERR %d %s %s\n", (int)code, proto_err_name(code), text);
}

/*
 * Send the line in c->line (len bytes) to every member of r but except;
 * returns how many got it.
 */
int
room_send(struct chat *c, struct room *r, int except, size_t len)
{
	int s, n = 0;

	for (s = r->head; s >= 0; s = c->users[s].rnext)
		if (s != except) {
			c->io.send(c->io.ctx, s, c->line, len);
			n++;
		}
	return n;
}

static void __attribute__((format(printf, 4, 5)))
room_notice(struct chat *c, struct room *r, int except, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->line, c->linesz, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < c->linesz) {
		room_send(c, r, except, (size_t)n);
		if (c->has_fed) {
			c->fed.room_line(
			    c->fed.ctx, r->key, c->line, (size_t)n);
			c->fed.changed(c->fed.ctx);
		}
	}
}

/* ---- lookup ---------------------------------------------------------- */

static size_t
hash_key(const char *key, size_t sz)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % sz;
}

/* Slot of the user whose key is key, or -1. */
static int
nick_find_key(struct chat *c, const char *key)
{
	int s;

	for (s = c->hash[hash_key(key, c->hashsz)]; s >= 0;
	     s = c->users[s].hnext)
		if (strcmp(c->users[s].key, key) == 0)
			return s;
	return -1;
}

int
nick_find(struct chat *c, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	return name_key(name, len, key) ? nick_find_key(c, key) : -1;
}

void
nick_unhash(struct chat *c, int slot)
{
	int *p = &c->hash[hash_key(c->users[slot].key, c->hashsz)];

	while (*p >= 0 && *p != slot)
		p = &c->users[*p].hnext;
	if (*p == slot)
		*p = c->users[slot].hnext;
}

struct room *
room_find_key(struct chat *c, const char *key)
{
	int i;

	for (i = 0; i < c->nrooms; i++)
		if (strcmp(c->rooms[i]->key, key) == 0)
			return c->rooms[i];
	return NULL;
}

struct room *
room_find(struct chat *c, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	return name_key(name, len, key) ? room_find_key(c, key) : NULL;
}

/* ---- membership ------------------------------------------------------ */

static void
member_unlink(struct chat *c, int slot)
{
	struct user *u = &c->users[slot];
	struct room *r = u->room;

	if (u->rprev >= 0)
		c->users[u->rprev].rnext = u->rnext;
	else
		r->head = u->rnext;
	if (u->rnext >= 0)
		c->users[u->rnext].rprev = u->rprev;
	else
		r->tail = u->rprev;
	r->count--;
	u->room = NULL;
	u->rprev = u->rnext = -1;
}

static void
member_link(struct chat *c, int slot, struct room *r)
{
	struct user *u = &c->users[slot];

	u->room = r;
	u->rnext = -1;
	u->rprev = r->tail;
	if (r->tail >= 0)
		c->users[r->tail].rnext = slot;
	else
		r->head = slot;
	r->tail = slot;
	r->count++;
}

static void
room_delete(struct chat *c, struct room *r)
{
	int i;

	for (i = 1; i < c->nrooms; i++)
		if (c->rooms[i] == r) {
			memmove(&c->rooms[i], &c->rooms[i + 1],
			    (size_t)(c->nrooms - i - 1) *
			        sizeof(struct room *));
			c->nrooms--;
			break;
		}
	free(r);
	if (c->has_fed)
		c->fed.changed(c->fed.ctx);
}

/* Leave the current room, telling the others why. */
static void
room_leave(struct chat *c, int slot, const char *reason)
{
	struct user *u = &c->users[slot];
	struct room *r = u->room;

	if (r == NULL)
		return;
	member_unlink(c, slot);
	room_notice(c, r, -1, "PART %s %s %s\n", r->name, u->nick, reason);
	if (r->owner == OWNER_REMOTE && r->count == 0) {
		log_info(
		    "room-part-gone room=%s (last member here left)", r->name);
		room_delete(c, r);
	}
}

/* Enter r (after leaving any room): others see JOIN. */
static void
room_enter(struct chat *c, int slot, struct room *r)
{
	room_notice(c, r, -1, "JOIN %s %s\n", r->name, c->users[slot].nick);
	member_link(c, slot, r);
}

static void
room_move(struct chat *c, int slot, struct room *r)
{
	room_leave(c, slot, "left");
	out(c, slot, "OK JOIN %s\n", r->name);
	room_enter(c, slot, r);
}

/* A room called name (NFC) whose key is key. */
static struct room *
room_create(struct chat *c, const char *name, const char *key, int owner)
{
	struct room *r;

	if (FAIL("forkchatd/chat/calloc", ENOMEM) ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->owner = owner;
	r->head = r->tail = -1;
	c->rooms[c->nrooms++] = r;
	return r;
}

/* The owner of some rooms is leaving the server: hand them on or drop them. */
static void
rooms_orphan(struct chat *c, int slot)
{
	struct room *r;
	int i;

	for (i = 1; i < c->nrooms; i++) {
		r = c->rooms[i];
		if (r->owner != slot)
			continue;
		if (r->count == 0) {
			log_info(
			    "room-gone room=%s (owner left, empty)", r->name);
			if (c->has_fed) /* parts elsewhere have no owner now */
				c->fed.room_orphaned(c->fed.ctx, r->key);
			room_delete(c, r);
			i--;
			continue;
		}
		r->owner = r->head;
		log_info("room-owner room=%s owner=%s", r->name,
		    c->users[r->head].nick);
		room_notice(
		    c, r, -1, "OWNER %s %s\n", r->name, c->users[r->head].nick);
	}
}

/* ---- commands -------------------------------------------------------- */

void
register_done(struct chat *c, int slot)
{
	struct user *u = &c->users[slot];

	u->registered = 1;
	c->nusers++;
	log_info("register slot=%d nick=%s", slot, u->nick);
	if (c->hooks.registered != NULL)
		c->hooks.registered(c->hooks.ctx, slot);
	out(c, slot, "OK NICK %s\n", u->nick);
	room_move(c, slot, c->rooms[0]);
}

/* Refusal of a name: ERR code with why, or "too long" as toolong. */
static void
name_refused(struct chat *c, int slot, const char *what, enum name_fault f,
    uint32_t cp, enum proto_err bad, enum proto_err toolong, size_t max)
{
	char why[160];

	if (f == NAME_TOO_LONG) {
		out_err(c, slot, toolong, "a %s has at most %zu characters",
		    what, max);
		return;
	}
	name_explain(f, cp, why, sizeof(why));
	out_err(c, slot, f == NAME_KEY_TOO_LONG ? toolong : bad,
	    "this %s %s (a %s has 1 to %zu characters: no spaces, control, "
	    "invisible or bidi characters, not - and no leading /)",
	    what, why, what, max);
}

static void
cmd_register(struct chat *c, int slot, const char *name, size_t len)
{
	struct user *u = &c->users[slot];
	char nfc[NAMESZ], key[NAME_KEYSZ];
	enum name_fault f;
	uint32_t cp;
	int s;

	f = name_prepare(
	    name, len, PROTO_NICK_MAX_CHARS, nfc, sizeof(nfc), key, &cp);
	if (f != NAME_OK) {
		name_refused(c, slot, "nickname", f, cp, PERR_BAD_NICK,
		    PERR_NICK_TOO_LONG, PROTO_NICK_MAX_CHARS);
		return;
	}
	if ((s = nick_find_key(c, key)) >= 0) {
		if (strcmp(c->users[s].nick, nfc) == 0)
			out_err(c, slot, PERR_NICK_TAKEN,
			    "nickname %s is in use, choose another", nfc);
		else
			out_err(c, slot, PERR_NICK_TAKEN,
			    "nickname %s is in use as %s (the same name once "
			    "case and lookalikes are folded), choose another",
			    nfc, c->users[s].nick);
		return;
	}
	snprintf(u->nick, sizeof(u->nick), "%s", nfc);
	snprintf(u->key, sizeof(u->key), "%s", key);
	u->hnext = c->hash[hash_key(u->key, c->hashsz)];
	c->hash[hash_key(u->key, c->hashsz)] = slot;
	if (c->has_fed) { /* held locally until every hub agrees */
		u->claim = ++c->claim_seq ? c->claim_seq : ++c->claim_seq;
		c->fed.claim(c->fed.ctx, u->claim, u->key);
		return;
	}
	register_done(c, slot);
}

/* The room name in cmd's argument, checked: NFC into nfc, key into key. */
static int
check_room_name(struct chat *c, int slot, const struct proto_cmd *cmd,
    char nfc[NAMESZ], char key[NAME_KEYSZ])
{
	enum name_fault f;
	uint32_t cp;

	f = name_prepare(
	    cmd->arg, cmd->arglen, PROTO_ROOM_MAX_CHARS, nfc, NAMESZ, key, &cp);
	if (f == NAME_OK)
		return 0;
	name_refused(c, slot, "room name", f, cp, PERR_BAD_ROOM, PERR_BAD_ROOM,
	    PROTO_ROOM_MAX_CHARS);
	return -1;
}

static void
cmd_add(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	char name[NAMESZ], key[NAME_KEYSZ];
	struct room *r;

	if (check_room_name(c, slot, cmd, name, key) < 0)
		return;
	if ((r = room_find_key(c, key)) != NULL) {
		if (strcmp(r->name, name) == 0)
			out_err(c, slot, PERR_ROOM_EXISTS,
			    "room %s exists; /join %s", r->name, r->name);
		else
			out_err(c, slot, PERR_ROOM_EXISTS,
			    "room %s exists as %s (the same name once case "
			    "and lookalikes are folded); /join %s",
			    name, r->name, r->name);
		return;
	}
	if (remote_has_room(c, name, strlen(name))) {
		out_err(c, slot, PERR_ROOM_EXISTS,
		    "room %s exists on another hub; /join %s", name, name);
		return;
	}
	if (c->nrooms - 1 >= c->lim.max_rooms) {
		out_err(c, slot, PERR_TOO_MANY_ROOMS,
		    "the server has %d %s already", c->lim.max_rooms,
		    PLURAL(c->lim.max_rooms, "room", "rooms"));
		return;
	}
	if ((r = room_create(c, name, key, slot)) == NULL) {
		log_error("room-add room=%s by=%s: out of memory", name,
		    c->users[slot].nick);
		out_err(c, slot, PERR_INTERNAL, "out of memory");
		return;
	}
	log_info("room-add room=%s owner=%s", r->name, c->users[slot].nick);
	out(c, slot, "OK ADD %s\n", r->name);
	room_move(c, slot, r);
}

static void
cmd_join(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	char name[NAMESZ], key[NAME_KEYSZ];
	struct room *r = NULL;
	uint32_t cp;

	if (name_prepare(cmd->arg, cmd->arglen, PROTO_ROOM_MAX_CHARS, name,
	        sizeof(name), key, &cp) == NAME_OK &&
	    (r = room_find_key(c, key)) == NULL &&
	    remote_room_name(c, key, name) && /* named as there */
	    c->nrooms - 1 < c->lim.max_rooms &&
	    (r = room_create(c, name, key, OWNER_REMOTE)) !=
	        NULL) { /* this hub's part of a room on other hubs */
		remote_room_owner(c, r->key, r->rowner);
		log_info("room-part room=%s owner=%s (on another hub)", r->name,
		    r->rowner[0] ? r->rowner : "-");
	}
	if (r == NULL) {
		out_err(c, slot, PERR_NO_SUCH_ROOM,
		    "no room %.*s; /list shows "
		    "rooms, /add creates one",
		    (int)cmd->arglen, cmd->arg);
		return;
	}
	if (r == c->users[slot].room) {
		out_err(c, slot, PERR_ALREADY_IN_ROOM, "you are in %s already",
		    r->name);
		return;
	}
	room_move(c, slot, r);
}

static void
cmd_leave(struct chat *c, int slot)
{
	if (c->users[slot].room == c->rooms[0]) {
		out_err(c, slot, PERR_IS_LOBBY, "you are in the lobby already");
		return;
	}
	room_move(c, slot, c->rooms[0]);
}

/*
 * Every member of r goes to the lobby, told who removed r; r is deleted.
 * The notices do not depend on the members' order: each member first gets
 * REMOVED, then every user who ends up in the lobby gets one JOIN for each
 * moved member other than themselves (those already there and the moved
 * ones alike), in r's member order.
 */
void
room_evict(struct chat *c, struct room *r, const char *by)
{
	struct room *lobby = c->rooms[0];
	int s, t;

	for (s = r->head; s >= 0; s = c->users[s].rnext)
		out(c, s, "REMOVED %s %s\n", r->name, by);
	for (s = r->head; s >= 0; s = c->users[s].rnext) {
		room_notice(c, lobby, -1, "JOIN %s %s\n", lobby->name,
		    c->users[s].nick);
		for (t = r->head; t >= 0; t = c->users[t].rnext)
			if (t != s)
				out(c, t, "JOIN %s %s\n", lobby->name,
				    c->users[s].nick);
	}
	while ((s = r->head) >= 0) {
		member_unlink(c, s);
		member_link(c, s, lobby);
	}
	room_delete(c, r);
}

/* /rm of a room whose owner is on another hub, or that has none. */
static void
rm_not_owner(struct chat *c, int slot, const char *name, size_t len)
{
	struct room *r = room_find(c, name, len);
	char key[NAME_KEYSZ], owner[NAMESZ];

	if (r != NULL)
		snprintf(owner, sizeof(owner), "%s", r->rowner);
	else {
		name_key(name, len, key);
		remote_room_owner(c, key, owner);
	}
	if (owner[0])
		out_err(c, slot, PERR_NOT_OWNER,
		    "only its owner %s (on another hub) may remove %.*s", owner,
		    (int)len, name);
	else
		out_err(c, slot, PERR_NOT_OWNER,
		    "%.*s has no owner; it goes away when its last member "
		    "leaves",
		    (int)len, name);
}

static void
cmd_rm(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	struct room *r, *lobby = c->rooms[0];
	const char *by = c->users[slot].nick;

	if ((r = room_find(c, cmd->arg, cmd->arglen)) == NULL) {
		if (remote_has_room(c, cmd->arg, cmd->arglen))
			rm_not_owner(c, slot, cmd->arg, cmd->arglen);
		else
			out_err(c, slot, PERR_NO_SUCH_ROOM, "no room %.*s",
			    (int)cmd->arglen, cmd->arg);
		return;
	}
	if (r == lobby) {
		out_err(c, slot, PERR_IS_LOBBY, "the lobby cannot be removed");
		return;
	}
	if (r->owner == OWNER_REMOTE) {
		rm_not_owner(c, slot, r->name, strlen(r->name));
		return;
	}
	if (r->owner != slot) {
		out_err(c, slot, PERR_NOT_OWNER,
		    "only its owner %s may remove "
		    "%s",
		    c->users[r->owner].nick, r->name);
		return;
	}
	log_info("room-rm room=%s by=%s members=%d", r->name, by, r->count);
	out(c, slot, "OK RM %s\n", r->name);
	if (c->has_fed) /* first: the moves below publish lobby JOINs */
		c->fed.room_removed(c->fed.ctx, r->key, by);
	room_evict(c, r, by);
}

static void
cmd_list(struct chat *c, int slot)
{
	struct room *r;
	int i;

	if (c->has_fed) {
		cmd_list_fed(c, slot);
		return;
	}

	for (i = 0; i < c->nrooms; i++) {
		r = c->rooms[i];
		out(c, slot, "ROOM %s %d %s\n", r->name, r->count,
		    r->owner >= 0 ? c->users[r->owner].nick : "-");
	}
	out(c, slot, "END LIST %d\n", c->nrooms);
}

static void
cmd_users(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	struct room *r = c->users[slot].room;
	struct users_q q;
	int s, n = 0;

	if (cmd->arg == NULL) {
		for (s = r->head; s >= 0; s = c->users[s].rnext, n++)
			out(c, slot, "USER %s %s\n", c->users[s].nick, r->name);
	} else {
		for (s = 0; s < c->lim.max_clients; s++)
			if (c->users[s].registered) {
				out(c, slot, "USER %s %s\n", c->users[s].nick,
				    c->users[s].room->name);
				n++;
			}
	}
	if (c->has_fed) {
		q.c = c;
		q.slot = slot;
		q.n = n;
		q.room_key = cmd->arg == NULL ? r->key : NULL;
		remote_each(c, users_add, &q);
		n = q.n;
	}
	out(c, slot, "END USERS %d\n", n);
}

static void
cmd_whisper(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	int to = nick_find(c, cmd->arg, cmd->arglen);
	struct nick_q q;
	char key[NAME_KEYSZ];

	if (to < 0 && c->has_fed && name_key(cmd->arg, cmd->arglen, key)) {
		q.key = key;
		if (remote_each(c, is_nick, &q)) {
			c->fed.whisper(c->fed.ctx, q.hub->hub,
			    c->users[slot].nick, q.nick, cmd->text,
			    cmd->textlen);
			out(c, slot, "OK WHISPER %s\n", q.nick);
			return;
		}
	}
	if (to < 0) {
		out_err(c, slot, PERR_NO_SUCH_USER, "nobody is called %.*s",
		    (int)cmd->arglen, cmd->arg);
		return;
	}
	if (to == slot) {
		out_err(c, slot, PERR_WHISPER_SELF,
		    "you cannot whisper to "
		    "yourself");
		return;
	}
	out(c, to, "WHISPER %s %.*s\n", c->users[slot].nick, (int)cmd->textlen,
	    cmd->text);
	out(c, slot, "OK WHISPER %s\n", c->users[to].nick);
}

static void
cmd_help(struct chat *c, int slot)
{
	size_t i;

	for (i = 0; i < sizeof(help_lines) / sizeof(help_lines[0]); i++)
		out(c, slot, "HELP %s\n", help_lines[i]);
	out(c, slot, "END HELP\n");
}

static void
cmd_text(struct chat *c, int slot, const char *text, size_t len)
{
	struct user *u = &c->users[slot];
	struct room *r = u->room;
	size_t rl = strlen(r->name), nl = strlen(u->nick), n;
	char *p = c->line;
	int got;

	/* Hot path: built with memcpy, sent to every other member. */
	n = 4 + rl + 1 + nl + 1 + len + 1;
	if (n > c->linesz)
		return; /* bounded by max_line */
	memcpy(p, "MSG ", 4), p += 4;
	memcpy(p, r->name, rl), p += rl;
	*p++ = ' ';
	memcpy(p, u->nick, nl), p += nl;
	*p++ = ' ';
	memcpy(p, text, len), p += len;
	*p = '\n';
	got = room_send(c, r, slot, n);
	if (c->has_fed)
		c->fed.room_line(c->fed.ctx, r->key, c->line, n);
	if (c->hooks.message != NULL)
		c->hooks.message(c->hooks.ctx, slot, got);
}

static void
cmd_stats(struct chat *c, int slot)
{
	struct stats_item it[STATS_MAX_ITEMS];
	size_t i, n = 0;

	if (c->hooks.stats != NULL)
		n = c->hooks.stats(c->hooks.ctx, it, STATS_MAX_ITEMS);
	for (i = 0; i < n && i < STATS_MAX_ITEMS; i++)
		out(c, slot, "STAT %s %llu\n", it[i].name, it[i].value);
	out(c, slot, "END STATS %zu\n", i);
}

/*
 * Copy the /quit reason into out (at most QUIT_TEXT_MAX bytes, cut at a
 * character boundary): already valid UTF-8 without control characters
 * (the child checked), but bidi controls, which could reorder the rest of
 * a PART line or a log line, become '?' and '"' becomes '\''.
 */
static void
quit_text(const char *s, size_t len, char *out, size_t outsz)
{
	const char *piece;
	uint32_t cp;
	size_t i = 0, k, plen, n = 0;

	while (i < len && (k = utf8_decode(s + i, len - i, &cp)) != 0) {
		piece = s + i;
		plen = k;
		if (cp == 0x200e || cp == 0x200f ||
		    (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069))
			piece = "?", plen = 1;
		else if (cp == '"')
			piece = "'", plen = 1;
		if (n + plen >= outsz)
			break;
		memcpy(out + n, piece, plen);
		n += plen;
		i += k;
	}
	out[n] = '\0';
}

/*
 * /quit [TEXT]: the reason reaches the room's PART line ("PART room nick
 * quit TEXT") and the log (quit="TEXT").
 */
static void
cmd_quit(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	char text[QUIT_TEXT_MAX + 8], reason[QUIT_TEXT_MAX + 16];
	const char *end;

	text[0] = '\0';
	if (cmd->arg != NULL) {
		end = cmd->text != NULL ? cmd->text + cmd->textlen :
		                          cmd->arg + cmd->arglen;
		quit_text(cmd->arg, (size_t)(end - cmd->arg), text,
		    QUIT_TEXT_MAX + 1);
	}
	out(c, slot, "BYE QUIT goodbye\n");
	log_info("disconnect slot=%d nick=%s reason=quit%s%s%s", slot,
	    chat_nick(c, slot), text[0] ? " text=\"" : "", text,
	    text[0] ? "\"" : "");
	snprintf(reason, sizeof(reason), "quit%s%s", text[0] ? " " : "", text);
	chat_disconnect(c, slot, reason);
	c->io.close(c->io.ctx, slot);
}

static void
cmd_dispatch(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	switch (cmd->id) {
	case CMD_TEXT:
		cmd_text(c, slot, cmd->text, cmd->textlen);
		break;
	case CMD_ADD:
		cmd_add(c, slot, cmd);
		break;
	case CMD_RM:
		cmd_rm(c, slot, cmd);
		break;
	case CMD_JOIN:
		cmd_join(c, slot, cmd);
		break;
	case CMD_LEAVE:
		cmd_leave(c, slot);
		break;
	case CMD_LIST:
		cmd_list(c, slot);
		break;
	case CMD_USERS:
		cmd_users(c, slot, cmd);
		break;
	case CMD_WHISPER:
		cmd_whisper(c, slot, cmd);
		break;
	case CMD_HELP:
		cmd_help(c, slot);
		break;
	case CMD_STATS:
		cmd_stats(c, slot);
		break;
	case CMD_QUIT:
		cmd_quit(c, slot, cmd);
		break;
	case CMD_UNKNOWN:
		out_err(c, slot, PERR_UNKNOWN_COMMAND,
		    "unknown command /%.*s; "
		    "/help lists commands",
		    (int)cmd->namelen, cmd->name);
		break;
	}
}

/* ---- public ---------------------------------------------------------- */

/*
 * Hold a line until slot's nick claim is answered: [len][bytes], stored
 * whole or not at all (a header without its bytes would make the replay
 * read past the end).  A line that does not fit is refused at once.
 */
static void
pend_line(struct chat *c, int slot, const char *line, size_t len)
{
	struct buf *b = &c->users[slot].pend;
	char *d = NULL;

	if (buf_used(b) + sizeof(len) + len <= PEND_MAX)
		d = buf_reserve(b, sizeof(len) + len);
	if (d == NULL) {
		out_err(c, slot, PERR_INTERNAL,
		    "line dropped: too much sent before the nickname was "
		    "confirmed");
		return;
	}
	memcpy(d, &len, sizeof(len));
	memcpy(d + sizeof(len), line, len);
	buf_commit(b, sizeof(len) + len);
}

void
chat_line(struct chat *c, int slot, const char *line, size_t len)
{
	struct proto_cmd cmd;
	const char *usage;

	if (slot < 0 || slot >= c->lim.max_clients || !c->users[slot].in_use)
		return;
	if (c->users[slot].claim) { /* answered once the claim is */
		pend_line(c, slot, line, len);
		return;
	}
	proto_parse(line, len, &cmd);
	if (!c->users[slot].registered) {
		if (cmd.id == CMD_TEXT && line[0] != '/')
			cmd_register(c, slot, line, len);
		else if (cmd.id == CMD_HELP || cmd.id == CMD_QUIT)
			cmd_dispatch(c, slot, &cmd);
		else
			out_err(c, slot, PERR_NOT_REGISTERED,
			    "send your "
			    "nickname first");
		return;
	}
	if ((usage = proto_usage(&cmd)) != NULL) {
		out_err(c, slot, PERR_USAGE, "usage: %s", usage);
		return;
	}
	cmd_dispatch(c, slot, &cmd);
}

void
chat_reject(struct chat *c, int slot, enum proto_err code)
{
	const char *why;

	if (slot < 0 || slot >= c->lim.max_clients || !c->users[slot].in_use)
		return;
	switch (code) {
	case PERR_EMPTY_LINE:
		why = "empty line ignored";
		break;
	case PERR_LINE_TOO_LONG:
		why = "line too long, discarded";
		break;
	case PERR_BAD_UTF8:
		why = "line is not valid UTF-8, discarded";
		break;
	case PERR_CONTROL_CHAR:
		why = "control characters are not allowed";
		break;
	default:
		why = "line refused";
		break;
	}
	if (code == PERR_LINE_TOO_LONG)
		out_err(c, slot, code, "%s (limit %zu bytes)", why,
		    c->lim.max_line);
	else
		out_err(c, slot, code, "%s", why);
}

void
chat_connect(struct chat *c, int slot)
{
	struct user *u = &c->users[slot];

	memset(u, 0, sizeof(*u));
	u->in_use = 1;
	u->rprev = u->rnext = u->hnext = -1;
	u->nick[0] = '-';
	out(c, slot,
	    "HELLO forkchatd/%s welcome to forkchat; send your "
	    "nickname\n",
	    FORKCHAT_VERSION);
}

void
chat_disconnect(struct chat *c, int slot, const char *reason)
{
	struct user *u;

	if (slot < 0 || slot >= c->lim.max_clients || !c->users[slot].in_use)
		return;
	u = &c->users[slot];
	if (u->registered) {
		room_leave(c, slot, reason);
		rooms_orphan(c, slot);
		nick_unhash(c, slot);
		c->nusers--;
	} else if (u->claim)
		nick_unhash(c, slot);
	if (c->has_fed && (u->registered || u->claim))
		c->fed.release(c->fed.ctx, u->key);
	buf_free(&u->pend);
	memset(u, 0, sizeof(*u));
	u->rprev = u->rnext = u->hnext = -1;
}

/* "REGISTER_TIMEOUT" -> "register-timeout", the log's spelling. */
static const char *
reason_of(const char *name)
{
	static char r[32];
	size_t i, n = strnlen(name, sizeof(r) - 1);

	for (i = 0; i < n; i++)
		r[i] = (char)(name[i] == '_' ? '-' : name[i] | 0x20);
	r[i] = '\0';
	return r;
}

void
chat_bye(struct chat *c, int slot, const char *name, const char *text)
{
	if (slot < 0 || slot >= c->lim.max_clients || !c->users[slot].in_use)
		return;
	out(c, slot, "BYE %s %s\n", name, text);
	log_info("disconnect slot=%d nick=%s reason=%s", slot,
	    chat_nick(c, slot), reason_of(name));
	chat_disconnect(
	    c, slot, strcmp(name, "QUIT") == 0 ? "quit" : "disconnected");
	c->io.close(c->io.ctx, slot);
}

int
chat_in_use(const struct chat *c, int slot)
{
	return slot >= 0 && slot < c->lim.max_clients && c->users[slot].in_use;
}

int
chat_is_registered(const struct chat *c, int slot)
{
	return chat_in_use(c, slot) && c->users[slot].registered;
}

const char *
chat_nick(const struct chat *c, int slot)
{
	return chat_is_registered(c, slot) ? c->users[slot].nick : "-";
}

const char *
chat_room(const struct chat *c, int slot)
{
	return chat_is_registered(c, slot) && c->users[slot].room ?
	    c->users[slot].room->name :
	    NULL;
}

int
chat_room_count(const struct chat *c)
{
	return c->nrooms;
}

int
chat_user_count(const struct chat *c)
{
	return c->nusers;
}

struct chat *
chat_new(const struct chat_limits *lim, const struct chat_io *io)
{
	char lobby_key[NAME_KEYSZ];
	struct chat *c;
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	name_key(PROTO_LOBBY, strlen(PROTO_LOBBY), lobby_key);
	c->lim = *lim;
	c->io = *io;
	c->hashsz = (size_t)lim->max_clients * 2 + 1;
	c->linesz = lim->max_line + 4 * NAMESZ + 64;
	c->users = calloc((size_t)lim->max_clients, sizeof(*c->users));
	c->rooms = calloc((size_t)lim->max_rooms + 1, sizeof(struct room *));
	c->hash = malloc(c->hashsz * sizeof(*c->hash));
	c->line = malloc(c->linesz);
	if (!c->users || !c->rooms || !c->hash || !c->line ||
	    room_create(c, PROTO_LOBBY, lobby_key, -1) == NULL)
		goto fail;
	for (i = 0; i < c->hashsz; i++)
		c->hash[i] = -1;
	for (i = 0; i < (size_t)lim->max_clients; i++)
		c->users[i].rprev = c->users[i].rnext = c->users[i].hnext = -1;
	return c;
fail:
	chat_free(c);
	return NULL;
}

void
chat_set_hooks(struct chat *c, const struct chat_hooks *h)
{
	c->hooks = *h;
	if (c->hooks.ctx == NULL)
		c->hooks.ctx = c->io.ctx;
}

void
chat_free(struct chat *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; c->rooms && i < c->nrooms; i++)
		free(c->rooms[i]);
	for (i = 0; c->users && i < c->lim.max_clients; i++)
		buf_free(&c->users[i].pend);
	for (i = 0; i < c->nremotes; i++)
		free(c->remotes[i].blob);
	free(c->remotes);
	free(c->rooms);
	free(c->users);
	free(c->hash);
	free(c->line);
	free(c);
}
