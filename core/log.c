/*
 * log.c - dated log file with daily roll-over and SIGHUP reopen.
 *
 * Owns one file descriptor.  Each line is formatted whole and written with a
 * single write(2) on an O_APPEND descriptor, so lines from several processes
 * never interleave.  Errors (" in func") carry the function name, as
 * OpenSSH's error_f does.
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

#include "failpoint.h"
#include "log.h"
#include "utf8.h"

static int log_fd = -1;
static int log_tee;
static int log_day; /* tm_yday + 1000 * tm_year of the file */
static char log_dir[PATH_MAX];
static char log_file[PATH_MAX];

static int
day_of(const struct tm *tm)
{
	return tm->tm_year * 1000 + tm->tm_yday;
}

static int
open_for(const struct tm *tm)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/forkchatd_%04d%02d%02d.log",
	    log_dir, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = FAIL("forkchatd/log/open", ENOSPC) ?
	    -1 :
	    open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	log_day = day_of(tm);
	memcpy(log_file, path, sizeof(path));
	return 0;
}

int
log_open(const char *dir, int tee)
{
	struct tm tm;
	time_t now = time(NULL);

	if (strlen(dir) >= sizeof(log_dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -1;
	snprintf(log_dir, sizeof(log_dir), "%s", dir);
	log_tee = tee;
	localtime_r(&now, &tm);
	return open_for(&tm);
}

int
log_reopen(void)
{
	struct tm tm;
	time_t now = time(NULL);

	if (log_dir[0] == '\0')
		return 0;
	localtime_r(&now, &tm);
	return open_for(&tm);
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

void
log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
{
	static const char *names[] = { "info", "warn", "error" };
	char line[2048], msg[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	size_t len, room;
	int n, m, saved = errno;

	if (log_fd < 0 && !log_tee)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	if (log_fd >= 0 && day_of(&tm) != log_day)
		(void)open_for(&tm); /* midnight: roll over */
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02d %02d:%02d:%02d.%03d "
	    "[%d] %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(tv.tv_usec / 1000), (int)getpid(), names[lvl]);
	len = n > 0 ? (size_t)n : 0;
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
	if (log_fd >= 0 && write(log_fd, line, len) < 0)
		log_tee = 1; /* disk full: keep stderr */
	if (log_tee)
		(void)!write(STDERR_FILENO, line, len);
	errno = saved;
}
