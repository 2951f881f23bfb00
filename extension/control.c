/*-------------------------------------------------------------------------
 *
 * control.c
 *		Starting and stopping worker processes: the SQL functions
 *		node_worker.launch(), stop() and restart(), pgnw_launch() behind
 *		ctx.launch(), and the background worker registration they share with
 *		the static workers.
 *
 * Operations on one worker name run one at a time, across backends: two
 * restarts at once could otherwise leave processes that no slot tracks.
 * Each backend announces its operation in a table in shared memory (one
 * entry per PGPROC number) and waits, on its latch, while another backend
 * has one on the same name.  An entry left by a process that died is
 * ignored.  Operations nest within a backend (restart() may launch()).
 *
 * launch() may pick the database the new process connects to.  That is
 * checked here, in the caller (the database exists and allows connections,
 * the worker's role has CONNECT on it), so that a refusal is an ERROR with
 * a hint where it was asked for rather than a FATAL in the new process.
 *
 * Limits: launch() and restart() wait at most 30 s for the new process to
 * reach the worker's main(), then return with a WARNING; stop() waits
 * node_worker.shutdown_grace_ms plus 5 s for the processes to exit.  A
 * worker is started through RegisterDynamicBackgroundWorker(), so
 * max_worker_processes bounds how many run.
 *
 * extension/control.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "control.h"
#include "manifest.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_launch);
PG_FUNCTION_INFO_V1(node_worker_stop);
PG_FUNCTION_INFO_V1(node_worker_restart);

/* how long launch() and restart() wait for the new process to run main() */
#define PGNW_START_TIMEOUT_MS 30000

/* A control operation (launch, stop, restart) in progress in one backend. */
typedef struct PgnwControlOp
{
	pid_t		pid;			/* 0: none */
	char		name[PGNW_WORKER_NAME_MAX + 1];
} PgnwControlOp;

typedef struct PgnwControlTable
{
	LWLock	   *lock;
	int			nops;
	PgnwControlOp ops[FLEXIBLE_ARRAY_MEMBER];	/* by PGPROC number */
} PgnwControlTable;

/* An operation run by pgnw_control_run() on one worker name. */
typedef void (*PgnwControlOperation) (const char *name, void *arg);

static PgnwControlTable *pgnw_control_table = NULL;

/* control operations of this backend in progress (they nest: restart() may launch()) */
static int	pgnw_control_depth = 0;


/* ------------------------------------------ one operation per name at once */

/* Shared memory of the operations table: one entry per backend. */
Size
pgnw_control_shmem_size(void)
{
	return add_size(offsetof(PgnwControlTable, ops),
					mul_size(sizeof(PgnwControlOp), MaxBackends));
}

/* Set up the operations table; caller holds AddinShmemInitLock. */
void
pgnw_control_shmem_init(LWLock *lock)
{
	bool		found;

	pgnw_control_table = ShmemInitStruct("pg_node_worker control", pgnw_control_shmem_size(),
										 &found);
	if (found)
		return;
	memset(pgnw_control_table, 0, pgnw_control_shmem_size());
	pgnw_control_table->lock = lock;
	pgnw_control_table->nops = MaxBackends;
}

/* Forget this backend's control operation (error, exit, or done). */
static void
pgnw_control_clear(void)
{
	int			me = pgnw_my_procno();

	pgnw_control_depth = 0;
	if (pgnw_control_table == NULL || me < 0 || me >= pgnw_control_table->nops)
		return;
	LWLockAcquire(pgnw_control_table->lock, LW_EXCLUSIVE);
	if (pgnw_control_table->ops[me].pid == MyProcPid)
		pgnw_control_table->ops[me].pid = 0;
	LWLockRelease(pgnw_control_table->lock);
}

/* before_shmem_exit callback: a backend that exits mid-operation ends it. */
static void
pgnw_control_on_exit(int code, Datum arg)
{
	pgnw_control_clear();
}

/*
 * Wait until no other backend runs a control operation on worker "name",
 * then mark ours.  Pair with pgnw_control_end(), also on error.  Nests
 * within one backend.  The wait is interruptible (cancel, terminate); an
 * entry left by a process that died is ignored.
 */
static void
pgnw_control_begin(const char *name)
{
	static bool exit_hook = false;
	int			me = pgnw_my_procno();

	if (pgnw_control_depth++ > 0)
		return;
	if (me < 0 || me >= pgnw_control_table->nops)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("process number %d is out of range for node worker control", me)));
	if (!exit_hook)
	{
		before_shmem_exit(pgnw_control_on_exit, (Datum) 0);
		exit_hook = true;
	}
	for (;;)
	{
		bool		busy = false;

		LWLockAcquire(pgnw_control_table->lock, LW_EXCLUSIVE);
		for (int i = 0; i < pgnw_control_table->nops && !busy; i++)
		{
			PgnwControlOp *op = &pgnw_control_table->ops[i];

			busy = i != me && op->pid != 0 && strcmp(op->name, name) == 0 &&
				kill(op->pid, 0) == 0;
		}
		if (!busy)
		{
			pgnw_control_table->ops[me].pid = MyProcPid;
			strlcpy(pgnw_control_table->ops[me].name, name, sizeof(pgnw_control_table->ops[me].name));
		}
		LWLockRelease(pgnw_control_table->lock);
		if (!busy)
			return;
		pgnw_supervisor_nap(10, PGNW_WAIT_CONTROL);
	}
}

/* End the operation pgnw_control_begin() started (the outermost one clears it). */
static void
pgnw_control_end(void)
{
	if (pgnw_control_depth > 0 && --pgnw_control_depth == 0)
		pgnw_control_clear();
}

/* Run op(name, arg) as this backend's control operation on name. */
static void
pgnw_control_run(const char *name, PgnwControlOperation op, void *arg)
{
	pgnw_supervisor_require_shmem();
	pgnw_control_begin(name);
	PG_TRY();
	{
		op(name, arg);
	}
	PG_FINALLY();
	{
		pgnw_control_end();
	}
	PG_END_TRY();
}


/* ------------------------------------------------------- starting one */

/* The bgworker registration of a node worker for slot "index". */
void
pgnw_control_fill_bgworker(BackgroundWorker *worker, const PgnwManifest *m, int index)
{
	memset(worker, 0, sizeof(*worker));

	/*
	 * PostgreSQL gives no database connection to workers that start with the
	 * postmaster: those run JS only (ctx.sql explains why it is refused).
	 */
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS;
	if (m->start_time != BgWorkerStart_PostmasterStart)
		worker->bgw_flags |= BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = m->start_time;
	/* dynamic workers are restarted after a failure too, like static ones */
	worker->bgw_restart_time = m->restart_seconds;
	strlcpy(worker->bgw_library_name, "pg_node_worker_runtime", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, "pg_node_worker_main", BGW_MAXLEN);
	strlcpy(worker->bgw_type, "node_worker", BGW_MAXLEN);
	snprintf(worker->bgw_name, BGW_MAXLEN, "node_worker %s", m->name);
	strlcpy(worker->bgw_extra, m->name, BGW_EXTRALEN);
	worker->bgw_main_arg = Int32GetDatum(index);
	worker->bgw_notify_pid = 0;
}

/* Names of the deployed workers, for hints: "a, b, c" (palloc'd). */
static char *
pgnw_control_deployed_names(void)
{
	int			n;
	char	  **names = pgnw_list_manifests(&n);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", names[i]);
	return buf.len ? buf.data : pstrdup("(none)");
}

/*
 * The manifest of worker name into *m, or ERROR (invalid name, not
 * deployed, invalid manifest).  A worker started from SQL cannot start with
 * the postmaster: "postmaster" becomes "consistent".
 */
static void
pgnw_control_load_manifest(const char *name, PgnwManifest *m)
{
	char		path[MAXPGPATH];
	char	   *reason = NULL;
	struct stat st;

	if (!pgnw_valid_worker_name(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid node worker name \"%s\"", name),
				 errhint("A worker name is 1 to 63 ASCII letters, digits, \"_\" or \"-\", starting with a letter or \"_\".")));
	pgnw_manifest_path(name, path);
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node worker \"%s\" is not deployed", name),
				 errhint("Deployed workers: %s. Deploy one with \"pg-node-worker deploy FILE -D PGDATA\".",
						 pgnw_control_deployed_names())));
	if (!pgnw_read_manifest(path, m, &reason))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not load node worker manifest \"%s\": %s", path,
						reason ? reason : "out of memory")));
	if (m->start_time == BgWorkerStart_PostmasterStart)
		m->start_time = BgWorkerStart_ConsistentState;
}

/*
 * Wait until process pid of slot index runs its main() (it is then
 * connected and visible in pg_stat_activity), or report why it did not.
 */
static void
pgnw_control_wait_until_running(int index, pid_t pid, const char *name)
{
	int64		deadline = pgnw_clock_after_ms(PGNW_START_TIMEOUT_MS);

	for (;;)
	{
		PgnwSlot	s;

		pgnw_slot_copy(index, &s);

		/* it reached main(), even if it already finished */
		if (s.main_pid == pid)
			return;
		if (kill(pid, 0) != 0 || (s.pid != pid && s.pid != 0) ||
			(s.pid == 0 && s.last_exit_at != 0 && s.state != PGNW_STATE_STARTING))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("node worker \"%s\" exited during start-up", name),
					 s.last_error[0] ? errdetail("%s", s.last_error) : 0,
					 errhint("See node_worker.workers and the server log.")));
		if (pgnw_clock_us() >= deadline)
		{
			ereport(WARNING,
					(errmsg("node worker \"%s\" (pid %d) has not started its main function after %d s",
							name, (int) pid, PGNW_START_TIMEOUT_MS / 1000)));
			return;
		}
		pgnw_supervisor_nap(5, PGNW_WAIT_CONTROL);
	}
}

/*
 * Start a worker process for slot "index" (which already holds the worker's
 * name and arguments) and wait until it runs.  Returns its pid.  A dynamic
 * slot is given back when no background worker slot is free.
 */
static pid_t
pgnw_control_start_process(int index, const PgnwManifest *m, bool dynamic_kind)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	pgnw_control_fill_bgworker(&worker, m, index);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (dynamic_kind)
			pgnw_slot_release(index);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start node worker \"%s\": no free background worker slot", m->name),
				 errhint("Raise max_worker_processes (a server restart is needed), or stop another background worker.")));
	}
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the postmaster died while node worker \"%s\" was starting", m->name)));
	if (status != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node worker \"%s\" could not be started", m->name),
				 errhint("See the server log.")));
	pgnw_control_wait_until_running(index, pid, m->name);
	return pid;
}

/*
 * Ask every running process of worker "name" to stop and wait for them
 * (the worker's own watchdog forces a stop after the grace period).  Marks
 * the slots stopped so that nothing restarts them.  Returns how many
 * processes were running.
 */
static int
pgnw_control_stop_all(const char *name)
{
	int			n;
	pid_t	   *pids = pgnw_slot_request_stop(name, &n);
	int64		deadline;

	for (int i = 0; i < n; i++)
		kill(pids[i], SIGTERM);

	deadline = pgnw_clock_after_ms(pgnw_shutdown_grace_ms + 5000);
	for (int i = 0; i < n; i++)
	{
		while (kill(pids[i], 0) == 0 && pgnw_clock_us() < deadline)
		{
			pgnw_supervisor_nap(10, PGNW_WAIT_CONTROL);
		}
	}
	pfree(pids);
	return n;
}


/* --------------------------------------------------------- the operations */

/* launch(): its arguments in, its process and slot out */
typedef struct PgnwLaunchOp
{
	const char *args;
	const char *database;		/* NULL: the manifest's */
	pid_t		pid;
	int			slot;
} PgnwLaunchOp;

/* What pgnw_control_database_problem() found wrong with a chosen database */
typedef enum PgnwDatabaseProblem
{
	PGNW_DB_OK = 0,
	PGNW_DB_MISSING,
	PGNW_DB_NO_CONNECTIONS,
	PGNW_DB_NO_ROLE,
	PGNW_DB_NO_CONNECT_PRIVILEGE
} PgnwDatabaseProblem;

/*
 * May worker m, as its role, connect to database?  Read in a transaction
 * of its own when none is open (ctx.launch() outside ctx.transaction);
 * nothing here raises an ERROR, so that transaction always commits.
 */
static PgnwDatabaseProblem
pgnw_control_database_problem(const PgnwManifest *m, const char *database)
{
	bool		own_xact = !IsTransactionState();
	PgnwDatabaseProblem problem = PGNW_DB_OK;
	Oid			dboid;
	Oid			roleid = BOOTSTRAP_SUPERUSERID;

	if (own_xact)
		StartTransactionCommand();
	dboid = get_database_oid(database, true);
	if (!OidIsValid(dboid))
		problem = PGNW_DB_MISSING;
	else
	{
		HeapTuple	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));

		if (!HeapTupleIsValid(tuple))
			problem = PGNW_DB_MISSING;
		else
		{
			if (!((Form_pg_database) GETSTRUCT(tuple))->datallowconn)
				problem = PGNW_DB_NO_CONNECTIONS;
			ReleaseSysCache(tuple);
		}
	}
	if (problem == PGNW_DB_OK && m->role[0] != '\0')
	{
		roleid = get_role_oid(m->role, true);
		if (!OidIsValid(roleid))
			problem = PGNW_DB_NO_ROLE;
	}
	/* what the worker's connection checks (CheckMyDatabase), asked before it starts */
	if (problem == PGNW_DB_OK &&
		pgnw_database_aclcheck(dboid, roleid, ACL_CONNECT) != ACLCHECK_OK)
		problem = PGNW_DB_NO_CONNECT_PRIVILEGE;
	if (own_xact)
		CommitTransactionCommand();
	return problem;
}

/*
 * The database a launch chose, or ERROR saying why worker m cannot run
 * there: a name that cannot be one, no such database, one that does not
 * accept connections, or one its role may not connect to.
 */
static void
pgnw_control_check_database(const PgnwManifest *m, const char *database)
{
	const char *role = m->role[0] ? m->role : "the bootstrap superuser";

	if (database[0] == '\0' || strlen(database) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid database name \"%s\" for node worker \"%s\"", database, m->name),
				 errhint("Give the name of an existing database (1 to %d bytes), or NULL for the one the worker was deployed with.",
						 NAMEDATALEN - 1)));
	/* catalogs are out of reach of a worker that started without a database */
	if (!OidIsValid(MyDatabaseId))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a node worker without a database connection cannot choose the database of a launch"),
				 errhint("Launch from a worker that starts at \"consistent\" or \"recovery-finished\", or leave the database out.")));
	switch (pgnw_control_database_problem(m, database))
	{
		case PGNW_DB_OK:
			return;
		case PGNW_DB_MISSING:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_DATABASE),
					 errmsg("database \"%s\" does not exist", database),
					 errhint("Launch node worker \"%s\" in an existing database; SELECT datname FROM pg_database lists them.",
							 m->name)));
			break;
		case PGNW_DB_NO_CONNECTIONS:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("database \"%s\" does not allow connections, so node worker \"%s\" cannot run in it",
							database, m->name),
					 errhint("Choose a database whose pg_database.datallowconn is true (ALTER DATABASE ... WITH ALLOW_CONNECTIONS true).")));
			break;
		case PGNW_DB_NO_ROLE:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role \"%s\" of node worker \"%s\" does not exist", m->role, m->name),
					 errhint("Create the role, or deploy the worker with a role that exists.")));
			break;
		case PGNW_DB_NO_CONNECT_PRIVILEGE:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("node worker \"%s\" runs as %s, which may not connect to database \"%s\"",
							m->name, role, database),
					 errhint("GRANT CONNECT ON DATABASE to the worker's role, or launch it in another database.")));
			break;
	}
}

/*
 * Launch a dynamic worker from a deployed bundle, under the name's control
 * operation: a slot, a process, and the wait until it runs.
 */
static void
pgnw_control_launch_op(const char *name, void *arg)
{
	PgnwLaunchOp *op = (PgnwLaunchOp *) arg;
	PgnwManifest m;
	int			index;
	int			nslots;

	pgnw_control_load_manifest(name, &m);
	if (op->database != NULL)
		pgnw_control_check_database(&m, op->database);
	if (op->args != NULL && strlen(op->args) >= PGNW_ARGS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("launch arguments are too large (%zu bytes)", strlen(op->args)),
				 errdetail("The limit is %d bytes of JSON.", PGNW_ARGS_MAX - 1),
				 errhint("Pass a key (e.g. a row id) and let the worker read the rest with SQL.")));

	index = pgnw_slot_claim_dynamic(&m, op->args, op->database, &nslots);
	if (index < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start node worker \"%s\": all %d worker slots are in use", name,
						nslots),
				 errhint("Raise node_worker.max_workers (a server restart is needed).")));
	op->pid = pgnw_control_start_process(index, &m, true);
	op->slot = index;
}

/*
 * Launch a dynamic worker from a deployed bundle; args is JSON text or NULL,
 * database the one to connect to (NULL: its manifest's).  Returns its pid
 * once it runs.  Also used by ctx.launch() in workers.
 */
pid_t
pgnw_launch(const char *name, const char *args, const char *database, int *slot_out)
{
	PgnwLaunchOp op = {args, database, 0, -1};

	pgnw_control_run(name, pgnw_control_launch_op, &op);
	if (slot_out)
		*slot_out = op.slot;
	return op.pid;
}

/* stop(name): false when no process ran; an unknown name is an error */
static void
pgnw_control_stop_op(const char *name, void *arg)
{
	bool	   *stopped = (bool *) arg;

	if (!pgnw_slot_name_known(name))
	{
		PgnwManifest m;

		/* an unknown name is an error; a deployed one that never ran is just not running */
		pgnw_control_load_manifest(name, &m);
		*stopped = false;
		return;
	}
	*stopped = pgnw_control_stop_all(name) > 0;
}

/*
 * restart(name): stop every process of the worker, then start it again
 * with the current bundle and manifest, in its static slot if it has one
 * (or the slot of its last dynamic run, keeping its arguments and its
 * inbox), else as a new launch.  A worker with several instances gets all
 * of its static slots started again (how many were registered at server
 * start, whatever the manifest says now).  A worker with autostart false
 * that was never launched has nothing to run again: an error.
 */
static void
pgnw_control_restart_op(const char *name, void *arg)
{
	pid_t	   *pid = (pid_t *) arg;
	PgnwManifest m;
	int		   *indexes = palloc(sizeof(int) * pgnw_max_workers);
	int			n;

	pgnw_control_load_manifest(name, &m);
	/* started with no args, an on-demand worker would run a launch nobody asked for */
	if (!m.autostart && !pgnw_slot_name_known(name))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node worker \"%s\" starts only when launched and has not been launched", name),
				 errhint("Start it with SELECT node_worker.launch('%s', args). restart() runs a launched worker again with its arguments.",
						 name)));
	(void) pgnw_control_stop_all(name);
	n = pgnw_slot_prepare_restart(name, &m, indexes);
	if (n == 0)
		*pid = pgnw_launch(name, NULL, NULL, NULL);
	/* every instance, in slot order: the pid returned is the first one's */
	for (int k = n - 1; k >= 0; k--)
		*pid = pgnw_control_start_process(indexes[k], &m, false);
	pfree(indexes);
}


/* --------------------------------------------------------- SQL functions */

/*
 * node_worker.launch(name, args jsonb default null, database text default
 * null): the new process's pid.  The SQL definition before 0.6 has no
 * database argument.
 */
Datum
node_worker_launch(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *args = NULL;
	char	   *database = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		args = JsonbToCString(NULL, &PG_GETARG_JSONB_P(1)->root, VARSIZE(PG_GETARG_JSONB_P(1)));
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		database = text_to_cstring(PG_GETARG_TEXT_PP(2));
	PG_RETURN_INT32(pgnw_launch(name, args, database, NULL));
}

/* node_worker.stop(name): whether a process was running */
Datum
node_worker_stop(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		stopped = false;

	pgnw_control_run(name, pgnw_control_stop_op, &stopped);
	PG_RETURN_BOOL(stopped);
}

/* node_worker.restart(name): the new process's pid */
Datum
node_worker_restart(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pid_t		pid = 0;

	pgnw_control_run(name, pgnw_control_restart_op, &pid);
	PG_RETURN_INT32(pid);
}
