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
 * The rooms and who is in them are room.c's, the nick keys nick.c's, what
 * other hubs said remote.c's; chat.c holds the users (registered or not,
 * nick claims in flight) and decides what every command does.  The
 * federation entry points that other hubs' events come through
 * (chat_fed_*, docs/SCALING.md) are in chatfed.c, which uses chat.c
 * through chat_core.h; chat.c never calls it.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/chat_core.h"
#include "chat/name.h"
#include "chat/nick.h"
#include "chat/remote.h"
#include "chat/room.h"
#include "lib/plural.h"
#include "lib/utf8.h"
#include "sys/log.h"

#define QUIT_TEXT_MAX 200 /* bytes of a /quit reason that are passed on */
#define PEND_MAX      (64 * 1024) /* lines held during a nick claim */

struct user {
	int in_use, registered;
	char nick[NAME_SZ]; /* NFC, as registered */
	unsigned claim;     /* federation: nick claim in flight */
	struct buf pend;    /* lines received while the claim is in flight */
};

struct chat {
	struct chat_limits lim;
	struct chat_io io;
	struct chat_hooks hooks;
	struct user *users;
	struct rooms *rooms;     /* room.c: rooms and their members */
	struct nicks *nicks;     /* nick.c: nick keys of users and claims */
	struct remotes *remotes; /* remote.c: other hubs' snapshots */
	int nusers;
	char *line; /* scratch for one outgoing line */
	size_t linesz;
	struct chat_fed fed; /* federation hooks, when has_fed */
	int has_fed;
	unsigned claim_seq;
};

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
chat_out(struct chat *c, int slot, const char *fmt, ...)
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

static void __attribute__((format(printf, 4, 5)))
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
	chat_out(
	    c, slot, "ERR %d %s %s\n", (int)code, proto_err_name(code), text);
}

/* Send c->line (len bytes) to every member of r but except; how many. */
static int
line_to_room(struct chat *c, const struct room *r, int except, size_t len)
{
	return room_send(c->rooms, r, except, c->line, len);
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
		line_to_room(c, r, except, (size_t)n);
		if (c->has_fed) {
			c->fed.room_line(
			    c->fed.ctx, r->key, c->line, (size_t)n);
			c->fed.changed(c->fed.ctx);
		}
	}
}

/* ---- membership ------------------------------------------------------ */

static void
drop_room(struct chat *c, struct room *r)
{
	room_delete(c->rooms, r);
	if (c->has_fed)
		c->fed.changed(c->fed.ctx);
}

/* Leave the current room, telling the others why. */
static void
room_leave(struct chat *c, int slot, const char *reason)
{
	struct user *u = &c->users[slot];
	struct room *r = room_of(c->rooms, slot);

	if (r == NULL)
		return;
	room_unlink(c->rooms, slot);
	room_notice(c, r, -1, "PART %s %s %s\n", r->name, u->nick, reason);
	if (r->owner == ROOM_OWNER_REMOTE && r->count == 0) {
		log_info(
		    "room-part-gone room=%s (last member here left)", r->name);
		drop_room(c, r);
	}
}

/* Enter r (after leaving any room): others see JOIN. */
static void
room_enter(struct chat *c, int slot, struct room *r)
{
	room_notice(c, r, -1, "JOIN %s %s\n", r->name, c->users[slot].nick);
	room_link(c->rooms, slot, r);
}

static void
room_move(struct chat *c, int slot, struct room *r)
{
	room_leave(c, slot, "left");
	chat_out(c, slot, "OK JOIN %s\n", r->name);
	room_enter(c, slot, r);
}

/* The owner of some rooms is leaving the server: hand them on or drop them. */
static void
rooms_orphan(struct chat *c, int slot)
{
	struct room *r;
	int i;

	for (i = 1; i < rooms_count(c->rooms); i++) {
		r = rooms_at(c->rooms, i);
		if (r->owner != slot)
			continue;
		if (r->count == 0) {
			log_info(
			    "room-gone room=%s (owner left, empty)", r->name);
			if (c->has_fed) /* parts elsewhere have no owner now */
				c->fed.room_orphaned(c->fed.ctx, r->key);
			drop_room(c, r);
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

static void
register_done(struct chat *c, int slot)
{
	struct user *u = &c->users[slot];

	u->registered = 1;
	c->nusers++;
	log_info("register slot=%d nick=%s", slot, u->nick);
	if (c->hooks.registered != NULL)
		c->hooks.registered(c->hooks.ctx, slot);
	chat_out(c, slot, "OK NICK %s\n", u->nick);
	room_move(c, slot, room_lobby(c->rooms));
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
	char nfc[NAME_SZ], key[NAME_KEYSZ];
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
	if ((s = nick_find_key(c->nicks, key)) >= 0) {
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
	nick_add(c->nicks, slot, key);
	if (c->has_fed) { /* held locally until every hub agrees */
		u->claim = ++c->claim_seq ? c->claim_seq : ++c->claim_seq;
		c->fed.claim(c->fed.ctx, u->claim, nick_key(c->nicks, slot));
		return;
	}
	register_done(c, slot);
}

/* The room name in cmd's argument, checked: NFC into nfc, key into key. */
static int
check_room_name(struct chat *c, int slot, const struct proto_cmd *cmd,
    char nfc[NAME_SZ], char key[NAME_KEYSZ])
{
	enum name_fault f;
	uint32_t cp;

	f = name_prepare(cmd->arg, cmd->arglen, PROTO_ROOM_MAX_CHARS, nfc,
	    NAME_SZ, key, &cp);
	if (f == NAME_OK)
		return 0;
	name_refused(c, slot, "room name", f, cp, PERR_BAD_ROOM, PERR_BAD_ROOM,
	    PROTO_ROOM_MAX_CHARS);
	return -1;
}

static void
cmd_add(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	char name[NAME_SZ], key[NAME_KEYSZ];
	struct room *r;

	if (check_room_name(c, slot, cmd, name, key) < 0)
		return;
	if ((r = room_find_key(c->rooms, key)) != NULL) {
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
	if (c->has_fed && remote_has_room(c->remotes, name, strlen(name))) {
		out_err(c, slot, PERR_ROOM_EXISTS,
		    "room %s exists on another hub; /join %s", name, name);
		return;
	}
	if (rooms_count(c->rooms) - 1 >= c->lim.max_rooms) {
		out_err(c, slot, PERR_TOO_MANY_ROOMS,
		    "the server has %d %s already", c->lim.max_rooms,
		    PLURAL(c->lim.max_rooms, "room", "rooms"));
		return;
	}
	if ((r = room_create(c->rooms, name, key, slot)) == NULL) {
		log_error("room-add room=%s by=%s: out of memory", name,
		    c->users[slot].nick);
		out_err(c, slot, PERR_INTERNAL, "out of memory");
		return;
	}
	log_info("room-add room=%s owner=%s", r->name, c->users[slot].nick);
	chat_out(c, slot, "OK ADD %s\n", r->name);
	room_move(c, slot, r);
}

static void
cmd_join(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	char name[NAME_SZ], key[NAME_KEYSZ];
	struct room *r = NULL;
	uint32_t cp;

	if (name_prepare(cmd->arg, cmd->arglen, PROTO_ROOM_MAX_CHARS, name,
	        sizeof(name), key, &cp) == NAME_OK &&
	    (r = room_find_key(c->rooms, key)) == NULL && c->has_fed &&
	    remote_room_name(c->remotes, key, name) && /* named as there */
	    rooms_count(c->rooms) - 1 < c->lim.max_rooms &&
	    (r = room_create(c->rooms, name, key, ROOM_OWNER_REMOTE)) !=
	        NULL) { /* this hub's part of a room on other hubs */
		remote_room_owner(c->remotes, r->key, r->rowner);
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
	if (r == room_of(c->rooms, slot)) {
		out_err(c, slot, PERR_ALREADY_IN_ROOM, "you are in %s already",
		    r->name);
		return;
	}
	room_move(c, slot, r);
}

static void
cmd_leave(struct chat *c, int slot)
{
	if (room_of(c->rooms, slot) == room_lobby(c->rooms)) {
		out_err(c, slot, PERR_IS_LOBBY, "you are in the lobby already");
		return;
	}
	room_move(c, slot, room_lobby(c->rooms));
}

/*
 * Every member of r goes to the lobby, told who removed r; r is deleted.
 * The notices do not depend on the members' order: each member first gets
 * REMOVED, then every user who ends up in the lobby gets one JOIN for each
 * moved member other than themselves (those already there and the moved
 * ones alike), in r's member order.
 */
void
chat_room_evict(struct chat *c, struct room *r, const char *by)
{
	struct room *lobby = room_lobby(c->rooms);
	int s, t;

	for (s = r->head; s >= 0; s = room_next(c->rooms, s))
		chat_out(c, s, "REMOVED %s %s\n", r->name, by);
	for (s = r->head; s >= 0; s = room_next(c->rooms, s)) {
		room_notice(c, lobby, -1, "JOIN %s %s\n", lobby->name,
		    c->users[s].nick);
		for (t = r->head; t >= 0; t = room_next(c->rooms, t))
			if (t != s)
				chat_out(c, t, "JOIN %s %s\n", lobby->name,
				    c->users[s].nick);
	}
	while ((s = r->head) >= 0) {
		room_unlink(c->rooms, s);
		room_link(c->rooms, s, lobby);
	}
	drop_room(c, r);
}

/* /rm of a room whose owner is on another hub, or that has none. */
static void
rm_not_owner(struct chat *c, int slot, const char *name, size_t len)
{
	struct room *r = room_find(c->rooms, name, len);
	char key[NAME_KEYSZ], owner[NAME_SZ];

	if (r != NULL)
		snprintf(owner, sizeof(owner), "%s", r->rowner);
	else {
		name_key(name, len, key);
		remote_room_owner(c->remotes, key, owner);
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
	struct room *r, *lobby = room_lobby(c->rooms);
	const char *by = c->users[slot].nick;

	if ((r = room_find(c->rooms, cmd->arg, cmd->arglen)) == NULL) {
		if (c->has_fed &&
		    remote_has_room(c->remotes, cmd->arg, cmd->arglen))
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
	if (r->owner == ROOM_OWNER_REMOTE) {
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
	chat_out(c, slot, "OK RM %s\n", r->name);
	if (c->has_fed) /* first: the moves below publish lobby JOINs */
		c->fed.room_removed(c->fed.ctx, r->key, by);
	chat_room_evict(c, r, by);
}

/* ---- /list across hubs ------------------------------------------------- */

struct lrow {
	char name[NAME_SZ], key[NAME_KEYSZ], owner[NAME_SZ];
	long count;
};

struct ltab {
	struct lrow *row;
	int n, cap;
};

/* a room's member count summed over hubs never goes past this */
#define LIST_COUNT_MAX 1000000000L

static int
list_add(const struct remote *h, const struct rline *rl, void *arg)
{
	struct ltab *t = arg;
	struct lrow *row;
	char key[NAME_KEYSZ], owner[NAME_SZ] = "-";
	long v;
	int i;

	(void)h;
	if (rl->kind != 'R' || rl->fl[0] >= NAME_SZ || rl->fl[2] >= NAME_SZ ||
	    !name_key(rl->f[0], rl->fl[0], key))
		return 0;
	if (remote_name_ok(rl->f[2], rl->fl[2])) /* else "-": none we know */
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
	/* another hub's count: saturate, never overflow (fuzz_fedev) */
	v = strtol(rl->f[1], NULL, 10);
	if (v < 0)
		v = 0;
	row->count =
	    v > LIST_COUNT_MAX - row->count ? LIST_COUNT_MAX : row->count + v;
	if (strcmp(row->owner, "-") == 0 && i > 0)
		snprintf(row->owner, sizeof(row->owner), "%s", owner);
	return 0;
}

/* /list across hubs: local rooms, counts summed by name, then others'. */
static void
cmd_list_fed(struct chat *c, int slot)
{
	int i, nrooms = rooms_count(c->rooms);
	struct room *r;
	struct ltab t;

	t.cap = nrooms + c->lim.max_rooms * (remotes_count(c->remotes) + 1) + 1;
	if ((t.row = calloc((size_t)t.cap, sizeof(*t.row))) == NULL) {
		out_err(c, slot, PERR_INTERNAL, "out of memory");
		return;
	}
	for (t.n = 0; t.n < nrooms; t.n++) {
		r = rooms_at(c->rooms, t.n);
		snprintf(t.row[t.n].name, NAME_SZ, "%s", r->name);
		snprintf(t.row[t.n].key, NAME_KEYSZ, "%s", r->key);
		snprintf(t.row[t.n].owner, NAME_SZ, "%s",
		    r->owner >= 0 ? c->users[r->owner].nick : "-");
		t.row[t.n].count = r->count;
	}
	remote_each(c->remotes, list_add, &t);
	for (i = 0; i < t.n; i++)
		chat_out(c, slot, "ROOM %s %ld %s\n", t.row[i].name,
		    t.row[i].count, t.row[i].owner);
	chat_out(c, slot, "END LIST %d\n", t.n);
	free(t.row);
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

	for (i = 0; i < rooms_count(c->rooms); i++) {
		r = rooms_at(c->rooms, i);
		chat_out(c, slot, "ROOM %s %d %s\n", r->name, r->count,
		    r->owner >= 0 ? c->users[r->owner].nick : "-");
	}
	chat_out(c, slot, "END LIST %d\n", rooms_count(c->rooms));
}

/* cmd_users's state for users_add: one USER line per remote user. */
struct users_q {
	struct chat *c;
	int slot, n;
	const char *room_key; /* NULL: all */
};

static int
users_add(const struct remote *h, const struct rline *rl, void *arg)
{
	struct users_q *q = arg;

	(void)h;
	if (rl->kind != 'U' || !remote_name_ok(rl->f[0], rl->fl[0]) ||
	    !remote_name_ok(rl->f[1], rl->fl[1]) ||
	    (q->room_key && !remote_same_key(rl->f[1], rl->fl[1], q->room_key)))
		return 0; /* only names a hub could have accepted are shown */
	chat_out(q->c, q->slot, "USER %.*s %.*s\n", (int)rl->fl[0], rl->f[0],
	    (int)rl->fl[1], rl->f[1]);
	q->n++;
	return 0;
}

static void
cmd_users(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	struct room *r = room_of(c->rooms, slot);
	struct users_q q;
	int s, n = 0;

	if (cmd->arg == NULL) {
		for (s = r->head; s >= 0; s = room_next(c->rooms, s), n++)
			chat_out(
			    c, slot, "USER %s %s\n", c->users[s].nick, r->name);
	} else {
		for (s = 0; s < c->lim.max_clients; s++)
			if (c->users[s].registered) {
				chat_out(c, slot, "USER %s %s\n",
				    c->users[s].nick,
				    room_of(c->rooms, s)->name);
				n++;
			}
	}
	if (c->has_fed) {
		q.c = c;
		q.slot = slot;
		q.n = n;
		q.room_key = cmd->arg == NULL ? r->key : NULL;
		remote_each(c->remotes, users_add, &q);
		n = q.n;
	}
	chat_out(c, slot, "END USERS %d\n", n);
}

static void
cmd_whisper(struct chat *c, int slot, const struct proto_cmd *cmd)
{
	int to = nick_find(c->nicks, cmd->arg, cmd->arglen);
	const struct remote *hub;
	char key[NAME_KEYSZ], nick[NAME_SZ];

	if (to < 0 && c->has_fed && name_key(cmd->arg, cmd->arglen, key) &&
	    remote_find_nick(c->remotes, key, &hub, nick)) {
		c->fed.whisper(c->fed.ctx, hub->hub, c->users[slot].nick, nick,
		    cmd->text, cmd->textlen);
		chat_out(c, slot, "OK WHISPER %s\n", nick);
		return;
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
	chat_out(c, to, "WHISPER %s %.*s\n", c->users[slot].nick,
	    (int)cmd->textlen, cmd->text);
	chat_out(c, slot, "OK WHISPER %s\n", c->users[to].nick);
}

static void
cmd_help(struct chat *c, int slot)
{
	size_t i;

	for (i = 0; i < sizeof(help_lines) / sizeof(help_lines[0]); i++)
		chat_out(c, slot, "HELP %s\n", help_lines[i]);
	chat_out(c, slot, "END HELP\n");
}

static void
cmd_text(struct chat *c, int slot, const char *text, size_t len)
{
	struct user *u = &c->users[slot];
	struct room *r = room_of(c->rooms, slot);
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
	got = line_to_room(c, r, slot, n);
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
		chat_out(c, slot, "STAT %s %llu\n", it[i].name, it[i].value);
	chat_out(c, slot, "END STATS %zu\n", i);
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
	chat_out(c, slot, "BYE QUIT goodbye\n");
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
	u->nick[0] = '-';
	chat_out(c, slot,
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
		c->nusers--;
	}
	if (c->has_fed && (u->registered || u->claim))
		c->fed.release(c->fed.ctx, nick_key(c->nicks, slot));
	nick_remove(c->nicks, slot);
	buf_free(&u->pend);
	memset(u, 0, sizeof(*u));
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
	chat_out(c, slot, "BYE %s %s\n", name, text);
	log_info("disconnect slot=%d nick=%s reason=%s", slot,
	    chat_nick(c, slot), reason_of(name));
	chat_disconnect(
	    c, slot, strcmp(name, "QUIT") == 0 ? "quit" : "disconnected");
	c->io.close(c->io.ctx, slot);
}

/* ---- federation: set up, claims answered --------------------------------- */

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
		out_err(c, slot, PERR_NICK_TAKEN,
		    "nickname %s is in use on another hub, choose another",
		    u->nick);
		/* ours if we hold it */
		c->fed.release(c->fed.ctx, nick_key(c->nicks, slot));
		nick_remove(c->nicks, slot);
		memset(u->nick, 0, sizeof(u->nick));
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

/* ---- for chatfed.c (chat_core.h) ----------------------------------------- */

struct rooms *
chat_rooms(const struct chat *c)
{
	return c->rooms;
}

struct nicks *
chat_nicks(const struct chat *c)
{
	return c->nicks;
}

struct remotes *
chat_remotes(const struct chat *c)
{
	return c->remotes;
}

int
chat_slots(const struct chat *c)
{
	return c->lim.max_clients;
}

char *
chat_scratch(struct chat *c, size_t *size)
{
	*size = c->linesz;
	return c->line;
}

/* ---- queries --------------------------------------------------------------- */

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
	return chat_is_registered(c, slot) && room_of(c->rooms, slot) ?
	    room_of(c->rooms, slot)->name :
	    NULL;
}

int
chat_room_count(const struct chat *c)
{
	return rooms_count(c->rooms);
}

int
chat_user_count(const struct chat *c)
{
	return c->nusers;
}

struct chat *
chat_new(const struct chat_limits *lim, const struct chat_io *io)
{
	struct chat *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->lim = *lim;
	c->io = *io;
	c->linesz = lim->max_line + 4 * NAME_SZ + 64;
	c->users = calloc((size_t)lim->max_clients, sizeof(*c->users));
	c->line = malloc(c->linesz);
	c->nicks = nicks_new(lim->max_clients);
	c->remotes = remotes_new();
	c->rooms = rooms_new(lim->max_rooms, lim->max_clients, io);
	if (!c->users || !c->line || !c->nicks || !c->remotes || !c->rooms) {
		chat_free(c);
		return NULL;
	}
	return c;
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
	for (i = 0; c->users && i < c->lim.max_clients; i++)
		buf_free(&c->users[i].pend);
	rooms_free(c->rooms);
	nicks_free(c->nicks);
	remotes_free(c->remotes);
	free(c->users);
	free(c->line);
	free(c);
}
