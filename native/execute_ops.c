/*-------------------------------------------------------------------------
 *
 * execute_ops.c
 *		Running a statement (a kept plan with parameters, or SQL text) and
 *		cursors, on PostgreSQL's side of the bridge.
 *
 * A statement runs in one operation: its start (xact_ops.c), the
 * parameters converted from what JS sent, the plan run with its rows
 * streamed into result_ops.c's columns, or an SPI tuple table turned into
 * them.  When nothing of the result lives in the statement's memory (most
 * results of prepared statements), the same operation ends the statement
 * (and commits its own transaction at depth 0): one guarded call into
 * PostgreSQL per statement.  Otherwise the result stays valid until the
 * bridge has read it and called pgnw_finish, which ends the statement.
 *
 * Parameters: a JS value converts by its JS kind and the parameter's type
 * (inferred by the server, plan_ops.c): a number straight into int2/int4/
 * int8/float4/float8 when it fits exactly, else through the type's input
 * function from its shortest round-trip text; a string always through the
 * input function; a Uint8Array only into bytea.
 *
 * Limits: cursors only inside a transaction, on a prepared single
 * statement that returns rows; transaction control statements are refused
 * (ctx.transaction does that).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/portal.h"

#include "execute.h"
#include "plan_ops.h"
#include "result_ops.h"
#include "xact_ops.h"

typedef enum ExecMode
{
	EXEC_STATEMENT,				/* run the plan (or the text) to completion */
	EXEC_OPEN_CURSOR,			/* open a cursor on the plan */
	EXEC_FETCH					/* fetch from the cursor named by sql */
} ExecMode;

/* the statement of the last result ended in its own operation: pgnw_finish only forgets it */
static bool exec_statement_ended = false;

typedef struct ExecArgs
{
	ExecMode	mode;
	PgnwPlan   *plan;
	const char *sql;
	int			nparams;
	const PgnwParam *params;
	long		fetch_count;
	PgnwResult *res;
	char	   *cursor_name;	/* OPEN_CURSOR: out */
} ExecArgs;

/* ---------------------------------------------------------- parameters */

/* a value of type from its text, by the type's input function */
static Datum
exec_param_from_text(const char *text, Oid type)
{
	Oid			infunc;
	Oid			ioparam;

	getTypeInputInfo(type, &infunc, &ioparam);
	return OidInputFunctionCall(infunc, (char *) text, ioparam, -1);
}

/* a real from d, or the ERROR float4's input gives for a value it cannot hold */
static Datum
exec_param_float4(double d)
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

/* a JS number as a value of type (base: its base type) */
static Datum
exec_param_number(double d, Oid type, Oid base)
{
	char		buf[64];

	if (base == FLOAT8OID)
		return Float8GetDatum(d);
	if (base == FLOAT4OID)
		return exec_param_float4(d);
	if (base == INT4OID && d == (double) (int32) d)
		return Int32GetDatum((int32) d);
	if (base == INT2OID && d == (double) (int16) d)
		return Int16GetDatum((int16) d);
	/* an integer number is its exact value, past 2^53 too (a bigint is better) */
	if (base == INT8OID && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
		d == floor(d))
		return Int64GetDatum((int64) d);

	/*
	 * let the type's input function judge it (range, syntax), from the
	 * shortest text that reads back as d (0.1, not 0.10000000000000001), as
	 * JS's String(d) gives it
	 */
	double_to_shortest_decimal_buf(d, buf);
	return exec_param_from_text(buf, type);
}

/* a JS string as a value of type */
static Datum
exec_param_text(const char *ptr, int len, Oid type)
{
	/* what PostgreSQL says of a NUL sent by a client, not a silent cut */
	if (memchr(ptr, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\": 0x00"),
				 errhint("PostgreSQL text cannot hold the character U+0000; send binary data as a Uint8Array (bytea).")));
	return exec_param_from_text(pnstrdup(ptr, len), type);
}

/* a Uint8Array as a value of type: only bytea takes one */
static Datum
exec_param_bytes(const char *ptr, int len, Oid type, Oid base)
{
	bytea	   *b;

	if (base != BYTEAOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a Uint8Array cannot be used as a value of type %s",
						format_type_be(type)),
				 errhint("Uint8Array parameters are passed as bytea; cast the parameter or pass a string.")));
	b = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), ptr, len);
	return PointerGetDatum(b);
}

/* a parameter as a value of type (not NULL) */
static Datum
exec_param_to_datum(const PgnwParam *p, Oid type)
{
	Oid			base = getBaseType(type);
	char		buf[64];

	switch (p->kind)
	{
		case PGNW_BOOL:
			if (base == BOOLOID)
				return BoolGetDatum(p->u.b);
			return exec_param_from_text(p->u.b ? "true" : "false", type);
		case PGNW_NUMBER:
			return exec_param_number(p->u.d, type, base);
		case PGNW_BIGINT:
			if (base == INT8OID)
				return Int64GetDatum(p->u.i);
			snprintf(buf, sizeof(buf), INT64_FORMAT, (int64) p->u.i);
			return exec_param_from_text(buf, type);
		case PGNW_TEXT:
			return exec_param_text(p->u.s.ptr, p->u.s.len, type);
		case PGNW_BYTES:
			return exec_param_bytes(p->u.s.ptr, p->u.s.len, type, base);
		default:
			return (Datum) 0;
	}
}

/*
 * The parameters of a call on a->plan in *out (NULL when it takes none);
 * false when the call is held for new parameter types (pgnw_plan_hold).
 */
static bool
exec_bind(ExecArgs *a, ParamListInfo *out)
{
	int			n = a->plan->nparams;
	ParamListInfo params;

	*out = NULL;
	if (a->nparams != n)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the statement takes %d parameters but %d were given", n, a->nparams)));
	if (n == 0)
		return true;
	if (pgnw_plan_hold(a->plan, a->res))
		return false;
	params = makeParamList(n);
	for (int i = 0; i < n; i++)
	{
		ParamExternData *prm = &params->params[i];

		prm->isnull = a->params[i].kind == PGNW_NULL;
		prm->value = prm->isnull ? (Datum) 0 :
			exec_param_to_datum(&a->params[i], a->plan->types[i]);
		prm->pflags = PARAM_FLAG_CONST;
		prm->ptype = a->plan->types[i];
	}
	*out = params;
	return true;
}

/* ---------------------------------------------------------- statements */

/* fetch a->fetch_count rows from the cursor named a->sql into SPI_tuptable */
static int
exec_fetch(ExecArgs *a)
{
	Portal		portal = SPI_cursor_find(a->sql);

	if (portal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CURSOR_NAME),
				 errmsg("cursor \"%s\" does not exist", a->sql),
				 errhint("A cursor lives until the end of the transaction that opened it.")));
	SPI_cursor_fetch(portal, true, a->fetch_count);
	return SPI_OK_FETCH;
}

/* open a cursor on a->plan; its name into a->cursor_name */
static void
exec_open_cursor(ExecArgs *a, ParamListInfo params)
{
	Portal		portal;

	if (!SPI_is_cursor_plan(a->plan->plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CURSOR_DEFINITION),
				 errmsg("a cursor needs a single statement that returns rows")));
	portal = SPI_cursor_open_with_paramlist(NULL, a->plan->plan, params, false);
	strlcpy(a->cursor_name, portal->name, PGNW_CURSOR_NAME_LEN);
}

/* run a->plan; a single statement's rows stream straight into the columns */
static int
exec_plan(ExecArgs *a, ParamListInfo params, bool *streamed)
{
	SPIExecuteOptions options = {0};
	PgnwReceiver receiver;

	if (!a->plan->single)
		return SPI_execute_plan_with_paramlist(a->plan->plan, params, false, 0);
	pgnw_result_receiver_init(&receiver, &a->plan->shape);
	options.params = params;
	options.read_only = false;
	options.dest = &receiver.pub;
	*streamed = true;
	return SPI_execute_plan_extended(a->plan->plan, &options);
}

/* the ERROR for an SPI code that is one */
static void
exec_check_spi(int ret)
{
	if (ret == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("transaction control statements are not allowed in ctx.sql"),
				 errhint("Use ctx.transaction(tx => ...) for a transaction and tx.transaction(...) for a savepoint.")));
	if (ret < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("SPI failed: %s", SPI_result_code_string(ret))));
}

/* One statement, cursor open or fetch (arg: ExecArgs), from its start to its result. */
static void
exec_op_execute(void *arg)
{
	ExecArgs   *a = (ExecArgs *) arg;
	int			ret;
	bool		streamed = false;

	pgnw_op_start_statement(NULL);
	pgnw_xact_connect_spi();
	/* array values live in the statement's memory: until its end */
	pgnw_result_begin();

	if (a->mode == EXEC_FETCH)
		ret = exec_fetch(a);
	else if (a->plan)
	{
		ParamListInfo params;

		if (!exec_bind(a, &params))
			return;				/* held */
		if (a->mode == EXEC_OPEN_CURSOR)
		{
			exec_open_cursor(a, params);
			return;
		}
		ret = exec_plan(a, params, &streamed);
	}
	else
		ret = SPI_execute(a->sql, false, 0);

	exec_check_spi(ret);
	if (!streamed && SPI_tuptable != NULL)
		pgnw_result_from_tuptable(a->plan ? &a->plan->shape : NULL);
	pgnw_result_fill(a->res, ret, streamed);
	if (pgnw_result_outlives_statement())
	{
		pgnw_op_end_statement(NULL);
		exec_statement_ended = true;
	}
}

/* The checks every call makes, then the operation; on failure, the rollback. */
static bool
exec_run(ExecArgs *a, int plan_id, PgnwError *err)
{
	memset(a->res, 0, sizeof(*a->res));
	exec_statement_ended = false;
	if (!pgnw_check_connected(err) || !pgnw_xact_check_alive(err))
		return false;
	if (a->mode != EXEC_STATEMENT && pgnw_xact_depth() == 0)
	{
		pgnw_error_set(err, "25000", "a cursor can only be used inside a transaction",
					   "Iterate the cursor inside ctx.transaction(tx => { for (const rows of tx.sql.cursor`...`) ... }).");
		return false;
	}
	a->plan = plan_id >= 0 ? pgnw_plan_get(plan_id) : NULL;
	if (plan_id >= 0 && a->plan == NULL)
	{
		pgnw_error_set(err, "26000", "prepared statement does not exist", NULL);
		return false;
	}

	if (a->mode != EXEC_FETCH)
		pgstat_report_activity(STATE_RUNNING, a->plan ? a->plan->sql : a->sql);
	if (!pgnw_guard(exec_op_execute, a, err))
	{
		exec_statement_ended = false;
		pgnw_result_forget();
		pgnw_xact_after_failure();
		return false;
	}
	if (exec_statement_ended)
		pgnw_xact_statement_ended();
	return true;
}

/* Run plan plan_id with params (or sql as text when plan_id is -1). */
bool
pgnw_execute(int plan_id, const char *sql, int nparams, const PgnwParam *params,
			 PgnwResult *res, PgnwError *err)
{
	ExecArgs	a = {0};

	if (plan_id < 0 && sql == NULL)
	{
		pgnw_error_set(err, "42601", "no SQL text", NULL);
		return false;
	}
	a.mode = EXEC_STATEMENT;
	a.sql = sql;
	a.nparams = nparams;
	a.params = params;
	a.res = res;
	return exec_run(&a, plan_id, err);
}

/* Open a cursor on plan plan_id; its name into name ("" when the call was held). */
bool
pgnw_cursor_open(int plan_id, int nparams, const PgnwParam *params, char *name, PgnwError *err)
{
	ExecArgs	a = {0};
	PgnwResult	res;

	if (plan_id < 0)
	{
		pgnw_error_set(err, "26000", "a cursor needs a prepared statement", NULL);
		return false;
	}
	a.mode = EXEC_OPEN_CURSOR;
	a.nparams = nparams;
	a.params = params;
	a.res = &res;
	a.cursor_name = name;
	name[0] = '\0';
	if (!exec_run(&a, plan_id, err))
		return false;
	return pgnw_finish(err);
}

/* Fetch up to count rows from cursor name (plan_id: for its cached shape, or -1). */
bool
pgnw_cursor_fetch(const char *name, long count, int plan_id, PgnwResult *res, PgnwError *err)
{
	ExecArgs	a = {0};

	a.mode = EXEC_FETCH;
	a.sql = name;
	a.fetch_count = count;
	a.res = res;
	/* the plan is only used for its cached shape; a freed one is no error here */
	if (pgnw_plan_get(plan_id) == NULL)
		plan_id = -1;
	return exec_run(&a, plan_id, err);
}

/* Close the cursor named arg, if it is still there. */
static void
exec_op_cursor_close(void *arg)
{
	Portal		portal = SPI_cursor_find((const char *) arg);

	if (portal != NULL)
		SPI_cursor_close(portal);
}

/* Close cursor name (after its transaction ended it is already gone). */
bool
pgnw_cursor_close(const char *name, PgnwError *err)
{
	if (pgnw_xact_depth() == 0)
		return true;
	if (!pgnw_guard(exec_op_cursor_close, (void *) name, err))
	{
		pgnw_xact_after_failure();
		return false;
	}
	return true;
}

/* The result was read: end its statement (if its operation did not). */
bool
pgnw_finish(PgnwError *err)
{
	pgnw_result_forget();
	if (exec_statement_ended)
	{
		exec_statement_ended = false;
		return true;
	}
	return pgnw_xact_end_statement(err);
}
