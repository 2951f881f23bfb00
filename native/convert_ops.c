/*-------------------------------------------------------------------------
 *
 * convert_ops.c
 *		Which JS value each PostgreSQL type becomes, and Datum to PgnwValue.
 *
 * convert_table below is the one place that says how a type crosses:
 * its value kind (PgnwKind: an array element or a parameter-like value),
 * its column kind (PgnwColKind: how result.h's builder stores a column of
 * it) and how its text is read.  A type not in the table is an array
 * (PGNW_ARRAY, a column of PgnwValues) when it has an element type, and
 * otherwise crosses as its text form (the type's output function).
 * Domains convert as their base type.
 *
 * Limits: arrays keep at most PGNW_ARRAY_MAXDIM dimensions; dates and
 * timestamps must fit a JS Date (8.64e15 ms either side of 1970), else the
 * statement fails with 22008 and a hint to select ::text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/array.h"
#include "utils/lsyscache.h"

#include "convert_ops.h"

/* one row of the conversion table */
typedef struct ConvertRule
{
	Oid			typid;
	PgnwKind	kind;
	PgnwColKind col_kind;
	PgnwRead	read;
} ConvertRule;

static const ConvertRule convert_table[] = {
	{BOOLOID, PGNW_BOOL, PGNW_COL_BOOL, PGNW_READ_DATUM},
	{INT2OID, PGNW_NUMBER, PGNW_COL_INT32, PGNW_READ_DATUM},
	{INT4OID, PGNW_NUMBER, PGNW_COL_INT32, PGNW_READ_DATUM},
	{FLOAT4OID, PGNW_NUMBER, PGNW_COL_FLOAT64, PGNW_READ_DATUM},
	{FLOAT8OID, PGNW_NUMBER, PGNW_COL_FLOAT64, PGNW_READ_DATUM},
	{INT8OID, PGNW_BIGINT, PGNW_COL_INT64, PGNW_READ_DATUM},
	{TEXTOID, PGNW_TEXT, PGNW_COL_TEXT, PGNW_READ_DATUM},
	{VARCHAROID, PGNW_TEXT, PGNW_COL_TEXT, PGNW_READ_DATUM},
	{BPCHAROID, PGNW_TEXT, PGNW_COL_TEXT, PGNW_READ_DATUM},
	{NAMEOID, PGNW_TEXT, PGNW_COL_TEXT, PGNW_READ_NAME},
	{JSONOID, PGNW_JSON, PGNW_COL_JSON, PGNW_READ_DATUM},
	{JSONBOID, PGNW_JSON, PGNW_COL_JSON, PGNW_READ_OUTPUT},
	{BYTEAOID, PGNW_BYTES, PGNW_COL_BYTES, PGNW_READ_DATUM},
	{DATEOID, PGNW_DATE, PGNW_COL_DATE, PGNW_READ_DATUM},
	{TIMESTAMPOID, PGNW_DATE, PGNW_COL_DATE, PGNW_READ_DATUM},
	{TIMESTAMPTZOID, PGNW_DATE, PGNW_COL_DATE, PGNW_READ_DATUM},
};

/* Fill ti's kinds from the table, an array's element, or the text form. */
static void
convert_classify(PgnwTypeInfo *ti, Oid base)
{
	Oid			elem;

	for (int i = 0; i < (int) lengthof(convert_table); i++)
	{
		if (convert_table[i].typid == base)
		{
			ti->kind = convert_table[i].kind;
			ti->col_kind = convert_table[i].col_kind;
			ti->read = convert_table[i].read;
			return;
		}
	}
	elem = get_element_type(base);
	if (OidIsValid(elem))
	{
		ti->kind = PGNW_ARRAY;
		ti->col_kind = PGNW_COL_VALUES;
		ti->read = PGNW_READ_DATUM;
		ti->elemtype = elem;
		get_typlenbyvalalign(elem, &ti->elmlen, &ti->elmbyval, &ti->elmalign);
		ti->elem = pgnw_convert_type_info(elem);
		return;
	}
	ti->kind = PGNW_TEXT;
	ti->col_kind = PGNW_COL_TEXT;
	ti->read = PGNW_READ_OUTPUT;
}

/* in CurrentMemoryContext (output functions' fn_mcxt too) */
PgnwTypeInfo *
pgnw_convert_type_info(Oid typid)
{
	PgnwTypeInfo *ti = (PgnwTypeInfo *) palloc0(sizeof(PgnwTypeInfo));
	Oid			base = getBaseType(typid);

	convert_classify(ti, base);
	if (ti->read == PGNW_READ_OUTPUT)
	{
		Oid			outfn;
		bool		isvarlena;

		getTypeOutputInfo(typid, &outfn, &isvarlena);
		fmgr_info(outfn, &ti->outfunc);
	}
	ti->typid = base;
	return ti;
}

/* The ERROR of pgnw_convert_date_ms: out of a JS Date's range. */
void
pgnw_convert_date_out_of_range(Oid typid)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("%s out of range for a JavaScript Date", format_type_be(typid)),
			 errdetail("A Date holds 8.64e15 ms either side of 1970 (years 271822 BC to 275760)."),
			 errhint("Read it as text: select it with ::text.")));
}

/* v is the text s (kind: a text kind) */
static void
convert_set_text(PgnwValue *v, PgnwKind kind, const char *s)
{
	v->kind = kind;
	v->u.s.ptr = s;
	v->u.s.len = (int) strlen(s);
}

/* An array value as a tree of PgnwValues, in CurrentMemoryContext (copies the array). */
static void
convert_array(Datum d, PgnwTypeInfo *ti, PgnwValue *v)
{
	ArrayType  *arr = DatumGetArrayTypePCopy(d);
	PgnwArray  *out = (PgnwArray *) palloc0(sizeof(PgnwArray));
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, ti->elemtype, ti->elmlen, ti->elmbyval, ti->elmalign,
					  &elems, &nulls, &n);
	out->ndims = Min(ARR_NDIM(arr), PGNW_ARRAY_MAXDIM);
	for (int i = 0; i < out->ndims; i++)
		out->dims[i] = ARR_DIMS(arr)[i];
	out->nitems = n;
	out->items = (PgnwValue *) palloc0(sizeof(PgnwValue) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			out->items[i].kind = PGNW_NULL;
		else
			pgnw_convert_datum(elems[i], ti->elem, &out->items[i]);
	}
	v->kind = PGNW_ARRAY;
	v->u.arr = out;
}

/* A text-kind value: its bytes in d (detoasted), a name, or the output function's text. */
static void
convert_text(Datum d, PgnwTypeInfo *ti, PgnwValue *v)
{
	if (ti->read == PGNW_READ_OUTPUT)
		convert_set_text(v, ti->kind, OutputFunctionCall(&ti->outfunc, d));
	else if (ti->read == PGNW_READ_NAME)
		convert_set_text(v, ti->kind, NameStr(*DatumGetName(d)));
	else
	{
		struct varlena *t = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

		v->kind = ti->kind;
		v->u.s.ptr = VARDATA_ANY(t);
		v->u.s.len = VARSIZE_ANY_EXHDR(t);
	}
}

/* One value; text points into the (copied) array or palloc'd output. */
void
pgnw_convert_datum(Datum d, PgnwTypeInfo *ti, PgnwValue *v)
{
	switch (ti->kind)
	{
		case PGNW_BOOL:
			v->kind = PGNW_BOOL;
			v->u.b = DatumGetBool(d);
			break;
		case PGNW_NUMBER:
			v->kind = PGNW_NUMBER;
			if (ti->typid == INT2OID)
				v->u.d = DatumGetInt16(d);
			else if (ti->typid == INT4OID)
				v->u.d = DatumGetInt32(d);
			else if (ti->typid == FLOAT4OID)
				v->u.d = DatumGetFloat4(d);
			else
				v->u.d = DatumGetFloat8(d);
			break;
		case PGNW_BIGINT:
			v->kind = PGNW_BIGINT;
			v->u.i = DatumGetInt64(d);
			break;
		case PGNW_BYTES:
		case PGNW_TEXT:
		case PGNW_JSON:
			convert_text(d, ti, v);
			break;
		case PGNW_DATE:
			{
				double		ms = pgnw_convert_date_ms(d, ti->typid);

				if (isinf(ms))
					convert_set_text(v, PGNW_TEXT, ms > 0 ? "infinity" : "-infinity");
				else
				{
					v->kind = PGNW_DATE;
					v->u.d = ms;
				}
			}
			break;
		case PGNW_ARRAY:
			convert_array(d, ti, v);
			break;
		default:
			v->kind = PGNW_NULL;
			break;
	}
}
