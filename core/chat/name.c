/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * name.c - the name profile (name.h): one place decides what a nickname or
 * room name may contain and when two names are the same.
 *
 * Modelled on RFC 8265 (PRECIS UsernameCaseMapped) and Unicode UTS #39:
 * control, space, format, default-ignorable, bidi control, unassigned and
 * private-use code points are refused (anything invisible could make two
 * names look alike); the name is stored and shown in NFC; two names are the
 * same when their keys are, the key being the UTS #39 confusable skeleton
 * of the NFKC full case fold, recomposed to NFC.  So "bob" and "BOB",
 * "Σοφία" and "ΣΟΦΊΑ", "µu" and "μu", Latin "bob" and "bоb" with a
 * Cyrillic о, all have one key: only one of each can exist.
 *
 * The character data comes from libunistring and ICU (their Unicode
 * versions are those of the Debian packages), never from tables of ours.
 *
 * ICU is loaded with dlopen() on the first key, not linked: only the
 * process that computes keys maps it.  In the server that is the name
 * helper (server/names.c, name_set_backend()), which exits when idle, so
 * the parent never maps ICU, libstdc++ and their relocated pages: 3-4 MB
 * of the parent's PSS when it linked them (issue 17, bench/memory.py).
 * The library's soname and symbols are those of the headers we were
 * built with (libicui18n.so.72, uspoof_open_72, ...), as linking would
 * pin them.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unicode/uclean.h>
#include <unicode/uspoof.h>
#include <unicode/uvernum.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "chat/name.h"
#include "lib/proto.h"

static USpoofChecker *spoof;
static name_backend_fn *backend; /* NULL: compute here */

/* "uspoof_open" -> "uspoof_open_72": ICU's renaming macros, as a string */
#define ICU_STR2(x) #x
#define ICU_STR(x)  ICU_STR2(x)
#define ICU_LIB     "libicui18n.so." ICU_STR(U_ICU_VERSION_MAJOR_NUM)

/* The four ICU functions we use, from dlopen(ICU_LIB). */
static struct {
	void *lib;
	USpoofChecker *(*open)(UErrorCode *);
	int32_t (*skeleton)(const USpoofChecker *, uint32_t, const char *,
	    int32_t, char *, int32_t, UErrorCode *);
	void (*close)(USpoofChecker *);
	void (*cleanup)(void);
} icu;

/* dlsym into a function pointer (POSIX's idiom: no object-to-function
 * pointer cast). */
static int
icu_sym(void *fp, const char *name)
{
	void *p = dlsym(icu.lib, name);

	memcpy(fp, &p, sizeof(p));
	return p != NULL ? 0 : -1;
}

/* Load ICU (once): 0, or -1 (then no key can be made: NAME_NOMEM). */
static int
icu_load(void)
{
	if (icu.lib != NULL)
		return 0;
	if ((icu.lib = dlopen(ICU_LIB, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return -1;
	if (icu_sym(&icu.open, ICU_STR(uspoof_open)) < 0 ||
	    icu_sym(&icu.skeleton, ICU_STR(uspoof_getSkeletonUTF8)) < 0 ||
	    icu_sym(&icu.close, ICU_STR(uspoof_close)) < 0 ||
	    icu_sym(&icu.cleanup, ICU_STR(u_cleanup)) < 0) {
		dlclose(icu.lib);
		icu.lib = NULL;
		return -1;
	}
	return 0;
}

/* Why code point cp cannot be in a name, or NAME_OK. */
static enum name_fault
classify(ucs4_t cp)
{
	if (uc_is_general_category(cp, UC_CATEGORY_Cc))
		return NAME_CONTROL;
	if (uc_is_general_category(cp, UC_CATEGORY_Z))
		return NAME_SPACE;
	if (uc_is_property_bidi_control(cp))
		return NAME_BIDI;
	if (uc_is_general_category(cp, UC_CATEGORY_Cf) ||
	    uc_is_property_default_ignorable_code_point(cp))
		return NAME_INVISIBLE;
	if (uc_is_general_category(cp, UC_CATEGORY_C)) /* Cn, Co, Cs */
		return NAME_UNASSIGNED;
	return NAME_OK;
}

/* First refused code point of valid UTF-8 s[0..len), or NAME_OK. */
static enum name_fault
scan(const uint8_t *s, size_t len, uint32_t *badcp)
{
	enum name_fault f;
	size_t i = 0;
	ucs4_t cp;

	while (i < len) {
		i += (size_t)u8_mbtouc(&cp, s + i, len - i);
		if ((f = classify(cp)) != NAME_OK) {
			*badcp = cp;
			return f;
		}
	}
	return NAME_OK;
}

/* The code point of s whose own fold holds a refused character. */
static uint32_t
folds_bad_cp(const uint8_t *s, size_t len)
{
	size_t i = 0, n, flen;
	uint8_t *fold;
	uint32_t bad = 0;
	ucs4_t cp;

	while (i < len) {
		n = (size_t)u8_mbtouc(&cp, s + i, len - i);
		fold = u8_casefold(s + i, n, NULL, UNINORM_NFKC, NULL, &flen);
		if (fold != NULL && scan(fold, flen, &bad) != NAME_OK) {
			free(fold);
			return cp;
		}
		free(fold);
		i += n;
	}
	return 0xfffd;
}

/* key = NFC(skeleton(NFKC_Casefold(s))); s is a checked NFC name. */
static enum name_fault
make_key(const uint8_t *s, size_t len, char key[NAME_KEYSZ], uint32_t *badcp)
{
	UErrorCode st = U_ZERO_ERROR;
	char skel[4 * NAME_KEYSZ];
	size_t flen = 0, klen = NAME_KEY_MAX;
	uint8_t *fold, *k;
	int32_t sl;

	if (spoof == NULL &&
	    (icu_load() < 0 || (spoof = icu.open(&st), U_FAILURE(st)))) {
		spoof = NULL;
		return NAME_NOMEM;
	}
	if ((fold = u8_casefold(s, len, NULL, UNINORM_NFKC, NULL, &flen)) ==
	    NULL)
		return NAME_NOMEM;
	if (flen >= sizeof(skel)) {
		free(fold);
		return NAME_KEY_TOO_LONG;
	}
	sl = icu.skeleton(spoof, 0, (const char *)fold, (int32_t)flen, skel,
	    (int32_t)sizeof(skel), &st);
	free(fold);
	if (st == U_BUFFER_OVERFLOW_ERROR ||
	    st == U_STRING_NOT_TERMINATED_WARNING)
		return NAME_KEY_TOO_LONG;
	if (U_FAILURE(st) || sl < 0)
		return NAME_NOMEM;
	k = u8_normalize(
	    UNINORM_NFC, (uint8_t *)skel, (size_t)sl, (uint8_t *)key, &klen);
	if (k == NULL)
		return NAME_NOMEM;
	if (k != (uint8_t *)key) { /* did not fit */
		free(k);
		return NAME_KEY_TOO_LONG;
	}
	key[klen] = '\0';
	/* e.g. U+00A8 DIAERESIS folds to a space and a combining mark */
	if (scan(k, klen, badcp) != NAME_OK) {
		*badcp = folds_bad_cp(s, len);
		return NAME_FOLDS_BAD;
	}
	return strcmp(key, "-") == 0 ? NAME_RESERVED : NAME_OK;
}

static enum name_fault
prepare(const char *s, size_t len, size_t maxchars, char *nfc, size_t nfcsz,
    char key[NAME_KEYSZ], uint32_t *badcp)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t nlen = nfcsz - 1;
	enum name_fault f;
	uint8_t *r;
	ucs4_t cp;

	*badcp = 0;
	key[0] = nfc[0] = '\0';
	if (len == 0)
		return NAME_EMPTY;
	if (s[0] == '/')
		return NAME_SLASH;
	if (u8_check(u, len) != NULL)
		return NAME_BAD_UTF8;
	if ((f = scan(u, len, badcp)) != NAME_OK)
		return f;
	u8_mbtouc(&cp, u, len);
	if (uc_is_general_category(cp, UC_CATEGORY_M)) {
		*badcp = cp;
		return NAME_MARK_FIRST;
	}
	if ((r = u8_normalize(UNINORM_NFC, u, len, (uint8_t *)nfc, &nlen)) ==
	    NULL)
		return NAME_NOMEM;
	if (r != (uint8_t *)nfc) {
		free(r);
		return NAME_TOO_LONG;
	}
	nfc[nlen] = '\0';
	if (u8_mbsnlen(r, nlen) > maxchars || nlen > 4 * maxchars)
		return NAME_TOO_LONG;
	if ((f = make_key(r, nlen, key, badcp)) != NAME_OK)
		key[0] = '\0';
	return f;
}

/*
 * A memo of recent answers.  The parent checks and keys the same few names
 * over and over (every event from another hub names its room and its
 * sender), and a key costs an NFKC case fold and an ICU skeleton, a few
 * microseconds: the bench gate measured +45 % CPU per federated delivery
 * without it.  Direct-mapped on a hash of the bytes; only answers that
 * depend on the name alone are kept (not out-of-memory, not a name too
 * long for the caller's buffer).
 */
#define MEMO_SLOTS 64

struct memo {
	size_t len, maxchars, nfclen;
	enum name_fault f;
	uint32_t badcp;
	char s[PROTO_NAME_MAX_BYTES];
	char nfc[PROTO_NAME_MAX_BYTES + 1];
	char key[NAME_KEYSZ];
};

static struct memo memo[MEMO_SLOTS];

static struct memo *
memo_slot(const char *s, size_t len, size_t maxchars)
{
	uint32_t h = 2166136261u ^ (uint32_t)maxchars;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return &memo[h % MEMO_SLOTS];
}

enum name_fault
name_prepare(const char *s, size_t len, size_t maxchars, char *nfc,
    size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp)
{
	struct memo *m;
	enum name_fault f;

	if (len == 0 || len > sizeof(m->s))
		return backend != NULL ?
		    backend(s, len, maxchars, nfc, nfcsz, key, badcp) :
		    prepare(s, len, maxchars, nfc, nfcsz, key, badcp);
	m = memo_slot(s, len, maxchars);
	if (m->len == len && m->maxchars == maxchars && m->nfclen < nfcsz &&
	    memcmp(m->s, s, len) == 0) {
		memcpy(nfc, m->nfc, m->nfclen + 1);
		memcpy(key, m->key, strlen(m->key) + 1);
		*badcp = m->badcp;
		return m->f;
	}
	f = backend != NULL ?
	    backend(s, len, maxchars, nfc, nfcsz, key, badcp) :
	    prepare(s, len, maxchars, nfc, nfcsz, key, badcp);
	if (f == NAME_NOMEM || f == NAME_TOO_LONG ||
	    strlen(nfc) >= sizeof(m->nfc))
		return f;
	m->len = len;
	m->maxchars = maxchars;
	m->f = f;
	m->badcp = *badcp;
	memcpy(m->s, s, len);
	m->nfclen = strlen(nfc);
	memcpy(m->nfc, nfc, m->nfclen + 1);
	memcpy(m->key, key, strlen(key) + 1);
	return f;
}

int
name_shown_ok(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *)s;
	uint32_t cp;
	ucs4_t first;

	if (len == 0 || len > PROTO_NAME_MAX_BYTES || s[0] == '/' ||
	    (len == 1 && s[0] == '-') || u8_check(u, len) != NULL ||
	    scan(u, len, &cp) != NAME_OK)
		return 0;
	u8_mbtouc(&first, u, len);
	return !uc_is_general_category(first, UC_CATEGORY_M);
}

size_t
name_key(const char *s, size_t len, char key[NAME_KEYSZ])
{
	char nfc[4 * PROTO_ROOM_MAX_CHARS + 1];
	uint32_t cp;

	if (name_prepare(s, len, PROTO_ROOM_MAX_CHARS, nfc, sizeof(nfc), key,
	        &cp) != NAME_OK) {
		key[0] = '\0';
		return 0;
	}
	return strlen(key);
}

void
name_explain(enum name_fault f, uint32_t cp, char *buf, size_t sz)
{
	static const char *what[] = {
		[NAME_OK] = "is fine",
		[NAME_EMPTY] = "is empty",
		[NAME_SLASH] = "starts with /",
		[NAME_RESERVED] = "is reserved: - means nobody",
		[NAME_BAD_UTF8] = "is not valid UTF-8",
		[NAME_CONTROL] = "contains the control character",
		[NAME_SPACE] = "contains the space",
		[NAME_BIDI] = "contains the bidi control",
		[NAME_INVISIBLE] = "contains the invisible character",
		[NAME_UNASSIGNED] = "contains the unassigned/private-use",
		[NAME_MARK_FIRST] = "starts with the combining mark",
		[NAME_FOLDS_BAD] = "contains the spacing compatibility form",
		[NAME_TOO_LONG] = "is too long",
		[NAME_KEY_TOO_LONG] = "is too long once normalised",
		[NAME_NOMEM] = "could not be checked (out of memory)",
	};

	if ((size_t)f >= sizeof(what) / sizeof(what[0]))
		f = NAME_NOMEM;
	if (f >= NAME_CONTROL && f <= NAME_FOLDS_BAD)
		snprintf(buf, sz, "%s U+%04X", what[f], (unsigned)cp);
	else
		snprintf(buf, sz, "%s", what[f]);
}

enum name_fault
name_compute(const char *s, size_t len, size_t maxchars, char *nfc,
    size_t nfcsz, char key[NAME_KEYSZ], uint32_t *badcp)
{
	return prepare(s, len, maxchars, nfc, nfcsz, key, badcp);
}

void
name_set_backend(name_backend_fn *fn)
{
	backend = fn;
}

void
name_cleanup(void)
{
	if (icu.lib == NULL)
		return;
	if (spoof != NULL)
		icu.close(spoof);
	spoof = NULL;
	icu.cleanup();
	dlclose(icu.lib);
	icu.lib = NULL;
}
