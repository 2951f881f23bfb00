/*-------------------------------------------------------------------------
 *
 * runtime.h
 *		State that pg_node_worker_runtime.so shares with the N-API bridge
 *		(native/), which resolves these symbols in the worker process.
 *		The runtime's own parts share theirs through runtime_process.h,
 *		runtime_signals.h, runtime_memory.h and runtime_embed.h, which are
 *		not exported.
 *
 * Threads, signals and V8: the naming rule
 * ----------------------------------------
 * A worker process runs PostgreSQL on its main thread only, and Node runs
 * threads of its own (V8's platform and GC helpers, libuv's threadpool,
 * worker_threads) next to the runtime's watchdog.  Where a function may
 * run decides what it may call, and its name says so:
 *
 * pgnw_<module>_*	(no marker) PostgreSQL side: the main thread, outside
 *		any V8 callback.  May call PostgreSQL and ereport, ERROR included,
 *		unless its comment says it never does; in the runtime it may also
 *		drive the embedder API (create the environment, run the event loop,
 *		call into JavaScript).  Every function of pg_node_worker.so is of
 *		this kind.
 *
 * pgnw_sig_*		async-signal-safe: signal handlers and what they call.
 *		Any thread, any moment.  Reads and writes flags (sig_atomic_t,
 *		lock-free atomics), sets the latch, sends signals, write(2)s;
 *		never calls PostgreSQL otherwise, never ereports, never touches V8.
 *		Being safe everywhere, they may be called from anywhere.  One
 *		exception, said in its comment: pgnw_sig_leave_after_give_up()
 *		leaves the process through proc_exit(1) from a handler that runs on
 *		the main thread outside PostgreSQL.
 *
 * pgnw_thread_*	runs on a thread other than the main one (the watchdog,
 *		libuv's threadpool).  Never calls PostgreSQL and never ereports: it
 *		reads flags and asks the main thread to act (SetLatch, InterruptPending
 *		for reading only).  May call the thread-safe parts of Node and V8
 *		(node::Stop, node::RequestInterrupt).
 *
 * pgnw_v8_*		called back by Node, V8 or the C++ runtime at a moment
 *		they choose (out of memory, fatal error, std::terminate, the heap
 *		limit, interrupts), on any thread.  Checks which thread it is on
 *		first: elsewhere than the main thread it behaves as pgnw_thread_*.
 *		On the main thread it may call PostgreSQL with interrupts held and
 *		never lets an ERROR escape (PG_TRY, or levels below ERROR), since
 *		a longjmp must not cross V8's frames; it may leave with proc_exit(1).
 *
 * Marked functions carry the marker instead of a module prefix: at a call
 * site, where a function may run matters more than where it lives.  Names
 * that cross into the bridge (below) keep the names the bridge knows; each
 * says where it may run.
 *
 * extension/runtime.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_NODE_WORKER_RUNTIME_H
#define PG_NODE_WORKER_RUNTIME_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct PgnwWorkerInfo
{
	char		name[64];
	char		database[64];
	char		role[64];
	bool		connected;		/* has a database connection (not start: postmaster) */
	const char *args;			/* launch arguments (JSON text) or NULL */
	double		started_at_ms;		/* fork time (MyStartTimestamp), Unix ms */
	double		fork_to_connected_ms;
} PgnwWorkerInfo;

typedef struct PgnwSignalStats
{
	volatile unsigned long forwarded;	/* arrived on another thread, re-sent */
	volatile unsigned long on_main; /* PostgreSQL handler ran (main thread) */
	volatile unsigned long restored;	/* replaced handlers put back */
} PgnwSignalStats;

/* memory outside the JavaScript heap, in bytes (doubles: they go to JS) */
typedef struct PgnwMemoryUsage
{
	double		buffers;		/* held in ArrayBuffers now */
	double		buffers_peak;
	double		buffer_limit;	/* -1: none */
	double		refused;		/* ArrayBuffer allocations refused */
	double		heap_limit;		/* the JavaScript heap limit in effect */
	double		code_range;		/* the code range isolates get; 0: V8's default */
} PgnwMemoryUsage;

/* the only thread allowed to call PostgreSQL */
extern pthread_t pgnw_main_thread;
/* the main thread is inside a guarded PostgreSQL call */
extern volatile sig_atomic_t pgnw_in_postgres;
/* SIGTERM received: the worker is shutting down */
extern volatile sig_atomic_t pgnw_shutdown_requested;
/* who the worker is; filled on the main thread before Node starts */
extern PgnwWorkerInfo pgnw_worker_info;
/* what the signal trampolines did (any thread writes, any reads) */
extern PgnwSignalStats pgnw_signal_stats;

/* Main thread: the ArrayBuffer budget and the heap limit.  Never ereports. */
extern void pgnw_memory_usage(PgnwMemoryUsage *out);

/*
 * Main thread: unmaps this process's pages of read-only file mappings
 * (libraries' code and constants, ICU data) that it never wrote, so an
 * idle worker holds only what it touches again; returns the kB dropped.
 * Never ereports.
 */
extern long pgnw_drop_file_pages(void);

/*
 * JS asked to exit (process.exit, main settled); code is mapped to 0 or 1.
 * Main thread, also from inside V8; never calls PostgreSQL.
 */
extern void pgnw_request_exit(int code);

#ifdef __cplusplus
}
#endif

#endif							/* PG_NODE_WORKER_RUNTIME_H */
