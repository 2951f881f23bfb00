/*-------------------------------------------------------------------------
 *
 * execute.h
 *		Running statements and cursors, as plain C for the bridge (sql.cc).
 *		Implemented in execute_ops.c through the guard of guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_EXECUTE_H
#define PGNW_EXECUTE_H

#include "convert.h"
#include "guard.h"
#include "result.h"

#ifdef __cplusplus
extern "C"
{
#endif

/*
 * A parameter value as the bridge extracted it from JS: kind PGNW_NULL,
 * BOOL, NUMBER, BIGINT, TEXT or BYTES (text and bytes point into memory the
 * bridge keeps until the call returns).
 */
typedef PgnwValue PgnwParam;

/* plan_id -1 runs sql as text (no parameters); else sql may be NULL */
extern bool pgnw_execute(int plan_id, const char *sql, int nparams,
						 const PgnwParam *params, PgnwResult *res, PgnwError *err);
/* after pgnw_execute or pgnw_cursor_fetch succeeded and the result was read */
extern bool pgnw_finish(PgnwError *err);

/*
 * Cursors (inside a transaction only): open on a prepared plan, fetch
 * batches (then pgnw_finish, as for pgnw_execute), close.
 */
#define PGNW_CURSOR_NAME_LEN 64
/* name is left empty when the call was held for new parameter types (see PgnwResult.held) */
extern bool pgnw_cursor_open(int plan_id, int nparams, const PgnwParam *params, char *name,
							 PgnwError *err);
/* plan_id: the plan the cursor was opened on (for its cached shape), or -1 */
extern bool pgnw_cursor_fetch(const char *name, long count, int plan_id,
							  PgnwResult *res, PgnwError *err);
extern bool pgnw_cursor_close(const char *name, PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_EXECUTE_H */
