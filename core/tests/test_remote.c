/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_remote.c - unit tests for remote.c, what this hub knows of the
 * others: a snapshot stored per hub (replaced, not merged, when the hub
 * speaks again); lines that are not plain text are skipped; rooms found
 * by key, named as the owner's hub names them, with the owner other hubs
 * report; a nick found with its hub; silent hubs forgotten (the others
 * kept in order), each passed to the callback before it goes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "chat/name.h"
#include "chat/remote.h"

static struct remotes *t;

static int
setup(void **state)
{
	t = remotes_new();
	assert_non_null(t);
	return 0;
}

static int
teardown(void **state)
{
	remotes_free(t);
	return 0;
}

static void
store(const char *hub, const char *blob, long long now)
{
	remote_store(t, hub, strlen(hub), blob, strlen(blob), now);
}

static int
count_line(const struct remote *h, const struct rline *rl, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void
key_of(const char *name, char key[NAME_KEYSZ])
{
	assert_true(name_key(name, strlen(name), key) > 0);
}

/* A hub's second snapshot replaces its first; hubs are found by name. */
static void
test_store_replaces_per_hub(void **state)
{
	int n = 0;

	store("a", "R lobby 1 -\nU amy lobby\n", 1);
	store("b", "U bo lobby\n", 1);
	store("a", "R lobby 0 -\n", 2);
	assert_int_equal(remotes_count(t), 2);
	assert_int_equal(remote_each(t, count_line, &n), 0);
	assert_int_equal(n, 2);
	assert_non_null(remote_find(t, "b", 1));
	assert_null(remote_find(t, "c", 1));
	assert_int_equal(remote_find(t, "a", 1)->seen_ms, 2);
}

/* A line with a control character (here an ESC) is never handed out. */
static void
test_lines_not_plain_are_skipped(void **state)
{
	int n = 0;

	store("a", "U ev\x1bil lobby\nU amy lobby\nbad\n", 1);
	remote_each(t, count_line, &n);
	assert_int_equal(n, 1);
}

/* Rooms: by key (case folded), named as the owner's hub has it. */
static void
test_room_name_owner_and_existence(void **state)
{
	char key[NAME_KEYSZ], name[NAME_SZ], owner[NAME_SZ];

	store("a", "R chess 2 -\n", 1);        /* a part without its owner */
	store("b", "R Chess 1 kasparov\n", 1); /* the owner's hub */
	assert_true(remote_has_room(t, "CHESS", 5));
	assert_false(remote_has_room(t, "go", 2));
	key_of("chess", key);
	assert_int_equal(remote_room_name(t, key, name), 1);
	assert_string_equal(name, "Chess");
	remote_room_owner(t, key, owner);
	assert_string_equal(owner, "kasparov");
	key_of("go", key);
	assert_int_equal(remote_room_name(t, key, name), 0);
	assert_string_equal(name, "");
	remote_room_owner(t, key, owner);
	assert_string_equal(owner, "");
}

static void
test_find_nick_with_its_hub(void **state)
{
	const struct remote *h = NULL;
	char key[NAME_KEYSZ], nick[NAME_SZ];

	store("a", "U amy lobby\n", 1);
	store("b", "U Bo chess\n", 1);
	key_of("bo", key);
	assert_int_equal(remote_find_nick(t, key, &h, nick), 1);
	assert_string_equal(nick, "Bo");
	assert_string_equal(h->hub, "b");
	key_of("cy", key);
	assert_int_equal(remote_find_nick(t, key, &h, nick), 0);
}

static char gone_hubs[64];

static void
on_gone(const struct remote *h, void *arg)
{
	int n = 0;
	size_t used = strlen(gone_hubs);

	snprintf(gone_hubs + used, sizeof(gone_hubs) - used, "%.8s", h->hub);
	remote_hub_each(h, count_line, &n);
	*(int *)arg += n;
}

/* Past the TTL a hub is forgotten, after the callback saw its lines; the
 * hub heard at exactly the TTL stays, and the order is kept. */
static void
test_expire_forgets_silent_hubs_in_order(void **state)
{
	int lines = 0;

	gone_hubs[0] = '\0';
	store("a", "U amy lobby\n", 100);
	store("b", "U bo lobby\nU cy lobby\n", 10);
	store("c", "U di lobby\n", 50);
	store("d", "U ed lobby\n", 100);
	remote_expire(t, 150, 100, on_gone, &lines);
	assert_string_equal(gone_hubs, "b");
	assert_int_equal(lines, 2);
	assert_int_equal(remotes_count(t), 3);
	assert_null(remote_find(t, "b", 1));
	remote_expire(t, 151, 100, on_gone, &lines);
	assert_string_equal(gone_hubs, "bc");
	assert_int_equal(remotes_count(t), 2);
	assert_non_null(remote_find(t, "a", 1));
	assert_non_null(remote_find(t, "d", 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_replaces_per_hub, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_lines_not_plain_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_room_name_owner_and_existence, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_find_nick_with_its_hub, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_expire_forgets_silent_hubs_in_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
