/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_main.c - forkchat-load: options, the parent's bookkeeping, the report.
 *
 * The parent never talks to a server itself.  It forks the client processes
 * (lg_client.c) or the floor's children (lg_floor.c), releases each phase,
 * waits for status records with an alarm as the bound, then merges the
 * per-receiver counters and histograms from shared memory and prints one
 * JSON object per run plus a human summary.  Exit status: 0 clean, 1 wrong
 * delivery (loss, duplicates, reordering) or a client error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "lg.h"
#include "lg_report.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: forkchat-load [options]\n"
	    "Forks N client processes against forkchatd, an IRC server, Redis pub/sub\n"
	    "or one of the floors, sends timestamped messages and reports latency,\n"
	    "throughput, server CPU and memory, loss, duplicates and reordering.\n"
	    "  -s, --system NAME      forkchat (default), forkchat-federated, redis,\n"
	    "                         ngircd, inspircd, irc (IRC), floor-pipe (alias\n"
	    "                         floor: pipe+SIGUSR2), floor-tcp (pipe+SIGUSR2+TCP),\n"
	    "                         floor-tcp-send (floor-tcp whose S senders are\n"
	    "                         clients) or floor-storm (build/forkchat-storm-floor\n"
	    "                         at -p; --connect-only: the connect-storm floor)\n"
	    "      --proto P          the protocol, when -s is only a label: forkchat,\n"
	    "                         redis, irc, floor-pipe, floor-tcp, floor-tcp-send\n"
	    "                         or floor-storm\n"
	    "      --label NAME       the system's name in the report (default: -s)\n"
	    "  -p, --port N           server port on 127.0.0.1 (default 5101)\n"
	    "      --ports P1,P2,...  federated hubs: client i connects to P(i mod count)\n"
	    "  -n, --clients N        client processes (receivers), 1..%d (default 10)\n"
	    "  -S, --senders S        of which S also send (default 1)\n"
	    "  -k, --rooms K          spread clients over K rooms (default 1 = lobby)\n"
	    "  -m, --messages M       messages per sender (default 100)\n"
	    "  -r, --rate R           total messages/s over all senders; 0 = back to back\n"
	    "  -z, --size B           message text bytes, %d..%d (default 64)\n"
	    "  -B, --batch B          floors: at most B messages per pipe write and\n"
	    "                         signal when behind or back to back (64; 1 = raw)\n"
	    "      --cork             floor-tcp-send: as forkchatd, the receivers' pipes\n"
	    "                         raise SIGUSR2 themselves (no kill()) and a busy\n"
	    "                         parent corks a room's batch (4/16 KiB or 1 ms)\n"
	    "      --quickack         receivers set TCP_QUICKACK after every read: they\n"
	    "                         ACK at once, so a server without TCP_NODELAY is not\n"
	    "                         held by Nagle against their delayed ACKs\n"
	    "  -R, --repeat R         R paced (-m, -r) traffic phases on one set-up, one\n"
	    "                         JSON line each (default 1); -d is per phase\n"
	    "      --max-repeat R2    then R2 back-to-back phases (scenario NAME-max)\n"
	    "      --max-messages M2  messages per sender in each of those\n"
	    "                         (phases in all: at most %d)\n"
	    "  -w, --window W         back to back: at most W messages of a sender not\n"
	    "                         yet at every receiver (0 = unbounded, default)\n"
	    "  -d, --duration S       stop sending after S seconds (default 10)\n"
	    "      --drain S          wait at most S seconds for deliveries after (10)\n"
	    "  -T, --timeout S        hard bound on the whole run (default 120)\n"
	    "      --settle S         pause between setup and traffic (default 0.2)\n"
	    "      --linger S         keep the clients connected S s after the\n"
	    "                         last result line (a tool reads the server)\n"
	    "  -P, --server-pid PID   server pid, for its CPU and memory (with children)\n"
	    "      --pid-file PATH    read the server pid from PATH\n"
	    "      --scenario NAME    label in the report\n"
	    "  -j, --json FILE        append the JSON result line to FILE (default stdout)\n"
	    "      --nick-prefix STR  nickname prefix (default b: b0000, b0001, ...);\n"
	    "                         pid: p<PID>_ so that back-to-back runs never clash\n"
	    "      --connect-only     connect and register N clients, then quit (with -j:\n"
	    "                         one JSON line, connect_ms and connect_cpu_ms)\n"
	    "      --hold S           connect and register, return once all are in; the\n"
	    "                         clients stay until the server closes them or S s\n"
	    "      --stop             send SIGTERM to the server (--server-pid or\n"
	    "                         --pid-file) and wait until it is gone (-T bound)\n"
	    "  -q, --quiet            no progress lines\n"
	    "  -h, --help\n"
	    "Exit: 0 ok, 1 loss/duplicates/reordering/client error, 2 usage.\n",
	    LG_MAX_CLIENTS, 48, LG_MAX_SIZE, LG_MAX_REPEAT);
}

/* A system or protocol name into lg.sys; -1 if unknown. */
static int
set_proto(const char *name)
{
	static const struct {
		const char *name;
		enum lg_system sys;
	} known[] = {
		{ "forkchat", SYS_FORKCHAT },
		{ "forkchat-federated", SYS_FORKCHAT },
		{ "redis", SYS_REDIS },
		{ "irc", SYS_IRC },
		{ "ngircd", SYS_IRC },
		{ "inspircd", SYS_IRC },
		{ "floor", SYS_FLOOR },
		{ "floor-pipe", SYS_FLOOR },
		{ "floor-tcp", SYS_FLOOR_TCP },
		{ "floor-storm", SYS_FLOOR_STORM },
		{ "floor-tcp-send", SYS_FLOOR_TCP_SEND },
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].name) == 0) {
			lg.sys = known[i].sys;
			return 0;
		}
	return -1;
}

/* "P1,P2,..." into lg.ports (at most 8). */
static int
parse_ports(const char *arg)
{
	char *end;
	long v;

	lg.nports = 0;
	for (;;) {
		v = strtol(arg, &end, 10);
		if (end == arg || v < 1 || v > 65535 ||
		    lg.nports == (int)(sizeof(lg.ports) / sizeof(lg.ports[0])))
			return -1;
		lg.ports[lg.nports++] = (int)v;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		arg = end + 1;
	}
}

static int
parse_opts(int argc, char **argv)
{
	static const struct option lo[] = { { "system", 1, NULL, 's' },
		{ "port", 1, NULL, 'p' }, { "clients", 1, NULL, 'n' },
		{ "senders", 1, NULL, 'S' }, { "rooms", 1, NULL, 'k' },
		{ "messages", 1, NULL, 'm' }, { "rate", 1, NULL, 'r' },
		{ "size", 1, NULL, 'z' }, { "batch", 1, NULL, 'B' },
		{ "duration", 1, NULL, 'd' }, { "drain", 1, NULL, 1 },
		{ "timeout", 1, NULL, 'T' }, { "settle", 1, NULL, 2 },
		{ "server-pid", 1, NULL, 'P' }, { "pid-file", 1, NULL, 3 },
		{ "scenario", 1, NULL, 4 }, { "json", 1, NULL, 'j' },
		{ "nick-prefix", 1, NULL, 5 }, { "connect-only", 0, NULL, 6 },
		{ "hold", 1, NULL, 7 }, { "stop", 0, NULL, 8 },
		{ "ports", 1, NULL, 9 }, { "proto", 1, NULL, 10 },
		{ "label", 1, NULL, 11 }, { "window", 1, NULL, 'w' },
		{ "quickack", 0, NULL, 12 }, { "repeat", 1, NULL, 'R' },
		{ "max-repeat", 1, NULL, 13 }, { "max-messages", 1, NULL, 14 },
		{ "quiet", 0, NULL, 'q' }, { "help", 0, NULL, 'h' },
		{ "linger", 1, NULL, 15 }, { "cork", 0, NULL, 16 },
		{ NULL, 0, NULL, 0 } };
	const char *label = NULL;
	int c, proto_set = 0;

	while ((c = getopt_long(argc, argv, "s:p:n:S:k:m:r:z:B:d:T:P:j:w:R:qh",
	            lo, NULL)) != -1) {
		switch (c) {
		case 's':
			lg.sysname = optarg;
			break;
		case 10:
			if (set_proto(optarg) < 0)
				return -1;
			proto_set = 1;
			break;
		case 11:
			label = optarg;
			break;
		case 'w':
			lg.window = atoi(optarg);
			break;
		case 'R':
			lg.repeat = atoi(optarg);
			break;
		case 13:
			lg.max_repeat = atoi(optarg);
			break;
		case 14:
			lg.max_messages = atol(optarg);
			break;
		case 12:
			lg.quickack = 1;
			break;
		case 16:
			lg.cork = 1;
			break;
		case 'p':
			lg.port = atoi(optarg);
			break;
		case 'n':
			lg.n = atoi(optarg);
			break;
		case 'S':
			lg.senders = atoi(optarg);
			break;
		case 'k':
			lg.rooms = atoi(optarg);
			break;
		case 'm':
			lg.messages = atol(optarg);
			break;
		case 'r':
			lg.rate = atof(optarg);
			break;
		case 'z':
			lg.size = atoi(optarg);
			break;
		case 'B':
			lg.batch = atoi(optarg);
			break;
		case 'd':
			lg.duration = atof(optarg);
			break;
		case 1:
			lg.drain = atof(optarg);
			break;
		case 'T':
			lg.timeout = atof(optarg);
			break;
		case 2:
			lg.settle = atof(optarg);
			break;
		case 15:
			lg.linger = atof(optarg);
			break;
		case 'P':
			lg.server_pid = atoi(optarg);
			break;
		case 3:
			lg.pid_file = optarg;
			break;
		case 4:
			lg.scenario = optarg;
			break;
		case 'j':
			lg.json = optarg;
			break;
		case 5:
			lg.nick_prefix = optarg;
			break;
		case 6:
			lg.connect_only = 1;
			break;
		case 7:
			lg.hold = atof(optarg);
			break;
		case 8:
			lg.stop = 1;
			break;
		case 9:
			if (parse_ports(optarg) < 0)
				return -1;
			break;
		case 'q':
			lg.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	/* -s NAME names the protocol too, unless --proto gave it (then
	 * NAME is only the label in the report) */
	if (!proto_set && set_proto(lg.sysname) < 0)
		return -1;
	if (label != NULL)
		lg.sysname = label;
	if (optind != argc || lg.window < 0 || lg.repeat < 1 ||
	    lg.max_repeat < 0 || lg.repeat + lg.max_repeat > LG_MAX_REPEAT ||
	    lg.max_messages < 0 || lg.max_messages > 100000000 || lg.n < 1 ||
	    lg.n > LG_MAX_CLIENTS || lg.port < 1 || lg.port > 65535 ||
	    lg.rooms < 1 || lg.rooms > LG_MAX_ROOMS || lg.rooms > lg.n ||
	    lg.senders < 0 || lg.senders > LG_MAX_SENDERS || lg.messages < 0 ||
	    lg.messages > 100000000 || lg.rate < 0 || lg.size < 48 ||
	    lg.size > LG_MAX_SIZE || lg.batch < 1 || lg.batch > 1000 ||
	    lg.duration <= 0 || lg.drain < 0 || lg.timeout <= 0 ||
	    strlen(lg.nick_prefix) > 11)
		return -1;
	if (lg.sys != SYS_FLOOR && lg.sys != SYS_FLOOR_TCP && lg.senders > lg.n)
		return -1;
	if (lg.cork && lg.sys != SYS_FLOOR_TCP_SEND)
		return -1;
	if (lg.sys == SYS_FLOOR_STORM && !lg.connect_only && lg.hold <= 0)
		return -1; /* it answers the first line and nothing more */
	return 0;
}

static void
raise_limits(void)
{
	struct rlimit rl;
	rlim_t want_fd = (rlim_t)lg.n * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want_fd) {
		rl.rlim_cur = rl.rlim_max < want_fd ? rl.rlim_max : want_fd;
		if (rl.rlim_max < want_fd)
			rl.rlim_max = rl.rlim_cur = want_fd; /* root only */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)lg.n * 3 + 256) {
		rl.rlim_cur = (rlim_t)lg.n * 3 + 256;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		setrlimit(RLIMIT_NPROC, &rl);
	}
}

static int
proc_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int zombie = 0;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		zombie = p[1] == ' ' && p[2] == 'Z';
	fclose(f);
	return zombie;
}

/* --stop: SIGTERM the server and wait, polling every 0.5 ms, until it is
 * gone; the caller (hyperfine) times exactly the graceful shutdown. */
static int
stop_server(void)
{
	pid_t pid = lg_server_pid();
	int64_t deadline = now_ns() + (int64_t)(lg.timeout * 1e9);

	if (pid <= 1 || kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "forkchat-load: --stop: no server pid\n");
		return 1;
	}
	while (!proc_gone(pid)) {
		if (now_ns() > deadline) {
			fprintf(stderr,
			    "forkchat-load: --stop: pid %d still "
			    "running after %g s\n",
			    (int)pid, lg.timeout);
			return 1;
		}
		sleep_until(now_ns() + 500000);
	}
	return 0;
}

static int
setup(void)
{
	size_t sz;
	int fds[2];
	sz = sizeof(struct lg_shm) + (size_t)lg.n * sizeof(struct lg_slot);
	lg_shm = mmap(NULL, sz, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lg_shm == MAP_FAILED)
		return -1;
	if (pipe(fds) < 0)
		return -1;
	lg_parent_signals();
	lg_status_wr = fds[1];
	lg_status_rd = fds[0];
	return fds[0];
}

int
main(int argc, char **argv)
{
	static struct lg_result r;
	int rc, fd;

	if (parse_opts(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (lg.stop)
		return stop_server();
	if (strcmp(lg.nick_prefix, "pid") == 0) { /* unique per run */
		static char pfx[16];

		snprintf(pfx, sizeof(pfx), "p%d_", (int)(getpid() % 1000000));
		lg.nick_prefix = pfx;
	}
	raise_limits();
	if ((fd = setup()) < 0) {
		perror("forkchat-load: setup");
		return 1;
	}
	r.rss_kb = r.pss_kb = r.pte_kb = -1;
	r.cpu_ns = -1;
	r.connect_cpu_ns = -1;
	r.wakeups = -1;
	rc = lg.sys == SYS_FLOOR ? floor_run(&r) : client_run(&r);
	(void)fd;
	if (lg.connect_only && lg.json != NULL && rc == 0) {
		report_merge(&r); /* no traffic: the connect figures */
		report_output(&r);
	}
	if (lg.connect_only || lg.hold)
		return rc || r.any_bad ? 1 : 0;
	if (r.printed == 0) { /* no repetition finished: what there is */
		report_merge(&r);
		report_output(&r);
	}
	if (rc || r.any_bad) {
		fprintf(stderr, "forkchat-load: FAILED: %s\n",
		    rc ? "run did not complete" :
		         "wrong delivery or client error");
		return 1;
	}
	return 0;
}
