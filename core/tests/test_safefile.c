/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_safefile.c - core/sys/safefile.c against the real kernel: the links,
 * files and directories a local service user could plant where forkchatd
 * (as root) opens its log and pid file, and the directories it creates.
 * Tests that need another owner (chown) need root and are skipped, saying
 * so, without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/safefile.h"

#define OTHER_UID 54321 /* nobody we trust */

static char tmpdir[64];
static char err[PATH_MAX + 256];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_safefile.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	safefile_set_user((uid_t)-1, (gid_t)-1);
	err[0] = '\0';
	return chmod(tmpdir, 0755);
}

static int
teardown(void **state)
{
	safefile_set_user((uid_t)-1, (gid_t)-1);
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *
tpath(const char *name)
{
	static char p[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
	return p[i];
}

static void
spit(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static void
assert_file(const char *path, const char *want)
{
	char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
need_root(void)
{
	if (geteuid() != 0)
		skip(); /* chown to another user needs root */
}

/* Open tmpdir/dir (must succeed) and then name in it. */
static int
open_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int dfd, fd, saved;

	dfd = safefile_dir(
	    tpath(dir), 0, "log directory", NULL, 0, err, sizeof(err));
	assert_true(dfd >= 0);
	snprintf(path, sizeof(path), "%s/%s", tpath(dir), name);
	fd = safefile_open(dfd, name, path, O_APPEND, err, sizeof(err));
	saved = errno;
	close(dfd);
	errno = saved;
	return fd;
}

static void
test_safefile_creates_and_appends_without_truncating(void **state)
{
	int fd;

	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	spit(tpath("d/f"), "kept\n");
	fd = open_in("d", "f");
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "more\n", 5), 5);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	assert_file(tpath("d/f"), "kept\nmore\n");
	fd = open_in("d", "new");
	assert_true(fd >= 0);
	close(fd);
}

/* The attack: a link in place of the file to a root 0600 file. */
static void
test_safefile_symlink_to_victim_refused(void **state)
{
	struct stat st;

	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	spit(tpath("victim"), "secret\n");
	assert_int_equal(chmod(tpath("victim"), 0600), 0);
	assert_int_equal(symlink(tpath("victim"), tpath("d/f")), 0);
	errno = 0;
	assert_int_equal(open_in("d", "f"), -1);
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, "/d/f is a symbolic link"));
	assert_file(tpath("victim"), "secret\n");
	assert_int_equal(stat(tpath("victim"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	/* a dangling link is not followed to create its target either */
	assert_int_equal(symlink(tpath("created"), tpath("d/g")), 0);
	assert_int_equal(open_in("d", "g"), -1);
	assert_int_equal(access(tpath("created"), F_OK), -1);
}

/* With protected_hardlinks off, a hard link to a root file. */
static void
test_safefile_hard_link_refused(void **state)
{
	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	spit(tpath("victim"), "secret\n");
	assert_int_equal(link(tpath("victim"), tpath("d/f")), 0);
	errno = 0;
	assert_int_equal(open_in("d", "f"), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "has 2 hard links"));
	assert_file(tpath("victim"), "secret\n");
}

/* A FIFO would block the open (O_NONBLOCK: ENXIO), a dir is refused. */
static void
test_safefile_fifo_and_directory_refused(void **state)
{
	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	assert_int_equal(mkfifo(tpath("d/fifo"), 0644), 0);
	assert_int_equal(open_in("d", "fifo"), -1);
	assert_int_equal(mkdir(tpath("d/sub"), 0755), 0);
	assert_int_equal(open_in("d", "sub"), -1);
}

static void
test_safefile_file_of_another_user_refused(void **state)
{
	need_root();
	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	spit(tpath("d/f"), "theirs\n");
	assert_int_equal(chown(tpath("d/f"), OTHER_UID, OTHER_UID), 0);
	errno = 0;
	assert_int_equal(open_in("d", "f"), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "is owned by uid 54321"));
	assert_file(tpath("d/f"), "theirs\n");
	/* the service user's own file is fine, and stays its own */
	safefile_set_user(OTHER_UID, OTHER_UID);
	assert_true(open_in("d", "f") >= 0);
}

/* What root opens for the service is given to it on the descriptor. */
static void
test_safefile_new_file_given_to_service_user(void **state)
{
	struct stat st;
	int fd;

	need_root();
	assert_int_equal(mkdir(tpath("d"), 0755), 0);
	safefile_set_user(OTHER_UID, OTHER_UID);
	fd = open_in("d", "f");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(tpath("d/f"), &st), 0);
	assert_int_equal(st.st_uid, OTHER_UID);
	assert_int_equal(st.st_gid, OTHER_UID);
}

static int
open_dir(const char *dir, int create)
{
	return safefile_dir(
	    tpath(dir), create, "log directory", NULL, 0, err, sizeof(err));
}

static void
test_safefile_dir_checks(void **state)
{
	int fd;

	assert_int_equal(mkdir(tpath("ww"), 0755), 0);
	assert_int_equal(chmod(tpath("ww"), 0777), 0);
	assert_int_equal(open_dir("ww", 0), -1);
	assert_non_null(strstr(err, "log directory"));
	assert_non_null(strstr(err, "/ww is world-writable (mode 0777)"));
	/* below a world-writable parent that is not sticky: refused */
	assert_int_equal(mkdir(tpath("ww/logs"), 0755), 0);
	assert_int_equal(open_dir("ww/logs", 0), -1);
	assert_non_null(strstr(err, "world-writable and not sticky"));
	/* sticky, like /tmp: fine */
	assert_int_equal(chmod(tpath("ww"), 01777), 0);
	assert_true((fd = open_dir("ww/logs", 0)) >= 0);
	close(fd);
	/* a file where a directory should be */
	spit(tpath("file"), "x");
	assert_int_equal(open_dir("file/sub", 1), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void
test_safefile_dir_of_another_user_refused(void **state)
{
	int fd;

	need_root();
	assert_int_equal(mkdir(tpath("theirs"), 0755), 0);
	assert_int_equal(mkdir(tpath("theirs/logs"), 0755), 0);
	assert_int_equal(chown(tpath("theirs"), OTHER_UID, OTHER_UID), 0);
	assert_int_equal(open_dir("theirs/logs", 0), -1);
	assert_non_null(strstr(err, "/theirs is owned by uid 54321"));
	/* group-writable by a group we do not trust */
	assert_int_equal(mkdir(tpath("grp"), 0775), 0);
	assert_int_equal(chmod(tpath("grp"), 0775), 0);
	assert_int_equal(chown(tpath("grp"), 0, OTHER_UID), 0);
	assert_int_equal(open_dir("grp", 0), -1);
	assert_non_null(strstr(err, "is writable by group 54321"));
	/* both fine once that is the service user */
	safefile_set_user(OTHER_UID, OTHER_UID);
	assert_true((fd = open_dir("theirs/logs", 0)) >= 0);
	close(fd);
	assert_true((fd = open_dir("grp", 0)) >= 0);
	close(fd);
}

/* A link planted by the service user in a directory it owns. */
static void
test_safefile_symlink_by_service_user_refused(void **state)
{
	need_root();
	assert_int_equal(mkdir(tpath("svc"), 0755), 0);
	assert_int_equal(mkdir(tpath("etc"), 0755), 0);
	assert_int_equal(symlink(tpath("etc"), tpath("svc/logs")), 0);
	assert_int_equal(lchown(tpath("svc/logs"), OTHER_UID, OTHER_UID), 0);
	assert_int_equal(chown(tpath("svc"), OTHER_UID, OTHER_UID), 0);
	safefile_set_user(OTHER_UID, OTHER_UID);
	errno = 0;
	assert_int_equal(open_dir("svc/logs", 1), -1);
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, "is a symbolic link owned by uid 54321"));
}

/* A root-made link (like /var/run -> /run) is resolved up front. */
static void
test_safefile_root_symlink_resolved(void **state)
{
	char canon[PATH_MAX], want[PATH_MAX];
	int fd;

	assert_int_equal(mkdir(tpath("real"), 0755), 0);
	assert_int_equal(symlink(tpath("real"), tpath("alias")), 0);
	fd = safefile_dir(tpath("alias/new/logs"), 1, "log directory", canon,
	    sizeof(canon), err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	assert_non_null(realpath(tpath("real"), want));
	assert_true(strlen(want) + sizeof("/new/logs") <= sizeof(want));
	memcpy(want + strlen(want), "/new/logs", sizeof("/new/logs"));
	assert_string_equal(canon, want);
}

/* mkdir -p: every level 0755 whatever the umask; the last one is the
 * service user's, the others root's. */
static void
test_safefile_nested_creation(void **state)
{
	struct stat st;
	mode_t old;
	int fd;

	need_root();
	safefile_set_user(OTHER_UID, OTHER_UID);
	old = umask(077);
	fd = open_dir("none/a/b", 1);
	umask(old);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(tpath("none"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(stat(tpath("none/a"), &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(stat(tpath("none/a/b"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, OTHER_UID);
	/* "..", "." in the part to create are refused */
	assert_int_equal(open_dir("none/x/../y", 1), -1);
	assert_int_equal(access(tpath("none/x"), F_OK), -1);
	/* without create a missing level is an error */
	assert_int_equal(open_dir("none/c", 0), -1);
	assert_int_equal(errno, ENOENT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_safefile_creates_and_appends_without_truncating),
		T(test_safefile_symlink_to_victim_refused),
		T(test_safefile_hard_link_refused),
		T(test_safefile_fifo_and_directory_refused),
		T(test_safefile_file_of_another_user_refused),
		T(test_safefile_new_file_given_to_service_user),
		T(test_safefile_dir_checks),
		T(test_safefile_dir_of_another_user_refused),
		T(test_safefile_symlink_by_service_user_refused),
		T(test_safefile_root_symlink_resolved),
		T(test_safefile_nested_creation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
