/*-------------------------------------------------------------------------
 *
 * pg_node_worker.h
 *	  What pg_node_worker.so (the library in shared_preload_libraries)
 *	  exports to the other two libraries of the project: the worker entry
 *	  point pg_node_worker_runtime.so (extension/runtime*.cc) and the N-API
 *	  bridge pg_node_worker_bridge.node (native/).  Nothing else belongs
 *	  here: a declaration used only inside pg_node_worker.so lives in the
 *	  header of the module that defines it (manifest.h, supervisor.h,
 *	  control.h, inbox.h, shared.h), where it is not exported.
 *
 * A worker process inherited pg_node_worker.so from the postmaster, which
 * loaded it with RTLD_GLOBAL, so these symbols resolve when the runtime and
 * the bridge are loaded, without a link-time dependency.
 *
 * Everything here runs on the main thread of a PostgreSQL process and may
 * ereport unless its comment says otherwise (the naming rule for threads,
 * signal handlers and V8 callbacks is written down in runtime.h).
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

#include <time.h>

#include "postmaster/bgworker.h"
#include "datatype/timestamp.h"

/*
 * Microseconds on CLOCK_MONOTONIC, for every deadline and wait: the clock is
 * system-wide, so values compare across processes, and a wall-clock step
 * (NTP, a VM resumed) neither expires a call early nor stretches a backoff.
 * Wall-clock TimestampTz stays for what users read (started_at and such).
 */
static inline int64
pgnw_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* pgnw_clock_us() ms milliseconds from now */
static inline int64
pgnw_clock_after_ms(long ms)
{
	return pgnw_clock_us() + (int64) ms * 1000;
}

/* milliseconds from now until "until" on pgnw_clock_us() (<= 0: passed) */
static inline long
pgnw_clock_ms_until(int64 until)
{
	int64		left = until - pgnw_clock_us();

	return left <= 0 ? 0 : (long) ((left + 999) / 1000);
}

/*
 * PGDLLEXPORT: from PostgreSQL 16 on, PGXS compiles modules with
 * -fvisibility=hidden, so everything another library needs must say so.
 */

/* ---- settings the worker process reads (defined in supervisor.c) ---- */

/* node_worker.shutdown_grace_ms */
extern PGDLLEXPORT int pgnw_shutdown_grace_ms;

/* node_worker.heap_limit_mb */
extern PGDLLEXPORT int pgnw_heap_limit_mb;

/* node_worker.buffer_limit_mb (-1: none of its own) */
extern PGDLLEXPORT int pgnw_buffer_limit_mb;

/*
 * node_worker.inspect_worker, node_worker.inspect_port and
 * node_worker.inspect_optional (defined in pg_node_worker.c): the one
 * worker that opens Node's inspector on 127.0.0.1, the port (0: none), and
 * whether it starts without one when the port cannot be had.
 */
extern PGDLLEXPORT char *pgnw_inspect_worker;
extern PGDLLEXPORT int pgnw_inspect_port;
extern PGDLLEXPORT bool pgnw_inspect_optional;


/* ---- manifest.c: worker manifests ---- */

/* ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ */
#define PGNW_WORKER_NAME_MAX 63

/* bytes of a manifest's callers list, with its terminating NUL */
#define PGNW_CALLERS_MAX 512

/*
 * A validated worker manifest (<node_worker.directory>/<name>.json).
 */
typedef struct PgnwManifest
{
	char		name[PGNW_WORKER_NAME_MAX + 1];
	char		database[NAMEDATALEN];
	char		role[NAMEDATALEN];	/* "" = bootstrap superuser */
	int			restart_seconds;	/* BGW_NEVER_RESTART for "never" */
	BgWorkerStartTime start_time;
	char		bundle_path[MAXPGPATH]; /* absolute */
	char		sha256[65];		/* lower-case hex, "" if not given */
	char		callers[PGNW_CALLERS_MAX];	/* roles that may call/notify/wake it,
											 * comma-separated */
	char		search_path[512];	/* schemas, comma-separated; "" = pg_catalog only */
	int			heap_limit_mb;	/* 0 = node_worker.heap_limit_mb */
	int			buffer_limit_mb;	/* 0 = node_worker.buffer_limit_mb */
	int			young_generation_mb;	/* V8's young generation at most; 0 = V8's own
										 * sizing, which grows with use */
	int			node_target_major;	/* Node the bundle was built for; 0 = not recorded */
	int			node_target_minor;
	bool		autostart;		/* false: registered at server start never, runs
								 * only when launched */
	int			instances;		/* processes started with the server (1 to
								 * PGNW_MAX_INSTANCES) */
} PgnwManifest;

/* the most processes one manifest may ask to start with the server */
#define PGNW_MAX_INSTANCES 1024

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

/*
 * Path of worker name's manifest, <directory>/<name>.json, into
 * path[MAXPGPATH]; false when it does not fit.  Never ereports.
 */
extern PGDLLEXPORT bool pgnw_manifest_path(const char *name, char *path);

/* ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ */
extern PGDLLEXPORT bool pgnw_valid_worker_name(const char *name);


/* ---- session.c: the worker's database session ---- */

/*
 * In the worker: connect to the manifest's database as its role, undo the
 * settings of ALTER DATABASE/ROLE ... SET and set search_path from the
 * manifest's searchPath.
 */
extern PGDLLEXPORT void pgnw_worker_connect(const PgnwManifest *m);


/* ---- supervisor.c: the worker process's own slot ---- */

/*
 * Called by the worker process before it starts Node: claims its slot,
 * applies the crash-loop backoff (should_stop() reports a pending SIGTERM)
 * and decides whether to run at all.  Returns false when the worker must
 * exit with code 0 instead (marked failed, or asked to stop).  On success
 * *args is a palloc'd copy of the launch arguments (JSON text) or NULL,
 * and m->database the database to connect to (the one launch() chose, if
 * it chose one).
 */
extern PGDLLEXPORT bool pgnw_worker_begin(int index, const char *name, PgnwManifest *m,
										  bool (*should_stop) (void), char **args);

/*
 * In the worker, before anything runs: the bundle's SHA-256 is the one its
 * manifest names (when it names one), else ERROR (XX001) with last_error set.
 */
extern PGDLLEXPORT void pgnw_verify_bundle(const PgnwManifest *m);

/* the worker's main() runs (node_worker.workers shows "running") */
extern PGDLLEXPORT void pgnw_worker_set_running(void);

/* why the worker is failing, for node_worker.workers (NULL: none) */
extern PGDLLEXPORT void pgnw_worker_set_error(const char *sqlstate, const char *message);

/* has node_worker.stop() been called for this worker? */
extern PGDLLEXPORT bool pgnw_worker_stop_requested(void);

/* this worker process's slot and start on pgnw_clock_us() (-1 / 0 outside a worker) */
extern PGDLLEXPORT int pgnw_worker_slot(void);
extern PGDLLEXPORT int64 pgnw_worker_start_clock(void);

/* which of its worker's instances this process is (0-based; 0 for a launch); never ereports */
extern PGDLLEXPORT int pgnw_worker_instance(void);

/*
 * Read and clear the slot's flag that jobs for the worker's queues
 * committed (jobs.c sets it with the latch); never ereports.
 */
extern PGDLLEXPORT bool pgnw_worker_take_jobs_wake(int slot);

/* pid running in a slot (0 when none), and the slot's last exit code */
extern PGDLLEXPORT pid_t pgnw_slot_pid(int index, int *last_exit_code);


/* ---- control.c: starting workers ---- */

/*
 * Start a dynamic worker from a deployed bundle (args: JSON text or NULL)
 * connected to database (NULL: its manifest's) and wait until it runs;
 * returns its pid and, when slot_out is not NULL, its slot.  ereports on
 * error.
 */
extern PGDLLEXPORT pid_t pgnw_launch(const char *name, const char *args, const char *database,
									 int *slot_out);


/* ---- inbox.c: the worker's side of call(), notify() and wake() ---- */

typedef enum PgnwMessageKind
{
	PGNW_MSG_CALL = 1,
	PGNW_MSG_NOTIFY = 2
} PgnwMessageKind;

/* a message in a worker's inbox, followed by payload_len bytes of JSON */
typedef struct PgnwMessage
{
	uint32		total_len;		/* header + payload, MAXALIGNed */
	uint32		payload_len;
	PgnwMessageKind kind;
	uint16		flags;			/* PGNW_MSG_* flags of inbox.h */
	uint16		deliveries;		/* notify: worker processes it was handed to */
	int			caller_pid;
	int			caller_procno;
	uint64		request_id;		/* call: the caller's mailbox stamp */
	TransactionId xid;			/* notify: the sending transaction */
	int64		sent_at;		/* on pgnw_clock_us() */
	int64		deadline;		/* call: when the caller gives up, on pgnw_clock_us() */
	char		role[NAMEDATALEN];	/* the role current at call() / notify() */
	char		database[NAMEDATALEN];
} PgnwMessage;

typedef struct PgnwTakenMessage
{
	PgnwMessage header;
	uint64		position;		/* notify: pass to pgnw_worker_ack() once handled */
	char	   *payload;		/* NUL-terminated JSON text */
} PgnwTakenMessage;

/* Where the caller of a call is */
typedef enum PgnwCallState
{
	PGNW_CALL_WAITING = 0,		/* waits for the reply */
	PGNW_CALL_TIMED_OUT,		/* gave up: its timeout_ms passed */
	PGNW_CALL_CANCELLED			/* gave up: cancelled, failed or gone */
} PgnwCallState;

/* Is anything waiting for this worker?  An unlocked peek, for the event loop. */
extern PGDLLEXPORT bool pgnw_worker_has_messages(int slot);

/*
 * The messages ready for this worker, in order (palloc'd); *woken: wake()
 * was called; *abandoned: a caller gave up on a call since the last look.
 * Notifications stay in the inbox until acknowledged with pgnw_worker_ack():
 * a process that exits first leaves them to the next one.
 */
extern PGDLLEXPORT int pgnw_worker_take_messages(int slot, int64 my_start,
												PgnwTakenMessage **out, bool *woken,
												bool *abandoned);

/* notifications at these positions were handled: their space is free again */
extern PGDLLEXPORT void pgnw_worker_ack(int slot, uint64 *positions, int n);

/* for each call (caller procno, request id): does its caller still wait, or why not? */
extern PGDLLEXPORT void pgnw_worker_call_states(const int *procnos, const uint64 *request_ids,
												int n, PgnwCallState *states);

/*
 * Deliver a call's reply (JSON text, or an error message with its SQLSTATE)
 * unless its caller gave up; false when it was dropped.
 */
extern PGDLLEXPORT bool pgnw_worker_reply(int procno, uint64 request_id, bool is_error,
										  const char *sqlstate, const char *data, uint32 len);


/* ---- shared.c: named shared memory regions (ctx.shared) ---- */

/*
 * The region called name, of exactly size bytes, created zero-filled on
 * first use (*created says so; created may be NULL).  ereports on a bad
 * name, a size other than the existing region's, or a full pool/directory.
 * The memory stays valid until the process exits.
 */
extern PGDLLEXPORT void *pgnw_shared_region(const char *name, Size size, bool *created);

/* ---- wait_events.c: the names of a worker's waits (PostgreSQL 17 on) ---- */

typedef enum PgnwWaitEvent
{
	PGNW_WAIT_MAIN = 0,			/* a worker idle in its event loop */
	PGNW_WAIT_CALL,				/* a caller waiting for a worker's reply */
	PGNW_WAIT_INBOX_FULL,		/* a sender waiting for room in an inbox */
	PGNW_WAIT_CONTROL,			/* launch/stop/restart waiting for a worker process */
	PGNW_NUM_WAIT_EVENTS
} PgnwWaitEvent;

extern PGDLLEXPORT uint32 pgnw_wait_event(PgnwWaitEvent which);

#ifdef __cplusplus
}
#endif

#endif							/* PG_NODE_WORKER_H */
