/*-------------------------------------------------------------------------
 *
 * schedules.h
 *	  The setting schedules.c owns, for pg_node_worker.c to define.
 *
 * extension/schedules.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_SCHEDULES_H
#define PGNW_SCHEDULES_H

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

/* node_worker.schedule_runs_keep: how many runs of each schedule node_worker.schedule_runs keeps */
extern int	pgnw_schedule_runs_keep;

#pragma GCC visibility pop

#endif							/* PGNW_SCHEDULES_H */
