/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * render.c - turn one forkchatd protocol line into text for people.
 *
 * Owns the client's output format: one friendly line per server line
 * (docs/PROTOCOL.md, "Server lines"), with optional ANSI colours.
 * Must never make a system call or allocate: the client calls it for every
 * line and the unit tests call it with garbage.  Must never copy a byte
 * from the network to the output unchecked: every field goes through
 * rb_clean(), which is what stops terminal escape injection by other users.
 */
#include <langinfo.h>
#include <locale.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "client/render.h"
#include "lib/utf8.h"

#define SGR_RESET      "\033[0m"
#define SGR_BOLD       "\033[1m"
#define SGR_DIM        "\033[2m"
#define SGR_RED        "\033[1;31m"
#define SGR_GREEN      "\033[32m"
#define SGR_YELLOW     "\033[33m"
#define SGR_MAGENTA    "\033[35m"
#define SGR_CYAN       "\033[36m"
#define RENDER_RESERVE (sizeof(SGR_RESET) - 1)
#define RENDER_MAXF    3

/* Output under construction: p[0..len) plus a NUL, never past cap. */
struct rb {
	char *p;
	size_t len;
	size_t cap;
	size_t reserve; /* bytes kept free for the final reset */
	int color;
	int cut; /* something did not fit: append no more */
};

/* A piece of the input line. */
struct span {
	const char *s;
	size_t n;
};

/* Append all of s[0..n) or nothing, so UTF-8 and SGR codes stay whole. */
static void
rb_put(struct rb *b, const char *s, size_t n)
{
	if (b->cut || b->cap == 0 || b->len + n + b->reserve + 1 > b->cap) {
		b->cut = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
rb_str(struct rb *b, const char *s)
{
	rb_put(b, s, strlen(s));
}

static void
rb_sgr(struct rb *b, const char *sgr)
{
	if (b->color)
		rb_str(b, sgr);
}

/* Bidi embedding/override/isolate controls can reorder what follows. */
static int
is_bidi_control(uint32_t cp)
{
	return cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

/* Append network text s[0..n), sanitised. */
static void
rb_clean(struct rb *b, const char *s, size_t n)
{
	uint32_t cp;
	size_t i = 0, k;

	while (i < n) {
		k = utf8_decode(s + i, n - i, &cp);
		if (k == 0) {
			rb_str(b, "\xef\xbf\xbd"); /* U+FFFD */
			i++;
			continue;
		}
		if (cp == '\t')
			rb_str(b, " ");
		else if (utf8_is_control(cp) || is_bidi_control(cp))
			rb_str(b, "?");
		else
			rb_put(b, s + i, k);
		i += k;
	}
}

static void
rb_span(struct rb *b, struct span sp)
{
	rb_clean(b, sp.s, sp.n);
}

/* Append span in a colour (then reset). */
static void
rb_span_sgr(struct rb *b, const char *sgr, struct span sp)
{
	rb_sgr(b, sgr);
	rb_span(b, sp);
	rb_sgr(b, SGR_RESET);
}

static int
span_is(struct span sp, const char *s)
{
	return sp.n == strlen(s) && memcmp(sp.s, s, sp.n) == 0;
}

/*
 * Split line into a keyword, nf non-empty space-separated fields and the
 * rest as text.  Returns 0, or -1 if a field is missing.
 */
static int
split_line(
    const char *line, size_t len, int nf, struct span *f, struct span *text)
{
	size_t i = 0, start;
	int k;

	for (k = 0; k <= nf; k++) { /* f[0] is the keyword */
		start = i;
		while (i < len && line[i] != ' ')
			i++;
		if (i == start)
			return -1;
		f[k].s = line + start;
		f[k].n = i - start;
		if (i < len)
			i++; /* the single separator */
	}
	text->s = line + i;
	text->n = len - i;
	return 0;
}

/* ---- one renderer per keyword: f[1..] are the fields ------------------ */

static void
r_hello(struct rb *b, const struct span *f, struct span text)
{
	rb_sgr(b, SGR_GREEN);
	rb_str(b, "* connected to ");
	rb_span(b, f[1]);
	if (text.n > 0) {
		rb_str(b, ": ");
		rb_span(b, text);
	}
	rb_sgr(b, SGR_RESET);
}

static void
r_ok(struct rb *b, const struct span *f, struct span text)
{
	static const struct {
		const char *what, *msg;
	} oks[] = {
		{ "NICK", "you are now known as " },
		{ "JOIN", "you are now in room " },
		{ "ADD", "created room " },
		{ "RM", "removed room " },
		{ "WHISPER", "whispered to " },
	};
	size_t i;

	rb_sgr(b, SGR_GREEN);
	rb_str(b, "* ");
	for (i = 0; i < sizeof(oks) / sizeof(oks[0]); i++)
		if (span_is(f[1], oks[i].what))
			break;
	if (i < sizeof(oks) / sizeof(oks[0]))
		rb_str(b, oks[i].msg);
	else {
		rb_str(b, "ok: ");
		rb_span(b, f[1]);
		rb_str(b, " ");
	}
	rb_span(b, text);
	rb_sgr(b, SGR_RESET);
}

static void
r_msg(struct rb *b, const struct span *f, struct span text)
{
	rb_sgr(b, SGR_CYAN);
	rb_str(b, "[");
	rb_span(b, f[1]);
	rb_str(b, "]");
	rb_sgr(b, SGR_RESET);
	rb_str(b, " <");
	rb_span_sgr(b, SGR_BOLD, f[2]);
	rb_str(b, "> ");
	rb_span(b, text);
}

static void
r_whisper(struct rb *b, const struct span *f, struct span text)
{
	rb_sgr(b, SGR_MAGENTA);
	rb_str(b, "[whisper] <");
	rb_span(b, f[1]);
	rb_str(b, "> ");
	rb_span(b, text);
	rb_sgr(b, SGR_RESET);
}

/* "[room] * nick <what>" in dim: the shape of every room notice. */
static void
notice(struct rb *b, struct span room, struct span nick, const char *what)
{
	rb_sgr(b, SGR_DIM);
	rb_str(b, "[");
	rb_span(b, room);
	rb_str(b, "] * ");
	rb_span(b, nick);
	rb_str(b, what);
	rb_sgr(b, SGR_RESET);
}

static void
r_join(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	notice(b, f[1], f[2], " joined");
}

static void
r_part(struct rb *b, const struct span *f, struct span text)
{
	if (span_is(f[3], "quit") && text.n > 0) { /* /quit TEXT */
		rb_sgr(b, SGR_DIM);
		rb_str(b, "[");
		rb_span(b, f[1]);
		rb_str(b, "] * ");
		rb_span(b, f[2]);
		rb_str(b, " quit (");
		rb_span(b, text);
		rb_str(b, ")");
		rb_sgr(b, SGR_RESET);
	} else if (span_is(f[3], "quit"))
		notice(b, f[1], f[2], " quit");
	else if (span_is(f[3], "disconnected"))
		notice(b, f[1], f[2], " disconnected");
	else if (span_is(f[3], "left"))
		notice(b, f[1], f[2], " left");
	else {
		notice(b, f[1], f[2], " left (");
		rb_span(b, f[3]);
		rb_str(b, ")");
	}
}

static void
r_removed(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	rb_sgr(b, SGR_YELLOW);
	rb_str(b, "* room ");
	rb_span(b, f[1]);
	rb_str(b, " was removed by ");
	rb_span(b, f[2]);
	rb_str(b, "; you are back in the lobby");
	rb_sgr(b, SGR_RESET);
}

static void
r_owner(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	notice(b, f[1], f[2], " now owns this room");
}

static void
r_room(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	rb_str(b, "  ");
	rb_span_sgr(b, SGR_CYAN, f[1]);
	rb_str(b, "  members: ");
	rb_span(b, f[2]);
	rb_str(b, "  owner: ");
	if (span_is(f[3], "-"))
		rb_str(b, "(none)");
	else
		rb_span(b, f[3]);
}

static void
r_user(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	rb_str(b, "  ");
	rb_span_sgr(b, SGR_BOLD, f[1]);
	rb_str(b, "  in ");
	rb_span(b, f[2]);
}

static void
r_stat(struct rb *b, const struct span *f, struct span text)
{
	(void)text;
	rb_str(b, "  ");
	rb_span_sgr(b, SGR_BOLD, f[1]);
	rb_str(b, " ");
	rb_span(b, f[2]);
}

static void
r_end(struct rb *b, const struct span *f, struct span text)
{
	if (span_is(f[1], "HELP"))
		return; /* the help lines say it all */
	rb_sgr(b, SGR_DIM);
	if (span_is(f[1], "LIST"))
		rb_str(b, "* rooms: ");
	else if (span_is(f[1], "USERS"))
		rb_str(b, "* users: ");
	else if (span_is(f[1], "STATS"))
		rb_str(b, "* statistics: ");
	else {
		rb_str(b, "* end of ");
		rb_span(b, f[1]);
		rb_str(b, " ");
	}
	rb_span(b, text);
	rb_sgr(b, SGR_RESET);
}

static void
r_help(struct rb *b, const struct span *f, struct span text)
{
	(void)f;
	rb_str(b, "  ");
	rb_span(b, text);
}

static void
r_err(struct rb *b, const struct span *f, struct span text)
{
	rb_sgr(b, SGR_RED);
	rb_str(b, "error: ");
	if (text.n > 0) {
		rb_span(b, text);
		rb_str(b, " ");
	}
	rb_str(b, "(");
	rb_span(b, f[1]);
	rb_str(b, " ");
	rb_span(b, f[2]);
	rb_str(b, ")");
	rb_sgr(b, SGR_RESET);
}

/* "* LEAD text (CODE)" in yellow: how BYE and NOTICE lines read. */
static void
r_starred(
    struct rb *b, const char *lead, const struct span *f, struct span text)
{
	rb_sgr(b, SGR_YELLOW);
	rb_str(b, lead);
	if (text.n > 0) {
		rb_span(b, text);
		rb_str(b, " ");
	}
	rb_str(b, "(");
	rb_span(b, f[1]);
	rb_str(b, ")");
	rb_sgr(b, SGR_RESET);
}

static void
r_bye(struct rb *b, const struct span *f, struct span text)
{
	r_starred(b, "* server closed the connection: ", f, text);
}

static void
r_notice(struct rb *b, const struct span *f, struct span text)
{
	r_starred(b, "* ", f, text);
}

/* Keyword, number of fields after it, renderer; the rest is free text. */
static const struct keyword {
	const char *kw;
	int nf;
	void (*fn)(struct rb *, const struct span *, struct span);
} keywords[] = {
	{ "HELLO", 1, r_hello },
	{ "OK", 1, r_ok },
	{ "MSG", 2, r_msg },
	{ "WHISPER", 1, r_whisper },
	{ "JOIN", 2, r_join },
	{ "PART", 3, r_part },
	{ "REMOVED", 2, r_removed },
	{ "OWNER", 2, r_owner },
	{ "ROOM", 3, r_room },
	{ "USER", 2, r_user },
	{ "STAT", 2, r_stat },
	{ "END", 1, r_end },
	{ "HELP", 0, r_help },
	{ "ERR", 2, r_err },
	{ "BYE", 1, r_bye },
	{ "NOTICE", 1, r_notice },
};

static const struct keyword *
find_keyword(const char *line, size_t len)
{
	size_t i, n;

	for (n = 0; n < len && line[n] != ' '; n++)
		;
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (strlen(keywords[i].kw) == n &&
		    memcmp(keywords[i].kw, line, n) == 0)
			return &keywords[i];
	return NULL;
}

size_t
render_line(const char *line, size_t len, int color, char *out, size_t outsz)
{
	struct rb b = { out, 0, outsz, 0, color, 0 };
	struct span f[RENDER_MAXF + 1], text;
	const struct keyword *k;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (color)
		b.reserve = RENDER_RESERVE;
	k = find_keyword(line, len);
	if (k != NULL && split_line(line, len, k->nf, f, &text) == 0)
		k->fn(&b, f, text);
	else
		rb_clean(&b, line, len); /* unknown or truncated */
	if (color && b.cut) {            /* cut short, maybe inside a colour */
		b.reserve = 0;
		b.cut = 0;
		rb_str(&b, SGR_RESET);
	}
	return b.len;
}

enum render_kind
render_classify(const char *line, size_t len, int *code)
{
	struct span f[RENDER_MAXF + 1], text;
	size_t i;
	int c = 0;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (split_line(line, len, 0, f, &text) == -1)
		return RENDER_OTHER;
	if (span_is(f[0], "HELLO"))
		return RENDER_HELLO;
	if (span_is(f[0], "BYE"))
		return (split_line(line, len, 1, f, &text) == 0 &&
		           span_is(f[1], "QUIT")) ?
		    RENDER_BYE_QUIT :
		    RENDER_BYE_OTHER;
	if (span_is(f[0], "OK"))
		return (split_line(line, len, 1, f, &text) == 0 &&
		           span_is(f[1], "NICK")) ?
		    RENDER_NICK_OK :
		    RENDER_OTHER;
	if (!span_is(f[0], "ERR"))
		return RENDER_OTHER;
	if (split_line(line, len, 1, f, &text) == 0 && f[1].n <= 4)
		for (i = 0; i < f[1].n; i++) {
			if (f[1].s[i] < '0' || f[1].s[i] > '9') {
				c = 0;
				break;
			}
			c = c * 10 + (f[1].s[i] - '0');
		}
	if (code != NULL)
		*code = c;
	return RENDER_ERR;
}

size_t
render_sanitize(const char *in, size_t len, char *out, size_t outsz)
{
	struct rb b = { out, 0, outsz, 0, 0, 0 };

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	rb_clean(&b, in, len);
	return b.len;
}

size_t
render_own(const char *room, const char *nick, const char *to, const char *text,
    size_t len, int color, char *out, size_t outsz)
{
	struct rb b = { out, 0, outsz, color ? RENDER_RESERVE : 0, color, 0 };
	struct span r = { room, strlen(room) }, n = { nick, strlen(nick) };

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	rb_sgr(&b, SGR_GREEN);
	rb_str(&b, "> ");
	rb_sgr(&b, SGR_RESET);
	if (to != NULL) {
		rb_sgr(&b, SGR_MAGENTA);
		rb_str(&b, "[whisper to ");
		rb_clean(&b, to, strlen(to));
		rb_str(&b, "] <");
		rb_span(&b, n);
		rb_str(&b, "> ");
		rb_clean(&b, text, len);
		rb_sgr(&b, SGR_RESET);
	} else {
		rb_sgr(&b, SGR_CYAN);
		rb_str(&b, "[");
		rb_span(&b, r);
		rb_str(&b, "]");
		rb_sgr(&b, SGR_RESET);
		rb_str(&b, " <");
		rb_span_sgr(&b, SGR_GREEN, n);
		rb_str(&b, "> ");
		rb_clean(&b, text, len);
	}
	if (color && b.cut) {
		b.reserve = 0;
		b.cut = 0;
		rb_str(&b, SGR_RESET);
	}
	return b.len;
}

/* ---- display width and wrapping --------------------------------------- */

int
render_locale(void)
{
	const char *cs;

	/*
	 * The wire is UTF-8 whatever the user's locale says, so widths must
	 * be UTF-8 widths: keep the user's LC_CTYPE if it is UTF-8 (its
	 * tables are the ones the terminal most likely shares), otherwise
	 * use C.UTF-8, which glibc always has.
	 */
	if (setlocale(LC_CTYPE, "") != NULL) {
		cs = nl_langinfo(CODESET);
		if (cs != NULL && strcmp(cs, "UTF-8") == 0)
			return 0;
	}
	return setlocale(LC_CTYPE, "C.UTF-8") != NULL ? 0 : -1;
}

unsigned
render_cp_width(uint32_t cp)
{
	int w;

	if (cp == 0xfe0f)
		return 1;
	w = wcwidth((wchar_t)cp);
	return w < 0 ? 2u : (unsigned)w;
}

/* Length of the SGR sequence at s[0..len) (s[0] is ESC). */
static size_t
sgr_len(const char *s, size_t len)
{
	size_t k;

	for (k = 1; k < len && s[k] != 'm'; k++)
		;
	return k < len ? k + 1 : len;
}

unsigned
render_width(const char *s, size_t len)
{
	unsigned cols = 0;
	uint32_t cp;
	size_t i = 0, k;

	while (i < len) {
		if (s[i] == '\033') {
			i += sgr_len(s + i, len - i);
			continue;
		}
		k = utf8_decode(s + i, len - i, &cp);
		cols += k == 0 ? 1u : render_cp_width(cp);
		i += k == 0 ? 1 : k;
	}
	return cols;
}

size_t
render_wrap(const char *in, size_t len, unsigned width, char *out, size_t outsz)
{
	struct rb b = { out, 0, outsz, 0, 0, 0 };
	unsigned col = 0, w;
	uint32_t cp;
	size_t i = 0, k;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	if (width != 0 && width < RENDER_WRAP_MIN)
		width = RENDER_WRAP_MIN;
	while (i < len && !b.cut) {
		if (in[i] == '\033') { /* our own colour code: no width */
			k = sgr_len(in + i, len - i);
			rb_put(&b, in + i, k);
			i += k;
			continue;
		}
		k = utf8_decode(in + i, len - i, &cp);
		w = k == 0 ? 1u : render_cp_width(cp);
		k = k == 0 ? 1 : k;
		if (width != 0 && col + w > width) {
			rb_str(&b, "\n" RENDER_CONT);
			col = RENDER_CONT_COLS;
		}
		rb_put(&b, in + i, k);
		col += w;
		i += k;
	}
	return b.len;
}
