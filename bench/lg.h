/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg.h - shared definitions of the forkchat load generator (forkchat-load).
 *
 * The generator is one parent plus one process per simulated client.  The
 * parent owns an anonymous MAP_SHARED region (struct lg_shm) that every
 * child writes its counters and latency histogram into; children report
 * phase changes over one status pipe (4-byte records, atomic writes) and
 * wait for phase starts by blocking in read() on barrier pipes whose write
 * end the parent closes.  No threads, no select/poll/epoll: every wait is a
 * blocking read(), sigwaitinfo() or clock_nanosleep(), bounded by an alarm.
 */
#ifndef LG_H
#define LG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LG_MAX_CLIENTS 2000
#define LG_MAX_SENDERS 256
#define LG_MAX_ROOMS   100
#define LG_MAX_SIZE    1900 /* message text bytes (server max-line 2000) */
#define LG_MAX_REPEAT  8    /* traffic phases on one set-up, all kinds */

/* Log-linear (HDR-style) histogram over nanoseconds: exact below 256 ns,
 * then 128 sub-buckets per power of two (a bin is at most 0.78 % of its
 * value wide; quantiles report the bin's middle, within 0.4 %), up to
 * 2^42 ns. */
#define LG_SUB_BITS  7
#define LG_SUB       (1 << LG_SUB_BITS)
#define LG_MAX_EXP   42
#define LG_HIST_BINS (2 * LG_SUB + (LG_MAX_EXP - LG_SUB_BITS) * LG_SUB)

/* What the clients speak (--proto / -s), and the two floors: the raw
 * pipe+SIGUSR2 floor (the parent is the server, its children receive) and
 * the pipe+SIGUSR2+TCP floor (a server process whose children send() to
 * TCP receivers, which are ordinary client processes), and the connect-storm
 * floor (build/forkchat-storm-floor: a child per accepted connection answers
 * the first line with one line; bench/storm_floor.c), and floor-tcp-send:
 * the TCP floor whose senders are real clients (lg_floor.c). */
enum lg_system {
	SYS_FORKCHAT,
	SYS_REDIS,
	SYS_IRC,
	SYS_FLOOR,
	SYS_FLOOR_TCP,
	SYS_FLOOR_STORM,   /* the connect-storm floor: --connect-only */
	SYS_FLOOR_TCP_SEND /* floor-tcp with real senders (lg_floor.c) */
};

/* The floors' senders are virtual (the floor's parent makes the messages):
 * every receiver of the room hears every message, N deliveries each. */
#define LG_VIRTUAL_SENDERS() (lg.sys == SYS_FLOOR || lg.sys == SYS_FLOOR_TCP)

/* status pipe record kinds */
enum lg_status {
	ST_REG = 1,  /* connected and registered / subscribed */
	ST_READY,    /* in its room, writer ready */
	ST_COMPLETE, /* received every expected message */
	ST_SENT,     /* writer finished sending */
	ST_FINAL,    /* counters final, exiting */
	ST_ERR       /* failed; see slot err */
};

struct lg_rec {
	uint16_t idx;
	uint8_t kind;
	uint8_t pad;
};

struct lg_sender {
	volatile uint64_t sent;
	volatile uint64_t late; /* floors: stamped when due, not when written */
	volatile int64_t first_ns;
	volatile int64_t last_ns;
};

struct lg_slot {
	volatile int state;         /* last enum lg_status */
	volatile uint64_t received; /* message lines, dups included */
	volatile uint64_t dup;
	volatile uint64_t ooo;
	volatile uint64_t bad;      /* unparsable / unknown sender */
	volatile uint64_t expected; /* filled at FINAL */
	volatile uint64_t unique;
	volatile int64_t first_ns;
	volatile int64_t last_ns;
	volatile int64_t max_ns;
	volatile uint64_t from[LG_MAX_SENDERS]; /* unique, per sender */
	char err[96];
	uint32_t hist[LG_HIST_BINS];
};

struct lg_shm {
	volatile int64_t t_start; /* traffic starts, set by parent */
	volatile int registered;  /* IRC: clients registered (lg_client.c) */
	volatile int connecting;  /* IRC: clients connecting right now */
	volatile int connecting_max;
	struct lg_sender snd[LG_MAX_SENDERS];
	struct lg_slot slot[];
};

struct lg_opts {
	enum lg_system sys;
	const char *sysname; /* the label in the report (-s, --label) */
	const char *scenario;
	int port;
	int ports[8]; /* --ports: client i uses ports[i % nports] */
	int nports;
	int n; /* clients (receivers) */
	int senders;
	int rooms;
	long messages;     /* per sender */
	double rate;       /* total messages/s, 0 = back to back */
	int size;          /* message text bytes */
	int batch;         /* floor: messages per pipe write (max) */
	int window;        /* max messages in flight per sender */
	int quickack;      /* TCP_QUICKACK after every read */
	int cork;          /* floor-tcp-send: forkchatd's signals and corking */
	int repeat;        /* paced (-r) traffic phases on one set-up */
	int max_repeat;    /* then back-to-back phases (--max-repeat) */
	long max_messages; /* per sender in each of those */
	double duration;   /* max sending time, s */
	double drain;      /* max wait after sending, s */
	double timeout;    /* hard bound on the whole run, s */
	double settle;     /* pause before traffic, s */
	double linger;     /* pause after the last result, s */
	pid_t server_pid;
	const char *pid_file;
	const char *json;
	const char *nick_prefix;
	int connect_only;
	int stop;
	double hold;
	int quiet;
};

/* the one instance, set up by main */
extern struct lg_opts lg;
extern struct lg_shm *lg_shm;
extern int lg_status_wr; /* children write here */
extern int lg_status_rd; /* the parent reads here */
extern volatile sig_atomic_t lg_got_usr1, lg_got_alrm;

/* lg_hist.c */
int hist_index(int64_t ns);
int64_t hist_value(int idx);
void hist_add(uint32_t *h, int64_t ns);
int64_t hist_quantile(const uint64_t *h, uint64_t total, double q);

/* lg_recv.c: per-receiver accounting, shared by all three systems */
struct lg_sink;
struct lg_sink *sink_new(int self, struct lg_slot *slot);
int sink_payload(struct lg_sink *, const char *p, size_t len, int64_t now);
int sink_complete(const struct lg_sink *);
void sink_final(struct lg_sink *);
int lg_format(char *buf, size_t cap, int sender, uint64_t seq, int64_t t);

/* lg_proc.c: process helpers shared by every module */
int64_t now_ns(void);
void lg_parent_signals(void);
int lg_room_of(int idx);
const char *lg_proto_name(void);
pid_t lg_server_pid(void);
void status_send(int idx, int kind);
void
slot_fail(int idx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lg_child_setup(const int *keep, int nkeep);
void arm_alarm(double seconds);
void sleep_until(int64_t t);
int wait_barrier(int fd);

/* lg_client.c / lg_floor.c: run one whole measurement, fill lg_shm */
struct lg_result;
int client_run(struct lg_result *);
int floor_run(struct lg_result *);
int floor_tcp_server(int lfd);      /* the TCP floor's server */
int floor_tcp_send_server(int lfd); /* ... with real senders */

/* the traffic barriers, one per repetition (lg_client.c, lg_floor.c) */
extern int lg_go[LG_MAX_REPEAT][2];

/* lg_proc.c: parent-side orchestration shared by both */
struct lg_wait {
	int count[ST_ERR + 1];
	int failed;
};
int parent_wait(int fd, struct lg_wait *w, int kind, int want, int64_t deadline,
    int progress);
int parent_drain(int fd, struct lg_wait *w, double drain);
uint64_t lg_expected(int receiver);
int lg_phases(void);
long lg_phase_msgs(int ph);
double lg_phase_rate(int ph);
long lg_phase_q0(int ph);
void lg_rep_reset(void);
void parent_finish(int fd, struct lg_wait *w, const pid_t *pids, int np);

#endif
