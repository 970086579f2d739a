/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_server.c - unit tests for the parent's decisions in server.c: the
 * records of the shared pipe are dispatched by type (a line to the chat, a
 * reject with its code, an EOF as a disconnect whose log line names the
 * cause: the peer left, an error, a plain EOF) and only for an active slot
 * in range; a record split across reads is handled once, when whole; the
 * inbound pipe is read within a budget (more left: 1) and flushed per
 * chunk; the records of a child that died are handled before its slot is
 * freed; a child that ended unasked is logged with its signal or status and
 * forgotten in the chat, one that was asked (closing) is not; a cut from
 * the fan-out is logged with its reason and backlog; shutdown says BYE to
 * the active slots only, forgets everyone; the wait is bounded by the
 * tick, a backlog, shutdown, federation, the register deadline and
 * corked output (in microseconds); the end of a turn writes everything when
 * idle and lets small output wait while busy; the signals of one wait are
 * folded into events.
 *
 * Seams (WRAP_test_server): the chat, the fan-out and the admission table
 * are stand-ins that record what they are asked (an event log keeps the
 * order); waitpid and sigtimedwait are scripted; log_msg is captured.
 * server.c is included, so its static functions are the ones under test.
 * The shared pipe is a real pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/server.c"

#define NSLOT 8
#define NEV   64

static struct {
	enum fanout_state state[NSLOT];
	pid_t pid[NSLOT];
	int nbacklog;
	long long next_timeout;
	long long next_lazy; /* fanout_next_lazy */
	long long cork_due;  /* fanout_cork_due */
	int busy;            /* fanout_busy */
	char ev[NEV][160];   /* what was asked, in order */
	int nev;
	char log[NEV][200]; /* log lines */
	int nlog;
	/* waitpid: scripted (pid, status), then 0 */
	pid_t wpid[NSLOT];
	int wst[NSLOT];
	int nw, wpos;
	/* sigtimedwait: scripted signals, then EAGAIN */
	int sig[NSLOT];
	int nsig, sigpos;
	long long first_wait_ms;
} rec;

static void ev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __wrap_log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ev(const char *fmt, ...)
{
	va_list ap;

	assert_true(rec.nev < NEV);
	va_start(ap, fmt);
	vsnprintf(rec.ev[rec.nev++], sizeof(rec.ev[0]), fmt, ap);
	va_end(ap);
}

void
__wrap_log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
{
	va_list ap;

	assert_true(rec.nlog < NEV);
	va_start(ap, fmt);
	vsnprintf(rec.log[rec.nlog++], sizeof(rec.log[0]), fmt, ap);
	va_end(ap);
}

void
__wrap_chat_line(struct chat *c, int slot, const char *line, size_t len)
{
	ev("line %d %.*s", slot, (int)len, line);
}

void
__wrap_chat_reject(struct chat *c, int slot, enum proto_err e)
{
	ev("reject %d %d", slot, (int)e);
}

void
__wrap_chat_disconnect(struct chat *c, int slot, const char *reason)
{
	ev("chat_disconnect %d %s", slot, reason);
}

const char *
__wrap_chat_nick(const struct chat *c, int slot)
{
	return "nick";
}

enum fanout_state
__wrap_fanout_state(const struct fanout *f, int slot)
{
	return rec.state[slot];
}

pid_t
__wrap_fanout_pid(const struct fanout *f, int slot)
{
	return rec.pid[slot];
}

void
__wrap_fanout_close(void *ctx, int slot)
{
	ev("fanout_close %d", slot);
	if (rec.state[slot] == FANOUT_ACTIVE)
		rec.state[slot] = FANOUT_CLOSING;
}

void
__wrap_fanout_send(void *ctx, int slot, const char *line, size_t len)
{
	ev("send %d %.*s", slot, (int)len, line);
}

void
__wrap_fanout_flush(struct fanout *f)
{
	ev("flush");
}

/* The end of a turn's flush: with the server's look at the input (whether
 * a child's SIGUSR1 is pending now). */
void
__wrap_fanout_flush_until(struct fanout *f, int (*input)(void))
{
	ev("flush_until %d", input != NULL ? input() : -1);
}

void
__wrap_fanout_flush_busy(struct fanout *f, long long now_us)
{
	ev("flush_busy");
}

long long
__wrap_fanout_cork_due(const struct fanout *f)
{
	return rec.cork_due;
}

int
__wrap_fanout_busy(const struct fanout *f, long long now_us)
{
	return rec.busy;
}

void
__wrap_fanout_release(struct fanout *f, int slot)
{
	ev("release %d", slot);
	rec.state[slot] = FANOUT_FREE;
}

void
__wrap_fanout_stopping(struct fanout *f)
{
	ev("stopping");
}

void
__wrap_fanout_hang_up_backlogged(struct fanout *f)
{
	ev("hang_up_backlogged");
}

int
__wrap_fanout_nbacklog(const struct fanout *f)
{
	return rec.nbacklog;
}

long long
__wrap_admit_next_timeout(const struct admit_tab *t)
{
	return rec.next_timeout;
}

void
__wrap_admit_released(struct admit_tab *t, int slot)
{
	ev("admit_released %d", slot);
}

int
__wrap_fed_reaped(struct fed *f, pid_t pid, int status)
{
	return 0;
}

pid_t
__wrap_waitpid(pid_t pid, int *st, int flags)
{
	if (rec.wpos < rec.nw) {
		*st = rec.wst[rec.wpos];
		return rec.wpid[rec.wpos++];
	}
	return 0; /* WNOHANG: nothing more */
}

int
__wrap_sigtimedwait(
    const sigset_t *set, siginfo_t *si, const struct timespec *ts)
{
	if (rec.sigpos == 0)
		rec.first_wait_ms = ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
	if (rec.sigpos < rec.nsig) {
		memset(si, 0, sizeof(*si));
		si->si_signo = rec.sig[rec.sigpos];
		return rec.sig[rec.sigpos++];
	}
	errno = EAGAIN;
	return -1;
}

static struct server_opts o;
static struct server s;
static int up_w = -1;

long long __wrap_fanout_next_lazy(const struct fanout *f);
long long
__wrap_fanout_next_lazy(const struct fanout *f)
{
	(void)f;
	return rec.next_lazy;
}

void __wrap_fanout_flush_lazy(struct fanout *f, long long now_ms);
void
__wrap_fanout_flush_lazy(struct fanout *f, long long now_ms)
{
	(void)f;
	(void)now_ms;
}

static int
t_setup(void **state)
{
	int p[2];

	memset(&rec, 0, sizeof(rec));
	memset(&s, 0, sizeof(s));
	memset(&o, 0, sizeof(o));
	o.max_clients = NSLOT;
	s.o = &o;
	s.freel = calloc(NSLOT, sizeof(int));
	s.dead = calloc(NSLOT, sizeof(*s.dead));
	assert_non_null(s.freel);
	assert_non_null(s.dead);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	s.up_r = p[0];
	up_w = p[1];
	s.up_size = (size_t)fcntl(p[0], F_GETPIPE_SZ);
	s.lfd = -1;
	return 0;
}

static int
t_teardown(void **state)
{
	free(s.freel);
	free(s.dead);
	buf_free(&s.in);
	close(s.up_r);
	close(up_w);
	return 0;
}

static void
put_record(enum ipc_type type, int slot, int code, const char *body)
{
	struct ipc_hdr h = { (uint32_t)slot, (uint16_t)type, (uint16_t)code,
		(uint32_t)strlen(body) };

	assert_int_equal(write(up_w, &h, IPC_HDR), (ssize_t)IPC_HDR);
	if (h.len > 0)
		assert_int_equal(write(up_w, body, h.len), (ssize_t)h.len);
}

static int
find(char (*list)[160], int n, const char *want)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], want) == 0)
			return i;
	return -1;
}

static void
assert_ev(int i, const char *want)
{
	assert_true(i < rec.nev);
	assert_string_equal(rec.ev[i], want);
}

/* ---- records from children ------------------------------------------ */

static void
records_are_dispatched_by_type_for_active_slots(void **state)
{
	rec.state[1] = rec.state[2] = FANOUT_ACTIVE;
	rec.state[3] = FANOUT_CLOSING; /* after /quit or a cut */
	put_record(IPC_LINE, 1, 0, "hello there");
	put_record(IPC_REJECT, 2, PERR_CONTROL_CHAR, "");
	put_record(IPC_LINE, 3, 0, "too late");
	put_record(IPC_LINE, NSLOT + 5, 0, "no such slot");
	put_record(IPC_EOF, 1, 0, "");
	put_record(IPC_LINE, 1, 0, "after EOF"); /* slot 1 is closing now */
	assert_int_equal(drain_inbound(&s, IN_BUDGET), 0);
	assert_int_equal(rec.nev, 5);
	assert_ev(0, "line 1 hello there");
	assert_ev(1, "reject 2 403");
	assert_ev(2, "chat_disconnect 1 disconnected");
	assert_ev(3, "fanout_close 1");
	assert_ev(4, "flush_busy"); /* one chunk read: one flush */
	assert_int_equal(rec.nlog, 1);
	assert_string_equal(
	    rec.log[0], "disconnect slot=1 nick=nick reason=eof");
}

static void
eof_log_line_names_the_cause(void **state)
{
	static const struct {
		int code;
		const char *log;
	} t[] = {
		{ ECONNRESET,
		    "disconnect slot=0 nick=nick reason=eof "
		    "(Connection reset by peer)" },
		{ EPIPE,
		    "disconnect slot=0 nick=nick reason=eof (Broken pipe)" },
		{ EIO,
		    "disconnect slot=0 nick=nick reason=error "
		    "(Input/output error)" },
	};
	struct ipc_hdr h = { 0, IPC_EOF, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rec.state[0] = FANOUT_ACTIVE;
		rec.nlog = rec.nev = 0;
		h.code = (uint16_t)t[i].code;
		handle_child_record(&s, &h, "");
		assert_int_equal(rec.nlog, 1);
		assert_string_equal(rec.log[0], t[i].log);
		assert_ev(0, "chat_disconnect 0 disconnected");
		assert_ev(1, "fanout_close 0");
	}
}

static void
record_split_across_reads_is_handled_once_whole(void **state)
{
	struct ipc_hdr h = { 4, IPC_LINE, 0, 10 };
	char all[IPC_HDR + 10];

	rec.state[4] = FANOUT_ACTIVE;
	memcpy(all, &h, IPC_HDR);
	memcpy(all + IPC_HDR, "0123456789", 10);
	/* half a header, then the rest of it and part of the body, then
	 * the end of the body */
	assert_int_equal(buf_append(&s.in, all, 5), 0);
	parse_records(&s);
	assert_int_equal(rec.nev, 0);
	assert_int_equal(buf_append(&s.in, all + 5, IPC_HDR + 4 - 5), 0);
	parse_records(&s);
	assert_int_equal(rec.nev, 0);
	assert_int_equal(buf_used(&s.in), IPC_HDR + 4);
	assert_int_equal(buf_append(&s.in, all + IPC_HDR + 4, 6), 0);
	parse_records(&s);
	assert_int_equal(rec.nev, 1);
	assert_ev(0, "line 4 0123456789");
	assert_int_equal(buf_used(&s.in), 0);
}

static void
corrupt_record_drops_what_cannot_be_framed(void **state)
{
	struct ipc_hdr h = { 0, IPC_LINE, 0, IPC_SHARED_MAX + 1 };

	rec.state[0] = FANOUT_ACTIVE;
	put_record(IPC_LINE, 0, 0, "fine");
	assert_int_equal(write(up_w, &h, IPC_HDR), (ssize_t)IPC_HDR);
	assert_int_equal(write(up_w, "junk", 4), 4);
	assert_int_equal(drain_inbound(&s, IN_BUDGET), 0);
	assert_ev(0, "line 0 fine");
	assert_int_equal(find(rec.ev, rec.nev, "line 0 junk"), -1);
	assert_int_equal(rec.nlog, 1);
	assert_string_equal(rec.log[0],
	    "corrupt record on the shared pipe (length 4085), 16 bytes "
	    "dropped");
	assert_int_equal(buf_used(&s.in), 0);
}

static void
inbound_is_read_within_its_budget(void **state)
{
	char body[1000];
	int i, lines = 0, flushes = 0;

	rec.state[0] = FANOUT_ACTIVE;
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	for (i = 0; i < 50; i++) /* ~50 kB in the pipe */
		put_record(IPC_LINE, 0, 0, body);
	/* a budget smaller than what is there: one chunk, "more left" */
	assert_int_equal(drain_inbound(&s, 1000), 1);
	assert_true(rec.nev >= 2);
	assert_string_equal(rec.ev[rec.nev - 1], "flush_busy");
	assert_true(rec.nev < 51); /* not all of it */
	assert_int_equal(drain_inbound(&s, IN_BUDGET), 0);
	for (i = 0; i < rec.nev; i++) {
		lines += strncmp(rec.ev[i], "line 0 xxx", 10) == 0;
		flushes += strcmp(rec.ev[i], "flush_busy") == 0;
	}
	assert_int_equal(lines, 50); /* every line, each once */
	assert_true(flushes >= 2);   /* one per chunk read */
	assert_int_equal(rec.nlog, 0);
}

static void
failed_read_of_children_is_logged_not_fatal(void **state)
{
	close(s.up_r);
	s.up_r = open("/dev/null", O_WRONLY | O_CLOEXEC); /* read: EBADF */
	assert_true(s.up_r >= 0);
	assert_int_equal(drain_inbound(&s, IN_BUDGET), 0);
	assert_int_equal(rec.nlog, 1);
	assert_string_equal(
	    rec.log[0], "read from children: Bad file descriptor");
}

/* ---- children ending: the cut decisions ----------------------------- */

static void
dead_childs_records_come_before_its_slot_is_freed(void **state)
{
	rec.state[2] = FANOUT_ACTIVE;
	rec.pid[2] = 4242;
	s.nchildren = 1;
	put_record(IPC_LINE, 2, 0, "last words");
	put_record(IPC_EOF, 2, 0, "");
	rec.wpid[0] = 4242;
	rec.wst[0] = 0; /* exit 0 */
	rec.nw = 1;
	reap(&s);
	assert_ev(0, "line 2 last words");
	assert_ev(1, "chat_disconnect 2 disconnected");
	assert_ev(2, "fanout_close 2");
	assert_ev(3, "flush_busy"); /* it writes a closing slot */
	/* closing by then (its EOF was read): asked, so no second forget */
	assert_ev(4, "admit_released 2");
	assert_ev(5, "release 2");
	assert_int_equal(rec.nev, 6);
	assert_int_equal(s.nchildren, 0);
	assert_int_equal(s.nfree, 1);
	assert_int_equal(s.freel[0], 2);
	assert_int_equal(rec.nlog, 1); /* the EOF line, no exit-status line */
}

static void
child_ending_unasked_is_logged_with_its_cause(void **state)
{
	rec.state[0] = rec.state[1] = FANOUT_ACTIVE;
	rec.state[5] = FANOUT_ABORTED; /* cut: it was told to go */
	rec.pid[0] = 100;
	rec.pid[1] = 101;
	rec.pid[5] = 105;
	s.nchildren = 3;
	rec.wpid[0] = 100;
	rec.wst[0] = SIGKILL; /* killed by signal 9 */
	rec.wpid[1] = 101;
	rec.wst[1] = 3 << 8; /* exit status 3 */
	rec.wpid[2] = 105;
	rec.wst[2] = 0;
	rec.wpid[3] = 999; /* not ours (the bridge is fed's): ignored */
	rec.wst[3] = 0;
	rec.nw = 4;
	reap(&s);
	assert_int_equal(rec.nlog, 2);
	assert_string_equal(rec.log[0],
	    "disconnect slot=0 nick=nick reason=killed-by-signal-9");
	assert_string_equal(
	    rec.log[1], "disconnect slot=1 nick=nick reason=exit-status-3");
	assert_true(
	    find(rec.ev, rec.nev, "chat_disconnect 0 disconnected") >= 0);
	assert_true(
	    find(rec.ev, rec.nev, "chat_disconnect 1 disconnected") >= 0);
	assert_int_equal(
	    find(rec.ev, rec.nev, "chat_disconnect 5 disconnected"), -1);
	assert_true(find(rec.ev, rec.nev, "release 5") >= 0);
	assert_int_equal(s.nchildren, 0);
	assert_int_equal(s.nfree, 3);
}

static void
cut_is_logged_with_reason_and_backlog(void **state)
{
	srv_cut(&s, 3, IPC_ABORT_SLOW_CONSUMER, 70000);
	srv_cut(&s, 4, IPC_ABORT_ERROR, 12);
	assert_int_equal(rec.nlog, 2);
	assert_string_equal(rec.log[0],
	    "disconnect slot=3 nick=nick reason=slow-consumer backlog=70000");
	assert_string_equal(
	    rec.log[1], "disconnect slot=4 nick=nick reason=error backlog=12");
	assert_ev(0, "chat_disconnect 3 disconnected");
	assert_ev(1, "chat_disconnect 4 disconnected");
}

static void
shutdown_says_bye_to_active_slots_and_forgets_everyone(void **state)
{
	int slot, nbye = 0, nforget = 0;

	rec.state[1] = rec.state[6] = FANOUT_ACTIVE;
	rec.state[2] = FANOUT_CLOSING;
	s.nchildren = 3;
	s.lfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(s.lfd >= 0);
	begin_shutdown(&s, SIGTERM);
	assert_int_equal(s.stopping, 1);
	assert_int_equal(s.lfd, -1);
	assert_ev(0, "stopping");
	assert_ev(1, "send 1 BYE SHUTDOWN server is shutting down\n");
	assert_ev(2, "fanout_close 1");
	assert_ev(3, "send 6 BYE SHUTDOWN server is shutting down\n");
	assert_ev(4, "fanout_close 6");
	for (slot = 0; slot < rec.nev; slot++) {
		nbye += strncmp(rec.ev[slot], "send ", 5) == 0;
		nforget += strncmp(rec.ev[slot], "chat_disconnect ", 16) == 0;
	}
	assert_int_equal(nbye, 2);        /* not the closing slot */
	assert_int_equal(nforget, NSLOT); /* every slot forgotten */
	assert_string_equal(rec.ev[rec.nev - 2], "flush");
	assert_string_equal(rec.ev[rec.nev - 1], "hang_up_backlogged");
	assert_string_equal(rec.log[0], "shutdown begin (SIGTERM), 3 children");
}

/* ---- the wait ------------------------------------------------------- */

static void
wait_is_bounded_by_tick_backlog_shutdown_fed_and_deadline(void **state)
{
	long long now = 10000, us;

	s.last_tick_ms = now - 300; /* the budget is in microseconds */
	assert_int_equal(wait_budget(&s, now, 0), 700000); /* the next tick */
	assert_int_equal(wait_budget(&s, now, 1), 0);      /* input left over */
	rec.nbacklog = 1;
	assert_int_equal(wait_budget(&s, now, 0), 20000); /* a merged SIGIO */
	rec.nbacklog = 0;
	s.stopping = 1;
	assert_int_equal(wait_budget(&s, now, 0), 50000);
	s.stopping = 0;
	s.fed = (struct fed *)&s; /* only compared with NULL */
	assert_int_equal(wait_budget(&s, now, 0), 200000);
	s.fed = NULL;
	rec.next_timeout = now + 123; /* a register deadline comes first */
	assert_int_equal(wait_budget(&s, now, 0), 123000);
	rec.next_timeout = now + 5000; /* later than the tick: the tick */
	assert_int_equal(wait_budget(&s, now, 0), 700000);
	rec.next_timeout = now - 5; /* overdue: do not wait */
	assert_int_equal(wait_budget(&s, now, 0), 0);
	rec.next_timeout = 0;
	rec.next_lazy = now + 150; /* presence lines that wait (fanout.h) */
	assert_int_equal(wait_budget(&s, now, 0), 150000);
	rec.next_lazy = 0;
	/* corked output (fanout.h): until its due time, in microseconds */
	rec.cork_due = clock_mono_us() + 10 * FANOUT_CORK_US;
	us = wait_budget(&s, now, 0);
	assert_true(us > 0 && us <= 10 * FANOUT_CORK_US);
	rec.cork_due = clock_mono_us() - 1; /* overdue */
	assert_int_equal(wait_budget(&s, now, 0), 0);
	rec.cork_due = 0;
	s.last_tick_ms = now - 1500; /* tick overdue */
	assert_int_equal(wait_budget(&s, now, 0), 0);
}

/*
 * The end of a turn writes everything (fanout_flush_until, which gives way
 * to input arriving meanwhile: it is handed the look at SIGUSR1) unless more
 * input waits (left over, or SIGUSR1 pending), or the turn handled
 * CORK_MIN_MESSAGES or more and the fan-out wrote less than FANOUT_CORK_US
 * ago: then small output may wait (fanout_flush_busy).  A paced message,
 * one a turn, is never held.
 */
static void
turn_flushes_all_when_idle_and_corks_when_busy(void **state)
{
	sigset_t usr1, old;

	flush_turn(&s, 0);
	assert_ev(0, "flush_until 0");
	flush_turn(&s, 1); /* input left over */
	assert_ev(1, "flush_busy");
	rec.busy = 1; /* wrote a moment ago... */
	s.messages_in += 1;
	flush_turn(&s, 0); /* ...but one message (paced): at once */
	assert_ev(2, "flush_until 0");
	s.messages_in += CORK_MIN_MESSAGES; /* behind: more a turn */
	flush_turn(&s, 0);
	assert_ev(3, "flush_busy");
	s.messages_in += CORK_MIN_MESSAGES;
	rec.busy = 0; /* nothing written for a while: at once */
	flush_turn(&s, 0);
	assert_ev(4, "flush_until 0");
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
	assert_int_equal(raise(SIGUSR1), 0); /* a child wrote: pending */
	flush_turn(&s, 0);
	assert_ev(5, "flush_busy");
	signal(SIGUSR1, SIG_IGN); /* discards the pending one */
	signal(SIGUSR1, SIG_DFL);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	flush_turn(&s, 0);
	assert_ev(6, "flush_until 0");
	assert_int_equal(rec.nev, 7);
}

static void
signals_of_one_wait_fold_into_events(void **state)
{
	sigset_t set;
	int stop = 0;
	unsigned e;

	sigemptyset(&set);
	rec.sig[0] = SIGUSR1;
	rec.sig[1] = SIGCHLD;
	rec.sig[2] = SIGUSR1;
	rec.sig[3] = SIGHUP;
	rec.nsig = 4;
	e = wait_events(&set, 1234000, &stop); /* microseconds */
	assert_int_equal(e, EV_INPUT | EV_CHILD | EV_HUP);
	assert_int_equal(stop, 0);
	assert_int_equal(rec.first_wait_ms, 1234);
	rec.sigpos = 0;
	rec.sig[0] = SIGIO;
	rec.sig[1] = SIGTERM;
	rec.nsig = 2;
	e = wait_events(&set, 0, &stop);
	assert_int_equal(e, EV_IO | EV_STOP);
	assert_int_equal(stop, SIGTERM);
	rec.sigpos = 0;
	rec.sig[0] = SIGQUIT;
	rec.nsig = 1;
	e = wait_events(&set, 0, &stop);
	assert_int_equal(e, EV_QUIT);
	assert_int_equal(stop, SIGQUIT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    records_are_dispatched_by_type_for_active_slots, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    turn_flushes_all_when_idle_and_corks_when_busy, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    eof_log_line_names_the_cause, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    record_split_across_reads_is_handled_once_whole, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    corrupt_record_drops_what_cannot_be_framed, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    inbound_is_read_within_its_budget, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    failed_read_of_children_is_logged_not_fatal, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    dead_childs_records_come_before_its_slot_is_freed, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    child_ending_unasked_is_logged_with_its_cause, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    cut_is_logged_with_reason_and_backlog, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    shutdown_says_bye_to_active_slots_and_forgets_everyone,
		    t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    wait_is_bounded_by_tick_backlog_shutdown_fed_and_deadline,
		    t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    signals_of_one_wait_fold_into_events, t_setup, t_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
