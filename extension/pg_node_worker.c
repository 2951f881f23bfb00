/*-------------------------------------------------------------------------
 *
 * pg_node_worker.c
 *	  The library named in shared_preload_libraries, and the top of its
 *	  modules: _PG_init defines every node_worker.* setting, requests and
 *	  sets up the shared memory of each module, and registers one static
 *	  background worker per valid manifest in the worker directory.
 *
 * As in PostgreSQL's own ipci.c, this file adds up what each module needs
 * in shared memory (XShmemSize()) and calls each module's set-up
 * (XShmemInit()) with the lock it owns; modules never set each other up.
 * Calls go one way, from here into the modules, never back:
 *
 *	 pg_node_worker.c -> supervisor.c, control.c, inbox.c, shared.c, manifest.c
 *	 control.c, workers.c -> supervisor.c, manifest.c
 *	 messaging.c -> inbox.c, supervisor.c
 *	 jobs.c -> messaging.c, supervisor.c
 *	 inbox.c -> supervisor.c -> manifest.c -> manifest_parse.c
 *	 shared.c, session.c, manifest_parse.c: leaves
 *
 * The workers themselves run in pg_node_worker_runtime.so (the worker's
 * bgw_library_name), which embeds Node.js; this library never links
 * libnode, so a server that preloads it still starts when the runtime is
 * broken: node_worker.preload_runtime loads the runtime into the postmaster
 * only when it loads cleanly.  What the runtime and the bridge call here is
 * declared in pg_node_worker.h.
 *
 * A manifest is untrusted input: nothing in it may stop the server.  Bad
 * manifests are reported at LOG level and skipped.
 *
 * extension/pg_node_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "control.h"
#include "inbox.h"
#include "jobs.h"
#include "manifest.h"
#include "schedules.h"
#include "shared.h"
#include "supervisor.h"

PG_MODULE_MAGIC;

/* The locks of the LWLock tranche "pg_node_worker", one per module. */
typedef enum PgnwLock
{
	PGNW_LOCK_SLOTS,			/* supervisor.c: the worker slots */
	PGNW_LOCK_MESSAGING,		/* inbox.c: inboxes and mailboxes */
	PGNW_LOCK_REGIONS,			/* shared.c: the region directory */
	PGNW_LOCK_CONTROL,			/* control.c: control operations */
	PGNW_NUM_LOCKS
} PgnwLock;

/* An integer setting: DefineCustomIntVariable()'s arguments. */
typedef struct PgnwIntSetting
{
	const char *name;
	const char *short_desc;
	const char *long_desc;
	int		   *variable;		/* owned by the module that reads it */
	int			boot;			/* equal to the variable's initial value */
	int			min;
	int			max;
	GucContext	context;
	int			flags;
} PgnwIntSetting;

/* Every integer setting of node_worker.*, defined in this order. */
static const PgnwIntSetting pgnw_int_settings[] = {
	{"node_worker.shutdown_grace_ms",
		"Time a worker's JavaScript gets to finish after a shutdown request.",
		NULL,
	&pgnw_shutdown_grace_ms, 5000, 0, 600000, PGC_SIGHUP, GUC_UNIT_MS},
	{"node_worker.heap_limit_mb",
		"Maximum size of the JavaScript heap of each worker.",
		NULL,
	&pgnw_heap_limit_mb, 256, 16, 65536, PGC_POSTMASTER, GUC_UNIT_MB},
	{"node_worker.buffer_limit_mb",
		"Maximum memory each worker may hold in ArrayBuffers and Buffers.",
		"-1 means no limit of its own (an operating system limit on the data segment still applies). Applies to workers started after a reload.",
	&pgnw_buffer_limit_mb, 1024, -1, MAX_KILOBYTES / 1024, PGC_SIGHUP, GUC_UNIT_MB},
	{"node_worker.max_workers",
		"Maximum number of node workers (static and dynamic) tracked at once.",
		NULL,
	&pgnw_max_workers, 64, 1, 10000, PGC_POSTMASTER, 0},
	{"node_worker.max_failures",
		"Consecutive failed starts after which a worker is marked failed and no longer restarted.",
		NULL,
	&pgnw_max_failures, 5, 1, 1000, PGC_SIGHUP, 0},
	{"node_worker.queue_size_kb",
		"Size of each worker's inbox for call() and notify() messages.",
		"Notifications stay in the inbox until the worker has handled them; when it is full, notify() fails.",
	&pgnw_queue_size_kb, 256, 16, 1024 * 1024, PGC_POSTMASTER, GUC_UNIT_KB},
	{"node_worker.max_message_kb",
		"Largest call() payload or result, and notify() payload.",
		NULL,
	&pgnw_max_message_kb, 64, 1, 64 * 1024, PGC_POSTMASTER, GUC_UNIT_KB},
	{"node_worker.shared_memory_mb",
		"Shared memory for the named regions of ctx.shared().",
		"Regions are allocated from this pool and kept until the server stops; 0 disables ctx.shared().",
	&pgnw_shared_memory_mb, 16, 0, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_MB},
	{"node_worker.inspect_port",
		"Port on 127.0.0.1 of the Node inspector (debugger) of the worker named by node_worker.inspect_worker.",
		"0 turns the inspector off. Applies to that worker's next start; the inspector never listens on another address.",
	&pgnw_inspect_port, 0, 0, 65535, PGC_SIGHUP, GUC_SUPERUSER_ONLY},
	{"node_worker.jobs_keep_done_s",
		"Seconds a done job stays in node_worker.jobs before its worker prunes it.",
		"0 deletes a job when it is done.",
	&pgnw_jobs_keep_done_s, 300, 0, INT_MAX, PGC_SIGHUP, 0},
	{"node_worker.schedule_runs_keep",
		"Runs of each schedule that node_worker.schedule_runs keeps.",
		"Each new run of a schedule deletes its runs older than the newest this many.",
	&pgnw_schedule_runs_keep, 1000, 1, INT_MAX, PGC_SIGHUP, 0},
};

/*
 * The debugger settings, read by the worker process when Node starts
 * (runtime_embed.cc); set in the configuration (a session's SET would reach
 * no worker) and hidden from non-superusers, since whoever reaches the
 * inspector's port runs any code as the server's OS user.
 */
char	   *pgnw_inspect_worker = NULL;
int			pgnw_inspect_port = 0;
bool		pgnw_inspect_optional = false;
static bool pgnw_preload_runtime_setting = true;

static shmem_request_hook_type pgnw_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type pgnw_prev_shmem_startup_hook = NULL;

extern PGDLLEXPORT void _PG_init(void);

static void pgnw_define_settings(void);
static void pgnw_shmem_request(void);
static void pgnw_shmem_startup(void);
static void pgnw_register_workers(void);
static void pgnw_register_one(const char *name);
static void pgnw_preload_runtime(void);
static bool pgnw_bundle_usable(const char *path, const PgnwManifest *m);


/*
 * Module load: settings, shared memory hooks, then the workers.
 *
 * Background workers can only be registered from shared_preload_libraries,
 * so refuse any other way of loading the library.  When the library is
 * preloaded, backends inherit it from the postmaster and CREATE EXTENSION
 * does not run _PG_init again.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_node_worker must be loaded via shared_preload_libraries"),
				 errhint("Add pg_node_worker to shared_preload_libraries in postgresql.conf (or run \"pg-node-worker deploy\", which does it) and restart the server.")));

	pgnw_define_settings();

	pgnw_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgnw_shmem_request;
	pgnw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgnw_shmem_startup;

	/*
	 * With EXEC_BACKEND, every child process loads the preload libraries
	 * again; registration is the postmaster's business only.
	 */
	if (IsUnderPostmaster)
		return;

	pgnw_register_workers();
	pgnw_preload_runtime();
}

/*
 * The exit handler every process of the server inherits once the runtime is
 * preloaded (registered by pgnw_preload_runtime).  exit() runs handlers in
 * reverse order of registration, so this one runs before the C++ static
 * destructors that loading libnode registered; after proc_exit() has done
 * PostgreSQL's own cleanup it ends the process there.  Those destructors
 * free what libnode's static initialisers allocated in the postmaster: run
 * by every backend at every disconnect, they would copy those shared pages
 * first and then unmap them (pgbench -C measured +0.35 ms per connection on
 * Node 24).  An exit() outside proc_exit() (some library's) is left to run
 * every handler, PostgreSQL's own atexit callback included.
 */
static void
pgnw_exit_before_runtime_destructors(int status, void *arg)
{
	if (!proc_exit_inprogress)
		return;
	fflush(NULL);
	_exit(status);
}

/*
 * With node_worker.preload_runtime, load the runtime library, and libnode
 * with it, into the postmaster: each worker then inherits them mapped and
 * relocated instead of loading them after its fork, 10-30 ms of every start.
 * Other children inherit the mappings too, and libnode's static destructors,
 * which they skip (pgnw_exit_before_runtime_destructors).  A runtime that does
 * not load is logged, and the server starts as without the setting: each
 * worker loads the runtime itself and reports the failure as its own.
 */
static void
pgnw_preload_runtime(void)
{
	MemoryContext context = CurrentMemoryContext;

	if (!pgnw_preload_runtime_setting)
		return;
	PG_TRY();
	{
		load_file("pg_node_worker_runtime", false);
		if (on_exit(pgnw_exit_before_runtime_destructors, NULL) != 0)
			ereport(LOG,
					(errmsg("pg_node_worker: could not register its exit handler: every process will run libnode's destructors when it exits")));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(LOG,
				(errmsg("pg_node_worker: could not preload its runtime: %s", edata->message),
				 errhint("Workers load it when they start and fail there if it is broken. Run make install again, or set node_worker.preload_runtime = off.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * Every node_worker.* setting, then the prefix reserved (which also drops
 * placeholders of names that are not settings).  Each variable lives in
 * the module that reads it.
 */
static void
pgnw_define_settings(void)
{
	DefineCustomStringVariable("node_worker.directory",
							   "Directory holding the worker manifests and bundles.",
							   "A relative path is relative to the data directory.",
							   &pgnw_directory_guc,
							   "node_worker",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   pgnw_manifest_check_directory,
							   NULL,
							   NULL);

	DefineCustomStringVariable("node_worker.inspect_worker",
							   "Name of the worker that opens a Node inspector (debugger) on 127.0.0.1.",
							   "Empty: none. Takes effect when that worker next starts, with node_worker.inspect_port set.",
							   &pgnw_inspect_worker,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomBoolVariable("node_worker.preload_runtime",
							 "Load the workers' runtime (and Node.js) into the postmaster at server start.",
							 "Workers then start faster; off: each worker loads it after its fork.",
							 &pgnw_preload_runtime_setting,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomBoolVariable("node_worker.inspect_optional",
							 "Start the inspected worker without its inspector when the inspector cannot listen.",
							 "Off: such a worker fails to start, and says why.",
							 &pgnw_inspect_optional,
							 false,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL,
							 NULL,
							 NULL);

	for (int i = 0; i < lengthof(pgnw_int_settings); i++)
	{
		const PgnwIntSetting *s = &pgnw_int_settings[i];

		DefineCustomIntVariable(s->name, s->short_desc, s->long_desc, s->variable,
								s->boot, s->min, s->max, s->context, s->flags,
								NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("node_worker");
}

/* Ask for each module's shared memory and the modules' locks. */
static void
pgnw_shmem_request(void)
{
	if (pgnw_prev_shmem_request_hook)
		pgnw_prev_shmem_request_hook();
	RequestAddinShmemSpace(pgnw_supervisor_shmem_size());
	RequestAddinShmemSpace(pgnw_control_shmem_size());
	RequestAddinShmemSpace(pgnw_inbox_shmem_size());
	RequestAddinShmemSpace(pgnw_shared_shmem_size());
	RequestNamedLWLockTranche("pg_node_worker", PGNW_NUM_LOCKS);
}

/*
 * Set up each module's shared memory, giving each its lock.  Runs in the
 * postmaster at start and after every crash reset.
 */
static void
pgnw_shmem_startup(void)
{
	LWLockPadded *locks;

	if (pgnw_prev_shmem_startup_hook)
		pgnw_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	locks = GetNamedLWLockTranche("pg_node_worker");
	pgnw_supervisor_shmem_init(&locks[PGNW_LOCK_SLOTS].lock);
	pgnw_control_shmem_init(&locks[PGNW_LOCK_CONTROL].lock);
	pgnw_inbox_shmem_init(&locks[PGNW_LOCK_MESSAGING].lock);
	pgnw_shared_shmem_init(&locks[PGNW_LOCK_REGIONS].lock);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Register one background worker per valid manifest, in file name order.
 */
static void
pgnw_register_workers(void)
{
	int			nnames;
	char	  **names = pgnw_list_manifests(&nnames);

	for (int i = 0; i < nnames; i++)
	{
		pgnw_register_one(names[i]);
		pfree(names[i]);
	}
	if (names)
		pfree(names);
}

/*
 * Validate the manifest of worker name and register its worker, or LOG why
 * not.
 */
static void
pgnw_register_one(const char *name)
{
	char		path[MAXPGPATH];
	PgnwManifest manifest;
	char	   *reason = NULL;
	BackgroundWorker worker;

	if (!pgnw_manifest_path(name, path))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s/%s.json\": %s",
						pgnw_directory(), name, "path is too long")));
		return;
	}

	if (!pgnw_read_manifest(path, &manifest, &reason))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": %s",
						path, reason ? reason : "out of memory")));
		free(reason);
		return;
	}

	if (!pgnw_bundle_usable(path, &manifest))
		return;

	/* on demand only: node_worker.launch() and ctx.launch() start it */
	if (!manifest.autostart)
	{
		ereport(LOG,
				(errmsg("pg_node_worker: deployed worker \"%s\" (database \"%s\", bundle %s) starts only when launched",
						manifest.name, manifest.database, manifest.bundle_path)));
		return;
	}

	/*
	 * All instances or none: a worker that splits its work by instance number
	 * would silently leave parts undone with some of them missing.
	 */
	if (manifest.instances > pgnw_supervisor_static_room())
	{
		if (manifest.instances == 1)
			ereport(LOG,
					(errmsg("pg_node_worker: skipping worker manifest \"%s\": more workers than node_worker.max_workers (%d)",
							path, pgnw_max_workers)));
		else
			ereport(LOG,
					(errmsg("pg_node_worker: skipping worker manifest \"%s\": its %d instances do not fit in node_worker.max_workers (%d, %d left)",
							path, manifest.instances, pgnw_max_workers,
							Max(pgnw_supervisor_static_room(), 0)),
					 errhint("Raise node_worker.max_workers (and max_worker_processes), or deploy the worker with fewer instances.")));
		return;
	}
	if (manifest.instances > max_worker_processes)
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": its %d instances are more than max_worker_processes (%d)",
						path, manifest.instances, max_worker_processes),
				 errhint("Raise max_worker_processes, or deploy the worker with fewer instances.")));
		return;
	}
	for (int i = 0; i < manifest.instances; i++)
	{
		int			slot = pgnw_supervisor_add_static(&manifest, i);

		pgnw_control_fill_bgworker(&worker, &manifest, slot);
		RegisterBackgroundWorker(&worker);
	}

	if (manifest.instances == 1)
		ereport(LOG,
				(errmsg("pg_node_worker: registered worker \"%s\" (database \"%s\", bundle %s)",
						manifest.name, manifest.database, manifest.bundle_path)));
	else
		ereport(LOG,
				(errmsg("pg_node_worker: registered worker \"%s\" (database \"%s\", bundle %s) with %d instances",
						manifest.name, manifest.database, manifest.bundle_path, manifest.instances)));
}

/*
 * The bundle of manifest m (read from path) must be there and readable now,
 * not only when the worker starts; else LOG why and return false.  stat()
 * first: opening a FIFO would block the postmaster.
 */
static bool
pgnw_bundle_usable(const char *path, const PgnwManifest *m)
{
	struct stat st;
	int			fd;

	if (stat(m->bundle_path, &st) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: skipping worker manifest \"%s\": cannot open bundle file \"%s\": %m",
						path, m->bundle_path)));
		return false;
	}
	if (!S_ISREG(st.st_mode))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": bundle file \"%s\" is not a regular file",
						path, m->bundle_path)));
		return false;
	}
	fd = open(m->bundle_path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: skipping worker manifest \"%s\": cannot open bundle file \"%s\": %m",
						path, m->bundle_path)));
		return false;
	}
	close(fd);
	return true;
}
