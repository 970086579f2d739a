/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * resp.c - RESP2 encoder and decoder (see resp.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fed/resp.h"

int
resp_command(
    struct buf *b, int argc, const char *const *argv, const size_t *argl)
{
	char num[32];
	int i, n;

	n = snprintf(num, sizeof(num), "*%d\r\n", argc);
	if (buf_append(b, num, (size_t)n) < 0)
		return -1;
	for (i = 0; i < argc; i++) {
		n = snprintf(num, sizeof(num), "$%zu\r\n", argl[i]);
		if (buf_append(b, num, (size_t)n) < 0 ||
		    buf_append(b, argv[i], argl[i]) < 0 ||
		    buf_append(b, "\r\n", 2) < 0)
			return -1;
	}
	return 0;
}

/* The line at p up to CRLF: its length, or -1 if the CRLF is not there. */
static long
line_len(const char *p, size_t len)
{
	const char *cr = memchr(p, '\r', len);

	if (cr == NULL || (size_t)(cr - p) + 1 >= len)
		return -1;
	return cr[1] == '\n' ? cr - p : -2;
}

/*
 * A decimal of the line [p, p+n) that fits a long long (LLONG_MIN too);
 * 0 if it is not one.  Accumulated unsigned: no signed overflow.
 */
static int
parse_ll(const char *p, long n, long long *v)
{
	unsigned long long u = 0, lim = (unsigned long long)LLONG_MAX;
	long i = 0;
	int neg = 0;

	*v = 0;
	if (n > 0 && p[0] == '-')
		neg = 1, i = 1, lim++;
	if (i >= n || n - i > 19)
		return 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		u = u * 10 + (unsigned long long)(p[i] - '0'); /* < 10^19 */
	}
	if (u > lim)
		return 0;
	*v = neg ? (long long)(0 - u) : (long long)u;
	return 1;
}

/*
 * Parse the header of one value at off into a node (a bulk string with its
 * data); returns the new offset, 0 if incomplete, -1 if malformed.
 */
static long
parse_node(const char *p, size_t len, size_t off, struct resp_node *nd)
{
	long long v;
	long l;

	if (off >= len)
		return 0;
	if ((l = line_len(p + off + 1, len - off - 1)) == -1)
		return 0;
	if (l < 0)
		return -1;
	nd->s = p + off + 1;
	nd->len = (size_t)l;
	nd->n = 0;
	switch (p[off]) {
	case '+':
		nd->type = RESP_STRING;
		return (long)off + 1 + l + 2;
	case '-':
		nd->type = RESP_ERROR;
		return (long)off + 1 + l + 2;
	case ':':
		nd->type = RESP_INT;
		return parse_ll(nd->s, l, &nd->n) ? (long)off + 1 + l + 2 : -1;
	case '$':
	case '*':
		if (!parse_ll(nd->s, l, &v) || v < -1)
			return -1;
		off += 1 + (size_t)l + 2;
		nd->len = 0;
		if (v < 0) {
			nd->type = RESP_NIL;
			return (long)off;
		}
		if (p[nd->s - p - 1] == '*') {
			nd->type = RESP_ARRAY;
			nd->n = v;
			return (long)off;
		}
		if (len - off < (size_t)v + 2)
			return 0;
		nd->type = RESP_BULK;
		nd->s = p + off;
		nd->len = (size_t)v;
		return (long)(off + (size_t)v + 2);
	}
	return -1;
}

long
resp_parse(const char *p, size_t len, struct resp_node *nodes, size_t max,
    size_t *count)
{
	long long pending = 1; /* values still to read, depth-first */
	size_t off = 0;
	long r;

	*count = 0;
	while (pending > 0) {
		if (off >= len)
			return 0;
		if (*count >= max)
			return -1;
		r = parse_node(p, len, off, &nodes[*count]);
		if (r <= 0)
			return r;
		off = (size_t)r;
		pending--;
		if (nodes[*count].type == RESP_ARRAY)
			pending += nodes[*count].n;
		(*count)++;
	}
	return (long)off;
}

size_t
resp_skip(const struct resp_node *nodes, size_t count, size_t i)
{
	long long pending = 1;

	if (i >= count)
		return count;
	while (pending > 0 && i < count) {
		pending--;
		if (nodes[i].type == RESP_ARRAY)
			pending += nodes[i].n;
		i++;
	}
	return i;
}
