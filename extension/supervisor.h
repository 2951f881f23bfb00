/*-------------------------------------------------------------------------
 *
 * supervisor.h
 *	  The table of worker slots in shared memory, for the other modules of
 *	  pg_node_worker.so: control.c starts and stops the processes of a slot,
 *	  workers.c shows the slots, inbox.c and messaging.c find a worker's
 *	  running process.  The worker process's own side of its slot
 *	  (pgnw_worker_begin() and the rest) is in pg_node_worker.h.
 *
 * Every function here takes the slot lock itself; none may be called with
 * it held.  Lock order: messaging's lock (inbox.c) before the slot lock.
 *
 * extension/supervisor.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_SUPERVISOR_H
#define PGNW_SUPERVISOR_H

#include "storage/lwlock.h"

#include "pg_node_worker.h"

/* not exported: for this library's own modules */
#pragma GCC visibility push(hidden)

typedef enum PgnwState
{
	PGNW_STATE_STOPPED = 0,
	PGNW_STATE_STARTING,
	PGNW_STATE_RUNNING,
	PGNW_STATE_BACKING_OFF,
	PGNW_STATE_FAILED,
	PGNW_STATE_DEPLOYED			/* view only: autostart false, never launched */
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
	int			instance;		/* which of the worker's static processes (0-based) */
	char		name[PGNW_WORKER_NAME_MAX + 1];
	char		database[NAMEDATALEN];
	char		launch_database[NAMEDATALEN];	/* chosen by launch(); "" = the manifest's */
	char		role[NAMEDATALEN];
	char		sha256[65];
	char		callers[PGNW_CALLERS_MAX];
	int			restart_seconds;
	PgnwState	state;
	pid_t		pid;			/* 0 when not running */
	int			procno;			/* its PGPROC number (latch), -1 when not running */
	pid_t		main_pid;		/* the last process that reached main() */
	bool		wake_pending;	/* node_worker.wake() since the worker last looked */
	bool		jobs_pending;	/* a job for its queues committed since it last looked */
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

/* What SQL needs to address worker "name" (call, notify, wake): see pgnw_find_worker() */
typedef struct PgnwTarget
{
	bool		known;			/* deployed or has a slot */
	int			slot;			/* slot of its running process, -1 when none runs */
	pid_t		pid;			/* that process */
	uint64		generation;		/* that slot's identity */
	char		callers[PGNW_CALLERS_MAX];	/* from its slot, or its manifest */
} PgnwTarget;

/* node_worker.max_workers, node_worker.max_failures */
extern int	pgnw_max_workers;
extern int	pgnw_max_failures;

/* shared memory: size to request, and set-up (under AddinShmemInitLock) */
extern Size pgnw_supervisor_shmem_size(void);
extern void pgnw_supervisor_shmem_init(LWLock *lock);

/* postmaster, before shared memory exists: how many more static slots there is room for */
extern int	pgnw_supervisor_static_room(void);

/* postmaster, before shared memory exists: instance of a static worker; its slot, or -1 */
extern int	pgnw_supervisor_add_static(const PgnwManifest *m, int instance);

/* sleep on the latch for up to ms, then serve interrupts (all waits of this library) */
extern void pgnw_supervisor_nap(long ms, PgnwWaitEvent why);

/* ERROR unless the slot table exists (pg_node_worker preloaded) */
extern void pgnw_supervisor_require_shmem(void);

/* the name of a state, as node_worker.workers shows it */
extern const char *pgnw_slot_state_name(PgnwState state);

/* a slot's worker description (name, database, role, ...) from a manifest */
extern void pgnw_slot_fill_from_manifest(PgnwSlot *slot, const PgnwManifest *m);

/* a palloc'd copy of every slot; *n their count */
extern PgnwSlot *pgnw_slot_snapshot(int *n);

/* a copy of one slot */
extern void pgnw_slot_copy(int index, PgnwSlot *out);

/*
 * A slot for a new launch of m (a free one, else the finished dynamic one
 * that ended longest ago), set up to start with args in database (NULL:
 * the manifest's); -1 when every slot is taken (*nslots says how many
 * there are).
 */
extern int	pgnw_slot_claim_dynamic(const PgnwManifest *m, const char *args, const char *database,
									int *nslots);

/* give back a dynamic slot whose process could not be started */
extern void pgnw_slot_release(int index);

/* does any slot belong to worker name? */
extern bool pgnw_slot_name_known(const char *name);

/*
 * Mark every slot of worker name stopped (stop() was called); returns the
 * pids running in them (palloc'd), *n their count.
 */
extern pid_t *pgnw_slot_request_stop(const char *name, int *n);

/*
 * The slots restart() starts worker name in again (its static slots, one
 * per instance, else the slot of its first launch), made ready to start
 * with m, into indexes (room for every slot); returns how many (0: none).
 */
extern int	pgnw_slot_prepare_restart(const char *name, const PgnwManifest *m, int *indexes);

/* who worker name is for call(), notify() and wake() */
extern void pgnw_find_worker(const char *name, PgnwTarget *t);

/* the running process of a slot (0 if none) and its PGPROC number */
extern pid_t pgnw_slot_process(int slot, int *procno);

/* set the latch of a slot's running process, if any */
extern void pgnw_slot_set_latch(int slot);

/* the identity of a slot (0 when the slot is not in use) */
extern uint64 pgnw_slot_generation(int slot);

/* the worker name of a slot ("" when not in use); out has PGNW_WORKER_NAME_MAX + 1 bytes */
extern void pgnw_slot_name(int slot, char *out);

/* node_worker.wake() flag of a slot: set, unlocked peek, take (read and clear) */
extern void pgnw_slot_set_wake(int slot);
extern bool pgnw_slot_peek_wake(int slot);
extern bool pgnw_slot_take_wake(int slot);

/*
 * A transaction that enqueued jobs for worker name committed: flag every
 * running process of that name and set its latch.  Runs after the commit,
 * so it must not fail: it takes only the slot lock.
 */
extern void pgnw_slots_signal_jobs(const char *name);

#pragma GCC visibility pop

#endif							/* PGNW_SUPERVISOR_H */
