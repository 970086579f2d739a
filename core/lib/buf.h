/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * buf.h - a growable byte queue: append at the tail, consume from the head.
 *
 * Used for every backlog in the system (the parent's per-child output
 * backlog, a child's pending socket output, line assembly).  Pure: only
 * malloc/realloc/free.
 */
#ifndef FORKCHAT_BUF_H
#define FORKCHAT_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
	char *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* bytes in use, counted from data[0] */
	size_t cap;
	size_t keep; /* an empty buffer above this is freed; 0: BUF_KEEP */
};

/* The first size of a buffer (unless a smaller keep): a quiet client's. */
#define BUF_MIN 4096

/* An empty buffer: struct buf b = BUF_INIT; */
#define BUF_INIT  \
	{         \
		0 \
	}

static inline size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}
static inline char *
buf_head(const struct buf *b)
{
	return b->data + b->off;
}
/* Free bytes at the tail (after buf_reserve()). */
static inline size_t
buf_room(const struct buf *b)
{
	return b->cap - b->len;
}

/* Append n bytes.  Returns 0, or -1 (errno ENOMEM) leaving b unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);

/*
 * buf_append() with its common case inline: room at the tail.  The fan-out
 * appends every delivered line to each member's queue (fanout.c), where
 * the calls cost more than the copy.  0, or -1 as buf_append().
 */
static inline int
buf_put(struct buf *b, const void *p, size_t n)
{
	if (n > 0 && b->cap - b->len >= n) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		return 0;
	}
	return buf_append(b, p, n);
}

/* Make room for n more bytes at the tail; returns the tail or NULL. */
char *buf_reserve(struct buf *b, size_t n);
/* Commit n bytes written into the space buf_reserve() returned. */
void buf_commit(struct buf *b, size_t n);

/* Drop n bytes from the head (n <= buf_used). */
void buf_consume(struct buf *b, size_t n);

/* Empty the buffer; keep its memory unless it is larger than its keep. */
void buf_reset(struct buf *b);

/*
 * The most an empty b keeps (buf_consume() to empty, buf_reset()); larger
 * is freed.  Default (0) 64 KiB: for a buffer the process has one of.  One
 * per client takes a small keep, so that a burst's memory goes back.
 */
static inline void
buf_set_keep(struct buf *b, size_t keep)
{
	b->keep = keep;
}
void buf_free(struct buf *b);

#endif
