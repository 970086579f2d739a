/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_chat.c - libFuzzer target for the chat state machine (core/chat/chat.c).
 *
 * The input is a script for a chat with 8 slots and small limits.  Its
 * first byte picks the limits; then each operation is one byte (slot in
 * the low 3 bits, action above) followed by its operands:
 *
 *   connect        chat_connect on a free slot
 *   disconnect     chat_disconnect, as when the client's child exits
 *   reject         chat_reject with a framing/validation error code
 *   bye            chat_bye (SHUTDOWN, SLOW_CONSUMER, REGISTER_TIMEOUT)
 *   bytes          raw bytes through the slot's own framer and
 *                  proto_check_line, then chat_line or chat_reject,
 *                  exactly as the server child and parent do
 *   command        one of the protocol commands below, with a name from
 *                  a pool of clashing, Korean, Latin-1, Greek, Cyrillic,
 *                  over-long and invalid names
 *   failnext       make the next room allocation fail (the
 *                  "forkchatd/chat/calloc" failpoint)
 *
 * The chat_io records everything and checks, per line: it ends in '\n'
 * and holds no other, starts with an upper-case keyword of
 * docs/PROTOCOL.md, is valid UTF-8 without control characters, is at
 * most max_line + 200 bytes, and goes only to a connected slot.  After
 * each operation the target checks the public accessors against its own
 * model and, for messages, whispers and listings, who got what.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "chat/name.h"
#include "lib/proto.h"
#include "lib/utf8.h"
#include "fuzz_util.h"

#define NSLOTS		8
#define MAXOUT		4096		/* lines recorded per operation */

enum slot_state { S_FREE, S_OPEN, S_CLOSED };

struct outline {
	int	 slot;
	size_t	 off, len;
};

static struct {
	enum slot_state state[NSLOTS];
	struct proto_framer fr[NSLOTS];
	size_t	 max_line;
	int	 max_rooms;
	int	 fail_next;
	struct outline out[MAXOUT];
	int	 nout;
	char	*text;			/* all recorded bytes of this op */
	size_t	 textlen, textsz;
	int	 closes[NSLOTS];
	struct chat *chat;
} g;

int
fiu_fail(const char *name)
{
	if (g.fail_next && strcmp(name, "forkchatd/chat/calloc") == 0) {
		g.fail_next = 0;
		return 1;
	}
	return 0;
}

/* ---- chat_io ------------------------------------------------------------ */

static const char *keywords[] = { "HELLO", "OK", "MSG", "WHISPER", "JOIN",
    "PART", "REMOVED", "OWNER", "ROOM", "USER", "END", "HELP", "ERR", "BYE" };

static int
keyword_of(const char *l, size_t len)
{
	size_t i, k;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		k = strlen(keywords[i]);
		if (len > k && memcmp(l, keywords[i], k) == 0 && l[k] == ' ')
			return (int)i;
	}
	return -1;
}

static void
check_err_line(const char *l, size_t len)
{
	const char *name;
	int code;

	FZ_CHECK(len > 8 && l[7] == ' ');
	FZ_CHECK(l[4] >= '1' && l[4] <= '5');
	code = (l[4] - '0') * 100 + (l[5] - '0') * 10 + (l[6] - '0');
	FZ_CHECK((name = proto_err_name((enum proto_err)code)) != NULL);
	FZ_CHECK(len > 8 + strlen(name) &&
	    memcmp(l + 8, name, strlen(name)) == 0 &&
	    l[8 + strlen(name)] == ' ');
}

/*
 * Known bug KB2: an ERR text is built in a 512-byte buffer with
 * vsnprintf, which can cut a multi-byte character in half when the line
 * echoes a long argument (/join, /rm, /whisper, unknown command).
 */
static int
known_truncated_err(const char *l, size_t len)
{
	return !fz_strict() && len > 4 && memcmp(l, "ERR ", 4) == 0 &&
	    len >= 8 + 511;
}

static void
io_send(void *ctx, int slot, const char *line, size_t len)
{
	struct outline *o;

	(void)ctx;
	if (fz_trace())
		fprintf(stderr, "  %d <- %.*s", slot, (int)len, line);
	FZ_CHECK(slot >= 0 && slot < NSLOTS);
	FZ_CHECK(g.state[slot] == S_OPEN);	/* no output to the unconnected */
	FZ_CHECK(len >= 2 && line[len - 1] == '\n');
	FZ_CHECK(memchr(line, '\n', len - 1) == NULL);
	FZ_CHECK(len - 1 <= g.max_line + 200);
	FZ_CHECK(keyword_of(line, len) >= 0);
	if (proto_check_line(line, len - 1) != PERR_NONE)
		FZ_CHECK(known_truncated_err(line, len - 1));
	if (memcmp(line, "ERR ", 4) == 0)
		check_err_line(line, len - 1);
	if (g.nout >= MAXOUT)
		return;
	if (g.textlen + len > g.textsz) {
		g.textsz = (g.textlen + len) * 2;
		FZ_CHECK((g.text = realloc(g.text, g.textsz)) != NULL);
	}
	o = &g.out[g.nout++];
	o->slot = slot;
	o->off = g.textlen;
	o->len = len;
	memcpy(g.text + g.textlen, line, len);
	g.textlen += len;
}

static void
io_close(void *ctx, int slot)
{
	(void)ctx;
	FZ_CHECK(slot >= 0 && slot < NSLOTS);
	FZ_CHECK(g.state[slot] == S_OPEN);
	g.state[slot] = S_CLOSED;
	g.closes[slot]++;
}

/* ---- helpers over the recorded output ---------------------------------- */

static int
count_to(int slot)
{
	int i, n = 0;

	for (i = 0; i < g.nout; i++)
		n += g.out[i].slot == slot;
	return n;
}

static const char *
line_at(int i, size_t *len)
{
	*len = g.out[i].len;
	return g.text + g.out[i].off;
}

/* The only lines one client's action may cause for another client. */
static int
is_notice(const char *l, size_t len)
{
	static const char *ok[] = { "MSG ", "WHISPER ", "JOIN ", "PART ",
	    "REMOVED ", "OWNER " };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (len > strlen(ok[i]) && memcmp(l, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

/* ---- model consistency --------------------------------------------------- */

static void
check_model(void)
{
	char k1[NAME_KEYSZ], k2[NAME_KEYSZ], nfc[PROTO_NAME_MAX_BYTES + 1];
	const char *n1, *n2;
	uint32_t cp;
	int s, t, users = 0;

	for (s = 0; s < NSLOTS; s++) {
		FZ_CHECK(chat_in_use(g.chat, s) == (g.state[s] == S_OPEN));
		if (!chat_is_registered(g.chat, s)) {
			FZ_CHECK(strcmp(chat_nick(g.chat, s), "-") == 0);
			FZ_CHECK(chat_room(g.chat, s) == NULL);
			continue;
		}
		users++;
		FZ_CHECK(chat_room(g.chat, s) != NULL);
		n1 = chat_nick(g.chat, s);
		FZ_CHECK(name_prepare(n1, strlen(n1), PROTO_NICK_MAX_CHARS,
		    nfc, sizeof(nfc), k1, &cp) == NAME_OK);
		FZ_CHECK(strcmp(nfc, n1) == 0);	/* stored in NFC */
		for (t = s + 1; t < NSLOTS; t++) {
			if (!chat_is_registered(g.chat, t))
				continue;
			n2 = chat_nick(g.chat, t);
			name_key(n2, strlen(n2), k2);
			FZ_CHECK(strcmp(k1, k2) != 0);	/* unique nicknames */
		}
	}
	FZ_CHECK(chat_user_count(g.chat) == users);
	FZ_CHECK(chat_room_count(g.chat) >= 1 &&
	    chat_room_count(g.chat) <= g.max_rooms + 1);
}

/* ---- commands ------------------------------------------------------------- */

static const char *names[] = {
	"alice", "ALICE", "Alice", "bob", "lobby", "LOBBY", "x",
	"\xea\xb9\x80\xec\xb2\xa0\xec\x88\x98",		/* 김철수 */
	"\xc3\x89lan", "\xc3\xa9lan", "\xc3\x89LAN",		/* Élan élan ÉLAN */
	"\xce\xa9mega", "\xcf\x89MEGA",			/* Ωmega ωMEGA */
	"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",	/* Привет */
	"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",	/* ПРИВЕТ */
	"room1", "ROOM1", "abcdefghijklmnop", "abcdefghijklmnopq",
	"r23456789012345678901234567890ab",			/* 32 */
	"r23456789012345678901234567890abc",			/* 33 */
	"/bad", "-", ("a\xe3\x80\x80" "b"),			/* ideographic space */
	"\xc5\xb8", "\xc3\xbf",					/* Ÿ ÿ */
};

/* A name of n Korean syllables (3 bytes each), to make lines long. */
static size_t
long_name(char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		memcpy(buf + 3 * i, "\xea\xb0\x80", 3);		/* 가 */
	return 3 * n;
}

#define NCMDS	22

static size_t
build_cmd(int which, uint8_t p, char *buf, size_t bufsz, int *kind)
{
	const char *n = names[p % (sizeof(names) / sizeof(names[0]))];
	char big[3 * 240];
	int len;

	*kind = which;
	switch (which) {
	case 0:  len = snprintf(buf, bufsz, "%s", n); break;
	case 1:  len = snprintf(buf, bufsz, "/add %s", n); break;
	case 2:  len = snprintf(buf, bufsz, "/join %s", n); break;
	case 3:  len = snprintf(buf, bufsz, "/rm %s", n); break;
	case 4:  len = snprintf(buf, bufsz, "/leave"); break;
	case 5:  len = snprintf(buf, bufsz, "/list"); break;
	case 6:  len = snprintf(buf, bufsz, "/users"); break;
	case 7:  len = snprintf(buf, bufsz, "/users all"); break;
	case 8:  len = snprintf(buf, bufsz, "/w %s hi %u", n, p); break;
	case 9:  len = snprintf(buf, bufsz, "/whisper %s", n); break;
	case 10: len = snprintf(buf, bufsz, "/help"); break;
	case 11: len = snprintf(buf, bufsz, "/quit"); break;
	case 12: len = snprintf(buf, bufsz, "hello %u from the fuzzer", p); break;
	case 13: len = snprintf(buf, bufsz, "//slash %u", p); break;
	case 14: len = snprintf(buf, bufsz, "/nosuch%u arg", p); break;
	case 15: len = snprintf(buf, bufsz, "/JOIN %s", n); break;
	case 16: len = snprintf(buf, bufsz, "/add %s extra", n); break;
	case 17: len = snprintf(buf, bufsz, "/LiSt all"); break;
	case 18: len = snprintf(buf, bufsz, "/quit see you \xea\xb0\x80"); break;
	case 19:
	case 20:
	case 21:
		/* a long Korean argument: /join, /rm or /w of p+1 syllables */
		long_name(big, (size_t)p % 240 + 1);
		len = snprintf(buf, bufsz, "%s %.*s%s", which == 19 ? "/join" :
		    which == 20 ? "/rm" : "/w", (int)(3 * ((size_t)p % 240 + 1)),
		    big, which == 21 ? " text" : "");
		break;
	default: len = 0; break;
	}
	if (len < 0)
		len = 0;
	return (size_t)len < bufsz ? (size_t)len : bufsz - 1;
}

/* ---- one operation ----------------------------------------------------------- */

struct snap {
	int	 reg[NSLOTS];
	char	 room[NSLOTS][PROTO_NAME_MAX_BYTES + 1];
	char	 nick[NSLOTS][PROTO_NAME_MAX_BYTES + 1];
	int	 nrooms, nusers;
};

static void
take_snap(struct snap *sn)
{
	int s;

	memset(sn, 0, sizeof(*sn));
	for (s = 0; s < NSLOTS; s++) {
		sn->reg[s] = chat_is_registered(g.chat, s);
		if (sn->reg[s]) {
			snprintf(sn->room[s], sizeof(sn->room[s]), "%s",
			    chat_room(g.chat, s));
			snprintf(sn->nick[s], sizeof(sn->nick[s]), "%s",
			    chat_nick(g.chat, s));
		}
	}
	sn->nrooms = chat_room_count(g.chat);
	sn->nusers = chat_user_count(g.chat);
}

/* Who received what after a line from slot, compared with the model. */
static void
check_effects(int slot, const char *line, size_t len, int kind,
    const struct snap *b)
{
	struct proto_cmd cmd;
	char want[8192];
	const char *l;
	size_t ll;
	int i, s, n, rooms = 0;

	/* Lines to other slots are notices only. */
	for (i = 0; i < g.nout; i++) {
		l = line_at(i, &ll);
		if (g.out[i].slot != slot)
			FZ_CHECK(is_notice(l, ll));
	}
	if (!b->reg[slot] || g.nout >= MAXOUT)
		return;
	proto_parse(line, len, &cmd);
	if (cmd.id == CMD_TEXT) {
		/* Each other member of the room once; nobody else; no echo. */
		n = snprintf(want, sizeof(want), "MSG %s %s %.*s\n",
		    b->room[slot], b->nick[slot], (int)cmd.textlen, cmd.text);
		for (s = 0; s < NSLOTS; s++) {
			int member = s != slot && b->reg[s] &&
			    strcmp(b->room[s], b->room[slot]) == 0;

			FZ_CHECK(count_to(s) == member);
		}
		for (i = 0; i < g.nout; i++) {
			l = line_at(i, &ll);
			FZ_CHECK(ll == (size_t)n && memcmp(l, want, ll) == 0);
		}
		return;
	}
	if (kind == 5 || kind == 17) {		/* /list */
		if (kind == 17) {
			FZ_CHECK(g.nout == 1 && count_to(slot) == 1);
			return;			/* usage error */
		}
		for (i = 0; i < g.nout; i++) {
			FZ_CHECK(g.out[i].slot == slot);
			l = line_at(i, &ll);
			if (i == 0)
				FZ_CHECK(ll > 11 && memcmp(l, "ROOM lobby ", 11) == 0);
			if (i < g.nout - 1) {
				FZ_CHECK(memcmp(l, "ROOM ", 5) == 0);
				rooms++;
			} else {
				n = snprintf(want, sizeof(want), "END LIST %d\n",
				    b->nrooms);
				FZ_CHECK(ll == (size_t)n && memcmp(l, want, ll) == 0);
			}
		}
		FZ_CHECK(rooms == b->nrooms);
	}
	if (kind == 7) {			/* /users all */
		FZ_CHECK(count_to(slot) == g.nout);
		l = line_at(g.nout - 1, &ll);
		n = snprintf(want, sizeof(want), "END USERS %d\n", b->nusers);
		FZ_CHECK(ll == (size_t)n && memcmp(l, want, ll) == 0);
		FZ_CHECK(g.nout == b->nusers + 1);
	}
	if (kind == 8) {			/* /w NAME hi P */
		int to = -1;
		char k1[NAME_KEYSZ], k2[NAME_KEYSZ];

		name_key(cmd.arg, cmd.arglen, k1);	/* "" if no name */
		for (s = 0; s < NSLOTS; s++) {
			if (!b->reg[s])
				continue;
			name_key(b->nick[s], strlen(b->nick[s]), k2);
			if (k1[0] != '\0' && strcmp(k1, k2) == 0)
				to = s;
		}
		if (to < 0 || to == slot) {
			FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
			l = line_at(0, &ll);
			FZ_CHECK(memcmp(l, to < 0 ? "ERR 440 " : "ERR 441 ", 8) == 0);
		} else {
			FZ_CHECK(g.nout == 2 && count_to(to) == 1 &&
			    count_to(slot) == 1);
			n = snprintf(want, sizeof(want), "WHISPER %s %.*s\n",
			    b->nick[slot], (int)cmd.textlen, cmd.text);
			for (i = 0; i < 2; i++)
				if (g.out[i].slot == to) {
					l = line_at(i, &ll);
					FZ_CHECK(ll == (size_t)n &&
					    memcmp(l, want, ll) == 0);
				}
		}
	}
	/* A command always answers its sender. */
	FZ_CHECK(count_to(slot) >= 1);
}

static void
deliver(int slot, const char *line, size_t len, int kind)
{
	struct snap b;
	enum proto_err e;

	take_snap(&b);
	g.nout = 0;
	g.textlen = 0;
	e = proto_check_line(line, len);
	if (e != PERR_NONE) {
		chat_reject(g.chat, slot, e);
		FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
		return;
	}
	chat_line(g.chat, slot, line, len);
	check_effects(slot, line, len, kind, &b);
}

static int
on_frame(enum proto_frame_ev ev, const char *line, size_t len, void *arg)
{
	int slot = *(int *)arg;

	if (g.state[slot] != S_OPEN)
		return -1;		/* quit mid-stream: the rest is dropped */
	if (ev == PFRAME_TOO_LONG) {
		g.nout = 0;
		chat_reject(g.chat, slot, PERR_LINE_TOO_LONG);
		FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
	} else
		deliver(slot, line, len, -1);
	check_model();
	return 0;
}

static void
slot_reset(int slot)
{
	g.fr[slot].len = 0;
	g.fr[slot].discarding = 0;
}

static void
op(struct fz_in *in)
{
	static const enum proto_err codes[] = { PERR_EMPTY_LINE,
	    PERR_LINE_TOO_LONG, PERR_BAD_UTF8, PERR_CONTROL_CHAR, PERR_INTERNAL };
	static const char *byes[] = { "SHUTDOWN", "SLOW_CONSUMER",
	    "REGISTER_TIMEOUT" };
	uint8_t b = fz_u8(in), p;
	int slot = b & 7, act = b >> 3, kind;
	char buf[1024];
	const char *raw;
	size_t len;

	g.nout = 0;
	g.textlen = 0;
	if (act < 3) {					/* connect */
		if (g.state[slot] == S_OPEN)
			return;
		if (g.state[slot] == S_CLOSED)		/* child exited */
			chat_disconnect(g.chat, slot, "disconnected");
		FZ_CHECK(g.nout == 0);
		g.state[slot] = S_OPEN;
		slot_reset(slot);
		chat_connect(g.chat, slot);
		FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
		FZ_CHECK(memcmp(g.text, "HELLO forkchatd/", 16) == 0);
	} else if (act < 5) {				/* disconnect */
		chat_disconnect(g.chat, slot, (act & 1) ? "disconnected" :
		    "quit");
		g.state[slot] = S_FREE;
		FZ_CHECK(count_to(slot) == 0);
	} else if (act == 5) {				/* reject */
		p = fz_u8(in);
		if (g.state[slot] != S_OPEN)
			return;
		chat_reject(g.chat, slot, codes[p % 5]);
		FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
	} else if (act == 6) {				/* bye */
		p = fz_u8(in);
		if (g.state[slot] != S_OPEN)
			return;
		chat_bye(g.chat, slot, byes[p % 3], "fuzz");
		FZ_CHECK(g.state[slot] == S_CLOSED);
		FZ_CHECK(count_to(slot) == 1 &&
		    memcmp(g.text + g.out[0].off, "BYE ", 4) == 0);
	} else if (act == 7) {				/* failnext */
		g.fail_next = 1;
	} else if (act < 10) {				/* raw bytes */
		len = fz_u8(in);
		if (g.max_line > 255)
			len = len * 4 + 3;
		len = fz_bytes(in, len, &raw);
		if (g.state[slot] != S_OPEN)
			return;
		proto_frame(&g.fr[slot], raw, len, on_frame, &slot);
	} else {					/* command */
		p = fz_u8(in);
		len = build_cmd((act - 10) % NCMDS, p, buf, sizeof(buf), &kind);
		if (g.state[slot] != S_OPEN || len == 0)
			return;
		if (len > g.max_line) {
			g.nout = 0;
			chat_reject(g.chat, slot, PERR_LINE_TOO_LONG);
			FZ_CHECK(g.nout == 1 && g.out[0].slot == slot);
		} else
			deliver(slot, buf, len, kind);
	}
	check_model();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t lines[] = { 16, 40, 100, 700 };
	struct chat_limits lim;
	struct chat_io io = { NULL, io_send, io_close };
	struct fz_in in;
	uint8_t cfg;
	int s, nops = 0;

	fz_in_init(&in, data, size);
	cfg = fz_u8(&in);
	memset(g.state, 0, sizeof(g.state));
	memset(g.closes, 0, sizeof(g.closes));
	g.fail_next = 0;
	g.max_line = lines[cfg & 3];
	g.max_rooms = 1 + ((cfg >> 2) & 3);
	lim.max_clients = NSLOTS;
	lim.max_rooms = g.max_rooms;
	lim.max_line = g.max_line;
	FZ_CHECK((g.chat = chat_new(&lim, &io)) != NULL);
	for (s = 0; s < NSLOTS; s++) {
		g.fr[s].max = g.max_line;
		FZ_CHECK((g.fr[s].line = malloc(g.max_line + 1)) != NULL);
		slot_reset(s);
	}
	while (fz_left(&in) && nops++ < 2000)
		op(&in);
	/* Everybody leaves: the chat must end empty (lobby only). */
	for (s = 0; s < NSLOTS; s++) {
		g.nout = 0;
		chat_disconnect(g.chat, s, "disconnected");
		g.state[s] = S_FREE;
		check_model();
	}
	FZ_CHECK(chat_user_count(g.chat) == 0);
	FZ_CHECK(chat_room_count(g.chat) == 1);
	chat_free(g.chat);
	for (s = 0; s < NSLOTS; s++)
		free(g.fr[s].line);
	return 0;
}
