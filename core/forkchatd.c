/*
 * forkchatd.c - main: options, limits, listening socket, log, daemon.
 *
 * Everything that can fail at startup (a bad option, a busy port, an
 * unwritable log directory or pid file) fails here, on the terminal, with a
 * non-zero exit, before the server detaches.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "failpoint.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "server.h"

static void
die(const char *what, const char *arg)
{
	fprintf(stderr, "forkchatd: %s%s%s: %s\n", what, arg ? " " : "",
	    arg ? arg : "", strerror(errno));
	exit(1);
}

/* One fd per child, plus a few: raise the soft (and if root, hard) limit. */
static void
raise_nofile(int max_clients)
{
	rlim_t need = (rlim_t)max_clients + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 &&
	    getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		fprintf(stderr,
		    "forkchatd: warning: RLIMIT_NOFILE is %llu, "
		    "below the %llu that -m %d needs\n",
		    (unsigned long long)rl.rlim_max, (unsigned long long)need,
		    max_clients);
	}
}

/* The daemon runs in "/": make relative paths absolute first. */
static void
absolutize(char *path, size_t sz, int is_dir)
{
	char abs[PATH_MAX];

	if (path[0] == '\0' || path[0] == '/')
		return;
	if (is_dir) {
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			die("cannot create log directory", path);
		if (realpath(path, abs) == NULL)
			die("cannot resolve", path);
	} else {
		if (getcwd(abs, sizeof(abs)) == NULL)
			die("getcwd", NULL);
		if (strlen(abs) + 1 + strlen(path) >= sizeof(abs)) {
			errno = ENAMETOOLONG;
			die("path too long", path);
		}
		strncat(abs, "/", sizeof(abs) - strlen(abs) - 1);
		strncat(abs, path, sizeof(abs) - strlen(abs) - 1);
	}
	if (strlen(abs) >= sz) {
		errno = ENAMETOOLONG;
		die("path too long", path);
	}
	memcpy(path, abs, strlen(abs) + 1);
}

int
main(int argc, char **argv)
{
	struct server_opts o;
	char err[256], where[128];
	int lfd, ready = -1, rc;

	FAILPOINT_INIT();
	switch (opts_parse(&o, argc, argv, err, sizeof(err), stdout)) {
	case OPTS_EXIT_OK:
		return 0;
	case OPTS_USAGE:
		fprintf(stderr, "forkchatd: %s\ntry 'forkchatd --help'\n", err);
		return 2;
	case OPTS_RUN:
		break;
	}
	raise_nofile(o.max_clients);
	snprintf(where, sizeof(where), "%s:%d", o.bind, o.port);
	if ((lfd = net_listen(o.bind, o.port)) < 0)
		die("cannot listen on", where);
	absolutize(o.log_dir, sizeof(o.log_dir), 1);
	absolutize(o.pid_file, sizeof(o.pid_file), 0);
	if (log_open(o.log_dir, o.foreground) < 0)
		die("cannot open log in", o.log_dir);
	if (!o.foreground) {
		if ((ready = daemon_start()) < 0)
			die("cannot daemonize", NULL);
		if (chdir("/") < 0)
			die("chdir", "/");
	}
	if (o.pid_file[0] && daemon_write_pidfile(o.pid_file) < 0)
		die("cannot write pid file", o.pid_file);
	log_info("listening on %s (pid %d, max-clients %d, log %s)", where,
	    (int)getpid(), o.max_clients, log_path());
	daemon_ready(ready);
	rc = server_run(&o, lfd);
	if (o.pid_file[0])
		unlink(o.pid_file);
	log_close();
	return rc;
}
