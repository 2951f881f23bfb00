/*-------------------------------------------------------------------------
 *
 * runtime.cc
 *		The worker entry point, pg_node_worker_main(): the top of
 *		pg_node_worker_runtime.so, the bgw_library_name of every worker.
 *		Reads the worker's manifest, claims its slot, checks its bundle,
 *		connects, then starts Node and runs the worker until it leaves, as
 *		a sequence of named steps from the runtime's modules.
 *
 * The library is loaded only in worker processes, so libnode never enters
 * the postmaster or client backends.  It owns the process-level state that
 * Node must not touch, in four modules below this file (calls go one way):
 *
 *	 runtime.cc -> runtime_embed.cc -> runtime_memory.cc -> runtime_signals.cc
 *				   (each of them)   -> runtime_process.cc
 *
 *	 runtime_process.cc	who the worker is, how it leaves (exit requests,
 *						stopping JS, no static destructors), private stdio
 *	 runtime_signals.cc	SIGTERM, trampolines, restored handlers, aborts
 *	 runtime_memory.cc	ArrayBuffer budget, heap limit, out-of-memory paths
 *	 runtime_embed.cc	Node start-up, environment, threads, the event loop
 *
 * Every function here runs on the main thread and may ereport; the naming
 * rule for the others is in runtime.h.  Exit codes are only ever 0 (done,
 * not restarted) or 1 (restarted after the interval).
 *
 * extension/runtime.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>

#include <memory>

#include <pthread.h>
#include <signal.h>

#include "runtime_embed.h"
#include "runtime_memory.h"
#include "runtime_process.h"
#include "runtime_signals.h"

extern "C"
{
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "pg_node_worker.h"
#include "runtime.h"
}

extern "C"
{
	PG_MODULE_MAGIC;
}

extern "C" PGDLLEXPORT void pg_node_worker_main(Datum main_arg);

/*
 * Run the worker in its isolate, holding it and its scopes for as long as
 * the worker runs: the environment, the ArrayBuffer budget, the helper
 * threads while signals are still blocked, then signals taken over, and
 * runtime.js with the event loop.  Returns the exit code (0 or 1).
 */
static int
pgnw_run_isolate(v8::Isolate *isolate, node::MultiIsolatePlatform *platform,
				 const PgnwManifest *manifest, int heap_mb, const sigset_t *saved_mask)
{
	v8::Locker	locker(isolate);
	v8::Isolate::Scope isolate_scope(isolate);
	v8::HandleScope handle_scope(isolate);
	v8::Local<v8::Context> context;
	node::Environment *env = pgnw_embed_new_environment(isolate, platform, heap_mb, &context,
														 saved_mask);
	v8::Context::Scope context_scope(context);

	pgnw_memory_plan_buffers(manifest->buffer_limit_mb != 0 ?
							 manifest->buffer_limit_mb : pgnw_buffer_limit_mb);
	pgnw_memory_watch_heap_limit(isolate);
	pgnw_embed_catch_process_exit(env);
	pgnw_embed_start_threads();
	/* Threads exist; the main thread takes signals again. */
	pgnw_signals_take_over(saved_mask);

	pgnw_embed_run(env, isolate, context, manifest->bundle_path);

	pgnw_memory_report_exhaustion();
	pgnw_embed_report_grace_expired();
	return pgnw_process_exit_code;
}

/*
 * Start Node and run the worker.  Returns the exit code (0 or 1).
 */
static int
pgnw_run_node(const PgnwManifest *manifest)
{
	sigset_t	saved_mask;
	int			heap_mb;
	int			exit_code;

	/* every thread Node, V8 and libuv create at start-up takes no signal */
	pgnw_signals_block_all(&saved_mask);
	pgnw_memory_limit_arenas();
	pgnw_process_private_stdio();
	heap_mb = pgnw_memory_plan_heap(manifest->heap_limit_mb > 0 ?
									manifest->heap_limit_mb : pgnw_heap_limit_mb);

	std::unique_ptr<node::MultiIsolatePlatform> platform =
		pgnw_embed_start_node(heap_mb, &saved_mask);

	pgnw_process_skip_destructors_at_exit();

	v8::Isolate *isolate = pgnw_embed_new_isolate(platform.get(), heap_mb,
												  manifest->young_generation_mb, &saved_mask);

	/* before anything can run out of memory */
	pgnw_memory_install_handlers(isolate);
	exit_code = pgnw_run_isolate(isolate, platform.get(), manifest, heap_mb, &saved_mask);

	/*
	 * A worker told to stop that returned cleanly still exits 1, as C
	 * workers do, so pg_terminate_backend does not unregister it forever;
	 * one stopped with node_worker.stop() exits 0 and stays stopped.
	 */
	if (pgnw_worker_stop_requested())
		exit_code = 0;
	else if (pgnw_sig_term_pending() && exit_code == 0)
		exit_code = 1;
	return exit_code;
}

/* error context while the worker connects: names the worker */
static void
pgnw_connect_context(void *arg)
{
	errcontext("node worker \"%s\" connecting to its database", (const char *) arg);
}

/*
 * The worker's manifest, re-read from the worker directory (it may have
 * changed since the postmaster registered the worker), or ERROR.
 */
static void
pgnw_load_manifest(const char *name, PgnwManifest *manifest)
{
	char		path[MAXPGPATH];
	char	   *reason = NULL;

	if (!pgnw_valid_worker_name(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid node worker name \"%s\"", name)));
	pgnw_manifest_path(name, path);
	if (!pgnw_read_manifest(path, manifest, &reason))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not load node worker manifest \"%s\": %s", path, reason)));
}

/*
 * Connect to the manifest's database as its role.  A FATAL here (unknown
 * database or role) names the worker, and node_worker.workers says why.
 */
static void
pgnw_connect(const PgnwManifest *manifest)
{
	char		why[256];
	ErrorContextCallback context;

	snprintf(why, sizeof(why), "could not connect to database \"%s\" as role \"%s\" (see the server log)",
			 manifest->database, manifest->role[0] ? manifest->role : "(bootstrap superuser)");
	pgnw_worker_set_error(NULL, why);
	context.callback = pgnw_connect_context;
	context.arg = (void *) manifest->name;
	context.previous = error_context_stack;
	error_context_stack = &context;
	pgnw_worker_connect(manifest);
	error_context_stack = context.previous;
	pgnw_worker_info.connected = true;
	strlcpy(pgnw_worker_info.database, manifest->database, sizeof(pgnw_worker_info.database));
	strlcpy(pgnw_worker_info.role, manifest->role, sizeof(pgnw_worker_info.role));
}

/*
 * Refuses a bundle built for a newer Node than the one this runtime embeds
 * (a manifest copied from another server, or a deploy with --target): its
 * syntax or the APIs it calls may be missing here, and it would fail later,
 * somewhere in the user's code.  ERROR, with the reason in last_error.
 */
static void
pgnw_check_node_target(const PgnwManifest *m)
{
	char		why[256];

	if (m->node_target_major == 0)
		return;
	if (m->node_target_major < NODE_MAJOR_VERSION ||
		(m->node_target_major == NODE_MAJOR_VERSION &&
		 m->node_target_minor <= NODE_MINOR_VERSION))
		return;
	snprintf(why, sizeof(why),
			 "bundle built for Node %d.%d but this server runs Node %s; deploy the worker again from this server",
			 m->node_target_major, m->node_target_minor, NODE_VERSION_STRING);
	pgnw_worker_set_error("0A000", why);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("node worker \"%s\": bundle built for Node %d.%d, newer than this server's Node %s",
					m->name, m->node_target_major, m->node_target_minor, NODE_VERSION_STRING),
			 errhint("Deploy the worker again with pg-node-worker deploy against this server: it bundles for the Node version the server embeds.")));
}

/*
 * The worker's entry point (bgw_function_name); main_arg is its slot.
 */
void
pg_node_worker_main(Datum main_arg)
{
	char		name[BGW_EXTRALEN];
	char	   *args = NULL;
	PgnwManifest manifest;

	pgnw_main_thread = pthread_self();
	strlcpy(name, MyBgworkerEntry->bgw_extra, sizeof(name));
	pgnw_signals_install_postgres_handlers();
	pgnw_load_manifest(name, &manifest);

	/*
	 * Claim the shared slot (node_worker.workers); a worker in a crash loop
	 * backs off here, one that failed too often or was stopped exits 0 so
	 * that the postmaster does not start it again.
	 */
	if (!pgnw_worker_begin(DatumGetInt32(main_arg), name, &manifest,
						   pgnw_sig_term_pending, &args))
		proc_exit(0);
	pgnw_worker_info.args = args;
	pgnw_verify_bundle(&manifest);
	pgnw_check_node_target(&manifest);

	strlcpy(pgnw_worker_info.name, manifest.name, sizeof(pgnw_worker_info.name));
	if (manifest.start_time != BgWorkerStart_PostmasterStart)
		pgnw_connect(&manifest);
	pgnw_worker_info.started_at_ms =
		(double) (MyStartTimestamp / 1000) +
		(double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) * 1000.0;
	pgnw_worker_info.fork_to_connected_ms =
		(double) (GetCurrentTimestamp() - MyStartTimestamp) / 1000.0;

	SetConfigOption("application_name", manifest.name, PGC_USERSET, PGC_S_SESSION);
	pgstat_report_activity(STATE_IDLE, NULL);

	proc_exit(pgnw_run_node(&manifest));
}
