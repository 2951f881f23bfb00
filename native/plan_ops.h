/*-------------------------------------------------------------------------
 *
 * plan_ops.h
 *		The kept plans, for the operations of execute_ops.c.  Runs only
 *		inside pgnw_guard (see guard.h), except where a function says it is
 *		plain C.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_PLAN_OPS_H
#define PGNW_PLAN_OPS_H

#ifdef __cplusplus
#error "plan_ops.h is PostgreSQL's side of the bridge: .cc files use plan.h"
#endif

#include "executor/spi.h"

#include "plan.h"
#include "result_ops.h"
#include "result.h"

/* one kept plan */
typedef struct PgnwPlan
{
	SPIPlanPtr	plan;			/* NULL: a free slot */
	int			nparams;
	Oid		   *types;
	Oid		   *elem_types;
	char	   *sql;			/* for pg_stat_activity */
	bool		single;			/* one statement: its rows can stream into the columns */
	PgnwShape  *shape;			/* of the last result, or NULL */
	int			holds;			/* calls held in a row for new parameter types */
} PgnwPlan;

/* plain C: the plan with this id, or NULL when there is none */
extern PgnwPlan *pgnw_plan_get(int plan_id);

/*
 * Before a call with parameters: when DDL made the server infer other
 * parameter types, prepare the plan afresh (res->retyped) and say whether
 * the call must be held (res->held: nothing runs, JS serialises the values
 * again by the new types and calls again).
 */
extern bool pgnw_plan_hold(PgnwPlan *plan, PgnwResult *res);

#endif							/* PGNW_PLAN_OPS_H */
