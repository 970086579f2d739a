/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * opts.c - forkchatd option parsing with getopt_long.
 *
 * Never exits and never prints errors itself: it returns a reason, so that
 * main decides what to do and unit tests can check every bad input.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/opts.h"
#include "lib/proto.h"

enum {
	O_MAX_ROOMS = 256,
	O_MAX_LINE,
	O_MAX_BACKLOG,
	O_REG_TIMEOUT,
	O_PID_FILE,
	O_STATS_INTERVAL,
	O_USER,
	O_REDIS,
	O_HUB_ID,
	O_NICK_TTL,
	O_REDIS_TIMEOUT,
	O_MAX_PER_ADDR,
	O_MAX_UNREG_PER_ADDR,
	O_RESERVE,
	O_EXEMPT
};

static const struct option longopts[] = { { "port", required_argument, NULL,
	                                      'p' },
	{ "bind", required_argument, NULL, 'b' },
	{ "max-clients", required_argument, NULL, 'm' },
	{ "max-rooms", required_argument, NULL, O_MAX_ROOMS },
	{ "max-line", required_argument, NULL, O_MAX_LINE },
	{ "max-backlog", required_argument, NULL, O_MAX_BACKLOG },
	{ "register-timeout", required_argument, NULL, O_REG_TIMEOUT },
	{ "log-dir", required_argument, NULL, 'l' },
	{ "pid-file", required_argument, NULL, O_PID_FILE },
	{ "foreground", no_argument, NULL, 'f' },
	{ "user", required_argument, NULL, O_USER },
	{ "stats-interval", required_argument, NULL, O_STATS_INTERVAL },
	{ "redis", required_argument, NULL, O_REDIS },
	{ "hub-id", required_argument, NULL, O_HUB_ID },
	{ "nick-ttl", required_argument, NULL, O_NICK_TTL },
	{ "redis-timeout", required_argument, NULL, O_REDIS_TIMEOUT },
	{ "max-per-addr", required_argument, NULL, O_MAX_PER_ADDR },
	{ "max-unreg-per-addr", required_argument, NULL, O_MAX_UNREG_PER_ADDR },
	{ "reserve", required_argument, NULL, O_RESERVE },
	{ "exempt", required_argument, NULL, O_EXEMPT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 } };

static const char usage_text[] =
    "usage: forkchatd [options]\n"
    "  -p, --port N              TCP port (default 5101)\n"
    "  -b, --bind ADDR           IPv4 address or host name to listen on\n"
    "                            (default 127.0.0.1)\n"
    "  -m, --max-clients N       simultaneous clients, 1..100000 (default 1000)\n"
    "      --max-rooms N         rooms besides the lobby (default 256)\n"
    "      --max-line N          longest line in bytes, 16..4000 (default 2000)\n"
    "      --max-backlog BYTES   output held for a slow client: past BYTES/4 its\n"
    "                            room's senders are paused; it is cut if it\n"
    "                            stops draining (default 1048576)\n"
    "      --register-timeout S  seconds to send a nickname, 0 = no limit (default 30)\n"
    "      --max-per-addr N      connections from one address (IPv6: one /64),\n"
    "                            0 = no limit (default 10)\n"
    "      --max-unreg-per-addr N  of those, without a nickname yet, 0 = no\n"
    "                            limit (default 3)\n"
    "      --reserve N           slots that connections without a nickname never\n"
    "                            take (default: a tenth of --max-clients)\n"
    "      --exempt NET|none     ADDR[/PREFIX] outside these three limits;\n"
    "                            repeatable; 'none' clears the list (default\n"
    "                            127.0.0.0/8 and ::1)\n"
    "  -l, --log-dir DIR         log directory (default ./logs)\n"
    "      --pid-file PATH       write the server pid to PATH\n"
    "  -f, --foreground          stay in the foreground; log to stderr as well\n"
    "      --user NAME           started as root: run as NAME once the socket,\n"
    "                            log and pid file are open\n"
    "      --stats-interval S    seconds between 'stats' log lines, 0 = none\n"
    "                            (default 60)\n"
    "      --redis HOST:PORT     federate with the hubs sharing this Redis\n"
    "      --hub-id NAME         this hub's name in the federation\n"
    "                            (default HOSTNAME-PORT)\n"
    "      --nick-ttl S          seconds a dead hub's nicknames stay taken,\n"
    "                            5..3600 (default 30)\n"
    "      --redis-timeout MS    Redis silent this long with a reply due is\n"
    "                            down, 100..600000 (default 5000)\n"
    "  -h, --help                this text\n"
    "  -V, --version             print the version\n";

static int
num(const char *s, long long lo, long long hi, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi;
}

static int
copy(char *dst, size_t sz, const char *src)
{
	size_t n = strlen(src);

	if (n == 0 || n >= sz)
		return 0;
	memcpy(dst, src, n + 1);
	return 1;
}

static void
defaults(struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 5101;
	snprintf(o->bind, sizeof(o->bind), "127.0.0.1");
	o->max_clients = 1000;
	o->max_rooms = 256;
	o->max_line = PROTO_DEFAULT_MAX_LINE;
	o->max_backlog = 1024 * 1024;
	o->register_timeout = 30;
	snprintf(o->log_dir, sizeof(o->log_dir), "logs");
	o->stats_interval = 60;
	o->nick_ttl = 30;
	o->redis_timeout_ms = 5000;
	o->max_per_addr = 10;
	o->max_unreg_per_addr = 3;
	o->reserve = -1;
	(void)addrlim_net_parse("127.0.0.0/8", &o->exempt[o->nexempt++]);
	(void)addrlim_net_parse("::1", &o->exempt[o->nexempt++]);
}

/* --exempt NET adds NET; --exempt none empties the list (defaults too). */
static int
exempt(struct server_opts *o, const char *arg)
{
	if (strcmp(arg, "none") == 0) {
		o->nexempt = 0;
		return 1;
	}
	return o->nexempt < OPTS_MAX_EXEMPT &&
	    addrlim_net_parse(arg, &o->exempt[o->nexempt]) == 0 && ++o->nexempt;
}

/* HOST:PORT into o->redis_host and o->redis_port. */
static int
redis_addr(struct server_opts *o, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	long long v;

	if (colon == NULL || colon == arg ||
	    (size_t)(colon - arg) >= sizeof(o->redis_host) ||
	    !num(colon + 1, 1, 65535, &v))
		return 0;
	memcpy(o->redis_host, arg, (size_t)(colon - arg));
	o->redis_host[colon - arg] = '\0';
	o->redis_port = (int)v;
	return 1;
}

/* 1..64 characters of [A-Za-z0-9._:-]. */
static int
hub_id(struct server_opts *o, const char *arg)
{
	const char *p;

	for (p = arg; *p; p++)
		if (!strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789._:-",
		        *p))
			return 0;
	return copy(o->hub_id, sizeof(o->hub_id), arg);
}

/*
 * -b: a dotted-quad IPv4 address, or a host name resolved here, at startup
 * and before daemonizing, to its first IPv4 address (stored in numeric
 * form, so the log says what was bound).  Something made only of digits
 * and dots is an address or nothing (no lookup for "999.1.1.1"); a name
 * must look like one (letters, digits, '-', '.') before it is looked up.
 */
static int
bind_addr(struct server_opts *o, const char *arg)
{
	struct addrinfo hints, *res;
	struct in_addr a;
	int ok;

	if (inet_pton(AF_INET, arg, &a) == 1)
		return copy(o->bind, sizeof(o->bind), arg);
	if (arg[strspn(arg, "0123456789.")] == '\0' || arg[0] == '-' ||
	    arg[0] == '.' ||
	    arg[strspn(arg,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789.-")] != '\0' ||
	    strlen(arg) > 253)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(arg, NULL, &hints, &res) != 0)
		return 0;
	ok = inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr,
	         o->bind, sizeof(o->bind)) != NULL;
	freeaddrinfo(res);
	return ok;
}

/* Apply one option; 0 if its argument is bad. */
static int
apply(struct server_opts *o, int c, const char *arg)
{
	long long v = 0;

	switch (c) {
	case 'p':
		return num(arg, 1, 65535, &v) && ((o->port = (int)v), 1);
	case 'b':
		return bind_addr(o, arg);
	case 'm':
		return num(arg, 1, 100000, &v) &&
		    ((o->max_clients = (int)v), 1);
	case O_MAX_ROOMS:
		return num(arg, 0, 100000, &v) && ((o->max_rooms = (int)v), 1);
	case O_MAX_LINE:
		return num(arg, PROTO_MIN_LINE_LIMIT, PROTO_MAX_LINE_LIMIT,
		           &v) &&
		    ((o->max_line = (size_t)v), 1);
	case O_MAX_BACKLOG:
		return num(arg, 4096, 1LL << 34, &v) &&
		    ((o->max_backlog = (size_t)v), 1);
	case O_REG_TIMEOUT:
		return num(arg, 0, 86400, &v) &&
		    ((o->register_timeout = (int)v), 1);
	case 'l':
		return copy(o->log_dir, sizeof(o->log_dir), arg);
	case O_PID_FILE:
		return copy(o->pid_file, sizeof(o->pid_file), arg);
	case 'f':
		o->foreground = 1;
		return 1;
	case O_USER:
		return copy(o->user, sizeof(o->user), arg);
	case O_REDIS:
		return redis_addr(o, arg);
	case O_HUB_ID:
		return hub_id(o, arg);
	case O_NICK_TTL:
		return num(arg, 5, 3600, &v) && ((o->nick_ttl = (int)v), 1);
	case O_REDIS_TIMEOUT:
		return num(arg, 100, 600000, &v) &&
		    ((o->redis_timeout_ms = (int)v), 1);
	case O_MAX_PER_ADDR:
		return num(arg, 0, 100000, &v) &&
		    ((o->max_per_addr = (int)v), 1);
	case O_MAX_UNREG_PER_ADDR:
		return num(arg, 0, 100000, &v) &&
		    ((o->max_unreg_per_addr = (int)v), 1);
	case O_RESERVE:
		return num(arg, 0, 99999, &v) && ((o->reserve = (int)v), 1);
	case O_EXEMPT:
		return exempt(o, arg);
	case O_STATS_INTERVAL:
		return num(arg, 0, 86400, &v) &&
		    ((o->stats_interval = (int)v), 1);
	}
	return 0;
}

enum opts_result
opts_parse(struct server_opts *o, int argc, char **argv, char *err,
    size_t errsz, void *out)
{
	int c, idx;

	defaults(o);
	optind = 0; /* full reset: tests parse repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:b:m:l:fhV", longopts, &idx)) !=
	    -1) {
		if (c == 'h') {
			fputs(usage_text, (FILE *)out);
			return OPTS_EXIT_OK;
		} else if (c == 'V') {
			fprintf(
			    (FILE *)out, "forkchatd %s\n", FORKCHAT_VERSION);
			return OPTS_EXIT_OK;
		} else if (c == '?' || c == ':') {
			/* a short option, maybe inside "-xf": name it alone */
			if (optopt > 0 && optopt < 128 &&
			    strncmp(argv[optind - 1], "--", 2) != 0)
				snprintf(err, errsz, "%s option: -%c",
				    c == '?' ? "unknown" :
				               "missing argument for",
				    optopt);
			else
				snprintf(err, errsz, "%s option: %s",
				    c == '?' ? "unknown" :
				               "missing argument for",
				    argv[optind - 1]);
			return OPTS_USAGE;
		} else if (!apply(o, c, optarg)) {
			snprintf(err, errsz, "invalid value for %s: '%s'%s",
			    argv[optind - 1 -
			        (optarg == argv[optind - 1] ? 1 : 0)],
			    optarg ? optarg : "",
			    c == 'b' ? " (an IPv4 address, or a host name "
			               "that has one)" :
			               "");
			return OPTS_USAGE;
		}
	}
	if (optind < argc) {
		snprintf(err, errsz, "unexpected argument: %s", argv[optind]);
		return OPTS_USAGE;
	}
	if (o->reserve >= o->max_clients) {
		snprintf(err, errsz,
		    "--reserve %d leaves no slot for new connections: it "
		    "must be below --max-clients %d",
		    o->reserve, o->max_clients);
		return OPTS_USAGE;
	}
	return OPTS_RUN;
}
