/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * client.c - forkchat, the chat client: main() and its two processes.
 *
 * The network process (the parent) owns the TCP socket, the registration
 * state and the terminal output.  A keyboard child does the only blocking
 * thing, read(2) on stdin, and hands whole lines to the parent over a pipe,
 * then kill(parent, SIGUSR1).  The parent never blocks on anything but
 * sigwaitinfo()/sigtimedwait(): its signals are blocked, the socket is
 * O_ASYNC (SIGIO when readable or writable again), and after every wake-up
 * it drains every source until EAGAIN because standard signals coalesce.
 * No threads and no readiness-multiplexing calls: that is the point of
 * the project.
 *
 * On a terminal (stdin and stdout both ttys) the keyboard process puts the
 * terminal in raw mode and forwards every key byte as it comes; the
 * network process owns the screen and the line editor (edit.c): it keeps
 * the line being typed whole on the bottom row, erasing it before it
 * prints anything and drawing it again afterwards, so there is one writer
 * and no race between the two processes.  Elsewhere (pipes, scripts) the
 * keyboard process hands over whole lines and nothing is drawn, as before.
 *
 * Exit status: 0 the user quit (/quit, end of input, SIGINT/SIGTERM/SIGHUP);
 * 1 cannot connect, or the connection was lost without a BYE; 2 usage
 * error, or the -n nickname was refused and stdin is not a terminal;
 * 3 the server said BYE for another reason (SHUTDOWN, SERVER_FULL, ...).
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client/edit.h"
#include "lib/buf.h"
#include "sys/failpoint.h"
#include "sys/proc.h"
#include "client/render.h"

#ifndef FORKCHAT_VERSION
#define FORKCHAT_VERSION "dev"
#endif

#define CLIENT_PORT         "5101"
#define CLIENT_QUIT_WAIT_MS 2000 /* bound on waiting for the server */
#define CLIENT_REAP_WAIT_MS 1000 /* bound on the child's SIGTERM */
#define CLIENT_NET_LINE_MAX 8192 /* server lines are <= 4200 bytes */
#define CLIENT_KBD_LINE_MAX 65536
#define CLIENT_OUT_MAX      (1 << 20) /* then stop reading keys */

enum {
	EXIT_QUIT = 0,
	EXIT_LOST = 1,
	EXIT_USAGE = 2,
	EXIT_BYE = 3,
	EXIT_SIGINT = 130
};

enum reg_state {
	REG_NEED, /* the next input line is a nickname */
	REG_WAIT, /* nickname sent, reply pending */
	REG_DONE  /* registered: lines go straight out */
};

struct client {
	int sock;
	int kbd_fd;           /* read end of the keyboard pipe */
	pid_t kbd_pid;        /* 0 once reaped */
	struct buf out;       /* bytes not yet written to sock */
	struct buf net_in;    /* partial line from the server */
	struct buf kbd_in;    /* partial line from the keyboard */
	struct buf queue;     /* lines held until registered */
	const char *nick_opt; /* -n NICK, NULL without it */
	enum reg_state reg;
	int color;
	int tty_in;
	unsigned width; /* terminal columns; 0: stdout is no terminal */
	int ui;         /* stdin and stdout are terminals: line editor */
	struct edit ed; /* the line being typed (ui only) */
	unsigned drawn; /* columns of the input row now on screen */
	int redraw;     /* the input row must be drawn again */
	char nick[64];  /* sanitised, for the prompt and your own lines */
	char room[64];
	int quitting;  /* leaving: the deadline runs */
	int quit_sent; /* "/quit" went into c->out */
	struct timespec deadline;
	int kbd_eof;
	int kbd_held;         /* keys left unread: c->out was full */
	int sock_eof;         /* read side done (EOF or error) */
	int sock_err;         /* errno of a read error, or 0 */
	int write_dead;       /* a write failed: drop output */
	enum render_kind bye; /* RENDER_BYE_* or RENDER_OTHER */
	int done;
	int status;
};

static sigset_t client_sigs;
static struct termios saved_tio; /* the terminal as we found it */
static int tio_saved;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: forkchat [-n NICK] [--color=auto|always|never] [-h] [-V] "
	    "HOST [PORT]\n"
	    "  -n, --nick NICK     register as NICK (otherwise the first input "
	    "line is the nickname)\n"
	    "      --color=WHEN    colours: auto (a terminal and NO_COLOR unset),"
	    " always, never\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "PORT defaults to " CLIENT_PORT ".  Type /help once connected.\n"
	    "Exit status: 0 you quit, 1 connection failed or lost, 2 usage "
	    "error or -n nickname refused\n"
	    "(stdin not a terminal), 3 disconnected by the server (BYE "
	    "SHUTDOWN, SERVER_FULL, ...).\n");
}

static void
client_die(const char *what)
{
	fprintf(stderr, "forkchat: %s: %s\n", what, strerror(errno));
	exit(EXIT_LOST);
}

/* The client cannot go on without memory for what it must send or show. */
static void
append(struct buf *b, const char *s, size_t n)
{
	if (buf_append(b, s, n) < 0)
		client_die("out of memory");
}

/* ---- options and connection ------------------------------------------- */

static int
color_wanted(const char *when)
{
	const char *nc = getenv("NO_COLOR");

	if (strcmp(when, "always") == 0)
		return 1;
	if (strcmp(when, "never") == 0)
		return 0;
	return isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0');
}

/* Usage errors exit 2 before anything connects. */
static void
check_args(const struct client *c, const char *when, int nargs)
{
	if (strcmp(when, "auto") != 0 && strcmp(when, "always") != 0 &&
	    strcmp(when, "never") != 0) {
		fprintf(stderr,
		    "forkchat: --color must be auto, always or "
		    "never\n");
		exit(EXIT_USAGE);
	}
	if (c->nick_opt != NULL && strpbrk(c->nick_opt, "\r\n") != NULL) {
		fprintf(stderr, "forkchat: a nickname cannot hold a newline\n");
		exit(EXIT_USAGE);
	}
	if (nargs < 1 || nargs > 2) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

static void
parse_args(int argc, char **argv, struct client *c, const char **host,
    const char **port)
{
	static const struct option longopts[] = { { "nick", required_argument,
		                                      NULL, 'n' },
		{ "color", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 } };
	const char *when = "auto";
	int ch;

	while ((ch = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			c->nick_opt = optarg;
			break;
		case 'c':
			when = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("forkchat %s\n", FORKCHAT_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_USAGE);
		}
	}
	check_args(c, when, argc - optind);
	*host = argv[optind];
	*port = argc - optind == 2 ? argv[optind + 1] : CLIENT_PORT;
	c->color = color_wanted(when);
}

static int
port_valid(const char *port)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(port, &end, 10);
	return errno == 0 && *port != '\0' && *end == '\0' && n > 0 &&
	    n < 65536;
}

/* Blocking connect, done before any signal is blocked; fd or -1. */
static int
connect_server(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, err, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "forkchat: cannot resolve %s: %s\n", host,
		    gai_strerror(err));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		fprintf(stderr, "forkchat: cannot connect to %s port %s: %s\n",
		    host, port, strerror(saved));
	return fd;
}

/* ---- the keyboard child ----------------------------------------------- */

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Undo what the parent set up: default dispositions, nothing blocked. */
static void
kbd_reset_signals(void)
{
	static const int sigs[] = { SIGUSR1, SIGIO, SIGCHLD, SIGINT, SIGTERM,
		SIGHUP, SIGPIPE, SIGWINCH };
	sigset_t none;
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Read stdin, hand complete lines to the parent (raw: every byte as soon
 * as it is read, the keys of a terminal in raw mode); never returns.
 */
static void
kbd_main(int wfd, pid_t parent, int raw)
{
	char buf[4096];
	size_t have = 0, cut;
	ssize_t n;

	kbd_reset_signals();
	if (proc_die_with(parent, SIGTERM) < 0)
		proc_exit(0); /* the parent is gone already */
	for (;;) {
		n = read(STDIN_FILENO, buf + have, sizeof(buf) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		for (cut = have; !raw && cut > 0 && buf[cut - 1] != '\n'; cut--)
			;
		if (cut == 0 && have == sizeof(buf))
			cut = have; /* a huge line: pass it on */
		if (cut == 0)
			continue;
		if (write_all(wfd, buf, cut) == -1)
			proc_exit(1);
		kill(parent, SIGUSR1);
		memmove(buf, buf + cut, have - cut);
		have -= cut;
	}
	if (have > 0 &&
	    (write_all(wfd, buf, have) == -1 || write_all(wfd, "\n", 1) == -1))
		proc_exit(1);
	close(wfd); /* EOF tells the parent */
	kill(parent, SIGUSR1);
	proc_exit(0);
}

static void
kbd_spawn(struct client *c)
{
	pid_t parent = getpid();
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) == -1)
		client_die("pipe");
	fflush(NULL);
	switch (c->kbd_pid = fork()) {
	case -1:
		client_die("fork");
		break;
	case 0:
		close(fds[0]);
		close(c->sock);
		kbd_main(fds[1], parent, c->ui);
		break;
	}
	close(fds[1]);
	c->kbd_fd = fds[0];
	if (fcntl(c->kbd_fd, F_SETFL, O_NONBLOCK) == -1)
		client_die("fcntl");
}

/* SIGTERM the child by its pid, wait a bounded time, then SIGKILL. */
static void
kbd_stop(struct client *c)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	sigset_t chld;
	int i, st;

	if (c->kbd_pid <= 0)
		return;
	kill(c->kbd_pid, SIGTERM);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (i = 0; i < CLIENT_REAP_WAIT_MS / 100; i++) {
		if (waitpid(c->kbd_pid, &st, WNOHANG) != 0)
			break;
		sigtimedwait(&chld, NULL, &ts);
	}
	if (i == CLIENT_REAP_WAIT_MS / 100) {
		kill(c->kbd_pid, SIGKILL);
		waitpid(c->kbd_pid, &st, 0);
	}
	c->kbd_pid = 0;
}

/* ---- the terminal (ui mode) ------------------------------------------- */

/* atexit, and before a SIGQUIT is let through: the terminal as it was. */
static void
tty_restore(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
}

/*
 * Keys one by one without echo (ICANON, ECHO off), Enter as CR (ICRNL
 * off), ^S/^Q as keys (IXON off).  ISIG stays on so ^C is SIGINT as
 * before; ^\ and ^Z are disabled, so they cannot stop or kill the client
 * with the terminal left raw.  Output processing stays on ('\n' is CRLF).
 */
static int
tty_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tio) == -1)
		return -1;
	t = saved_tio;
	t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	t.c_cc[VQUIT] = _POSIX_VDISABLE;
	t.c_cc[VSUSP] = _POSIX_VDISABLE;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == -1)
		return -1;
	tio_saved = 1;
	atexit(tty_restore);
	return 0;
}

static void
put_spaces(unsigned n)
{
	while (n-- > 0)
		putchar(' ');
}

/*
 * Blank the input row and put the cursor at its start, so that what is
 * printed next starts on a clean row.  Only CR and spaces: no escape
 * sequence, so --color=never / NO_COLOR output stays free of ESC bytes.
 */
static void
ui_erase(struct client *c)
{
	if (!c->ui)
		return;
	if (c->drawn > 0) {
		putchar('\r');
		put_spaces(c->drawn);
		putchar('\r');
		c->drawn = 0;
	}
	c->redraw = 1;
}

static const char *
ui_prompt(const struct client *c, char *buf, size_t sz)
{
	if (c->reg != REG_DONE)
		return "nickname: ";
	snprintf(buf, sz, "[%s] %s> ", c->room, c->nick);
	return buf;
}

/*
 * Draw "[room] nick> " and the part of the line that holds the cursor,
 * never wider than width - 1 columns (the terminal never wraps it), then
 * put the cursor back where the user left it by drawing again up to it.
 */
static void
ui_draw(struct client *c)
{
	char pbuf[160];
	const char *prompt = ui_prompt(c, pbuf, sizeof(pbuf));
	unsigned pcols = render_width(prompt, strlen(prompt)), avail, ccol;
	unsigned cols = c->width > 0 ? c->width : 80, now;
	size_t start, end;

	avail = cols > pcols + 3 ? cols - 1 - pcols : 2;
	edit_view(&c->ed, avail, &start, &end, &ccol);
	now = pcols + render_width(c->ed.buf + start, end - start);
	putchar('\r');
	fputs(prompt, stdout);
	fwrite(c->ed.buf + start, 1, end - start, stdout);
	if (c->drawn > now)
		put_spaces(c->drawn - now);
	putchar('\r');
	fputs(prompt, stdout);
	fwrite(c->ed.buf + start, 1, c->ed.cur - start, stdout);
	c->drawn = now; /* what was wider is blank now */
	c->redraw = 0;
	(void)ccol;
}

/* ---- writing to the server -------------------------------------------- */

static void
start_deadline(struct client *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += CLIENT_QUIT_WAIT_MS / 1000;
	c->deadline.tv_nsec += (CLIENT_QUIT_WAIT_MS % 1000) * 1000000L;
	if (c->deadline.tv_nsec >= 1000000000L) {
		c->deadline.tv_sec++;
		c->deadline.tv_nsec -= 1000000000L;
	}
	c->quitting = 1;
}

/* Write what is pending; on EAGAIN keep the rest until SIGIO. */
static void
sock_flush(struct client *c)
{
	ssize_t n;

	while (buf_used(&c->out) > 0 && !c->write_dead) {
		n = send(c->sock, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			/*
			 * A hard error: the read side will see the EOF or the
			 * reset (after any BYE still queued), so just stop.
			 */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->write_dead = 1;
			return;
		}
		buf_consume(&c->out, (size_t)n);
		if (c->quitting)
			start_deadline(c); /* bound idleness, not work */
	}
}

static void
send_line(struct client *c, const char *s, size_t n)
{
	if (c->write_dead)
		return;
	append(&c->out, s, n);
	append(&c->out, "\n", 1); /* the main loop flushes, once a turn */
}

/* Bytes waiting for the server: past CLIENT_OUT_MAX, keys wait too. */
static size_t
backlog(const struct client *c)
{
	return buf_used(&c->out) + buf_used(&c->queue);
}

/* Is s[0..n) the command /NAME (any case), alone or with arguments? */
static int
is_command(const char *s, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && s[0] == '/' && strncasecmp(s + 1, name, k) == 0 &&
	    (n == k + 1 || s[k + 1] == ' ');
}

static void
send_user_line(struct client *c, const char *s, size_t n)
{
	if (is_command(s, n, "quit")) {
		if (c->quit_sent)
			return;
		c->quit_sent = 1;
		if (!c->quitting)
			start_deadline(c);
	}
	send_line(c, s, n);
}

static void
prompt_nick(struct client *c)
{
	if (c->ui)
		c->redraw = 1; /* the prompt is the input row's */
	else if (c->tty_in && c->reg == REG_NEED && buf_used(&c->queue) == 0) {
		fputs("nickname: ", stdout);
		fflush(stdout);
	}
}

/*
 * Move held lines on: before registration the first one is a nickname
 * attempt (or /help, /quit, which work at any time), after it all go out.
 */
static void
queue_pump(struct client *c)
{
	char *line, *nl;
	size_t off = 0, n;

	while (c->reg != REG_WAIT && off < buf_used(&c->queue) && !c->done) {
		line = buf_head(&c->queue) + off;
		nl = memchr(line, '\n', buf_used(&c->queue) - off);
		n = (size_t)(nl - line);
		if (c->reg == REG_DONE || is_command(line, n, "help") ||
		    is_command(line, n, "quit"))
			send_user_line(c, line, n);
		else {
			send_line(c, line, n);
			c->reg = REG_WAIT;
		}
		off += n + 1;
	}
	buf_consume(&c->queue, off); /* once: no quadratic memmove */
}

/* ---- reading the keyboard pipe ---------------------------------------- */

static void
input_line(struct client *c, const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n == 0) {
		prompt_nick(c);
		return;
	}
	if (c->reg == REG_DONE && buf_used(&c->queue) == 0) {
		send_user_line(c, s, n);
		return;
	}
	append(&c->queue, s, n);
	append(&c->queue, "\n", 1);
	queue_pump(c);
}

static void print_rendered(struct client *c, const char *s, size_t len);

/*
 * Your own line, shown as sent: a message to your room, or a whisper
 * ("/whisper NICK TEXT", "/w NICK TEXT"), once registered and only when it
 * goes out now.  Commands are not shown: their replies are.
 */
static void
ui_echo(struct client *c, const char *s, size_t n)
{
	static char out[RENDER_OUT_MAX];
	char to[64];
	const char *p, *end = s + n;
	size_t len, k;

	if (c->reg != REG_DONE || buf_used(&c->queue) > 0 || c->write_dead)
		return;
	if (n > 0 && s[0] == '/' && !(n > 1 && s[1] == '/')) {
		if (!is_command(s, n, "whisper") && !is_command(s, n, "w"))
			return;
		for (p = memchr(s, ' ', n); p != NULL && p < end && *p == ' ';)
			p++;
		if (p == NULL || p >= end)
			return;
		for (k = 0; p + k < end && p[k] != ' '; k++)
			;
		render_sanitize(p, k, to, sizeof(to));
		for (p += k; p < end && *p == ' '; p++)
			;
		if (p >= end)
			return; /* no text: the server's usage error says it */
		len = render_own(c->room, c->nick, to, p, (size_t)(end - p),
		    c->color, out, sizeof(out));
	} else {
		if (s[0] == '/')
			s++, n--; /* "//x" is the message "/x" */
		len = render_own(
		    c->room, c->nick, NULL, s, n, c->color, out, sizeof(out));
	}
	print_rendered(c, out, len);
}

/* Keys from the keyboard process, through the line editor. */
static void
ui_keys(struct client *c, const char *k, size_t n)
{
	const char *line;
	size_t i, len;

	for (i = 0; i < n && !c->done; i++) {
		switch (edit_feed(&c->ed, (unsigned char)k[i])) {
		case EDIT_REDRAW:
			c->redraw = 1;
			break;
		case EDIT_SUBMIT:
			line = edit_line(&c->ed, &len);
			ui_echo(c, line, len);
			input_line(c, line, len);
			edit_done(&c->ed);
			c->redraw = 1;
			break;
		case EDIT_EOF: /* ^D on an empty line */
			send_user_line(c, "/quit", 5);
			break;
		case EDIT_NONE:
			break;
		}
	}
}

/* Split whole lines off b and hand each to fn; cap caps a line. */
static void
split_lines(struct client *c, struct buf *b, size_t cap,
    void (*fn)(struct client *, const char *, size_t))
{
	char *line, *nl;
	size_t off = 0, n;

	while (off < buf_used(b) && !c->done) {
		line = buf_head(b) + off;
		nl = memchr(line, '\n', buf_used(b) - off);
		if (nl == NULL && buf_used(b) - off < cap)
			break;
		n = nl != NULL ? (size_t)(nl - line) : buf_used(b) - off;
		fn(c, line, n);
		off += nl != NULL ? n + 1 : n;
	}
	buf_consume(b, off);
}

static void
drain_kbd(struct client *c)
{
	char tmp[4096];
	ssize_t n;

	c->kbd_held = 0;
	while (!c->kbd_eof && !c->done) {
		if (backlog(c) >= CLIENT_OUT_MAX) {
			c->kbd_held = 1; /* until SIGIO says writable */
			return;
		}
		n = read(c->kbd_fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->kbd_eof = 1; /* end of input: leave */
			if (buf_used(&c->kbd_in) > 0)
				append(&c->kbd_in, "\n", 1);
			append(&c->kbd_in, "/quit\n", 6);
		} else if (c->ui)
			ui_keys(c, tmp, (size_t)n);
		else
			append(&c->kbd_in, tmp, (size_t)n);
		split_lines(c, &c->kbd_in, CLIENT_KBD_LINE_MAX, input_line);
		if (c->kbd_eof && !c->quitting)
			start_deadline(c); /* bounded even if held */
	}
}

/* ---- reading the socket ----------------------------------------------- */

static void
nick_refused(struct client *c)
{
	if (c->nick_opt != NULL && !c->tty_in) {
		fprintf(stderr,
		    "forkchat: nickname '%s' was refused; choose "
		    "another with -n\n",
		    c->nick_opt);
		c->status = EXIT_USAGE;
		c->done = 1;
		return;
	}
	c->reg = REG_NEED;
	prompt_nick(c);
	queue_pump(c);
}

/*
 * The terminal's width, or 0 when stdout is no terminal (then lines are
 * printed whole, as before).  Asked again on every SIGWINCH.
 */
static void
update_width(struct client *c)
{
	struct winsize ws;

	c->width = 0;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		c->width = ws.ws_col;
}

/*
 * Print one rendered line.  On a terminal it is wrapped here, each
 * continuation row marked with RENDER_CONT, so the terminal never wraps a
 * line by itself: a message padded to the width cannot start a row that
 * looks like another user's line.
 */
static void
print_rendered(struct client *c, const char *s, size_t len)
{
	static char wrapped[RENDER_WRAP_OUT];

	ui_erase(c);
	if (c->width > 0) {
		len = render_wrap(s, len, c->width, wrapped, sizeof(wrapped));
		s = wrapped;
	}
	fwrite(s, 1, len, stdout);
	fputc('\n', stdout);
}

/* Copy field idx (0: the keyword) of s[0..n), sanitised, to out. */
static void
copy_field(const char *s, size_t n, int idx, char *out, size_t outsz)
{
	const char *p = s, *end = s + n, *sp;

	for (; idx > 0 && p < end; idx--) {
		sp = memchr(p, ' ', (size_t)(end - p));
		p = sp != NULL ? sp + 1 : end;
	}
	sp = memchr(p, ' ', (size_t)(end - p));
	render_sanitize(p, (size_t)((sp != NULL ? sp : end) - p), out, outsz);
}

/* Your nickname and room, for the prompt and your own lines. */
static void
ui_track(struct client *c, const char *s, size_t n)
{
	if (n > 8 && memcmp(s, "OK NICK ", 8) == 0)
		copy_field(s, n, 2, c->nick, sizeof(c->nick));
	else if (n > 8 && memcmp(s, "OK JOIN ", 8) == 0)
		copy_field(s, n, 2, c->room, sizeof(c->room));
	else if (n > 8 && memcmp(s, "REMOVED ", 8) == 0)
		snprintf(c->room, sizeof(c->room), "lobby");
	else
		return;
	c->redraw = 1;
}

static void
server_line(struct client *c, const char *s, size_t n)
{
	static char out[RENDER_OUT_MAX];
	enum render_kind kind;
	size_t len;

	len = render_line(s, n, c->color, out, sizeof(out));
	if (len > 0)
		print_rendered(c, out, len);
	ui_track(c, s, n);
	switch ((kind = render_classify(s, n, NULL))) {
	case RENDER_HELLO:
		if (c->nick_opt == NULL)
			prompt_nick(c);
		break;
	case RENDER_NICK_OK:
		c->reg = REG_DONE;
		queue_pump(c);
		break;
	case RENDER_ERR:
		if (c->reg == REG_WAIT)
			nick_refused(c);
		break;
	case RENDER_BYE_QUIT:
	case RENDER_BYE_OTHER:
		c->bye = kind;
		break;
	default:
		break;
	}
}

static void
drain_sock(struct client *c)
{
	char tmp[8192];
	ssize_t n;

	while (!c->sock_eof && !c->done) {
		n = recv(c->sock, tmp, sizeof(tmp), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->sock_err = n == -1 ? errno : 0;
			c->sock_eof = 1;
			if (buf_used(&c->net_in) >
			    0) /* a last unterminated line */
				append(&c->net_in, "\n", 1);
		} else
			append(&c->net_in, tmp, (size_t)n);
		split_lines(c, &c->net_in, CLIENT_NET_LINE_MAX, server_line);
	}
	fflush(stdout);
}

/* ---- the network process ---------------------------------------------- */

/* Why the connection ended decides the exit status. */
static void
finish_eof(struct client *c)
{
	ui_erase(c);
	c->done = 1;
	if (c->bye == RENDER_BYE_QUIT || c->quitting)
		c->status = EXIT_QUIT;
	else if (c->bye == RENDER_BYE_OTHER)
		c->status = EXIT_BYE;
	else {
		if (c->sock_err != 0)
			fprintf(stderr,
			    "forkchat: connection closed by server "
			    "(%s)\n",
			    strerror(c->sock_err));
		else
			fprintf(stderr,
			    "forkchat: connection closed by "
			    "server\n");
		c->status = EXIT_LOST;
	}
}

static void
handle_signal(struct client *c, int signo)
{
	sigset_t set;
	int st;

	switch (signo) {
	case SIGINT:
	case SIGTERM:
	case SIGHUP:
		if (c->quit_sent && signo == SIGINT) {
			c->status = EXIT_SIGINT; /* second ^C: now */
			c->done = 1;
		} else
			send_user_line(c, "/quit", 5);
		break;
	case SIGWINCH:
		update_width(c);
		c->redraw = c->ui;
		break;
	case SIGQUIT: /* ui only: the default action, terminal restored */
		ui_erase(c);
		fflush(stdout);
		tty_restore();
		signal(SIGQUIT, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, SIGQUIT);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(SIGQUIT);
		break;
	case SIGCHLD:
		if (c->kbd_pid > 0 && waitpid(c->kbd_pid, &st, WNOHANG) > 0)
			c->kbd_pid = 0;
		break;
	default: /* SIGIO, SIGUSR1: drain */
		break;
	}
}

/* Wait for one of our signals, or until the quit deadline passes. */
static void
wait_event(struct client *c)
{
	struct timespec now, left;
	int signo;

	if (!c->quitting) {
		signo = sigwaitinfo(&client_sigs, NULL);
	} else {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = c->deadline.tv_sec - now.tv_sec;
		left.tv_nsec = c->deadline.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0) {
			ui_erase(c);
			fprintf(stderr,
			    "forkchat: the server did not close "
			    "the connection; leaving anyway\n");
			c->status = EXIT_QUIT;
			c->done = 1;
			return;
		}
		signo = sigtimedwait(&client_sigs, NULL, &left);
	}
	if (signo > 0)
		handle_signal(c, signo);
}

static void
setup_signals(int ui)
{
	sigemptyset(&client_sigs);
	sigaddset(&client_sigs, SIGUSR1);
	sigaddset(&client_sigs, SIGIO);
	sigaddset(&client_sigs, SIGCHLD);
	sigaddset(&client_sigs, SIGINT);
	sigaddset(&client_sigs, SIGTERM);
	sigaddset(&client_sigs, SIGHUP);
	sigaddset(&client_sigs, SIGWINCH);
	if (ui)
		sigaddset(&client_sigs, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &client_sigs, NULL) == -1)
		client_die("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
}

/* Signal-driven socket: SIGIO to us whenever it is readable/writable. */
static void
sock_async(int fd)
{
	if (fcntl(fd, F_SETOWN, getpid()) == -1 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) == -1)
		client_die("fcntl");
}

int
main(int argc, char **argv)
{
	struct client c;
	const char *host, *port;

	memset(&c, 0, sizeof(c));
	parse_args(argc, argv, &c, &host, &port);
	if (!port_valid(port)) {
		fprintf(stderr, "forkchat: bad port '%s'\n", port);
		return EXIT_USAGE;
	}
	c.tty_in = isatty(STDIN_FILENO);
	render_locale(); /* display widths of UTF-8 text */
	if ((c.sock = connect_server(host, port)) == -1)
		return EXIT_LOST;
	c.ui = c.tty_in && isatty(STDOUT_FILENO) && tty_raw() == 0;
	edit_init(&c.ed);
	snprintf(c.room, sizeof(c.room), "lobby");
	setup_signals(c.ui);
	update_width(&c);
	kbd_spawn(&c);
	sock_async(c.sock);
	if (c.nick_opt != NULL) {
		send_line(&c, c.nick_opt, strlen(c.nick_opt));
		c.reg = REG_WAIT;
	}
	while (!c.done) {
		drain_sock(&c); /* also the initial drain */
		drain_kbd(&c);
		sock_flush(&c);
		if (c.sock_eof && !c.done)
			finish_eof(&c);
		/* The flush made room: read the held keys without waiting. */
		if (c.ui && c.redraw && !c.done) {
			ui_draw(
			    &c); /* once per turn, after everything printed */
			fflush(stdout);
		}
		if (!c.done && !(c.kbd_held && backlog(&c) < CLIENT_OUT_MAX))
			wait_event(&c);
	}
	ui_erase(&c);
	fflush(stdout);
	edit_free(&c.ed);
	kbd_stop(&c);
	close(c.sock);
	close(c.kbd_fd);
	buf_free(&c.out);
	buf_free(&c.net_in);
	buf_free(&c.kbd_in);
	buf_free(&c.queue);
	return c.status;
}
