/*-------------------------------------------------------------------------
 *
 * plan.h
 *		Prepared statements (the bridge's plan cache), as plain C for the
 *		bridge (sql.cc).  Implemented in plan_ops.c through the guard of
 *		guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_PLAN_H
#define PGNW_PLAN_H

#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct PgnwPlanInfo
{
	int			id;
	int			nparams;
	const unsigned int *param_types;
	const unsigned int *param_elem_types;	/* 0 when not an array type */
} PgnwPlanInfo;

/* prepare and keep sql; its parameter types are inferred as the extended protocol does */
extern bool pgnw_prepare(const char *sql, PgnwPlanInfo *info, PgnwError *err);
/* the parameter types of a prepared statement now; false if plan_id is not one */
extern bool pgnw_plan_info(int plan_id, PgnwPlanInfo *info);
extern void pgnw_free_plan(int id);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_PLAN_H */
