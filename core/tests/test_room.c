/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_room.c - unit tests for room.c and nick.c, the chat's tables: the
 * lobby exists from the start, first; rooms are found by
 * key (case and lookalikes folded); members keep join order through joins
 * and leaves in any position; room_send reaches every member but one, in
 * order; the table holds max_rooms besides the lobby.  Nick keys: one slot
 * per key, found again after others are removed from the same chain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "chat/nick.h"
#include "chat/room.h"

#define NSLOT 16

static int sent[64], nsent;

static void
rec_send(void *ctx, int slot, const char *line, size_t len)
{
	assert_int_equal(len, 2);
	assert_memory_equal(line, "x\n", 2);
	sent[nsent++] = slot;
}

static void
rec_close(void *ctx, int slot)
{
}

static const struct chat_io io = { NULL, rec_send, rec_close };

static void
members(const struct rooms *t, const struct room *r, const int *want, int n)
{
	int s, i = 0;

	for (s = r->head; s >= 0; s = room_next(t, s), i++) {
		assert_true(i < n);
		assert_int_equal(s, want[i]);
		assert_ptr_equal(room_of(t, s), r);
	}
	assert_int_equal(i, n);
	assert_int_equal(r->count, n);
}

static void
test_lobby_and_lookup(void **state)
{
	struct rooms *t = rooms_new(2, NSLOT, &io);
	struct room *r;

	assert_non_null(t);
	assert_int_equal(rooms_count(t), 1);
	assert_string_equal(room_lobby(t)->name, "lobby");
	r = room_create(t, "Chess", "chess", 3);
	assert_non_null(r);
	assert_ptr_equal(room_find(t, "CHESS", 5), r);
	assert_ptr_equal(room_find_key(t, "chess"), r);
	assert_null(room_find(t, "go", 2));
	assert_non_null(room_create(t, "go", "go", 3));
	assert_null(room_create(t, "third", "third", 3)); /* max_rooms 2 */
	assert_int_equal(rooms_count(t), 3);
	room_delete(t, r);
	assert_int_equal(rooms_count(t), 2);
	assert_string_equal(rooms_at(t, 1)->name, "go");
	rooms_free(t);
}

static void
test_members_keep_join_order(void **state)
{
	struct rooms *t = rooms_new(1, NSLOT, &io);
	struct room *lobby = room_lobby(t);
	const int all[] = { 4, 1, 9, 2 }, mid_gone[] = { 4, 9, 2 },
	          ends_gone[] = { 9 }, back[] = { 9, 4 };

	room_link(t, 4, lobby);
	room_link(t, 1, lobby);
	room_link(t, 9, lobby);
	room_link(t, 2, lobby);
	members(t, lobby, all, 4);
	nsent = 0;
	assert_int_equal(room_send(t, lobby, 9, "x\n", 2), 3);
	assert_int_equal(nsent, 3);
	assert_int_equal(sent[0], 4);
	assert_int_equal(sent[1], 1);
	assert_int_equal(sent[2], 2);
	room_unlink(t, 1);
	assert_null(room_of(t, 1));
	members(t, lobby, mid_gone, 3);
	room_unlink(t, 4);
	room_unlink(t, 2);
	members(t, lobby, ends_gone, 1);
	room_unlink(t, 2); /* not in a room: nothing */
	room_link(t, 4, lobby);
	members(t, lobby, back, 2);
	rooms_free(t);
}

static void
test_nick_keys(void **state)
{
	struct nicks *t = nicks_new(2); /* 5 chains: collisions are likely */
	int i;

	assert_non_null(t);
	nick_add(t, 0, "amy");
	nick_add(t, 1, "bo");
	assert_int_equal(nick_find_key(t, "amy"), 0);
	assert_int_equal(nick_find(t, "BO", 2), 1);
	assert_int_equal(nick_find_key(t, "cy"), -1);
	assert_string_equal(nick_key(t, 1), "bo");
	nick_remove(t, 0);
	assert_int_equal(nick_find_key(t, "amy"), -1);
	assert_int_equal(nick_find_key(t, "bo"), 1);
	assert_string_equal(nick_key(t, 0), "");
	nick_remove(t, 0); /* holds none: nothing */
	nick_add(t, 0, "amy");
	for (i = 0; i < 2; i++)
		nick_remove(t, i);
	assert_int_equal(nick_find_key(t, "bo"), -1);
	nicks_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lobby_and_lookup),
		cmocka_unit_test(test_members_keep_join_order),
		cmocka_unit_test(test_nick_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
