/*-------------------------------------------------------------------------
 *
 * runtime_embed.cc
 *		Node embedded in a worker process: process-wide start-up, the
 *		isolate and its environment (Node's CommonEnvironmentSetup steps,
 *		by hand), the helper threads, the bootstrap that loads runtime.js,
 *		and the event loop, driven by PostgreSQL's WaitEventSet, which hands
 *		events to JavaScript through the runtime's dispatch function.
 *
 * The loop waits on the latch, postmaster death and libuv's backend fd at
 * once, for as long as libuv's next timer allows, so an idle worker sleeps
 * with no CPU.  While JavaScript runs, the loop does not: the watchdog
 * thread then services PostgreSQL interrupts by interrupting V8, and stops
 * JavaScript that outlives a shutdown, runs out of memory, loses its
 * postmaster, or has a thread that aborted.
 *
 * Node's C++ embedder API is not stable across majors: what differs between
 * Node 18, 20, 22 and 24 is in node_compat.h.  From Node 20 on, a worker
 * starts from a snapshot of Node's bootstrapped state when there is one
 * (libnode's built-in one, or snapshot.blob made at install time), which
 * saves compiling Node's own JavaScript at every start; runtime.js itself
 * is loaded with a V8 code cache the workers keep (pgnw_embed_bootstrap_js).
 *
 * extension/runtime_embed.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "node_compat.h"
#include "runtime_embed.h"
#include "runtime_memory.h"
#include "runtime_process.h"
#include "runtime_signals.h"

namespace node
{
/* exported by libnode, not declared in node.h: NewIsolate()'s settings */
NODE_EXTERN void SetIsolateCreateParamsForNode(v8::Isolate::CreateParams *params);
}

extern "C"
{
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "compat.h"
#include "pg_node_worker.h"
#include "runtime.h"
}

/* threads Node's platform runs for V8 (GC, compilation) */
#define PGNW_PLATFORM_THREADS 2
/* the watchdog's period, and how many periods between restoring handlers */
#define PGNW_WATCHDOG_TICK_US (20 * 1000)
#define PGNW_WATCHDOG_RESTORE_TICKS 5

/* the worker's event loop (static: libuv keeps pointers into it) */
static uv_loop_t pgnw_embed_loop;

/*
 * A handle of ours, referenced only during the uv_run() of each turn of the
 * loop: uv_run() does not poll a loop that has no referenced active handle,
 * and Node's platform posts its foreground tasks (after a GC, for one)
 * through an unreferenced one.  Unpolled, that wake-up would stay ready in
 * libuv's epoll set, whose fd is in the worker's wait set: every wait would
 * return at once, and a worker that only waits for messages or calls would
 * spin.
 */
static uv_async_t pgnw_embed_poll_handle;
/* the watchdog asked V8 to run pgnw_v8_service_interrupts() */
static std::atomic<bool> pgnw_embed_interrupt_requested{false};
/* the watchdog stopped JS because it outlived the shutdown grace period */
static std::atomic<bool> pgnw_embed_grace_expired{false};

/*
 * The inspected worker's debugger guard: a pipe from the watchdog to a
 * JavaScript thread of the runtime (src/runtime/inspect.ts) holding an
 * inspector session of its own.  A main thread paused in the debugger runs
 * nothing but the inspector's messages, so the watchdog writes 'i' when it
 * asks for PostgreSQL's interrupts to be serviced (the guard's message
 * wakes the pause, which then runs them) and 't' once on SIGTERM (the guard
 * resumes the pause, and any later one, so the worker stops as usual).
 * -1: no guard.
 */
static int	pgnw_embed_guard_pipe[2] = {-1, -1};
static std::atomic<bool> pgnw_embed_guard_told_term{false};


/* ------------------------------------------------------------- start-up */

/* "--max-old-space-size=<heap_mb>" */
static std::string
pgnw_embed_heap_flag(int heap_mb)
{
	return "--max-old-space-size=" + std::to_string(heap_mb);
}

/*
 * Node's per-process start-up, with everything that would touch process
 * state PostgreSQL owns turned off (signals, stdio, resource limits,
 * NODE_OPTIONS), then V8 on Node's platform.  The heap limit is V8's one
 * flag: V8 folds its flags into the tag a start-up snapshot must match, so
 * a snapshot blob is made per heap limit (pgnw_embed_snapshot_data).
 */
std::unique_ptr<node::MultiIsolatePlatform>
pgnw_embed_start_node(int heap_mb, const sigset_t *saved_mask)
{
	std::vector<std::string> init_args = {"postgres", pgnw_embed_heap_flag(heap_mb)};
	/* a unique_ptr up to Node 20, a shared_ptr from 22 on */
	auto		result =
		node::InitializeOncePerProcess(init_args, {
			node::ProcessInitializationFlags::kNoInitializeV8,
			node::ProcessInitializationFlags::kNoInitializeNodeV8Platform,
			node::ProcessInitializationFlags::kNoDefaultSignalHandling,
			node::ProcessInitializationFlags::kNoStdioInitialization,
			node::ProcessInitializationFlags::kDisableNodeOptionsEnv,
			node::ProcessInitializationFlags::kNoAdjustResourceLimits,
			node::ProcessInitializationFlags::kNoUseLargePages,
			node::ProcessInitializationFlags::kNoPrintHelpOrVersionOutput,
			node::ProcessInitializationFlags::kNoInitOpenSSL,
		});

	if (result->early_return() || !result->errors().empty())
	{
		pgnw_signals_restore_mask(saved_mask);
		for (const std::string &err : result->errors())
			ereport(LOG, (errmsg("node worker \"%s\": %s", pgnw_worker_info.name, err.c_str())));
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize the Node.js runtime")));
	}

	std::unique_ptr<node::MultiIsolatePlatform> platform =
		node::MultiIsolatePlatform::Create(PGNW_PLATFORM_THREADS);

	v8::V8::InitializePlatform(platform.get());
	v8::V8::Initialize();
	return platform;
}

#if PGNW_HAVE_SNAPSHOT_API
/* the snapshot the isolate was made from; V8 reads it while the isolate lives */
static node::EmbedderSnapshotData::Pointer pgnw_embed_snapshot;

/*
 * The start-up snapshot to make the isolate from, or NULL.  A libnode
 * built without a snapshot of its own gets snapshot-<heap_mb>.blob in the
 * runtime's directory, made at install time by the same Node with the same
 * heap limit (scripts/snapshot.sh: V8 refuses a blob made under other
 * flags, and the heap limit is one).  No blob for this heap limit: start
 * without one, slower, said at DEBUG1.  A blob that does not load (a libnode
 * upgraded without reinstalling) is logged and ignored.  Else libnode's
 * built-in snapshot when it has one (it is not checked against the flags).
 */
static const node::EmbedderSnapshotData *
pgnw_embed_snapshot_data(int heap_mb)
{
	char		path[MAXPGPATH];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/pg_node_worker/snapshot-%d.blob", pkglib_path, heap_mb);
	f = fopen(path, "rb");
	if (f != NULL)
	{
		pgnw_embed_snapshot = node::EmbedderSnapshotData::FromFile(f);
		fclose(f);
		if (!pgnw_embed_snapshot)
			ereport(LOG,
					(errmsg("node worker \"%s\": the start-up snapshot \"%s\" does not fit this Node build; starting without it",
							pgnw_worker_info.name, path),
					 errhint("Run make install again, which makes the snapshot with the installed Node.")));
	}
	else if (!PGNW_NODE_BUILTIN_SNAPSHOT)
		ereport(DEBUG1,
				(errmsg_internal("node worker \"%s\": no start-up snapshot for a heap limit of %d MB (%s); starting without one",
								 pgnw_worker_info.name, heap_mb, path)));
	if (!pgnw_embed_snapshot && PGNW_NODE_BUILTIN_SNAPSHOT)
		pgnw_embed_snapshot = node::EmbedderSnapshotData::BuiltinSnapshotData();
	return pgnw_embed_snapshot.get();
}
#endif							/* PGNW_HAVE_SNAPSHOT_API */

/*
 * The isolate, as Node's NewIsolate() makes it, with the ArrayBuffer
 * allocator of runtime_memory.cc (Node's own, budgeted), from the start-up
 * snapshot when there is one.  When the memory plan sizes the code range
 * (a data-segment limit on Node 24, see PGNW_CODE_RANGE_COUNTS_AS_DATA) or
 * the manifest caps the young generation (young_mb), the isolate is made
 * here, the same way but with those constraints, and without a snapshot:
 * NewIsolate() takes no CreateParams, Node's internal snapshot set-up is not
 * exported, and a V8 flag instead would change the flags a snapshot must
 * have been made with.
 */
v8::Isolate *
pgnw_embed_new_isolate(node::MultiIsolatePlatform *platform, int heap_mb, int young_mb,
					   const sigset_t *saved_mask)
{
	v8::Isolate *isolate;
	int			code_range_mb = pgnw_memory_code_range_mb();

	if (uv_loop_init(&pgnw_embed_loop) != 0)
	{
		pgnw_signals_restore_mask(saved_mask);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize the event loop")));
	}
#if PGNW_HAVE_SNAPSHOT_API
	if (code_range_mb == 0 && young_mb == 0)
		isolate = node::NewIsolate(pgnw_memory_allocator(), &pgnw_embed_loop, platform,
								   pgnw_embed_snapshot_data(heap_mb));
	else
#endif
	{
		v8::Isolate::CreateParams params;

		params.array_buffer_allocator = pgnw_memory_allocator();
		node::SetIsolateCreateParamsForNode(&params);
		if (code_range_mb > 0)
			params.constraints.set_code_range_size_in_bytes((size_t) code_range_mb * 1024 * 1024);
		/* after Node's defaults, which size it by the machine's memory */
		if (young_mb > 0)
			params.constraints.set_max_young_generation_size_in_bytes((size_t) young_mb * 1024 * 1024);
		isolate = v8::Isolate::Allocate();
		platform->RegisterIsolate(isolate, &pgnw_embed_loop);
		v8::Isolate::Initialize(isolate, params);
		node::SetIsolateUpForNode(isolate);
	}
	if (isolate == nullptr)
	{
		pgnw_signals_restore_mask(saved_mask);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not create the JavaScript engine's isolate")));
	}
	return isolate;
}

/*
 * Whether this worker opens Node's inspector: node_worker.inspect_worker
 * names it and node_worker.inspect_port is set.  Main thread; never
 * ereports.
 */
static bool
pgnw_embed_inspected(void)
{
	return pgnw_inspect_port > 0 && pgnw_inspect_worker != NULL &&
		strcmp(pgnw_inspect_worker, pgnw_worker_info.name) == 0;
}

/*
 * Node's IsolateData, a context and the environment in it: argv is just
 * "postgres", the heap limit is its one exec argument, and Node gives up
 * no process state it does not have.  Node creates its inspector agent
 * only for the worker to be inspected, which opens it from JavaScript
 * (runtime.js); never with kOwnsInspector, the flag under which Node, on
 * every major, installs a SIGUSR1 handler that starts the inspector on
 * that signal: SIGUSR1 is PostgreSQL's.  From a snapshot, the context is
 * the snapshot's, already bootstrapped.
 */
node::Environment *
pgnw_embed_new_environment(v8::Isolate *isolate, node::MultiIsolatePlatform *platform,
						   int heap_mb, v8::Local<v8::Context> *context,
						   const sigset_t *saved_mask)
{
	std::vector<std::string> args = {"postgres"};
	std::vector<std::string> exec_args = {pgnw_embed_heap_flag(heap_mb)};
	node::EnvironmentFlags::Flags flags = static_cast<node::EnvironmentFlags::Flags>(
		node::EnvironmentFlags::kOwnsProcessState |
		(pgnw_embed_inspected() ? 0 : node::EnvironmentFlags::kNoCreateInspector));
	node::Environment *env = nullptr;

#if PGNW_HAVE_SNAPSHOT_API
	if (pgnw_embed_snapshot)
	{
		node::IsolateData *isolate_data =
			node::CreateIsolateData(isolate, &pgnw_embed_loop, platform, pgnw_memory_allocator(),
									pgnw_embed_snapshot.get());

		env = node::CreateEnvironment(isolate_data, v8::Local<v8::Context>(), args, exec_args,
									  flags);
		if (env != nullptr)
			*context = node::GetMainContext(env);
	}
	else
#endif
	{
		node::IsolateData *isolate_data =
			node::CreateIsolateData(isolate, &pgnw_embed_loop, platform, pgnw_memory_allocator());

		*context = node::NewContext(isolate);
		if (!context->IsEmpty())
		{
			v8::Context::Scope context_scope(*context);

			env = node::CreateEnvironment(isolate_data, *context, args, exec_args, flags);
		}
	}
	if (env == nullptr)
	{
		pgnw_signals_restore_mask(saved_mask);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not create the Node.js environment")));
	}
	pgnw_process_env = env;
	return env;
}

/* process.exit() and Node's own exits go through pgnw_request_exit(). */
void
pgnw_embed_catch_process_exit(node::Environment *env)
{
	node::SetProcessExitHandler(env, [](node::Environment *e, int code) {
		pgnw_request_exit(code);
	});
}


/* ---------------------------------------------------------------- threads */

/* The threadpool's first job: nothing, on a threadpool thread. */
static void
pgnw_thread_noop(uv_work_t *req)
{
}

/* The threadpool's first job is done (main thread). */
static void
pgnw_embed_threadpool_done(uv_work_t *req, int status)
{
	*(bool *) req->data = true;
}

/*
 * Runs on the main thread from inside V8 (node::RequestInterrupt), or from
 * the loop: CHECK_FOR_INTERRUPTS, with no error escaping into V8.
 */
static void
pgnw_v8_service_interrupts(void *arg)
{
	pgnw_embed_interrupt_requested = false;
	if (!InterruptPending)
		return;

	MemoryContext oldcontext = CurrentMemoryContext;

	pgnw_in_postgres = 1;
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		/* a cancel with no statement running has nothing to cancel */
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
			ereport(LOG,
					(errmsg("node worker \"%s\": error while servicing interrupts: %s",
							pgnw_worker_info.name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgnw_in_postgres = 0;
}

/* Wakes the debugger guard with one byte; a full pipe already holds a wake-up. */
static void
pgnw_thread_tell_guard(char what)
{
	if (pgnw_embed_guard_pipe[1] >= 0)
		(void) !write(pgnw_embed_guard_pipe[1], &what, 1);
}

/*
 * The watchdog thread.  It never calls PostgreSQL: it reads flags set by
 * signal handlers and asks the main thread to act.
 *  - PostgreSQL interrupts (ProcSignalBarrier for DROP DATABASE, cancel, ...)
 *    pending while JS runs: interrupt V8 and run CHECK_FOR_INTERRUPTS there.
 *  - Postmaster gone, out of memory, a thread aborted, or SIGTERM plus
 *    node_worker.shutdown_grace_ms: stop JS (and the statement running).
 *  - Leaving cleanly failed for 10 s: abort, the crash it would have been.
 */
static void *
pgnw_thread_watchdog(void *arg)
{
	for (unsigned long tick = 0;; tick++)
	{
		usleep(PGNW_WATCHDOG_TICK_US);

		if (tick % PGNW_WATCHDOG_RESTORE_TICKS == 0)
			pgnw_thread_restore_handlers();

		if (InterruptPending && !pgnw_in_postgres && !pgnw_embed_interrupt_requested.exchange(true))
		{
			node::RequestInterrupt(pgnw_process_env, pgnw_v8_service_interrupts, nullptr);
			pgnw_thread_tell_guard('i');
		}
		if (pgnw_sig_term_at_ms() != 0 && !pgnw_embed_guard_told_term.exchange(true))
			pgnw_thread_tell_guard('t');

		/* the main thread only notices postmaster death in its wait */
		if (getppid() != PostmasterPid)
			pgnw_thread_stop_js(false);

		/* out of memory, or a thread aborted: stop JS; the main thread leaves cleanly */
		if (pgnw_sig_out_of_memory() || pgnw_sig_thread_abort_signal() != 0)
			pgnw_thread_stop_js(true);

		if (pgnw_sig_leaving_overdue())
		{
			signal(SIGABRT, SIG_DFL);
			abort();
		}

		int64_t		since = pgnw_sig_term_at_ms();

		if (since != 0 && pgnw_sig_now_ms() - since >= pgnw_shutdown_grace_ms &&
			!pgnw_process_force_stopped.load())
		{
			pgnw_embed_grace_expired = true;
			pgnw_thread_stop_js(true);
		}
	}
	return nullptr;
}

/*
 * Make the helper threads while every signal is blocked, so that they
 * never take one: libuv's threadpool (made on first use, so one job is run)
 * and the watchdog; before it, the debugger guard's pipe of an inspected
 * worker (without one, a worker paused in the debugger does not stop
 * until it is resumed).
 */
void
pgnw_embed_start_threads(void)
{
	uv_work_t	req;
	bool		done = false;
	pthread_t	watchdog;

	if (pgnw_embed_inspected() &&
		pipe2(pgnw_embed_guard_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		ereport(LOG,
				(errmsg("node worker \"%s\": could not create the debugger guard's pipe: %m",
						pgnw_worker_info.name),
				 errdetail("A worker paused in the debugger does not stop until it is resumed.")));
		pgnw_embed_guard_pipe[0] = pgnw_embed_guard_pipe[1] = -1;
	}

	req.data = &done;
	uv_queue_work(&pgnw_embed_loop, &req, pgnw_thread_noop, pgnw_embed_threadpool_done);
	while (!done)
		uv_run(&pgnw_embed_loop, UV_RUN_ONCE);

	if (pthread_create(&watchdog, NULL, pgnw_thread_watchdog, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the watchdog thread: %m")));
	pthread_detach(watchdog);
}


/* ----------------------------------------------------------- the loop */

/* Call the runtime's dispatch function with an event name. */
static void
pgnw_embed_dispatch(v8::Isolate *isolate, v8::Local<v8::Context> context,
					v8::Global<v8::Function> &dispatch, const char *event)
{
	v8::HandleScope scope(isolate);
	v8::Local<v8::Value> argv[1] = {
		v8::String::NewFromUtf8(isolate, event).ToLocalChecked()
	};

	(void) node::MakeCallback(isolate, context->Global(), dispatch.Get(isolate),
							  1, argv, {0, 0});
}

/* SIGHUP: re-read the configuration; an error in it is reported, not raised. */
static void
pgnw_embed_reload_config(void)
{
	ConfigReloadPending = false;
	pgnw_in_postgres = 1;
	PG_TRY();
	{
		ProcessConfigFile(PGC_SIGHUP);
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
	pgnw_in_postgres = 0;
}

/*
 * Hand what happened since the last turn to JS: SIGTERM (once), a reload,
 * and, after a latch wake-up, the messages from call(), notify() and
 * wake(), and that jobs committed for the worker's queues.  Only after a
 * latch wake-up: a notify whose transaction is still committing stays
 * queued until its committer sets the latch again.
 * Returns whether JS was called (then the next wait does not sleep).
 */
static bool
pgnw_embed_handle_events(v8::Isolate *isolate, v8::Local<v8::Context> context,
						 v8::Global<v8::Function> &dispatch, bool *sigterm_dispatched,
						 bool latch_seen)
{
	bool		dispatched = false;

	if (pgnw_sig_term_pending() && !*sigterm_dispatched)
	{
		*sigterm_dispatched = true;
		pgnw_embed_dispatch(isolate, context, dispatch, "sigterm");
		dispatched = true;
	}
	if (ConfigReloadPending)
	{
		pgnw_embed_reload_config();
		pgnw_embed_dispatch(isolate, context, dispatch, "reload");
		dispatched = true;
	}
	if (InterruptPending)
		pgnw_v8_service_interrupts(nullptr);
	if (latch_seen && pgnw_worker_has_messages(pgnw_worker_slot()))
		pgnw_embed_dispatch(isolate, context, dispatch, "messages");
	if (latch_seen && pgnw_worker_take_jobs_wake(pgnw_worker_slot()))
		pgnw_embed_dispatch(isolate, context, dispatch, "jobs");
	return dispatched;
}

/*
 * One wait on the latch, postmaster death and libuv's backend fd: no sleep
 * after a dispatch, none at all with nothing alive in libuv, else until
 * libuv's next timer.  Returns whether the latch was set.
 */
static bool
pgnw_embed_wait(WaitEventSet *set, bool dispatched)
{
	WaitEvent	events[3];
	long		timeout;
	int			n;
	bool		latch_seen = false;

	if (dispatched)
		timeout = 0;
	else if (!uv_loop_alive(&pgnw_embed_loop))
		timeout = -1;
	else
		timeout = uv_backend_timeout(&pgnw_embed_loop);

	n = WaitEventSetWait(set, timeout, events, 3, pgnw_wait_event(PGNW_WAIT_MAIN));
	for (int i = 0; i < n; i++)
	{
		if (events[i].events & WL_POSTMASTER_DEATH)
		{
			/* nothing left to serve; leave without running more JS */
			proc_exit(1);
		}
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_seen = true;
		}
	}
	return latch_seen;
}

/*
 * The event loop: run what libuv has ready, hand events to JS, report what
 * the other threads noticed, wait.  Until the worker leaves.
 */
static void
pgnw_embed_loop_run(v8::Isolate *isolate, v8::Local<v8::Context> context,
					v8::Global<v8::Function> &dispatch)
{
	WaitEventSet *set;
	bool		sigterm_dispatched = false;
	bool		latch_seen = true;	/* messages may have arrived before the loop */

	set = pgnw_create_wait_event_set(3);
	/* its name is registered here, where an ERROR is still a plain start-up failure */
	(void) pgnw_wait_event(PGNW_WAIT_MAIN);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, uv_backend_fd(&pgnw_embed_loop), NULL, NULL);
	if (uv_async_init(&pgnw_embed_loop, &pgnw_embed_poll_handle, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize the event loop's poll handle")));
	uv_unref((uv_handle_t *) &pgnw_embed_poll_handle);

	while (!pgnw_process_exit_requested)
	{
		bool		dispatched;

		/* polls even when nothing of JS's is alive (pgnw_embed_poll_handle) */
		uv_ref((uv_handle_t *) &pgnw_embed_poll_handle);
		uv_run(&pgnw_embed_loop, UV_RUN_NOWAIT);
		uv_unref((uv_handle_t *) &pgnw_embed_poll_handle);
		if (pgnw_process_exit_requested)
			break;
		dispatched = pgnw_embed_handle_events(isolate, context, dispatch,
											  &sigterm_dispatched, latch_seen);
		pgnw_signals_report_restored();
		pgnw_memory_report_exhaustion();
		if (pgnw_process_exit_requested)
			break;
		latch_seen = pgnw_embed_wait(set, dispatched);
	}
	FreeWaitEventSet(set);
}

/* s as a JavaScript string literal */
static std::string
pgnw_embed_js_string(const char *s)
{
	std::string out = "\"";

	for (const char *p = s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			out += '\\';
		out += *p;
	}
	return out + "\"";
}

/*
 * The function runtime.js registered as globalThis.__pgnwDispatch, taken
 * off the global object; false (and LOG) when there is none.
 */
static bool
pgnw_embed_take_dispatch(v8::Isolate *isolate, v8::Local<v8::Context> context,
						 v8::Global<v8::Function> &dispatch)
{
	v8::Local<v8::String> key = v8::String::NewFromUtf8Literal(isolate, "__pgnwDispatch");
	v8::Local<v8::Value> fn;

	if (!context->Global()->Get(context, key).ToLocal(&fn) || !fn->IsFunction())
	{
		ereport(LOG,
				(errmsg("node worker \"%s\": the runtime did not register its dispatch function",
						pgnw_worker_info.name)));
		return false;
	}
	dispatch.Reset(isolate, fn.As<v8::Function>());
	if (context->Global()->Delete(context, key).IsNothing())
		ereport(DEBUG1, (errmsg("could not remove the dispatch function from the global object")));
	return true;
}

/*
 * The bootstrap: loads runtime.js as CommonJS would (the same wrapper and
 * require), through vm.Script so that V8's code cache can be used, and
 * calls its start().  Compiling runtime.js costs a worker some milliseconds
 * at every start; with the cache, V8 deserializes the bytecode of every
 * function the runtime had compiled 500 ms after an earlier start instead.
 * The cache is made by the workers themselves (the install cannot run
 * runtime.js: it needs a worker process) into the worker directory's
 * .cache/, private to the server's OS user like the bundles beside it, and
 * named after what V8 does not check itself: runtime.js's size, mtime and
 * inode, and the Node version.  V8 rejects a cache of another V8 version,
 * of other V8 flags (the heap limit) or of a source of another length; a
 * rejected or missing cache is made again (written to a temporary file,
 * then renamed: workers starting together may race, and the last rename
 * wins), and the caches of other runtime.js files are then removed.  No
 * cache directory, or one the worker cannot write: no cache, nothing said.
 * pgnw_embed_run() declares rtdir, bundlePath, inspect and cacheDir before
 * it.
 */
static const char pgnw_embed_bootstrap_js[] = R"JS(
const Module = require('module');
const fs = require('fs');
const vm = require('vm');
const file = rtdir + '/runtime.js';
const req = Module.createRequire(file);
globalThis.require = req;
const source = fs.readFileSync(file, 'utf8');
let cachePath = null;
let cachedData;
if (cacheDir) {
  try {
    const st = fs.statSync(file);
    cachePath = `${cacheDir}/runtime-${process.version}-${st.size}-${Math.trunc(st.mtimeMs)}-${st.ino}.v8cache`;
    cachedData = fs.readFileSync(cachePath);
  } catch {
    cachedData = undefined;
  }
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, req, mod, file, rtdir);
mod.exports.start(rtdir, bundlePath, inspect);
if (cachePath && (cachedData === undefined || script.cachedDataRejected)) {
  setTimeout(() => {
    const tmp = `${cachePath}.${process.pid}`;
    try {
      fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(tmp, cachePath);
    } catch {
      try { fs.unlinkSync(tmp); } catch {}
      return;
    }
    // the caches of earlier installs of runtime.js are of no use any more
    try {
      for (const f of fs.readdirSync(cacheDir))
        if (f.startsWith('runtime-') && f.endsWith('.v8cache') && `${cacheDir}/${f}` !== cachePath)
          fs.unlinkSync(`${cacheDir}/${f}`);
    } catch {}
  }, 500).unref();
}
)JS";

/*
 * Where workers keep the code cache of runtime.js: .cache/ in the worker
 * directory (the directory of the manifests), or "" when unknown.
 */
static std::string
pgnw_embed_cache_dir(void)
{
	char		path[MAXPGPATH];
	char	   *slash;

	if (!pgnw_manifest_path(pgnw_worker_info.name, path) ||
		(slash = strrchr(path, '/')) == NULL)
		return "";
	*slash = '\0';
	return std::string(path) + "/.cache";
}

/*
 * Load runtime.js (from $libdir/pg_node_worker), which loads the bridge
 * and the bundle and starts main(); then run the event loop until the
 * worker leaves.  A bootstrap that fails ends the worker with exit 1.
 */
void
pgnw_embed_run(node::Environment *env, v8::Isolate *isolate, v8::Local<v8::Context> context,
			   const char *bundle_path)
{
	char		rtdir[MAXPGPATH];
	v8::Global<v8::Function> dispatch;

	snprintf(rtdir, sizeof(rtdir), "%s/pg_node_worker", pkglib_path);

	/*
	 * The inspector's port (0: none), whether the worker starts without it,
	 * and the read end of the debugger guard's pipe (-1: no guard).
	 */
	std::string inspect = "{ port: " +
		std::to_string(pgnw_embed_inspected() ? pgnw_inspect_port : 0) +
		", optional: " + (pgnw_inspect_optional ? "true" : "false") +
		", guardFd: " + std::to_string(pgnw_embed_guard_pipe[0]) + " }";
	std::string bootstrap =
		"const rtdir = " + pgnw_embed_js_string(rtdir) +
		", bundlePath = " + pgnw_embed_js_string(bundle_path) +
		", inspect = " + inspect +
		", cacheDir = " + pgnw_embed_js_string(pgnw_embed_cache_dir().c_str()) + ";\n" +
		pgnw_embed_bootstrap_js;

	v8::TryCatch try_catch(isolate);

	if (node::LoadEnvironment(env, bootstrap.c_str()).IsEmpty() && !pgnw_process_exit_requested)
	{
		v8::String::Utf8Value msg(isolate, try_catch.Exception());

		ereport(LOG,
				(errmsg("node worker \"%s\" failed to start: %s",
						pgnw_worker_info.name, *msg ? *msg : "unknown error")));
		pgnw_request_exit(1);
	}
	if (pgnw_process_exit_requested)
		return;
	if (pgnw_embed_take_dispatch(isolate, context, dispatch))
		pgnw_embed_loop_run(isolate, context, dispatch);
	else
		pgnw_request_exit(1);
}

/* The main thread says that the watchdog had to stop JS at shutdown, once. */
void
pgnw_embed_report_grace_expired(void)
{
	static bool reported = false;

	if (reported || !pgnw_embed_grace_expired)
		return;
	reported = true;
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\" did not stop within node_worker.shutdown_grace_ms (%d ms): its JavaScript was stopped",
					pgnw_worker_info.name, pgnw_shutdown_grace_ms),
			 errhint("End main() when ctx.signal aborts; a statement cancelled because the worker is shutting down fails with SQLSTATE 57014, which should not be swallowed.")));
	RESUME_INTERRUPTS();
}
