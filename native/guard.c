/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The error boundary between JavaScript and PostgreSQL: SPI,
 *		transactions, logging and settings, each run inside PG_TRY.
 *
 * pgnw_guard() runs one operation (a function and its argument struct)
 * inside PG_TRY on the main thread.  Nothing in an operation calls V8 or
 * N-API, so a longjmp out of PostgreSQL lands here and never crosses a
 * JavaScript frame.  An ERROR is copied into a PgnwError with malloc'd
 * strings, and the (sub)transaction it happened in is rolled back, the way
 * PL/pgSQL's exception blocks do it.
 *
 * Transactions: depth 0 means none is open and each statement runs in a
 * transaction of its own; depth 1 is a transaction; deeper levels are
 * subtransactions (savepoints).  A statement that fails inside a level
 * rolls that level back at once and marks it dead: later statements at that
 * level fail with 25P02 and its commit reports that it was rolled back,
 * which is what a client of the same transaction would see.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <pthread.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "common/shortest_dec.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "../extension/compat.h"
#include "../extension/runtime.h"
#include "guard.h"

#define PGNW_MAX_DEPTH 64

/* the farthest a JavaScript Date reaches from 1970, in ms */
#define PGNW_JS_DATE_MAX_MS INT64CONST(8640000000000000)


/* how to turn a column (or array element) into a JS value */
typedef struct PgnwTypeInfo
{
	Oid			typid;			/* the base type */
	PgnwKind	kind;
	FmgrInfo	outfunc;
	bool		need_outfunc;
	/* arrays */
	Oid			elemtype;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	struct PgnwTypeInfo *elem;
} PgnwTypeInfo;

/*
 * The names and types of a result's columns, with what converting them
 * needs (output functions).  A plan keeps the shape of its last result: as
 * long as the next result has the same column names and types (checked on
 * every execution: PostgreSQL replans after DDL and a SELECT * may then
 * return other columns) it is reused, and its id tells JS that the names and
 * its row maker are still right.
 */
typedef struct PgnwShape
{
	MemoryContext cxt;
	int			id;				/* 0: not cached */
	uint64		type_epoch;		/* pgnw_type_epoch when made */
	TupleDesc	desc;			/* a copy: names, types */
	PgnwTypeInfo **tis;
	const char **names;
	int		   *kinds;			/* PgnwColKind */
} PgnwShape;

/* one saved plan */
typedef struct PgnwPlan
{
	SPIPlanPtr	plan;
	int			nparams;
	Oid		   *types;
	Oid		   *elem_types;
	char	   *sql;			/* for pg_stat_activity */
	bool		single;			/* one statement: its rows can stream into the columns */
	PgnwShape  *shape;			/* of the last result, or NULL */
	int			holds;			/* calls held in a row for new parameter types */
} PgnwPlan;

/*
 * A call whose plan got new parameter types is held (not run) so JS can
 * serialise its values again by the new types, at most this many times in a
 * row; after that it runs with the values as they are (DDL in a loop).
 */
#define PGNW_MAX_HOLDS 3

static PgnwPlan *pgnw_plans = NULL;
static int	pgnw_nplans = 0;

/* transaction levels */
static int	pgnw_depth = 0;
static bool pgnw_dead[PGNW_MAX_DEPTH + 1];
static MemoryContext pgnw_level_context[PGNW_MAX_DEPTH + 1];

/* the statement in progress (between pgnw_execute and pgnw_finish) */
static bool pgnw_stmt_implicit_xact = false;
static bool pgnw_stmt_snapshot = false;
static bool pgnw_stmt_spi = false;

/* ---------------------------------------------------------------- errors */

static char *
pgnw_strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

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

void
pgnw_error_set(PgnwError *err, const char *code, const char *message, const char *hint)
{
	pgnw_error_clear(err);
	strlcpy(err->code, code, sizeof(err->code));
	err->severity = strdup("ERROR");
	err->message = strdup(message);
	err->hint = pgnw_strdup_or_null(hint);
}

static void
pgnw_capture_error(PgnwError *err)
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
		err->message = pgnw_strdup_or_null(edata->message);
	err->detail = pgnw_strdup_or_null(edata->detail);
	err->hint = pgnw_strdup_or_null(edata->hint);
	err->context = pgnw_strdup_or_null(edata->context);
	err->schema = pgnw_strdup_or_null(edata->schema_name);
	err->table = pgnw_strdup_or_null(edata->table_name);
	err->column = pgnw_strdup_or_null(edata->column_name);
	err->datatype = pgnw_strdup_or_null(edata->datatype_name);
	err->constraint = pgnw_strdup_or_null(edata->constraint_name);
	err->internal_query = pgnw_strdup_or_null(edata->internalquery);
	err->position = edata->cursorpos;
	err->internal_position = edata->internalpos;
	err->file = pgnw_strdup_or_null(edata->filename);
	err->line = edata->lineno;
	err->routine = pgnw_strdup_or_null(edata->funcname);
	FreeErrorData(edata);
}

/* SQL needs a database connection, which start: 'postmaster' workers lack */
static bool
pgnw_check_connected(PgnwError *err)
{
	if (pgnw_worker_info.connected)
		return true;
	pgnw_error_set(err, "08003",
				   "this worker has no database connection",
				   "Workers with start: 'postmaster' run before any database is available; use start: 'consistent' or 'recovery-finished' to run SQL.");
	return false;
}

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
		pgnw_capture_error(err);
		ok = false;
	}
	PG_END_TRY();
	pgnw_in_postgres = 0;
	return ok;
}

/* ----------------------------------------------------------- transactions */

int
pgnw_xact_depth(void)
{
	return pgnw_depth;
}

/* The memory context that was current before transaction level `level`. */
static MemoryContext
pgnw_context_below(int level)
{
	return level <= 1 ? TopMemoryContext : pgnw_level_context[level - 1];
}

/* Roll back the innermost level after an error in it, and mark it dead. */
static void
pgnw_op_abort_level(void *arg)
{
	int			level = *(int *) arg;

	if (level <= 1)
		AbortCurrentTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(pgnw_context_below(level));
}

/* Reset statement state and roll back whatever the failed statement left. */
static void
pgnw_after_failure(void)
{
	PgnwError	abort_err = {0};
	int			level = pgnw_depth == 0 ? 1 : pgnw_depth;
	bool		need_abort = pgnw_depth > 0 ? !pgnw_dead[pgnw_depth] : pgnw_stmt_implicit_xact;

	pgnw_stmt_spi = false;
	pgnw_stmt_snapshot = false;
	pgnw_stmt_implicit_xact = false;

	if (need_abort && !pgnw_guard(pgnw_op_abort_level, &level, &abort_err))
	{
		/* the transaction machinery itself is broken: leave, restart clean */
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not roll back after an error: %s",
						abort_err.message ? abort_err.message : "unknown error")));
	}
	pgnw_error_clear(&abort_err);
	if (pgnw_depth > 0)
		pgnw_dead[pgnw_depth] = true;
	pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION_ABORTED : STATE_IDLE, NULL);
}

static bool
pgnw_check_level_alive(PgnwError *err)
{
	if (pgnw_depth > 0 && pgnw_dead[pgnw_depth])
	{
		pgnw_error_set(err, "25P02",
					   "current transaction is aborted, commands ignored until end of transaction block",
					   "An earlier statement in this transaction failed; let the error leave the transaction callback to roll it back.");
		return false;
	}
	return true;
}

static void
pgnw_op_begin(void *arg)
{
	if (pgnw_depth == 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
	}
	else
		BeginInternalSubTransaction(NULL);
}

bool
pgnw_begin(PgnwError *err)
{
	MemoryContext before = CurrentMemoryContext;

	if (!pgnw_check_connected(err))
		return false;
	if (pgnw_depth >= PGNW_MAX_DEPTH)
	{
		pgnw_error_set(err, "54000", "too many nested transactions", NULL);
		return false;
	}
	if (!pgnw_check_level_alive(err))
		return false;
	if (!pgnw_guard(pgnw_op_begin, NULL, err))
	{
		if (pgnw_depth > 0)
			pgnw_after_failure();
		return false;
	}
	pgnw_level_context[pgnw_depth] = before;
	pgnw_depth++;
	pgnw_dead[pgnw_depth] = false;
	pgstat_report_activity(STATE_IDLEINTRANSACTION, NULL);
	return true;
}

static void
pgnw_op_commit(void *arg)
{
	int			level = *(int *) arg;

	if (level == 1)
		CommitTransactionCommand();
	else
		ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(pgnw_context_below(level));
}

bool
pgnw_commit(PgnwError *err)
{
	int			level = pgnw_depth;

	if (level == 0)
	{
		pgnw_error_set(err, "25000", "there is no transaction in progress", NULL);
		return false;
	}
	if (pgnw_dead[level])
	{
		/* already rolled back when its statement failed */
		pgnw_depth--;
		pgnw_error_set(err, "25P02",
					   level == 1 ? "the transaction was rolled back because a statement in it failed" :
					   "the savepoint was rolled back because a statement in it failed",
					   "The error was caught inside the transaction callback; nothing of it was committed.");
		pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
		return false;
	}
	if (!pgnw_guard(pgnw_op_commit, &level, err))
	{
		/* a deferred constraint, serialization failure, ...: roll back */
		pgnw_after_failure();
		pgnw_depth--;
		pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
		return false;
	}
	pgnw_depth--;
	pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
	return true;
}

bool
pgnw_rollback(PgnwError *err)
{
	int			level = pgnw_depth;
	bool		ok = true;

	if (level == 0)
	{
		pgnw_error_set(err, "25000", "there is no transaction in progress", NULL);
		return false;
	}
	if (!pgnw_dead[level])
		ok = pgnw_guard(pgnw_op_abort_level, &level, err);
	if (!ok)
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not roll back a transaction: %s",
						err->message ? err->message : "unknown error")));
	pgnw_depth--;
	pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
	return true;
}

/* ------------------------------------------------------------ statements */

/* the parameter types of sql, inferred the way the extended protocol does */
static void
pgnw_infer_param_types(const char *sql, Oid **types, int *ntypes)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	ListCell   *lc;

	foreach(lc, raw)
		(void) pgnw_parse_analyze_varparams(lfirst_node(RawStmt, lc), sql, types, ntypes);
	for (int i = 0; i < *ntypes; i++)
		if ((*types)[i] == InvalidOid || (*types)[i] == UNKNOWNOID)
			(*types)[i] = TEXTOID;
}

/*
 * A kept plan fixed its parameter types when it was prepared.  After DDL
 * (ALTER COLUMN ... TYPE) the server may infer others, and the plan cache
 * would still coerce each value through the old type: an int8 through real
 * loses digits.  So when the plan was invalidated, infer the types again
 * and, if they changed, prepare the statement afresh under the same id
 * (values are converted by their JS kind and the new type).  Called inside
 * the statement's transaction, with SPI connected.
 */
static bool
pgnw_refresh_plan(PgnwPlan *plan)
{
	Oid		   *types = NULL;
	int			ntypes = 0;
	SPIPlanPtr	fresh;

	AcceptInvalidationMessages();
	if (SPI_plan_is_valid(plan->plan))
		return false;
	pgnw_infer_param_types(plan->sql, &types, &ntypes);
	if (ntypes != plan->nparams ||
		memcmp(types, plan->types, sizeof(Oid) * ntypes) == 0)
		return false;
	fresh = SPI_prepare(plan->sql, ntypes, types);
	if (fresh == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(fresh) != 0)
		elog(ERROR, "SPI_keepplan failed");
	SPI_freeplan(plan->plan);
	plan->plan = fresh;
	plan->single = list_length(SPI_plan_get_plan_sources(fresh)) == 1;
	for (int i = 0; i < ntypes; i++)
	{
		plan->types[i] = types[i];
		plan->elem_types[i] = get_element_type(getBaseType(types[i]));
	}
	return true;
}

/*
 * Bumped whenever a pg_type row changes (syscache invalidation): cached
 * shapes hold output functions, so they are rebuilt after any type change.
 */
static uint64 pgnw_type_epoch = 1;
static bool pgnw_type_callback_registered = false;
static int	pgnw_next_shape_id = 0;

static void
pgnw_type_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	pgnw_type_epoch++;
}

typedef struct PgnwPrepareArgs
{
	const char *sql;
	PgnwPlan   *out;
} PgnwPrepareArgs;

static void
pgnw_op_prepare(void *arg)
{
	PgnwPrepareArgs *a = (PgnwPrepareArgs *) arg;
	Oid		   *types = NULL;
	int			ntypes = 0;
	SPIPlanPtr	plan;

	if (!pgnw_type_callback_registered)
	{
		CacheRegisterSyscacheCallback(TYPEOID, pgnw_type_changed, (Datum) 0);
		pgnw_type_callback_registered = true;
	}

	pgnw_infer_param_types(a->sql, &types, &ntypes);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(a->sql, ntypes, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	a->out->single = list_length(SPI_plan_get_plan_sources(plan)) == 1;
	SPI_finish();

	a->out->plan = plan;
	a->out->nparams = ntypes;
	a->out->sql = MemoryContextStrdup(TopMemoryContext, a->sql);
	a->out->types = (Oid *) MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * (ntypes + 1));
	a->out->elem_types = (Oid *) MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * (ntypes + 1));
	for (int i = 0; i < ntypes; i++)
	{
		a->out->types[i] = types[i];
		a->out->elem_types[i] = get_element_type(getBaseType(types[i]));
	}
}

static void
pgnw_op_start_statement(void *arg)
{
	if (pgnw_depth == 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgnw_stmt_implicit_xact = true;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	pgnw_stmt_snapshot = true;
}

static void
pgnw_op_end_statement(void *arg)
{
	if (pgnw_stmt_spi)
	{
		pgnw_stmt_spi = false;
		SPI_finish();
	}
	if (pgnw_stmt_snapshot)
	{
		pgnw_stmt_snapshot = false;
		PopActiveSnapshot();
	}
	if (pgnw_stmt_implicit_xact)
	{
		pgnw_stmt_implicit_xact = false;
		CommitTransactionCommand();
	}
}

bool
pgnw_prepare(const char *sql, PgnwPlanInfo *info, PgnwError *err)
{
	PgnwPrepareArgs a;
	PgnwPlan	plan = {0};
	int			id;

	if (!pgnw_check_connected(err) || !pgnw_check_level_alive(err))
		return false;
	a.sql = sql;
	a.out = &plan;
	if (!pgnw_guard(pgnw_op_start_statement, NULL, err) ||
		!pgnw_guard(pgnw_op_prepare, &a, err) ||
		!pgnw_guard(pgnw_op_end_statement, NULL, err))
	{
		pgnw_after_failure();
		return false;
	}

	for (id = 0; id < pgnw_nplans; id++)
		if (pgnw_plans[id].plan == NULL)
			break;
	if (id == pgnw_nplans)
	{
		int			n = pgnw_nplans == 0 ? 64 : pgnw_nplans * 2;

		PgnwPlan   *grown = (PgnwPlan *) realloc(pgnw_plans, sizeof(PgnwPlan) * n);

		if (grown == NULL)
		{
			/* the kept plan is lost until the worker restarts; no crash */
			pgnw_error_set(err, "53200", "out of memory", "The table of prepared statements could not grow.");
			return false;
		}
		pgnw_plans = grown;
		memset(pgnw_plans + pgnw_nplans, 0, sizeof(PgnwPlan) * (n - pgnw_nplans));
		pgnw_nplans = n;
	}
	pgnw_plans[id] = plan;
	info->id = id;
	info->nparams = plan.nparams;
	info->param_types = plan.types;
	info->param_elem_types = plan.elem_types;
	return true;
}

bool
pgnw_plan_info(int plan_id, PgnwPlanInfo *info)
{
	if (plan_id < 0 || plan_id >= pgnw_nplans || pgnw_plans[plan_id].plan == NULL)
		return false;
	info->id = plan_id;
	info->nparams = pgnw_plans[plan_id].nparams;
	info->param_types = pgnw_plans[plan_id].types;
	info->param_elem_types = pgnw_plans[plan_id].elem_types;
	return true;
}

static void
pgnw_op_free_plan(void *arg)
{
	PgnwPlan   *p = (PgnwPlan *) arg;

	SPI_freeplan(p->plan);
	pfree(p->types);
	pfree(p->elem_types);
	pfree(p->sql);
	if (p->shape)
		MemoryContextDelete(p->shape->cxt);
}

void
pgnw_free_plan(int id)
{
	PgnwError	err = {0};

	if (id < 0 || id >= pgnw_nplans || pgnw_plans[id].plan == NULL)
		return;
	(void) pgnw_guard(pgnw_op_free_plan, &pgnw_plans[id], &err);
	pgnw_error_clear(&err);
	memset(&pgnw_plans[id], 0, sizeof(PgnwPlan));
}

/* -------------------------------------------------- values to JavaScript */

/* in CurrentMemoryContext (output functions' fn_mcxt too) */
static PgnwTypeInfo *
pgnw_type_info(Oid typid)
{
	PgnwTypeInfo *ti = (PgnwTypeInfo *) palloc0(sizeof(PgnwTypeInfo));
	Oid			base = getBaseType(typid);
	Oid			elem;

	switch (base)
	{
		case BOOLOID:
			ti->kind = PGNW_BOOL;
			break;
		case INT2OID:
		case INT4OID:
		case FLOAT4OID:
		case FLOAT8OID:
			ti->kind = PGNW_NUMBER;
			break;
		case INT8OID:
			ti->kind = PGNW_BIGINT;
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			ti->kind = PGNW_TEXT;
			break;
		case JSONOID:
			ti->kind = PGNW_JSON;
			break;
		case JSONBOID:
			ti->kind = PGNW_JSON;
			ti->need_outfunc = true;
			break;
		case BYTEAOID:
			ti->kind = PGNW_BYTES;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			ti->kind = PGNW_DATE;
			break;
		default:
			elem = get_element_type(base);
			if (OidIsValid(elem))
			{
				ti->kind = PGNW_ARRAY;
				ti->elemtype = elem;
				get_typlenbyvalalign(elem, &ti->elmlen, &ti->elmbyval, &ti->elmalign);
				ti->elem = pgnw_type_info(elem);
			}
			else
			{
				ti->kind = PGNW_TEXT;
				ti->need_outfunc = true;
			}
			break;
	}
	if (ti->need_outfunc)
	{
		Oid			outfn;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfn, &isvarlena);
		fmgr_info(outfn, &ti->outfunc);
	}
	ti->typid = base;
	return ti;
}

static int
pgnw_col_kind(const PgnwTypeInfo *ti)
{
	switch (ti->kind)
	{
		case PGNW_BOOL:
			return PGNW_COL_BOOL;
		case PGNW_NUMBER:
			return ti->typid == INT2OID || ti->typid == INT4OID ? PGNW_COL_INT32 : PGNW_COL_FLOAT64;
		case PGNW_BIGINT:
			return PGNW_COL_INT64;
		case PGNW_DATE:
			return PGNW_COL_DATE;
		case PGNW_JSON:
			return PGNW_COL_JSON;
		case PGNW_BYTES:
			return PGNW_COL_BYTES;
		case PGNW_ARRAY:
			return PGNW_COL_VALUES;
		default:
			return PGNW_COL_TEXT;
	}
}

static bool
pgnw_shape_matches(const PgnwShape *shape, TupleDesc desc)
{
	if (shape == NULL || shape->type_epoch != pgnw_type_epoch ||
		shape->desc->natts != desc->natts)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(shape->desc, i);
		Form_pg_attribute b = TupleDescAttr(desc, i);

		if (a->atttypid != b->atttypid || a->attisdropped != b->attisdropped ||
			strcmp(NameStr(a->attname), NameStr(b->attname)) != 0)
			return false;
	}
	return true;
}

/* A shape for desc: cached ones live under TopMemoryContext, others in the current context. */
static PgnwShape *
pgnw_shape_make(TupleDesc desc, bool cached)
{
	MemoryContext cxt = AllocSetContextCreate(cached ? TopMemoryContext : CurrentMemoryContext,
											  "pg_node_worker result shape",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PgnwShape  *shape = (PgnwShape *) palloc0(sizeof(PgnwShape));
	int			n = desc->natts;

	shape->cxt = cxt;
	shape->id = 0;
	shape->type_epoch = pgnw_type_epoch;
	shape->desc = CreateTupleDescCopy(desc);
	shape->tis = (PgnwTypeInfo **) palloc0(sizeof(PgnwTypeInfo *) * Max(n, 1));
	shape->names = (const char **) palloc0(sizeof(char *) * Max(n, 1));
	shape->kinds = (int *) palloc0(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(shape->desc, i);

		shape->tis[i] = pgnw_type_info(att->atttypid);
		shape->names[i] = NameStr(att->attname);
		shape->kinds[i] = pgnw_col_kind(shape->tis[i]);
	}
	MemoryContextSwitchTo(old);
	if (cached)
	{
		if (pgnw_next_shape_id >= INT_MAX - 1)
			pgnw_next_shape_id = 0;
		shape->id = ++pgnw_next_shape_id;
	}
	return shape;
}

static MemoryContext pgnw_builder_keep_cxt(void);

/* The shape for a result of plan (NULL: not cached) with this descriptor. */
static PgnwShape *
pgnw_shape_for(PgnwPlan *plan, TupleDesc desc)
{
	if (plan == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(pgnw_builder_keep_cxt());
		PgnwShape  *shape = pgnw_shape_make(desc, false);

		MemoryContextSwitchTo(old);
		return shape;
	}
	if (!pgnw_shape_matches(plan->shape, desc))
	{
		PgnwShape  *shape = pgnw_shape_make(desc, true);

		if (plan->shape)
			MemoryContextDelete(plan->shape->cxt);
		plan->shape = shape;
	}
	return plan->shape;
}

static void
pgnw_set_text(PgnwValue *v, PgnwKind kind, const char *s)
{
	v->kind = kind;
	v->u.s.ptr = s;
	v->u.s.len = (int) strlen(s);
}

static void pgnw_datum_to_value(Datum d, PgnwTypeInfo *ti, PgnwValue *v);

/* An array value as a tree of PgnwValues, in CurrentMemoryContext (copies the array). */
static void
pgnw_array_to_value(Datum d, PgnwTypeInfo *ti, PgnwValue *v)
{
	ArrayType  *arr = DatumGetArrayTypePCopy(d);
	PgnwArray  *out = (PgnwArray *) palloc0(sizeof(PgnwArray));
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, ti->elemtype, ti->elmlen, ti->elmbyval, ti->elmalign,
					  &elems, &nulls, &n);
	out->ndims = Min(ARR_NDIM(arr), 6);
	for (int i = 0; i < out->ndims; i++)
		out->dims[i] = ARR_DIMS(arr)[i];
	out->nitems = n;
	out->items = (PgnwValue *) palloc0(sizeof(PgnwValue) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			out->items[i].kind = PGNW_NULL;
		else
			pgnw_datum_to_value(elems[i], ti->elem, &out->items[i]);
	}
	v->kind = PGNW_ARRAY;
	v->u.arr = out;
}

/* ms since 1970 of a date/timestamp, +-Infinity for +-infinity */
static inline double
pgnw_date_ms(Datum d, Oid typid)
{
	int64		ms;

	if (typid == DATEOID)
	{
		DateADT		date = DatumGetDateADT(d);

		if (DATE_NOT_FINITE(date))
			return DATE_IS_NOBEGIN(date) ? -INFINITY : INFINITY;
		ms = (int64) date * SECS_PER_DAY * 1000;
	}
	else
	{
		Timestamp	ts = DatumGetTimestamp(d);

		if (TIMESTAMP_NOT_FINITE(ts))
			return TIMESTAMP_IS_NOBEGIN(ts) ? -INFINITY : INFINITY;
		/* whole milliseconds, rounded down (as node-postgres reads them), exactly */
		ms = ts / 1000 - (ts % 1000 < 0 ? 1 : 0);
	}
	ms += (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	if (ms > PGNW_JS_DATE_MAX_MS || ms < -PGNW_JS_DATE_MAX_MS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s out of range for a JavaScript Date", format_type_be(typid)),
				 errdetail("A Date holds 8.64e15 ms either side of 1970 (years 271822 BC to 275760)."),
				 errhint("Read it as text: select it with ::text.")));
	return (double) ms;
}

/* array elements; text points into the (copied) array or palloc'd output */
static void
pgnw_datum_to_value(Datum d, PgnwTypeInfo *ti, PgnwValue *v)
{
	switch (ti->kind)
	{
		case PGNW_BOOL:
			v->kind = PGNW_BOOL;
			v->u.b = DatumGetBool(d);
			break;
		case PGNW_NUMBER:
			v->kind = PGNW_NUMBER;
			if (ti->typid == INT2OID)
				v->u.d = DatumGetInt16(d);
			else if (ti->typid == INT4OID)
				v->u.d = DatumGetInt32(d);
			else if (ti->typid == FLOAT4OID)
				v->u.d = DatumGetFloat4(d);
			else
				v->u.d = DatumGetFloat8(d);
			break;
		case PGNW_BIGINT:
			v->kind = PGNW_BIGINT;
			v->u.i = DatumGetInt64(d);
			break;
		case PGNW_BYTES:
		case PGNW_TEXT:
		case PGNW_JSON:
			if (ti->need_outfunc)
				pgnw_set_text(v, ti->kind, OutputFunctionCall(&ti->outfunc, d));
			else if (ti->typid == NAMEOID)
				pgnw_set_text(v, ti->kind, NameStr(*DatumGetName(d)));
			else
			{
				struct varlena *t = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

				v->kind = ti->kind;
				v->u.s.ptr = VARDATA_ANY(t);
				v->u.s.len = VARSIZE_ANY_EXHDR(t);
			}
			break;
		case PGNW_DATE:
			{
				double		ms = pgnw_date_ms(d, ti->typid);

				if (isinf(ms))
					pgnw_set_text(v, PGNW_TEXT, ms > 0 ? "infinity" : "-infinity");
				else
				{
					v->kind = PGNW_DATE;
					v->u.d = ms;
				}
			}
			break;
		case PGNW_ARRAY:
			pgnw_array_to_value(d, ti, v);
			break;
		default:
			v->kind = PGNW_NULL;
			break;
	}
}

/* ------------------------------------------------------ result columns */

/*
 * One result being built, column by column.  A single static builder: one
 * statement at a time runs, and its result is read by the bridge before the
 * next one starts.  Buffers are malloc'd (the bridge can hand them to JS as
 * external ArrayBuffers) and kept for the next statement unless big.
 */
#define PGNW_KEEP_BYTES (256 * 1024)

typedef struct PgnwBuilder
{
	bool		started;		/* a statement sent rows (its descriptor) */
	int			ncols;
	int			cap_cols;
	PgnwColumn *cols;
	uint64		nrows;
	uint64		cap_rows;
	PgnwShape  *shape;
	MemoryContext row_cxt;		/* output function garbage, reset per row */
	MemoryContext keep_cxt;		/* array values: live until pgnw_finish */
} PgnwBuilder;

static PgnwBuilder pgnw_builder;

static MemoryContext
pgnw_builder_keep_cxt(void)
{
	return pgnw_builder.keep_cxt;
}

static void
pgnw_grow(void **ptr, size_t *cap, size_t need)
{
	size_t		n;
	void	   *p;

	if (need <= *cap)
		return;
	n = *cap < 64 ? 64 : *cap;
	while (n < need)
		n *= 2;
	p = realloc(*ptr, n);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building a result of %llu rows",
						(unsigned long long) pgnw_builder.nrows),
				 errhint("Use tx.sql.cursor for big results.")));
	*ptr = p;
	*cap = n;
}

static inline size_t
pgnw_col_width(int kind)
{
	switch (kind)
	{
		case PGNW_COL_BOOL:
			return 1;
		case PGNW_COL_INT32:
			return 4;
		case PGNW_COL_FLOAT64:
		case PGNW_COL_INT64:
		case PGNW_COL_DATE:
			return 8;
		case PGNW_COL_VALUES:
			return sizeof(PgnwValue);
		default:
			return 4;			/* offsets */
	}
}

static inline bool
pgnw_col_has_bytes(int kind)
{
	return kind == PGNW_COL_TEXT || kind == PGNW_COL_JSON || kind == PGNW_COL_BYTES;
}

/* room for rows rows in every column */
static void
pgnw_builder_reserve(uint64 rows)
{
	PgnwBuilder *b = &pgnw_builder;

	if (rows <= b->cap_rows)
		return;
	if (rows < 16)
		rows = 16;
	if (rows < b->cap_rows * 2)
		rows = b->cap_rows * 2;
	for (int c = 0; c < b->ncols; c++)
	{
		PgnwColumn *col = &b->cols[c];

		pgnw_grow(&col->data, &col->data_cap, pgnw_col_width(col->kind) * (rows + 1));
		if (col->has_nulls)
			pgnw_grow((void **) &col->nulls, &col->nulls_cap, rows);
	}
	b->cap_rows = rows;
}

static void
pgnw_builder_start(PgnwPlan *plan, TupleDesc desc, uint64 expected_rows)
{
	PgnwBuilder *b = &pgnw_builder;
	int			n = desc->natts;

	b->shape = pgnw_shape_for(plan, desc);
	if (n > b->cap_cols)
	{
		PgnwColumn *cols = (PgnwColumn *) realloc(b->cols, sizeof(PgnwColumn) * n);

		if (cols == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		memset(cols + b->cap_cols, 0, sizeof(PgnwColumn) * (n - b->cap_cols));
		b->cols = cols;
		b->cap_cols = n;
	}
	/* keep small buffers for the next statement, drop big ones */
	for (int c = 0; c < b->cap_cols; c++)
	{
		PgnwColumn *col = &b->cols[c];

		if (col->data_cap > PGNW_KEEP_BYTES)
		{
			free(col->data);
			col->data = NULL;
			col->data_cap = 0;
		}
		if (col->nulls_cap > PGNW_KEEP_BYTES)
		{
			free(col->nulls);
			col->nulls = NULL;
			col->nulls_cap = 0;
		}
		if (col->bytes_cap > PGNW_KEEP_BYTES)
		{
			free(col->bytes);
			col->bytes = NULL;
			col->bytes_cap = 0;
		}
	}
	b->ncols = n;
	b->nrows = 0;
	b->cap_rows = 0;
	for (int c = 0; c < n; c++)
	{
		PgnwColumn *col = &b->cols[c];

		col->kind = b->shape->kinds[c];
		col->has_nulls = false;
		col->ascii = true;
		col->nbytes = 0;
	}
	/* what each column has room for with the buffers it kept */
	{
		uint64		rows = UINT64_MAX;

		for (int c = 0; c < n; c++)
		{
			size_t		w = pgnw_col_width(b->cols[c].kind);
			uint64		fit = b->cols[c].data_cap / w;

			rows = Min(rows, fit > 0 ? fit - 1 : 0);
		}
		b->cap_rows = n > 0 ? rows : 0;
	}
	pgnw_builder_reserve(Max(expected_rows, 1));
	for (int c = 0; c < n; c++)
		if (pgnw_col_has_bytes(b->cols[c].kind))
			((uint32_t *) b->cols[c].data)[0] = 0;
	if (b->row_cxt == NULL)
		b->row_cxt = AllocSetContextCreate(TopMemoryContext, "pg_node_worker result row",
										   ALLOCSET_SMALL_SIZES);
	b->started = true;
}

static inline bool
pgnw_all_ascii(const char *p, size_t len)
{
	size_t		i = 0;
	uint64		acc = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64		w;

		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < len; i++)
		acc |= (unsigned char) p[i];
	return (acc & UINT64CONST(0x8080808080808080)) == 0;
}

static inline void
pgnw_col_append(PgnwColumn *col, uint64 r, const char *p, size_t len)
{
	uint32_t   *off = (uint32_t *) col->data;
	uint64		end = col->nbytes + len;

	if (end > UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a result column holds more than 4 GB of text"),
				 errhint("Use tx.sql.cursor for big results.")));
	if (len > 0)
	{
		pgnw_grow((void **) &col->bytes, &col->bytes_cap, end);
		memcpy(col->bytes + col->nbytes, p, len);
		if (col->ascii && !pgnw_all_ascii(p, len))
			col->ascii = false;
	}
	col->nbytes = end;
	off[r + 1] = (uint32_t) end;
}

static void
pgnw_col_set_null(PgnwColumn *col, uint64 r)
{
	PgnwBuilder *b = &pgnw_builder;

	if (!col->has_nulls)
	{
		pgnw_grow((void **) &col->nulls, &col->nulls_cap, b->cap_rows);
		memset(col->nulls, 0, b->cap_rows);
		col->has_nulls = true;
	}
	col->nulls[r] = 1;
	switch (col->kind)
	{
		case PGNW_COL_BOOL:
			((uint8_t *) col->data)[r] = 0;
			break;
		case PGNW_COL_INT32:
			((int32_t *) col->data)[r] = 0;
			break;
		case PGNW_COL_FLOAT64:
		case PGNW_COL_DATE:
			((double *) col->data)[r] = 0;
			break;
		case PGNW_COL_INT64:
			((int64_t *) col->data)[r] = 0;
			break;
		case PGNW_COL_VALUES:
			((PgnwValue *) col->data)[r].kind = PGNW_NULL;
			break;
		default:
			((uint32_t *) col->data)[r + 1] = (uint32_t) col->nbytes;
			break;
	}
}

/* one row (values/isnull as from heap_deform_tuple or a slot) */
static void
pgnw_builder_add(Datum *values, bool *isnull)
{
	PgnwBuilder *b = &pgnw_builder;
	uint64		r = b->nrows;
	bool		used_row_cxt = false;

	if (r >= b->cap_rows)
		pgnw_builder_reserve(r + 1);
	for (int c = 0; c < b->ncols; c++)
	{
		PgnwColumn *col = &b->cols[c];
		PgnwTypeInfo *ti = b->shape->tis[c];
		Datum		d = values[c];

		if (col->has_nulls)
			col->nulls[r] = 0;
		if (isnull[c])
		{
			pgnw_col_set_null(col, r);
			continue;
		}
		switch (col->kind)
		{
			case PGNW_COL_BOOL:
				((uint8_t *) col->data)[r] = DatumGetBool(d) ? 1 : 0;
				break;
			case PGNW_COL_INT32:
				((int32_t *) col->data)[r] = ti->typid == INT2OID ? DatumGetInt16(d) : DatumGetInt32(d);
				break;
			case PGNW_COL_FLOAT64:
				((double *) col->data)[r] = ti->typid == FLOAT4OID ? (double) DatumGetFloat4(d) : DatumGetFloat8(d);
				break;
			case PGNW_COL_INT64:
				((int64_t *) col->data)[r] = DatumGetInt64(d);
				break;
			case PGNW_COL_DATE:
				((double *) col->data)[r] = pgnw_date_ms(d, ti->typid);
				break;
			case PGNW_COL_VALUES:
				{
					MemoryContext old = MemoryContextSwitchTo(b->keep_cxt);

					pgnw_datum_to_value(d, ti, &((PgnwValue *) col->data)[r]);
					MemoryContextSwitchTo(old);
				}
				break;
			default:			/* text kinds */
				if (ti->need_outfunc)
				{
					MemoryContext old = MemoryContextSwitchTo(b->row_cxt);
					char	   *s = OutputFunctionCall(&ti->outfunc, d);

					MemoryContextSwitchTo(old);
					used_row_cxt = true;
					pgnw_col_append(col, r, s, strlen(s));
				}
				else if (ti->typid == NAMEOID)
				{
					const char *s = NameStr(*DatumGetName(d));

					pgnw_col_append(col, r, s, strlen(s));
				}
				else
				{
					struct varlena *v = (struct varlena *) DatumGetPointer(d);

					if (VARATT_IS_COMPRESSED(v) || VARATT_IS_EXTERNAL(v))
					{
						MemoryContext old = MemoryContextSwitchTo(b->row_cxt);

						v = pg_detoast_datum_packed(v);
						MemoryContextSwitchTo(old);
						used_row_cxt = true;
					}
					pgnw_col_append(col, r, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				}
				break;
		}
	}
	b->nrows = r + 1;
	if (used_row_cxt)
		MemoryContextReset(b->row_cxt);
	if ((r & 4095) == 4095)
		CHECK_FOR_INTERRUPTS();
}

/* every tuple of SPI_tuptable */
static void
pgnw_builder_from_tuptable(PgnwPlan *plan)
{
	SPITupleTable *tt = SPI_tuptable;
	TupleDesc	desc = tt->tupdesc;
	int			n = desc->natts;
	Datum	   *values = (Datum *) palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = (bool *) palloc(sizeof(bool) * Max(n, 1));
	uint64		nrows = SPI_processed;

	pgnw_builder_start(plan, desc, nrows);
	for (uint64 r = 0; r < nrows; r++)
	{
		heap_deform_tuple(tt->vals[r], desc, values, nulls);
		pgnw_builder_add(values, nulls);
	}
}

/* A DestReceiver that turns the rows of a statement into columns as they come. */
typedef struct PgnwReceiver
{
	DestReceiver pub;
	PgnwPlan   *plan;
} PgnwReceiver;

static void
pgnw_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	pgnw_builder_start(((PgnwReceiver *) self)->plan, typeinfo, 0);
}

static bool
pgnw_receiver_slot(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getallattrs(slot);
	pgnw_builder_add(slot->tts_values, slot->tts_isnull);
	return true;
}

static void
pgnw_receiver_noop(DestReceiver *self)
{
}

static int
pgnw_command(int spi_code)
{
	switch (spi_code)
	{
		case SPI_OK_SELECT:
		case SPI_OK_SELINTO:
		case SPI_OK_FETCH:
			return PGNW_CMD_SELECT;
		case SPI_OK_INSERT:
		case SPI_OK_INSERT_RETURNING:
			return PGNW_CMD_INSERT;
		case SPI_OK_UPDATE:
		case SPI_OK_UPDATE_RETURNING:
			return PGNW_CMD_UPDATE;
		case SPI_OK_DELETE:
		case SPI_OK_DELETE_RETURNING:
			return PGNW_CMD_DELETE;
#ifdef SPI_OK_MERGE
		case SPI_OK_MERGE:
			return PGNW_CMD_MERGE;
#endif
		default:
			return PGNW_CMD_UTILITY;
	}
}

/* ------------------------------------------------- parameters from JS */

static Datum
pgnw_param_from_text(const char *text, Oid type)
{
	Oid			infunc;
	Oid			ioparam;

	getTypeInputInfo(type, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, (char *) text, ioparam, -1);
}

static Datum
pgnw_param_to_datum(const PgnwParam *p, Oid type)
{
	Oid			base = getBaseType(type);
	char		buf[64];

	switch (p->kind)
	{
		case PGNW_BOOL:
			if (base == BOOLOID)
				return BoolGetDatum(p->u.b);
			return pgnw_param_from_text(p->u.b ? "true" : "false", type);
		case PGNW_NUMBER:
			{
				double		d = p->u.d;

				if (base == FLOAT8OID)
					return Float8GetDatum(d);
				if (base == FLOAT4OID)
				{
					float4		f = (float4) d;

					/* a finite number a real cannot hold: PostgreSQL's float4 errors */
					if (isinf(f) && !isinf(d))
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("value out of range: overflow"),
								 errdetail("%.17g is beyond the largest real, %g.", d, (double) FLT_MAX)));
					if (f == 0 && d != 0)
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("value out of range: underflow"),
								 errdetail("%.17g is closer to 0 than the smallest real.", d)));
					return Float4GetDatum(f);
				}
				if (base == INT4OID && d == (double) (int32) d)
					return Int32GetDatum((int32) d);
				if (base == INT2OID && d == (double) (int16) d)
					return Int16GetDatum((int16) d);
				/* an integer number is its exact value, past 2^53 too (a bigint is better) */
				if (base == INT8OID && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
					d == floor(d))
					return Int64GetDatum((int64) d);
				/*
				 * let the type's input function judge it (range, syntax), from
				 * the shortest text that reads back as d (0.1, not
				 * 0.10000000000000001), as JS's String(d) gives it
				 */
				double_to_shortest_decimal_buf(d, buf);
				return pgnw_param_from_text(buf, type);
			}
		case PGNW_BIGINT:
			if (base == INT8OID)
				return Int64GetDatum(p->u.i);
			snprintf(buf, sizeof(buf), INT64_FORMAT, (int64) p->u.i);
			return pgnw_param_from_text(buf, type);
		case PGNW_TEXT:
			{
				char	   *s;

				/* what PostgreSQL says of a NUL sent by a client, not a silent cut */
				if (memchr(p->u.s.ptr, '\0', p->u.s.len) != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
							 errmsg("invalid byte sequence for encoding \"UTF8\": 0x00"),
							 errhint("PostgreSQL text cannot hold the character U+0000; send binary data as a Uint8Array (bytea).")));
				s = pnstrdup(p->u.s.ptr, p->u.s.len);
				return pgnw_param_from_text(s, type);
			}
		case PGNW_BYTES:
			if (base == BYTEAOID)
			{
				bytea	   *b = (bytea *) palloc(VARHDRSZ + p->u.s.len);

				SET_VARSIZE(b, VARHDRSZ + p->u.s.len);
				memcpy(VARDATA(b), p->u.s.ptr, p->u.s.len);
				return PointerGetDatum(b);
			}
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a Uint8Array cannot be used as a value of type %s",
							format_type_be(type)),
					 errhint("Uint8Array parameters are passed as bytea; cast the parameter or pass a string.")));
			return (Datum) 0;	/* keep compiler quiet */
		default:
			return (Datum) 0;
	}
}

typedef enum PgnwExecuteMode
{
	PGNW_EXEC_STATEMENT,		/* run the plan (or the text) to completion */
	PGNW_EXEC_OPEN_CURSOR,		/* open a cursor on the plan */
	PGNW_EXEC_FETCH				/* fetch from the cursor named by sql */
} PgnwExecuteMode;

typedef struct PgnwExecuteArgs
{
	PgnwExecuteMode mode;
	PgnwPlan   *plan;
	const char *sql;
	int			nparams;
	const PgnwParam *params;
	long		fetch_count;
	PgnwResult *res;
	char	   *cursor_name;	/* OPEN_CURSOR: out */
} PgnwExecuteArgs;

static void
pgnw_op_execute(void *arg)
{
	PgnwExecuteArgs *a = (PgnwExecuteArgs *) arg;
	PgnwResult *res = a->res;
	PgnwBuilder *b = &pgnw_builder;
	int			ret;
	bool		streamed = false;

	/* the statement start (pgnw_op_start_statement), in the same PG_TRY */
	if (pgnw_depth == 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgnw_stmt_implicit_xact = true;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	pgnw_stmt_snapshot = true;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgnw_stmt_spi = true;
	b->started = false;
	b->keep_cxt = CurrentMemoryContext; /* SPI's procedure context: until SPI_finish */

	if (a->mode == PGNW_EXEC_FETCH)
	{
		Portal		portal = SPI_cursor_find(a->sql);

		if (portal == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_CURSOR_NAME),
					 errmsg("cursor \"%s\" does not exist", a->sql),
					 errhint("A cursor lives until the end of the transaction that opened it.")));
		SPI_cursor_fetch(portal, true, a->fetch_count);
		ret = SPI_OK_FETCH;
	}
	else if (a->plan)
	{
		int			n = a->plan->nparams;
		ParamListInfo params = NULL;

		if (a->nparams != n)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("the statement takes %d parameters but %d were given", n, a->nparams)));
		if (n > 0)
		{
			if (pgnw_refresh_plan(a->plan))
			{
				res->retyped = true;
				/*
				 * The values were serialised for the old types (JSON text for
				 * a column that was text, now int[]).  Run nothing: the caller
				 * serialises them again and calls again.  Nothing was done in
				 * this (sub)transaction, so holding costs it nothing.
				 */
				if (a->plan->holds < PGNW_MAX_HOLDS)
				{
					a->plan->holds++;
					res->held = true;
					return;
				}
			}
			a->plan->holds = 0;
			params = makeParamList(n);
			for (int i = 0; i < n; i++)
			{
				ParamExternData *prm = &params->params[i];

				prm->isnull = a->params[i].kind == PGNW_NULL;
				prm->value = prm->isnull ? (Datum) 0 :
					pgnw_param_to_datum(&a->params[i], a->plan->types[i]);
				prm->pflags = PARAM_FLAG_CONST;
				prm->ptype = a->plan->types[i];
			}
		}
		if (a->mode == PGNW_EXEC_OPEN_CURSOR)
		{
			Portal		portal;

			if (!SPI_is_cursor_plan(a->plan->plan))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_CURSOR_DEFINITION),
						 errmsg("a cursor needs a single statement that returns rows")));
			portal = SPI_cursor_open_with_paramlist(NULL, a->plan->plan, params, false);
			strlcpy(a->cursor_name, portal->name, PGNW_CURSOR_NAME_LEN);
			return;
		}
		if (a->plan->single)
		{
			/* rows go straight from the executor into the columns */
			SPIExecuteOptions options = {0};
			PgnwReceiver receiver = {0};

			receiver.pub.receiveSlot = pgnw_receiver_slot;
			receiver.pub.rStartup = pgnw_receiver_startup;
			receiver.pub.rShutdown = pgnw_receiver_noop;
			receiver.pub.rDestroy = pgnw_receiver_noop;
			receiver.pub.mydest = DestTuplestore;	/* any but DestNone/DestSPI */
			receiver.plan = a->plan;
			options.params = params;
			options.read_only = false;
			options.dest = &receiver.pub;
			ret = SPI_execute_plan_extended(a->plan->plan, &options);
			streamed = true;
		}
		else
			ret = SPI_execute_plan_with_paramlist(a->plan->plan, params, false, 0);
	}
	else
		ret = SPI_execute(a->sql, false, 0);

	if (ret == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("transaction control statements are not allowed in ctx.sql"),
				 errhint("Use ctx.transaction(tx => ...) for a transaction and tx.transaction(...) for a savepoint.")));
	if (ret < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("SPI failed: %s", SPI_result_code_string(ret))));

	if (!streamed && SPI_tuptable != NULL)
		pgnw_builder_from_tuptable(a->plan);

	res->command = pgnw_command(ret);
	res->processed = SPI_processed;
	if (b->started)
	{
		res->ncols = b->ncols;
		res->nrows = b->nrows;
		res->columns = b->cols;
		res->shape_id = b->shape->id;
		res->colnames = b->shape->names;
		res->colkinds = b->shape->kinds;
		if (streamed)
			res->processed = b->nrows;
	}
}

static bool
pgnw_run(PgnwExecuteArgs *a, int plan_id, PgnwError *err)
{
	memset(a->res, 0, sizeof(*a->res));
	if (!pgnw_check_connected(err) || !pgnw_check_level_alive(err))
		return false;
	if (a->mode != PGNW_EXEC_STATEMENT && pgnw_depth == 0)
	{
		pgnw_error_set(err, "25000", "a cursor can only be used inside a transaction",
					   "Iterate the cursor inside ctx.transaction(tx => { for (const rows of tx.sql.cursor`...`) ... }).");
		return false;
	}
	if (plan_id >= 0 && (plan_id >= pgnw_nplans || pgnw_plans[plan_id].plan == NULL))
	{
		pgnw_error_set(err, "26000", "prepared statement does not exist", NULL);
		return false;
	}
	a->plan = plan_id >= 0 ? &pgnw_plans[plan_id] : NULL;

	if (a->mode != PGNW_EXEC_FETCH)
		pgstat_report_activity(STATE_RUNNING, a->plan ? a->plan->sql : a->sql);
	if (!pgnw_guard(pgnw_op_execute, a, err))
	{
		pgnw_builder.started = false;
		pgnw_after_failure();
		return false;
	}
	return true;
}

bool
pgnw_execute(int plan_id, const char *sql, int nparams, const PgnwParam *params,
			 PgnwResult *res, PgnwError *err)
{
	PgnwExecuteArgs a = {0};

	if (plan_id < 0 && sql == NULL)
	{
		pgnw_error_set(err, "42601", "no SQL text", NULL);
		return false;
	}
	a.mode = PGNW_EXEC_STATEMENT;
	a.sql = sql;
	a.nparams = nparams;
	a.params = params;
	a.res = res;
	res->retyped = false;
	return pgnw_run(&a, plan_id, err);
}

bool
pgnw_cursor_open(int plan_id, const char *sql, int nparams, const PgnwParam *params,
				 char *name, PgnwError *err)
{
	PgnwExecuteArgs a = {0};
	PgnwResult	res;

	if (plan_id < 0)
	{
		pgnw_error_set(err, "26000", "a cursor needs a prepared statement", NULL);
		return false;
	}
	res.retyped = false;
	a.mode = PGNW_EXEC_OPEN_CURSOR;
	a.sql = sql;
	a.nparams = nparams;
	a.params = params;
	a.res = &res;
	a.cursor_name = name;
	name[0] = '\0';			/* stays empty when the call was held */
	if (!pgnw_run(&a, plan_id, err))
		return false;
	return pgnw_finish(err);
}

bool
pgnw_cursor_fetch(const char *name, long count, int plan_id, PgnwResult *res, PgnwError *err)
{
	PgnwExecuteArgs a = {0};

	a.mode = PGNW_EXEC_FETCH;
	a.sql = name;
	a.fetch_count = count;
	a.res = res;
	res->retyped = false;
	/* the plan is only used for its cached shape; a freed one is no error here */
	if (plan_id >= 0 && (plan_id >= pgnw_nplans || pgnw_plans[plan_id].plan == NULL))
		plan_id = -1;
	return pgnw_run(&a, plan_id, err);
}

static void
pgnw_op_cursor_close(void *arg)
{
	Portal		portal = SPI_cursor_find((const char *) arg);

	if (portal != NULL)
		SPI_cursor_close(portal);
}

bool
pgnw_cursor_close(const char *name, PgnwError *err)
{
	/* after the transaction ended, the portal is already gone */
	if (pgnw_depth == 0)
		return true;
	if (!pgnw_guard(pgnw_op_cursor_close, (void *) name, err))
	{
		pgnw_after_failure();
		return false;
	}
	return true;
}

bool
pgnw_finish(PgnwError *err)
{
	pgnw_builder.started = false;
	if (!pgnw_guard(pgnw_op_end_statement, NULL, err))
	{
		pgnw_after_failure();
		return false;
	}
	pgstat_report_activity(pgnw_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
	return true;
}

/* ---------------------------------------------------- logging, settings */

typedef struct PgnwLogArgs
{
	int			level;
	const char *msg;
} PgnwLogArgs;

static void
pgnw_op_log(void *arg)
{
	PgnwLogArgs *a = (PgnwLogArgs *) arg;
	static const int levels[] = {DEBUG1, LOG, NOTICE, WARNING};

	if (a->level == PGNW_LOG_ERROR)
	{
		/* an ERROR-severity line in the log that does not abort anything */
		MemoryContext oldcontext = CurrentMemoryContext;

		PG_TRY();
		{
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg_internal("%s: %s", pgnw_worker_info.name, a->msg),
					 errhidestmt(true)));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcontext);
			EmitErrorReport();
			FlushErrorState();
		}
		PG_END_TRY();
		return;
	}
	ereport(levels[a->level],
			(errmsg_internal("%s: %s", pgnw_worker_info.name, a->msg),
			 errhidestmt(true)));
}

bool
pgnw_log(int level, const char *msg, PgnwError *err)
{
	PgnwLogArgs a;

	if (level < PGNW_LOG_DEBUG || level > PGNW_LOG_ERROR)
		level = PGNW_LOG_INFO;
	a.level = level;
	a.msg = msg;
	return pgnw_guard(pgnw_op_log, &a, err);
}

typedef struct PgnwSettingArgs
{
	const char *name;
	char	  **value;
} PgnwSettingArgs;

static void
pgnw_op_get_setting(void *arg)
{
	PgnwSettingArgs *a = (PgnwSettingArgs *) arg;
	const char *v = GetConfigOption(a->name, true, false);

	*a->value = v ? strdup(v) : NULL;
}

bool
pgnw_get_setting(const char *name, char **value, PgnwError *err)
{
	PgnwSettingArgs a;

	a.name = name;
	a.value = value;
	*value = NULL;
	return pgnw_guard(pgnw_op_get_setting, &a, err);
}

static void
pgnw_op_set_ps_display(void *arg)
{
	set_ps_display((const char *) arg);
}

bool
pgnw_set_ps_display(const char *text, PgnwError *err)
{
	return pgnw_guard(pgnw_op_set_ps_display, (void *) text, err);
}
