/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_proc.c - forkchat-load's process helpers: the shared state, clocks and
 * timers, the status pipe, child set-up after fork, and the parent's waits.
 *
 * Everything the client, floor and main modules share lives here, so the
 * call graph has no cycles: lg_main -> lg_client / lg_floor -> lg_proc,
 * lg_recv, lg_report; lg_proc calls nothing of the generator's own.
 * Every wait is a blocking read(), sigwaitinfo() or clock_nanosleep(),
 * bounded by an ITIMER_REAL alarm (SIGALRM sets a flag, nothing else).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "lg.h"

struct lg_opts lg = {
	.sys = SYS_FORKCHAT,
	.sysname = "forkchat",
	.scenario = "custom",
	.port = 5101,
	.n = 10,
	.senders = 1,
	.rooms = 1,
	.messages = 100,
	.repeat = 1,
	.rate = 100,
	.size = 64,
	.batch = 64,
	.duration = 10,
	.drain = 10,
	.timeout = 120,
	.settle = 0.2,
	.nick_prefix = "b",
};
struct lg_shm *lg_shm;
int lg_status_wr = -1;
int lg_status_rd = -1;
volatile sig_atomic_t lg_got_usr1, lg_got_alrm;
int lg_go[LG_MAX_REPEAT][2];

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

/* The parent: SIGALRM as a flag without SA_RESTART (bounded reads), and
 * no SIGPIPE (a closed socket is an error return). */
void
lg_parent_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int
lg_room_of(int idx)
{
	return idx % lg.rooms;
}

const char *
lg_proto_name(void)
{
	static const char *const name[] = { "forkchat", "redis", "irc",
		"floor-pipe", "floor-tcp", "floor-storm", "floor-tcp-send" };

	return name[lg.sys];
}

/* The process whose tree is "the server": the floors' own server process,
 * else -P, else --pid-file; 0 if unknown. */
pid_t
lg_server_pid(void)
{
	FILE *f;
	int pid = 0;

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
arm_alarm(double seconds)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	if (seconds > 0) {
		it.it_value.tv_sec = (time_t)seconds;
		it.it_value.tv_usec =
		    (suseconds_t)((seconds - (double)it.it_value.tv_sec) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
	}
	lg_got_alrm = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

void
sleep_until(int64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000),
		(long)(t % 1000000000) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	        EINTR &&
	    !lg_got_alrm)
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
lg_child_setup(const int *keep, int nkeep)
{
	int k[16], i, lo = 3;
	struct sigaction sa;

	if (!lg.hold) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
	}
	for (i = 0; i < nkeep && i < 16; i++)
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
	    (unsigned long long)lg_phase_q0(lg_phases()) *
	        (unsigned long long)lg.senders,
	    (unsigned long long)got);
}

/*
 * Reads status records until `want` records of `kind` have arrived, a
 * client failed, or `deadline` passed.  Blocking read() bounded by a timer;
 * with `progress` set it prints a line to stderr every second.
 */
int
parent_wait(
    int fd, struct lg_wait *w, int kind, int want, int64_t deadline, int prog)
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
		for (i = 0; r > 0 && i < (int)(r / (ssize_t)sizeof(buf[0]));
		     i++)
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

/* Deliveries receiver i should have: what its room's senders really sent
 * (not its own, but for the floors' virtual senders), every repetition. */
uint64_t
lg_expected(int i)
{
	uint64_t exp = 0;
	int s;

	for (s = 0; s < lg.senders; s++)
		if (lg_room_of(s) == lg_room_of(i) &&
		    (LG_VIRTUAL_SENDERS() || s != i))
			exp += lg_shm->snd[s].sent;
	return exp;
}

/*
 * Traffic phases: --repeat paced ones (-m messages per sender at -r), then
 * --max-repeat back-to-back ones (--max-messages each), all on one set-up.
 * Sequence numbers run on across phases: phase ph starts at
 * lg_phase_q0(ph), and lg_phase_q0(lg_phases()) is the total per sender.
 */
int
lg_phases(void)
{
	return lg.repeat + lg.max_repeat;
}

long
lg_phase_msgs(int ph)
{
	return ph < lg.repeat ? lg.messages : lg.max_messages;
}

double
lg_phase_rate(int ph)
{
	return ph < lg.repeat ? lg.rate : 0;
}

long
lg_phase_q0(int ph)
{
	if (ph <= lg.repeat)
		return (long)ph * lg.messages;
	return (long)lg.repeat * lg.messages +
	    (long)(ph - lg.repeat) * lg.max_messages;
}

/* Receiver i got everything its senders really sent. */
static int
delivered(int i)
{
	return lg_shm->slot[i].unique >= lg_expected(i);
}

/* Between repetitions (nothing in flight): the per-repetition fields start
 * afresh; the counters and histograms stay cumulative (the parent keeps
 * the previous totals and reports the difference). */
void
lg_rep_reset(void)
{
	int i;

	for (i = 0; i < lg.n; i++) {
		lg_shm->slot[i].max_ns = 0;
		lg_shm->slot[i].first_ns = 0;
	}
	for (i = 0; i < lg.senders; i++)
		lg_shm->snd[i].first_ns = 0;
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
		parent_wait(
		    fd, w, ST_COMPLETE, lg.n, t < deadline ? t : deadline, 1);
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
