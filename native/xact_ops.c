/*-------------------------------------------------------------------------
 *
 * xact_ops.c
 *		Transaction levels and the transaction of one statement, on
 *		PostgreSQL's side of the bridge.
 *
 * Depth 0 means no transaction is open and each statement runs in a
 * transaction of its own; depth 1 is a transaction; deeper levels are
 * subtransactions (savepoints).  A statement that fails inside a level
 * rolls that level back at once and marks it dead: later statements at that
 * level fail with 25P02 and its commit reports that it was rolled back,
 * which is what a client of the same transaction would see.
 *
 * A statement (pgnw_op_start_statement .. pgnw_op_end_statement) holds an
 * active snapshot, maybe an SPI connection, and at depth 0 its own
 * transaction; what it started is remembered here so that the end, or
 * pgnw_xact_after_failure, undoes exactly that.
 *
 * Inside a transaction the statements share one SPI connection, the way a
 * PL/pgSQL function keeps one for all of its statements: the first
 * statement at depth 1 makes it, the commit finishes it, an abort of the
 * transaction pops it (AtEOXact_SPI) and a savepoint's abort leaves it
 * (AtEOSubXact_SPI cleans up what the savepoint's statements left in it).
 * Connecting and finishing made and deleted two memory contexts per
 * statement; what a statement allocates now goes to a context of its own,
 * reset when the statement ends, which is when SPI_finish freed it before.
 *
 * Limits: PGNW_MAX_DEPTH nested levels; one statement at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "xact_ops.h"

#define PGNW_MAX_DEPTH 64

/* transaction levels */
static int	xact_depth = 0;
static bool xact_dead[PGNW_MAX_DEPTH + 1];
static MemoryContext xact_level_context[PGNW_MAX_DEPTH + 1];

/* what the statement in progress started (between its start and its end) */
static bool xact_stmt_implicit = false;
static bool xact_stmt_snapshot = false;
static bool xact_stmt_spi = false;
/* it runs in xact_stmt_cxt (on the transaction's connection); the context it left */
static bool xact_stmt_in_cxt = false;
static MemoryContext xact_stmt_outer_cxt = NULL;

/* the transaction's SPI connection is open (see the file header) */
static bool xact_spi_held = false;
/* what a statement on that connection allocates; reset at the statement's end */
static MemoryContext xact_stmt_cxt = NULL;

/* The current level, for code outside this file. */
int
pgnw_xact_depth(void)
{
	return xact_depth;
}

/* pg_stat_activity's state once nothing runs: idle, or idle in a transaction. */
static void
xact_report_idle(void)
{
	pgstat_report_activity(xact_depth > 0 ? STATE_IDLEINTRANSACTION : STATE_IDLE, NULL);
}

/* The memory context that was current before transaction level `level`. */
static MemoryContext
xact_context_below(int level)
{
	return level <= 1 ? TopMemoryContext : xact_level_context[level - 1];
}

/* Roll back the innermost level (arg: its number) after an error in it. */
static void
xact_op_abort_level(void *arg)
{
	int			level = *(int *) arg;

	if (level <= 1)
	{
		/* pops the transaction's SPI connection too */
		xact_spi_held = false;
		AbortCurrentTransaction();
	}
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(xact_context_below(level));
}

/* Free what the statement that ended allocated on the transaction's connection. */
static void
xact_stmt_memory_reset(void)
{
	if (xact_stmt_cxt != NULL)
		MemoryContextReset(xact_stmt_cxt);
}

/*
 * Forget the statement that failed and roll back whatever it left: its own
 * transaction, or the level it ran in, which is then dead.
 */
void
pgnw_xact_after_failure(void)
{
	PgnwError	abort_err = {0};
	int			level = xact_depth == 0 ? 1 : xact_depth;
	bool		need_abort = xact_depth > 0 ? !xact_dead[xact_depth] : xact_stmt_implicit;

	xact_stmt_spi = false;
	xact_stmt_snapshot = false;
	xact_stmt_implicit = false;
	/* the guard is back in the context the operation started in */
	xact_stmt_in_cxt = false;

	if (need_abort && !pgnw_guard(xact_op_abort_level, &level, &abort_err))
	{
		/* the transaction machinery itself is broken: leave, restart clean */
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not roll back after an error: %s",
						abort_err.message ? abort_err.message : "unknown error")));
	}
	pgnw_error_clear(&abort_err);
	/* after the abort, which may still release what points into it */
	xact_stmt_memory_reset();
	if (xact_depth > 0)
		xact_dead[xact_depth] = true;
	pgstat_report_activity(xact_depth > 0 ? STATE_IDLEINTRANSACTION_ABORTED : STATE_IDLE, NULL);
}

/* false with 25P02 when an earlier statement of this level failed */
bool
pgnw_xact_check_alive(PgnwError *err)
{
	if (xact_depth > 0 && xact_dead[xact_depth])
	{
		pgnw_error_set(err, "25P02",
					   "current transaction is aborted, commands ignored until end of transaction block",
					   "An earlier statement in this transaction failed; let the error leave the transaction callback to roll it back.");
		return false;
	}
	return true;
}

/* Open the next level: a transaction at depth 0, else a savepoint. */
static void
xact_op_begin(void *arg)
{
	if (xact_depth == 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
	}
	else
		BeginInternalSubTransaction(NULL);
}

/* ctx.transaction / tx.transaction: open a transaction or a savepoint. */
bool
pgnw_begin(PgnwError *err)
{
	MemoryContext before = CurrentMemoryContext;

	if (!pgnw_check_connected(err))
		return false;
	if (xact_depth >= PGNW_MAX_DEPTH)
	{
		pgnw_error_set(err, "54000", "too many nested transactions", NULL);
		return false;
	}
	if (!pgnw_xact_check_alive(err))
		return false;
	if (!pgnw_guard(xact_op_begin, NULL, err))
	{
		if (xact_depth > 0)
			pgnw_xact_after_failure();
		return false;
	}
	xact_level_context[xact_depth] = before;
	xact_depth++;
	xact_dead[xact_depth] = false;
	pgstat_report_activity(STATE_IDLEINTRANSACTION, NULL);
	return true;
}

/* Commit the level (arg: its number): the transaction, or release the savepoint. */
static void
xact_op_commit(void *arg)
{
	int			level = *(int *) arg;

	if (level == 1)
	{
		if (xact_spi_held)
		{
			xact_spi_held = false;
			SPI_finish();
		}
		CommitTransactionCommand();
	}
	else
		ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(xact_context_below(level));
}

/* Commit the innermost level; a dead one reports that it was rolled back. */
bool
pgnw_commit(PgnwError *err)
{
	int			level = xact_depth;

	if (level == 0)
	{
		pgnw_error_set(err, "25000", "there is no transaction in progress", NULL);
		return false;
	}
	if (xact_dead[level])
	{
		/* already rolled back when its statement failed */
		xact_depth--;
		pgnw_error_set(err, "25P02",
					   level == 1 ? "the transaction was rolled back because a statement in it failed" :
					   "the savepoint was rolled back because a statement in it failed",
					   "The error was caught inside the transaction callback; nothing of it was committed.");
		xact_report_idle();
		return false;
	}
	if (!pgnw_guard(xact_op_commit, &level, err))
	{
		/* a deferred constraint, serialization failure, ...: roll back */
		pgnw_xact_after_failure();
		xact_depth--;
		xact_report_idle();
		return false;
	}
	xact_depth--;
	xact_report_idle();
	return true;
}

/* Roll back the innermost level (nothing to do when it is dead already). */
bool
pgnw_rollback(PgnwError *err)
{
	int			level = xact_depth;
	bool		ok = true;

	if (level == 0)
	{
		pgnw_error_set(err, "25000", "there is no transaction in progress", NULL);
		return false;
	}
	if (!xact_dead[level])
		ok = pgnw_guard(xact_op_abort_level, &level, err);
	if (!ok)
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not roll back a transaction: %s",
						err->message ? err->message : "unknown error")));
	xact_depth--;
	xact_report_idle();
	return true;
}

/* A statement starts: its own transaction at depth 0, and an active snapshot. */
void
pgnw_op_start_statement(void *arg)
{
	if (xact_depth == 0)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		xact_stmt_implicit = true;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	xact_stmt_snapshot = true;
}

/*
 * The statement uses SPI: inside a transaction its connection (made here by
 * the first statement at depth 1), else a connection of its own that its
 * end finishes.
 */
void
pgnw_xact_connect_spi(void)
{
	if (xact_depth == 1 && !xact_spi_held)
	{
		MemoryContext cxt = CurrentMemoryContext;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		MemoryContextSwitchTo(cxt);
		xact_spi_held = true;
	}
	if (xact_depth > 0 && xact_spi_held)
	{
		if (xact_stmt_cxt == NULL)
			xact_stmt_cxt = AllocSetContextCreate(TopMemoryContext, "pg_node_worker statement",
												  ALLOCSET_DEFAULT_SIZES);
		xact_stmt_outer_cxt = MemoryContextSwitchTo(xact_stmt_cxt);
		xact_stmt_in_cxt = true;
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	xact_stmt_spi = true;
}

/* The statement ends: undo what its start did, committing its own transaction. */
void
pgnw_op_end_statement(void *arg)
{
	if (xact_stmt_spi)
	{
		xact_stmt_spi = false;
		SPI_finish();
	}
	if (xact_stmt_in_cxt)
	{
		xact_stmt_in_cxt = false;
		MemoryContextSwitchTo(xact_stmt_outer_cxt);
		xact_stmt_memory_reset();
	}
	if (xact_stmt_snapshot)
	{
		xact_stmt_snapshot = false;
		PopActiveSnapshot();
	}
	if (xact_stmt_implicit)
	{
		/*
		 * cleared only once the commit is done: a commit that fails (a
		 * deferred constraint, a serialization failure) leaves the
		 * transaction for pgnw_xact_after_failure to abort
		 */
		CommitTransactionCommand();
		xact_stmt_implicit = false;
	}
}

/* The statement was ended inside an operation: pg_stat_activity shows the worker idle again. */
void
pgnw_xact_statement_ended(void)
{
	xact_report_idle();
}

/* End the statement in progress; pg_stat_activity shows the worker idle again. */
bool
pgnw_xact_end_statement(PgnwError *err)
{
	if (!pgnw_guard(pgnw_op_end_statement, NULL, err))
	{
		pgnw_xact_after_failure();
		return false;
	}
	xact_report_idle();
	return true;
}
