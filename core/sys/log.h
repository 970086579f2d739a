/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log.h - the server's dated log file.
 *
 * Lines look like "2026-11-26 00:32:54.123 [1234] info message".  The
 * file is logs/forkchatd_YYYYMMDD.log (under the configured directory),
 * opened O_APPEND, reopened when the date changes and on log_reopen()
 * (SIGHUP).  Call only from normal code, never from a signal handler:
 * localtime_r and vsnprintf are not async-signal-safe (the original program
 * deadlocked that way).  Before log_open() nothing is written, which keeps
 * unit tests quiet.
 */
#ifndef FORKCHAT_LOG_H
#define FORKCHAT_LOG_H

#include <stddef.h>

enum log_level { LOG_INFO, LOG_WARN, LOG_ERROR };

/*
 * Open today's file in dir, creating dir like mkdir -p, without following
 * links (safefile.h); also copy lines to stderr if tee.  -1 + errno, and
 * log_open_error() says why in a sentence.
 */
int log_open(const char *dir, int tee);
const char *log_open_error(void);
/* Reopen the file (after rotation by hand or a date change). */
int log_reopen(void);
void log_close(void);
/* Path of the file open now ("" if none), its directory, its fd (or -1). */
const char *log_path(void);
const char *log_dir_path(void);
int log_fileno(void);
/*
 * 0 if the last line reached the file, else the errno of its failure.
 * Lines that fail are counted; the next line that gets through is preceded
 * by "warn log: N lines lost (REASON)".
 */
int log_write_error(void);

/*
 * Copy s[0..len) to out (NUL-terminated, at most outsz - 1 bytes, whole
 * characters only), writing control, format (bidi), unassigned,
 * line-separator and default-ignorable characters as \u{202E} and bytes
 * that are not UTF-8 as \xFF.  Returns the bytes written.  log_msg passes
 * every message through it: the log never holds them raw.
 */
size_t log_escape(const char *s, size_t len, char *out, size_t outsz);

void log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(...)  log_msg(LOG_INFO, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __func__, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __func__, __VA_ARGS__)

#endif
