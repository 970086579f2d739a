/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * addrlim.h - per-address connection accounting for the server parent
 * (docs/SECURITY.md): which address group a peer belongs to, whether
 * it is exempt, how many connections (and how many still without a
 * nickname) each group holds, and a rate limit for the refusal log lines.
 *
 * Pure: no system calls (inet_pton/inet_ntop only), so the unit tests
 * drive it directly.  The server decides what to do with the counts.
 */
#ifndef FORKCHAT_ADDRLIM_H
#define FORKCHAT_ADDRLIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * An address in one 16-byte form: IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one table and one prefix match serve both.
 */
struct addr16 {
	uint8_t b[16];
};

/* A network: address and prefix length in bits of the 16-byte form. */
struct addr_net {
	struct addr16 a;
	int bits; /* 0..128; an IPv4 /p is 96 + p */
};

/*
 * The peer's address in 16-byte form; -1 for a family that is neither
 * AF_INET nor AF_INET6.
 */
int addrlim_addr(const struct sockaddr_storage *ss, struct addr16 *out);

/*
 * The group a peer is counted in: an IPv4 address (plain or IPv4-mapped)
 * alone, an IPv6 address by its /64 (the block one site gets).
 */
void addrlim_group(const struct addr16 *a, struct addr16 *key);

/*
 * "A", "A/P" (IPv4 or IPv6) into n; 0 on success, -1 if malformed.  The
 * host bits of A are cleared.
 */
int addrlim_net_parse(const char *s, struct addr_net *n);
/* 1 if a is inside n. */
int addrlim_net_match(const struct addr_net *n, const struct addr16 *a);
/* "127.0.0.0/8" or "::1/128" into out. */
void addrlim_net_format(const struct addr_net *n, char *out, size_t outsz);

/* ---- the table: connections per group ------------------------------ */

struct addrlim;

/*
 * A table for at most max_groups groups at once, its hash keyed with seed
 * (pick it at random: peers must not be able to choose colliding
 * addresses).  NULL without memory.
 */
struct addrlim *addrlim_new(int max_groups, uint64_t seed);
void addrlim_free(struct addrlim *t);
/* Connections and unregistered connections of key (0 and 0 if unknown). */
void addrlim_get(
    const struct addrlim *t, const struct addr16 *key, int *total, int *unreg);
/* A new connection of key, unregistered.  -1 if the table is full. */
int addrlim_add(struct addrlim *t, const struct addr16 *key);
/* One of key's unregistered connections registered (or stopped waiting). */
void addrlim_registered(struct addrlim *t, const struct addr16 *key);
/* One of key's connections ended. */
void addrlim_remove(struct addrlim *t, const struct addr16 *key);
/* Groups in the table now. */
int addrlim_groups(const struct addrlim *t);

/* ---- rate limit for refusal log lines ------------------------------ */

enum addrlim_reason {
	ADDRLIM_SERVER_FULL,
	ADDRLIM_PER_ADDR,       /* --max-per-addr */
	ADDRLIM_UNREG_PER_ADDR, /* --max-unreg-per-addr */
	ADDRLIM_NREASONS
};

/* Log spelling: "server-full", "too-many-connections", ... */
const char *addrlim_reason_name(enum addrlim_reason r);

#define ADDRLIM_LOG_BURST     20    /* refusal lines per window */
#define ADDRLIM_LOG_WINDOW_MS 10000 /* then one summary line */

struct addrlim_log {
	long long window_start; /* ms; 0 = no window open */
	int logged;             /* lines logged in this window */
	unsigned long long suppressed[ADDRLIM_NREASONS];
};

/*
 * Count a refusal at now_ms: 1 if it may be logged on its own line, 0 if
 * it is only counted (the burst of this window is used up).
 */
int addrlim_log_allow(
    struct addrlim_log *l, enum addrlim_reason r, long long now_ms);
/*
 * Once the window is over: if refusals were counted but not logged,
 * write the summary ("N refusals not logged one by one in the last S s:
 * server-full=... ") into out and return N; else 0.  Starts a new window.
 */
unsigned long long addrlim_log_summary(
    struct addrlim_log *l, long long now_ms, char *out, size_t outsz);

#endif
