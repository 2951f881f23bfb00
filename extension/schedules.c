/*-------------------------------------------------------------------------
 *
 * schedules.c
 *		Who a schedule run belongs to: node_worker.schedule_caller(), the
 *		name of the node_worker slot the calling process runs as, for the
 *		SECURITY DEFINER functions that write node_worker.schedule_runs
 *		(pg_node_worker--0.6--0.7.sql and --0.7--0.8.sql; the worker's side
 *		is src/runtime/schedule.ts).  Also owns the retention setting
 *		node_worker.schedule_runs_keep, which those functions read through
 *		current_setting().
 *
 * The name comes from the worker's slot in shared memory (supervisor.c),
 * set when the process claimed it, and not from application_name, which
 * the worker's own code may SET to anything: a worker can record runs
 * only under its own name.  Any other process (a client session, a
 * parallel worker of a worker's query) gets 42501.
 *
 * extension/schedules.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "pg_node_worker.h"
#include "schedules.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_schedule_caller);

/* node_worker.schedule_runs_keep: read by schedule_claim() through current_setting() */
int			pgnw_schedule_runs_keep = 1000;

/*
 * node_worker.schedule_caller(): the worker this process runs as; ERROR
 * 42501 outside a node_worker worker process.
 */
Datum
node_worker_schedule_caller(PG_FUNCTION_ARGS)
{
	char		name[PGNW_WORKER_NAME_MAX + 1];
	int			slot = pgnw_worker_slot();

	name[0] = '\0';
	if (slot >= 0)
		pgnw_slot_name(slot, name);
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a pg_node_worker worker may record its schedule runs"),
				 errhint("Schedule runs are written by the schedules of pg_node_worker workers (ctx.schedule()), each under its own name; members of node_worker_admin may read node_worker.schedule_runs.")));
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
