/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The error boundary between JavaScript and PostgreSQL.
 *
 * pgnw_guard() runs one operation (a function and its argument struct)
 * inside PG_TRY on the main thread.  Nothing in an operation calls V8 or
 * N-API, so a longjmp out of PostgreSQL lands here and never crosses a
 * JavaScript frame.  An ERROR is copied into a PgnwError with malloc'd
 * strings; rolling back what the operation left is the caller's part (see
 * xact_ops.c), the way PL/pgSQL's exception blocks do it.
 *
 * Limits: one operation at a time (pgnw_in_postgres is a flag, not a
 * depth); FATAL and PANIC never come back here (they leave the process).
 * See guard.h for the rule on what may ereport and what may throw.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>

#include "../extension/runtime.h"
#include "guard.h"

/* a malloc'd copy of s, or NULL for NULL */
static char *
guard_strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Free err's strings and zero it. */
void
pgnw_error_clear(PgnwError *err)
{
	free(err->severity);
	free(err->message);
	free(err->detail);
	free(err->hint);
	free(err->context);
	free(err->schema);
	free(err->table);
	free(err->column);
	free(err->datatype);
	free(err->constraint);
	free(err->internal_query);
	free(err->file);
	free(err->routine);
	memset(err, 0, sizeof(*err));
}

/* Fill err with an ERROR of the bridge's own (code, message, optional hint). */
void
pgnw_error_set(PgnwError *err, const char *code, const char *message, const char *hint)
{
	pgnw_error_clear(err);
	strlcpy(err->code, code, sizeof(err->code));
	err->severity = strdup("ERROR");
	err->message = strdup(message);
	err->hint = guard_strdup_or_null(hint);
}

/* Copy the ERROR being handled (in PG_CATCH) into err and flush it. */
static void
guard_capture_error(PgnwError *err)
{
	ErrorData  *edata = CopyErrorData();

	FlushErrorState();
	pgnw_error_clear(err);
	strlcpy(err->code, unpack_sql_state(edata->sqlerrcode), sizeof(err->code));
	err->severity = strdup(edata->elevel >= FATAL ? "FATAL" :
						   edata->elevel >= ERROR ? "ERROR" : "WARNING");
	/* the cancel that stops a worker reads the same for SQL and for the buffer cache */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && pgnw_shutdown_requested)
		err->message = strdup("canceling statement because the worker is shutting down");
	else
		err->message = guard_strdup_or_null(edata->message);
	err->detail = guard_strdup_or_null(edata->detail);
	err->hint = guard_strdup_or_null(edata->hint);
	err->context = guard_strdup_or_null(edata->context);
	err->schema = guard_strdup_or_null(edata->schema_name);
	err->table = guard_strdup_or_null(edata->table_name);
	err->column = guard_strdup_or_null(edata->column_name);
	err->datatype = guard_strdup_or_null(edata->datatype_name);
	err->constraint = guard_strdup_or_null(edata->constraint_name);
	err->internal_query = guard_strdup_or_null(edata->internalquery);
	err->position = edata->cursorpos;
	err->internal_position = edata->internalpos;
	err->file = guard_strdup_or_null(edata->filename);
	err->line = edata->lineno;
	err->routine = guard_strdup_or_null(edata->funcname);
	FreeErrorData(edata);
}

/* SQL needs a database connection, which start: 'postmaster' workers lack. */
bool
pgnw_check_connected(PgnwError *err)
{
	if (pgnw_worker_info.connected)
		return true;
	pgnw_error_set(err, "08003",
				   "this worker has no database connection",
				   "Workers with start: 'postmaster' run before any database is available; use start: 'consistent' or 'recovery-finished' to run SQL.");
	return false;
}

/* Only the main thread may call PostgreSQL (worker_threads share the process). */
bool
pgnw_check_thread(PgnwError *err)
{
	if (pthread_equal(pthread_self(), pgnw_main_thread))
		return true;
	pgnw_error_set(err, "55000",
				   "PostgreSQL can only be called from the worker's main thread",
				   "Use SQL from the main JavaScript thread; worker_threads cannot run SQL.");
	return false;
}

/*
 * Run one operation inside PG_TRY.  On ERROR, the error is copied into *err
 * and false is returned; the caller decides what to roll back.
 */
bool
pgnw_guard(PgnwOperation op, void *arg, PgnwError *err)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile bool ok = true;

	if (!pgnw_check_thread(err))
		return false;

	pgnw_in_postgres = 1;
	PG_TRY();
	{
		op(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		guard_capture_error(err);
		ok = false;
	}
	PG_END_TRY();
	pgnw_in_postgres = 0;
	return ok;
}
