/*-------------------------------------------------------------------------
 *
 * control_ops.c
 *		PostgreSQL side of the worker control calls (ctx.launch, the worker's
 *		state, ctx.isInRecovery), each through pgnw_guard().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "storage/lwlock.h"

#include "../extension/pg_node_worker.h"
#include "../extension/runtime.h"
#include "control.h"

typedef struct PgnwLaunchArgs
{
	const char *name;
	const char *args;
	const char *database;
	int			pid;
	int			slot;
} PgnwLaunchArgs;

/* Start a dynamic worker (arg: PgnwLaunchArgs). */
static void
control_op_launch(void *arg)
{
	PgnwLaunchArgs *a = (PgnwLaunchArgs *) arg;

	a->pid = (int) pgnw_launch(a->name, a->args, a->database, &a->slot);
}

/*
 * ctx.launch: start worker name with args (JSON text or NULL) in database
 * (NULL: its manifest's); its pid and slot.
 */
bool
pgnw_control_launch(const char *name, const char *args, const char *database, int *pid,
					int *slot, PgnwError *err)
{
	PgnwLaunchArgs a = {name, args, database, 0, -1};

	if (!pgnw_guard(control_op_launch, &a, err))
		return false;
	*pid = a.pid;
	*slot = a.slot;
	return true;
}

/* Which instance of its worker this process is; a plain read, no guard needed. */
int
pgnw_control_instance(void)
{
	return pgnw_worker_instance();
}

typedef struct PgnwChildArgs
{
	int			slot;
	int			pid;
	bool		running;
	int			exit_code;
} PgnwChildArgs;

/* Is the child still in its slot (arg: PgnwChildArgs)? */
static void
control_op_child(void *arg)
{
	PgnwChildArgs *a = (PgnwChildArgs *) arg;

	a->running = pgnw_slot_pid(a->slot, &a->exit_code) == a->pid;
}

/* Does process pid still run in slot? If not, *exit_code is its exit code. */
bool
pgnw_control_child_running(int slot, int pid, int *exit_code)
{
	PgnwChildArgs a = {slot, pid, false, 0};
	PgnwError	err = {0};

	if (!pgnw_guard(control_op_child, &a, &err))
	{
		pgnw_error_clear(&err);
		return false;
	}
	*exit_code = a.exit_code;
	return a.running;
}

/* Record in the worker's slot that main() runs. */
static void
control_op_mark_running(void *arg)
{
	pgnw_worker_set_running();
}

/* This worker's main() runs (node_worker.workers); errors are ignored. */
void
pgnw_control_mark_running(void)
{
	PgnwError	err = {0};

	(void) pgnw_guard(control_op_mark_running, NULL, &err);
	pgnw_error_clear(&err);
}

typedef struct PgnwReportArgs
{
	const char *sqlstate;
	const char *message;
} PgnwReportArgs;

/* Record the error in the worker's slot (arg: PgnwReportArgs). */
static void
control_op_report_error(void *arg)
{
	PgnwReportArgs *a = (PgnwReportArgs *) arg;

	pgnw_worker_set_error(a->sqlstate, a->message);
}

/* This worker failed with this error (node_worker.workers); errors are ignored. */
void
pgnw_control_report_error(const char *sqlstate, const char *message)
{
	PgnwReportArgs a = {sqlstate, message};
	PgnwError	err = {0};

	(void) pgnw_guard(control_op_report_error, &a, &err);
	pgnw_error_clear(&err);
}

/* Is the server in recovery (arg: the bool to set)? */
static void
control_op_in_recovery(void *arg)
{
	*(bool *) arg = RecoveryInProgress();
}

/* ctx.isInRecovery() */
bool
pgnw_control_in_recovery(bool *in_recovery, PgnwError *err)
{
	return pgnw_guard(control_op_in_recovery, in_recovery, err);
}
