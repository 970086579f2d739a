/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * resp.h - the Redis wire protocol (RESP2): encode a command, decode a
 * reply.  Pure: no system calls, no allocation; the bridge (bridge.c) owns
 * the sockets.  Written here instead of linking hiredis so that a lone hub
 * has no Redis library at all (docs/SCALING.md); checked against hiredis
 * by core/tests/test_resp_hiredis.c.
 */
#ifndef FORKCHAT_RESP_H
#define FORKCHAT_RESP_H

#include <stddef.h>

#include "lib/buf.h"

enum resp_type {
	RESP_STRING = 1, /* +OK          s, len */
	RESP_ERROR,      /* -ERR ...     s, len */
	RESP_INT,        /* :12          n */
	RESP_BULK,       /* $3 abc       s, len */
	RESP_NIL,        /* $-1 or *-1 */
	RESP_ARRAY,      /* *2 ...       n children follow (pre-order) */
};

struct resp_node {
	enum resp_type type;
	long long n;
	const char *s; /* points into the parsed buffer */
	size_t len;
};

/*
 * Append "*argc $len arg ..." to b.  Returns 0, or -1 when out of memory.
 */
int resp_command(
    struct buf *b, int argc, const char *const *argv, const size_t *argl);

/*
 * Decode one reply at p (len bytes) into nodes (pre-order: an array node
 * is followed by its children).  Returns the bytes the reply takes, 0 if
 * it is not complete yet, or -1 if it is malformed or needs more than max
 * nodes.  *count gets the number of nodes.
 */
long resp_parse(const char *p, size_t len, struct resp_node *nodes, size_t max,
    size_t *count);

/* Index of the node after node i and all its children. */
size_t resp_skip(const struct resp_node *nodes, size_t count, size_t i);

#endif
