/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log.c - dated log file with daily roll-over and SIGHUP reopen.
 *
 * Owns one file descriptor.  Each line is formatted whole and written with a
 * single write(2) on an O_APPEND descriptor: whole lines or none (a short
 * write is cut back off).  Lines that cannot be written (disk full) are
 * counted, and the first line written afterwards is preceded by one saying
 * how many were lost.  The file and its directory are opened through
 * safefile.c, never following a link.  Errors (" in func") carry the
 * function name, as OpenSSH's error_f does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unictype.h>
#include <unistd.h>

#include "sys/failpoint.h"
#include "sys/log.h"
#include "sys/safefile.h"
#include "lib/utf8.h"

static int log_fd = -1;
static int log_tee;
static int log_day; /* tm_yday + 1000 * tm_year of the file */
static char log_dir[PATH_MAX];
static char log_file[PATH_MAX];
static char log_err[PATH_MAX + 256]; /* why the last open failed */
static unsigned long long log_lost;  /* lines not written since the last */
static int log_lost_errno;           /* ... and why */
static int log_last_errno;           /* 0 if the last line was written */

static int
day_of(const struct tm *tm)
{
	return tm->tm_year * 1000 + tm->tm_yday;
}

/* Open today's file in log_dir (its levels created if create). */
static int
open_for(const struct tm *tm, int create)
{
	char path[PATH_MAX], name[64], canon[PATH_MAX];
	int dfd, fd, n, saved;

	snprintf(name, sizeof(name), "forkchatd_%04d%02d%02d.log",
	    tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
	if (FAIL("forkchatd/log/open", ENOSPC)) {
		snprintf(log_err, sizeof(log_err), "%s/%s: %s", log_dir, name,
		    strerror(errno));
		return -1;
	}
	dfd = safefile_dir(log_dir, create, "log directory", canon,
	    sizeof(canon), log_err, sizeof(log_err));
	if (dfd < 0)
		return -1;
	n = snprintf(path, sizeof(path), "%s/%s", canon, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		close(dfd);
		snprintf(log_err, sizeof(log_err), "%s: %s", canon,
		    strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = safefile_open(dfd, name, path, O_APPEND, log_err, sizeof(log_err));
	saved = errno;
	close(dfd);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	log_day = day_of(tm);
	memcpy(log_file, path, sizeof(path));
	memcpy(log_dir, canon, sizeof(canon));
	return 0;
}

int
log_open(const char *dir, int tee)
{
	struct tm tm;
	time_t now = time(NULL);
	char cwd[PATH_MAX], abs[PATH_MAX];
	int n;

	log_err[0] = '\0';
	if (dir[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL &&
	    (n = snprintf(abs, sizeof(abs), "%s/%s", cwd, dir)) > 0 &&
	    (size_t)n < sizeof(abs))
		dir = abs; /* relative to where we started */
	if (strlen(dir) >= sizeof(log_dir)) {
		snprintf(log_err, sizeof(log_err), "%.64s...: %s", dir,
		    strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(log_dir, sizeof(log_dir), "%s", dir);
	log_tee = tee;
	log_lost = 0;
	log_last_errno = 0;
	localtime_r(&now, &tm);
	if (open_for(&tm, 1) < 0) {
		log_dir[0] = '\0';
		return -1;
	}
	return 0;
}

const char *
log_open_error(void)
{
	return log_err;
}

int
log_reopen(void)
{
	struct tm tm;
	time_t now = time(NULL);

	if (log_dir[0] == '\0')
		return 0;
	localtime_r(&now, &tm);
	return open_for(&tm, 0);
}

void
log_close(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	log_dir[0] = log_file[0] = '\0';
}

const char *
log_path(void)
{
	return log_file;
}

/* Does cp stay out of the log?  Controls, format (bidi controls among
 * them), unassigned, private use, line/paragraph separators, and the
 * default-ignorable invisibles such as U+3164. */
static int
log_unsafe(uint32_t cp)
{
	if (cp >= 0x20 && cp < 0x7f)
		return 0;
	return cp < 0x20 || uc_is_general_category(cp, UC_CATEGORY_C) ||
	    uc_is_general_category(cp, UC_CATEGORY_Zl) ||
	    uc_is_general_category(cp, UC_CATEGORY_Zp) ||
	    uc_is_property_default_ignorable_code_point(cp);
}

size_t
log_escape(const char *s, size_t len, char *out, size_t outsz)
{
	char esc[16];
	size_t i = 0, o = 0, n, m;
	uint32_t cp;

	while (i < len) {
		if ((n = utf8_decode(s + i, len - i, &cp)) == 0) {
			m = (size_t)snprintf(
			    esc, sizeof(esc), "\\x%02X", (unsigned char)s[i]);
			n = 1;
		} else if (log_unsafe(cp))
			m = (size_t)snprintf(
			    esc, sizeof(esc), "\\u{%04X}", (unsigned)cp);
		else
			m = 0;
		if (o + (m ? m : n) >= outsz)
			break; /* whole characters and escapes only */
		memcpy(out + o, m ? esc : s + i, m ? m : n);
		o += m ? m : n;
		i += n;
	}
	if (outsz > 0)
		out[o] = '\0';
	return o;
}

const char *
log_dir_path(void)
{
	return log_dir;
}

int
log_fileno(void)
{
	return log_fd;
}

int
log_write_error(void)
{
	return log_last_errno;
}

/*
 * One line, one write(2): whole or nothing.  A short write (the disk
 * filled up in the middle of the line) is cut back off with ftruncate()
 * to where the line began, so no fragment is left to glue onto the next
 * line.  That is safe because only the server parent writes this file (its
 * children close the log); appending the rest instead would most likely
 * fail again for the same reason.  Returns 0, or -1 with errno.
 */
static int
write_line(const char *line, size_t len)
{
	ssize_t n;
	off_t end;
	int saved;

	do
		n = FAIL("forkchatd/log/write", ENOSPC) ?
		    -1 :
		    write(log_fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0)
		return -1;
	saved = n == 0 ? ENOSPC : EIO;
	if ((end = lseek(log_fd, 0, SEEK_END)) >= n)
		(void)!ftruncate(log_fd, end - n);
	errno = saved;
	return -1;
}

/*
 * Write line to the file, first saying how many lines were lost if some
 * were.  Failures are counted, never retried: the caller must not block.
 */
static void
emit(const char *line, size_t len, const char *stamp, size_t stamplen)
{
	char note[256];
	int n;

	if (log_lost > 0) {
		n = snprintf(note, sizeof(note),
		    "%.*swarn log: %llu line%s lost (%s)\n", (int)stamplen,
		    stamp, log_lost, log_lost == 1 ? "" : "s",
		    strerror(log_lost_errno));
		if (n < 0 || (size_t)n >= sizeof(note) ||
		    write_line(note, (size_t)n) < 0) {
			log_lost++;
			log_last_errno = errno ? errno : EIO;
			return;
		}
		log_lost = 0;
	}
	if (write_line(line, len) < 0) {
		log_lost_errno = log_last_errno = errno;
		log_lost++;
		return;
	}
	log_last_errno = 0;
}

void
log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
{
	static const char *names[] = { "info", "warn", "error" };
	char line[2048], msg[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	size_t len, room, stamp;
	int n, m, saved = errno;

	if (log_fd < 0 && !log_tee)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	if (log_fd >= 0 && day_of(&tm) != log_day)
		(void)open_for(&tm, 0); /* midnight: roll over */
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02d %02d:%02d:%02d.%03d "
	    "[%d] ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(tv.tv_usec / 1000), (int)getpid());
	stamp = n > 0 ? (size_t)n : 0;
	n = snprintf(line + stamp, sizeof(line) - stamp, "%s ", names[lvl]);
	len = stamp + (n > 0 ? (size_t)n : 0);
	room = sizeof(line) - len - 1; /* keep one byte for '\n' */
	va_start(ap, fmt);
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m > 0) /* what users and other hubs sent reaches the log escaped */
		len += log_escape(msg,
		    (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1,
		    line + len, room);
	if (lvl == LOG_ERROR) {
		room = sizeof(line) - len - 1;
		m = snprintf(line + len, room, " (in %s)", func);
		if (m > 0)
			len += (size_t)m < room ? (size_t)m : room - 1;
	}
	line[len++] = '\n';
	if (log_fd >= 0) {
		emit(line, len, line, stamp);
		if (log_last_errno != 0)
			log_tee = 1; /* disk full: keep stderr */
	}
	if (log_tee)
		(void)!write(STDERR_FILENO, line, len);
	errno = saved;
}
