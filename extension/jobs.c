/*-------------------------------------------------------------------------
 *
 * jobs.c
 *		The SQL entry points of durable job queues that need to know who
 *		calls: node_worker.enqueue(), retry(), cancel(), the visibility
 *		rule of the node_worker.jobs view, and the check that only a
 *		queue's own worker consumes it.  The table and the rest of the
 *		SQL are in pg_node_worker--0.6--0.7.sql; the worker's side is
 *		src/runtime/jobs.ts.
 *
 * A queue is named after the worker that consumes it: "<worker>" or
 * "<worker>.<topic>" (the topic: 1 to 63 letters, digits, '_' or '-').
 * Whoever may talk to that worker (messaging.c's rule: superusers,
 * node_worker_admin, its callers) may enqueue into its queues, retry and
 * cancel their jobs and see them, and so may the worker's own processes;
 * only processes of that worker claim and complete them.  The rows are written by SECURITY DEFINER functions
 * called here through fmgr after the caller's right was checked, so no
 * role needs privileges on the table.
 *
 * Wake-up: enqueue() and retry() remember the queue's worker in the
 * transaction; when it commits, every running process of that worker is
 * flagged and its latch set (supervisor.c), so the worker looks at its
 * queues at once instead of polling.  A rolled back transaction wakes no
 * one; PREPARE TRANSACTION is refused while there is a wake-up to send
 * (the session that commits the prepared transaction would not send it).
 *
 * extension/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "jobs.h"
#include "messaging.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_enqueue);
PG_FUNCTION_INFO_V1(node_worker_job_retry);
PG_FUNCTION_INFO_V1(node_worker_job_cancel);
PG_FUNCTION_INFO_V1(node_worker_job_queue_visible);
PG_FUNCTION_INFO_V1(node_worker_jobs_consumer);

/* the longest topic after "<worker>." */
#define PGNW_JOBS_TOPIC_MAX 63

/* node_worker.jobs_keep_done_s: read by the SQL functions through current_setting() */
int			pgnw_jobs_keep_done_s = 300;

/* a worker whose processes are woken when the transaction commits */
typedef struct PgnwJobsWake
{
	char		name[PGNW_WORKER_NAME_MAX + 1];
	struct PgnwJobsWake *next;
} PgnwJobsWake;

static PgnwJobsWake *pgnw_jobs_wakes = NULL;
static bool pgnw_jobs_callback_registered = false;

/* what the view's visibility function remembers between rows */
typedef struct PgnwJobsVisibleCache
{
	char		worker[PGNW_WORKER_NAME_MAX + 1];
	Oid			role;
	bool		visible;
} PgnwJobsVisibleCache;


/*
 * Split queue into its worker's name (worker has PGNW_WORKER_NAME_MAX + 1
 * bytes); false when queue is not "<worker>" or "<worker>.<topic>".
 */
static bool
pgnw_jobs_queue_worker(const char *queue, char *worker)
{
	const char *dot = strchr(queue, '.');
	size_t		len = dot ? (size_t) (dot - queue) : strlen(queue);

	if (len == 0 || len > PGNW_WORKER_NAME_MAX)
		return false;
	memcpy(worker, queue, len);
	worker[len] = '\0';
	if (!pgnw_valid_worker_name(worker))
		return false;
	if (dot != NULL)
	{
		const char *topic = dot + 1;
		size_t		tlen = strlen(topic);

		if (tlen == 0 || tlen > PGNW_JOBS_TOPIC_MAX)
			return false;
		for (const char *p = topic; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
				return false;
	}
	return true;
}

/* The queue argument (argno), checked; worker gets its worker's name. */
static char *
pgnw_jobs_queue_arg(FunctionCallInfo fcinfo, int argno, char *worker)
{
	char	   *queue;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("queue must not be null")));
	queue = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!pgnw_jobs_queue_worker(queue, worker))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid queue name \"%s\"", queue),
				 errhint("A queue is named after the worker that consumes it: \"<worker>\" or \"<worker>.<topic>\", the topic made of 1 to %d letters, digits, \"_\" or \"-\".",
						 PGNW_JOBS_TOPIC_MAX)));
	return queue;
}

/* Is this process one of worker's own (which may always enqueue into its queues)? */
static bool
pgnw_jobs_am_worker(const char *worker)
{
	char		mine[PGNW_WORKER_NAME_MAX + 1];
	int			slot = pgnw_worker_slot();

	if (slot < 0)
		return false;
	pgnw_slot_name(slot, mine);
	return strcmp(mine, worker) == 0;
}

/*
 * ERROR 42501 unless the current role may use the queues of worker (or
 * this is one of that worker's processes).
 */
static void
pgnw_jobs_require_right(const char *queue, const char *worker)
{
	PgnwTarget	t;

	if (pgnw_jobs_am_worker(worker))
		return;
	if (!pgnw_messaging_may_talk(worker, GetUserId(), &t))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for queue \"%s\"", queue),
				 errhint("A queue belongs to the worker it is named after (\"%s\"): superusers, members of node_worker_admin and members of the roles in that worker's callers list may use it.",
						 worker)));
}

/* The function node_worker.<name>(argtypes) of the extension's SQL. */
static Oid
pgnw_jobs_function(const char *name, int nargs, const Oid *argtypes)
{
	List	   *qualified = list_make2(makeString(pstrdup("node_worker")), makeString(pstrdup(name)));

	return LookupFuncName(qualified, nargs, argtypes, false);
}

/*
 * Wake worker's processes when the transaction commits, forget it when it
 * rolls back; refuse PREPARE while there is one to wake.
 */
static void
pgnw_jobs_xact_callback(XactEvent event, void *arg)
{
	if (pgnw_jobs_wakes == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that has enqueued or retried jobs"),
					 errhint("The worker would not be woken when the prepared transaction commits. Enqueue in a transaction of its own.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (PgnwJobsWake *w = pgnw_jobs_wakes; w != NULL; w = w->next)
				pgnw_slots_signal_jobs(w->name);
			pgnw_jobs_wakes = NULL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pgnw_jobs_wakes = NULL;
			break;
		default:
			break;
	}
}

/* Remember to wake worker when this transaction commits (once per worker). */
static void
pgnw_jobs_wake_at_commit(const char *worker)
{
	PgnwJobsWake *w;

	for (w = pgnw_jobs_wakes; w != NULL; w = w->next)
		if (strcmp(w->name, worker) == 0)
			return;
	if (!pgnw_jobs_callback_registered)
	{
		RegisterXactCallback(pgnw_jobs_xact_callback, NULL);
		pgnw_jobs_callback_registered = true;
	}
	w = MemoryContextAllocZero(TopTransactionContext, sizeof(*w));
	strlcpy(w->name, worker, sizeof(w->name));
	w->next = pgnw_jobs_wakes;
	pgnw_jobs_wakes = w;
}

/*
 * node_worker.enqueue(queue, payload, run_at, job_key, max_attempts,
 * priority): the new (or replaced) job's id.  NULL run_at, max_attempts
 * and priority mean their defaults.
 */
Datum
node_worker_enqueue(PG_FUNCTION_ARGS)
{
	static const Oid argtypes[6] = {TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID};
	char		worker[PGNW_WORKER_NAME_MAX + 1];
	char	   *queue = pgnw_jobs_queue_arg(fcinfo, 0, worker);
	int32		max_attempts = PG_ARGISNULL(4) ? 25 : PG_GETARG_INT32(4);
	FmgrInfo   *insert = (FmgrInfo *) fcinfo->flinfo->fn_extra;
	LOCAL_FCINFO(call, 6);
	Datum		id;

	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, not %d", max_attempts)));
	if (!PG_ARGISNULL(3) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(3)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_key must not be empty"),
				 errhint("Pass NULL for a job without a key.")));
	pgnw_jobs_require_right(queue, worker);

	/* the insert function, looked up once per call site */
	if (insert == NULL)
	{
		insert = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		fmgr_info_cxt(pgnw_jobs_function("_job_insert", 6, argtypes), insert, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = insert;
	}
	InitFunctionCallInfoData(*call, insert, 6, InvalidOid, NULL, NULL);
	call->args[0].value = CStringGetTextDatum(queue);
	call->args[0].isnull = false;
	call->args[1].value = PG_GETARG_DATUM(1);
	call->args[1].isnull = PG_ARGISNULL(1);
	call->args[2].value = PG_ARGISNULL(2) ? TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()) : PG_GETARG_DATUM(2);
	call->args[2].isnull = false;
	call->args[3].value = PG_GETARG_DATUM(3);
	call->args[3].isnull = PG_ARGISNULL(3);
	call->args[4].value = Int32GetDatum(max_attempts);
	call->args[4].isnull = false;
	call->args[5].value = PG_ARGISNULL(5) ? Int32GetDatum(0) : PG_GETARG_DATUM(5);
	call->args[5].isnull = false;
	id = FunctionCallInvoke(call);
	if (call->isnull)
		elog(ERROR, "node_worker._job_insert returned null");

	pgnw_jobs_wake_at_commit(worker);
	PG_RETURN_DATUM(id);
}

/*
 * The queue of job id checked against the caller's right; NULL when there
 * is no such job (worker then holds its worker's name).
 */
static char *
pgnw_jobs_checked_queue_of(int64 id, char *worker)
{
	Datum		queue;
	bool		isnull;
	char	   *name;
	static const Oid argtypes[1] = {INT8OID};
	FmgrInfo	flinfo;
	LOCAL_FCINFO(call, 1);

	fmgr_info(pgnw_jobs_function("_job_queue_of", 1, argtypes), &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL, NULL);
	call->args[0].value = Int64GetDatum(id);
	call->args[0].isnull = false;
	queue = FunctionCallInvoke(call);
	isnull = call->isnull;
	if (isnull)
		return NULL;
	name = TextDatumGetCString(queue);
	if (!pgnw_jobs_queue_worker(name, worker))
		return NULL;
	pgnw_jobs_require_right(name, worker);
	return name;
}

/* Run node_worker.<fn>(id) (retry or cancel): its boolean result. */
static bool
pgnw_jobs_call_bool(const char *fn, int64 id)
{
	static const Oid argtypes[1] = {INT8OID};
	FmgrInfo	flinfo;
	Datum		result;
	LOCAL_FCINFO(call, 1);

	fmgr_info(pgnw_jobs_function(fn, 1, argtypes), &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL, NULL);
	call->args[0].value = Int64GetDatum(id);
	call->args[0].isnull = false;
	result = FunctionCallInvoke(call);
	return !call->isnull && DatumGetBool(result);
}

/* node_worker.retry(id): a failed or waiting job runs again now. */
Datum
node_worker_job_retry(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	char		worker[PGNW_WORKER_NAME_MAX + 1];
	bool		done;

	if (pgnw_jobs_checked_queue_of(id, worker) == NULL)
		PG_RETURN_BOOL(false);
	done = pgnw_jobs_call_bool("_job_retry", id);
	if (done)
		pgnw_jobs_wake_at_commit(worker);
	PG_RETURN_BOOL(done);
}

/* node_worker.cancel(id): removes a job that is not running. */
Datum
node_worker_job_cancel(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	char		worker[PGNW_WORKER_NAME_MAX + 1];

	if (pgnw_jobs_checked_queue_of(id, worker) == NULL)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(pgnw_jobs_call_bool("_job_cancel", id));
}

/*
 * node_worker.job_queue_visible(queue): may the current role use queue?
 * Called per row by the views: the answer for the last worker is kept.
 */
Datum
node_worker_job_queue_visible(PG_FUNCTION_ARGS)
{
	char	   *queue = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		worker[PGNW_WORKER_NAME_MAX + 1];
	PgnwJobsVisibleCache *cache = (PgnwJobsVisibleCache *) fcinfo->flinfo->fn_extra;
	PgnwTarget	t;

	if (!pgnw_jobs_queue_worker(queue, worker))
		PG_RETURN_BOOL(superuser());
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(*cache));
		fcinfo->flinfo->fn_extra = cache;
	}
	else if (cache->role == GetUserId() && strcmp(cache->worker, worker) == 0)
		PG_RETURN_BOOL(cache->visible);
	cache->visible = pgnw_messaging_may_talk(worker, GetUserId(), &t);
	cache->role = GetUserId();
	strlcpy(cache->worker, worker, sizeof(cache->worker));
	PG_RETURN_BOOL(cache->visible);
}

/*
 * node_worker._jobs_consumer(queue): ERROR unless this process is a
 * worker whose name the queue carries.  The consumer functions call it
 * first; what decides is the process, not the role.
 */
Datum
node_worker_jobs_consumer(PG_FUNCTION_ARGS)
{
	char		worker[PGNW_WORKER_NAME_MAX + 1];
	char	   *queue = pgnw_jobs_queue_arg(fcinfo, 0, worker);

	if (!pgnw_jobs_am_worker(worker))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only worker \"%s\" consumes queue \"%s\"", worker, queue),
				 errhint("A queue belongs to the worker it is named after; enqueue into it with node_worker.enqueue().")));
	PG_RETURN_VOID();
}
