/*-------------------------------------------------------------------------
 *
 * guard.h
 *		The error boundary between JavaScript and PostgreSQL, and the rule
 *		every file of the bridge keeps.
 *
 * The bridge has two sides that must never meet on one stack frame: V8,
 * whose frames a longjmp must not cross, and PostgreSQL, whose ERRORs are
 * longjmps.  pgnw_guard() runs one PostgreSQL operation inside PG_TRY on
 * the main thread; an ERROR is copied into a plain PgnwError (malloc'd
 * strings) and the call returns false, so the .cc caller can throw it as a
 * JS exception once PostgreSQL is behind it.
 *
 * Naming rule (check every function against it):
 *
 *	- May ereport/elog (or call PostgreSQL code that can raise an ERROR):
 *	  only operations run by pgnw_guard and what they call.  Operations are
 *	  named *_op_* (static: <module>_op_<what>; shared between files:
 *	  pgnw_op_<what>).  All of these live in *_ops.c files (and guard.c);
 *	  the ones shared between files are declared in an X_ops.h, which a
 *	  .cc file cannot include (it needs PostgreSQL's headers and says so).
 *	  They run on the main thread only (pgnw_guard checks) and never call
 *	  N-API or V8.
 *
 *	- Boundary functions: what an X.h declares (plain C, no PostgreSQL
 *	  types) and the statics they use.  They run outside PG_TRY and must not
 *	  raise an ERROR: they reach PostgreSQL through pgnw_guard and report
 *	  failure as false plus a PgnwError.  Two exceptions, both safe without
 *	  PG_TRY: calls that cannot raise an ERROR (pgstat_report_activity,
 *	  reading a variable), and ereport(FATAL) when the transaction machinery
 *	  itself is broken (FATAL leaves through proc_exit; it never longjmps).
 *
 *	- May throw into V8 (set a pending JS exception, call JS): only the
 *	  N-API/V8 code of the .cc files.  They never include PostgreSQL headers
 *	  and C never calls C++, so nothing in PostgreSQL can be on the stack
 *	  when they throw; a PgnwError becomes a JS exception only after the
 *	  boundary function that filled it has returned.  Functions a .cc file
 *	  shares with others are named Pgnw* (bridge.h).
 *
 *	- Neither side: plain C helpers that call neither PostgreSQL nor V8
 *	  (pgnw_error_set, lookups in malloc'd tables) may be called from both.
 *
 * Statics carry their module's prefix (xact_, plan_, result_, ...);
 * non-static C functions are pgnw_<module>_<what> or pgnw_<verb>.
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

/*
 * Run op(arg) inside PG_TRY on the main thread.  On ERROR the error is
 * copied into *err and false is returned; the caller decides what to roll
 * back.  op must not call V8 or N-API.
 */
typedef void (*PgnwOperation) (void *arg);
extern bool pgnw_guard(PgnwOperation op, void *arg, PgnwError *err);

/* true on the main thread; otherwise sets err (code 55000) */
extern bool pgnw_check_thread(PgnwError *err);

/* true when the worker has a database connection; otherwise sets err (08003) */
extern bool pgnw_check_connected(PgnwError *err);

#ifdef __cplusplus
}
#endif

#endif							/* PGNW_GUARD_H */
