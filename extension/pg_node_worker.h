/*-------------------------------------------------------------------------
 *
 * pg_node_worker.h
 *	  Interface exported by pg_node_worker.so, the library named in
 *	  shared_preload_libraries: the GUC variables and the worker manifest
 *	  reader.
 *
 * pg_node_worker_runtime.so (the worker entry point, C++) uses these to
 * re-read its own manifest in the worker process.  The worker inherited
 * pg_node_worker.so from the postmaster, which loaded it with RTLD_GLOBAL,
 * so the symbols resolve at load time without a link-time dependency.
 *
 * Include after postgres.h.  Usable from C and C++.
 *
 * extension/pg_node_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_NODE_WORKER_H
#define PG_NODE_WORKER_H

#ifdef __cplusplus
extern "C"
{
#endif

#include "postmaster/bgworker.h"

/*
 * A validated worker manifest (<node_worker.directory>/<name>.json).
 */
typedef struct PgnwManifest
{
	char		name[64];
	char		database[NAMEDATALEN];
	char		role[NAMEDATALEN];	/* "" = bootstrap superuser */
	int			restart_seconds;	/* BGW_NEVER_RESTART for "never" */
	BgWorkerStartTime start_time;
	char		bundle_path[MAXPGPATH]; /* absolute */
	char		sha256[65];		/* lower-case hex, "" if not given */
} PgnwManifest;

/*
 * PGDLLEXPORT: from PostgreSQL 16 on, PGXS compiles modules with
 * -fvisibility=hidden, so everything another library needs must say so.
 */

/* node_worker.directory as set */
extern PGDLLEXPORT char *pgnw_directory_guc;

/* node_worker.shutdown_grace_ms */
extern PGDLLEXPORT int pgnw_shutdown_grace_ms;

/* node_worker.heap_limit_mb */
extern PGDLLEXPORT int pgnw_heap_limit_mb;

/*
 * Absolute path of the directory (relative values are relative to DataDir).
 * Never NULL; the result points to a static buffer.
 */
extern PGDLLEXPORT const char *pgnw_directory(void);

/*
 * Parse and validate the manifest at "path".  Never ereports.  On success
 * fills *out and returns true.  On failure returns false, leaves *out
 * untouched and sets *reason to a malloc'd English phrase (the caller
 * free()s it); *reason is NULL only if even that allocation failed.
 *
 * Uses palloc internally (in a private memory context that it deletes), so
 * call it only from the process's main thread.
 */
extern PGDLLEXPORT bool pgnw_read_manifest(const char *path, PgnwManifest *out,
										   char **reason);

/* ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ */
extern PGDLLEXPORT bool pgnw_valid_worker_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif							/* PG_NODE_WORKER_H */
