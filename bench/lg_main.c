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

struct lg_opts lg = {
	.sys = SYS_FORKCHAT, .sysname = "forkchat", .scenario = "custom",
	.port = 5101, .n = 10, .senders = 1, .rooms = 1, .messages = 100,
	.rate = 100, .size = 64, .batch = 64, .duration = 10, .drain = 10,
	.timeout = 120, .settle = 0.2, .nick_prefix = "b",
};
struct lg_shm *lg_shm;
int lg_status_wr = -1;
int lg_status_rd = -1;
volatile sig_atomic_t lg_got_usr1, lg_got_alrm;

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
status_send(int idx, int kind)
{
	struct lg_rec r = { (uint16_t)idx, (uint8_t)kind, 0 };

	if (idx >= 0 && idx < lg.n && kind != ST_SENT)
		lg_shm->slot[idx].state = kind;
	while (write(lg_status_wr, &r, sizeof(r)) < 0 && errno == EINTR)
		;
}

void
slot_fail(int idx, const char *fmt, ...)
{
	va_list ap;

	if (idx >= 0 && idx < lg.n) {
		va_start(ap, fmt);
		vsnprintf(lg_shm->slot[idx].err, sizeof(lg_shm->slot[idx].err),
		    fmt, ap);
		va_end(ap);
	}
	status_send(idx, ST_ERR);
}

static void
on_usr1(int sig)
{
	(void)sig;
	lg_got_usr1 = 1;
}

static void
on_alrm(int sig)
{
	(void)sig;
	lg_got_alrm = 1;
}

void
arm_alarm(double seconds)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	if (seconds > 0) {
		it.it_value.tv_sec = (time_t)seconds;
		it.it_value.tv_usec = (suseconds_t)((seconds -
		    (double)it.it_value.tv_sec) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
	}
	lg_got_alrm = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

void
sleep_until(int64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000), (long)(t % 1000000000) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR && !lg_got_alrm)
		;
}

/* Blocks until the parent closes the barrier (0) or the alarm fires (-1). */
int
wait_barrier(int fd)
{
	char c;
	ssize_t r;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == 0)
			return 0;
		if (r < 0 && errno == EINTR && !lg_got_alrm)
			continue;
		return -1;
	}
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * Runs right after fork in every child: die with the parent, keep only the
 * listed descriptors (others are closed with close_range, cheap even with
 * a thousand siblings' pipes open), and take SIGUSR1/SIGALRM as flags.
 */
void
child_setup(const int *keep, int nkeep)
{
	int k[8], i, lo = 3;
	struct sigaction sa;

	if (!lg.hold) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
	}
	for (i = 0; i < nkeep && i < 8; i++)
		k[i] = keep[i];
	nkeep = i;
	qsort(k, (size_t)nkeep, sizeof(int), cmp_int);
	for (i = 0; i < nkeep; i++) {
		if (k[i] < lo)
			continue;
		if (k[i] > lo)
			close_range((unsigned)lo, (unsigned)k[i] - 1, 0);
		lo = k[i] + 1;
	}
	close_range((unsigned)lo, ~0U, 0);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, NULL);
	lg_got_usr1 = lg_got_alrm = 0;
}

static void
progress(void)
{
	uint64_t sent = 0, got = 0;
	int i;

	for (i = 0; i < lg.senders; i++)
		sent += lg_shm->snd[i].sent;
	for (i = 0; i < lg.n; i++)
		got += lg_shm->slot[i].unique;
	fprintf(stderr, "  [%s %s n=%d] sent %llu/%llu, delivered %llu\n",
	    lg.sysname, lg.scenario, lg.n, (unsigned long long)sent,
	    (unsigned long long)lg.messages * (unsigned long long)lg.senders,
	    (unsigned long long)got);
}

/*
 * Reads status records until `want` records of `kind` have arrived, a
 * client failed, or `deadline` passed.  Blocking read() bounded by a timer;
 * with `progress` set it prints a line to stderr every second.
 */
int
parent_wait(int fd, struct lg_wait *w, int kind, int want, int64_t deadline,
    int prog)
{
	static int64_t next_prog;
	struct lg_rec buf[512];
	int64_t left;
	ssize_t r;
	int i;

	if (next_prog == 0)
		next_prog = now_ns() + 2000000000LL;

	while (w->count[kind] < want && w->count[ST_ERR] == 0) {
		left = deadline - now_ns();
		if (left <= 0)
			return -1;
		arm_alarm(left > 1000000000 ? 1.0 : (double)left / 1e9);
		r = read(fd, buf, sizeof(buf));
		arm_alarm(0);
		for (i = 0; r > 0 && i < (int)(r / (ssize_t)sizeof(buf[0])); i++)
			if (buf[i].kind <= ST_ERR)
				w->count[buf[i].kind]++;
		if (prog && !lg.quiet && now_ns() >= next_prog) {
			progress();
			next_prog = now_ns() + 1000000000LL;
		}
	}
	if (w->count[ST_ERR] > 0)
		w->failed = 1;
	return w->count[kind] >= want ? 0 : -1;
}

/* Receiver i got everything its senders really sent. */
static int
delivered(int i)
{
	uint64_t exp = 0;
	int s;

	for (s = 0; s < lg.senders; s++)
		if (lg_room_of(s) == lg_room_of(i) &&
		    (lg.sys == SYS_FLOOR || s != i))
			exp += lg_shm->snd[s].sent;
	return lg_shm->slot[i].unique >= exp;
}

/* After the senders finished: wait until every receiver has everything
 * that was sent, at most `drain` seconds.  0 if all arrived. */
int
parent_drain(int fd, struct lg_wait *w, double drain)
{
	int64_t deadline = now_ns() + (int64_t)(drain * 1e9), t;
	int i = 0;

	for (;;) {
		while (i < lg.n && delivered(i))
			i++;
		if (i == lg.n)
			return 0;
		if ((t = now_ns()) >= deadline || w->count[ST_ERR] > 0)
			return -1;
		t += 100000000LL;
		parent_wait(fd, w, ST_COMPLETE, lg.n, t < deadline ? t :
		    deadline, 1);
	}
}

/*
 * Ends the run: SIGUSR1 asks every receiver to finalise and exit; repeat
 * it (a signal can land just before a blocking read) until all reported
 * or 5 s passed, then SIGKILL the rest and reap everyone.
 */
void
parent_finish(int fd, struct lg_wait *w, const pid_t *pids, int np)
{
	int64_t deadline = now_ns() + 5000000000LL;
	int i, st, left = 1;

	while (left && now_ns() < deadline) {
		left = 0;
		for (i = 0; i < np; i++) {
			st = lg_shm->slot[i].state;
			if (pids[i] > 0 && st != ST_FINAL && st != ST_ERR) {
				kill(pids[i], SIGUSR1);
				left++;
			}
		}
		if (left)
			parent_wait(fd, w, ST_FINAL, w->count[ST_FINAL] + 1,
			    now_ns() + 50000000LL, 0);
	}
	for (i = 0; i < np; i++)
		if (pids[i] > 0 && lg_shm->slot[i].state != ST_FINAL &&
		    lg_shm->slot[i].state != ST_ERR)
			kill(pids[i], SIGKILL);
	arm_alarm(5);
	for (i = 0; i < np; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	arm_alarm(0);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: forkchat-load [options]\n"
"Forks N client processes against forkchatd, Redis pub/sub or the raw\n"
"pipe+signal floor, sends timestamped messages and reports latency,\n"
"throughput, loss, duplicates and reordering.\n"
"  -s, --system NAME      forkchat (default), forkchat-federated, redis or floor\n"
"  -p, --port N           server port on 127.0.0.1 (default 5101)\n"
"      --ports P1,P2,...  federated hubs: client i connects to P(i mod count)\n"
"  -n, --clients N        client processes (receivers), 1..%d (default 10)\n"
"  -S, --senders S        of which S also send (default 1)\n"
"  -k, --rooms K          spread clients over K rooms (default 1 = lobby)\n"
"  -m, --messages M       messages per sender (default 100)\n"
"  -r, --rate R           total messages/s over all senders; 0 = back to back\n"
"  -z, --size B           message text bytes, %d..%d (default 64)\n"
"  -B, --batch B          floor, back to back: messages per pipe write (64)\n"
"  -d, --duration S       stop sending after S seconds (default 10)\n"
"      --drain S          wait at most S seconds for deliveries after (10)\n"
"  -T, --timeout S        hard bound on the whole run (default 120)\n"
"      --settle S         pause between setup and traffic (default 0.2)\n"
"  -P, --server-pid PID   server pid, for its memory (with children)\n"
"      --pid-file PATH    read the server pid from PATH\n"
"      --scenario NAME    label in the report\n"
"  -j, --json FILE        append the JSON result line to FILE (default stdout)\n"
"      --nick-prefix STR  nickname prefix (default b: b0000, b0001, ...);\n"
"                         pid: p<PID>_ so that back-to-back runs never clash\n"
"      --connect-only     connect and register N clients, then quit\n"
"      --hold S           connect and register, return once all are in; the\n"
"                         clients stay until the server closes them or S s\n"
"      --stop             send SIGTERM to the server (--server-pid or\n"
"                         --pid-file) and wait until it is gone (-T bound)\n"
"  -q, --quiet            no progress lines\n"
"  -h, --help\n"
"Exit: 0 ok, 1 loss/duplicates/reordering/client error, 2 usage.\n",
	    LG_MAX_CLIENTS, 48, LG_MAX_SIZE);
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
	static const struct option lo[] = {
		{ "system", 1, NULL, 's' }, { "port", 1, NULL, 'p' },
		{ "clients", 1, NULL, 'n' }, { "senders", 1, NULL, 'S' },
		{ "rooms", 1, NULL, 'k' }, { "messages", 1, NULL, 'm' },
		{ "rate", 1, NULL, 'r' }, { "size", 1, NULL, 'z' },
		{ "batch", 1, NULL, 'B' }, { "duration", 1, NULL, 'd' },
		{ "drain", 1, NULL, 1 }, { "timeout", 1, NULL, 'T' },
		{ "settle", 1, NULL, 2 }, { "server-pid", 1, NULL, 'P' },
		{ "pid-file", 1, NULL, 3 }, { "scenario", 1, NULL, 4 },
		{ "json", 1, NULL, 'j' }, { "nick-prefix", 1, NULL, 5 },
		{ "connect-only", 0, NULL, 6 }, { "hold", 1, NULL, 7 },
		{ "stop", 0, NULL, 8 }, { "ports", 1, NULL, 9 }, { "quiet", 0, NULL, 'q' }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "s:p:n:S:k:m:r:z:B:d:T:P:j:qh",
	    lo, NULL)) != -1) {
		switch (c) {
		case 's':
			lg.sysname = optarg;
			if (strcmp(optarg, "forkchat") == 0 ||
			    strcmp(optarg, "forkchat-federated") == 0)
				lg.sys = SYS_FORKCHAT;
			else if (strcmp(optarg, "redis") == 0)
				lg.sys = SYS_REDIS;
			else if (strcmp(optarg, "floor") == 0)
				lg.sys = SYS_FLOOR;
			else
				return -1;
			break;
		case 'p': lg.port = atoi(optarg); break;
		case 'n': lg.n = atoi(optarg); break;
		case 'S': lg.senders = atoi(optarg); break;
		case 'k': lg.rooms = atoi(optarg); break;
		case 'm': lg.messages = atol(optarg); break;
		case 'r': lg.rate = atof(optarg); break;
		case 'z': lg.size = atoi(optarg); break;
		case 'B': lg.batch = atoi(optarg); break;
		case 'd': lg.duration = atof(optarg); break;
		case 1: lg.drain = atof(optarg); break;
		case 'T': lg.timeout = atof(optarg); break;
		case 2: lg.settle = atof(optarg); break;
		case 'P': lg.server_pid = atoi(optarg); break;
		case 3: lg.pid_file = optarg; break;
		case 4: lg.scenario = optarg; break;
		case 'j': lg.json = optarg; break;
		case 5: lg.nick_prefix = optarg; break;
		case 6: lg.connect_only = 1; break;
		case 7: lg.hold = atof(optarg); break;
		case 8: lg.stop = 1; break;
		case 9:
			if (parse_ports(optarg) < 0)
				return -1;
			break;
		case 'q': lg.quiet = 1; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || lg.n < 1 || lg.n > LG_MAX_CLIENTS ||
	    lg.port < 1 || lg.port > 65535 || lg.rooms < 1 ||
	    lg.rooms > LG_MAX_ROOMS || lg.rooms > lg.n || lg.senders < 0 ||
	    lg.senders > LG_MAX_SENDERS || lg.messages < 0 ||
	    lg.messages > 100000000 || lg.rate < 0 || lg.size < 48 ||
	    lg.size > LG_MAX_SIZE || lg.batch < 1 || lg.batch > 1000 ||
	    lg.duration <= 0 || lg.drain < 0 || lg.timeout <= 0 ||
	    strlen(lg.nick_prefix) > 11)
		return -1;
	if (lg.sys != SYS_FLOOR && lg.senders > lg.n)
		return -1;
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
			rl.rlim_max = rl.rlim_cur = want_fd;	/* root only */
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

static pid_t
server_pid(void)
{
	FILE *f;
	int pid = 0;

	if (lg.sys == SYS_FLOOR)
		return getpid();
	if (lg.server_pid > 0)
		return lg.server_pid;
	if (lg.pid_file != NULL && (f = fopen(lg.pid_file, "r")) != NULL) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

void
sample_server_mem(struct lg_result *r, int root)
{
	long rss, pss;

	(void)root;
	report_server_mem(server_pid(), &rss, &pss);
	if (rss > r->rss_kb) {
		r->rss_kb = rss;
		r->pss_kb = pss;
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
	pid_t pid = server_pid();
	int64_t deadline = now_ns() + (int64_t)(lg.timeout * 1e9);

	if (pid <= 1 || kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "forkchat-load: --stop: no server pid\n");
		return 1;
	}
	while (!proc_gone(pid)) {
		if (now_ns() > deadline) {
			fprintf(stderr, "forkchat-load: --stop: pid %d still "
			    "running after %g s\n", (int)pid, lg.timeout);
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
	struct sigaction sa;

	sz = sizeof(struct lg_shm) + (size_t)lg.n * sizeof(struct lg_slot);
	lg_shm = mmap(NULL, sz, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lg_shm == MAP_FAILED)
		return -1;
	if (pipe(fds) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alrm;	/* no SA_RESTART: bounded reads */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	lg_status_wr = fds[1];
	lg_status_rd = fds[0];
	return fds[0];
}

int
main(int argc, char **argv)
{
	static struct lg_result r;
	FILE *out = stdout;
	int rc, fd;

	if (parse_opts(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (lg.stop)
		return stop_server();
	if (strcmp(lg.nick_prefix, "pid") == 0) {	/* unique per run */
		static char pfx[16];

		snprintf(pfx, sizeof(pfx), "p%d_", (int)(getpid() % 1000000));
		lg.nick_prefix = pfx;
	}
	raise_limits();
	if ((fd = setup()) < 0) {
		perror("forkchat-load: setup");
		return 1;
	}
	r.rss_kb = r.pss_kb = -1;
	rc = lg.sys == SYS_FLOOR ? floor_run(&r) : client_run(&r);
	(void)fd;
	if (lg.connect_only || lg.hold)
		return rc ? 1 : 0;
	report_merge(&r);
	if (lg.json != NULL && (out = fopen(lg.json, "a")) == NULL) {
		perror(lg.json);
		out = stdout;
	}
	report_print(out, &r);
	if (out != stdout)
		fclose(out);
	if (!lg.quiet)
		report_summary(&r);
	if (rc || r.lost || r.dup || r.ooo || r.bad || r.errors) {
		fprintf(stderr, "forkchat-load: FAILED: %s\n", rc ?
		    "run did not complete" : "wrong delivery or client error");
		return 1;
	}
	return 0;
}
