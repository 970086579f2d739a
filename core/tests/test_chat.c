/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_chat.c - unit tests for core/chat/chat.c, the whole chat state machine,
 * driven through struct chat_io with a fake send/close that records the
 * lines queued for every slot.  Every test asserts the exact lines each
 * slot received (docs/PROTOCOL.md), so a missing, extra, duplicated or
 * misrouted line fails.
 *
 * Covers registration rules, every command with its success and error
 * replies, ownership passing, room deletion, /rm moving members, fan-out
 * isolation, the room limit, chat_reject codes and chat_disconnect /
 * chat_bye.  The log is never opened, so log_info() writes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "chat/chat.h"
#include "lib/utf8.h"

#define NSLOT     8
#define MAXLINES  64
#define LINESZ    4400
#define MAX_ROOMS 4
#define MAX_LINE  2000

/* ---- fake io --------------------------------------------------------- */

static struct {
	char line[NSLOT][MAXLINES][LINESZ];
	int n[NSLOT];
	int closed[NSLOT];
	int sends;
} io_rec;

static void
fake_send(void *ctx, int slot, const char *line, size_t len)
{
	assert_ptr_equal(ctx, &io_rec);
	assert_true(slot >= 0 && slot < NSLOT);
	assert_true(len >= 1 && len < LINESZ);
	assert_int_equal(line[len - 1], '\n');    /* one whole line */
	assert_null(memchr(line, '\n', len - 1)); /* and only one */
	assert_true(io_rec.n[slot] < MAXLINES);
	memcpy(io_rec.line[slot][io_rec.n[slot]], line, len - 1);
	io_rec.line[slot][io_rec.n[slot]][len - 1] = '\0';
	io_rec.n[slot]++;
	io_rec.sends++;
}

static void
fake_close(void *ctx, int slot)
{
	assert_ptr_equal(ctx, &io_rec);
	assert_true(slot >= 0 && slot < NSLOT);
	io_rec.closed[slot]++;
}

static const struct chat_io fake_io = { &io_rec, fake_send, fake_close };

static void
clear_all(void)
{
	memset(io_rec.n, 0, sizeof(io_rec.n));
	memset(io_rec.closed, 0, sizeof(io_rec.closed));
	io_rec.sends = 0;
}

static void
dump(int slot)
{
	int i;

	print_error("slot %d received %d line(s):\n", slot, io_rec.n[slot]);
	for (i = 0; i < io_rec.n[slot]; i++)
		print_error("  [%d] %s\n", i, io_rec.line[slot][i]);
}

/* Assert slot received exactly the NULL-terminated lines, then forget them. */
static void
expect_lines(int slot, ...)
{
	const char *want;
	va_list ap;
	int i = 0;

	va_start(ap, slot);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (i >= io_rec.n[slot] || strcmp(io_rec.line[slot][i], want)) {
			dump(slot);
			print_error("expected [%d] %s\n", i, want);
			fail();
		}
		i++;
	}
	va_end(ap);
	if (i != io_rec.n[slot]) {
		dump(slot);
		print_error("expected %d line(s)\n", i);
		fail();
	}
	io_rec.n[slot] = 0;
}

#define EXPECT(slot, ...) expect_lines((slot), __VA_ARGS__, (char *)NULL)
#define QUIET(slot)       expect_lines((slot), (char *)NULL)
#define FOLDED            " (the same name once case and lookalikes are folded)"

static void
all_quiet(void)
{
	int s;

	for (s = 0; s < NSLOT; s++)
		QUIET(s);
}

/* ---- driving --------------------------------------------------------- */

static struct chat *
new_chat(int max_rooms, size_t max_line)
{
	struct chat_limits lim = { NSLOT, max_rooms, max_line };
	struct chat *c;

	clear_all();
	c = chat_new(&lim, &fake_io);
	assert_non_null(c);
	return c;
}

static int
setup(void **state)
{
	*state = new_chat(MAX_ROOMS, MAX_LINE);
	return 0;
}

static int
teardown(void **state)
{
	chat_free(*state);
	return 0;
}

static void
say(struct chat *c, int slot, const char *s)
{
	chat_line(c, slot, s, strlen(s));
}

/* Connect slot and register nick; then forget everything anyone received. */
static void
reg(struct chat *c, int slot, const char *nick)
{
	char ok[128];

	chat_connect(c, slot);
	say(c, slot, nick);
	snprintf(ok, sizeof(ok), "OK NICK %s", nick);
	EXPECT(slot,
	    "HELLO forkchatd/" FORKCHAT_VERSION " welcome to forkchat; "
	    "send your nickname",
	    ok, "OK JOIN lobby");
	clear_all();
}

/* alice(0) owns "rust" and is in it; bob(1) and carol(2) joined it in that
 * order; dave(3) stays in the lobby. */
static void
four_users_rust(struct chat *c)
{
	reg(c, 0, "alice");
	reg(c, 1, "bob");
	reg(c, 2, "carol");
	reg(c, 3, "dave");
	say(c, 0, "/add rust");
	say(c, 1, "/join rust");
	say(c, 2, "/join rust");
	clear_all();
}

#define CHAT struct chat *c = *state

/* ---- connect and registration ---------------------------------------- */

static void
test_chat_connect_sends_hello(void **state)
{
	CHAT;

	chat_connect(c, 0);
	EXPECT(0,
	    "HELLO forkchatd/" FORKCHAT_VERSION " welcome to forkchat; "
	    "send your nickname");
	assert_true(chat_in_use(c, 0));
	assert_false(chat_is_registered(c, 0));
	assert_string_equal(chat_nick(c, 0), "-");
	assert_null(chat_room(c, 0));
	assert_int_equal(chat_user_count(c), 0);
	assert_int_equal(chat_room_count(c), 1);
	all_quiet();
}

static void
test_chat_register_ok(void **state)
{
	CHAT;

	chat_connect(c, 0);
	clear_all();
	say(c, 0, "alice");
	EXPECT(0, "OK NICK alice", "OK JOIN lobby");
	assert_true(chat_is_registered(c, 0));
	assert_string_equal(chat_nick(c, 0), "alice");
	assert_string_equal(chat_room(c, 0), "lobby");
	assert_int_equal(chat_user_count(c), 1);
	all_quiet();
}

static void
test_chat_register_lobby_sees_join(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_connect(c, 1);
	chat_connect(c, 2); /* not registered: sees nothing */
	clear_all();
	say(c, 1, "bob");
	EXPECT(1, "OK NICK bob", "OK JOIN lobby");
	EXPECT(0, "JOIN lobby bob");
	all_quiet();
}

static void
test_chat_register_nick_taken_case_insensitive(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_connect(c, 1);
	clear_all();
	say(c, 1, "ALICE");
	EXPECT(1,
	    "ERR 422 NICK_TAKEN nickname ALICE is in use as alice" FOLDED
	    ", choose another");
	say(c, 1, "Alice");
	EXPECT(1,
	    "ERR 422 NICK_TAKEN nickname Alice is in use as alice" FOLDED
	    ", choose another");
	assert_false(chat_is_registered(c, 1));
	all_quiet();
	/* the failed attempt left the connection open for another one */
	say(c, 1, "alice2");
	EXPECT(1, "OK NICK alice2", "OK JOIN lobby");
	EXPECT(0, "JOIN lobby alice2");
	assert_int_equal(chat_user_count(c), 2);
}

static void
test_chat_register_latin1_clash(void **state)
{
	CHAT;

	reg(c, 0, "\xc3\x89lan"); /* Élan */
	chat_connect(c, 1);
	clear_all();
	say(c, 1, "\xc3\xa9lan"); /* élan */
	EXPECT(1,
	    "ERR 422 NICK_TAKEN nickname \xc3\xa9lan is in use as "
	    "\xc3\x89lan" FOLDED ", choose another");
	assert_false(chat_is_registered(c, 1));
}

static void
test_chat_register_greek_and_cyrillic_clash(void **state)
{
	CHAT;

	reg(c, 0, "\xce\xa3\xce\xbf\xcf\x86\xce\xb9\xce\xb1"); /* Σοφια */
	reg(c, 1, "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd");         /* Иван */
	chat_connect(c, 2);
	clear_all();
	say(c, 2, "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1"); /* σοφια */
	EXPECT(2,
	    "ERR 422 NICK_TAKEN nickname \xcf\x83\xce\xbf\xcf\x86\xce"
	    "\xb9\xce\xb1 is in use as \xce\xa3\xce\xbf\xcf\x86\xce\xb9"
	    "\xce\xb1" FOLDED ", choose another");
	say(c, 2, "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd"); /* иван */
	EXPECT(2,
	    "ERR 422 NICK_TAKEN nickname \xd0\xb8\xd0\xb2\xd0\xb0\xd0"
	    "\xbd is in use as \xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd" FOLDED
	    ", choose another");
	assert_false(chat_is_registered(c, 2));
}

static void
test_chat_register_korean_nick(void **state)
{
	CHAT;
	const char *kim = "\xea\xb9\x80\xec\xb2\xa0\xec\x88\x98"; /* 김철수 */

	reg(c, 0, kim);
	assert_string_equal(chat_nick(c, 0), kim);
	chat_connect(c, 1);
	clear_all();
	say(c, 1, kim);
	EXPECT(1,
	    "ERR 422 NICK_TAKEN nickname \xea\xb9\x80\xec\xb2\xa0\xec\x88"
	    "\x98 is in use, choose another");
	/* 16 Hangul syllables (48 bytes) are a valid nickname */
	say(c, 1,
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80");
	assert_true(chat_is_registered(c, 1));
	assert_int_equal(io_rec.n[1], 2);
}

static void
test_chat_register_too_long(void **state)
{
	CHAT;

	chat_connect(c, 0);
	clear_all();
	say(c, 0, "abcdefghijklmnopq"); /* 17 */
	EXPECT(0, "ERR 421 NICK_TOO_LONG a nickname has at most 16 characters");
	/* 17 Hangul syllables */
	say(c, 0,
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80\xea\xb0\x80"
	    "\xea\xb0\x80\xea\xb0\x80");
	EXPECT(0, "ERR 421 NICK_TOO_LONG a nickname has at most 16 characters");
	assert_false(chat_is_registered(c, 0));
	say(c, 0, "abcdefghijklmnop"); /* 16 */
	EXPECT(0, "OK NICK abcdefghijklmnop", "OK JOIN lobby");
}

#define ROOM_RULES                                                   \
	" (a room name has 1 to 32 characters: no spaces, control, " \
	"invisible or bidi characters, not - and no leading /)"

#define NICK_RULES                                                            \
	" (a nickname has 1 to 16 characters: no spaces, control, invisible " \
	"or bidi characters, not - and no leading /)"

static void
test_chat_register_bad_chars(void **state)
{
	static const char *bad[][2] = {
		{ "al ice", "contains the space U+0020" },
		{ "al\tice", "contains the control character U+0009" },
		{ "al\xc2\xa0ice", "contains the space U+00A0" },
		{ "al\xe3\x80\x80ice", "contains the space U+3000" },
		{ " alice", "contains the space U+0020" },
		{ "alice ", "contains the space U+0020" },
	};
	char want[256];
	CHAT;
	size_t i;

	chat_connect(c, 0);
	clear_all();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		say(c, 0, bad[i][0]);
		snprintf(want, sizeof(want),
		    "ERR 420 BAD_NICK this nickname %s" NICK_RULES, bad[i][1]);
		EXPECT(0, want);
	}
	assert_false(chat_is_registered(c, 0));
	assert_int_equal(chat_user_count(c), 0);
}

/* ---- the name profile (issue 12: lookalike and invisible names) ------ */

/* Each of these looked like "bob" (or nothing) and registered next to it. */
static const char *const invisible[][2] = {
	{ "bob\xe2\x81\xa0", "invisible character U+2060" }, /* WJ */
	{ "b\xc2\xadob", "invisible character U+00AD" },     /* SHY */
	{ "bo\xe2\x80\x8d"
	  "b",
	    "invisible character U+200D" }, /* ZWJ */
	{ "bo\xe2\x80\x8c"
	  "b",
	    "invisible character U+200C" }, /* ZWNJ */
	{ "\xe2\x80\xaa"
	  "bob",
	    "bidi control U+202A" },
	{ "\xe2\x80\xab"
	  "bob",
	    "bidi control U+202B" },
	{ "bob\xe2\x80\xac", "bidi control U+202C" },
	{ "\xe2\x80\xad"
	  "bob",
	    "bidi control U+202D" },
	{ "\xe2\x80\xae"
	  "bob",
	    "bidi control U+202E" },
	{ "\xe2\x81\xa6"
	  "bob",
	    "bidi control U+2066" },
	{ "\xe2\x81\xa7"
	  "bob",
	    "bidi control U+2067" },
	{ "\xe2\x81\xa8"
	  "bob",
	    "bidi control U+2068" },
	{ "bob\xe2\x81\xa9", "bidi control U+2069" },
	{ "bob\xe3\x85\xa4", "invisible character U+3164" }, /* filler */
	{ "\xe3\x85\xa4", "invisible character U+3164" },
	{ "bob\xef\xbe\xa0", "invisible character U+FFA0" },
};

/* Pairs that must not coexist: the second is refused as taken. */
static const char *const lookalike[][2] = {
	{ "\xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1",
	    "\xce\xa3\xce\x9f\xce\xa6\xce\x8a\xce\x91" }, /* Σοφία ΣΟΦΊΑ */
	{ "\xcf\x83\xce\xb1\xcf\x82",
	    "\xce\xa3\xce\x91\xce\xa3" }, /* σας ΣΑΣ */
	{ "\xd2\x91\xd1\x80\xd0\xb5\xd1\x82\xd0\xb0",
	    "\xd2\x90\xd1\x80\xd0\xb5\xd1\x82\xd0\xb0" }, /* ґрета Ґрета */
	{ "\xc2\xb5u", "\xce\xbcu" },                     /* µu μu */
	{ "bob",
	    "b\xd0\xbe"
	    "b" },                  /* Cyrillic о */
	{ "\xc5\xb8", "\xc3\xbf" }, /* Ÿ ÿ */
};

static void
test_chat_register_refuses_invisible_and_bidi(void **state)
{
	char want[320];
	CHAT;
	size_t i;

	reg(c, 0, "bob");
	chat_connect(c, 1);
	clear_all();
	for (i = 0; i < sizeof(invisible) / sizeof(invisible[0]); i++) {
		say(c, 1, invisible[i][0]);
		snprintf(want, sizeof(want),
		    "ERR 420 BAD_NICK this nickname contains the %s" NICK_RULES,
		    invisible[i][1]);
		EXPECT(1, want);
	}
	assert_false(chat_is_registered(c, 1));
	all_quiet();
}

static void
test_chat_register_lookalikes_clash(void **state)
{
	char want[320];
	CHAT;
	size_t i;

	for (i = 0; i < sizeof(lookalike) / sizeof(lookalike[0]); i++) {
		reg(c, 0, lookalike[i][0]);
		chat_connect(c, 1);
		clear_all();
		say(c, 1, lookalike[i][1]);
		snprintf(want, sizeof(want),
		    "ERR 422 NICK_TAKEN nickname %s is in use as %s" FOLDED
		    ", choose another",
		    lookalike[i][1], lookalike[i][0]);
		EXPECT(1, want);
		assert_false(chat_is_registered(c, 1));
		chat_disconnect(c, 0, "quit");
		chat_disconnect(c, 1, "quit");
		clear_all();
	}
}

static void
test_chat_add_refuses_invisible_and_lookalike_rooms(void **state)
{
	char cmd[128], want[320];
	CHAT;
	size_t i;

	reg(c, 0, "alice");
	for (i = 0; i < sizeof(invisible) / sizeof(invisible[0]); i++) {
		snprintf(cmd, sizeof(cmd), "/add %s", invisible[i][0]);
		say(c, 0, cmd);
		snprintf(want, sizeof(want),
		    "ERR 432 BAD_ROOM this room name contains the %s" ROOM_RULES,
		    invisible[i][1]);
		EXPECT(0, want);
	}
	for (i = 0; i < sizeof(lookalike) / sizeof(lookalike[0]); i++) {
		snprintf(cmd, sizeof(cmd), "/add %s", lookalike[i][0]);
		say(c, 0, cmd);
		clear_all();
		snprintf(cmd, sizeof(cmd), "/add %s", lookalike[i][1]);
		say(c, 0, cmd);
		snprintf(want, sizeof(want),
		    "ERR 431 ROOM_EXISTS room %s exists as %s" FOLDED
		    "; /join %s",
		    lookalike[i][1], lookalike[i][0], lookalike[i][0]);
		EXPECT(0, want);
		snprintf(cmd, sizeof(cmd), "/rm %s", lookalike[i][1]);
		say(c, 0, cmd); /* found by its key: removes the first */
		clear_all();
	}
	assert_int_equal(chat_room_count(c), 1);
}

/* "-" means nobody (unregistered, no owner in /list): nobody is called so. */
static void
test_chat_dash_is_not_a_name(void **state)
{
	CHAT;

	chat_connect(c, 0);
	clear_all();
	say(c, 0, "-");
	EXPECT(0,
	    "ERR 420 BAD_NICK this nickname is reserved: - means "
	    "nobody" NICK_RULES);
	say(c, 0, "\xe2\x80\x90"); /* U+2010 HYPHEN looks like it */
	EXPECT(0,
	    "ERR 420 BAD_NICK this nickname is reserved: - means "
	    "nobody" NICK_RULES);
	assert_false(chat_is_registered(c, 0));
	say(c, 0, "alice");
	clear_all();
	say(c, 0, "/add -");
	EXPECT(0,
	    "ERR 432 BAD_ROOM this room name is reserved: - means "
	    "nobody" ROOM_RULES);
	assert_int_equal(chat_room_count(c), 1);
}

/* Stored and shown in NFC; typed in any form, found by the key. */
static void
test_chat_names_stored_nfc_found_by_key(void **state)
{
	CHAT;

	reg(c, 0, "\xc3\xa9lan"); /* élan */
	chat_connect(c, 1);
	say(c, 1, "e\xcc\x81va"); /* e + COMBINING ACUTE */
	assert_string_equal(chat_nick(c, 1), "\xc3\xa9va");
	clear_all();
	say(c, 1, "/whisper \xc3\x89LAN hi"); /* ÉLAN */
	EXPECT(0, "WHISPER \xc3\xa9va hi");
	EXPECT(1, "OK WHISPER \xc3\xa9lan");
	say(c, 1, "/add e\xcc\x81te\xcc\x81");
	EXPECT(1, "OK ADD \xc3\xa9t\xc3\xa9", "OK JOIN \xc3\xa9t\xc3\xa9");
	EXPECT(0, "PART lobby \xc3\xa9va left");
	say(c, 0, "/join \xc3\x89T\xc3\x89");
	EXPECT(0, "OK JOIN \xc3\xa9t\xc3\xa9");
	EXPECT(1, "JOIN \xc3\xa9t\xc3\xa9 \xc3\xa9lan");
}

static void
test_chat_commands_before_registration(void **state)
{
	static const char *cmds[] = { "/join x", "/list", "/users all",
		"/add r", "/w bob hi", "/leave", "/bogus", "//alice", "/" };
	CHAT;
	size_t i;

	chat_connect(c, 0);
	clear_all();
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		say(c, 0, cmds[i]);
		EXPECT(0, "ERR 410 NOT_REGISTERED send your nickname first");
	}
	assert_false(chat_is_registered(c, 0));
	assert_int_equal(chat_room_count(c), 1);
	all_quiet();
}

static void
test_chat_help_before_registration(void **state)
{
	CHAT;

	chat_connect(c, 0);
	clear_all();
	say(c, 0, "/HELP");
	assert_int_equal(io_rec.n[0], 12);
	assert_string_equal(io_rec.line[0][0],
	    "HELP text                 send "
	    "text to everyone in your room (//text sends /text)");
	assert_string_equal(io_rec.line[0][11], "END HELP");
	assert_false(chat_is_registered(c, 0));
}

static void
test_chat_quit_before_registration(void **state)
{
	CHAT;

	reg(c, 1, "bob");
	chat_connect(c, 0);
	clear_all();
	say(c, 0, "/quit");
	EXPECT(0, "BYE QUIT goodbye");
	assert_int_equal(io_rec.closed[0], 1);
	assert_false(chat_in_use(c, 0));
	all_quiet(); /* bob hears no PART */
	assert_int_equal(chat_user_count(c), 1);
}

static void
test_chat_nick_free_after_disconnect(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_disconnect(c, 0, "disconnected");
	assert_int_equal(chat_user_count(c), 0);
	reg(c, 1, "ALICE"); /* reg() asserts OK NICK */
	assert_string_equal(chat_nick(c, 1), "ALICE");
}

static void
test_chat_slot_reuse_starts_fresh(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_disconnect(c, 0, "disconnected");
	chat_connect(c, 0);
	clear_all();
	assert_false(chat_is_registered(c, 0));
	assert_string_equal(chat_nick(c, 0), "-");
	say(c, 0, "/list");
	EXPECT(0, "ERR 410 NOT_REGISTERED send your nickname first");
}

static void
test_chat_line_on_free_slot_ignored(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 1, "hello");
	say(c, 1, "/list");
	chat_line(c, -1, "x", 1);
	chat_line(c, NSLOT, "x", 1);
	all_quiet();
	assert_int_equal(io_rec.sends, 0);
}

/* ---- messages -------------------------------------------------------- */

static void
test_chat_message_fanout_exactly_once_not_sender(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	reg(c, 2, "carol");
	say(c, 0, "hi all");
	EXPECT(1, "MSG lobby alice hi all");
	EXPECT(2, "MSG lobby alice hi all");
	QUIET(0); /* no echo */
	assert_int_equal(io_rec.sends, 2);
}

static void
test_chat_message_stays_in_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "in rust");
	EXPECT(0, "MSG rust bob in rust");
	EXPECT(2, "MSG rust bob in rust");
	QUIET(3);
	say(c, 3, "in lobby");
	all_quiet();        /* dave is alone in the lobby */
	chat_connect(c, 4); /* unregistered: never gets messages */
	clear_all();
	say(c, 1, "again");
	QUIET(4);
}

static void
test_chat_message_not_after_leaving(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 2, "/leave");
	clear_all();
	say(c, 0, "after");
	EXPECT(1, "MSG rust alice after");
	QUIET(2);
	all_quiet();
}

static void
test_chat_message_double_slash(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "//shrug");
	EXPECT(1, "MSG lobby alice /shrug");
	say(c, 0, "//");
	EXPECT(1, "MSG lobby alice /");
	QUIET(0);
}

static void
test_chat_message_verbatim_spaces_and_utf8(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "  spaced\tout  \xec\x95\x88\xeb\x85\x95 ");
	EXPECT(1, "MSG lobby alice   spaced\tout  \xec\x95\x88\xeb\x85\x95 ");
}

static void
test_chat_message_alone_produces_nothing(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "anyone?");
	all_quiet();
	assert_int_equal(io_rec.sends, 0);
}

static void
test_chat_message_max_line_delivered_whole(void **state)
{
	static char msg[MAX_LINE + 1], want[MAX_LINE + 64];
	CHAT;

	reg(c, 0, "abcdefghijklmnop");
	reg(c, 1, "bob");
	memset(msg, 'm', MAX_LINE);
	msg[MAX_LINE] = '\0';
	say(c, 0, msg);
	snprintf(want, sizeof(want), "MSG lobby abcdefghijklmnop %s", msg);
	EXPECT(1, want);
}

static void
test_chat_message_order_preserved(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	reg(c, 2, "carol");
	say(c, 0, "one");
	say(c, 2, "two");
	say(c, 0, "three");
	EXPECT(1, "MSG lobby alice one", "MSG lobby carol two",
	    "MSG lobby alice three");
	EXPECT(0, "MSG lobby carol two");
	EXPECT(2, "MSG lobby alice one", "MSG lobby alice three");
}

/* ---- /add ------------------------------------------------------------ */

static void
test_chat_add_creates_and_enters(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add rust");
	EXPECT(0, "OK ADD rust", "OK JOIN rust");
	EXPECT(1, "PART lobby alice left");
	assert_string_equal(chat_room(c, 0), "rust");
	assert_int_equal(chat_room_count(c), 2);
	all_quiet();
}

static void
test_chat_add_from_room_parts_old_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/add go");
	EXPECT(1, "OK ADD go", "OK JOIN go");
	EXPECT(0, "PART rust bob left");
	EXPECT(2, "PART rust bob left");
	all_quiet();
}

static void
test_chat_add_exists_case_insensitive(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add Rust");
	clear_all();
	say(c, 1, "/add RUST");
	EXPECT(1,
	    "ERR 431 ROOM_EXISTS room RUST exists as Rust" FOLDED
	    "; /join Rust");
	say(c, 1, "/add Lobby");
	EXPECT(1,
	    "ERR 431 ROOM_EXISTS room Lobby exists as lobby" FOLDED
	    "; /join lobby");
	say(c, 1, "/add Rust");
	EXPECT(1, "ERR 431 ROOM_EXISTS room Rust exists; /join Rust");
	assert_string_equal(chat_room(c, 1), "lobby");
	assert_int_equal(chat_room_count(c), 2);
	all_quiet();
}

static void
test_chat_add_bad_room(void **state)
{
	static const char *bad[][2] = {
		{ "/add /x",
		    "ERR 432 BAD_ROOM this room name starts with /" ROOM_RULES },
		{ "/add abcdefghijklmnopqrstuvwxyz0123456", /* 33 chars */
		    "ERR 432 BAD_ROOM a room name has at most 32 characters" },
		{ "/add a\302\240b", /* U+00A0 NO-BREAK SPACE */
		    "ERR 432 BAD_ROOM this room name contains the space "
		    "U+00A0" ROOM_RULES },
	};
	CHAT;
	size_t i;

	reg(c, 0, "alice");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		say(c, 0, bad[i][0]);
		EXPECT(0, bad[i][1]);
	}
	assert_int_equal(chat_room_count(c), 1);
	say(c, 0, "/add abcdefghijklmnopqrstuvwxyz012345"); /* 32 */
	EXPECT(0, "OK ADD abcdefghijklmnopqrstuvwxyz012345",
	    "OK JOIN abcdefghijklmnopqrstuvwxyz012345");
}

static void
test_chat_add_korean_room_32_chars(void **state)
{
	char cmd[200] = "/add ", want[200] = "OK ADD ";
	CHAT;
	int i;

	for (i = 0; i < 32; i++) {
		strncat(cmd, "\xed\x95\x9c", sizeof(cmd) - strlen(cmd) - 1);
		strncat(want, "\xed\x95\x9c", sizeof(want) - strlen(want) - 1);
	}
	reg(c, 0, "alice");
	say(c, 0, cmd);
	assert_int_equal(io_rec.n[0], 2);
	assert_string_equal(io_rec.line[0][0], want);
	assert_string_equal(chat_room(c, 0), want + 7);
}

static void
test_chat_add_max_rooms(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/add r1");
	say(c, 0, "/add r2");
	say(c, 0, "/add r3");
	say(c, 0, "/add r4");
	clear_all();
	assert_int_equal(chat_room_count(c), 1 + MAX_ROOMS);
	say(c, 0, "/add r5");
	EXPECT(0, "ERR 433 TOO_MANY_ROOMS the server has 4 rooms already");
	assert_string_equal(chat_room(c, 0), "r4");
	/* removing one makes room for another */
	say(c, 0, "/rm r1");
	EXPECT(0, "OK RM r1");
	say(c, 0, "/add r5");
	EXPECT(0, "OK ADD r5", "OK JOIN r5");
	assert_int_equal(chat_room_count(c), 1 + MAX_ROOMS);
}

static void
test_chat_add_max_rooms_zero(void **state)
{
	struct chat *c = new_chat(0, MAX_LINE);

	reg(c, 0, "alice");
	say(c, 0, "/add r1");
	EXPECT(0, "ERR 433 TOO_MANY_ROOMS the server has 0 rooms already");
	assert_int_equal(chat_room_count(c), 1);
	chat_free(c);
}

static void
test_chat_add_exists_checked_before_limit(void **state)
{
	struct chat *c = new_chat(1, MAX_LINE);

	reg(c, 0, "alice");
	say(c, 0, "/add r1");
	clear_all();
	say(c, 0, "/add R1");
	EXPECT(
	    0, "ERR 431 ROOM_EXISTS room R1 exists as r1" FOLDED "; /join r1");
	chat_free(c);
}

static void
test_chat_add_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/add");
	EXPECT(0, "ERR 405 USAGE usage: /add ROOM");
	say(c, 0, "/add two words");
	EXPECT(0, "ERR 405 USAGE usage: /add ROOM");
	assert_int_equal(chat_room_count(c), 1);
}

/* ---- /join ----------------------------------------------------------- */

static void
test_chat_join_notices(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	reg(c, 2, "carol");
	say(c, 0, "/add rust");
	clear_all();
	say(c, 1, "/join rust");
	EXPECT(1, "OK JOIN rust");
	EXPECT(0, "JOIN rust bob");
	EXPECT(2, "PART lobby bob left");
	all_quiet();
	assert_string_equal(chat_room(c, 1), "rust");
}

static void
test_chat_join_case_insensitive_canonical_name(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add Rust");
	clear_all();
	say(c, 1, "/JOIN rUST");
	EXPECT(1, "OK JOIN Rust");
	EXPECT(0, "JOIN Rust bob");
}

static void
test_chat_join_no_such_room(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/join nope");
	EXPECT(0,
	    "ERR 430 NO_SUCH_ROOM no room nope; /list shows rooms, /add "
	    "creates one");
	assert_string_equal(chat_room(c, 0), "lobby");
}

static void
test_chat_join_already_in_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/join RUST");
	EXPECT(1, "ERR 436 ALREADY_IN_ROOM you are in rust already");
	say(c, 3, "/join lobby");
	EXPECT(3, "ERR 436 ALREADY_IN_ROOM you are in lobby already");
	all_quiet();
}

static void
test_chat_join_lobby_from_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/join lobby");
	EXPECT(1, "OK JOIN lobby");
	EXPECT(0, "PART rust bob left");
	EXPECT(2, "PART rust bob left");
	EXPECT(3, "JOIN lobby bob");
	all_quiet();
}

static void
test_chat_join_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/join");
	EXPECT(0, "ERR 405 USAGE usage: /join ROOM");
	say(c, 0, "/join a b");
	EXPECT(0, "ERR 405 USAGE usage: /join ROOM");
}

/* ---- /leave ---------------------------------------------------------- */

static void
test_chat_leave_to_lobby(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 2, "/leave");
	EXPECT(2, "OK JOIN lobby");
	EXPECT(0, "PART rust carol left");
	EXPECT(1, "PART rust carol left");
	EXPECT(3, "JOIN lobby carol");
	all_quiet();
	assert_string_equal(chat_room(c, 2), "lobby");
}

static void
test_chat_leave_in_lobby(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/leave");
	EXPECT(0, "ERR 435 IS_LOBBY you are in the lobby already");
	all_quiet();
}

static void
test_chat_leave_usage(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/leave now");
	EXPECT(1, "ERR 405 USAGE usage: /leave");
	assert_string_equal(chat_room(c, 1), "rust");
	all_quiet();
}

/* ---- /rm ------------------------------------------------------------- */

static void
test_chat_rm_moves_members_to_lobby(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 0, "/rm rust");
	/* every moved member sees the others; the lobby sees all three */
	EXPECT(0, "OK RM rust", "REMOVED rust alice", "JOIN lobby bob",
	    "JOIN lobby carol");
	EXPECT(1, "REMOVED rust alice", "JOIN lobby alice", "JOIN lobby carol");
	EXPECT(2, "REMOVED rust alice", "JOIN lobby alice", "JOIN lobby bob");
	EXPECT(3, "JOIN lobby alice", "JOIN lobby bob", "JOIN lobby carol");
	all_quiet();
	assert_string_equal(chat_room(c, 0), "lobby");
	assert_string_equal(chat_room(c, 1), "lobby");
	assert_string_equal(chat_room(c, 2), "lobby");
	assert_int_equal(chat_room_count(c), 1);
	/* no PART for a removal, and the lobby now holds all four */
	say(c, 3, "/users");
	EXPECT(3, "USER dave lobby", "USER alice lobby", "USER bob lobby",
	    "USER carol lobby", "END USERS 4");
}

static void
test_chat_rm_by_owner_outside_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 0, "/leave");
	clear_all();
	say(c, 0, "/rm rust");
	EXPECT(0, "OK RM rust", "JOIN lobby bob", "JOIN lobby carol");
	EXPECT(1, "REMOVED rust alice", "JOIN lobby carol");
	EXPECT(2, "REMOVED rust alice", "JOIN lobby bob");
	EXPECT(3, "JOIN lobby bob", "JOIN lobby carol");
	all_quiet();
}

static void
test_chat_rm_empty_room(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add rust");
	say(c, 0, "/leave");
	clear_all();
	say(c, 0, "/rm rust");
	EXPECT(0, "OK RM rust");
	all_quiet();
	assert_int_equal(chat_room_count(c), 1);
}

static void
test_chat_rm_not_owner(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/rm rust");
	EXPECT(1, "ERR 434 NOT_OWNER only its owner alice may remove rust");
	say(c, 3, "/rm RUST");
	EXPECT(3, "ERR 434 NOT_OWNER only its owner alice may remove rust");
	all_quiet();
	assert_int_equal(chat_room_count(c), 2);
}

static void
test_chat_rm_lobby(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/rm lobby");
	EXPECT(0, "ERR 435 IS_LOBBY the lobby cannot be removed");
	say(c, 0, "/rm LOBBY");
	EXPECT(0, "ERR 435 IS_LOBBY the lobby cannot be removed");
	assert_int_equal(chat_room_count(c), 1);
}

static void
test_chat_rm_no_such_room(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/rm nope");
	EXPECT(0, "ERR 430 NO_SUCH_ROOM no room nope");
}

static void
test_chat_rm_case_insensitive_and_name_reusable(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add Rust");
	say(c, 0, "/rm RUST");
	clear_all();
	say(c, 1, "/add rust");
	EXPECT(1, "OK ADD rust", "OK JOIN rust");
	EXPECT(0, "PART lobby bob left");
}

static void
test_chat_rm_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/rm");
	EXPECT(0, "ERR 405 USAGE usage: /rm ROOM");
}

/* ---- /list ----------------------------------------------------------- */

static void
test_chat_list_lobby_only(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/list");
	EXPECT(0, "ROOM lobby 1 -", "END LIST 1");
}

static void
test_chat_list_rooms_counts_owners(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 3, "/add go");
	say(c, 3, "/leave");
	clear_all();
	say(c, 1, "/LIST");
	EXPECT(1, "ROOM lobby 1 -", "ROOM rust 3 alice", "ROOM go 0 dave",
	    "END LIST 3");
	all_quiet();
}

static void
test_chat_list_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/list all");
	EXPECT(0, "ERR 405 USAGE usage: /list");
}

/* ---- /users ---------------------------------------------------------- */

static void
test_chat_users_room_join_order(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 2, "/users");
	EXPECT(2, "USER alice rust", "USER bob rust", "USER carol rust",
	    "END USERS 3");
	/* rejoin moves bob to the end */
	say(c, 1, "/leave");
	say(c, 1, "/join rust");
	clear_all();
	say(c, 0, "/users");
	EXPECT(0, "USER alice rust", "USER carol rust", "USER bob rust",
	    "END USERS 3");
}

static void
test_chat_users_all(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_connect(c, 5); /* unregistered: not listed */
	clear_all();
	say(c, 3, "/users all");
	EXPECT(3, "USER alice rust", "USER bob rust", "USER carol rust",
	    "USER dave lobby", "END USERS 4");
	say(c, 3, "/users ALL");
	EXPECT(3, "USER alice rust", "USER bob rust", "USER carol rust",
	    "USER dave lobby", "END USERS 4");
	all_quiet();
}

static void
test_chat_users_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/users everyone");
	EXPECT(0, "ERR 405 USAGE usage: /users [all]");
	say(c, 0, "/users all now");
	EXPECT(0, "ERR 405 USAGE usage: /users [all]");
}

/* ---- /whisper -------------------------------------------------------- */

static void
test_chat_whisper_success_reaches_only_target(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 3, "/whisper bob psst  hey there");
	EXPECT(1, "WHISPER dave psst  hey there");
	EXPECT(3, "OK WHISPER bob");
	all_quiet();
}

static void
test_chat_whisper_alias_and_case_insensitive_nick(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "Bob");
	say(c, 0, "/W bOB hi");
	EXPECT(1, "WHISPER alice hi");
	EXPECT(0, "OK WHISPER Bob");
}

static void
test_chat_whisper_no_such_user(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_connect(c, 1); /* connected, no nickname yet */
	clear_all();
	say(c, 0, "/w zed hi");
	EXPECT(0, "ERR 440 NO_SUCH_USER nobody is called zed");
	say(c, 0, "/w - hi");
	EXPECT(0, "ERR 440 NO_SUCH_USER nobody is called -");
	all_quiet();
}

static void
test_chat_whisper_self(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/whisper ALICE hi");
	EXPECT(0, "ERR 441 WHISPER_SELF you cannot whisper to yourself");
}

static void
test_chat_whisper_after_target_left(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	chat_disconnect(c, 1, "disconnected");
	clear_all();
	say(c, 0, "/w bob hi");
	EXPECT(0, "ERR 440 NO_SUCH_USER nobody is called bob");
}

static void
test_chat_whisper_usage(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/whisper bob");
	EXPECT(0, "ERR 405 USAGE usage: /whisper NICK TEXT");
	say(c, 0, "/w");
	EXPECT(0, "ERR 405 USAGE usage: /whisper NICK TEXT");
	all_quiet();
}

/* ---- /help, unknown, /quit ------------------------------------------- */

static void
test_chat_help_lines(void **state)
{
	CHAT;
	int i;

	reg(c, 0, "alice");
	say(c, 0, "/help");
	assert_int_equal(io_rec.n[0], 12);
	for (i = 0; i < 11; i++)
		assert_memory_equal(io_rec.line[0][i], "HELP ", 5);
	assert_string_equal(io_rec.line[0][7],
	    "HELP /whisper NICK TEXT   "
	    "private message (alias /w)");
	assert_string_equal(io_rec.line[0][8],
	    "HELP /stats               server statistics (STAT lines)");
	assert_string_equal(io_rec.line[0][11], "END HELP");
	io_rec.n[0] = 0;
	say(c, 0, "/help me");
	EXPECT(0, "ERR 405 USAGE usage: /help");
}

static void
test_chat_unknown_command(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/Dance now");
	EXPECT(0,
	    "ERR 404 UNKNOWN_COMMAND unknown command /Dance; /help lists "
	    "commands");
	say(c, 0, "/");
	EXPECT(0,
	    "ERR 404 UNKNOWN_COMMAND unknown command /; /help lists "
	    "commands");
	all_quiet(); /* not sent as a message */
}

static void
test_chat_quit_registered(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 1, "/QUIT");
	EXPECT(1, "BYE QUIT goodbye");
	assert_int_equal(io_rec.closed[1], 1);
	EXPECT(0, "PART rust bob quit");
	EXPECT(2, "PART rust bob quit");
	all_quiet();
	assert_false(chat_in_use(c, 1));
	assert_int_equal(chat_user_count(c), 3);
	reg(c, 1, "bob"); /* nickname free again */
}

static void
test_chat_quit_with_text_still_quits(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/quit see you");
	assert_int_equal(io_rec.n[0], 1);
	assert_memory_equal(io_rec.line[0][0], "BYE QUIT ", 9);
	assert_int_equal(io_rec.closed[0], 1);
	assert_false(chat_in_use(c, 0));
}

/* The /quit reason reaches the room's PART line, bounded and sanitised. */
static void
test_chat_quit_reason_in_part_line(void **state)
{
	char line[600], want[600];

	CHAT;

	four_users_rust(c);
	say(c, 1, "/quit  see you \"all\" \xe2\x80\xae\xea\xb0\x80 ");
	EXPECT(1, "BYE QUIT goodbye");
	EXPECT(0, "PART rust bob quit see you 'all' ?\xea\xb0\x80");
	EXPECT(2, "PART rust bob quit see you 'all' ?\xea\xb0\x80");
	all_quiet();
	/* 199 bytes, then a 3-byte character: cut before it (200 max) */
	memset(line, 'x', sizeof(line));
	memcpy(line, "/quit ", 6);
	memcpy(line + 6 + 199, "\xea\xb0\x80tail", 8);
	line[6 + 199 + 8] = '\0';
	say(c, 2, line);
	snprintf(want, sizeof(want), "PART rust carol quit %.199s", line + 6);
	EXPECT(0, want);
	EXPECT(2, "BYE QUIT goodbye");
	all_quiet();
}

/* ---- disconnect and ownership ---------------------------------------- */

static void
test_chat_disconnect_parts_room(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_disconnect(c, 2, "disconnected");
	EXPECT(0, "PART rust carol disconnected");
	EXPECT(1, "PART rust carol disconnected");
	all_quiet();
	assert_int_equal(io_rec.closed[2], 0); /* does not call close */
	assert_false(chat_in_use(c, 2));
	assert_int_equal(chat_user_count(c), 3);
	assert_int_equal(chat_room_count(c), 2);
}

static void
test_chat_disconnect_idempotent(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_disconnect(c, 2, "disconnected");
	clear_all();
	chat_disconnect(c, 2, "disconnected");
	chat_disconnect(c, 6, "disconnected"); /* never used */
	chat_disconnect(c, -1, "disconnected");
	chat_disconnect(c, NSLOT, "disconnected");
	assert_int_equal(io_rec.sends, 0);
	assert_int_equal(chat_user_count(c), 3);
	assert_int_equal(chat_room_count(c), 2);
	say(c, 0, "/users");
	EXPECT(0, "USER alice rust", "USER bob rust", "END USERS 2");
}

static void
test_chat_disconnect_unregistered_silent(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_connect(c, 1);
	clear_all();
	chat_disconnect(c, 1, "disconnected");
	all_quiet();
	assert_false(chat_in_use(c, 1));
	assert_int_equal(chat_user_count(c), 1);
}

static void
test_chat_owner_disconnect_passes_to_longest_member(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_disconnect(c, 0, "disconnected");
	EXPECT(1, "PART rust alice disconnected", "OWNER rust bob");
	EXPECT(2, "PART rust alice disconnected", "OWNER rust bob");
	all_quiet();
	say(c, 3, "/list");
	EXPECT(3, "ROOM lobby 1 -", "ROOM rust 2 bob", "END LIST 2");
	say(c, 2, "/rm rust");
	EXPECT(2, "ERR 434 NOT_OWNER only its owner bob may remove rust");
	say(c, 1, "/rm rust");
	EXPECT(1, "OK RM rust", "REMOVED rust bob", "JOIN lobby carol");
	EXPECT(2, "REMOVED rust bob", "JOIN lobby bob");
}

static void
test_chat_owner_disconnect_while_outside_room(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 0, "/leave");
	clear_all();
	chat_disconnect(c, 0, "disconnected");
	EXPECT(3, "PART lobby alice disconnected");
	EXPECT(1, "OWNER rust bob");
	EXPECT(2, "OWNER rust bob");
	all_quiet();
}

static void
test_chat_ownership_passes_again(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_disconnect(c, 0, "disconnected");
	EXPECT(1, "PART rust alice disconnected", "OWNER rust bob");
	chat_disconnect(c, 1, "disconnected");
	EXPECT(2, "PART rust alice disconnected", "OWNER rust bob",
	    "PART rust bob disconnected", "OWNER rust carol");
	all_quiet();
	say(c, 2, "/rm rust");
	EXPECT(2, "OK RM rust", "REMOVED rust carol");
	EXPECT(3, "JOIN lobby carol");
}

static void
test_chat_owner_quit_passes_ownership(void **state)
{
	CHAT;

	four_users_rust(c);
	say(c, 0, "/quit");
	EXPECT(0, "BYE QUIT goodbye");
	EXPECT(1, "PART rust alice quit", "OWNER rust bob");
	EXPECT(2, "PART rust alice quit", "OWNER rust bob");
	all_quiet();
}

static void
test_chat_empty_room_kept_while_owner_connected(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/add rust");
	say(c, 0, "/leave");
	clear_all();
	say(c, 0, "/list");
	EXPECT(0, "ROOM lobby 1 -", "ROOM rust 0 alice", "END LIST 2");
	say(c, 0, "/join rust");
	EXPECT(0, "OK JOIN rust");
}

static void
test_chat_owner_disconnect_empty_room_deleted(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add rust");
	clear_all();
	chat_disconnect(c, 0, "disconnected");
	all_quiet(); /* nobody was there to tell */
	assert_int_equal(chat_room_count(c), 1);
	say(c, 1, "/join rust");
	EXPECT(1,
	    "ERR 430 NO_SUCH_ROOM no room rust; /list shows rooms, /add "
	    "creates one");
	say(c, 1, "/list");
	EXPECT(1, "ROOM lobby 1 -", "END LIST 1");
}

static void
test_chat_owner_disconnect_several_rooms(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add r1");
	say(c, 0, "/add r2");
	say(c, 0, "/add r3");
	say(c, 0, "/add r4");
	say(c, 1, "/join r3");
	say(c, 0, "/leave");
	clear_all();
	chat_disconnect(c, 0, "disconnected");
	EXPECT(1, "OWNER r3 bob");
	all_quiet();
	assert_int_equal(chat_room_count(c), 2); /* lobby and r3 */
	say(c, 1, "/list");
	EXPECT(1, "ROOM lobby 0 -", "ROOM r3 1 bob", "END LIST 2");
}

static void
test_chat_member_disconnect_keeps_owner(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_disconnect(c, 1, "disconnected");
	clear_all();
	say(c, 3, "/list");
	EXPECT(3, "ROOM lobby 1 -", "ROOM rust 2 alice", "END LIST 2");
}

/* ---- reject and bye -------------------------------------------------- */

static void
test_chat_reject_codes(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	reg(c, 1, "bob");
	chat_reject(c, 0, PERR_EMPTY_LINE);
	chat_reject(c, 0, PERR_LINE_TOO_LONG);
	chat_reject(c, 0, PERR_BAD_UTF8);
	chat_reject(c, 0, PERR_CONTROL_CHAR);
	chat_reject(c, 0, PERR_INTERNAL);
	EXPECT(0, "ERR 400 EMPTY_LINE empty line ignored",
	    "ERR 401 LINE_TOO_LONG line too long, discarded (limit 2000 bytes)",
	    "ERR 402 BAD_UTF8 line is not valid UTF-8, discarded",
	    "ERR 403 CONTROL_CHAR control characters are not allowed",
	    "ERR 500 INTERNAL line refused");
	all_quiet();
	assert_string_equal(chat_room(c, 0), "lobby");
}

static void
test_chat_reject_reports_configured_limit(void **state)
{
	struct chat *c = new_chat(MAX_ROOMS, 16);

	chat_connect(c, 0);
	clear_all();
	chat_reject(c, 0, PERR_LINE_TOO_LONG);
	EXPECT(0,
	    "ERR 401 LINE_TOO_LONG line too long, discarded (limit 16 "
	    "bytes)");
	chat_free(c);
}

static void
test_chat_reject_unregistered_and_free_slot(void **state)
{
	CHAT;

	chat_connect(c, 0);
	clear_all();
	chat_reject(c, 0, PERR_BAD_UTF8);
	EXPECT(0, "ERR 402 BAD_UTF8 line is not valid UTF-8, discarded");
	chat_reject(c, 1, PERR_BAD_UTF8); /* free slot */
	chat_reject(c, -1, PERR_BAD_UTF8);
	chat_reject(c, NSLOT, PERR_BAD_UTF8);
	all_quiet();
	assert_false(chat_is_registered(c, 0));
}

static void
test_chat_bye_server_initiated(void **state)
{
	CHAT;

	four_users_rust(c);
	chat_bye(c, 1, "SHUTDOWN", "server shutting down");
	EXPECT(1, "BYE SHUTDOWN server shutting down");
	EXPECT(0, "PART rust bob disconnected");
	EXPECT(2, "PART rust bob disconnected");
	all_quiet();
	assert_int_equal(io_rec.closed[1], 1);
	assert_false(chat_in_use(c, 1));
}

static void
test_chat_bye_unregistered_and_free_slot(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	chat_connect(c, 1);
	clear_all();
	chat_bye(c, 1, "REGISTER_TIMEOUT", "no nickname in 30 seconds");
	EXPECT(1, "BYE REGISTER_TIMEOUT no nickname in 30 seconds");
	assert_int_equal(io_rec.closed[1], 1);
	all_quiet();
	chat_bye(c, 1, "SHUTDOWN", "again"); /* now free: nothing */
	chat_bye(c, 5, "SHUTDOWN", "never");
	all_quiet();
	assert_int_equal(io_rec.closed[1], 1);
	assert_int_equal(io_rec.closed[5], 0);
}

static void
test_chat_full_example_session(void **state)
{
	CHAT;

	/* the example in docs/PROTOCOL.md */
	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/add rust");
	EXPECT(0, "OK ADD rust", "OK JOIN rust");
	say(c, 1, "/join rust");
	EXPECT(0, "JOIN rust bob");
	say(c, 1, "hi alice");
	EXPECT(0, "MSG rust bob hi alice");
	say(c, 0, "hello bob");
	say(c, 0, "/users");
	EXPECT(0, "USER alice rust", "USER bob rust", "END USERS 2");
	say(c, 0, "/whisper bob psst");
	EXPECT(0, "OK WHISPER bob");
	say(c, 0, "/list");
	EXPECT(0, "ROOM lobby 0 -", "ROOM rust 2 alice", "END LIST 2");
	say(c, 0, "/quit");
	EXPECT(0, "BYE QUIT goodbye");
	EXPECT(1, "PART lobby alice left", "OK JOIN rust",
	    "MSG rust alice hello bob", "WHISPER alice psst",
	    "PART rust alice quit", "OWNER rust bob");
	all_quiet();
}

static void
test_chat_many_users_hash_consistent(void **state)
{
	static const char *nicks[NSLOT] = { "ann", "Ben", "cat", "DAN", "eve",
		"fay", "gus", "hal" };
	char cmd[64], want[64];
	CHAT;
	int s, t;

	for (s = 0; s < NSLOT; s++)
		reg(c, s, nicks[s]);
	assert_int_equal(chat_user_count(c), NSLOT);
	chat_disconnect(c, 0, "disconnected");
	chat_disconnect(c, 3, "disconnected");
	chat_disconnect(c, 5, "disconnected");
	clear_all();
	/* every remaining nick is still found; every removed one is gone */
	for (t = 0; t < NSLOT; t++) {
		snprintf(cmd, sizeof(cmd), "/w %s hi", nicks[t]);
		say(c, 7 == t ? 6 : 7, cmd);
		if (t == 0 || t == 3 || t == 5) {
			snprintf(want, sizeof(want),
			    "ERR 440 NO_SUCH_USER "
			    "nobody is called %s",
			    nicks[t]);
			EXPECT(7, want);
		} else {
			snprintf(want, sizeof(want), "OK WHISPER %s", nicks[t]);
			EXPECT(7 == t ? 6 : 7, want);
			EXPECT(t, 7 == t ? "WHISPER gus hi" : "WHISPER hal hi");
		}
	}
	all_quiet();
	/* and the freed nicks can be taken again */
	reg(c, 0, "DAN");
	reg(c, 3, "ann");
	assert_int_equal(chat_user_count(c), NSLOT - 1);
}

static void
test_chat_longest_msg_within_bound(void **state)
{
	static char line[MAX_LINE + 1], room[200] = "/add ", nick[80] = "";
	CHAT;
	int i;

	for (i = 0; i < 32; i++)
		strncat(room, "\xf0\x9f\x98\x80",
		    sizeof(room) - strlen(room) - 1); /* 32 4-byte characters */
	for (i = 0; i < 16; i++)
		strncat(
		    nick, "\xf0\x9f\x98\xba", sizeof(nick) - strlen(nick) - 1);
	reg(c, 0, nick);
	reg(c, 1, "bob");
	say(c, 0, room);
	say(c, 1, room + 1); /* "add ..." is a message */
	room[1] = 'j', room[2] = 'o', room[3] = 'i', room[4] = 'n';
	clear_all();
	say(c, 1,
	    "/join \xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
	    "\xf0\x9f\x98\x80");
	assert_int_equal(io_rec.n[1], 1); /* OK JOIN */
	clear_all();
	memset(line, 'x', MAX_LINE);
	say(c, 0, line);
	assert_int_equal(io_rec.n[1], 1);
	/* "MSG " room(128) " " nick(64) " " text(2000) = 2198 bytes */
	assert_int_equal(strlen(io_rec.line[1][0]), 2198);
	assert_true(strlen(io_rec.line[1][0]) + 1 <= MAX_LINE + 200);
}

/*
 * BUG (chat.c out_err): the text of an ERR line is formatted into a
 * 512-byte buffer with vsnprintf, which truncates at a byte, not at a
 * character.  Echoing a long non-ASCII argument therefore cuts a UTF-8
 * sequence in half and the server sends invalid UTF-8.  Repro: registered
 * client sends "/join " followed by 300 x U+D55C (each 3 bytes).  Expected
 * every server line to be valid UTF-8; actual: "ERR 430 NO_SUCH_ROOM no
 * room 한한...한\xed\x95" (511 text bytes, ends in a partial sequence).
 */
static void
test_chat_err_lines_stay_valid_utf8(void **state)
{
	static char cmd[1000] = "/join ";
	CHAT;
	int i;

	for (i = 0; i < 300; i++)
		strncat(cmd, "\xed\x95\x9c", sizeof(cmd) - strlen(cmd) - 1);
	reg(c, 0, "alice");
	say(c, 0, cmd);
	assert_int_equal(io_rec.n[0], 1);
	assert_memory_equal(io_rec.line[0][0], "ERR 430 NO_SUCH_ROOM ", 21);
	assert_true(utf8_valid(io_rec.line[0][0], strlen(io_rec.line[0][0])));
}

/* ---- /stats and the statistics hooks --------------------------------- */

static struct {
	int messages, recipients, last_slot, stats_calls;
} hook_rec;

static void
fake_message(void *ctx, int slot, int recipients)
{
	assert_ptr_equal(ctx, &io_rec);
	hook_rec.messages++;
	hook_rec.recipients += recipients;
	hook_rec.last_slot = slot;
}

static size_t
fake_stats(void *ctx, struct stats_item *it, size_t max)
{
	static const struct stats_item items[] = { { "uptime_s", 7 },
		{ "clients", 3 },
		{ "fanout_max_us", 18446744073709551615ULL } };
	size_t n = sizeof(items) / sizeof(items[0]);

	assert_ptr_equal(ctx, &io_rec);
	assert_int_equal(max, STATS_MAX_ITEMS);
	hook_rec.stats_calls++;
	memcpy(it, items, sizeof(items));
	return n;
}

static void
hooks_on(struct chat *c)
{
	struct chat_hooks h = { fake_message, fake_stats, NULL, NULL };

	memset(&hook_rec, 0, sizeof(hook_rec));
	chat_set_hooks(c, &h);
}

static void
test_chat_stats_without_hooks(void **state)
{
	CHAT;

	reg(c, 0, "alice");
	say(c, 0, "/stats");
	EXPECT(0, "END STATS 0");
	say(c, 0, "/STATS");
	EXPECT(0, "END STATS 0");
}

static void
test_chat_stats_lines_from_hook(void **state)
{
	CHAT;

	hooks_on(c);
	reg(c, 0, "alice");
	reg(c, 1, "bob");
	say(c, 0, "/stats");
	EXPECT(0, "STAT uptime_s 7", "STAT clients 3",
	    "STAT fanout_max_us 18446744073709551615", "END STATS 3");
	all_quiet(); /* nobody else hears about it */
	assert_int_equal(hook_rec.stats_calls, 1);
	assert_int_equal(hook_rec.messages, 0);
}

static void
test_chat_stats_needs_registration_and_no_args(void **state)
{
	CHAT;

	hooks_on(c);
	chat_connect(c, 0);
	clear_all();
	say(c, 0, "/stats");
	EXPECT(0, "ERR 410 NOT_REGISTERED send your nickname first");
	reg(c, 1, "bob");
	say(c, 1, "/stats now");
	EXPECT(1, "ERR 405 USAGE usage: /stats");
	assert_int_equal(hook_rec.stats_calls, 0);
}

static void
test_chat_message_hook_counts_recipients(void **state)
{
	CHAT;

	hooks_on(c);
	four_users_rust(c); /* alice, bob, carol in rust; dave in lobby */
	say(c, 1, "hello rust");
	assert_int_equal(hook_rec.messages, 1);
	assert_int_equal(hook_rec.recipients, 2);
	assert_int_equal(hook_rec.last_slot, 1);
	say(c, 3, "alone in the lobby");
	assert_int_equal(hook_rec.messages, 2);
	assert_int_equal(hook_rec.recipients, 2);
	say(c, 0, "/list"); /* commands are not messages */
	say(c, 0, "/whisper bob psst");
	assert_int_equal(hook_rec.messages, 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_chat_connect_sends_hello),
		T(test_chat_register_ok),
		T(test_chat_register_lobby_sees_join),
		T(test_chat_register_nick_taken_case_insensitive),
		T(test_chat_register_latin1_clash),
		T(test_chat_register_greek_and_cyrillic_clash),
		T(test_chat_register_korean_nick),
		T(test_chat_register_too_long),
		T(test_chat_register_bad_chars),
		T(test_chat_register_refuses_invisible_and_bidi),
		T(test_chat_register_lookalikes_clash),
		T(test_chat_add_refuses_invisible_and_lookalike_rooms),
		T(test_chat_dash_is_not_a_name),
		T(test_chat_names_stored_nfc_found_by_key),
		T(test_chat_commands_before_registration),
		T(test_chat_help_before_registration),
		T(test_chat_quit_before_registration),
		T(test_chat_nick_free_after_disconnect),
		T(test_chat_slot_reuse_starts_fresh),
		T(test_chat_line_on_free_slot_ignored),
		T(test_chat_message_fanout_exactly_once_not_sender),
		T(test_chat_message_stays_in_room),
		T(test_chat_message_not_after_leaving),
		T(test_chat_message_double_slash),
		T(test_chat_message_verbatim_spaces_and_utf8),
		T(test_chat_message_alone_produces_nothing),
		T(test_chat_message_max_line_delivered_whole),
		T(test_chat_message_order_preserved),
		T(test_chat_add_creates_and_enters),
		T(test_chat_add_from_room_parts_old_room),
		T(test_chat_add_exists_case_insensitive),
		T(test_chat_add_bad_room),
		T(test_chat_add_korean_room_32_chars),
		T(test_chat_add_max_rooms),
		cmocka_unit_test(test_chat_add_max_rooms_zero),
		cmocka_unit_test(test_chat_add_exists_checked_before_limit),
		T(test_chat_add_usage),
		T(test_chat_join_notices),
		T(test_chat_join_case_insensitive_canonical_name),
		T(test_chat_join_no_such_room),
		T(test_chat_join_already_in_room),
		T(test_chat_join_lobby_from_room),
		T(test_chat_join_usage),
		T(test_chat_leave_to_lobby),
		T(test_chat_leave_in_lobby),
		T(test_chat_leave_usage),
		T(test_chat_rm_moves_members_to_lobby),
		T(test_chat_rm_by_owner_outside_room),
		T(test_chat_rm_empty_room),
		T(test_chat_rm_not_owner),
		T(test_chat_rm_lobby),
		T(test_chat_rm_no_such_room),
		T(test_chat_rm_case_insensitive_and_name_reusable),
		T(test_chat_rm_usage),
		T(test_chat_list_lobby_only),
		T(test_chat_list_rooms_counts_owners),
		T(test_chat_list_usage),
		T(test_chat_users_room_join_order),
		T(test_chat_users_all),
		T(test_chat_users_usage),
		T(test_chat_whisper_success_reaches_only_target),
		T(test_chat_whisper_alias_and_case_insensitive_nick),
		T(test_chat_whisper_no_such_user),
		T(test_chat_whisper_self),
		T(test_chat_whisper_after_target_left),
		T(test_chat_whisper_usage),
		T(test_chat_help_lines),
		T(test_chat_unknown_command),
		T(test_chat_quit_registered),
		T(test_chat_quit_with_text_still_quits),
		T(test_chat_quit_reason_in_part_line),
		T(test_chat_disconnect_parts_room),
		T(test_chat_disconnect_idempotent),
		T(test_chat_disconnect_unregistered_silent),
		T(test_chat_owner_disconnect_passes_to_longest_member),
		T(test_chat_owner_disconnect_while_outside_room),
		T(test_chat_ownership_passes_again),
		T(test_chat_owner_quit_passes_ownership),
		T(test_chat_empty_room_kept_while_owner_connected),
		T(test_chat_owner_disconnect_empty_room_deleted),
		T(test_chat_owner_disconnect_several_rooms),
		T(test_chat_member_disconnect_keeps_owner),
		T(test_chat_reject_codes),
		cmocka_unit_test(test_chat_reject_reports_configured_limit),
		T(test_chat_reject_unregistered_and_free_slot),
		T(test_chat_bye_server_initiated),
		T(test_chat_bye_unregistered_and_free_slot),
		T(test_chat_full_example_session),
		T(test_chat_many_users_hash_consistent),
		T(test_chat_longest_msg_within_bound),
		T(test_chat_err_lines_stay_valid_utf8),
		T(test_chat_stats_without_hooks),
		T(test_chat_stats_lines_from_hook),
		T(test_chat_stats_needs_registration_and_no_args),
		T(test_chat_message_hook_counts_recipients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
