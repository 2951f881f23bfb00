/*-------------------------------------------------------------------------
 *
 * xact.h
 *		Transaction levels (ctx.transaction, savepoints) and the transaction
 *		of one statement, as plain C for the bridge (sql.cc) and for the
 *		boundary functions of the other *_ops.c files.  Implemented in
 *		xact_ops.c through the guard of guard.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_XACT_H
#define PGNW_XACT_H

#include "guard.h"

#ifdef __cplusplus
extern "C"
{
#endif

/* depth 0 = none (each statement runs in a transaction of its own), 1 = a transaction, >1 = savepoints */
extern int	pgnw_xact_depth(void);
extern bool pgnw_begin(PgnwError *err);
extern bool pgnw_commit(PgnwError *err);
extern bool pgnw_rollback(PgnwError *err);

/* false (25P02) when a statement of the current level failed: the level is dead */
extern bool pgnw_xact_check_alive(PgnwError *err);
/* after a failed operation: forget the statement, roll its level back, mark it dead */
extern void pgnw_xact_after_failure(void);
/* end the statement begun by pgnw_op_start_statement (commit its own transaction) */
extern bool pgnw_xact_end_statement(PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_XACT_H */
