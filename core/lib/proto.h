/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto.h - the forkchat line protocol: framing, validation, command
 * parsing and the table of stable error codes (docs/PROTOCOL.md).
 *
 * Pure: no system calls, no globals that change.  The server child frames
 * and validates what its client sends; the parent parses commands.
 */
#ifndef FORKCHAT_PROTO_H
#define FORKCHAT_PROTO_H

#include <stddef.h>

#define PROTO_MAX_LINE_LIMIT   4000 /* --max-line upper bound */
#define PROTO_MIN_LINE_LIMIT   16
#define PROTO_DEFAULT_MAX_LINE 2000
#define PROTO_NICK_MAX_CHARS   16
#define PROTO_ROOM_MAX_CHARS   32
#define PROTO_NAME_MAX_BYTES   (4 * PROTO_ROOM_MAX_CHARS)
#define PROTO_LOBBY            "lobby"

/* Stable error codes: the numbers and names are part of the protocol. */
enum proto_err {
	PERR_NONE = 0,
	PERR_EMPTY_LINE = 400,
	PERR_LINE_TOO_LONG = 401,
	PERR_BAD_UTF8 = 402,
	PERR_CONTROL_CHAR = 403,
	PERR_UNKNOWN_COMMAND = 404,
	PERR_USAGE = 405,
	PERR_NOT_REGISTERED = 410,
	PERR_BAD_NICK = 420,
	PERR_NICK_TOO_LONG = 421,
	PERR_NICK_TAKEN = 422,
	PERR_NO_SUCH_ROOM = 430,
	PERR_ROOM_EXISTS = 431,
	PERR_BAD_ROOM = 432,
	PERR_TOO_MANY_ROOMS = 433,
	PERR_NOT_OWNER = 434,
	PERR_IS_LOBBY = 435,
	PERR_ALREADY_IN_ROOM = 436,
	PERR_NO_SUCH_USER = 440,
	PERR_WHISPER_SELF = 441,
	PERR_INTERNAL = 500
};

/* Symbolic name of an error code ("NICK_TAKEN"), or NULL if unknown. */
const char *proto_err_name(enum proto_err code);

/*
 * Check one received line (without its '\n'; a trailing '\r' must already
 * be removed): PERR_NONE, PERR_EMPTY_LINE, PERR_BAD_UTF8 or
 * PERR_CONTROL_CHAR.
 */
enum proto_err proto_check_line(const char *s, size_t len);

/*
 * Nicknames and room names are checked and compared by name.h (the name
 * profile); the error codes above are how the refusals are reported.
 */

/* ---- framing --------------------------------------------------------- */

/*
 * Splits a byte stream into lines of at most max bytes.  A longer line is
 * discarded up to its newline and reported once as too long.
 */
struct proto_framer {
	char *line; /* max + 1 bytes, owned by the caller */
	size_t len;
	size_t max;
	int discarding; /* inside an over-long line */
};

enum proto_frame_ev { PFRAME_LINE, PFRAME_TOO_LONG };

/*
 * Feed n bytes; call cb(ev, line, len, arg) for every complete line (CR of
 * CRLF removed).  Returns the number of lines reported.  cb returns 0 to
 * continue or -1 to stop early (the rest of data is dropped; used on errors).
 */
typedef int (*proto_line_cb)(
    enum proto_frame_ev ev, const char *line, size_t len, void *arg);
int proto_frame(struct proto_framer *f, const char *data, size_t n,
    proto_line_cb cb, void *arg);

/* ---- commands -------------------------------------------------------- */

enum proto_cmd_id {
	CMD_TEXT, /* a message to the current room */
	CMD_ADD,
	CMD_RM,
	CMD_JOIN,
	CMD_LEAVE,
	CMD_LIST,
	CMD_USERS,
	CMD_WHISPER,
	CMD_HELP,
	CMD_STATS,
	CMD_QUIT,
	CMD_UNKNOWN
};

struct proto_cmd {
	enum proto_cmd_id id;
	const char *arg; /* first word (room, nick, "all"), may be NULL */
	size_t arglen;
	const char
	    *text; /* rest of the line after arg; for CMD_TEXT the message */
	size_t textlen;
	const char *name; /* the command word as typed (for errors) */
	size_t namelen;
};

/* Parse a validated, non-empty line.  Never fails: see CMD_UNKNOWN. */
void proto_parse(const char *s, size_t len, struct proto_cmd *cmd);

/*
 * Usage string for a command ("/join ROOM"), or NULL if the arguments in
 * cmd are acceptable for it.
 */
const char *proto_usage(const struct proto_cmd *cmd);

#endif
