/*-------------------------------------------------------------------------
 *
 * contract.h
 *		The numbers the bridge and the runtime's TypeScript
 *		(src/runtime/native.ts) must agree on.
 *
 * The bridge exports each of them at load, by the name given in
 * bridge.cc's table (exports.constants); native.ts holds its own copy
 * as compile-time constants (the row-making code reads them on every
 * result) and checkBridgeConstants() compares the two when the worker
 * starts: a bridge and a runtime.js from different builds stop the
 * worker with an error that names each value they disagree on.
 * test/unit/bridge-constants.test.ts compares this file, bridge.cc's
 * table and native.ts without a server.
 *
 * Every enumerator has its value written out: the unit test reads them
 * from this text.  Plain C, no PostgreSQL headers: included by both sides.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_CONTRACT_H
#define PGNW_CONTRACT_H

/* What a statement was (the result's command), by the SPI code it returned. */
typedef enum PgnwCommand
{
	PGNW_CMD_SELECT = 0,
	PGNW_CMD_INSERT = 1,
	PGNW_CMD_UPDATE = 2,
	PGNW_CMD_DELETE = 3,
	PGNW_CMD_MERGE = 4,
	PGNW_CMD_UTILITY = 5
} PgnwCommand;

/*
 * How a result column crosses to JS (see result.h for the buffers of
 * each kind and convert.cc for the JS values).
 */
typedef enum PgnwColKind
{
	PGNW_COL_BOOL = 1,			/* uint8_t: 0/1 */
	PGNW_COL_INT32 = 2,			/* int32_t: int2, int4 */
	PGNW_COL_FLOAT64 = 3,		/* double: float4, float8 */
	PGNW_COL_INT64 = 4,			/* int64_t: int8 */
	PGNW_COL_DATE = 5,			/* double: Unix ms; +-Infinity for +-infinity */
	PGNW_COL_TEXT = 6,			/* bytes + offsets: text types, numeric, text form of the rest */
	PGNW_COL_JSON = 7,			/* bytes + offsets: json/jsonb text, parsed by JS */
	PGNW_COL_BYTES = 8,			/* bytes + offsets: bytea */
	PGNW_COL_VALUES = 9			/* PgnwValue per row: arrays */
} PgnwColKind;

/* log levels of log(level, message) */
enum
{
	PGNW_LOG_DEBUG = 0,
	PGNW_LOG_INFO = 1,
	PGNW_LOG_NOTICE = 2,
	PGNW_LOG_WARNING = 3,
	PGNW_LOG_ERROR = 4
};

/*
 * The result header: a Float64Array shared with JS (resultHeader()),
 * written by every execute/executeText/cursorFetch, so the figures of a
 * result cross without making JS values.  Slots:
 */
enum
{
	PGNW_H_COMMAND = 0,			/* PgnwCommand */
	PGNW_H_COUNT = 1,			/* rows returned or affected */
	PGNW_H_SHAPE = 2,			/* shape id (0: not cached) */
	PGNW_H_NROWS = 3,
	PGNW_H_NCOLS = 4,
	PGNW_H_LAYOUT = 5,			/* PGNW_LAYOUT_* */
	PGNW_H_FIELDS = 6,			/* 1: the return value is [payload, fields, kinds] */
	PGNW_H_RETYPED = 7,			/* PGNW_RETYPED* or 0 */
	PGNW_H_KEPT = 8,			/* 1: the result needed big column buffers, kept
								 * for the next one (dropResultBuffers() frees them) */
	PGNW_H_SIZE = 9
};

/* values of the PGNW_H_RETYPED slot */
enum
{
	PGNW_RETYPED = 1,			/* the plan's parameter types changed: planTypes() */
	PGNW_RETYPED_HELD = 2		/* and the call was not run: serialise again, call again */
};

/* how the payload of a result is laid out (PGNW_H_LAYOUT) */
enum
{
	PGNW_LAYOUT_NONE = 0,		/* no rows: undefined (or [undefined, fields, kinds]) */
	PGNW_LAYOUT_SCALAR = 1,		/* one row, one column: the value itself */
	PGNW_LAYOUT_FLAT = 2,		/* a few rows: the values, row-major */
	PGNW_LAYOUT_COLUMNS = 3		/* per column [data, nulls, offsets] (convert.cc) */
};

/*
 * LAYOUT_COLUMNS: the strings of a text column come in chunks of
 * 2^PGNW_TEXT_CHUNK_BITS (row r is data[r >> bits][r & (2^bits - 1)]); a
 * JSON column whose offsets slot is PGNW_JSON_PARSED holds parsed values.
 */
enum
{
	PGNW_TEXT_CHUNK_BITS = 13,
	PGNW_JSON_PARSED = 1
};

/*
 * callStates(): does the caller of a call still wait for the reply?  The
 * same values as the extension's PgnwCallState (messaging_ops.c checks).
 */
enum
{
	PGNW_CALLER_WAITING = 0,
	PGNW_CALLER_TIMED_OUT = 1,	/* gave up: its timeout_ms passed */
	PGNW_CALLER_GONE = 2		/* gave up: cancelled, failed or gone */
};

#endif							/* PGNW_CONTRACT_H */
