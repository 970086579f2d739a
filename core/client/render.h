/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * render.h - turn one forkchatd protocol line into text for people.
 *
 * Pure functions: no allocation, no system calls, so the client's printing
 * rules are unit-tested without a terminal (core/tests/test_render.c).
 * Everything that came from the network is sanitised: control characters
 * (C0, DEL, C1, ESC), bidirectional overrides and invalid UTF-8 never reach
 * the terminal.  The only escape sequences in the output are the SGR colour
 * codes render itself adds, and only when asked to.
 */
#ifndef FORKCHAT_RENDER_H
#define FORKCHAT_RENDER_H

#include <stddef.h>
#include <stdint.h>

/* A rendered line never needs more than this for any server line. */
#define RENDER_OUT_MAX 32768

/* What a server line means to the client's state machine. */
enum render_kind {
	RENDER_OTHER = 0,
	RENDER_HELLO,    /* HELLO: connected, ask for a nickname */
	RENDER_NICK_OK,  /* OK NICK: registration done */
	RENDER_ERR,      /* ERR: the last line was refused */
	RENDER_BYE_QUIT, /* BYE QUIT: the server confirms our /quit */
	RENDER_BYE_OTHER /* any other BYE (SHUTDOWN, SERVER_FULL, ...) */
};

/*
 * Render line[0..len) (without its '\n'; a trailing '\r' is ignored) into
 * out, which holds outsz bytes.  With color != 0, ANSI SGR codes are added.
 * The result is always NUL-terminated (if outsz > 0), never split inside a
 * UTF-8 sequence, and cut short if out is too small.  Returns its length;
 * 0 means "print nothing" (e.g. END HELP, an empty line).
 */
size_t
render_line(const char *line, size_t len, int color, char *out, size_t outsz);

/*
 * Classify line[0..len).  For RENDER_ERR, *code (if code != NULL) receives
 * the numeric error code (0 if it is missing or garbled).
 */
enum render_kind render_classify(const char *line, size_t len, int *code);

/*
 * Copy in[0..len) to out as printable UTF-8: TAB becomes a space, other
 * control characters and bidi overrides become '?', each invalid byte
 * becomes U+FFFD.  NUL-terminates; returns the output length.
 */
size_t render_sanitize(const char *in, size_t len, char *out, size_t outsz);

/*
 * Your own message as you sent it, in the format others see it, marked as
 * yours with a leading "> " (which no server line renders to):
 * "> [room] <nick> text", or with to != NULL a whisper:
 * "> [whisper to TO] <nick> text".  Sanitised like everything else.
 */
size_t render_own(const char *room, const char *nick, const char *to,
    const char *text, size_t len, int color, char *out, size_t outsz);

/*
 * Display width.  Columns come from wcwidth(3), so the caller must have
 * selected a UTF-8 LC_CTYPE first (render_locale()).  A code point wcwidth
 * does not know counts as 2 columns and U+FE0F (which turns a narrow
 * symbol into a wide emoji on many terminals) as 1: overestimating only
 * wraps early, underestimating would let the terminal wrap on its own.
 */
int render_locale(void); /* 0, or -1 if no UTF-8 locale exists */
unsigned render_cp_width(uint32_t cp);
/* Columns of s[0..len), skipping the SGR sequences render adds. */
unsigned render_width(const char *s, size_t len);

/*
 * Continuation marker of a wrapped line: no first line ever starts with
 * three spaces (every rendered line starts with '[', '*', '>', "error:" or
 * two spaces and a name that cannot hold a space), so a line that begins
 * with RENDER_CONT belongs to the line above it, whatever the sender wrote.
 */
#define RENDER_CONT      "   | "
#define RENDER_CONT_COLS 5u
#define RENDER_WRAP_MIN  16u /* narrower terminals are treated as 16 wide */

/*
 * Copy the rendered line in[0..len) to out, breaking it so that no screen
 * row is wider than width columns: each break is "\n" RENDER_CONT.
 * width 0 copies without breaking.  Never splits a UTF-8 sequence or an
 * SGR code; NUL-terminates; cut short if out is too small (RENDER_WRAP_OUT
 * is always enough for a line from render_line).  Returns the length.
 */
#define RENDER_WRAP_OUT (4 * RENDER_OUT_MAX)
size_t render_wrap(
    const char *in, size_t len, unsigned width, char *out, size_t outsz);

#endif
