/*-------------------------------------------------------------------------
 *
 * result_ops.c
 *		A statement's rows, turned into the columns of result.h as they
 *		come (a DestReceiver) or from an SPI tuple table.
 *
 * One static builder: one statement at a time runs, and the bridge reads
 * its result before the next one starts.  Column buffers are malloc'd, so
 * the bridge can hand them to JS as external ArrayBuffers, and what it
 * leaves is kept for the next statement; buffers past RESULT_KEEP_BYTES only
 * until pgnw_result_drop_big (the runtime calls it once no statement has
 * needed them for a while).
 *
 * A shape is the names and types of a result's columns with what
 * converting them needs (convert_ops.c).  A plan keeps the shape of its
 * last result: as long as the next result has the same column names and
 * types (checked on every execution: PostgreSQL replans after DDL and a
 * SELECT * may then return other columns) it is reused, and its id tells
 * JS that the names and its row maker are still right.  Shapes hold output
 * functions, so any change to pg_type makes new ones.
 *
 * Limits: a text column holds at most 4 GB (offsets are uint32); a result
 * that does not fit in memory fails with 53200 and a hint to use a cursor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "convert_ops.h"
#include "result_ops.h"

struct PgnwShape
{
	MemoryContext cxt;
	int			id;				/* 0: not cached */
	uint64		type_epoch;		/* result_type_epoch when made */
	TupleDesc	desc;			/* a copy: names, types */
	PgnwTypeInfo **tis;
	const char **names;
	int		   *kinds;			/* PgnwColKind */
};

#define RESULT_KEEP_BYTES (256 * 1024)

/* a NULL in a column of PgnwValues is a zeroed value */
StaticAssertDecl(PGNW_NULL == 0, "PGNW_NULL must be 0");

typedef struct ResultBuilder
{
	bool		started;		/* a statement sent rows (its descriptor) */
	int			ncols;
	int			cap_cols;
	PgnwColumn *cols;
	uint64		nrows;
	uint64		cap_rows;
	PgnwShape  *shape;
	MemoryContext row_cxt;		/* output function garbage, reset per row */
	MemoryContext keep_cxt;		/* array values: live until pgnw_finish */
} ResultBuilder;

static ResultBuilder result_builder;

/* Bumped whenever a pg_type row changes (syscache invalidation). */
static uint64 result_type_epoch = 1;
static bool result_type_callback_registered = false;
static int	result_next_shape_id = 0;

/* ------------------------------------------------------------- shapes */

/* syscache callback on pg_type: every cached shape is stale */
static void
result_type_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	result_type_epoch++;
}

/* Does shape still describe desc (names, types, no pg_type change since)? */
static bool
result_shape_matches(const PgnwShape *shape, TupleDesc desc)
{
	if (shape == NULL || shape->type_epoch != result_type_epoch ||
		shape->desc->natts != desc->natts)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(shape->desc, i);
		Form_pg_attribute b = TupleDescAttr(desc, i);

		if (a->atttypid != b->atttypid || a->attisdropped != b->attisdropped ||
			strcmp(NameStr(a->attname), NameStr(b->attname)) != 0)
			return false;
	}
	return true;
}

/* A shape for desc: cached ones live under TopMemoryContext, others in the current context. */
static PgnwShape *
result_shape_make(TupleDesc desc, bool cached)
{
	MemoryContext cxt = AllocSetContextCreate(cached ? TopMemoryContext : CurrentMemoryContext,
											  "pg_node_worker result shape",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PgnwShape  *shape = (PgnwShape *) palloc0(sizeof(PgnwShape));
	int			n = desc->natts;

	shape->cxt = cxt;
	shape->id = 0;
	shape->type_epoch = result_type_epoch;
	shape->desc = CreateTupleDescCopy(desc);
	shape->tis = (PgnwTypeInfo **) palloc0(sizeof(PgnwTypeInfo *) * Max(n, 1));
	shape->names = (const char **) palloc0(sizeof(char *) * Max(n, 1));
	shape->kinds = (int *) palloc0(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(shape->desc, i);

		shape->tis[i] = pgnw_convert_type_info(att->atttypid);
		shape->names[i] = NameStr(att->attname);
		shape->kinds[i] = shape->tis[i]->col_kind;
	}
	MemoryContextSwitchTo(old);
	if (cached)
	{
		if (result_next_shape_id >= INT_MAX - 1)
			result_next_shape_id = 0;
		shape->id = ++result_next_shape_id;
	}
	return shape;
}

/* The shape for a result with this descriptor; cache NULL: made for this result only. */
static PgnwShape *
result_shape_for(PgnwShape **cache, TupleDesc desc)
{
	if (cache == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(result_builder.keep_cxt);
		PgnwShape  *shape = result_shape_make(desc, false);

		MemoryContextSwitchTo(old);
		return shape;
	}
	if (!result_type_callback_registered)
	{
		CacheRegisterSyscacheCallback(TYPEOID, result_type_changed, (Datum) 0);
		result_type_callback_registered = true;
	}
	if (!result_shape_matches(*cache, desc))
	{
		PgnwShape  *shape = result_shape_make(desc, true);

		if (*cache)
			MemoryContextDelete((*cache)->cxt);
		*cache = shape;
	}
	return *cache;
}

/* Free a plan's cached shape. */
void
pgnw_result_shape_free(PgnwShape *shape)
{
	if (shape)
		MemoryContextDelete(shape->cxt);
}

/* ------------------------------------------------------------ buffers */

/* *ptr grown (doubling) to hold need bytes; 53200 when malloc says no */
static void
result_grow(void **ptr, size_t *cap, size_t need)
{
	size_t		n;
	void	   *p;

	if (need <= *cap)
		return;
	n = *cap < 64 ? 64 : *cap;
	while (n < need)
		n *= 2;
	p = realloc(*ptr, n);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building a result of %llu rows",
						(unsigned long long) result_builder.nrows),
				 errhint("Use tx.sql.cursor for big results.")));
	*ptr = p;
	*cap = n;
}

/* bytes per row in a column's data buffer */
static inline size_t
result_col_width(int kind)
{
	switch (kind)
	{
		case PGNW_COL_BOOL:
			return 1;
		case PGNW_COL_INT32:
			return 4;
		case PGNW_COL_FLOAT64:
		case PGNW_COL_INT64:
		case PGNW_COL_DATE:
			return 8;
		case PGNW_COL_VALUES:
			return sizeof(PgnwValue);
		default:
			return 4;			/* offsets */
	}
}

/* the kinds whose values are bytes + offsets */
static inline bool
result_col_has_bytes(int kind)
{
	return kind == PGNW_COL_TEXT || kind == PGNW_COL_JSON || kind == PGNW_COL_BYTES;
}

/* room for rows rows in every column */
static void
result_reserve(uint64 rows)
{
	ResultBuilder *b = &result_builder;

	if (rows <= b->cap_rows)
		return;
	if (rows < 16)
		rows = 16;
	if (rows < b->cap_rows * 2)
		rows = b->cap_rows * 2;
	for (int c = 0; c < b->ncols; c++)
	{
		PgnwColumn *col = &b->cols[c];

		result_grow(&col->data, &col->data_cap, result_col_width(col->kind) * (rows + 1));
		if (col->has_nulls)
			result_grow((void **) &col->nulls, &col->nulls_cap, rows);
	}
	b->cap_rows = rows;
}

/* free one buffer if it is past RESULT_KEEP_BYTES */
static void
result_drop_if_big(void **ptr, size_t *cap)
{
	if (*cap > RESULT_KEEP_BYTES)
	{
		free(*ptr);
		*ptr = NULL;
		*cap = 0;
	}
}

/* at least n column slots, with the buffers they hold */
static void
result_prepare_columns(int n)
{
	ResultBuilder *b = &result_builder;

	if (n > b->cap_cols)
	{
		PgnwColumn *cols = (PgnwColumn *) realloc(b->cols, sizeof(PgnwColumn) * n);

		if (cols == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		memset(cols + b->cap_cols, 0, sizeof(PgnwColumn) * (n - b->cap_cols));
		b->cols = cols;
		b->cap_cols = n;
	}
}

/* Plain C: the bytes of column buffers held now (see result.h). */
size_t
pgnw_result_held_bytes(void)
{
	ResultBuilder *b = &result_builder;
	size_t		total = 0;

	for (int c = 0; c < b->cap_cols; c++)
		total += b->cols[c].data_cap + b->cols[c].nulls_cap + b->cols[c].bytes_cap;
	return total;
}

/* Plain C: did the result being read need a buffer past RESULT_KEEP_BYTES? */
bool
pgnw_result_needed_big(void)
{
	ResultBuilder *b = &result_builder;

	if (!b->started)
		return false;
	for (int c = 0; c < b->ncols; c++)
	{
		PgnwColumn *col = &b->cols[c];

		if (result_col_width(col->kind) * (b->nrows + 1) > RESULT_KEEP_BYTES ||
			(col->has_nulls && b->nrows > RESULT_KEEP_BYTES) ||
			col->nbytes > RESULT_KEEP_BYTES)
			return true;
	}
	return false;
}

/* Plain C: free the buffers past RESULT_KEEP_BYTES; the small ones stay. */
void
pgnw_result_drop_big(void)
{
	ResultBuilder *b = &result_builder;

	for (int c = 0; c < b->cap_cols; c++)
	{
		PgnwColumn *col = &b->cols[c];

		result_drop_if_big(&col->data, &col->data_cap);
		result_drop_if_big((void **) &col->nulls, &col->nulls_cap);
		result_drop_if_big((void **) &col->bytes, &col->bytes_cap);
	}
}

/* Start the columns of a result with this descriptor (expected_rows: a hint). */
static void
result_start(PgnwShape **cache, TupleDesc desc, uint64 expected_rows)
{
	ResultBuilder *b = &result_builder;
	int			n = desc->natts;
	uint64		rows = UINT64_MAX;

	b->shape = result_shape_for(cache, desc);
	result_prepare_columns(n);
	b->ncols = n;
	b->nrows = 0;
	b->cap_rows = 0;
	for (int c = 0; c < n; c++)
	{
		PgnwColumn *col = &b->cols[c];
		uint64		fit;

		col->kind = b->shape->kinds[c];
		col->has_nulls = false;
		col->ascii = true;
		col->nbytes = 0;
		/* what each column has room for with the buffers it kept */
		fit = col->data_cap / result_col_width(col->kind);
		rows = Min(rows, fit > 0 ? fit - 1 : 0);
	}
	b->cap_rows = n > 0 ? rows : 0;
	result_reserve(Max(expected_rows, 1));
	for (int c = 0; c < n; c++)
		if (result_col_has_bytes(b->cols[c].kind))
			((uint32_t *) b->cols[c].data)[0] = 0;
	if (b->row_cxt == NULL)
		b->row_cxt = AllocSetContextCreate(TopMemoryContext, "pg_node_worker result row",
										   ALLOCSET_SMALL_SIZES);
	b->started = true;
}

/* ---------------------------------------------------------------- rows */

/* are the len bytes at p all ASCII (JS can take them as Latin-1)? */
static inline bool
result_all_ascii(const char *p, size_t len)
{
	size_t		i = 0;
	uint64		acc = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64		w;

		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < len; i++)
		acc |= (unsigned char) p[i];
	return (acc & UINT64CONST(0x8080808080808080)) == 0;
}

/* row r of a text-kind column: the len bytes at p */
static inline void
result_col_append(PgnwColumn *col, uint64 r, const char *p, size_t len)
{
	uint32_t   *off = (uint32_t *) col->data;
	uint64		end = col->nbytes + len;

	if (end > UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a result column holds more than 4 GB of text"),
				 errhint("Use tx.sql.cursor for big results.")));
	if (len > 0)
	{
		result_grow((void **) &col->bytes, &col->bytes_cap, end);
		memcpy(col->bytes + col->nbytes, p, len);
		if (col->ascii && !result_all_ascii(p, len))
			col->ascii = false;
	}
	col->nbytes = end;
	off[r + 1] = (uint32_t) end;
}

/* row r of col is NULL (the column gets a nulls array on its first NULL) */
static void
result_col_set_null(PgnwColumn *col, uint64 r)
{
	ResultBuilder *b = &result_builder;

	if (!col->has_nulls)
	{
		result_grow((void **) &col->nulls, &col->nulls_cap, b->cap_rows);
		memset(col->nulls, 0, b->cap_rows);
		col->has_nulls = true;
	}
	col->nulls[r] = 1;
	/* a zeroed value: 0, 0.0, or a PgnwValue of kind PGNW_NULL */
	if (result_col_has_bytes(col->kind))
		((uint32_t *) col->data)[r + 1] = (uint32_t) col->nbytes;
	else
		memset((char *) col->data + r * result_col_width(col->kind), 0, result_col_width(col->kind));
}

/*
 * Row r of a text-kind column from Datum d; returns true when it used the
 * row context (reset after the row).
 */
static inline bool
result_add_text(PgnwColumn *col, PgnwTypeInfo *ti, uint64 r, Datum d)
{
	ResultBuilder *b = &result_builder;

	if (ti->read == PGNW_READ_OUTPUT)
	{
		MemoryContext old = MemoryContextSwitchTo(b->row_cxt);
		char	   *s = OutputFunctionCall(&ti->outfunc, d);

		MemoryContextSwitchTo(old);
		result_col_append(col, r, s, strlen(s));
		return true;
	}
	if (ti->read == PGNW_READ_NAME)
	{
		const char *s = NameStr(*DatumGetName(d));

		result_col_append(col, r, s, strlen(s));
		return false;
	}
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(d);
		bool		used_row_cxt = false;

		if (VARATT_IS_COMPRESSED(v) || VARATT_IS_EXTERNAL(v))
		{
			MemoryContext old = MemoryContextSwitchTo(b->row_cxt);

			v = pg_detoast_datum_packed(v);
			MemoryContextSwitchTo(old);
			used_row_cxt = true;
		}
		result_col_append(col, r, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		return used_row_cxt;
	}
}

/* one row (values/isnull as from heap_deform_tuple or a slot) */
static void
result_add_row(Datum *values, bool *isnull)
{
	ResultBuilder *b = &result_builder;
	uint64		r = b->nrows;
	bool		used_row_cxt = false;

	if (r >= b->cap_rows)
		result_reserve(r + 1);
	for (int c = 0; c < b->ncols; c++)
	{
		PgnwColumn *col = &b->cols[c];
		PgnwTypeInfo *ti = b->shape->tis[c];
		Datum		d = values[c];

		if (col->has_nulls)
			col->nulls[r] = 0;
		if (isnull[c])
		{
			result_col_set_null(col, r);
			continue;
		}
		switch (col->kind)
		{
			case PGNW_COL_BOOL:
				((uint8_t *) col->data)[r] = DatumGetBool(d) ? 1 : 0;
				break;
			case PGNW_COL_INT32:
				((int32_t *) col->data)[r] = ti->typid == INT2OID ? DatumGetInt16(d) : DatumGetInt32(d);
				break;
			case PGNW_COL_FLOAT64:
				((double *) col->data)[r] = ti->typid == FLOAT4OID ? (double) DatumGetFloat4(d) : DatumGetFloat8(d);
				break;
			case PGNW_COL_INT64:
				((int64_t *) col->data)[r] = DatumGetInt64(d);
				break;
			case PGNW_COL_DATE:
				((double *) col->data)[r] = pgnw_convert_date_ms(d, ti->typid);
				break;
			case PGNW_COL_VALUES:
				{
					MemoryContext old = MemoryContextSwitchTo(b->keep_cxt);

					pgnw_convert_datum(d, ti, &((PgnwValue *) col->data)[r]);
					MemoryContextSwitchTo(old);
				}
				break;
			default:			/* text kinds */
				if (result_add_text(col, ti, r, d))
					used_row_cxt = true;
				break;
		}
	}
	b->nrows = r + 1;
	if (used_row_cxt)
		MemoryContextReset(b->row_cxt);
	if ((r & 4095) == 4095)
		CHECK_FOR_INTERRUPTS();
}

/* ------------------------------------------------------------ sources */

/* A statement is about to run: no result yet; array values go to the current context. */
void
pgnw_result_begin(void)
{
	result_builder.started = false;
	result_builder.keep_cxt = CurrentMemoryContext;
}

/* Does nothing of the result live in the statement's memory (see result_ops.h)? */
bool
pgnw_result_outlives_statement(void)
{
	ResultBuilder *b = &result_builder;

	if (!b->started)
		return true;
	if (b->shape->id == 0)
		return false;			/* names in the statement's memory */
	for (int c = 0; c < b->ncols; c++)
		if (b->cols[c].kind == PGNW_COL_VALUES)
			return false;		/* array values in SPI's memory */
	return true;
}

/* Plain C: the result was read (or its statement failed); the next one starts afresh. */
void
pgnw_result_forget(void)
{
	result_builder.started = false;
}

/* Every tuple of SPI_tuptable. */
void
pgnw_result_from_tuptable(PgnwShape **cache)
{
	SPITupleTable *tt = SPI_tuptable;
	TupleDesc	desc = tt->tupdesc;
	int			n = desc->natts;
	Datum	   *values = (Datum *) palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = (bool *) palloc(sizeof(bool) * Max(n, 1));
	uint64		nrows = SPI_processed;

	result_start(cache, desc, nrows);
	for (uint64 r = 0; r < nrows; r++)
	{
		heap_deform_tuple(tt->vals[r], desc, values, nulls);
		result_add_row(values, nulls);
	}
	/* the rows are copied: a transaction's SPI connection would keep the table until its end */
	SPI_freetuptable(tt);
}

/* the receiver's rStartup: the statement's descriptor */
static void
result_receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	result_start(((PgnwReceiver *) self)->cache, typeinfo, 0);
}

/* the receiver's receiveSlot: one row */
static bool
result_receiver_slot(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getallattrs(slot);
	result_add_row(slot->tts_values, slot->tts_isnull);
	return true;
}

/* the receiver's rShutdown and rDestroy: nothing to do */
static void
result_receiver_noop(DestReceiver *self)
{
}

/* A receiver (on the caller's stack) that streams rows into the columns. */
void
pgnw_result_receiver_init(PgnwReceiver *receiver, PgnwShape **cache)
{
	memset(receiver, 0, sizeof(*receiver));
	receiver->pub.receiveSlot = result_receiver_slot;
	receiver->pub.rStartup = result_receiver_startup;
	receiver->pub.rShutdown = result_receiver_noop;
	receiver->pub.rDestroy = result_receiver_noop;
	receiver->pub.mydest = DestTuplestore;	/* any but DestNone/DestSPI */
	receiver->cache = cache;
}

/* the command a statement was, by the SPI code it returned */
static int
result_command(int spi_code)
{
	switch (spi_code)
	{
		case SPI_OK_SELECT:
		case SPI_OK_SELINTO:
		case SPI_OK_FETCH:
			return PGNW_CMD_SELECT;
		case SPI_OK_INSERT:
		case SPI_OK_INSERT_RETURNING:
			return PGNW_CMD_INSERT;
		case SPI_OK_UPDATE:
		case SPI_OK_UPDATE_RETURNING:
			return PGNW_CMD_UPDATE;
		case SPI_OK_DELETE:
		case SPI_OK_DELETE_RETURNING:
			return PGNW_CMD_DELETE;
#ifdef SPI_OK_MERGE
		case SPI_OK_MERGE:
			return PGNW_CMD_MERGE;
#endif
		default:
			return PGNW_CMD_UTILITY;
	}
}

/* What the bridge reads of a statement that returned spi_code. */
void
pgnw_result_fill(PgnwResult *res, int spi_code, bool streamed)
{
	ResultBuilder *b = &result_builder;

	res->command = result_command(spi_code);
	res->processed = SPI_processed;
	if (!b->started)
		return;
	res->ncols = b->ncols;
	res->nrows = b->nrows;
	res->columns = b->cols;
	res->shape_id = b->shape->id;
	res->colnames = b->shape->names;
	res->colkinds = b->shape->kinds;
	if (streamed)
		res->processed = b->nrows;
}
