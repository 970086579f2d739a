/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_fedev.c - libFuzzer target for the federation event parser
 * (core/fed/fedev.c) and what the parent does with the events it accepts
 * (core/chat/chatfed.c), as fed.c's handle_event() does (issue 12: nothing
 * read from Redis is trusted).
 *
 * The input is a list of stream entry values, each [len 2, big-endian]
 * [bytes], copied into a buffer of exactly that size (so ASan sees any
 * read past an entry).  A chat with three local users (two in the lobby,
 * one in "Ops") receives each accepted event; after each entry, one user
 * asks /list and /users all, which render the presence snapshots.
 *
 * Checks: an accepted event's fields lie inside the entry, its sequence
 * number is below 10^15 and nonzero unless it is P or S, its kind is one
 * of M W D O P S, no field but a snapshot holds a newline; every line the
 * chat sends ends in its only '\n', starts with a PROTOCOL.md keyword,
 * and is valid UTF-8 without control characters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "fed/fedev.h"
#include "lib/proto.h"
#include "fuzz_util.h"

#define NSLOTS 4

static struct chat *chat;
static unsigned last_token;

/* chat.o is the fuzz build's, with its failpoint compiled in: never fail */
int
fiu_fail(const char *name)
{
	(void)name;
	return 0;
}

static const char *keywords[] = { "HELLO", "OK", "MSG", "WHISPER", "JOIN",
    "PART", "REMOVED", "OWNER", "ROOM", "USER", "END", "HELP", "ERR", "BYE" };

static void
io_send(void *ctx, int slot, const char *line, size_t len)
{
	size_t i, k;
	int kw = 0;

	(void)ctx;
	if (fz_trace())
		fprintf(stderr, "  %d <- %.*s", slot, (int)len, line);
	FZ_CHECK(slot >= 0 && slot < NSLOTS);
	FZ_CHECK(len >= 2 && line[len - 1] == '\n');
	FZ_CHECK(memchr(line, '\n', len - 1) == NULL);
	FZ_CHECK(proto_check_line(line, len - 1) == PERR_NONE);
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		k = strlen(keywords[i]);
		kw |= len > k && memcmp(line, keywords[i], k) == 0 &&
		    line[k] == ' ';
	}
	FZ_CHECK(kw);
}

static void
io_close(void *ctx, int slot)
{
	(void)ctx;
	(void)slot;
}

static void
f_room_line(void *ctx, const char *key, const char *line, size_t len)
{
	(void)ctx, (void)key, (void)line, (void)len;
}

static void
f_claim(void *ctx, unsigned token, const char *key)
{
	(void)ctx, (void)key;
	last_token = token;
}

static void
f_key(void *ctx, const char *key)
{
	(void)ctx, (void)key;
}

static void
f_whisper(void *ctx, const char *hub, const char *from, const char *to,
    const char *text, size_t len)
{
	(void)ctx, (void)hub, (void)from, (void)to, (void)text, (void)len;
}

static void
f_changed(void *ctx)
{
	(void)ctx;
}

static void
f_removed(void *ctx, const char *key, const char *by)
{
	(void)ctx, (void)key, (void)by;
}

static void
say(int slot, const char *s)
{
	chat_line(chat, slot, s, strlen(s));
}

static void
setup(void)
{
	static const struct chat_io io = { NULL, io_send, io_close };
	static const struct chat_fed fed = { NULL, f_room_line, f_claim,
		f_key, f_whisper, f_changed, f_removed, f_key };
	static const char *nicks[] = { "ann", "bob", "Σοφία" };
	struct chat_limits lim = { NSLOTS, 4, 2000 };
	int i;

	FZ_CHECK((chat = chat_new(&lim, &io)) != NULL);
	chat_set_fed(chat, &fed);
	for (i = 0; i < 3; i++) {
		chat_connect(chat, i);
		say(i, nicks[i]);
		chat_fed_claimed(chat, last_token, 1);
	}
	say(2, "/add Ops");
}

static void
check_event(const struct fedev *ev, const char *p, size_t len)
{
	int i;

	FZ_CHECK(ev->origin == p && ev->olen > 0 && ev->olen < len);
	FZ_CHECK(ev->hub == p && ev->hlen > 0 && ev->hlen < ev->olen);
	FZ_CHECK(ev->seq < 1000000000000000ULL);
	FZ_CHECK(strchr("MWDOPS", ev->kind) != NULL && ev->kind != '\0');
	FZ_CHECK((ev->seq == 0) == (ev->kind == 'P' || ev->kind == 'S'));
	for (i = 0; i < 4; i++) {
		if (ev->f[i] == NULL)
			continue;
		FZ_CHECK(ev->f[i] >= p && ev->f[i] + ev->fl[i] <= p + len);
		if (ev->kind != 'P')
			FZ_CHECK(memchr(ev->f[i], '\n', ev->fl[i]) == NULL);
	}
}

/* What fed.c's handle_event() does with an accepted event. */
static void
dispatch(const struct fedev *ev)
{
	switch (ev->kind) {
	case 'M':
		chat_fed_room_line(chat, ev->f[0], ev->fl[0], ev->f[1],
		    ev->fl[1]);
		break;
	case 'D':
		chat_fed_room_removed(chat, ev->f[0], ev->fl[0], ev->f[1],
		    ev->fl[1]);
		break;
	case 'W':
		chat_fed_whisper(chat, ev->f[1], ev->fl[1], ev->f[2], ev->fl[2],
		    ev->f[3], ev->fl[3]);
		break;
	case 'O':
		chat_fed_room_orphaned(chat, ev->f[0], ev->fl[0]);
		break;
	case 'P':
		chat_fed_presence(chat, ev->hub, ev->hlen, ev->f[0], ev->fl[0],
		    1000);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fedev ev;
	size_t pos = 0, len;
	char *e;

	if (chat == NULL)
		setup();
	while (pos + 2 <= size) {
		len = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		FZ_CHECK((e = malloc(len ? len : 1)) != NULL);
		memcpy(e, data + pos, len);
		pos += len;
		if (fedev_parse(e, len, &ev) == NULL) {
			check_event(&ev, e, len);
			dispatch(&ev);
		}
		free(e);
		say(0, "/list");
		say(1, "/users all");
	}
	/* the other hubs are forgotten: the next input starts clean */
	chat_fed_expire(chat, 1LL << 40, 1);
	return 0;
}
