/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fedev.h - the parser of federation events as read from the Redis stream
 * (docs/SCALING.md, docs/SECURITY.md).  Nothing read from Redis is
 * trusted: every field is checked here, with bounds, before fed.c acts on
 * it, and a malformed entry is refused with a reason.
 *
 * Pure: no system calls, no allocation but the name profile's (name.c)
 * (unit-tested and fuzzed alone, fault/fuzz/fuzz_fedev.c).
 */
#ifndef FORKCHAT_FEDEV_H
#define FORKCHAT_FEDEV_H

#include <stddef.h>

#define FEDEV_ORIGIN_MAX   127         /* bytes of "HUB/EPOCH.PID" */
#define FEDEV_HUB_MAX      71          /* bytes of HUB */
#define FEDEV_SEQ_DIGITS   15          /* a sequence number is below 10^15 */
#define FEDEV_TEXT_MAX     (16 * 1024) /* a room line or a whisper's text */
#define FEDEV_SNAPSHOT_MAX (4u << 20)  /* a presence snapshot */
#define FEDEV_MAX          (FEDEV_SNAPSHOT_MAX + 256) /* a whole entry */

/*
 * One event, "ORIGIN SEQ BODY", cut into fields that point into the
 * parsed bytes.  By kind:
 *   'M' f0 room key, f1 line ("MSG|JOIN|PART|OWNER ROOM NICK ...", ROOM
 *       has that key, name.h), f2 ROOM, f3 NICK
 *   'W' f0 hub, f1 from, f2 to, f3 text
 *   'D' f0 room key, f1 by
 *   'O' f0 room key
 *   'P' f0 snapshot (the hub is the origin's)
 *   'S' no field
 */
struct fedev {
	const char *origin, *hub;
	size_t olen, hlen;
	unsigned long long seq; /* 0 only for P and S (not numbered) */
	char kind;
	const char *f[4];
	size_t fl[4];
};

/*
 * Parse and check one stream entry's value.  NULL if ev holds a valid
 * event, else a short static reason ("bad sequence number", ...).
 */
const char *fedev_parse(const char *p, size_t len, struct fedev *ev);

#endif
