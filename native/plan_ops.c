/*-------------------------------------------------------------------------
 *
 * plan_ops.c
 *		Prepared statements: the kept SPI plans the runtime's plan cache
 *		(src/runtime/sql.ts) refers to by id.
 *
 * A plan's parameter types are inferred from the statement the way the
 * extended query protocol infers unspecified ones (unknown becomes text),
 * and JS serialises its values by them.  A kept plan fixed its parameter
 * types when it was prepared; after DDL (ALTER COLUMN ... TYPE) the server
 * may infer others, and the plan cache would still coerce each value
 * through the old type (an int8 through real loses digits).  So when the
 * plan was invalidated its types are inferred again and, if they changed,
 * the statement is prepared afresh under the same id; the call is held
 * (nothing runs) so that JS can serialise its values by the new types, at
 * most PLAN_MAX_HOLDS times in a row (after that it runs with the values as
 * they are: DDL in a loop).
 *
 * Limits: ids index a malloc'd table that doubles as it fills; the plans
 * themselves live under TopMemoryContext (SPI_keepplan) until freed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "../extension/compat.h"
#include "plan_ops.h"
#include "xact_ops.h"

#define PLAN_MAX_HOLDS 3

static PgnwPlan *plan_table = NULL;
static int	plan_table_size = 0;

typedef struct PlanPrepareArgs
{
	const char *sql;
	PgnwPlan   *out;
} PlanPrepareArgs;

/* plain C: the plan with this id, or NULL when there is none */
PgnwPlan *
pgnw_plan_get(int plan_id)
{
	if (plan_id < 0 || plan_id >= plan_table_size || plan_table[plan_id].plan == NULL)
		return NULL;
	return &plan_table[plan_id];
}

/* the parameter types of sql, inferred the way the extended protocol does */
static void
plan_infer_param_types(const char *sql, Oid **types, int *ntypes)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	ListCell   *lc;

	foreach(lc, raw)
		(void) pgnw_parse_analyze_varparams(lfirst_node(RawStmt, lc), sql, types, ntypes);
	for (int i = 0; i < *ntypes; i++)
		if ((*types)[i] == InvalidOid || (*types)[i] == UNKNOWNOID)
			(*types)[i] = TEXTOID;
}

/* a kept SPI plan of sql with these parameter types (SPI connected) */
static SPIPlanPtr
plan_keep(const char *sql, int ntypes, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, ntypes, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* plan's types and element types from types (its arrays hold ntypes) */
static void
plan_set_types(PgnwPlan *plan, const Oid *types, int ntypes)
{
	for (int i = 0; i < ntypes; i++)
	{
		plan->types[i] = types[i];
		plan->elem_types[i] = get_element_type(getBaseType(types[i]));
	}
}

/*
 * When the plan was invalidated and the server now infers other parameter
 * types, prepare it afresh under the same id.  Called inside the
 * statement's transaction, with SPI connected.  True when it did.
 */
static bool
plan_refresh(PgnwPlan *plan)
{
	Oid		   *types = NULL;
	int			ntypes = 0;
	SPIPlanPtr	fresh;

	AcceptInvalidationMessages();
	if (SPI_plan_is_valid(plan->plan))
		return false;
	plan_infer_param_types(plan->sql, &types, &ntypes);
	if (ntypes != plan->nparams ||
		memcmp(types, plan->types, sizeof(Oid) * ntypes) == 0)
		return false;
	fresh = plan_keep(plan->sql, ntypes, types);
	SPI_freeplan(plan->plan);
	plan->plan = fresh;
	plan->single = list_length(SPI_plan_get_plan_sources(fresh)) == 1;
	plan_set_types(plan, types, ntypes);
	return true;
}

/* Refresh the plan's parameter types after DDL; true when the call must be held. */
bool
pgnw_plan_hold(PgnwPlan *plan, PgnwResult *res)
{
	if (plan_refresh(plan))
	{
		res->retyped = true;

		/*
		 * The values were serialised for the old types (JSON text for a
		 * column that was text, now int[]).  Run nothing: the caller
		 * serialises them again and calls again.  Nothing was done in this
		 * (sub)transaction, so holding costs it nothing.
		 */
		if (plan->holds < PLAN_MAX_HOLDS)
		{
			plan->holds++;
			res->held = true;
			return true;
		}
	}
	plan->holds = 0;
	return false;
}

/* Prepare and keep a->sql into a->out (inside the statement's transaction). */
static void
plan_op_prepare(void *arg)
{
	PlanPrepareArgs *a = (PlanPrepareArgs *) arg;
	Oid		   *types = NULL;
	int			ntypes = 0;
	SPIPlanPtr	plan;

	plan_infer_param_types(a->sql, &types, &ntypes);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = plan_keep(a->sql, ntypes, types);
	a->out->single = list_length(SPI_plan_get_plan_sources(plan)) == 1;
	SPI_finish();

	a->out->plan = plan;
	a->out->nparams = ntypes;
	a->out->sql = MemoryContextStrdup(TopMemoryContext, a->sql);
	a->out->types = (Oid *) MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * (ntypes + 1));
	a->out->elem_types = (Oid *) MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * (ntypes + 1));
	plan_set_types(a->out, types, ntypes);
}

/* a free slot of the plan table (grown when full), or -1 when malloc says no */
static int
plan_free_slot(void)
{
	int			id;
	int			n;
	PgnwPlan   *grown;

	for (id = 0; id < plan_table_size; id++)
		if (plan_table[id].plan == NULL)
			return id;
	n = plan_table_size == 0 ? 64 : plan_table_size * 2;
	grown = (PgnwPlan *) realloc(plan_table, sizeof(PgnwPlan) * n);
	if (grown == NULL)
		return -1;
	plan_table = grown;
	memset(plan_table + plan_table_size, 0, sizeof(PgnwPlan) * (n - plan_table_size));
	plan_table_size = n;
	return id;
}

/* info describes plan (kept under id) */
static void
plan_describe(int id, const PgnwPlan *plan, PgnwPlanInfo *info)
{
	info->id = id;
	info->nparams = plan->nparams;
	info->param_types = plan->types;
	info->param_elem_types = plan->elem_types;
}

/* Prepare sql in a statement of its own; the plan's id and parameter types in info. */
bool
pgnw_prepare(const char *sql, PgnwPlanInfo *info, PgnwError *err)
{
	PlanPrepareArgs a;
	PgnwPlan	plan = {0};
	int			id;

	if (!pgnw_check_connected(err) || !pgnw_xact_check_alive(err))
		return false;
	a.sql = sql;
	a.out = &plan;
	if (!pgnw_guard(pgnw_op_start_statement, NULL, err) ||
		!pgnw_guard(plan_op_prepare, &a, err) ||
		!pgnw_guard(pgnw_op_end_statement, NULL, err))
	{
		pgnw_xact_after_failure();
		return false;
	}
	id = plan_free_slot();
	if (id < 0)
	{
		/* the kept plan is lost until the worker restarts; no crash */
		pgnw_error_set(err, "53200", "out of memory", "The table of prepared statements could not grow.");
		return false;
	}
	plan_table[id] = plan;
	plan_describe(id, &plan_table[id], info);
	return true;
}

/* The parameter types of plan plan_id as they are now; false if there is no such plan. */
bool
pgnw_plan_info(int plan_id, PgnwPlanInfo *info)
{
	PgnwPlan   *plan = pgnw_plan_get(plan_id);

	if (plan == NULL)
		return false;
	plan_describe(plan_id, plan, info);
	return true;
}

/* Free a kept plan (arg) and what it holds. */
static void
plan_op_free(void *arg)
{
	PgnwPlan   *p = (PgnwPlan *) arg;

	SPI_freeplan(p->plan);
	pfree(p->types);
	pfree(p->elem_types);
	pfree(p->sql);
	pgnw_result_shape_free(p->shape);
}

/* Free plan id (nothing when there is no such plan); its slot is reused. */
void
pgnw_free_plan(int id)
{
	PgnwError	err = {0};
	PgnwPlan   *plan = pgnw_plan_get(id);

	if (plan == NULL)
		return;
	(void) pgnw_guard(plan_op_free, plan, &err);
	pgnw_error_clear(&err);
	memset(plan, 0, sizeof(PgnwPlan));
}
