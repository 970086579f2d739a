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

#endif
