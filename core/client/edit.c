/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * edit.c - the client's input line editor.
 *
 * Owns the line being typed, its cursor, this session's history and the
 * decoding of key bytes (UTF-8 sequences and the VT100/xterm escape
 * sequences of the arrow, Home, End and Delete keys).  Must never do I/O:
 * the network process owns the screen and draws what edit_view() says.
 * Whatever bytes arrive, the buffer holds only valid UTF-8 without control
 * characters, so the server never refuses a line for its encoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/edit.h"
#include "client/render.h"
#include "lib/utf8.h"

void
edit_init(struct edit *e)
{
	memset(e, 0, sizeof(*e));
}

void
edit_free(struct edit *e)
{
	int i;

	for (i = 0; i < e->nhist; i++)
		free(e->hist[i]);
	e->nhist = e->hpos = 0;
}

/* ---- moving and changing the buffer ----------------------------------- */

static size_t
prev_char(const struct edit *e, size_t at)
{
	while (at > 0 && ((unsigned char)e->buf[--at] & 0xc0) == 0x80)
		;
	return at;
}

static size_t
next_char(const struct edit *e, size_t at)
{
	while (at < e->len && ((unsigned char)e->buf[++at] & 0xc0) == 0x80)
		;
	return at;
}

static enum edit_action
insert(struct edit *e, const char *s, size_t n)
{
	if (e->len + n > EDIT_MAX)
		return EDIT_NONE; /* full: the key is dropped */
	memmove(e->buf + e->cur + n, e->buf + e->cur, e->len - e->cur);
	memcpy(e->buf + e->cur, s, n);
	e->len += n;
	e->cur += n;
	e->buf[e->len] = '\0';
	return EDIT_REDRAW;
}

/* Delete buf[from..to). */
static enum edit_action
cut(struct edit *e, size_t from, size_t to)
{
	if (from >= to)
		return EDIT_NONE;
	memmove(e->buf + from, e->buf + to, e->len - to);
	e->len -= to - from;
	e->cur = from;
	e->buf[e->len] = '\0';
	return EDIT_REDRAW;
}

static enum edit_action
move_to(struct edit *e, size_t at)
{
	if (at == e->cur)
		return EDIT_NONE;
	e->cur = at;
	return EDIT_REDRAW;
}

/* Ctrl-W: the spaces before the cursor, then the word before them. */
static enum edit_action
cut_word(struct edit *e)
{
	size_t at = e->cur;

	while (at > 0 && e->buf[at - 1] == ' ')
		at--;
	while (at > 0 && e->buf[at - 1] != ' ')
		at--;
	return cut(e, at, e->cur);
}

static void
load(struct edit *e, const char *s, size_t n)
{
	memcpy(e->buf, s, n);
	e->buf[n] = '\0';
	e->len = e->cur = n;
}

/* Up (dir -1) and Down (dir +1) through this session's sent lines. */
static enum edit_action
history(struct edit *e, int dir)
{
	if (dir < 0 && e->hpos == 0)
		return EDIT_NONE;
	if (dir > 0 && e->hpos >= e->nhist)
		return EDIT_NONE;
	if (e->hpos == e->nhist) { /* leaving the line being typed */
		memcpy(e->draft, e->buf, e->len + 1);
		e->draftlen = e->len;
	}
	e->hpos += dir;
	if (e->hpos == e->nhist)
		load(e, e->draft, e->draftlen);
	else
		load(e, e->hist[e->hpos], strlen(e->hist[e->hpos]));
	return EDIT_REDRAW;
}

/* ---- escape and UTF-8 sequences ---------------------------------------- */

static enum edit_action
csi_key(struct edit *e, const char *seq, size_t n)
{
	static const struct {
		const char *seq;
		char key;
	} keys[] = {
		{ "[A", 'U' },
		{ "OA", 'U' },
		{ "[B", 'D' },
		{ "OB", 'D' },
		{ "[C", 'R' },
		{ "OC", 'R' },
		{ "[D", 'L' },
		{ "OD", 'L' },
		{ "[H", 'H' },
		{ "OH", 'H' },
		{ "[1~", 'H' },
		{ "[7~", 'H' },
		{ "[F", 'E' },
		{ "OF", 'E' },
		{ "[4~", 'E' },
		{ "[8~", 'E' },
		{ "[3~", 'X' },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].seq) == n &&
		    memcmp(keys[i].seq, seq, n) == 0)
			break;
	switch (i < sizeof(keys) / sizeof(keys[0]) ? keys[i].key : 0) {
	case 'U':
		return history(e, -1);
	case 'D':
		return history(e, 1);
	case 'R':
		return move_to(e, next_char(e, e->cur));
	case 'L':
		return move_to(e, prev_char(e, e->cur));
	case 'H':
		return move_to(e, 0);
	case 'E':
		return move_to(e, e->len);
	case 'X':
		return cut(e, e->cur, next_char(e, e->cur));
	default:
		return EDIT_NONE; /* a key we do not use (F1, PgUp, ...) */
	}
}

/* Bytes of the UTF-8 sequence a lead byte starts, or 0. */
static size_t
utf8_len(unsigned char ch)
{
	if (ch >= 0xc2 && ch <= 0xdf)
		return 2;
	if (ch >= 0xe0 && ch <= 0xef)
		return 3;
	if (ch >= 0xf0 && ch <= 0xf4)
		return 4;
	return 0;
}

static enum edit_action feed_plain(struct edit *e, unsigned char ch);

static enum edit_action
feed_seq(struct edit *e, unsigned char ch)
{
	uint32_t cp;
	size_t n;

	if (e->seq[0] != '\033') { /* a UTF-8 character */
		if ((ch & 0xc0) != 0x80) {
			e->seqlen = 0; /* broken: drop it, read ch afresh */
			return feed_plain(e, ch);
		}
		e->seq[e->seqlen++] = (char)ch;
		if (e->seqlen < utf8_len((unsigned char)e->seq[0]))
			return EDIT_NONE;
		n = e->seqlen;
		e->seqlen = 0;
		if (utf8_decode(e->seq, n, &cp) != n || utf8_is_control(cp))
			return EDIT_NONE;
		return insert(e, e->seq, n);
	}
	if (e->seqlen == 1 && ch != '[' && ch != 'O') {
		e->seqlen = 0; /* ESC alone, or Alt-key: read ch as a key */
		return feed_plain(e, ch);
	}
	e->seq[e->seqlen++] = (char)ch;
	if (e->seqlen >= 3 && ch >= 0x40 && ch <= 0x7e) {
		n = e->seqlen;
		e->seqlen = 0;
		return csi_key(e, e->seq + 1, n - 1);
	}
	if (e->seqlen == EDIT_SEQ_MAX)
		e->seqlen = 0; /* too long to be a key: forget it */
	return EDIT_NONE;
}

static enum edit_action
feed_control(struct edit *e, unsigned char ch)
{
	switch (ch) {
	case '\r':
	case '\n':
		return EDIT_SUBMIT;
	case 0x01: /* Ctrl-A */
		return move_to(e, 0);
	case 0x05: /* Ctrl-E */
		return move_to(e, e->len);
	case 0x02: /* Ctrl-B */
		return move_to(e, prev_char(e, e->cur));
	case 0x06: /* Ctrl-F */
		return move_to(e, next_char(e, e->cur));
	case 0x08: /* Ctrl-H */
	case 0x7f: /* Backspace */
		return cut(e, prev_char(e, e->cur), e->cur);
	case 0x04: /* Ctrl-D */
		if (e->len == 0)
			return EDIT_EOF;
		return cut(e, e->cur, next_char(e, e->cur));
	case 0x15: /* Ctrl-U */
		return cut(e, 0, e->cur);
	case 0x0b: /* Ctrl-K */
		return cut(e, e->cur, e->len);
	case 0x17: /* Ctrl-W */
		return cut_word(e);
	case 0x10: /* Ctrl-P */
		return history(e, -1);
	case 0x0e: /* Ctrl-N */
		return history(e, 1);
	case 0x0c: /* Ctrl-L */
		return EDIT_REDRAW;
	case '\t':
		return insert(e, " ", 1);
	default:
		return EDIT_NONE;
	}
}

static enum edit_action
feed_plain(struct edit *e, unsigned char ch)
{
	if (ch == 0x1b || utf8_len(ch) > 0) {
		e->seq[0] = (char)ch;
		e->seqlen = 1;
		return EDIT_NONE;
	}
	if (ch >= 0x20 && ch < 0x7f)
		return insert(e, (const char *)&ch, 1);
	return feed_control(e, ch); /* or a stray byte >= 0x80: ignored */
}

enum edit_action
edit_feed(struct edit *e, unsigned char ch)
{
	return e->seqlen > 0 ? feed_seq(e, ch) : feed_plain(e, ch);
}

const char *
edit_line(const struct edit *e, size_t *len)
{
	*len = e->len;
	return e->buf;
}

void
edit_done(struct edit *e)
{
	char *copy;

	if (e->len > 0 &&
	    (e->nhist == 0 || strcmp(e->hist[e->nhist - 1], e->buf) != 0) &&
	    (copy = malloc(e->len + 1)) != NULL) {
		memcpy(copy, e->buf, e->len + 1);
		if (e->nhist == EDIT_HISTORY) {
			free(e->hist[0]);
			memmove(e->hist, e->hist + 1,
			    (EDIT_HISTORY - 1) * sizeof(e->hist[0]));
			e->nhist--;
		}
		e->hist[e->nhist++] = copy;
	}
	e->len = e->cur = 0;
	e->buf[0] = '\0';
	e->hpos = e->nhist;
}

void
edit_view(const struct edit *e, unsigned cols, size_t *start, size_t *end,
    unsigned *cursor_col)
{
	size_t s = 0, n, nx;
	unsigned before, w = 0, cw;

	if (cols < 2)
		cols = 2;
	/* scroll right until the text before the cursor leaves a column */
	before = render_width(e->buf, e->cur);
	for (; before > cols - 1; s = nx) {
		nx = next_char(e, s);
		before -= render_width(e->buf + s, nx - s);
	}
	for (n = s; n < e->len; n = nx) {
		nx = next_char(e, n);
		cw = render_width(e->buf + n, nx - n);
		if (w + cw > cols)
			break;
		w += cw;
	}
	*start = s;
	*end = n;
	*cursor_col = before;
}
