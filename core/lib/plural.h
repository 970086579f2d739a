/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * plural.h - "1 second", "2 seconds": the noun that goes with a count in
 * every message people read (replies, BYE texts, log lines, warnings).
 */
#ifndef FORKCHAT_PLURAL_H
#define FORKCHAT_PLURAL_H

#define PLURAL(n, one, many) ((n) == 1 ? (one) : (many))

#endif
