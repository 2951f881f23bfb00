/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *		The slots of the node workers in shared memory, and the worker
 *		process's side of its own slot: claiming it, backing off in a crash
 *		loop, recording state and errors, and what its exit leaves there.
 *
 * One slot in shared memory per worker process lifetime line: static
 * workers (registered at postmaster start, one slot per instance) own
 * slots 0..n-1; dynamic ones
 * (node_worker.launch(), ctx.launch()) take a free slot.  A slot holds what
 * the node_worker.workers view shows: pid, state, start count, last exit,
 * last error.  The worker process maintains its own slot (see
 * pgnw_worker_begin()); the SQL functions of control.c start and stop the
 * processes of a slot through the functions at the end of this file.
 *
 * Crash loops: each failed exit (code 1) bumps consecutive_failures.  A
 * starting worker with failures waits an exponential backoff on top of the
 * postmaster's restart interval, and after node_worker.max_failures it is
 * marked failed and exits 0, which tells the postmaster not to restart it.
 *
 * Limits: node_worker.max_workers slots, fixed at server start; a slot's
 * launch arguments are at most PGNW_ARGS_MAX bytes.  The table lives in
 * the main shared memory segment, so a crash reset starts it afresh.
 *
 * extension/supervisor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "manifest.h"
#include "supervisor.h"

#define PGNW_BACKOFF_CAP_S 300
/* a worker that ran this long before failing starts a new failure streak */
#define PGNW_STABLE_RUN_S 60

typedef struct PgnwSlotTable
{
	LWLock	   *lock;
	int			nslots;
	uint64		next_generation;
	PgnwSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} PgnwSlotTable;

/* settings: node_worker.* (defined in pg_node_worker.c) */
int			pgnw_max_workers = 64;
int			pgnw_max_failures = 5;
int			pgnw_shutdown_grace_ms = 5000;
int			pgnw_heap_limit_mb = 256;
int			pgnw_buffer_limit_mb = 1024;

static PgnwSlotTable *pgnw_supervisor_table = NULL;

/* A static worker process: its manifest and which of its instances it is. */
typedef struct PgnwStaticWorker
{
	PgnwManifest manifest;
	int			instance;
} PgnwStaticWorker;

/* postmaster memory: the static workers, in registration (= slot) order */
static PgnwStaticWorker *pgnw_supervisor_static = NULL;
static int	pgnw_supervisor_nstatic = 0;

/* worker side: this process's slot and its instance */
static int	pgnw_supervisor_my_slot = -1;
static int	pgnw_supervisor_my_instance = 0;
static TimestampTz pgnw_supervisor_my_start = 0;
static int64 pgnw_supervisor_my_start_clock = 0;	/* pgnw_clock_us() */

static const char *const pgnw_supervisor_state_names[] = {
	[PGNW_STATE_STOPPED] = "stopped",
	[PGNW_STATE_STARTING] = "starting",
	[PGNW_STATE_RUNNING] = "running",
	[PGNW_STATE_BACKING_OFF] = "backing-off",
	[PGNW_STATE_FAILED] = "failed",
	[PGNW_STATE_DEPLOYED] = "deployed",
};


/* ------------------------------------------------------- the slot table */

/* Shared memory of the slot table. */
Size
pgnw_supervisor_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(PgnwSlotTable, slots),
							 mul_size(sizeof(PgnwSlot), pgnw_max_workers)));
}

/*
 * Runs in the postmaster at start and after every crash reset: the static
 * workers get slots 0..n-1 again, with fresh counters.  Caller holds
 * AddinShmemInitLock.
 */
void
pgnw_supervisor_shmem_init(LWLock *lock)
{
	bool		found;

	pgnw_supervisor_table = ShmemInitStruct("pg_node_worker", pgnw_supervisor_shmem_size(), &found);
	if (found)
		return;
	memset(pgnw_supervisor_table, 0, pgnw_supervisor_shmem_size());
	pgnw_supervisor_table->lock = lock;
	pgnw_supervisor_table->nslots = pgnw_max_workers;
	for (int i = 0; i < pgnw_supervisor_nstatic && i < pgnw_max_workers; i++)
	{
		PgnwSlot   *slot = &pgnw_supervisor_table->slots[i];

		slot->in_use = true;
		slot->is_static = true;
		slot->state = PGNW_STATE_STARTING;
		slot->generation = ++pgnw_supervisor_table->next_generation;
		slot->instance = pgnw_supervisor_static[i].instance;
		pgnw_slot_fill_from_manifest(slot, &pgnw_supervisor_static[i].manifest);
	}
}

/* Postmaster: how many more static workers node_worker.max_workers leaves room for. */
int
pgnw_supervisor_static_room(void)
{
	return pgnw_max_workers - pgnw_supervisor_nstatic;
}

/*
 * Postmaster: remember instance "instance" of a static worker, whose slot is
 * made at shared memory set-up.  Its slot index, or -1 when
 * node_worker.max_workers are taken.
 */
int
pgnw_supervisor_add_static(const PgnwManifest *m, int instance)
{
	if (pgnw_supervisor_nstatic >= pgnw_max_workers)
		return -1;
	if (pgnw_supervisor_static == NULL)
		pgnw_supervisor_static = (PgnwStaticWorker *) malloc(sizeof(PgnwStaticWorker) * pgnw_max_workers);
	if (pgnw_supervisor_static == NULL)
		return -1;
	pgnw_supervisor_static[pgnw_supervisor_nstatic].manifest = *m;
	pgnw_supervisor_static[pgnw_supervisor_nstatic].instance = instance;
	return pgnw_supervisor_nstatic++;
}

/* ERROR unless the library was preloaded and its shared memory exists. */
void
pgnw_supervisor_require_shmem(void)
{
	if (pgnw_supervisor_table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_node_worker's shared memory is not initialized"),
				 errhint("Load pg_node_worker through shared_preload_libraries.")));
}

/*
 * Sleep on the latch for up to ms (a set latch ends it early), then serve
 * interrupts: the one way this library's SQL functions and workers wait;
 * why names the wait in pg_stat_activity.
 */
void
pgnw_supervisor_nap(long ms, PgnwWaitEvent why)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, pgnw_wait_event(why));
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* The name of a state, as node_worker.workers shows it. */
const char *
pgnw_slot_state_name(PgnwState state)
{
	return pgnw_supervisor_state_names[state];
}

/*
 * The worker description in a slot, from its manifest; a database chosen
 * by its launch stays (also across restart() and a new deployment).
 */
void
pgnw_slot_fill_from_manifest(PgnwSlot *slot, const PgnwManifest *m)
{
	strlcpy(slot->name, m->name, sizeof(slot->name));
	strlcpy(slot->database, slot->launch_database[0] ? slot->launch_database : m->database,
			sizeof(slot->database));
	strlcpy(slot->role, m->role, sizeof(slot->role));
	strlcpy(slot->sha256, m->sha256, sizeof(slot->sha256));
	strlcpy(slot->callers, m->callers, sizeof(slot->callers));
	slot->restart_seconds = m->restart_seconds;
}


/* ---------------------------------------------------------- worker side */

/*
 * before_shmem_exit callback of a worker process: record the exit in its
 * slot, and with it the state the slot goes on in (stopped, backing off,
 * failed).
 */
static void
pgnw_supervisor_on_exit(int code, Datum arg)
{
	PgnwSlot   *slot;
	TimestampTz now = GetCurrentTimestamp();
	bool		stable = pgnw_clock_us() - pgnw_supervisor_my_start_clock >= (int64) PGNW_STABLE_RUN_S * 1000000;

	if (pgnw_supervisor_my_slot < 0 || pgnw_supervisor_table == NULL)
		return;
	slot = &pgnw_supervisor_table->slots[pgnw_supervisor_my_slot];
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->procno = -1;
		slot->last_exit_at = now;
		slot->last_exit_code = code;
		if (code == 0 || slot->stop_requested)
		{
			if (slot->state != PGNW_STATE_FAILED)
				slot->state = PGNW_STATE_STOPPED;
			if (code == 0)
				slot->consecutive_failures = 0;
		}
		else
		{
			if (stable)
				slot->consecutive_failures = 1;
			else
				slot->consecutive_failures++;
			if (slot->last_error[0] == '\0')
				snprintf(slot->last_error, sizeof(slot->last_error),
						 "exited with code %d", code);
			slot->state = slot->restart_seconds == BGW_NEVER_RESTART ?
				PGNW_STATE_FAILED : PGNW_STATE_BACKING_OFF;
		}
	}
	LWLockRelease(pgnw_supervisor_table->lock);
}

/*
 * Take slot index for this process, under the lock: the slot must be worker
 * name's, and no other live process may hold it.  Reports the failure
 * streak, whether stop() was called, and the backoff to wait (ms); false
 * when another process runs in the slot.  m->database becomes the slot's
 * (a launch may have chosen another).
 */
static bool
pgnw_supervisor_claim(int index, const char *name, PgnwManifest *m, char **args,
					  int *failures, bool *stop, long *backoff_ms)
{
	PgnwSlot   *slot;

	if (index < 0 || index >= pgnw_supervisor_table->nslots)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("node worker slot %d is out of range", index)));
	slot = &pgnw_supervisor_table->slots[index];

	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	if (!slot->in_use || strcmp(slot->name, name) != 0)
	{
		LWLockRelease(pgnw_supervisor_table->lock);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("node worker slot %d does not belong to worker \"%s\"", index, name)));
	}
	if (slot->pid != 0 && slot->pid != MyProcPid && kill(slot->pid, 0) == 0)
	{
		pid_t		other = slot->pid;

		/* never two processes in one slot: the second would run untracked */
		LWLockRelease(pgnw_supervisor_table->lock);
		ereport(LOG,
				(errmsg("node worker \"%s\" is already running as process %d; this process (%d) exits",
						name, (int) other, (int) MyProcPid)));
		return false;
	}
	pgnw_supervisor_my_slot = index;
	pgnw_supervisor_my_instance = slot->instance;
	pgnw_supervisor_my_start = GetCurrentTimestamp();
	pgnw_supervisor_my_start_clock = pgnw_clock_us();
	pgnw_slot_fill_from_manifest(slot, m);
	strlcpy(m->database, slot->database, sizeof(m->database));
	slot->pid = MyProcPid;
	slot->procno = pgnw_my_procno();
	slot->wake_pending = false;
	*failures = slot->consecutive_failures;
	*stop = slot->stop_requested;
	*backoff_ms = 0;
	/* a process that only reports "failed" or "stopped" is not a start */
	if (!*stop && *failures < pgnw_max_failures)
	{
		slot->starts++;
		slot->started_at = pgnw_supervisor_my_start;
	}
	if (!*stop && *failures >= pgnw_max_failures)
		slot->state = PGNW_STATE_FAILED;
	else if (!*stop && *failures >= 2)
	{
		/* the postmaster already waited restart_seconds once */
		long		base = Max(slot->restart_seconds, 1);
		long		total = base << Min(*failures - 1, 20);

		total = Min(total, PGNW_BACKOFF_CAP_S);
		*backoff_ms = Max(total - slot->restart_seconds, 0) * 1000L;
		slot->state = PGNW_STATE_BACKING_OFF;
	}
	else
		slot->state = PGNW_STATE_STARTING;
	if (slot->has_args)
		*args = pstrdup(slot->args);
	LWLockRelease(pgnw_supervisor_table->lock);
	return true;
}

/*
 * Wait out a crash-loop backoff of backoff_ms on the latch, unless a
 * SIGTERM comes (should_stop()); then the slot is "starting" again.
 * Returns false when the worker must exit instead.
 */
static bool
pgnw_supervisor_back_off(const char *name, int failures, long backoff_ms,
						 bool (*should_stop) (void))
{
	int64		until = pgnw_clock_after_ms(backoff_ms);

	ereport(LOG,
			(errmsg("node worker \"%s\" failed %d times in a row; backing off %ld s before starting",
					name, failures, backoff_ms / 1000)));
	for (;;)
	{
		long		left = pgnw_clock_ms_until(until);

		if (left <= 0 || should_stop())
			break;
		pgnw_supervisor_nap(left, PGNW_WAIT_MAIN);
	}
	if (should_stop())
		return false;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	pgnw_supervisor_table->slots[pgnw_supervisor_my_slot].state = PGNW_STATE_STARTING;
	LWLockRelease(pgnw_supervisor_table->lock);
	return true;
}

/*
 * Called by the worker process before it starts Node: claims its slot,
 * applies the crash-loop backoff, and decides whether to run at all.
 * should_stop() reports a pending SIGTERM.  Returns false when the worker
 * must exit with code 0 instead (marked failed, or asked to stop).
 *
 * On success *args is a palloc'd copy of the launch arguments (JSON text)
 * or NULL.
 */
bool
pgnw_worker_begin(int index, const char *name, PgnwManifest *m,
				  bool (*should_stop) (void), char **args)
{
	int			failures;
	bool		stop;
	long		backoff_ms;

	*args = NULL;
	pgnw_supervisor_require_shmem();
	if (!pgnw_supervisor_claim(index, name, m, args, &failures, &stop, &backoff_ms))
		return false;

	before_shmem_exit(pgnw_supervisor_on_exit, (Datum) 0);

	if (stop)
		return false;
	if (failures >= pgnw_max_failures)
	{
		ereport(LOG,
				(errmsg("node worker \"%s\" failed %d times in a row and is not restarted any more",
						name, failures),
				 errhint("Fix the cause (see node_worker.workers.last_error), then run SELECT node_worker.restart('%s').",
						 name)));
		return false;
	}
	if (backoff_ms > 0)
		return pgnw_supervisor_back_off(name, failures, backoff_ms, should_stop);
	return true;
}

/*
 * The bundle is the one the manifest's sha256 names (when it names one),
 * else ERROR, with the reason in node_worker.workers.last_error.
 */
void
pgnw_verify_bundle(const PgnwManifest *m)
{
	char		found[65];
	char		why[256];
	const char *file;

	if (m->sha256[0] == '\0')
		return;
	/* a missing or unreadable bundle is reported by the loader, with its path */
	if (!pgnw_manifest_file_sha256(m->bundle_path, found))
		return;
	if (strcmp(found, m->sha256) == 0)
		return;

	file = last_dir_separator(m->bundle_path) ? last_dir_separator(m->bundle_path) + 1 : m->bundle_path;
	snprintf(why, sizeof(why),
			 "bundle %s does not match the sha256 in its manifest (expected %.12s..., found %.12s...)",
			 file, m->sha256, found);
	pgnw_worker_set_error("XX001", why);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("node worker \"%s\": bundle \"%s\" does not match its manifest",
					m->name, m->bundle_path),
			 errdetail("The manifest gives SHA-256 %s; the file's is %s.", m->sha256, found),
			 errhint("Deploy the worker again with pg-node-worker deploy. A bundle changed by hand needs its manifest's \"sha256\" updated or removed.")));
}

/* The worker's main() is running. */
void
pgnw_worker_set_running(void)
{
	PgnwSlot   *slot;

	if (pgnw_supervisor_my_slot < 0)
		return;
	slot = &pgnw_supervisor_table->slots[pgnw_supervisor_my_slot];
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	slot->state = PGNW_STATE_RUNNING;
	slot->main_pid = MyProcPid;
	slot->last_error[0] = '\0';
	slot->last_sqlstate[0] = '\0';
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* Record why the worker is failing (shown in node_worker.workers). */
void
pgnw_worker_set_error(const char *sqlstate, const char *message)
{
	PgnwSlot   *slot;

	if (pgnw_supervisor_my_slot < 0)
		return;
	slot = &pgnw_supervisor_table->slots[pgnw_supervisor_my_slot];
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	strlcpy(slot->last_error, message ? message : "", sizeof(slot->last_error));
	strlcpy(slot->last_sqlstate, sqlstate ? sqlstate : "", sizeof(slot->last_sqlstate));
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* Has stop() been called for this worker? */
bool
pgnw_worker_stop_requested(void)
{
	bool		stop;

	if (pgnw_supervisor_my_slot < 0)
		return false;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	stop = pgnw_supervisor_table->slots[pgnw_supervisor_my_slot].stop_requested;
	LWLockRelease(pgnw_supervisor_table->lock);
	return stop;
}

/* This worker process's slot (-1 outside a worker). */
int
pgnw_worker_slot(void)
{
	return pgnw_supervisor_my_slot;
}

/* Which of its worker's instances this process is: 0-based, 0 for a launch. */
int
pgnw_worker_instance(void)
{
	return pgnw_supervisor_my_instance;
}

/* When this worker process claimed its slot, on pgnw_clock_us() (0 outside a worker). */
int64
pgnw_worker_start_clock(void)
{
	return pgnw_supervisor_my_start_clock;
}


/* ------------------------------------------- slots, for the other modules */

/* pid running in slot (0 when none) and the slot's last exit code */
pid_t
pgnw_slot_pid(int index, int *last_exit_code)
{
	pid_t		pid;

	pgnw_supervisor_require_shmem();
	if (index < 0 || index >= pgnw_supervisor_table->nslots)
		return 0;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	pid = pgnw_supervisor_table->slots[index].pid;
	*last_exit_code = pgnw_supervisor_table->slots[index].last_exit_code;
	LWLockRelease(pgnw_supervisor_table->lock);
	return pid;
}

/* A palloc'd copy of every slot, taken under the lock at once. */
PgnwSlot *
pgnw_slot_snapshot(int *n)
{
	PgnwSlot   *copy;

	pgnw_supervisor_require_shmem();
	*n = pgnw_supervisor_table->nslots;
	copy = palloc(sizeof(PgnwSlot) * *n);
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	memcpy(copy, pgnw_supervisor_table->slots, sizeof(PgnwSlot) * *n);
	LWLockRelease(pgnw_supervisor_table->lock);
	return copy;
}

/* A copy of slot index, taken under the lock. */
void
pgnw_slot_copy(int index, PgnwSlot *out)
{
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	*out = pgnw_supervisor_table->slots[index];
	LWLockRelease(pgnw_supervisor_table->lock);
}

/*
 * A slot for a new launch of m with args in database (NULL: the
 * manifest's): a free one, else the finished dynamic slot that ended
 * longest ago.  Set up as "starting" with a new identity; -1 when none is
 * left.
 */
int
pgnw_slot_claim_dynamic(const PgnwManifest *m, const char *args, const char *database,
						int *nslots)
{
	int			index = -1;
	int			oldest = -1;
	PgnwSlot   *slots = pgnw_supervisor_table->slots;

	*nslots = pgnw_supervisor_table->nslots;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_supervisor_table->nslots; i++)
	{
		PgnwSlot   *s = &slots[i];

		if (!s->in_use)
		{
			index = i;
			break;
		}
		if (!s->is_static && s->pid == 0 &&
			(s->state == PGNW_STATE_STOPPED || s->state == PGNW_STATE_FAILED) &&
			(oldest < 0 || s->last_exit_at < slots[oldest].last_exit_at))
			oldest = i;
	}
	if (index < 0)
		index = oldest;
	if (index >= 0)
	{
		PgnwSlot   *s = &slots[index];

		memset(s, 0, sizeof(*s));
		s->in_use = true;
		s->is_static = false;
		s->generation = ++pgnw_supervisor_table->next_generation;
		s->state = PGNW_STATE_STARTING;
		if (database != NULL)
			strlcpy(s->launch_database, database, sizeof(s->launch_database));
		pgnw_slot_fill_from_manifest(s, m);
		if (args != NULL)
		{
			s->has_args = true;
			strlcpy(s->args, args, PGNW_ARGS_MAX);
		}
	}
	LWLockRelease(pgnw_supervisor_table->lock);
	return index;
}

/* Give back the dynamic slot of a launch whose process could not start. */
void
pgnw_slot_release(int index)
{
	PgnwSlot   *s = &pgnw_supervisor_table->slots[index];

	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	s->in_use = false;
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* Does any slot belong to worker name? */
bool
pgnw_slot_name_known(const char *name)
{
	bool		known = false;

	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	for (int i = 0; i < pgnw_supervisor_table->nslots && !known; i++)
		known = pgnw_supervisor_table->slots[i].in_use &&
			strcmp(pgnw_supervisor_table->slots[i].name, name) == 0;
	LWLockRelease(pgnw_supervisor_table->lock);
	return known;
}

/*
 * stop() for every slot of worker name: none runs again until restart().
 * Slots with no process are "stopped" now (unless failed); the others when
 * their process exits.  Returns the pids to signal (palloc'd).
 */
pid_t *
pgnw_slot_request_stop(const char *name, int *n)
{
	pid_t	   *pids = palloc(sizeof(pid_t) * pgnw_supervisor_table->nslots);

	*n = 0;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_supervisor_table->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_supervisor_table->slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		s->stop_requested = true;
		if (s->pid != 0)
			pids[(*n)++] = s->pid;
		else if (s->state != PGNW_STATE_FAILED)
			s->state = PGNW_STATE_STOPPED;
	}
	LWLockRelease(pgnw_supervisor_table->lock);
	return pids;
}

/*
 * The slots restart() starts worker name in: its static slots if it has
 * any (one per instance), else the first slot of its launches (keeping
 * their arguments and inbox).  Each is cleared of stop(), failures and
 * errors and takes m's description.  Their indexes go into indexes (room
 * for every slot); returns how many, 0 when the worker has no slot.
 */
int
pgnw_slot_prepare_restart(const char *name, const PgnwManifest *m, int *indexes)
{
	int			n = 0;
	int			first_dynamic = -1;

	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_supervisor_table->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_supervisor_table->slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		if (s->is_static)
			indexes[n++] = i;
		else if (first_dynamic < 0)
			first_dynamic = i;
	}
	if (n == 0 && first_dynamic >= 0)
		indexes[n++] = first_dynamic;
	for (int k = 0; k < n; k++)
	{
		PgnwSlot   *s = &pgnw_supervisor_table->slots[indexes[k]];

		s->stop_requested = false;
		s->consecutive_failures = 0;
		s->last_error[0] = '\0';
		s->last_sqlstate[0] = '\0';
		s->state = PGNW_STATE_STARTING;
		pgnw_slot_fill_from_manifest(s, m);
	}
	LWLockRelease(pgnw_supervisor_table->lock);
	return n;
}

/*
 * The callers list of a worker that has no slot, from its manifest: known
 * when deployed; a manifest that cannot be read admits nobody but admins.
 */
static void
pgnw_supervisor_target_from_manifest(const char *name, PgnwTarget *t)
{
	char		path[MAXPGPATH];
	PgnwManifest m;
	char	   *reason = NULL;
	struct stat st;

	if (!pgnw_valid_worker_name(name) || !pgnw_manifest_path(name, path))
		return;
	if (pgnw_read_manifest(path, &m, &reason))
	{
		t->known = true;
		strlcpy(t->callers, m.callers, PGNW_CALLERS_MAX);
		return;
	}
	/* deployed but unreadable: known, and nobody but admins may talk to it */
	t->known = stat(path, &st) == 0;
	free(reason);
}

/*
 * What SQL needs to address worker "name": whether it is known at all, the
 * slot and pid of its running process (its static slot first, else the
 * first running dynamic one), and its callers list, also when it is not
 * running (from any of its slots, else from its manifest), so that
 * permission can be checked before anything about its state is told.
 */
void
pgnw_find_worker(const char *name, PgnwTarget *t)
{
	PgnwSlot   *slots;
	int			any = -1;

	pgnw_supervisor_require_shmem();
	slots = pgnw_supervisor_table->slots;
	memset(t, 0, sizeof(*t));
	t->slot = -1;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	for (int i = 0; i < pgnw_supervisor_table->nslots; i++)
	{
		PgnwSlot   *s = &slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		if (any < 0 || (s->is_static && !slots[any].is_static))
			any = i;
		if (s->pid != 0 && s->state == PGNW_STATE_RUNNING &&
			(t->slot < 0 || (s->is_static && !slots[t->slot].is_static)))
		{
			t->slot = i;
			t->pid = s->pid;
			t->generation = s->generation;
		}
	}
	if (t->slot >= 0)
		any = t->slot;
	if (any >= 0)
	{
		t->known = true;
		strlcpy(t->callers, slots[any].callers, PGNW_CALLERS_MAX);
	}
	LWLockRelease(pgnw_supervisor_table->lock);
	if (!t->known)
		pgnw_supervisor_target_from_manifest(name, t);
}

/* The running process of a slot (0 if none) and its PGPROC number. */
pid_t
pgnw_slot_process(int index, int *procno)
{
	pid_t		pid;

	*procno = -1;
	if (pgnw_supervisor_table == NULL || index < 0 || index >= pgnw_supervisor_table->nslots)
		return 0;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	pid = pgnw_supervisor_table->slots[index].pid;
	if (pid != 0)
		*procno = pgnw_supervisor_table->slots[index].procno;
	LWLockRelease(pgnw_supervisor_table->lock);
	return pid;
}

/* Wake the running process of a slot, if any. */
void
pgnw_slot_set_latch(int index)
{
	int			procno;
	pid_t		pid = pgnw_slot_process(index, &procno);

	if (pid != 0 && procno >= 0)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

/* The identity of a slot (0 when the slot is not in use). */
uint64
pgnw_slot_generation(int index)
{
	uint64		generation = 0;

	if (pgnw_supervisor_table == NULL || index < 0 || index >= pgnw_supervisor_table->nslots)
		return 0;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	if (pgnw_supervisor_table->slots[index].in_use)
		generation = pgnw_supervisor_table->slots[index].generation;
	LWLockRelease(pgnw_supervisor_table->lock);
	return generation;
}

/* The worker name of a slot ("" when not in use). */
void
pgnw_slot_name(int index, char *out)
{
	out[0] = '\0';
	if (pgnw_supervisor_table == NULL || index < 0 || index >= pgnw_supervisor_table->nslots)
		return;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_SHARED);
	if (pgnw_supervisor_table->slots[index].in_use)
		strlcpy(out, pgnw_supervisor_table->slots[index].name, PGNW_WORKER_NAME_MAX + 1);
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* node_worker.wake() was called for the worker in this slot. */
void
pgnw_slot_set_wake(int index)
{
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	pgnw_supervisor_table->slots[index].wake_pending = true;
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* Unlocked peek at the wake flag: a waker sets the latch after setting it. */
bool
pgnw_slot_peek_wake(int index)
{
	return pgnw_supervisor_table->slots[index].wake_pending;
}

/* Read and clear the wake flag. */
bool
pgnw_slot_take_wake(int index)
{
	bool		woken;

	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	woken = pgnw_supervisor_table->slots[index].wake_pending;
	pgnw_supervisor_table->slots[index].wake_pending = false;
	LWLockRelease(pgnw_supervisor_table->lock);
	return woken;
}

/* Flag and wake every running process of worker name (jobs committed for it). */
void
pgnw_slots_signal_jobs(const char *name)
{
	if (pgnw_supervisor_table == NULL)
		return;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_supervisor_table->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_supervisor_table->slots[i];

		if (!s->in_use || s->pid == 0 || s->procno < 0 || strcmp(s->name, name) != 0)
			continue;
		s->jobs_pending = true;
		SetLatch(&GetPGProcByNumber(s->procno)->procLatch);
	}
	LWLockRelease(pgnw_supervisor_table->lock);
}

/* Read and clear the jobs flag of this worker's slot; never ereports. */
bool
pgnw_worker_take_jobs_wake(int index)
{
	bool		pending;

	if (pgnw_supervisor_table == NULL || index < 0 || index >= pgnw_supervisor_table->nslots)
		return false;
	/* unlocked peek first: the common case is no jobs, and the event loop asks at every wake-up */
	if (!pgnw_supervisor_table->slots[index].jobs_pending)
		return false;
	LWLockAcquire(pgnw_supervisor_table->lock, LW_EXCLUSIVE);
	pending = pgnw_supervisor_table->slots[index].jobs_pending;
	pgnw_supervisor_table->slots[index].jobs_pending = false;
	LWLockRelease(pgnw_supervisor_table->lock);
	return pending;
}
