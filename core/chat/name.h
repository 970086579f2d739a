/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * name.h - the profile every nickname and room name follows
 * (docs/PROTOCOL.md "Names", docs/SECURITY.md): what is refused,
 * the form that is stored and shown (NFC), and the key names are compared
 * by (UTS #39 skeleton of the NFKC case fold, in NFC).
 *
 * Built on GNU libunistring (classes, normalisation, full case folding)
 * and ICU's spoof checker (confusable skeletons, loaded with dlopen() on
 * the first key): no hand-written tables.  Pure apart from the libraries'
 * allocations and loading; used by the parent, which hands the work to
 * the name helper (server/names.c).
 */
#ifndef FORKCHAT_NAME_H
#define FORKCHAT_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "lib/proto.h"

/* A name as stored and shown (NFC) with its NUL. */
#define NAME_SZ (PROTO_NAME_MAX_BYTES + 1)

/*
 * A key can be longer than its name (Hangul syllables become jamo
 * skeletons, ligatures expand): at most NAME_KEY_MAX bytes, or the name is
 * refused as too long.
 */
#define NAME_KEY_MAX 383
#define NAME_KEYSZ   (NAME_KEY_MAX + 1)

enum name_fault {
	NAME_OK = 0,
	NAME_EMPTY,
	NAME_SLASH,    /* starts with '/' (a command) */
	NAME_RESERVED, /* "-" (or a lookalike): means "nobody" */
	NAME_BAD_UTF8,
	NAME_CONTROL,    /* Cc */
	NAME_SPACE,      /* Zs, Zl, Zp */
	NAME_BIDI,       /* Bidi_Control */
	NAME_INVISIBLE,  /* Cf or Default_Ignorable_Code_Point */
	NAME_UNASSIGNED, /* Cn (incl. noncharacters), Co */
	NAME_MARK_FIRST, /* starts with a combining mark */
	NAME_FOLDS_BAD,  /* its compatibility form has a space or control */
	NAME_TOO_LONG,   /* more than maxchars code points (NFC) */
	NAME_KEY_TOO_LONG,
	NAME_NOMEM
};

/*
 * Check s[0..len) against the profile.  On NAME_OK the NFC form is in
 * nfc (NUL-terminated, at most 4 * maxchars bytes; nfcsz must exceed that)
 * and the key in key (NAME_KEYSZ bytes).  On a fault about one character,
 * *badcp is that code point.
 */
enum name_fault name_prepare(const char *s, size_t len, size_t maxchars,
    char *nfc, size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp);

/*
 * Key of s[0..len) if it is a valid name (of at most PROTO_ROOM_MAX_CHARS
 * characters; returns the key's length); otherwise key is "" and 0 is
 * returned, so it matches nothing.  For looking up names typed by users or
 * sent by other hubs.
 */
size_t name_key(const char *s, size_t len, char key[NAME_KEYSZ]);

/*
 * 1 if s[0..len) holds only characters a name may hold (no control, space,
 * invisible, bidi, unassigned; not "-", no leading '/' or combining mark),
 * in at most PROTO_NAME_MAX_BYTES bytes.  No key is computed: it is the
 * cheap check for showing a name another hub sent.
 */
int name_shown_ok(const char *s, size_t len);

/* Why a name was refused, for an ERR line ("contains U+202E, a bidi..."). */
void name_explain(enum name_fault f, uint32_t cp, char *buf, size_t sz);

/*
 * What name_prepare() calls on a memo miss: name_compute() (the profile,
 * here) unless a backend is set.  The server parent sets the name helper's
 * (server/names.c), so that ICU is loaded in that process only.
 */
typedef enum name_fault
name_backend_fn(const char *s, size_t len, size_t maxchars, char *nfc,
    size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp);
void name_set_backend(name_backend_fn *fn);

/* name_prepare() in this process, without the memo or the backend. */
enum name_fault name_compute(const char *s, size_t len, size_t maxchars,
    char *nfc, size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp);

/* Free ICU's state and unload it (at exit; the next key loads it again). */
void name_cleanup(void);

#endif
