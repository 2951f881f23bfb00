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
#include "datatype/timestamp.h"

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
	char		callers[512];	/* roles that may call/notify/wake it, comma-separated */
	char		search_path[512];	/* schemas, comma-separated; "" = pg_catalog only */
	int			heap_limit_mb;	/* 0 = node_worker.heap_limit_mb */
	int			buffer_limit_mb;	/* 0 = node_worker.buffer_limit_mb */
} PgnwManifest;

#define PGNW_CALLERS_MAX 512

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

/* node_worker.buffer_limit_mb (-1: none of its own) */
extern PGDLLEXPORT int pgnw_buffer_limit_mb;

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

/* path of worker name's manifest, <directory>/<name>.json, into path[MAXPGPATH] */
extern PGDLLEXPORT void pgnw_manifest_path(const char *name, char *path);

/* ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ */
extern PGDLLEXPORT bool pgnw_valid_worker_name(const char *name);

/*
 * In the worker: connect to the manifest's database as its role, undo the
 * settings of ALTER DATABASE/ROLE ... SET and set search_path from the
 * manifest's searchPath (session.c).
 */
extern PGDLLEXPORT void pgnw_worker_connect(const PgnwManifest *m);

/*
 * In the worker, before anything runs: the bundle's SHA-256 is the one its
 * manifest names (when it names one), else ERROR (XX001) with last_error set.
 */
extern PGDLLEXPORT void pgnw_verify_bundle(const PgnwManifest *m);


/* ---- supervisor.c: shared state of the workers ---- */

typedef enum PgnwState
{
	PGNW_STATE_STOPPED = 0,
	PGNW_STATE_STARTING,
	PGNW_STATE_RUNNING,
	PGNW_STATE_BACKING_OFF,
	PGNW_STATE_FAILED
} PgnwState;

#define PGNW_ARGS_MAX 8192
#define PGNW_ERROR_MAX 2048

/* One worker (static) or one launch (dynamic), in shared memory. */
typedef struct PgnwSlot
{
	bool		in_use;
	bool		is_static;
	bool		stop_requested; /* stop(): do not run again until restart() */
	bool		has_args;
	char		name[64];
	char		database[NAMEDATALEN];
	char		role[NAMEDATALEN];
	char		sha256[65];
	char		callers[PGNW_CALLERS_MAX];
	int			restart_seconds;
	PgnwState	state;
	pid_t		pid;			/* 0 when not running */
	int			procno;			/* its PGPROC number (latch), -1 when not running */
	pid_t		main_pid;		/* the last process that reached main() */
	bool		wake_pending;	/* node_worker.wake() since the worker last looked */
	uint64		generation;		/* identity: changes when the slot is given to another launch */
	int			starts;			/* processes started for this slot */
	int			consecutive_failures;
	int			last_exit_code;
	TimestampTz started_at;
	TimestampTz last_exit_at;
	char		last_sqlstate[6];
	char		last_error[PGNW_ERROR_MAX];
	char		args[PGNW_ARGS_MAX];	/* JSON text when has_args */
} PgnwSlot;

extern PGDLLEXPORT int pgnw_max_workers;
extern PGDLLEXPORT int pgnw_max_failures;

/* _PG_init: settings, shared memory request and hooks */
extern void pgnw_supervisor_init(void);
/* postmaster: remember a static worker; returns its slot index or -1 */
extern int	pgnw_supervisor_add_static(const PgnwManifest *m);
/* sorted "<name>.json" file names in the directory (palloc'd); *n their count */
extern PGDLLEXPORT char **pgnw_list_manifests(int *n);

/* worker process side (called by pg_node_worker_runtime.so) */
extern PGDLLEXPORT bool pgnw_worker_begin(int index, const char *name, const PgnwManifest *m,
										  bool (*should_stop) (void), char **args);
extern PGDLLEXPORT void pgnw_worker_set_running(void);
extern PGDLLEXPORT void pgnw_worker_set_error(const char *sqlstate, const char *message);
extern PGDLLEXPORT bool pgnw_worker_stop_requested(void);
/* pid running in a slot (0 when none), and the slot's last exit code */
extern PGDLLEXPORT pid_t pgnw_slot_pid(int index, int *last_exit_code);
/* the running process of a slot (0 if none) and its PGPROC number */
extern PGDLLEXPORT pid_t pgnw_slot_process(int slot, int *procno);
/* What SQL needs to address worker "name" (call, notify, wake): see pgnw_find_worker() */
typedef struct PgnwTarget
{
	bool		known;			/* deployed or has a slot */
	int			slot;			/* slot of its running process, -1 when none runs */
	pid_t		pid;			/* that process */
	uint64		generation;		/* that slot's identity */
	char		callers[PGNW_CALLERS_MAX];	/* from its slot, or its manifest */
} PgnwTarget;

extern void pgnw_find_worker(const char *name, PgnwTarget *t);
/* the identity of a slot (0 when the slot is not in use) */
extern uint64 pgnw_slot_generation(int slot);
/* the worker name of a slot ("" when not in use); out has 64 bytes */
extern void pgnw_slot_name(int slot, char *out);
/* is role a member of one of the roles in callers (comma-separated, matched exactly)? */
extern bool pgnw_callers_admit(const char *callers, Oid role);
extern void pgnw_slot_set_wake(int slot);
extern bool pgnw_slot_peek_wake(int slot);
extern bool pgnw_slot_take_wake(int slot);
/* this worker process's slot and start time (-1 / 0 outside a worker) */
extern PGDLLEXPORT int pgnw_worker_slot(void);
extern PGDLLEXPORT TimestampTz pgnw_worker_start_time(void);

/* ---- messaging.c: call(), notify(), wake() ---- */

typedef enum PgnwMessageKind
{
	PGNW_MSG_CALL = 1,
	PGNW_MSG_NOTIFY = 2
} PgnwMessageKind;

/* PgnwMessage.flags */
#define PGNW_MSG_HANDLED 0x0001	/* its space may be reused */

/* a message in a worker's inbox, followed by payload_len bytes of JSON */
typedef struct PgnwMessage
{
	uint32		total_len;		/* header + payload, MAXALIGNed */
	uint32		payload_len;
	PgnwMessageKind kind;
	uint16		flags;
	uint16		deliveries;		/* notify: worker processes it was handed to */
	int			caller_pid;
	int			caller_procno;
	uint64		request_id;		/* call: the caller's mailbox stamp */
	TransactionId xid;			/* notify: the sending transaction */
	TimestampTz sent_at;
	TimestampTz deadline;		/* call: when the caller gives up */
	char		role[NAMEDATALEN];	/* the role current at call() / notify() */
	char		database[NAMEDATALEN];
} PgnwMessage;

typedef struct PgnwTakenMessage
{
	PgnwMessage header;
	uint64		position;		/* notify: pass to pgnw_worker_ack() once handled */
	char	   *payload;		/* NUL-terminated JSON text */
} PgnwTakenMessage;

extern PGDLLEXPORT int pgnw_queue_size_kb;
extern PGDLLEXPORT int pgnw_max_message_kb;
extern Size pgnw_messaging_shmem_size(void);
extern void pgnw_messaging_define_gucs(void);
extern void pgnw_messaging_shmem_startup(void);
extern PGDLLEXPORT bool pgnw_worker_has_messages(int slot);
/*
 * The messages ready for this worker, in order (palloc'd); *woken: wake()
 * was called; *abandoned: a caller gave up on a call since the last look.
 * Notifications stay in the inbox until acknowledged with pgnw_worker_ack():
 * a process that exits first leaves them to the next one.
 */
extern PGDLLEXPORT int pgnw_worker_take_messages(int slot, TimestampTz my_start,
												PgnwTakenMessage **out, bool *woken,
												bool *abandoned);
/* notifications at these positions were handled: their space is free again */
extern PGDLLEXPORT void pgnw_worker_ack(int slot, uint64 *positions, int n);
/* Where the caller of a call is */
typedef enum PgnwCallState
{
	PGNW_CALL_WAITING = 0,		/* waits for the reply */
	PGNW_CALL_TIMED_OUT,		/* gave up: its timeout_ms passed */
	PGNW_CALL_CANCELLED			/* gave up: cancelled, failed or gone */
} PgnwCallState;

/* for each call (caller procno, request id): does its caller still wait, or why not? */
extern PGDLLEXPORT void pgnw_worker_call_states(const int *procnos, const uint64 *request_ids,
												int n, PgnwCallState *states);
extern PGDLLEXPORT bool pgnw_worker_reply(int procno, uint64 request_id, bool is_error,
										  const char *sqlstate, const char *data, uint32 len);

/* ---- shared.c: named shared memory regions (ctx.shared) ---- */

#define PGNW_REGION_NAME_MAX 63		/* bytes */
#define PGNW_MAX_REGIONS 256

/* node_worker.shared_memory_mb: the pool regions are allocated from (0: disabled) */
extern PGDLLEXPORT int pgnw_shared_memory_mb;
extern Size pgnw_shared_shmem_size(void);
extern void pgnw_shared_define_gucs(void);
extern void pgnw_shared_shmem_startup(void);

/*
 * The region called name, of exactly size bytes, created zero-filled on
 * first use (*created says so; created may be NULL).  ereports on a bad
 * name, a size other than the existing region's, or a full pool/directory.
 * The memory stays valid until the process exits.
 */
extern PGDLLEXPORT void *pgnw_shared_region(const char *name, Size size, bool *created);

/* the bgworker registration of a node worker for slot "index" */
extern void pgnw_fill_bgworker(BackgroundWorker *worker, const PgnwManifest *m, int index);
/* start a dynamic worker (ereports on error); returns its pid */
extern PGDLLEXPORT pid_t pgnw_launch(const char *name, const char *args, int *slot_out);

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
