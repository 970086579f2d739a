/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fuzz_util.h - shared helpers of the libFuzzer targets: an invariant
 * check that aborts with a readable message, a cursor over the fuzz
 * input, and the list of known, reported bugs in core/ that the targets
 * tolerate unless FUZZ_STRICT=1 is set (so a known bug does not hide new
 * ones; see fault/fuzz/README.md).
 */
#ifndef FORKCHAT_FUZZ_UTIL_H
#define FORKCHAT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "INVARIANT FAILED %s:%d: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

struct fz_in {
	const uint8_t	*p;
	size_t		 len, pos;
};

static inline void
fz_in_init(struct fz_in *in, const uint8_t *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->pos = 0;
}

static inline int
fz_left(const struct fz_in *in)
{
	return in->pos < in->len;
}

static inline uint8_t
fz_u8(struct fz_in *in)
{
	return in->pos < in->len ? in->p[in->pos++] : 0;
}

/* Up to n bytes from the input; returns how many, *out points at them. */
static inline size_t
fz_bytes(struct fz_in *in, size_t n, const char **out)
{
	if (n > in->len - in->pos)
		n = in->len - in->pos;
	*out = (const char *)in->p + in->pos;
	in->pos += n;
	return n;
}

static inline int
fz_strict(void)
{
	static int strict = -1;
	const char *e;

	if (strict < 0)
		strict = (e = getenv("FUZZ_STRICT")) != NULL && e[0] == '1';
	return strict;
}

/* FUZZ_TRACE=1: print what a target does (replaying one input). */
static inline int
fz_trace(void)
{
	static int trace = -1;
	const char *e;

	if (trace < 0)
		trace = (e = getenv("FUZZ_TRACE")) != NULL && e[0] == '1';
	return trace;
}

/*
 * Known bug KB1 (fixed by core/chat/name.c; no target calls this any more):
 * utf8_fold(U+0178 LATIN CAPITAL LETTER Y WITH DIAERESIS) returned U+0179,
 * so the fold was not idempotent and "Ÿ" did not clash with "ÿ".
 */
static inline int
fz_known_quirk_fold(const char *s, size_t len)
{
	size_t i;

	if (fz_strict())
		return 0;
	for (i = 0; i + 1 < len; i++)
		if ((unsigned char)s[i] == 0xc5 &&
		    (unsigned char)s[i + 1] == 0xb8)
			return 1;
	return 0;
}

#endif
