/*-------------------------------------------------------------------------
 *
 * jobs.h
 *	  The setting jobs.c owns, for pg_node_worker.c to define.
 *
 * extension/jobs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_JOBS_H
#define PGNW_JOBS_H

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* node_worker.jobs_keep_done_s: how long done jobs stay in node_worker.jobs (0: not at all) */
extern int	pgnw_jobs_keep_done_s;

#pragma GCC visibility pop

#endif							/* PGNW_JOBS_H */
