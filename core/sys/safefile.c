/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * safefile.c - open the log and the pid file safely, as root too.
 *
 * forkchatd opens its log and pid file as root and then gives them, and
 * the log directory, to the --user account.  That account can then plant a
 * symbolic or hard link where the next file will be opened.  So, in the
 * manner of Postfix's safe_open, OpenSSH's safe_path and systemd-tmpfiles:
 * every directory on the path is opened from "/" one level at a time with
 * O_NOFOLLOW relative to its parent's descriptor (so no level can be
 * swapped for a link between the check and the use) and checked (owner,
 * mode); the file is opened O_NOFOLLOW|O_NONBLOCK without O_TRUNC relative
 * to the directory's descriptor, then checked on its descriptor (regular,
 * one link, owner); ownership is changed on descriptors (fchown), never on
 * a path.  Must never follow a link it did not resolve itself up front.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/safefile.h"

#define NONE ((uid_t)-1)

static uid_t svc_uid = NONE;
static gid_t svc_gid = (gid_t)-1;

void
safefile_set_user(uid_t uid, gid_t gid)
{
	svc_uid = uid;
	svc_gid = gid;
}

static int say(char *err, size_t errsz, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill err, set errno = e, return -1. */
static int
say(char *err, size_t errsz, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

static int
trusted_dir_owner(uid_t u)
{
	return u == 0 || u == geteuid() || (svc_uid != NONE && u == svc_uid);
}

static int
trusted_group(gid_t g)
{
	return g == 0 || g == getegid() ||
	    (svc_gid != (gid_t)-1 && g == svc_gid);
}

/* Only root, we and the service user may change what a level holds. */
static int
check_dir(int fd, const char *name, int last, const char *what, char *err,
    size_t errsz)
{
	struct stat st;
	unsigned mode;

	if (fstat(fd, &st) < 0)
		return say(err, errsz, errno, "%s: %s", name, strerror(errno));
	mode = (unsigned)(st.st_mode & 07777);
	if (!trusted_dir_owner(st.st_uid))
		return say(err, errsz, EPERM,
		    "%s %s is owned by uid %u (only root or the service "
		    "user may own it)",
		    last ? what : "directory", name, (unsigned)st.st_uid);
	if (last && (mode & S_IWOTH))
		return say(err, errsz, EPERM,
		    "%s %s is world-writable (mode %04o)", what, name, mode);
	if ((mode & S_IWOTH) && !(mode & S_ISVTX))
		return say(err, errsz, EPERM,
		    "directory %s is world-writable and not sticky "
		    "(mode %04o)",
		    name, mode);
	if ((mode & S_IWGRP) && !(mode & S_ISVTX) && !trusted_group(st.st_gid))
		return say(err, errsz, EPERM,
		    "%s %s is writable by group %u (mode %04o)",
		    last ? what : "directory", name, (unsigned)st.st_gid, mode);
	return 0;
}

/*
 * A symbolic link on the path is followed only if root (or we) made it:
 * one made by the service user in a directory it owns would send root's
 * writes anywhere (systemd-tmpfiles calls it an unsafe transition).
 * Modifies nothing; path is absolute.
 */
static int
check_links(char *path, char *err, size_t errsz)
{
	struct stat st;
	char *p = path, c;

	for (;;) {
		p += strspn(p, "/");
		if (*p == '\0')
			return 0;
		p += strcspn(p, "/");
		c = *p;
		*p = '\0';
		if (lstat(path, &st) < 0) {
			*p = c;
			return 0; /* missing (or refused later by the walk) */
		}
		if (S_ISLNK(st.st_mode) && st.st_uid != 0 &&
		    st.st_uid != geteuid()) {
			say(err, errsz, ELOOP,
			    "%s is a symbolic link owned by uid %u", path,
			    (unsigned)st.st_uid);
			*p = c;
			return -1;
		}
		*p = c;
	}
}

/*
 * Resolve the part of path that exists (realpath), keep the rest as
 * written: "/var/run/x/y" -> "/run/x/y" when /var/run/x is missing.  The
 * missing part may not hold "." or "..".
 */
static int
canonical(const char *path, char *out, size_t sz, char *err, size_t errsz)
{
	char head[PATH_MAX], res[PATH_MAX], *slash;
	const char *tail, *p;
	size_t n;

	if (path[0] != '/')
		return say(err, errsz, EINVAL, "%s is not absolute", path);
	if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head))
		return say(err, errsz, ENAMETOOLONG, "%s: %s", path,
		    strerror(ENAMETOOLONG));
	if (check_links(head, err, errsz) < 0)
		return -1;
	while (realpath(head, res) == NULL) {
		if (errno != ENOENT)
			return say(
			    err, errsz, errno, "%s: %s", head, strerror(errno));
		slash = strrchr(head, '/');
		*slash = '\0';
		if (head[0] == '\0')
			snprintf(head, sizeof(head), "/");
	}
	tail = path + strlen(head);
	for (p = tail; *p;) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return say(err, errsz, EINVAL,
			    "%s: \".\" or \"..\" in a directory to create",
			    path);
		p += n;
	}
	if (strcmp(res, "/") == 0)
		res[0] = '\0';
	if (snprintf(out, sz, "%s%s%s", res, tail[0] == '/' ? "" : "/", tail) >=
	    (int)sz)
		return say(err, errsz, ENAMETOOLONG, "%s: %s", path,
		    strerror(ENAMETOOLONG));
	n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return 0;
}

/* A level we created: mode 0755 whatever the umask; the last one is the
 * service user's. */
static int
fix_created(int parent, const char *comp, int last, const char *name, char *err,
    size_t errsz)
{
	int fd, rc = 0;

	fd = openat(
	    parent, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return say(err, errsz, errno, "%s: %s", name, strerror(errno));
	if (fchmod(fd, 0755) < 0 ||
	    (last && svc_uid != NONE && geteuid() == 0 &&
	        fchown(fd, svc_uid, svc_gid) < 0))
		rc = say(err, errsz, errno, "%s: %s", name, strerror(errno));
	close(fd);
	return rc;
}

/* Open one level below parent (O_PATH), creating it if asked. */
static int
open_level(int parent, const char *comp, int create, int last, const char *name,
    char *err, size_t errsz)
{
	struct stat st;
	int fd;

	fd =
	    openat(parent, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(parent, comp, 0755) == 0) {
			if (fix_created(parent, comp, last, name, err, errsz) <
			    0)
				return -1;
		} else if (errno != EEXIST)
			return say(err, errsz, errno, "cannot create %s: %s",
			    name, strerror(errno));
		fd = openat(parent, comp,
		    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd >= 0)
		return fd;
	if (errno == ENOTDIR &&
	    fstatat(parent, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return say(err, errsz, ELOOP, "%s is a symbolic link", name);
	if (errno == ENOTDIR)
		return say(err, errsz, ENOTDIR, "%s is not a directory", name);
	return say(err, errsz, errno, "%s: %s", name, strerror(errno));
}

int
safefile_dir(const char *path, int create, const char *what, char *canon,
    size_t canonsz, char *err, size_t errsz)
{
	char full[PATH_MAX] = "", name[PATH_MAX], comp[NAME_MAX + 1];
	const char *p;
	size_t n, at = 0;
	int fd, nfd, saved;

	if (canonical(path, full, sizeof(full), err, errsz) < 0)
		return -1;
	if ((fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return say(err, errsz, errno, "/: %s", strerror(errno));
	name[0] = '\0';
	for (p = full;;) {
		while (*p == '/')
			p++;
		if (check_dir(
		        fd, at ? name : "/", *p == '\0', what, err, errsz) < 0)
			goto fail;
		if (*p == '\0')
			break;
		n = strcspn(p, "/");
		if (n > NAME_MAX) {
			say(err, errsz, ENAMETOOLONG, "%s: %s", full,
			    strerror(ENAMETOOLONG));
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		at +=
		    (size_t)snprintf(name + at, sizeof(name) - at, "/%s", comp);
		p += n;
		nfd = open_level(fd, comp, create, p[strspn(p, "/")] == '\0',
		    name, err, errsz);
		if (nfd < 0)
			goto fail;
		close(fd);
		fd = nfd;
	}
	if (canon != NULL)
		snprintf(canon, canonsz, "%s", full);
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Is the file we opened the one we meant?  Then make it the service's. */
static int
check_file(int fd, const char *path, char *err, size_t errsz)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return say(err, errsz, errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return say(err, errsz, EPERM, "%s is not a regular file", path);
	if (st.st_nlink != 1)
		return say(err, errsz, EPERM, "%s has %lu hard links", path,
		    (unsigned long)st.st_nlink);
	if (st.st_uid != geteuid() && (svc_uid == NONE || st.st_uid != svc_uid))
		return say(err, errsz, EPERM,
		    "%s is owned by uid %u (not by us or the service user)",
		    path, (unsigned)st.st_uid);
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return say(err, errsz, errno, "%s: %s", path, strerror(errno));
	if (svc_uid != NONE && geteuid() == 0 && st.st_uid != svc_uid &&
	    fchown(fd, svc_uid, svc_gid) < 0)
		return say(err, errsz, errno, "cannot give %s to uid %u: %s",
		    path, (unsigned)svc_uid, strerror(errno));
	return 0;
}

int
safefile_open(int dirfd, const char *name, const char *path, int flags,
    char *err, size_t errsz)
{
	int fd, saved;

	fd = openat(dirfd, name,
	    O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | flags,
	    0644);
	if (fd < 0 && errno == ELOOP)
		return say(err, errsz, ELOOP, "%s is a symbolic link", path);
	if (fd < 0)
		return say(err, errsz, errno, "%s: %s", path, strerror(errno));
	if (check_file(fd, path, err, errsz) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
