/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spawner.h - the session spawner: a small process forked by the server
 * parent at startup, that execs the session image (forkchatd-session,
 * sessiond.c) and creates the session children on the parent's behalf
 * (docs/ARCHITECTURE.md, "Processes").  The two structs are the wire
 * format of the socketpair between the two programs.
 */
#ifndef FORKCHAT_SPAWNER_H
#define FORKCHAT_SPAWNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Its process name (comm), as tests and bench/memory.py know it. */
#define SPAWNER_NAME "forkchatd-spawn"
/* The session image, next to forkchatd or in ../lib/forkchat/. */
#define SPAWNER_IMAGE "forkchatd-session"

/* parent -> spawner, with the socket and the pipe's read end (SCM_RIGHTS) */
struct spawner_req {
	int32_t slot;
	int32_t inject; /* errno to answer instead of forking, or 0 */
};

/* spawner -> parent */
struct spawner_ans {
	int32_t pid; /* > 0, or -1 */
	int32_t err; /* errno of the failed clone */
};

struct spawner {
	pid_t pid;    /* the spawner, or 0 if there is none */
	int fd;       /* the parent's end of the socketpair, or -1 */
	pid_t parent; /* the server parent */
	int up_w;     /* write end of the shared pipe, for the sessions */
	size_t max_line;
	int starts; /* spawners started so far (1 + restarts) */
};

/*
 * Find the session image once, at startup, from this program's own path
 * (/proc/self/exe: never PATH or the environment): DIR/forkchatd-session,
 * else DIR/../lib/forkchat/forkchatd-session (make install, the Debian
 * package).  It must be a regular, executable file.  0, or -1 with errno
 * set and spawner_image() naming what was tried.
 */
int spawner_find_image(void);
/* The image's absolute path, or after a failure what was tried. */
const char *spawner_image(void);

/*
 * Fork the spawner, which execs the session image.  It keeps only up_w
 * and its end of a socketpair, and names itself "forkchatd-spawn".  0, or
 * -1 with errno set (sp->pid = 0).
 */
int spawner_start(struct spawner *sp, pid_t parent, int up_w, size_t max_line);

/*
 * Ask the spawner to create the session child for slot, serving sock with
 * down (the read end of its pipe): the child is the parent's child
 * (clone(CLONE_PARENT)), reaped by the parent's waitpid().  inject: an
 * errno that the spawner returns instead of creating the child (the
 * forkchatd/spawn/fork failpoint), or 0.  The spawner gets its own copies
 * of both descriptors; the caller still owns and closes them (once the
 * answer is read).  Starts a new spawner if the last one was reaped.  0,
 * or -1 with errno set (EPIPE if the spawner is gone: sp->pid and sp->fd
 * are kept for spawner_reaped()).  Several requests may be sent before
 * their answers are read.
 */
int
spawner_request(struct spawner *sp, int slot, int sock, int down, int inject);

/*
 * The answer to the oldest request not answered yet: the child's pid, or
 * -1 with errno set: the fork's errno, or EPIPE if the spawner is gone
 * (then every request still unanswered gets EPIPE too).  Blocks: 5 s if
 * the spawner does not work on it (stopped, idle), longer while it does
 * (runnable, in D, or using CPU), 60 s at most; a pending SIGTERM, SIGINT
 * or SIGQUIT ends the wait at the next 5 s mark.  A spawner given up on is
 * killed (reaped later).
 */
pid_t spawner_answer(struct spawner *sp);

/*
 * pid ended with status: if it was the spawner, log it, forget it and
 * return 1 (the next spawner_request() starts a new one); else 0.
 */
int spawner_reaped(struct spawner *sp, pid_t pid, int status);

/* Close the spawner's socket (it exits at once) and wait for it. */
void spawner_stop(struct spawner *sp);

#endif
