/*-------------------------------------------------------------------------
 *
 * log_ops.c
 *		The server log, settings and the ps display, on PostgreSQL's side
 *		of the bridge: console.*, ctx.log, ctx.setting, process.title.
 *
 * A line is logged at the level it maps to (PGNW_LOG_* to DEBUG1, LOG,
 * NOTICE, WARNING) with the worker's name in front and no statement.  An
 * ERROR-level line is reported at ERROR severity without aborting
 * anything: it is raised and caught here, and only its report is emitted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/ps_status.h"

#include "../extension/runtime.h"
#include "log.h"

typedef struct LogArgs
{
	int			level;
	const char *msg;
} LogArgs;

typedef struct LogSettingArgs
{
	const char *name;
	char	  **value;
} LogSettingArgs;

/* an ERROR-severity line in the log that does not abort anything */
static void
log_error_line(const char *msg)
{
	MemoryContext oldcontext = CurrentMemoryContext;

	PG_TRY();
	{
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg_internal("%s: %s", pgnw_worker_info.name, msg),
				 errhidestmt(true)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
}

/* Log one line (arg: LogArgs). */
static void
log_op_log(void *arg)
{
	LogArgs    *a = (LogArgs *) arg;
	static const int levels[] = {DEBUG1, LOG, NOTICE, WARNING};

	if (a->level == PGNW_LOG_ERROR)
	{
		log_error_line(a->msg);
		return;
	}
	ereport(levels[a->level],
			(errmsg_internal("%s: %s", pgnw_worker_info.name, a->msg),
			 errhidestmt(true)));
}

/* Log msg at level (an unknown level logs as INFO). */
bool
pgnw_log(int level, const char *msg, PgnwError *err)
{
	LogArgs		a;

	if (level < PGNW_LOG_DEBUG || level > PGNW_LOG_ERROR)
		level = PGNW_LOG_INFO;
	a.level = level;
	a.msg = msg;
	return pgnw_guard(log_op_log, &a, err);
}

/* Read one setting (arg: LogSettingArgs). */
static void
log_op_get_setting(void *arg)
{
	LogSettingArgs *a = (LogSettingArgs *) arg;
	const char *v = GetConfigOption(a->name, true, false);

	*a->value = v ? strdup(v) : NULL;
}

/* The value of setting name (malloc'd), NULL when there is none. */
bool
pgnw_get_setting(const char *name, char **value, PgnwError *err)
{
	LogSettingArgs a;

	a.name = name;
	a.value = value;
	*value = NULL;
	return pgnw_guard(log_op_get_setting, &a, err);
}

/* Set the ps display (arg: the text). */
static void
log_op_set_ps_display(void *arg)
{
	set_ps_display((const char *) arg);
}

/* process.title = text */
bool
pgnw_set_ps_display(const char *text, PgnwError *err)
{
	return pgnw_guard(log_op_set_ps_display, (void *) text, err);
}
