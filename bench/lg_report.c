/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_report.c - merge the receivers' shared-memory slots into one result,
 * measure the server's memory from /proc, and print JSON + a summary.
 *
 * Server memory is the sum over the server process and all its descendants
 * of Rss and Pss (from /proc/PID/smaps_rollup): Rss counts shared pages
 * (libc, the forked parent's image) once per process, Pss splits them, so
 * Pss is the honest total and Rss the number `ps` would show.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "lg.h"
#include "lg_report.h"

#define MAX_PROCS 32768

static int
proc_ppid(int pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 1, " %*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* `root` and every descendant into out[] (root first); 0 if root is gone.
 * Reads every /proc/PID/stat once; membership by a bitmap over pids. */
static int
proc_tree(int root, int *out, int max)
{
	static int pid[MAX_PROCS], ppid[MAX_PROCS];
	static unsigned char *in;
	static long inlen;
	struct dirent *de;
	DIR *d;
	int n = 0, i, k = 0, added;
	long v;

	if (root <= 0 || kill(root, 0) < 0 || (d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < MAX_PROCS) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid[n] = atoi(de->d_name);
		ppid[n] = proc_ppid(pid[n]);
		if (pid[n] >= inlen) {
			v = (long)pid[n] * 2 + 1024;
			free(in);
			if ((in = calloc((size_t)v, 1)) == NULL) {
				inlen = 0;
				closedir(d);
				return 0;
			}
			inlen = v;
		}
		n++;
	}
	closedir(d);
	memset(in, 0, (size_t)inlen);
	in[root] = 1;
	out[k++] = root;
	do { /* a fixed point: at most depth-of-tree passes */
		added = 0;
		for (i = 0; i < n && k < max; i++)
			if (!in[pid[i]] && ppid[i] > 0 && ppid[i] < inlen &&
			    in[ppid[i]]) {
				in[pid[i]] = 1;
				out[k++] = pid[i];
				added = 1;
			}
	} while (added);
	return k;
}

static void
proc_mem(int pid, long *rss, long *pss, long *pte)
{
	char path[64], line[256];
	long v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, "Rss: %ld", &v) == 1)
				*rss += v;
			else if (sscanf(line, "Pss: %ld", &v) == 1)
				*pss += v;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmPTE: %ld", &v) == 1)
				*pte += v;
		fclose(f);
	}
}

/* CPU time in ns the process has run: the sum over its threads of
 * /proc/PID/task/TID/schedstat (sum_exec_runtime, ns-exact); falls back
 * to utime+stime of /proc/PID/stat (clock ticks) without schedstats. */
static int64_t
proc_cpu_ns(int pid)
{
	char path[96], buf[512], *p;
	struct dirent *de;
	unsigned long long ns, ut, st;
	int64_t sum = 0;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			snprintf(path, sizeof(path),
			    "/proc/%d/task/%.20s/schedstat", pid, de->d_name);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			if (fscanf(f, "%llu", &ns) == 1)
				sum += (int64_t)ns;
			fclose(f);
		}
		closedir(d);
		if (sum > 0)
			return sum;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1,
	        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	        &st) == 2)
		sum = (int64_t)(ut + st) * (1000000000 / sysconf(_SC_CLK_TCK));
	fclose(f);
	return sum;
}

/* f summed over the server's process tree now (-1 if there is no server). */
static int64_t
tree_sum(int64_t (*f)(int))
{
	static int tree[MAX_PROCS];
	int n, i;
	int64_t sum = 0;

	if ((n = proc_tree(lg_server_pid(), tree, MAX_PROCS)) == 0)
		return -1;
	for (i = 0; i < n; i++)
		sum += f(tree[i]);
	return sum;
}

/* CPU ns of the server's process tree now (-1 if there is no server). */
int64_t
report_server_cpu(void)
{
	return tree_sum(proc_cpu_ns);
}

/* Voluntary context switches of pid (all its threads): each is a wait
 * that blocked, so, summed over a tree, the wake-ups it made. */
static int64_t
proc_wakeups(int pid)
{
	char path[64], line[256];
	long long v;
	int64_t sum = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
			sum += v;
	fclose(f);
	return sum;
}

/* Wake-ups (voluntary context switches) of the server's process tree
 * so far (-1 if there is no server). */
int64_t
report_server_wakeups(void)
{
	return tree_sum(proc_wakeups);
}

/* Rss, Pss and page tables (kB) of the server and every descendant, at
 * the end of the traffic; keeps the largest sample. */
void
report_server_mem(struct lg_result *r)
{
	static int tree[MAX_PROCS];
	long rss = 0, pss = 0, pte = 0;
	int n, i;

	if ((n = proc_tree(lg_server_pid(), tree, MAX_PROCS)) == 0)
		return;
	for (i = 0; i < n; i++)
		proc_mem(tree[i], &rss, &pss, &pte);
	if (rss > r->rss_kb) {
		r->rss_kb = rss;
		r->pss_kb = pss;
		r->pte_kb = pte;
		r->procs = n;
	}
}

/* The cumulative counters and histogram of every slot into r (the
 * server's memory and CPU fields are left alone). */
void
report_merge(struct lg_result *r)
{
	struct lg_slot *sl;
	int i, b;

	memset(r->hist, 0, sizeof(r->hist));
	r->sent = r->late = r->expected = r->received = r->unique = 0;
	r->dup = r->ooo = r->bad = 0;
	r->max_ns = r->first_send = r->last_recv = 0;
	r->errors = 0;
	for (i = 0; i < lg.senders; i++) {
		r->sent += lg_shm->snd[i].sent;
		r->late += lg_shm->snd[i].late;
		if (lg_shm->snd[i].first_ns &&
		    (r->first_send == 0 ||
		        lg_shm->snd[i].first_ns < r->first_send))
			r->first_send = lg_shm->snd[i].first_ns;
	}
	for (i = 0; i < lg.n; i++) {
		sl = &lg_shm->slot[i];
		r->expected += lg_expected(i);
		r->received += sl->received;
		r->unique += sl->unique;
		r->dup += sl->dup;
		r->ooo += sl->ooo;
		r->bad += sl->bad;
		if (sl->max_ns > r->max_ns)
			r->max_ns = sl->max_ns;
		if (sl->last_ns > r->last_recv)
			r->last_recv = sl->last_ns;
		if (sl->err[0] != '\0' && r->errors++ == 0)
			snprintf(r->first_err, sizeof(r->first_err),
			    "client %d: %s", i, sl->err);
		for (b = 0; b < LG_HIST_BINS; b++)
			r->hist[b] += sl->hist[b];
	}
	r->lost = r->expected > r->unique ? r->expected - r->unique : 0;
}

/* the totals when the current repetition started */
static struct lg_result prev;

/* Before repetition `rep`'s traffic (nothing in flight). */
void
report_rep_start(struct lg_result *r)
{
	lg_rep_reset();
	report_merge(&prev);
	r->rss_kb = r->pss_kb = r->pte_kb = -1;
	r->procs = 0;
	r->cpu_ns = -1;
	r->wakeups = -1;
}

/* After its deliveries: this repetition's result is the totals minus
 * those at its start; printed as one JSON line (and the summary). */
void
report_rep_end(struct lg_result *r, int rep, int failed)
{
	int b;

	report_merge(r);
	r->sent -= prev.sent;
	r->late -= prev.late;
	r->expected -= prev.expected;
	r->received -= prev.received;
	r->unique -= prev.unique;
	r->dup -= prev.dup;
	r->ooo -= prev.ooo;
	r->bad -= prev.bad;
	for (b = 0; b < LG_HIST_BINS; b++)
		r->hist[b] -= prev.hist[b];
	r->lost = r->expected > r->unique ? r->expected - r->unique : 0;
	r->rep = rep;
	report_output(r);
	if (failed)
		r->any_bad = 1;
}

/* The JSON line (stdout or appended to -j) and the summary; remembers
 * whether anything was wrong, for the exit status. */
void
report_output(struct lg_result *r)
{
	FILE *out = stdout;

	if (lg.json != NULL && (out = fopen(lg.json, "a")) == NULL) {
		perror(lg.json);
		out = stdout;
	}
	report_print(out, r);
	if (out != stdout)
		fclose(out);
	if (!lg.quiet)
		report_summary(r);
	if (r->lost || r->dup || r->ooo || r->bad || r->errors)
		r->any_bad = 1;
	r->printed++;
}

/* A bin's middle can lie above the exact maximum: clamp to it. */
static double
q_us(const struct lg_result *r, double q)
{
	int64_t v;

	if (q >= 1.0)
		return (double)r->max_ns / 1e3;
	v = hist_quantile(r->hist, r->unique, q);
	return (double)(v > r->max_ns ? r->max_ns : v) / 1e3;
}

static const double cdf_q[] = { 0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
	0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0 };

void
report_print(FILE *f, const struct lg_result *r)
{
	double span, dps = 0, rate = lg_phase_rate(r->rep);
	int max = r->rep >= lg.repeat; /* a --max-repeat phase */
	char sc[96];
	size_t i;

	/* a back-to-back phase after paced ones is labelled SCENARIO-max */
	snprintf(sc, sizeof(sc), "%s%s", lg.scenario,
	    max && lg.repeat > 0 && lg.rate > 0 ? "-max" : "");
	span = (double)(r->last_recv - r->first_send) / 1e9;
	if (r->unique > 0 && span > 0)
		dps = (double)r->unique / span;
	fprintf(f,
	    "{\"system\": \"%s\", \"scenario\": \"%s\", \"n\": %d, "
	    "\"senders\": %d, \"rooms\": %d, \"rate\": %g, \"size\": %d, "
	    "\"messages\": %llu, \"expected\": %llu, \"received\": %llu, "
	    "\"lost\": %llu, \"duplicated\": %llu, \"out_of_order\": %llu, "
	    "\"malformed\": %llu, \"errors\": %d, \"late_stamped\": %llu, "
	    "\"connecting_max\": %d, ",
	    lg.sysname, sc, lg.n, lg.senders, lg.rooms, rate, lg.size,
	    (unsigned long long)r->sent, (unsigned long long)r->expected,
	    (unsigned long long)r->received, (unsigned long long)r->lost,
	    (unsigned long long)r->dup, (unsigned long long)r->ooo,
	    (unsigned long long)r->bad, r->errors, (unsigned long long)r->late,
	    lg_shm->connecting_max);
	fprintf(f,
	    "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
	    "\"p999_us\": %.1f, \"max_us\": %.1f, \"deliveries_per_s\": %.0f, "
	    "\"send_span_s\": %.3f, \"connect_ms\": %.1f, "
	    "\"connect_cpu_ms\": %.3f, "
	    "\"server_rss_kb\": %ld, \"server_pss_kb\": %ld, ",
	    q_us(r, 0.5), q_us(r, 0.9), q_us(r, 0.99), q_us(r, 0.999),
	    q_us(r, 1.0), dps, span > 0 ? span : 0, (double)r->connect_ns / 1e6,
	    r->connect_cpu_ns >= 0 ? (double)r->connect_cpu_ns / 1e6 : -1.0,
	    r->rss_kb, r->pss_kb);
	fprintf(f, "\"rep\": %d, \"repeat\": %d, ",
	    max ? r->rep - lg.repeat : r->rep, max ? lg.max_repeat : lg.repeat);
	fprintf(f,
	    "\"receivers\": %d, \"protocol\": \"%s\", \"batch\": %d, "
	    "\"window\": %d, \"quickack\": %d, \"cork\": %d, "
	    "\"duration_s\": %g, \"server_pte_kb\": %ld, \"server_procs\": %d, "
	    "\"server_cpu_ms\": %.3f, \"cpu_us_per_delivery\": %.3f, "
	    "\"server_wakeups\": %lld, \"wakeups_per_delivery\": %.4f, "
	    "\"cdf\": [",
	    LG_VIRTUAL_SENDERS() ? lg.n : lg.n - lg.senders, lg_proto_name(),
	    lg.batch, rate > 0 ? 0 : lg.window, lg.quickack, lg.cork,
	    lg.duration, r->pte_kb, r->procs,
	    r->cpu_ns >= 0 ? (double)r->cpu_ns / 1e6 : -1.0,
	    r->cpu_ns >= 0 && r->unique > 0 ?
	        (double)r->cpu_ns / 1e3 / (double)r->unique :
	        -1.0,
	    (long long)r->wakeups,
	    r->wakeups >= 0 && r->unique > 0 ?
	        (double)r->wakeups / (double)r->unique :
	        -1.0);
	for (i = 0; i < sizeof(cdf_q) / sizeof(cdf_q[0]); i++)
		fprintf(f, "%s[%g, %.1f]", i ? ", " : "", cdf_q[i],
		    r->unique ? q_us(r, cdf_q[i]) : 0.0);
	fprintf(f, "], \"error\": \"");
	for (i = 0; r->first_err[i] != '\0'; i++)
		if (r->first_err[i] != '"' && r->first_err[i] != '\\' &&
		    (unsigned char)r->first_err[i] >= 0x20)
			fputc(r->first_err[i], f);
	fprintf(f, "\"}\n");
}

void
report_summary(const struct lg_result *r)
{
	double span = (double)(r->last_recv - r->first_send) / 1e9;
	int max = r->rep >= lg.repeat && lg.repeat > 0 && lg.rate > 0;

	fprintf(stderr,
	    "%s %s%s n=%d senders=%d rooms=%d rate=%g size=%d: "
	    "sent %llu, deliveries %llu/%llu (lost %llu, dup %llu, ooo %llu, "
	    "malformed %llu, client errors %d)\n"
	    "  latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f; "
	    "%.0f deliveries/s; connect+register %.1f ms; server rss %ld kB "
	    "pss %ld kB pte %ld kB; server CPU %.1f us/delivery\n",
	    lg.sysname, lg.scenario, max ? "-max" : "", lg.n, lg.senders,
	    lg.rooms, lg_phase_rate(r->rep), lg.size,
	    (unsigned long long)r->sent, (unsigned long long)r->unique,
	    (unsigned long long)r->expected, (unsigned long long)r->lost,
	    (unsigned long long)r->dup, (unsigned long long)r->ooo,
	    (unsigned long long)r->bad, r->errors, q_us(r, 0.5), q_us(r, 0.9),
	    q_us(r, 0.99), q_us(r, 0.999), q_us(r, 1.0),
	    span > 0 ? (double)r->unique / span : 0.0,
	    (double)r->connect_ns / 1e6, r->rss_kb, r->pss_kb, r->pte_kb,
	    r->cpu_ns >= 0 && r->unique > 0 ?
	        (double)r->cpu_ns / 1e3 / (double)r->unique :
	        -1.0);
	if (r->first_err[0] != '\0')
		fprintf(stderr, "  first error: %s\n", r->first_err);
}
