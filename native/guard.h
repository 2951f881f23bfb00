/*-------------------------------------------------------------------------
 *
 * guard.h
 *		The error boundary between JavaScript and PostgreSQL.
 *
 * Everything the N-API bridge (bridge.cc) asks of PostgreSQL goes through
 * the functions declared here, implemented in guard.c.  Each runs one
 * PostgreSQL operation inside PG_TRY on the main thread; an ERROR is copied
 * into a plain PgnwError (malloc'd strings) and the function returns false,
 * so no longjmp ever crosses a V8 frame.  The bridge never includes
 * PostgreSQL headers and never calls PostgreSQL directly.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_GUARD_H
#define PGNW_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C"
{
#endif

/* An error copied out of PostgreSQL's ErrorData.  Strings may be NULL. */
typedef struct PgnwError
{
	char		code[6];		/* SQLSTATE, NUL-terminated */
	char	   *severity;		/* "ERROR", ... */
	char	   *message;
	char	   *detail;
	char	   *hint;
	char	   *context;
	char	   *schema;
	char	   *table;
	char	   *column;
	char	   *datatype;
	char	   *constraint;
	char	   *internal_query;
	int			position;		/* 1-based cursor position in the query, 0 = none */
	int			internal_position;
	char	   *file;
	int			line;
	char	   *routine;
} PgnwError;

extern void pgnw_error_clear(PgnwError *err);
/* an error raised by the bridge itself (no PostgreSQL involved) */
extern void pgnw_error_set(PgnwError *err, const char *code, const char *message,
						   const char *hint);

/* How a value crosses to JS. */
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

typedef struct PgnwValue PgnwValue;

/* an array value: items in row-major order, dims as in PostgreSQL */
typedef struct PgnwArray
{
	int			ndims;
	int			dims[6];
	int			nitems;
	PgnwValue  *items;
} PgnwArray;

struct PgnwValue
{
	uint8_t		kind;
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

/*
 * How a result column crosses to JS.  Results are built column by column
 * (native/guard.c, a DestReceiver or an SPI tuple table): fixed-width kinds
 * as one C array each (the bridge hands it to JS as a typed array), text
 * kinds as one byte buffer plus nrows + 1 offsets, anything else (arrays)
 * as one PgnwValue per row.
 */
typedef enum PgnwColKind
{
	PGNW_COL_BOOL = 1,			/* uint8_t: 0/1 */
	PGNW_COL_INT32,				/* int32_t: int2, int4 */
	PGNW_COL_FLOAT64,			/* double: float4, float8 */
	PGNW_COL_INT64,				/* int64_t: int8 */
	PGNW_COL_DATE,				/* double: Unix ms; +-Infinity for +-infinity */
	PGNW_COL_TEXT,				/* bytes + offsets: text types, numeric, text form of the rest */
	PGNW_COL_JSON,				/* bytes + offsets: json/jsonb text, parsed by JS */
	PGNW_COL_BYTES,				/* bytes + offsets: bytea */
	PGNW_COL_VALUES				/* PgnwValue per row: arrays */
} PgnwColKind;

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
	/* capacities in bytes (private to guard.c) */
	size_t		data_cap;
	size_t		nulls_cap;
	size_t		bytes_cap;
} PgnwColumn;

/*
 * The bridge may take ownership of a column's malloc'd buffers (and free()
 * them later): it sets the pointer to NULL and the capacity to 0.  Whatever
 * it leaves stays with guard.c and is reused by the next statement.
 */

typedef enum PgnwCommand
{
	PGNW_CMD_SELECT = 0,
	PGNW_CMD_INSERT,
	PGNW_CMD_UPDATE,
	PGNW_CMD_DELETE,
	PGNW_CMD_MERGE,
	PGNW_CMD_UTILITY
} PgnwCommand;

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

/* A parameter value as the bridge extracted it from JS. */
typedef struct PgnwParam
{
	uint8_t		kind;			/* PGNW_NULL, BOOL, NUMBER, BIGINT, TEXT, BYTES */
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
	}			u;
} PgnwParam;

typedef struct PgnwPlanInfo
{
	int			id;
	int			nparams;
	const unsigned int *param_types;
	const unsigned int *param_elem_types;	/* 0 when not an array type */
} PgnwPlanInfo;

/*
 * Run op(arg) inside PG_TRY on the main thread.  On ERROR the error is
 * copied into *err and false is returned.  op must not call V8 or N-API.
 */
typedef void (*PgnwOperation) (void *arg);
extern bool pgnw_guard(PgnwOperation op, void *arg, PgnwError *err);

/* true on the main thread; otherwise sets err (code 55000) */
extern bool pgnw_check_thread(PgnwError *err);

/* statements */
extern bool pgnw_prepare(const char *sql, PgnwPlanInfo *info, PgnwError *err);
/* the parameter types of a prepared statement now; false if plan_id is not one */
extern bool pgnw_plan_info(int plan_id, PgnwPlanInfo *info);
extern void pgnw_free_plan(int id);
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
extern bool pgnw_cursor_open(int plan_id, const char *sql, int nparams,
							 const PgnwParam *params, char *name, PgnwError *err);
/* plan_id: the plan the cursor was opened on (for its cached shape), or -1 */
extern bool pgnw_cursor_fetch(const char *name, long count, int plan_id,
							  PgnwResult *res, PgnwError *err);
extern bool pgnw_cursor_close(const char *name, PgnwError *err);

/* transactions: depth 0 = none, 1 = transaction, >1 = savepoints */
extern int	pgnw_xact_depth(void);
extern bool pgnw_begin(PgnwError *err);
extern bool pgnw_commit(PgnwError *err);
extern bool pgnw_rollback(PgnwError *err);

/* logging and settings */
extern bool pgnw_log(int level, const char *msg, PgnwError *err);
extern bool pgnw_get_setting(const char *name, char **value, PgnwError *err);
extern bool pgnw_set_ps_display(const char *text, PgnwError *err);

/* log levels understood by pgnw_log */
enum
{
	PGNW_LOG_DEBUG = 0,
	PGNW_LOG_INFO,
	PGNW_LOG_NOTICE,
	PGNW_LOG_WARNING,
	PGNW_LOG_ERROR
};

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_GUARD_H */
