/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nick.h - which slot holds which nickname (nick.c): the nick keys
 * (name.h) of the registered users and of the claims in flight, found
 * through a hash.  At most one slot holds a key.
 */
#ifndef FORKCHAT_NICK_H
#define FORKCHAT_NICK_H

#include <stddef.h>

struct nicks;

struct nicks *nicks_new(int max_slots);
void nicks_free(struct nicks *t);

/* Slot holds key now (it must hold none). */
void nick_add(struct nicks *t, int slot, const char *key);
/* Slot holds no key any more (nothing if it held none). */
void nick_remove(struct nicks *t, int slot);
/* Slot holding key, or -1. */
int nick_find_key(const struct nicks *t, const char *key);
/* Slot holding the key of name, or -1. */
int nick_find(const struct nicks *t, const char *name, size_t len);
/* The key slot holds, or "". */
const char *nick_key(const struct nicks *t, int slot);

#endif
