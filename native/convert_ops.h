/*-------------------------------------------------------------------------
 *
 * convert_ops.h
 *		Datum to PgnwValue / column cell, for the operations of the other
 *		*_ops.c files.  Runs only inside pgnw_guard (see guard.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_CONVERT_OPS_H
#define PGNW_CONVERT_OPS_H

#ifdef __cplusplus
#error "convert_ops.h is PostgreSQL's side of the bridge: .cc files use convert.h"
#endif

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/timestamp.h"

#include "../extension/compat.h"
#include "contract.h"
#include "convert.h"

/* how a value's text (text kinds) is read */
typedef enum PgnwRead
{
	PGNW_READ_DATUM = 0,		/* from the Datum itself (by value, or a varlena) */
	PGNW_READ_NAME,				/* name: a C string in a fixed-size Datum */
	PGNW_READ_OUTPUT			/* the type's output function */
} PgnwRead;

/* How to turn a column (or array element) of one type into JS. */
typedef struct PgnwTypeInfo
{
	Oid			typid;			/* the base type */
	PgnwKind	kind;
	PgnwColKind col_kind;
	PgnwRead	read;
	FmgrInfo	outfunc;		/* read == PGNW_READ_OUTPUT */
	/* arrays */
	Oid			elemtype;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	struct PgnwTypeInfo *elem;
} PgnwTypeInfo;

/* the farthest a JavaScript Date reaches from 1970, in ms */
#define PGNW_JS_DATE_MAX_MS INT64CONST(8640000000000000)

/* The conversion of typid (a domain converts as its base type), in CurrentMemoryContext. */
extern PgnwTypeInfo *pgnw_convert_type_info(Oid typid);

/* One value (an array element, a whole array); text points into d or palloc'd memory. */
extern void pgnw_convert_datum(Datum d, PgnwTypeInfo *ti, PgnwValue *v);

/* Raise the ERROR for a date/timestamp a JS Date cannot hold. */
pg_noreturn extern void pgnw_convert_date_out_of_range(Oid typid);

/*
 * ms since 1970 of a date/timestamp/timestamptz Datum, +-Infinity for
 * +-infinity.  Inline: result columns call it for every cell.
 */
static inline double
pgnw_convert_date_ms(Datum d, Oid typid)
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
		pgnw_convert_date_out_of_range(typid);
	return (double) ms;
}

#endif							/* PGNW_CONVERT_OPS_H */
