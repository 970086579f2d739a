/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proto.c - framing, validation and command parsing for the line protocol.
 *
 * Everything here works on byte ranges (pointer + length), never on
 * NUL-terminated input: a client may send NUL bytes and they must be
 * rejected, not silently end a string.
 */
#include <string.h>
#include <strings.h>

#include "lib/proto.h"
#include "lib/utf8.h"

static const struct {
	enum proto_err code;
	const char *name;
} err_names[] = {
	{ PERR_EMPTY_LINE, "EMPTY_LINE" },
	{ PERR_LINE_TOO_LONG, "LINE_TOO_LONG" },
	{ PERR_BAD_UTF8, "BAD_UTF8" },
	{ PERR_CONTROL_CHAR, "CONTROL_CHAR" },
	{ PERR_UNKNOWN_COMMAND, "UNKNOWN_COMMAND" },
	{ PERR_USAGE, "USAGE" },
	{ PERR_NOT_REGISTERED, "NOT_REGISTERED" },
	{ PERR_BAD_NICK, "BAD_NICK" },
	{ PERR_NICK_TOO_LONG, "NICK_TOO_LONG" },
	{ PERR_NICK_TAKEN, "NICK_TAKEN" },
	{ PERR_NO_SUCH_ROOM, "NO_SUCH_ROOM" },
	{ PERR_ROOM_EXISTS, "ROOM_EXISTS" },
	{ PERR_BAD_ROOM, "BAD_ROOM" },
	{ PERR_TOO_MANY_ROOMS, "TOO_MANY_ROOMS" },
	{ PERR_NOT_OWNER, "NOT_OWNER" },
	{ PERR_IS_LOBBY, "IS_LOBBY" },
	{ PERR_ALREADY_IN_ROOM, "ALREADY_IN_ROOM" },
	{ PERR_NO_SUCH_USER, "NO_SUCH_USER" },
	{ PERR_WHISPER_SELF, "WHISPER_SELF" },
	{ PERR_INTERNAL, "INTERNAL" },
};

const char *
proto_err_name(enum proto_err code)
{
	size_t i;

	for (i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++)
		if (err_names[i].code == code)
			return err_names[i].name;
	return NULL;
}

enum proto_err
proto_check_line(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;
	int blank = 1;

	while (i < len) {
		/*
		 * ASCII inline, without a call per byte: every line a client
		 * sends and every federated event passes here (visible,
		 * blank, or C0/DEL, which utf8_is_control() refuses).
		 */
		if (u[i] > ' ' && u[i] < 0x7f) {
			blank = 0;
			i++;
			continue;
		}
		if (u[i] == ' ' || u[i] == '\t') {
			i++;
			continue;
		}
		if (u[i] < 0x80)
			return PERR_CONTROL_CHAR;
		if ((n = utf8_decode(s + i, len - i, &cp)) == 0)
			return PERR_BAD_UTF8;
		if (utf8_is_control(cp))
			return PERR_CONTROL_CHAR;
		if (!utf8_is_space(cp))
			blank = 0;
		i += n;
	}
	return blank ? PERR_EMPTY_LINE : PERR_NONE;
}

/* ---- framing --------------------------------------------------------- */

static int
frame_emit(struct proto_framer *f, proto_line_cb cb, void *arg)
{
	size_t len = f->len;

	f->len = 0;
	if (len > 0 && f->line[len - 1] == '\r')
		len--;
	if (len > f->max)
		return cb(PFRAME_TOO_LONG, NULL, 0, arg);
	return cb(PFRAME_LINE, f->line, len, arg);
}

int
proto_frame(struct proto_framer *f, const char *data, size_t n,
    proto_line_cb cb, void *arg)
{
	const char *nl;
	size_t chunk;
	int lines = 0, rc;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		chunk = nl ? (size_t)(nl - data) : n;
		if (!f->discarding) {
			/* max + 1 leaves room for the '\r' of a CRLF line */
			if (f->len + chunk > f->max + 1) {
				f->discarding = 1;
				f->len = 0;
			} else {
				memcpy(f->line + f->len, data, chunk);
				f->len += chunk;
			}
		}
		if (!nl)
			break;
		lines++;
		if (f->discarding) {
			f->discarding = 0;
			rc = cb(PFRAME_TOO_LONG, NULL, 0, arg);
		} else
			rc = frame_emit(f, cb, arg);
		if (rc < 0)
			return lines;
		data += chunk + 1;
		n -= chunk + 1;
	}
	return lines;
}

/* ---- commands -------------------------------------------------------- */

static const struct {
	const char *name;
	enum proto_cmd_id id;
} commands[] = {
	{ "add", CMD_ADD },
	{ "rm", CMD_RM },
	{ "join", CMD_JOIN },
	{ "leave", CMD_LEAVE },
	{ "list", CMD_LIST },
	{ "users", CMD_USERS },
	{ "whisper", CMD_WHISPER },
	{ "w", CMD_WHISPER },
	{ "help", CMD_HELP },
	{ "stats", CMD_STATS },
	{ "quit", CMD_QUIT },
};

/* Split off the next space-delimited word of s[0..len). */
static size_t
next_word(const char **s, size_t *len, const char **word)
{
	size_t i = 0, wl;

	while (i < *len && ((*s)[i] == ' ' || (*s)[i] == '\t'))
		i++;
	*word = *s + i;
	for (wl = 0;
	     i + wl < *len && (*s)[i + wl] != ' ' && (*s)[i + wl] != '\t'; wl++)
		;
	*s += i + wl;
	*len -= i + wl;
	return wl;
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t'))
		(*s)++, (*len)--;
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

void
proto_parse(const char *s, size_t len, struct proto_cmd *cmd)
{
	size_t i;

	memset(cmd, 0, sizeof(*cmd));
	if (len == 0 || s[0] != '/' || (len > 1 && s[1] == '/')) {
		cmd->id = CMD_TEXT;
		cmd->text = (len > 0 && s[0] == '/') ? s + 1 : s;
		cmd->textlen = (len > 0 && s[0] == '/') ? len - 1 : len;
		return;
	}
	s++, len--;
	/* the name starts right after '/': "/ add x" names no command */
	cmd->name = s;
	while (cmd->namelen < len && s[cmd->namelen] != ' ' &&
	    s[cmd->namelen] != '\t')
		cmd->namelen++;
	s += cmd->namelen;
	len -= cmd->namelen;
	cmd->id = CMD_UNKNOWN;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == cmd->namelen &&
		    strncasecmp(commands[i].name, cmd->name, cmd->namelen) == 0)
			cmd->id = commands[i].id;
	cmd->arglen = next_word(&s, &len, &cmd->arg);
	if (cmd->arglen == 0)
		cmd->arg = NULL;
	trim(&s, &len);
	cmd->text = len ? s : NULL;
	cmd->textlen = len;
}

const char *
proto_usage(const struct proto_cmd *c)
{
	switch (c->id) {
	case CMD_ADD:
	case CMD_RM:
	case CMD_JOIN:
		if (c->arg == NULL || c->text != NULL)
			return c->id == CMD_ADD ? "/add ROOM" :
			    c->id == CMD_RM     ? "/rm ROOM" :
			                          "/join ROOM";
		return NULL;
	case CMD_LEAVE:
	case CMD_LIST:
	case CMD_HELP:
	case CMD_STATS:
		if (c->arg != NULL)
			return c->id == CMD_LEAVE ? "/leave" :
			    c->id == CMD_LIST     ? "/list" :
			    c->id == CMD_STATS    ? "/stats" :
			                            "/help";
		return NULL;
	case CMD_USERS:
		if (c->text != NULL ||
		    (c->arg != NULL &&
		        (c->arglen != 3 || strncasecmp(c->arg, "all", 3) != 0)))
			return "/users [all]";
		return NULL;
	case CMD_WHISPER:
		if (c->arg == NULL || c->text == NULL)
			return "/whisper NICK TEXT";
		return NULL;
	default:
		return NULL;
	}
}
