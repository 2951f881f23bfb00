/*-------------------------------------------------------------------------
 *
 * result.h
 *		A statement's result as plain C, column by column, for the bridge
 *		(sql.cc, convert.cc).  Built by result_ops.c.
 *
 * Fixed-width kinds are one C array each (the bridge may hand it to JS as
 * a typed array), text kinds one byte buffer plus nrows + 1 offsets, and
 * anything else (arrays) one PgnwValue per row.  See contract.h for the
 * column kinds.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RESULT_H
#define PGNW_RESULT_H

#include <stddef.h>

#include "contract.h"
#include "convert.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct PgnwColumn
{
	int			kind;			/* PgnwColKind */
	bool		has_nulls;		/* nulls[] is valid */
	bool		ascii;			/* text kinds: every byte < 0x80 */
	uint8_t    *nulls;			/* malloc'd: nrows entries, 1 = NULL */
	void	   *data;			/* malloc'd: nrows fixed-width values, or nrows + 1 uint32_t
								 * offsets into bytes (text kinds), or nrows PgnwValues */
	char	   *bytes;			/* malloc'd: text kinds' contents */
	uint64_t	nbytes;
	/* capacities in bytes */
	size_t		data_cap;
	size_t		nulls_cap;
	size_t		bytes_cap;
} PgnwColumn;

/*
 * The bridge may take ownership of a column's malloc'd buffers (and free()
 * them later): it sets the pointer to NULL and the capacity to 0.  Whatever
 * it leaves stays with result_ops.c and is reused by the next statement.
 */

typedef struct PgnwResult
{
	int			command;		/* PgnwCommand */
	uint64_t	processed;		/* rows returned or affected */
	int			ncols;			/* 0: the statement returned no rows (INSERT, ...) */
	uint64_t	nrows;
	/*
	 * Names and kinds of the columns.  shape_id > 0: they stay the same for
	 * as long as the plan returns the same shape_id (a result with the same
	 * column names and types), so a caller that has seen it may skip them.
	 * 0: not cached (text statements).  Valid until pgnw_finish.
	 */
	int			shape_id;
	const char **colnames;
	const int  *colkinds;
	PgnwColumn *columns;		/* ncols */
	/* the plan's parameter types were inferred again (DDL): see pgnw_plan_info */
	bool		retyped;
	/*
	 * and the statement was not run: serialise the values by the new types
	 * and call again (a cursor was not opened either)
	 */
	bool		held;
} PgnwResult;

/*
 * Column buffers stay with result_ops.c after their statement, the big ones
 * too: a loop of big results reuses them instead of having the kernel fault
 * fresh pages in for each one (a 1M-row text column is ~10k faults).  The
 * runtime frees the big ones once no result has needed them for a while.
 * Plain C, no PostgreSQL calls: callable between statements.
 */
/* the bytes of column buffers held now */
extern size_t pgnw_result_held_bytes(void);
/* did the result being read need a buffer past the size always kept? */
extern bool pgnw_result_needed_big(void);
/* free the buffers past that size */
extern void pgnw_result_drop_big(void);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_RESULT_H */
