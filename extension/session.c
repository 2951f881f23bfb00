/*-------------------------------------------------------------------------
 *
 * session.c
 *		A worker's database session: connect as its manifest says, then make
 *		what its SQL resolves and how it behaves depend only on the server's
 *		configuration and the worker's own declaration.
 *
 * Workers often run as a superuser, in databases whose owners are not.
 * Two things a database owner (or the worker's own role) controls would
 * otherwise reach into such a worker:
 *
 * - search_path: with the default "$user", public, an unqualified name in
 *   the worker's SQL resolves through schemas the database owner can create
 *   in (a schema named after the worker's role, or public), so a table or
 *   function placed there runs the owner's code with the worker's rights.
 *   The session's search_path is the manifest's searchPath, pg_catalog only
 *   when none is declared.
 * - settings from ALTER DATABASE ... SET and ALTER ROLE ... SET, applied
 *   when the session starts (default_transaction_read_only alone makes
 *   every write fail).  Each user-settable one is put back to the value the
 *   server's configuration gives it, with one LOG line naming them.  Settings
 *   that only take effect at connection start (PGC_BACKEND) cannot be undone
 *   afterwards; they are named in the same line.  ALTER ROLE ALL SET, which
 *   only a superuser can run, is trusted.
 *
 * The worker's own SET and set_config() work as usual afterwards.
 *
 * extension/session.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"

#include "compat.h"
#include "pg_node_worker.h"

/* A setting's value before the session started (NULL: it did not exist). */
typedef struct PgnwSavedSetting
{
	const char *name;
	char	   *value;
} PgnwSavedSetting;

/* Is the current value of var one a database owner or a role could set? */
static bool
pgnw_session_untrusted_source(const struct config_generic *var)
{
	return var->source == PGC_S_DATABASE || var->source == PGC_S_USER ||
		var->source == PGC_S_DATABASE_USER;
}

/* The values of every setting now, before the session applies its own. */
static PgnwSavedSetting *
pgnw_session_save(int *count)
{
	int			n;
	struct config_generic **vars = pgnw_guc_variables(&n);
	PgnwSavedSetting *saved = palloc(sizeof(PgnwSavedSetting) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		const char *value = GetConfigOption(vars[i]->name, true, false);

		saved[i].name = pstrdup(vars[i]->name);
		saved[i].value = value ? pstrdup(value) : NULL;
	}
	*count = n;
	return saved;
}

/* The value name had before the session started ("" when it did not exist). */
static const char *
pgnw_session_saved_value(const PgnwSavedSetting *saved, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(saved[i].name, name) == 0)
			return saved[i].value ? saved[i].value : "";
	/* a placeholder the session created (ALTER DATABASE SET myapp.x): empty, as if unset */
	return "";
}

/*
 * Undo the settings the session took from ALTER DATABASE/ROLE ... SET.  An
 * error here stops the worker: it would otherwise run with a setting it
 * does not trust.
 */
static void
pgnw_session_undo_settings(const PgnwSavedSetting *saved, int nsaved, const char *worker)
{
	int			n;
	struct config_generic **vars = pgnw_guc_variables(&n);
	StringInfoData undone;
	StringInfoData kept;

	initStringInfo(&undone);
	initStringInfo(&kept);
	for (int i = 0; i < n; i++)
	{
		struct config_generic *var = vars[i];

		if (!pgnw_session_untrusted_source(var))
			continue;
		if (var->context != PGC_USERSET && var->context != PGC_SUSET)
		{
			appendStringInfo(&kept, "%s%s", kept.len ? ", " : "", var->name);
			continue;
		}
		appendStringInfo(&undone, "%s%s", undone.len ? ", " : "", var->name);
		(void) set_config_option(var->name, pgnw_session_saved_value(saved, nsaved, var->name),
								 PGC_SUSET, PGC_S_OVERRIDE, GUC_ACTION_SET, true, ERROR, false);
	}
	if (undone.len > 0 || kept.len > 0)
		ereport(LOG,
				(errmsg("node worker \"%s\" ignores the settings of ALTER DATABASE/ROLE ... SET: %s",
						worker, undone.len ? undone.data : "(none)"),
				 kept.len ? errdetail("These took effect at connection start and stay: %s.", kept.data) : 0,
				 errhint("A worker's settings come from the server's configuration; the worker may SET its own.")));
	pfree(undone.data);
	pfree(kept.data);
}

/*
 * search_path from the manifest's searchPath (schema names separated by
 * commas), each quoted; pg_catalog alone when none is declared.
 */
static char *
pgnw_session_search_path(const PgnwManifest *m)
{
	StringInfoData path;
	const char *p = m->search_path;

	if (p[0] == '\0')
		return pstrdup("pg_catalog");
	initStringInfo(&path);
	while (*p != '\0')
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char	   *schema = pnstrdup(p, len);

		appendStringInfo(&path, "%s%s", path.len ? ", " : "", quote_identifier(schema));
		pfree(schema);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return path.data;
}

/*
 * Connect the worker to its database as its role, then pin its settings
 * and search_path (see the file header).  A FATAL from the connection (no
 * such database or role) ends the process as for any background worker.
 */
void
pgnw_worker_connect(const PgnwManifest *m)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_node_worker session",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			nsaved;
	PgnwSavedSetting *saved = pgnw_session_save(&nsaved);

	BackgroundWorkerInitializeConnection(m->database, m->role[0] ? m->role : NULL, 0);
	pgnw_session_undo_settings(saved, nsaved, m->name);
	(void) set_config_option("search_path", pgnw_session_search_path(m),
							 PGC_SUSET, PGC_S_OVERRIDE, GUC_ACTION_SET, true, ERROR, false);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
