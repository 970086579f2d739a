/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fedev.c - parse and check the federation events read from Redis.
 *
 * Whoever can write to the Redis stream can put anything there: this file
 * is the one door between those bytes and the chat.  It refuses, with a
 * reason, every entry that a hub of this version could not have written:
 * an origin not shaped "HUB/EPOCH.PID", a sequence number that is not a
 * plain decimal below 10^15 (an overflowing one used to wrap and make every
 * later event of that origin look like a duplicate), names that are not
 * valid nicknames or room names, text that is not valid UTF-8 or holds a
 * control character, room lines that are not MSG, JOIN, PART or OWNER for
 * the room they claim, and anything longer than its bound.  Names are
 * checked and keyed by the name profile (name.c), as local ones are.  It
 * never makes a system call and allocates only inside the name profile's
 * libraries, so the fuzzer drives it alone.
 */
#include <stdint.h>
#include <string.h>

#include "fed/fedev.h"
#include "chat/name.h"
#include "lib/proto.h"

/* The next field of [*p, end) up to a space; NULL if there is none. */
static const char *
field(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *sp = memchr(s, ' ', (size_t)(end - s));

	if (sp == NULL)
		return NULL;
	*len = (size_t)(sp - s);
	*p = sp + 1;
	return s;
}

/* A hub id: 1..FEDEV_HUB_MAX printable ASCII bytes, no space or '/'. */
static int
hub_ok(const char *p, size_t len)
{
	size_t i;

	if (len == 0 || len > FEDEV_HUB_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] > '~' || p[i] == '/')
			return 0;
	return 1;
}

static int
digits(const char *p, size_t len)
{
	size_t i;

	if (len == 0 || len > 20)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* "HUB/EPOCH.PID"; sets the hub part. */
static int
origin_ok(struct fedev *ev)
{
	const char *slash, *dot, *end = ev->origin + ev->olen;

	if (ev->olen > FEDEV_ORIGIN_MAX ||
	    (slash = memchr(ev->origin, '/', ev->olen)) == NULL ||
	    (dot = memchr(slash, '.', (size_t)(end - slash))) == NULL)
		return 0;
	ev->hub = ev->origin;
	ev->hlen = (size_t)(slash - ev->origin);
	return hub_ok(ev->hub, ev->hlen) &&
	    digits(slash + 1, (size_t)(dot - slash - 1)) &&
	    digits(dot + 1, (size_t)(end - dot - 1));
}

/* Plain decimal, no sign, no leading zero, fewer than 16 digits. */
static int
seq_ok(const char *p, size_t len, unsigned long long *seq)
{
	size_t i;

	if (len == 0 || len > FEDEV_SEQ_DIGITS || (p[0] == '0' && len > 1))
		return 0;
	*seq = 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		*seq = *seq * 10 + (unsigned long long)(p[i] - '0');
	}
	return 1;
}

/* A name that follows the profile, of at most maxchars characters. */
static int
name_ok(const char *p, size_t len, size_t maxchars)
{
	char nfc[PROTO_NAME_MAX_BYTES + 1], key[NAME_KEYSZ];
	uint32_t cp;

	return len <= PROTO_NAME_MAX_BYTES &&
	    name_prepare(p, len, maxchars, nfc, sizeof(nfc), key, &cp) ==
	    NAME_OK;
}

static int
nick_ok(const char *p, size_t len)
{
	return name_ok(p, len, PROTO_NICK_MAX_CHARS);
}

/* A name key (name.h) as another hub keys a room: bounded, no space. */
static int
key_ok(const char *p, size_t len)
{
	return len > 0 && len <= NAME_KEY_MAX &&
	    proto_check_line(p, len) == PERR_NONE &&
	    memchr(p, ' ', len) == NULL;
}

static int
text_ok(const char *p, size_t len)
{
	return len <= FEDEV_TEXT_MAX && proto_check_line(p, len) == PERR_NONE;
}

/*
 * Is name (len bytes) a room name of the profile whose key is key (klen
 * bytes)?  room_ok() and the key compared, with one pass of the profile.
 */
static int
room_keyed(const char *name, size_t len, const char *key, size_t klen)
{
	char nfc[PROTO_NAME_MAX_BYTES + 1], k[NAME_KEYSZ];
	uint32_t cp;

	return len <= PROTO_NAME_MAX_BYTES &&
	    name_prepare(name, len, PROTO_ROOM_MAX_CHARS, nfc, sizeof(nfc), k,
	        &cp) == NAME_OK &&
	    strlen(k) == klen && memcmp(k, key, klen) == 0;
}

/* f1 = "KW ROOM NICK[ REST]" for room key f0. */
static const char *
room_line(struct fedev *ev)
{
	const char *p = ev->f[1], *end = p + ev->fl[1], *kw;
	size_t kl, rest;

	if (!text_ok(p, ev->fl[1]))
		return "bad room line";
	if ((kw = field(&p, end, &kl)) == NULL ||
	    (ev->f[2] = field(&p, end, &ev->fl[2])) == NULL)
		return "bad room line";
	ev->f[3] = p;
	ev->fl[3] = (size_t)(end - p);
	if ((p = memchr(p, ' ', (size_t)(end - p))) != NULL)
		ev->fl[3] = (size_t)(p - ev->f[3]);
	rest = p ? (size_t)(end - p) : 0; /* " TEXT" or "" */
	if (!((kl == 3 && memcmp(kw, "MSG", 3) == 0 && rest > 1) ||
	        (kl == 4 && memcmp(kw, "PART", 4) == 0 && rest > 1) ||
	        (kl == 4 && memcmp(kw, "JOIN", 4) == 0 && rest == 0) ||
	        (kl == 5 && memcmp(kw, "OWNER", 5) == 0 && rest == 0)))
		return "bad room line keyword";
	if (!room_keyed(ev->f[2], ev->fl[2], ev->f[0], ev->fl[0]))
		return "room line for another room";
	if (!nick_ok(ev->f[3], ev->fl[3]))
		return "bad nickname";
	return NULL;
}

/* BODY after its kind letter and a space, [p, end). */
static const char *
body(struct fedev *ev, const char *p, const char *end)
{
	int i, n = ev->kind == 'W' ? 3 : ev->kind == 'O' ? 0 : 1;

	for (i = 0; i < n; i++)
		if ((ev->f[i] = field(&p, end, &ev->fl[i])) == NULL)
			return "missing field";
	ev->f[n] = p;
	ev->fl[n] = (size_t)(end - p);
	switch (ev->kind) {
	case 'M':
		if (!key_ok(ev->f[0], ev->fl[0]))
			return "bad room key";
		return room_line(ev);
	case 'D':
		if (!key_ok(ev->f[0], ev->fl[0]) ||
		    !nick_ok(ev->f[1], ev->fl[1]))
			return "bad room removal";
		return NULL;
	case 'O':
		return key_ok(ev->f[0], ev->fl[0]) && ev->fl[0] > 0 ?
		    NULL :
		    "bad room key";
	case 'W':
		if (!hub_ok(ev->f[0], ev->fl[0]) ||
		    !nick_ok(ev->f[1], ev->fl[1]) ||
		    !nick_ok(ev->f[2], ev->fl[2]) || ev->fl[3] == 0 ||
		    !text_ok(ev->f[3], ev->fl[3]))
			return "bad whisper";
		return NULL;
	}
	return "unknown event kind";
}

const char *
fedev_parse(const char *p, size_t len, struct fedev *ev)
{
	const char *end = p + len, *s;
	size_t sl;

	memset(ev, 0, sizeof(*ev));
	if (len > FEDEV_MAX)
		return "entry too long";
	if ((ev->origin = field(&p, end, &ev->olen)) == NULL || !origin_ok(ev))
		return "bad origin";
	if ((s = field(&p, end, &sl)) == NULL || !seq_ok(s, sl, &ev->seq))
		return "bad sequence number";
	if (p == end)
		return "empty body";
	ev->kind = *p;
	if (ev->kind == 'S')
		return p + 1 == end && ev->seq == 0 ? NULL : "bad sync event";
	if (ev->kind == 'P') { /* P HUB\nSNAPSHOT, seq 0 */
		if (ev->seq != 0 || end - p < 3 || p[1] != ' ' ||
		    (s = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    (size_t)(s - p - 2) != ev->hlen ||
		    memcmp(p + 2, ev->hub, ev->hlen) != 0)
			return "bad presence header";
		ev->f[0] = s + 1;
		ev->fl[0] = (size_t)(end - s - 1);
		return ev->fl[0] <= FEDEV_SNAPSHOT_MAX ? NULL :
		                                         "presence too long";
	}
	if (ev->seq == 0)
		return "event without a sequence number";
	if (end - p < 2 || p[1] != ' ')
		return "bad event kind";
	if (end - p - 2 >
	    FEDEV_TEXT_MAX + NAME_KEY_MAX + PROTO_NAME_MAX_BYTES + 128)
		return "event too long";
	return body(ev, p + 2, end);
}
