/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * names.h - the name helper (names.c): a child of the server parent that
 * checks names and makes their keys (chat/name.c) so that the parent never
 * loads ICU; started on demand, closed when idle (docs/ARCHITECTURE.md,
 * "Name helper").
 */
#ifndef FORKCHAT_NAMES_H
#define FORKCHAT_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chat/name.h"

/* Its process name (comm), as tests and bench/memory.py know it. */
#define NAMES_NAME "forkchatd-names"
/* No name checked for this long: the helper is closed (it exits). */
#define NAMES_IDLE_MS 5000

/*
 * name_prepare()'s backend in the parent (name_set_backend()): the same
 * contract, answered by the helper (started if there is none).  If no
 * helper can answer (it cannot be started, or dies twice), NAME_NOMEM.
 */
enum name_fault names_check(const char *s, size_t len, size_t maxchars,
    char *nfc, size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp);

/* From the parent's tick: close the helper once it was idle long enough. */
void names_tick(long long now_ms);

/* pid ended with status: 1 if it was a name helper (logged if it died
 * while in use), else 0. */
int names_reaped(pid_t pid, int status);

/* The live helper's pid, or 0. */
pid_t names_pid(void);

/* At shutdown: close the helper and wait for it. */
void names_stop(void);

#endif
