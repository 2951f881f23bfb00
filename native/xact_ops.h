/*-------------------------------------------------------------------------
 *
 * xact_ops.h
 *		The start of a statement's transaction, for the operations of the
 *		other *_ops.c files.  Runs only inside pgnw_guard (see guard.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_XACT_OPS_H
#define PGNW_XACT_OPS_H

#ifdef __cplusplus
#error "xact_ops.h is PostgreSQL's side of the bridge: .cc files use xact.h"
#endif

#include "xact.h"

/*
 * Start a statement: a transaction of its own at depth 0, and an active
 * snapshot.  Ended by pgnw_op_end_statement (or pgnw_xact_end_statement);
 * on an error pgnw_xact_after_failure forgets it.  arg is unused.
 */
extern void pgnw_op_start_statement(void *arg);
/* the statement uses SPI: the transaction's connection, or one its end finishes */
extern void pgnw_xact_connect_spi(void);
extern void pgnw_op_end_statement(void *arg);
/* after pgnw_op_end_statement ran inside an operation: pg_stat_activity shows the worker idle */
extern void pgnw_xact_statement_ended(void);

#endif							/* PGNW_XACT_OPS_H */
