/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * utf8.h - strict UTF-8 decoding and text classification.
 *
 * Pure functions: no allocation, no system calls.  Shared by the server
 * (validating what clients send) and the client (sanitising what it prints).
 */
#ifndef FORKCHAT_UTF8_H
#define FORKCHAT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decode one code point from s[0..len).  Rejects overlong forms, surrogates,
 * values above U+10FFFF and truncated sequences.  Returns the number of bytes
 * consumed (1..4) and stores the code point in *cp, or returns 0 when the
 * bytes at s are not a valid sequence (len == 0 also returns 0).
 */
size_t utf8_decode(const char *s, size_t len, uint32_t *cp);

/* 1 if s[0..len) is entirely valid UTF-8, else 0. */
int utf8_valid(const char *s, size_t len);

/* Number of code points in valid UTF-8 s[0..len). */
size_t utf8_count(const char *s, size_t len);

/* Encode cp into out (at least 4 bytes); returns bytes written (0 if invalid). */
size_t utf8_encode(uint32_t cp, char *out);

/* C0 controls except TAB, DEL, and C1 controls (U+0080..U+009F). */
int utf8_is_control(uint32_t cp);

/* ASCII and common Unicode space characters. */
int utf8_is_space(uint32_t cp);

#endif
