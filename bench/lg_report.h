/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lg_report.h - the merged result of one run and how it is printed.
 */
#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdio.h>

#include "lg.h"

struct lg_result {
	uint64_t sent, expected, received, unique, lost, dup, ooo, bad;
	uint64_t late; /* floors: messages stamped with their due time */
	int64_t max_ns, first_send, last_recv, connect_ns;
	int64_t connect_cpu_ns;      /* server tree CPU over connect+register */
	long rss_kb, pss_kb, pte_kb; /* server tree, -1 unknown */
	int procs;                   /* processes in that tree */
	int64_t cpu_ns;              /* server tree CPU over the traffic */
	int64_t wakeups; /* its voluntary context switches, -1 unknown */
	int errors;
	int rep;     /* repetition number (--repeat) */
	int printed; /* results printed so far */
	int any_bad; /* a printed result was wrong */
	char first_err[160];
	uint64_t hist[LG_HIST_BINS];
};

int64_t report_server_cpu(void);
int64_t report_server_wakeups(void);
void report_server_mem(struct lg_result *);
void report_merge(struct lg_result *);
void report_rep_start(struct lg_result *);
void report_rep_end(struct lg_result *, int rep, int failed);
void report_output(struct lg_result *);
void report_print(FILE *, const struct lg_result *);
void report_summary(const struct lg_result *);

#endif
