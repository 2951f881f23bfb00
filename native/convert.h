/*-------------------------------------------------------------------------
 *
 * convert.h
 *		A PostgreSQL value as plain C, the way it crosses to JS one by one:
 *		array elements and parameters (whole columns cross as PgnwColumn,
 *		result.h).  convert_ops.c fills these from Datums; convert.cc makes
 *		the JS values.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_CONVERT_H
#define PGNW_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C"
{
#endif

/* How a value crosses to JS (the JS type it becomes). */
typedef enum PgnwKind
{
	PGNW_NULL = 0,
	PGNW_BOOL,
	PGNW_NUMBER,				/* int2, int4, float4, float8 */
	PGNW_BIGINT,				/* int8 */
	PGNW_TEXT,					/* text types, numeric, and the text form of the rest */
	PGNW_JSON,					/* json/jsonb text, parsed on the JS side */
	PGNW_BYTES,					/* bytea */
	PGNW_DATE,					/* date/timestamp/timestamptz as Unix ms */
	PGNW_ARRAY
} PgnwKind;

/* dimensions an array value keeps (PostgreSQL's MAXDIM) */
#define PGNW_ARRAY_MAXDIM 6

typedef struct PgnwValue PgnwValue;

/* an array value: items in row-major order, dims as in PostgreSQL */
typedef struct PgnwArray
{
	int			ndims;
	int			dims[PGNW_ARRAY_MAXDIM];
	int			nitems;
	PgnwValue  *items;
} PgnwArray;

struct PgnwValue
{
	uint8_t		kind;			/* PgnwKind */
	union
	{
		bool		b;
		double		d;
		int64_t		i;
		struct
		{
			const char *ptr;
			int			len;
		}			s;
		struct PgnwArray *arr;
	}			u;
};

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_CONVERT_H */
