/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * buf.c - growable byte queue.
 *
 * Consumption only advances an offset; the live bytes are moved to the
 * front lazily, when more room is needed, so a drain loop costs no memmove
 * per read.  Large idle buffers are released so that a thousand quiet
 * clients do not pin memory that one burst needed once: above 64 KiB by
 * default, above a smaller keep (buf_set_keep()) for the buffers there is
 * one of per client (issue 17: a per-client buffer kept at 64 KiB after a
 * burst was 64 kB of the tree per client).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sys/failpoint.h"

#define BUF_KEEP (64 * 1024) /* larger empty buffers are freed (default) */

char *
buf_reserve(struct buf *b, size_t n)
{
	size_t used = buf_used(b), ncap;
	char *p;

	if (b->cap - b->len >= n)
		return b->data + b->len;
	if (b->off > 0 && b->cap - used >= n) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		return b->data + b->len;
	}
	/* a small keep is also the first size: a quiet client's buffer */
	ncap = b->cap                    ? b->cap :
	    b->keep && b->keep < BUF_MIN ? b->keep :
	                                   BUF_MIN;
	while (ncap - used < n) {
		if (ncap > (size_t)-1 / 2) {
			errno = ENOMEM;
			return NULL;
		}
		ncap *= 2;
	}
	if (FAIL("forkchatd/buf/malloc", ENOMEM) || (p = malloc(ncap)) == NULL)
		return NULL;
	if (used)
		memcpy(p, b->data + b->off, used);
	free(b->data);
	b->data = p;
	b->off = 0;
	b->len = used;
	b->cap = ncap;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0)
		return 0;
	if ((dst = buf_reserve(b, n)) == NULL)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		buf_reset(b);
}

void
buf_reset(struct buf *b)
{
	b->off = b->len = 0;
	if (b->cap > (b->keep ? b->keep : BUF_KEEP))
		buf_free(b);
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
