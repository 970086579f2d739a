/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_chatfed.c - unit tests for the chat with federation: chat_set_fed
 * and chat_fed_claimed (chat.c), the chat_fed_* entry points (chatfed.c)
 * and other hubs' snapshots (remote.c), through chat.h: the hooks a room-wide line and a
 * registration call, the pending claim (lines held, then answered in order;
 * refused; client gone before the answer), remote room lines and whispers,
 * presence snapshots merged into /list and /users, remote-only rooms for
 * /add and /join, and forgetting a silent hub; a held line that cannot be
 * stored is refused whole (issue 12).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"

/* malloc(n) fails for n >= fail_from (0: never); linked with --wrap. */
static size_t fail_from;
void *__real_malloc(size_t n);
void *
__wrap_malloc(size_t n)
{
	return fail_from && n >= fail_from ? NULL : __real_malloc(n);
}

#define NSLOT 4

static struct {
	char out[NSLOT][4096];
	char pub[8192];
	unsigned token;
	char claimed[64], released[256];
	int changed;
} r;

static void
io_send(void *ctx, int slot, const char *line, size_t len)
{
	(void)ctx;
	strncat(r.out[slot], line, len);
}

static void
io_close(void *ctx, int slot)
{
	(void)ctx;
	(void)slot;
}

static void
f_room_line(void *ctx, const char *key, const char *line, size_t len)
{
	(void)ctx;
	strncat(r.pub, key, sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, "|", sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, line, len);
}

static void
f_claim(void *ctx, unsigned token, const char *key)
{
	(void)ctx;
	r.token = token;
	snprintf(r.claimed, sizeof(r.claimed), "%s", key);
}

static void
f_release(void *ctx, const char *key)
{
	(void)ctx;
	strncat(r.released, key, sizeof(r.released) - strlen(r.released) - 1);
	strncat(r.released, ",", sizeof(r.released) - strlen(r.released) - 1);
}

static void
f_whisper(void *ctx, const char *hub, const char *from, const char *to,
    const char *text, size_t len)
{
	(void)ctx;
	snprintf(r.pub, sizeof(r.pub), "W %s %s %s %.*s", hub, from, to,
	    (int)len, text);
}

static void
f_changed(void *ctx)
{
	(void)ctx;
	r.changed++;
}

static void
f_room_removed(void *ctx, const char *key, const char *by)
{
	(void)ctx;
	strncat(r.pub, "D ", sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, key, sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, " ", sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, by, sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, "\n", sizeof(r.pub) - strlen(r.pub) - 1);
}

static void
f_room_orphaned(void *ctx, const char *key)
{
	(void)ctx;
	strncat(r.pub, "O ", sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, key, sizeof(r.pub) - strlen(r.pub) - 1);
	strncat(r.pub, "\n", sizeof(r.pub) - strlen(r.pub) - 1);
}

static struct chat *
fed_chat(void)
{
	static const struct chat_io io = { NULL, io_send, io_close };
	struct chat_limits lim = { NSLOT, 4, 2000 };
	struct chat_fed f = { NULL, f_room_line, f_claim, f_release, f_whisper,
		f_changed, f_room_removed, f_room_orphaned };
	struct chat *c = chat_new(&lim, &io);

	assert_non_null(c);
	chat_set_fed(c, &f);
	memset(&r, 0, sizeof(r));
	return c;
}

static void
say(struct chat *c, int slot, const char *s)
{
	chat_line(c, slot, s, strlen(s));
}

static void
reg(struct chat *c, int slot, const char *nick)
{
	chat_connect(c, slot);
	say(c, slot, nick);
	assert_string_equal(r.claimed, nick);
	chat_fed_claimed(c, r.token, 1);
	assert_non_null(strstr(r.out[slot], "OK JOIN lobby\n"));
	memset(r.out, 0, sizeof(r.out));
	r.pub[0] = '\0';
}

static const char hub1[] = "R lobby 2 -\nR ops 1 zed\nU zed ops\nU yan lobby\n"
                           "U xi lobby\nU bad\x01 lobby\n";

static void
test_chatfed_claim_holds_lines(void **state)
{
	struct chat *c = fed_chat();
	unsigned t;

	chat_connect(c, 0);
	say(c, 0, "Ann");
	assert_string_equal(r.claimed, "ann");
	t = r.token;
	say(c, 0, "/users"); /* held until the claim is answered */
	assert_null(strstr(r.out[0], "USER"));
	chat_fed_claimed(c, t + 100, 1); /* unknown token: ignored */
	chat_fed_claimed(c, t, 1);
	assert_non_null(strstr(r.out[0],
	    "OK NICK Ann\nOK JOIN lobby\nUSER Ann lobby\nEND USERS 1\n"));
	assert_non_null(strstr(r.pub, "lobby|JOIN lobby Ann"));
	assert_true(r.changed > 0);
	/* refused: the held line is a new registration attempt */
	chat_connect(c, 1);
	say(c, 1, "bob");
	t = r.token;
	say(c, 1, "carl");
	chat_fed_claimed(c, t, 0);
	assert_non_null(strstr(r.out[1], "ERR 422 NICK_TAKEN"));
	assert_string_equal(r.claimed, "carl");
	assert_non_null(strstr(r.released, "bob,"));
	chat_fed_claimed(c, r.token, 1);
	assert_non_null(strstr(r.out[1], "OK NICK carl\n"));
	/* gone before the answer: released, the late answer is ignored */
	chat_connect(c, 2);
	say(c, 2, "dee");
	t = r.token;
	chat_disconnect(c, 2, "disconnected");
	assert_non_null(strstr(r.released, "dee,"));
	chat_fed_claimed(c, t, 1);
	/* taken elsewhere during an outage: the local holder goes */
	chat_fed_lost(c, "nobody", 6);
	chat_fed_lost(c, "carl", 4);
	assert_non_null(strstr(r.out[1], "BYE NICK_TAKEN "));
	assert_non_null(strstr(r.released, "carl,"));
	assert_false(chat_is_registered(c, 1));
	/* a registered user's quit releases the nick */
	chat_disconnect(c, 0, "quit");
	assert_non_null(strstr(r.released, "ann,"));
	chat_free(c);
}

static void
test_chatfed_remote_lines_and_presence(void **state)
{
	struct chat *c = fed_chat();
	struct buf b = BUF_INIT;

	reg(c, 0, "ann");
	say(c, 0, "hi all");
	assert_string_equal(r.pub, "lobby|MSG lobby ann hi all\n");
	chat_fed_room_line(c, "lobby", 5, "MSG lobby zed yo", 16);
	assert_string_equal(r.out[0], "MSG lobby zed yo\n");
	chat_fed_room_line(c, "nowhere", 7, "MSG nowhere zed yo", 18);
	chat_fed_room_line(c, "lobby", 5, "MSG lobby zed a\nBYE X", 21);
	chat_fed_whisper(c, "zed", 3, "ann", 3, "a\rb", 3);
	chat_fed_whisper(c, "zed", 3, "ANN", 3, "psst", 4);
	chat_fed_whisper(c, "zed", 3, "nobody", 6, "psst", 4);
	assert_string_equal(r.out[0], "MSG lobby zed yo\nWHISPER zed psst\n");
	memset(r.out, 0, sizeof(r.out));
	chat_fed_presence(c, "hub1", 4, hub1, strlen(hub1), 1000);
	chat_fed_presence(c, "hub1", 4, hub1, strlen(hub1), 2000); /* replace */
	say(c, 0, "/list");
	assert_string_equal(
	    r.out[0], "ROOM lobby 3 -\nROOM ops 1 zed\nEND LIST 2\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/users");
	assert_string_equal(r.out[0],
	    "USER ann lobby\nUSER yan lobby\nUSER xi lobby\nEND USERS 3\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/users all");
	assert_non_null(strstr(r.out[0], "USER zed ops\n"));
	assert_non_null(strstr(r.out[0], "END USERS 4\n"));
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/whisper Zed hello there");
	assert_string_equal(r.out[0], "OK WHISPER zed\n");
	assert_string_equal(r.pub, "W hub1 ann zed hello there");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/add OPS");
	assert_non_null(strstr(r.out[0], "ERR 431 ROOM_EXISTS"));
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/join ops"); /* this hub's part; the owner stays zed */
	assert_string_equal(r.out[0], "OK JOIN ops\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/list");
	assert_string_equal(
	    r.out[0], "ROOM lobby 2 -\nROOM ops 2 zed\nEND LIST 2\n");
	assert_int_equal(chat_fed_snapshot(c, &b), 0);
	buf_append(&b, "", 1);
	assert_string_equal(
	    buf_head(&b), "R lobby 0 -\nR ops 1 -\nU ann ops\n");
	buf_free(&b);
	/* events of hub1 lost: the members of its users' rooms here (ann in
	 * ops; nobody of ours in the lobby) are told once per room */
	memset(r.out, 0, sizeof(r.out));
	chat_fed_gap(c, "hub9", 4, 3); /* its users unknown: everybody */
	assert_string_equal(r.out[0],
	    "NOTICE MESSAGES_LOST 3 events from hub hub9 were lost before "
	    "this hub read them; some lines of ops may be missing\n");
	memset(r.out, 0, sizeof(r.out));
	chat_fed_gap(c, "hub1", 4, 3);
	assert_string_equal(r.out[0],
	    "NOTICE MESSAGES_LOST 3 events from hub hub1 were lost before "
	    "this hub read them; some lines of ops may be missing\n");
	/* a silent hub is forgotten: its users part with reason hub-lost
	 * where we have members (ops; nobody of ours is in the lobby) */
	memset(r.out, 0, sizeof(r.out));
	chat_fed_expire(c, 5000, 10000);
	assert_string_equal(r.out[0], "");
	chat_fed_expire(c, 20000, 10000);
	assert_string_equal(r.out[0], "PART ops zed hub-lost\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/users all");
	assert_string_equal(r.out[0], "USER ann ops\nEND USERS 1\n");
	chat_free(c);
}

/* What another hub (or whoever writes to Redis) calls a user, a room or an
 * owner is shown only if it follows the name profile: no bidi control or
 * invisible character reaches our clients as a name. */
static void
test_chatfed_remote_names_follow_the_profile(void **state)
{
	static const char evil[] = "R lobby 1 -\n"
	                           "R r\xe2\x80\xae"
	                           "oom 1 zed\n" /* U+202E in a room */
	                           "R ops 1 m\xe2\x80\xae"
	                           "al\n" /* ... in an owner */
	                           "U bo\xe2\x81\xa0"
	                           "b lobby\n" /* U+2060 in a nick */
	                           "U zed r\xe2\x80\xae"
	                           "oom\n"
	                           "U \xe3\x85\xa4 lobby\n" /* U+3164 alone */
	                           "U yan lobby\n";
	struct chat *c = fed_chat();

	reg(c, 0, "ann");
	chat_fed_presence(c, "hub1", 4, evil, strlen(evil), 1000);
	say(c, 0, "/users all");
	assert_string_equal(
	    r.out[0], "USER ann lobby\nUSER yan lobby\nEND USERS 2\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/list");
	assert_string_equal(
	    r.out[0], "ROOM lobby 2 -\nROOM ops 1 -\nEND LIST 2\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0,
	    "/whisper bo\xe2\x81\xa0"
	    "b hi");
	assert_non_null(strstr(r.out[0], "ERR 440 NO_SUCH_USER"));
	memset(r.out, 0, sizeof(r.out));
	chat_fed_whisper(c,
	    "m\xe2\x80\xae"
	    "al",
	    6, "ann", 3, "hi", 2);
	chat_fed_whisper(c, "yan", 3, "ann", 3, "hi", 2);
	assert_string_equal(r.out[0], "WHISPER yan hi\n");
	chat_free(c);
}

/* A part of a room owned on another hub: /rm is refused with the owner's
 * name, an OWNER line from there moves it, and the part goes when its last
 * local member leaves. */
static void
test_chatfed_room_part_owned_elsewhere(void **state)
{
	struct chat *c = fed_chat();

	reg(c, 0, "ann");
	reg(c, 1, "bob");
	chat_fed_presence(c, "hub1", 4, hub1, strlen(hub1), 1000);
	say(c, 0, "/rm ops"); /* no part here yet */
	assert_string_equal(r.out[0],
	    "ERR 434 NOT_OWNER only its owner zed "
	    "(on another hub) may remove ops\n");
	say(c, 0, "/rm nowhere");
	assert_non_null(strstr(r.out[0], "ERR 430 NO_SUCH_ROOM"));
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/join OPS"); /* spelled as where it was made (issue 14) */
	assert_string_equal(r.out[0], "OK JOIN ops\n");
	say(c, 1, "/join ops");
	assert_int_equal(chat_room_count(c), 2);
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm OPS");
	assert_string_equal(r.out[0],
	    "ERR 434 NOT_OWNER only its owner zed "
	    "(on another hub) may remove ops\n");
	/* a line from a hub that spells it otherwise: ours spell it as here */
	memset(r.out, 0, sizeof(r.out));
	chat_fed_room_line(c, "ops", 3, "MSG Ops zed hi there", 20);
	assert_string_equal(r.out[0], "MSG ops zed hi there\n");
	chat_fed_room_line(c, "ops", 3, "OWNER ops yan", 13);
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm ops");
	assert_non_null(strstr(r.out[0], "only its owner yan "));
	chat_fed_room_orphaned(c, "nope", 4);
	chat_fed_room_orphaned(c, "ops", 3);
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm ops");
	assert_string_equal(r.out[0],
	    "ERR 434 NOT_OWNER ops has no owner; it "
	    "goes away when its last member leaves\n");
	say(c, 0, "/leave");
	assert_int_equal(chat_room_count(c), 2); /* bob is still in it */
	chat_disconnect(c, 1, "quit");
	assert_int_equal(chat_room_count(c), 1); /* the last one left */
	assert_null(strstr(r.pub, "O ops"));     /* not ours to orphan */
	chat_free(c);
}

/* The owner's /rm reaches the other hubs first; a remote one evicts our
 * members to the lobby. */
static void
test_chatfed_room_removed_everywhere(void **state)
{
	struct chat *c = fed_chat();
	const char *d, *j;

	reg(c, 0, "ann");
	reg(c, 1, "bob");
	say(c, 0, "/add ops");
	say(c, 1, "/join ops");
	r.pub[0] = '\0';
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm ops");
	assert_string_equal(r.out[1], "REMOVED ops ann\nJOIN lobby ann\n");
	assert_non_null(strstr(r.out[0], "REMOVED ops ann\nJOIN lobby bob\n"));
	d = strstr(r.pub, "D ops ann\n");
	j = strstr(r.pub, "lobby|JOIN lobby bob");
	assert_non_null(d);
	assert_non_null(j);
	assert_true(d < j);
	assert_int_equal(chat_room_count(c), 1);
	/* removed on another hub */
	chat_fed_presence(c, "hub1", 4, hub1, strlen(hub1), 1000);
	say(c, 0, "/join ops");
	say(c, 1, "/join ops");
	memset(r.out, 0, sizeof(r.out));
	chat_fed_room_removed(c, "lobby", 5, "zed", 3); /* never */
	chat_fed_room_removed(c, "ops", 3, "z\ned", 4); /* not plain */
	chat_fed_room_removed(c, "nope", 4, "zed", 3);
	assert_int_equal(chat_room_count(c), 2);
	chat_fed_room_removed(c, "ops", 3, "zed", 3);
	assert_string_equal(r.out[0], "REMOVED ops zed\nJOIN lobby bob\n");
	assert_string_equal(r.out[1], "REMOVED ops zed\nJOIN lobby ann\n");
	assert_int_equal(chat_room_count(c), 1);
	assert_string_equal(chat_room(c, 0), "lobby");
	assert_string_equal(chat_room(c, 1), "lobby");
	/* an owner who leaves an empty room: it has no owner anywhere */
	say(c, 0, "/add den");
	say(c, 0, "/leave");
	r.pub[0] = '\0';
	chat_disconnect(c, 0, "quit");
	assert_non_null(strstr(r.pub, "O den\n"));
	assert_int_equal(chat_room_count(c), 1);
	chat_free(c);
}

/* The owner's hub goes silent (killed): its rooms have no owner here. */
static void
test_chatfed_owner_hub_gone(void **state)
{
	struct chat *c = fed_chat();

	reg(c, 0, "ann");
	chat_fed_presence(c, "hub1", 4, hub1, strlen(hub1), 1000);
	chat_fed_presence(c, "hub2", 4, "R ops 2 -\n", 10, 1000);
	say(c, 0, "/join ops");
	chat_fed_presence(c, "hub2", 4, "R ops 2 -\n", 10, 9000);
	chat_fed_expire(c, 5000, 6000); /* nobody silent long enough */
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm ops");
	assert_non_null(strstr(r.out[0], "only its owner zed "));
	chat_fed_expire(c, 10000, 6000); /* hub1 (zed's) is gone */
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/rm ops");
	assert_string_equal(r.out[0],
	    "ERR 434 NOT_OWNER ops has no owner; it "
	    "goes away when its last member leaves\n");
	memset(r.out, 0, sizeof(r.out));
	say(c, 0, "/list"); /* hub2's part and ours remain */
	assert_string_equal(
	    r.out[0], "ROOM lobby 0 -\nROOM ops 3 -\nEND LIST 2\n");
	chat_free(c);
}

/*
 * A line held during a claim is stored whole or not at all: the buffer
 * cannot grow for the second one (as when memory runs out), which is
 * refused; the lines before and after it are answered in order, and the
 * replay reads nothing past what was stored (it used to keep a length
 * without its bytes and replay from there).
 */
static void
test_chatfed_held_line_stored_whole(void **state)
{
	struct chat *c = fed_chat();
	char big[4091];
	unsigned t;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	chat_connect(c, 0);
	say(c, 0, "amy");
	t = r.token;
	say(c, 0, "/users"); /* 14 bytes held in a 4096-byte buffer */
	fail_from = 8192;    /* it cannot grow */
	say(c, 0, big);
	fail_from = 0;
	say(c, 0, "/list");
	chat_fed_claimed(c, t, 1);
	assert_non_null(strstr(r.out[0],
	    "OK NICK amy\nOK JOIN lobby\nUSER amy lobby\nEND USERS 1\n"
	    "ROOM lobby 1 -\nEND LIST 1\n"));
	assert_non_null(strstr(r.out[0], "ERR 500 INTERNAL line dropped"));
	chat_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chatfed_claim_holds_lines),
		cmocka_unit_test(test_chatfed_remote_lines_and_presence),
		cmocka_unit_test(test_chatfed_remote_names_follow_the_profile),
		cmocka_unit_test(test_chatfed_room_part_owned_elsewhere),
		cmocka_unit_test(test_chatfed_room_removed_everywhere),
		cmocka_unit_test(test_chatfed_owner_hub_gone),
		cmocka_unit_test(test_chatfed_held_line_stored_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
