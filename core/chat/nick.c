/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nick.c - which slot holds which nickname: a chained hash of the nick
 * keys (name.h), chained through the slots.
 *
 * Owns the keys and the hash; what a nickname looks like and whether it
 * is registered or claimed is chat.c's.  Pure: no system call.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/name.h"
#include "chat/nick.h"

struct entry {
	char key[NAME_KEYSZ]; /* "" when the slot holds none */
	int next;             /* hash chain */
};

struct nicks {
	int *hash; /* key hash -> first slot */
	size_t hashsz;
	struct entry *e;
};

struct nicks *
nicks_new(int max_slots)
{
	struct nicks *t;
	size_t i;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->hashsz = (size_t)max_slots * 2 + 1;
	t->hash = malloc(t->hashsz * sizeof(*t->hash));
	t->e = calloc((size_t)max_slots, sizeof(*t->e));
	if (t->hash == NULL || t->e == NULL) {
		nicks_free(t);
		return NULL;
	}
	for (i = 0; i < t->hashsz; i++)
		t->hash[i] = -1;
	for (i = 0; i < (size_t)max_slots; i++)
		t->e[i].next = -1;
	return t;
}

void
nicks_free(struct nicks *t)
{
	if (t == NULL)
		return;
	free(t->hash);
	free(t->e);
	free(t);
}

static size_t
hash_key(const char *key, size_t sz)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % sz;
}

void
nick_add(struct nicks *t, int slot, const char *key)
{
	size_t h = hash_key(key, t->hashsz);

	snprintf(t->e[slot].key, sizeof(t->e[slot].key), "%s", key);
	t->e[slot].next = t->hash[h];
	t->hash[h] = slot;
}

void
nick_remove(struct nicks *t, int slot)
{
	int *p;

	if (t->e[slot].key[0] == '\0')
		return;
	p = &t->hash[hash_key(t->e[slot].key, t->hashsz)];
	while (*p >= 0 && *p != slot)
		p = &t->e[*p].next;
	if (*p == slot)
		*p = t->e[slot].next;
	t->e[slot].key[0] = '\0';
	t->e[slot].next = -1;
}

int
nick_find_key(const struct nicks *t, const char *key)
{
	int s;

	for (s = t->hash[hash_key(key, t->hashsz)]; s >= 0; s = t->e[s].next)
		if (strcmp(t->e[s].key, key) == 0)
			return s;
	return -1;
}

int
nick_find(const struct nicks *t, const char *name, size_t len)
{
	char key[NAME_KEYSZ];

	return name_key(name, len, key) ? nick_find_key(t, key) : -1;
}

const char *
nick_key(const struct nicks *t, int slot)
{
	return t->e[slot].key;
}
