/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * safefile.h - open the files a privileged server writes (the log and the
 * pid file) without following links planted by someone else
 * (docs/SECURITY.md).
 */
#ifndef FORKCHAT_SAFEFILE_H
#define FORKCHAT_SAFEFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The service user (--user): directories and files it owns are trusted
 * besides root's and our own, and what root creates for the service (the
 * last level of a directory, the files) is given to it with fchown.
 * (uid_t)-1 (the default) means none.
 */
void safefile_set_user(uid_t uid, gid_t gid);

/*
 * Open directory path (absolute) one level at a time from "/", each level
 * with O_DIRECTORY|O_NOFOLLOW relative to its parent's fd, and check each:
 * owned by root, us or the service user; not world-writable unless sticky;
 * not group-writable (unless sticky) by a group other than root's, ours or
 * the service user's.  The last level (what = "log directory", say) must
 * not be world-writable at all.  Symbolic links in the part of path that
 * exists are resolved first (realpath), so /var/run -> /run works; a link
 * that appears later is refused.  With create, missing levels are made
 * like mkdir -p (mode 0755; the last one given to the service user).
 * Returns an O_PATH fd of the directory and its canonical name in canon
 * (may be NULL); -1 with errno and a sentence in err on failure.
 */
int safefile_dir(const char *path, int create, const char *what, char *canon,
    size_t canonsz, char *err, size_t errsz);

/*
 * Open (creating, mode 0644 & ~umask) name in directory fd dirfd for
 * writing with O_NOFOLLOW and extra flags (O_APPEND), never truncating.
 * Refuses what is not a regular file, has more than one link or is owned
 * by someone else than us or the service user; gives the file to the
 * service user (fchown) when we are root.  path is the full name, for err.
 */
int safefile_open(int dirfd, const char *name, const char *path, int flags,
    char *err, size_t errsz);

#endif
