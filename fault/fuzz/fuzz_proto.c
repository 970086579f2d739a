/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_proto.c - libFuzzer target for the framer, the line validator and
 * the command parser (core/lib/proto.c, core/lib/utf8.c).
 *
 * The input is split in two: the first bytes choose the framer's limit
 * and how the rest is cut into pieces; the rest is the byte stream a
 * client would send.  Every line the framer reports goes through
 * proto_check_line, proto_parse, proto_usage and the name profile
 * (name_prepare, name_key), as the server does, and each result is compared with a
 * small, deliberately naive reference model written here from
 * docs/PROTOCOL.md (not from proto.c), so a disagreement is a bug in one
 * of the two.  It never makes a system call and aborts on the first
 * violated invariant, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat/name.h"
#include "lib/proto.h"
#include "lib/utf8.h"
#include "fuzz_util.h"

/* ---- reference model ---------------------------------------------------- */

/* Unicode 15, Table 3-7: well-formed UTF-8 byte sequences. */
static size_t
ref_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf)
		n = 2, *cp = b & 0x1f;
	else if (b >= 0xe0 && b <= 0xef) {
		n = 3, *cp = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0;
		if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 4, *cp = b & 0x07;
		if (b == 0xf0)
			lo = 0x90;
		if (b == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		unsigned char c = s[i];

		if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf))
			return 0;
		*cp = (*cp << 6) | (c & 0x3f);
	}
	return n;
}

static int
ref_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		if ((n = ref_decode(s + i, len - i, &cp)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

static int
ref_is_control(uint32_t cp)
{
	return (cp <= 0x1f && cp != 0x09) || (cp >= 0x7f && cp <= 0x9f);
}

static enum proto_err
ref_check_line(const unsigned char *s, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;
	int blank = 1;

	while (i < len) {
		if ((n = ref_decode(s + i, len - i, &cp)) == 0)
			return PERR_BAD_UTF8;
		if (ref_is_control(cp))
			return PERR_CONTROL_CHAR;
		if (!utf8_is_space(cp))
			blank = 0;
		i += n;
	}
	return blank ? PERR_EMPTY_LINE : PERR_NONE;
}

/* ---- framer driver ------------------------------------------------------ */

#define MAX_EVENTS	4096

struct ev {
	int	 too_long;
	size_t	 off, len;	/* into the copy buffer */
};

struct run {
	struct ev ev[MAX_EVENTS];
	int	 nev;
	char	*copy;		/* concatenated line contents */
	size_t	 copylen, copysz;
	size_t	 max;
	int	 stop_after;	/* cb returns -1 on this event number, or -1 */
	int	 in_call;	/* events delivered in the current proto_frame */
};

static int
on_line(enum proto_frame_ev ev, const char *line, size_t len, void *arg)
{
	struct run *r = arg;
	struct ev *e;

	FZ_CHECK(ev == PFRAME_LINE || ev == PFRAME_TOO_LONG);
	if (ev == PFRAME_TOO_LONG)
		FZ_CHECK(line == NULL && len == 0);
	else {
		FZ_CHECK(line != NULL);
		FZ_CHECK(len <= r->max);		/* never longer than max */
		FZ_CHECK(memchr(line, '\n', len) == NULL);
	}
	r->in_call++;
	if (r->nev < MAX_EVENTS) {
		e = &r->ev[r->nev];
		e->too_long = ev == PFRAME_TOO_LONG;
		e->off = r->copylen;
		e->len = len;
		if (len) {
			FZ_CHECK(r->copylen + len <= r->copysz);
			memcpy(r->copy + r->copylen, line, len);
			r->copylen += len;
		}
	}
	r->nev++;
	if (r->stop_after >= 0 && r->nev - 1 == r->stop_after)
		return -1;
	return 0;
}

/* ---- per-line checks ------------------------------------------------------ */

static int
in_range(const char *p, size_t n, const char *s, size_t len)
{
	return p >= s && p + n <= s + len;
}

static int
has_blank(const char *p, size_t n)
{
	return memchr(p, ' ', n) != NULL || memchr(p, '\t', n) != NULL;
}

static void
check_parse(const char *s, size_t len)
{
	static const char *names[] = { "add", "rm", "join", "leave", "list",
	    "users", "whisper", "w", "help", "stats", "quit" };
	struct proto_cmd c;
	const char *u;
	size_t i;
	int known = 0;

	proto_parse(s, len, &c);
	if (s[0] != '/' || (len > 1 && s[1] == '/')) {
		FZ_CHECK(c.id == CMD_TEXT);
		FZ_CHECK(c.text == (s[0] == '/' ? s + 1 : s));
		FZ_CHECK(c.textlen == (s[0] == '/' ? len - 1 : len));
		FZ_CHECK(proto_usage(&c) == NULL);
		return;
	}
	FZ_CHECK(c.id != CMD_TEXT);
	FZ_CHECK(in_range(c.name, c.namelen, s, len));
	FZ_CHECK(!has_blank(c.name, c.namelen));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == c.namelen &&
		    strncasecmp(names[i], c.name, c.namelen) == 0)
			known = 1;
	FZ_CHECK(known == (c.id != CMD_UNKNOWN));
	FZ_CHECK((c.arg == NULL) == (c.arglen == 0));
	if (c.arg) {
		FZ_CHECK(in_range(c.arg, c.arglen, s, len));
		FZ_CHECK(c.arg >= c.name + c.namelen);
		FZ_CHECK(!has_blank(c.arg, c.arglen));
	}
	FZ_CHECK((c.text == NULL) == (c.textlen == 0));
	if (c.text) {
		FZ_CHECK(c.arg != NULL);	/* text only after an argument */
		FZ_CHECK(in_range(c.text, c.textlen, s, len));
		FZ_CHECK(c.text > c.arg + c.arglen);
		FZ_CHECK(c.text[0] != ' ' && c.text[0] != '\t');
		FZ_CHECK(c.text[c.textlen - 1] != ' ' &&
		    c.text[c.textlen - 1] != '\t');
	}
	u = proto_usage(&c);
	if (u != NULL)
		FZ_CHECK(u[0] == '/' && strlen(u) < 64);
	switch (c.id) {
	case CMD_ADD: case CMD_RM: case CMD_JOIN:
		FZ_CHECK((u == NULL) == (c.arg != NULL && c.text == NULL));
		break;
	case CMD_WHISPER:
		FZ_CHECK((u == NULL) == (c.arg != NULL && c.text != NULL));
		break;
	case CMD_LEAVE: case CMD_LIST: case CMD_HELP: case CMD_STATS:
		FZ_CHECK((u == NULL) == (c.arg == NULL));
		break;
	default:
		break;
	}
}

/* The name profile (core/chat/name.c): what it accepts, and its key. */
static void
check_name(const char *s, size_t len)
{
	char nfc[PROTO_NAME_MAX_BYTES + 1], key[NAME_KEYSZ];
	char nfc2[PROTO_NAME_MAX_BYTES + 1], key2[NAME_KEYSZ];
	size_t chars, i, n;
	enum name_fault f;
	uint32_t cp;

	f = name_prepare(s, len, PROTO_ROOM_MAX_CHARS, nfc, sizeof(nfc), key,
	    &cp);
	if (f != NAME_OK) {
		FZ_CHECK(f > NAME_OK && f <= NAME_NOMEM);
		FZ_CHECK(key[0] == '\0');	/* matches nothing */
		FZ_CHECK(name_key(s, len, key2) == 0);
		return;
	}
	/* A good name: non-empty, valid, no '/' first, no space or control. */
	FZ_CHECK(len > 0 && s[0] != '/');
	FZ_CHECK(utf8_valid(s, len));
	for (i = 0; i < len; i += n) {
		n = ref_decode((const unsigned char *)s + i, len - i, &cp);
		FZ_CHECK(n > 0 && !ref_is_control(cp) && !utf8_is_space(cp));
	}
	chars = utf8_count(nfc, strlen(nfc));
	FZ_CHECK(chars > 0 && chars <= PROTO_ROOM_MAX_CHARS);
	FZ_CHECK(utf8_valid(nfc, strlen(nfc)));
	FZ_CHECK(key[0] != '\0' && strlen(key) <= NAME_KEY_MAX);
	FZ_CHECK(utf8_valid(key, strlen(key)));
	FZ_CHECK(strcmp(key, "-") != 0);
	FZ_CHECK(memchr(key, ' ', strlen(key)) == NULL);
	/* The stored form is the same name, with the same key and form. */
	FZ_CHECK(name_prepare(nfc, strlen(nfc), PROTO_ROOM_MAX_CHARS, nfc2,
	    sizeof(nfc2), key2, &cp) == NAME_OK);
	FZ_CHECK(strcmp(nfc, nfc2) == 0 && strcmp(key, key2) == 0);
	FZ_CHECK(name_key(s, len, key2) == strlen(key) &&
	    strcmp(key, key2) == 0);
}

static void
check_line(const char *s, size_t len)
{
	enum proto_err e = proto_check_line(s, len);
	const char *sp;

	FZ_CHECK(e == ref_check_line((const unsigned char *)s, len));
	FZ_CHECK((utf8_valid(s, len) != 0) ==
	    ref_valid((const unsigned char *)s, len));
	if (e != PERR_NONE)
		return;
	check_parse(s, len);
	/* The first word, as a nickname or room name. */
	sp = memchr(s, ' ', len);
	check_name(s, sp ? (size_t)(sp - s) : len);
	check_name(s, len);
}

/* ---- entry -------------------------------------------------------------- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 16, 17, 31, 64, 100, 255, 2000, 4000 };
	struct proto_framer f;
	static struct run run;
	struct run *r;
	struct fz_in in;
	size_t seed, off, piece, i, segstart, raw, l, want;
	int nlines, k, ret;

	fz_in_init(&in, data, size);
	memset(&f, 0, sizeof(f));
	f.max = maxes[fz_u8(&in) % 8];
	seed = fz_u8(&in);
	r = &run;		/* static: 100 KB calloc per input is slow */
	r->nev = 0;
	r->copylen = 0;
	/* exactly max + 1 bytes, as proto.h documents: ASan sees overruns */
	f.line = malloc(f.max + 1);
	r->copysz = in.len - in.pos + 1;
	r->copy = malloc(r->copysz);
	FZ_CHECK(f.line && r->copy);
	r->max = f.max;
	r->stop_after = (seed & 0x80) ? (int)(seed & 0x0f) : -1;

	/* Feed the rest in pieces of 1..64 bytes chosen from the data itself. */
	off = in.pos;
	k = 0;
	while (off < size) {
		piece = 1 + ((size_t)data[(off * 7 + seed) % size] * (seed | 1)
		    + (size_t)k) % ((seed & 0x40) ? 4000 : 64);
		if (piece > size - off)
			piece = size - off;
		r->in_call = 0;
		nlines = proto_frame(&f, (const char *)data + off, piece,
		    on_line, r);
		FZ_CHECK(nlines == r->in_call);
		FZ_CHECK(f.len <= f.max + 1);
		off += piece;
		k++;
	}

	/* Compare with the model: split the whole stream on '\n'. */
	if (r->stop_after < 0 && r->nev < MAX_EVENTS) {
		int ev = 0;

		for (i = in.pos, segstart = in.pos; i < size; i++) {
			if (data[i] != '\n')
				continue;
			raw = i - segstart;
			l = (raw > 0 && data[i - 1] == '\r') ? raw - 1 : raw;
			FZ_CHECK(ev < r->nev);
			FZ_CHECK(r->ev[ev].too_long == (l > f.max));
			if (!r->ev[ev].too_long) {
				FZ_CHECK(r->ev[ev].len == l);
				FZ_CHECK(memcmp(r->copy + r->ev[ev].off,
				    data + segstart, l) == 0);
			}
			ev++;
			segstart = i + 1;
		}
		FZ_CHECK(ev == r->nev);
		want = size - segstart;		/* an unfinished line is held */
		if (f.discarding)
			FZ_CHECK(want > f.max + 1);
		else
			FZ_CHECK(f.len == want);
	}

	for (k = 0; k < r->nev && k < MAX_EVENTS; k++)
		if (!r->ev[k].too_long)
			check_line(r->copy + r->ev[k].off, r->ev[k].len);
	ret = 0;
	free(f.line);
	free(r->copy);
	return ret;
}
