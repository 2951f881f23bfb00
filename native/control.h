/*-------------------------------------------------------------------------
 *
 * control.h
 *		The worker's side of the control surface, as plain C for the N-API
 *		layer (control.cc): launching workers, the worker's own state in
 *		node_worker.workers, recovery status.  Implemented in control_ops.c
 *		through the guard of guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_CONTROL_H
#define PGNW_CONTROL_H

#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

/*
 * start a dynamic worker from a deployed bundle; args is JSON text or NULL,
 * database NULL for the manifest's
 */
extern bool pgnw_control_launch(const char *name, const char *args, const char *database,
								int *pid, int *slot, PgnwError *err);

/* which instance of its worker this process is (0-based) */
extern int	pgnw_control_instance(void);

/* is process pid still running in slot? if not, *exit_code is its exit code */
extern bool pgnw_control_child_running(int slot, int pid, int *exit_code);

/* this worker's main() runs / failed with this error */
extern void pgnw_control_mark_running(void);
extern void pgnw_control_report_error(const char *sqlstate, const char *message);

extern bool pgnw_control_in_recovery(bool *in_recovery, PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_CONTROL_H */
