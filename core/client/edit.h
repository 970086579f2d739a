/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * edit.h - the client's input line editor (keys in, line and view out).
 *
 * Pure: no system calls, no terminal I/O.  The network process feeds it
 * the raw bytes the keyboard process read from the terminal and asks it
 * what to draw; core/tests/test_edit.c drives it with byte strings.
 * The buffer only ever holds whole, valid UTF-8 characters, so every
 * cursor move and deletion works on characters, never on bytes.
 */
#ifndef FORKCHAT_EDIT_H
#define FORKCHAT_EDIT_H

#include <stddef.h>

#define EDIT_MAX     4000 /* bytes in the line (the server's largest) */
#define EDIT_HISTORY 100  /* lines kept for Up/Down */
#define EDIT_SEQ_MAX 16   /* longest escape sequence understood */

enum edit_action {
	EDIT_NONE,   /* nothing visible changed */
	EDIT_REDRAW, /* the line or the cursor changed: draw it again */
	EDIT_SUBMIT, /* Enter: edit_line() is the line; then edit_done() */
	EDIT_EOF     /* Ctrl-D on an empty line: the user leaves */
};

struct edit {
	char buf[EDIT_MAX + 1];
	size_t len;
	size_t cur; /* byte offset of the cursor, on a character boundary */
	char seq[EDIT_SEQ_MAX]; /* an escape or UTF-8 sequence being read */
	size_t seqlen;
	char *hist[EDIT_HISTORY]; /* oldest first, malloc'd */
	int nhist;
	int hpos;                 /* nhist: the line being typed */
	char draft[EDIT_MAX + 1]; /* the line being typed, while browsing */
	size_t draftlen;
};

void edit_init(struct edit *e);
void edit_free(struct edit *e);

/* Feed one byte from the keyboard. */
enum edit_action edit_feed(struct edit *e, unsigned char ch);

/* The submitted line (after EDIT_SUBMIT), NUL-terminated, and its length. */
const char *edit_line(const struct edit *e, size_t *len);

/* Forget the submitted line; remember it for Up/Down if it is not empty. */
void edit_done(struct edit *e);

/*
 * What to draw in cols columns: the part of the line that holds the cursor
 * (scrolled horizontally when the line is wider), as buf[*start..*end),
 * and the cursor's column inside that part.
 */
void edit_view(const struct edit *e, unsigned cols, size_t *start, size_t *end,
    unsigned *cursor_col);

#endif
