/*-------------------------------------------------------------------------
 *
 * result_ops.h
 *		Building a result column by column (result.h) from the rows of a
 *		statement, for the operations of execute_ops.c and plan_ops.c.
 *		Runs only inside pgnw_guard (see guard.h), except where a function
 *		says it is plain C.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RESULT_OPS_H
#define PGNW_RESULT_OPS_H

#ifdef __cplusplus
#error "result_ops.h is PostgreSQL's side of the bridge: .cc files use result.h"
#endif

#include "access/tupdesc.h"
#include "tcop/dest.h"

#include "result.h"

/* The column names and types of a result and their conversions (result_ops.c). */
typedef struct PgnwShape PgnwShape;

/*
 * A DestReceiver that turns a statement's rows into columns as they come.
 * cache: where the plan keeps the shape of its last result (NULL: a text
 * statement, nothing kept).
 */
typedef struct PgnwReceiver
{
	DestReceiver pub;
	PgnwShape **cache;
} PgnwReceiver;

/* A statement is about to send rows: array values live in CurrentMemoryContext. */
extern void pgnw_result_begin(void);
extern void pgnw_result_receiver_init(PgnwReceiver *receiver, PgnwShape **cache);
/* every row of SPI_tuptable (statements that did not stream into the receiver) */
extern void pgnw_result_from_tuptable(PgnwShape **cache);
/* res: the command of SPI code spi_code, the count, the columns built (if any) */
extern void pgnw_result_fill(PgnwResult *res, int spi_code, bool streamed);

/*
 * Can the result be read after its statement ended?  True when nothing in
 * it lives in the statement's memory: no rows, or a plan's cached shape and
 * no column of array values.
 */
extern bool pgnw_result_outlives_statement(void);
/* plain C: the result was read, or its statement failed */
extern void pgnw_result_forget(void);
/* a plan's cached shape goes with the plan */
extern void pgnw_result_shape_free(PgnwShape *shape);

#endif							/* PGNW_RESULT_OPS_H */
