/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * names.c - the name helper: the process that checks names and makes
 * their keys (chat/name.c) for the server parent, so that the parent never
 * loads ICU.
 *
 * A key needs ICU's spoof checker.  Linked into the parent, ICU,
 * libstdc++ and their relocations were 3-4 MB of the parent's PSS from
 * startup on, touched or not (about 35 kB per client at N = 100; issue 17,
 * goal 3).  Now the parent forks this helper on the first name it has to
 * check, the helper loads ICU (dlopen, chat/name.c) and answers, and the
 * parent closes it once no name was checked for NAMES_IDLE_MS: a server
 * whose clients are all registered holds no ICU page at all.  The parent's
 * memo (name.c) answers the names it checked lately without a round trip.
 *
 * One request at a time on a unix socketpair (SOCK_SEQPACKET): the name
 * and its limits; the answer is name_prepare()'s result.  The parent
 * waits for it (bounded by SO_RCVTIMEO, 10 s: the helper does nothing else
 * and answers in microseconds), as it waits for the spawner's answers.  A
 * helper that died or was closed while idle is replaced by a new one and
 * the request is sent again, once; if that fails too the name "could not
 * be checked" (NAME_NOMEM) and the client may try again.  The helper is
 * the parent's child: reaped by its SIGCHLD (names_reaped()), dies with
 * it, exits when the parent closes its end.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chat/name.h"
#include "server/names.h"
#include "sys/clock.h"
#include "sys/log.h"
#include "sys/proc.h"

/* generous: the first answer loads ICU, slow under valgrind */
#define ANSWER_SECS 10
/* closed at shutdown and still there (stopped, hung): killed */
#define STOP_MS 5000
/* longer than any line (PROTO_MAX_LINE_LIMIT): a name from a line fits */
#define NAMES_MAX_IN 4096

struct names_req {
	uint32_t len, maxchars, nfcsz;
	char s[NAMES_MAX_IN];
};

struct names_ans {
	int32_t f;
	uint32_t badcp;
	char nfc[NAMES_MAX_IN];
	char key[NAME_KEYSZ];
};

static struct {
	pid_t pid;    /* the helper, or 0 */
	pid_t closed; /* the last one closed, until reaped */
	pid_t owner;  /* the process whose helper it is */
	int fd;
	long long last_ms; /* its last answer */
	unsigned long starts;
} h = { 0, 0, 0, -1, 0, 0 };

/* In the helper: answer until the parent closes its end. */
static __attribute__((noreturn)) void
serve(int fd)
{
	static struct names_req rq;
	static struct names_ans an;
	ssize_t n;
	size_t nfcsz;

	name_set_backend(NULL); /* compute here */
	for (;;) {
		while ((n = recv(fd, &rq, sizeof(rq), 0)) < 0 && errno == EINTR)
			;
		if (n <= 0)
			break;
		if ((size_t)n < offsetof(struct names_req, s) ||
		    rq.len != (size_t)n - offsetof(struct names_req, s))
			proc_exit(2);
		nfcsz = rq.nfcsz < sizeof(an.nfc) ? rq.nfcsz : sizeof(an.nfc);
		an.nfc[0] = an.key[0] = '\0';
		an.badcp = 0;
		an.f = (int32_t)name_compute(rq.s, rq.len, rq.maxchars, an.nfc,
		    nfcsz, an.key, &an.badcp);
		if (send(fd, &an, sizeof(an), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(an))
			break;
	}
	name_cleanup();
	proc_exit(0);
}

static int
start(void)
{
	pid_t parent = getpid();
	pid_t pid;
	int fd;

	if ((pid = proc_fork_paired(&fd, ANSWER_SECS)) < 0)
		return -1;
	if (pid == 0) {
		log_close();
		proc_child_setup(parent, &fd, 1);
		(void)prctl(PR_SET_NAME, NAMES_NAME);
		serve(fd);
	}
	h.pid = pid;
	h.fd = fd;
	h.owner = parent;
	h.starts++;
	log_info("name helper started pid=%d", (int)pid);
	return 0;
}

/* Close our end: the helper exits (reaped by names_reaped()). */
static void
close_helper(int killit)
{
	if (h.fd >= 0)
		close(h.fd);
	if (killit && h.pid > 0)
		kill(h.pid, SIGKILL);
	h.fd = -1;
	h.closed = h.pid;
	h.pid = 0;
}

/* One round trip: 0 with *an filled, or -1 (the helper is closed). */
static int
ask(const struct names_req *rq, size_t rqlen, struct names_ans *an)
{
	ssize_t n;

	while ((n = send(h.fd, rq, rqlen, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)rqlen) {
		close_helper(1);
		return -1;
	}
	while ((n = recv(h.fd, an, sizeof(*an), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*an)) {
		if (n < 0)
			log_error("name helper pid=%d: %s", (int)h.pid,
			    errno == EAGAIN ? "no answer" : strerror(errno));
		close_helper(1);
		return -1;
	}
	return 0;
}

enum name_fault
names_check(const char *s, size_t len, size_t maxchars, char *nfc, size_t nfcsz,
    char key[NAME_KEYSZ], uint32_t *badcp)
{
	static struct names_req rq;
	static struct names_ans an;
	int try;

	*badcp = 0;
	key[0] = '\0';
	if (nfcsz > 0)
		nfc[0] = '\0';
	if (len > sizeof(rq.s)) /* no line holds it */
		return NAME_TOO_LONG;
	if (h.owner != getpid()) { /* a forked child: not its helper */
		h.pid = h.closed = 0;
		h.fd = -1;
	}
	rq.len = (uint32_t)len;
	rq.maxchars = (uint32_t)maxchars;
	rq.nfcsz = (uint32_t)nfcsz;
	memcpy(rq.s, s, len);
	for (try = 0; try < 2; try++) {
		if (h.fd < 0 && start() < 0) {
			log_error(
			    "name helper: cannot start: %s", strerror(errno));
			return NAME_NOMEM;
		}
		if (ask(&rq, offsetof(struct names_req, s) + len, &an) == 0)
			break;
	}
	if (try == 2)
		return NAME_NOMEM;
	h.last_ms = clock_mono_ms();
	an.nfc[sizeof(an.nfc) - 1] = an.key[sizeof(an.key) - 1] = '\0';
	if (nfcsz > 0 && strlen(an.nfc) < nfcsz)
		memcpy(nfc, an.nfc, strlen(an.nfc) + 1);
	memcpy(key, an.key, strlen(an.key) + 1);
	*badcp = an.badcp;
	return (enum name_fault)an.f;
}

void
names_tick(long long now_ms)
{
	if (h.fd >= 0 && now_ms - h.last_ms >= NAMES_IDLE_MS)
		close_helper(0);
}

int
names_reaped(pid_t pid, int status)
{
	if (pid <= 0 || (pid != h.pid && pid != h.closed))
		return 0;
	if (pid == h.pid) { /* died while in use */
		log_error("name helper pid=%d ended (status 0x%x); a new one "
		          "starts with the next name",
		    (int)pid, (unsigned)status);
		close_helper(0);
	}
	h.closed = 0;
	return 1;
}

pid_t
names_pid(void)
{
	return h.pid;
}

void
names_stop(void)
{
	pid_t pid = h.pid;

	close_helper(0);
	if (pid > 0 && proc_reap_within(pid, STOP_MS) > 0)
		log_warn("name helper pid=%d did not end in %d ms: killed",
		    (int)pid, STOP_MS);
	h.closed = 0;
}
