/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * forkchatd.c - main: options, limits, listening socket, log, daemon.
 *
 * Everything that can fail at startup (a bad option, a busy port, an
 * unwritable log directory or pid file) fails here, on the terminal, with a
 * non-zero exit, before the server detaches.  With --user, a server started
 * as root gives up root here too, once it holds everything root was needed
 * for (the socket, the log and the pid file), and before it serves anyone.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys/daemon.h"
#include "sys/failpoint.h"
#include "sys/log.h"
#include "sys/net.h"
#include "server/opts.h"
#include "lib/plural.h"
#include "sys/safefile.h"
#include "server/server.h"
#include "server/session.h"
#include "server/spawner.h"

static void
die(const char *what, const char *arg)
{
	fprintf(stderr, "forkchatd: %s%s%s: %s\n", what, arg ? " " : "",
	    arg ? arg : "", strerror(errno));
	exit(1);
}

#define FD_SPARE 64 /* listen socket, pipes, log, stdio, headroom */

/*
 * One fd per child, plus a few: raise the soft (and, where allowed, the
 * hard) limit.  If the limit cannot be raised far enough, serve fewer
 * clients rather than fail accept() later: the rest get BYE SERVER_FULL.
 * Returns the number of clients that fit.
 */
static int
raise_nofile(int max_clients)
{
	rlim_t need = (rlim_t)max_clients + FD_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return max_clients;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* needs CAP_SYS_RESOURCE */
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return max_clients;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return max_clients;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur <= 2 * FD_SPARE)
		return max_clients; /* too low to plan with: accept() copes */
	fprintf(stderr,
	    "forkchatd: warning: RLIMIT_NOFILE is %llu, below the %llu that "
	    "-m %d needs: serving at most %llu %s\n",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)need,
	    max_clients, (unsigned long long)(rl.rlim_cur - FD_SPARE),
	    PLURAL(rl.rlim_cur - FD_SPARE, "client", "clients"));
	return (int)(rl.rlim_cur - FD_SPARE);
}

/*
 * The daemon runs in "/": make a relative path absolute first (symbolic
 * links in it are resolved, and every level checked, by safefile.c).
 */
static void
absolutize(char *path, size_t sz)
{
	char abs[PATH_MAX];

	if (path[0] == '\0' || path[0] == '/')
		return;
	if (getcwd(abs, sizeof(abs)) == NULL)
		die("getcwd", NULL);
	if (strlen(abs) + 1 + strlen(path) >= sizeof(abs) ||
	    strlen(abs) + 1 + strlen(path) >= sz) {
		errno = ENAMETOOLONG;
		die("path too long", path);
	}
	strncat(abs, "/", sizeof(abs) - strlen(abs) - 1);
	strncat(abs, path, sizeof(abs) - strlen(abs) - 1);
	memcpy(path, abs, strlen(abs) + 1);
}

/* --user: look the user up early, so a typo fails before anything else. */
static void
find_user(const char *name, struct passwd *pw, char *buf, size_t bufsz)
{
	struct passwd *res = NULL;
	int e;

	if ((e = getpwnam_r(name, pw, buf, bufsz, &res)) != 0 || res == NULL) {
		errno = e ? e : ENOENT;
		fprintf(stderr, "forkchatd: --user %s: %s\n", name,
		    e ? strerror(e) : "no such user");
		exit(1);
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid()) {
		fprintf(stderr,
		    "forkchatd: --user %s: only root can switch users "
		    "(running as uid %d)\n",
		    name, (int)geteuid());
		exit(1);
	}
}

/* Can we (the real uid) create and remove files next to path? */
static int
dir_writable(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return access(".", W_OK | X_OK) == 0;
	slash[slash == dir ? 1 : 0] = '\0';
	return access(dir, W_OK | X_OK) == 0;
}

/*
 * Become pw for good: supplementary groups, group, then user (in that
 * order: without root, setgid would fail).  Verify that root cannot be
 * regained.
 */
static void
drop_root(const struct passwd *pw)
{
	if (geteuid() != 0)
		return; /* already that user (find_user checked) */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0)
		die("initgroups for", pw->pw_name);
	if (setgid(pw->pw_gid) < 0)
		die("setgid for", pw->pw_name);
	if (setuid(pw->pw_uid) < 0)
		die("setuid to", pw->pw_name);
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || getegid() != pw->pw_gid ||
	    (pw->pw_uid != 0 && setuid(0) == 0)) {
		errno = EPERM;
		die("could not drop privileges to", pw->pw_name);
	}
}

/*
 * After the drop: say it, on the terminal too, when the layout will break
 * the midnight roll-over and the reopen after mv + SIGHUP (the service
 * user must be able to create files in the log directory), or keep the
 * pid file after shutdown.
 */
static void
warn_layout(const struct server_opts *o, const struct passwd *pw)
{
	char msg[PATH_MAX + 512];

	if (access(o->log_dir, W_OK | X_OK) < 0) {
		snprintf(msg, sizeof(msg),
		    "log directory %s is not writable by %s: the roll-over at "
		    "midnight and the reopen after mv + SIGHUP will fail (give "
		    "the directory to %s, its parent to root; see forkchatd(8))",
		    o->log_dir, pw->pw_name, pw->pw_name);
		log_warn("%s", msg);
		if (!o->foreground)
			fprintf(stderr, "forkchatd: warning: %s\n", msg);
	}
	if (o->pid_file[0] && !dir_writable(o->pid_file))
		log_warn("the directory of %s is not writable by %s: "
		         "the pid file will stay after shutdown",
		    o->pid_file, pw->pw_name);
}

/* safefile.c refused a path (a link, an unsafe owner or mode)? */
static int
refused(int e)
{
	return e == EPERM || e == ELOOP || e == EINVAL;
}

/*
 * Open the log (safefile.c: no link followed, every level checked) and
 * write a first line: a log that cannot be written (full disk) fails here,
 * on the terminal, not later in silence.
 */
static void
open_log(struct server_opts *o)
{
	int e;

	if (log_open(o->log_dir, o->foreground) < 0) {
		if (refused(errno))
			fprintf(stderr,
			    "forkchatd: %s: refusing to log there\n",
			    log_open_error());
		else
			die("cannot open log in", o->log_dir);
		exit(1);
	}
	snprintf(o->log_dir, sizeof(o->log_dir), "%s", log_dir_path());
	log_info("forkchatd %s starting", FORKCHAT_VERSION);
	if ((e = log_write_error()) != 0) {
		fprintf(stderr, "forkchatd: cannot write the log %s: %s\n",
		    log_path(), strerror(e));
		exit(1);
	}
}

/*
 * A SIGTERM or ^C that arrives while we bind, open the log or detach must
 * not kill us half set up (leaving a pid file, say): hold them pending
 * until the server loop takes them.  The daemon and the loop inherit the
 * mask; server_run() blocks the rest of its set itself.
 */
static void
defer_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask", NULL);
}

int
main(int argc, char **argv)
{
	struct server_opts o;
	struct passwd pw;
	char err[256], where[128], pwbuf[4096];
	int lfd, ready = -1, rc, keep[3];

	FAILPOINT_INIT();
	memset(&pw, 0, sizeof(pw)); /* filled by find_user() with --user */
	switch (opts_parse(&o, argc, argv, err, sizeof(err), stdout)) {
	case OPTS_EXIT_OK:
		return 0;
	case OPTS_USAGE:
		fprintf(stderr, "forkchatd: %s\ntry 'forkchatd --help'\n", err);
		return 2;
	case OPTS_RUN:
		break;
	}
	defer_stop_signals();
	if (o.user[0]) {
		find_user(o.user, &pw, pwbuf, sizeof(pwbuf));
		safefile_set_user(pw.pw_uid, pw.pw_gid);
	}
	if (spawner_find_image() < 0) /* the sessions' program */
		die("cannot find the session image", spawner_image());
	o.max_clients = raise_nofile(o.max_clients);
	snprintf(where, sizeof(where), "%s:%d", o.bind, o.port);
	if ((lfd = net_listen(o.bind, o.port)) < 0)
		die("cannot listen on", where);
	(void)session_listen_opts(lfd); /* inherited by every client's socket */
	absolutize(o.log_dir, sizeof(o.log_dir));
	absolutize(o.pid_file, sizeof(o.pid_file));
	open_log(&o);
	if (!o.foreground) {
		if ((ready = daemon_start()) < 0)
			die("cannot daemonize", NULL);
		if (chdir("/") < 0)
			die("chdir", "/");
		keep[0] = lfd;
		keep[1] = log_fileno();
		keep[2] = ready;
		daemon_close_fds(keep, 3); /* the launcher's fds */
	}
	if (o.pid_file[0] && daemon_write_pidfile(o.pid_file) < 0) {
		log_error(
		    "pid file %s: %s", o.pid_file, daemon_pidfile_error());
		if (!refused(errno))
			die("cannot write pid file", o.pid_file);
		fprintf(stderr,
		    "forkchatd: %s: refusing to write the pid file\n",
		    daemon_pidfile_error());
		exit(1);
	}
	if (o.user[0]) {
		drop_root(&pw);
		if (spawner_find_image() < 0) { /* can that user run it? */
			log_error("session image %s: %s", spawner_image(),
			    strerror(errno));
			die("cannot run the session image", spawner_image());
		}
	}
	log_info("listening on %s (pid %d, max-clients %d, log %s)", where,
	    (int)getpid(), o.max_clients, log_path());
	if (o.user[0]) {
		log_info("running as user %s (uid %d, gid %d)", pw.pw_name,
		    (int)getuid(), (int)getgid());
		warn_layout(&o, &pw);
	}
	daemon_ready(ready);
	rc = server_run(&o, lfd);
	if (o.pid_file[0])
		unlink(o.pid_file);
	log_close();
	return rc;
}
