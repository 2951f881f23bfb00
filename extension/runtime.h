/*-------------------------------------------------------------------------
 *
 * runtime.h
 *		State that pg_node_worker_runtime.so shares with the N-API bridge
 *		(native/), which resolves these symbols in the worker process.
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
} PgnwMemoryUsage;

/* the only thread allowed to call PostgreSQL */
extern pthread_t pgnw_main_thread;
/* the main thread is inside a guarded PostgreSQL call */
extern volatile sig_atomic_t pgnw_in_postgres;
/* SIGTERM received: the worker is shutting down */
extern volatile sig_atomic_t pgnw_shutdown_requested;
extern PgnwWorkerInfo pgnw_worker_info;
extern PgnwSignalStats pgnw_signal_stats;

extern void pgnw_memory_usage(PgnwMemoryUsage *out);
/*
 * Unmaps this process's pages of read-only file mappings (libraries' code and
 * constants, ICU data) that it never wrote, so an idle worker holds only what
 * it touches again; returns the kB dropped.
 */
extern long pgnw_drop_file_pages(void);

/* JS asked to exit (process.exit, main settled); code is mapped to 0 or 1 */
extern void pgnw_request_exit(int code);

#ifdef __cplusplus
}
#endif

#endif							/* PG_NODE_WORKER_RUNTIME_H */
