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
	int			pid;
	int			slot;
} PgnwLaunchArgs;

static void
pgnw_op_launch(void *arg)
{
	PgnwLaunchArgs *a = (PgnwLaunchArgs *) arg;

	a->pid = (int) pgnw_launch(a->name, a->args, &a->slot);
}

bool
pgnw_control_launch(const char *name, const char *args, int *pid, int *slot, PgnwError *err)
{
	PgnwLaunchArgs a = {name, args, 0, -1};

	if (!pgnw_guard(pgnw_op_launch, &a, err))
		return false;
	*pid = a.pid;
	*slot = a.slot;
	return true;
}

typedef struct PgnwChildArgs
{
	int			slot;
	int			pid;
	bool		running;
	int			exit_code;
} PgnwChildArgs;

static void
pgnw_op_child(void *arg)
{
	PgnwChildArgs *a = (PgnwChildArgs *) arg;

	a->running = pgnw_slot_pid(a->slot, &a->exit_code) == a->pid;
}

bool
pgnw_control_child_running(int slot, int pid, int *exit_code)
{
	PgnwChildArgs a = {slot, pid, false, 0};
	PgnwError	err = {0};

	if (!pgnw_guard(pgnw_op_child, &a, &err))
	{
		pgnw_error_clear(&err);
		return false;
	}
	*exit_code = a.exit_code;
	return a.running;
}

static void
pgnw_op_mark_running(void *arg)
{
	pgnw_worker_set_running();
}

void
pgnw_control_mark_running(void)
{
	PgnwError	err = {0};

	(void) pgnw_guard(pgnw_op_mark_running, NULL, &err);
	pgnw_error_clear(&err);
}

typedef struct PgnwReportArgs
{
	const char *sqlstate;
	const char *message;
} PgnwReportArgs;

static void
pgnw_op_report_error(void *arg)
{
	PgnwReportArgs *a = (PgnwReportArgs *) arg;

	pgnw_worker_set_error(a->sqlstate, a->message);
}

void
pgnw_control_report_error(const char *sqlstate, const char *message)
{
	PgnwReportArgs a = {sqlstate, message};
	PgnwError	err = {0};

	(void) pgnw_guard(pgnw_op_report_error, &a, &err);
	pgnw_error_clear(&err);
}

static void
pgnw_op_in_recovery(void *arg)
{
	*(bool *) arg = RecoveryInProgress();
}

bool
pgnw_control_in_recovery(bool *in_recovery, PgnwError *err)
{
	return pgnw_guard(pgnw_op_in_recovery, in_recovery, err);
}
