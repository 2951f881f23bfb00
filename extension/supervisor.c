/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *		Shared state of every node worker, and the SQL functions that start,
 *		stop and list them.
 *
 * One slot in shared memory per worker process lifetime line: static
 * workers (registered at postmaster start) own slots 0..n-1; dynamic ones
 * (node_worker.launch(), ctx.launch()) take a free slot.  A slot holds what
 * the node_worker.workers view shows: pid, state, start count, last exit,
 * last error.  The worker process maintains its own slot (see
 * pgnw_worker_begin()); SQL functions read it and ask workers to stop.
 *
 * Crash loops: each failed exit (code 1) bumps consecutive_failures.  A
 * starting worker with failures waits an exponential backoff on top of the
 * postmaster's restart interval, and after node_worker.max_failures it is
 * marked failed and exits 0, which tells the postmaster not to restart it.
 *
 * extension/supervisor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "pg_node_worker.h"

PG_FUNCTION_INFO_V1(node_worker_launch);
PG_FUNCTION_INFO_V1(node_worker_stop);
PG_FUNCTION_INFO_V1(node_worker_restart);
PG_FUNCTION_INFO_V1(node_worker_workers);

#define PGNW_BACKOFF_CAP_S 300
/* how long launch() and restart() wait for the new process to run main() */
#define PGNW_START_TIMEOUT_MS 30000
/* a worker that ran this long before failing starts a new failure streak */
#define PGNW_STABLE_RUN_S 60

/*
 * A control operation (launch, stop, restart) in progress, one entry per
 * backend (by pgprocno): operations on one worker name run one at a time,
 * so that concurrent restarts cannot leave processes no slot tracks.
 */
typedef struct PgnwControlOp
{
	pid_t		pid;			/* 0: none */
	char		name[64];
} PgnwControlOp;

typedef struct PgnwShared
{
	LWLock	   *lock;
	int			nslots;
	int			nops;
	uint64		next_generation;
	PgnwControlOp *ops;			/* nops entries, after the slots */
	PgnwSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} PgnwShared;

int			pgnw_max_workers = 64;
int			pgnw_max_failures = 5;

static PgnwShared *pgnw_shared = NULL;

/* postmaster memory: the static workers, in registration (= slot) order */
static PgnwManifest *pgnw_static = NULL;
static int	pgnw_nstatic = 0;

static shmem_startup_hook_type pgnw_prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type pgnw_prev_shmem_request_hook = NULL;
#endif

/* control operations of this backend in progress (they nest: restart() may launch()) */
static int	pgnw_control_depth = 0;

/* worker side: this process's slot */
static int	pgnw_my_slot = -1;
static TimestampTz pgnw_my_start = 0;

static const char *const pgnw_state_names[] = {
	[PGNW_STATE_STOPPED] = "stopped",
	[PGNW_STATE_STARTING] = "starting",
	[PGNW_STATE_RUNNING] = "running",
	[PGNW_STATE_BACKING_OFF] = "backing-off",
	[PGNW_STATE_FAILED] = "failed",
};

static Size
pgnw_slots_size(void)
{
	return MAXALIGN(add_size(offsetof(PgnwShared, slots),
							 mul_size(sizeof(PgnwSlot), pgnw_max_workers)));
}

static Size
pgnw_shmem_size(void)
{
	return add_size(pgnw_slots_size(), mul_size(sizeof(PgnwControlOp), MaxBackends));
}

static void
pgnw_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (pgnw_prev_shmem_request_hook)
		pgnw_prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(pgnw_shmem_size());
	RequestAddinShmemSpace(pgnw_messaging_shmem_size());
	RequestAddinShmemSpace(pgnw_shared_shmem_size());
	/* [0]: the slots, [1]: inboxes and mailboxes, [2]: shared regions (shared.c) */
	RequestNamedLWLockTranche("pg_node_worker", 3);
}

static void
pgnw_fill_slot_from_manifest(PgnwSlot *slot, const PgnwManifest *m)
{
	strlcpy(slot->name, m->name, sizeof(slot->name));
	strlcpy(slot->database, m->database, sizeof(slot->database));
	strlcpy(slot->role, m->role, sizeof(slot->role));
	strlcpy(slot->sha256, m->sha256, sizeof(slot->sha256));
	strlcpy(slot->callers, m->callers, sizeof(slot->callers));
	slot->restart_seconds = m->restart_seconds;
}

/*
 * Runs in the postmaster at start and after every crash reset: the static
 * workers get slots 0..n-1 again, with fresh counters.
 */
static void
pgnw_shmem_startup(void)
{
	bool		found;

	if (pgnw_prev_shmem_startup_hook)
		pgnw_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pgnw_shared = ShmemInitStruct("pg_node_worker", pgnw_shmem_size(), &found);
	if (!found)
	{
		memset(pgnw_shared, 0, pgnw_shmem_size());
		pgnw_shared->lock = &(GetNamedLWLockTranche("pg_node_worker"))->lock;
		pgnw_shared->nslots = pgnw_max_workers;
		pgnw_shared->nops = MaxBackends;
		for (int i = 0; i < pgnw_nstatic && i < pgnw_max_workers; i++)
		{
			PgnwSlot   *slot = &pgnw_shared->slots[i];

			slot->in_use = true;
			slot->is_static = true;
			slot->state = PGNW_STATE_STARTING;
			slot->generation = ++pgnw_shared->next_generation;
			pgnw_fill_slot_from_manifest(slot, &pgnw_static[i]);
		}
	}
	pgnw_shared->ops = (PgnwControlOp *) ((char *) pgnw_shared + pgnw_slots_size());
	pgnw_messaging_shmem_startup();
	pgnw_shared_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

void
pgnw_supervisor_init(void)
{
	DefineCustomIntVariable("node_worker.max_workers",
							"Maximum number of node workers (static and dynamic) tracked at once.",
							NULL,
							&pgnw_max_workers,
							64,
							1,
							10000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("node_worker.max_failures",
							"Consecutive failed starts after which a worker is marked failed and no longer restarted.",
							NULL,
							&pgnw_max_failures,
							5,
							1,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	pgnw_messaging_define_gucs();
	pgnw_shared_define_gucs();

	pgnw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgnw_shmem_startup;
#if PG_VERSION_NUM >= 150000
	pgnw_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgnw_shmem_request;
#else
	pgnw_shmem_request();
#endif
}

int
pgnw_supervisor_add_static(const PgnwManifest *m)
{
	if (pgnw_nstatic >= pgnw_max_workers)
		return -1;
	if (pgnw_static == NULL)
		pgnw_static = (PgnwManifest *) malloc(sizeof(PgnwManifest) * pgnw_max_workers);
	if (pgnw_static == NULL)
		return -1;
	pgnw_static[pgnw_nstatic] = *m;
	return pgnw_nstatic++;
}

static void
pgnw_check_shared(void)
{
	if (pgnw_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_node_worker's shared memory is not initialized"),
				 errhint("Load pg_node_worker through shared_preload_libraries.")));
}

/* ------------------------------------------------------------ worker side */

static void
pgnw_worker_on_exit(int code, Datum arg)
{
	PgnwSlot   *slot;
	TimestampTz now = GetCurrentTimestamp();

	if (pgnw_my_slot < 0 || pgnw_shared == NULL)
		return;
	slot = &pgnw_shared->slots[pgnw_my_slot];
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
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
			if (TimestampDifferenceExceeds(pgnw_my_start, now, PGNW_STABLE_RUN_S * 1000))
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
	LWLockRelease(pgnw_shared->lock);
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
pgnw_worker_begin(int index, const char *name, const PgnwManifest *m,
				  bool (*should_stop) (void), char **args)
{
	PgnwSlot   *slot;
	int			failures;
	bool		stop;
	long		backoff_ms = 0;

	*args = NULL;
	pgnw_check_shared();
	if (index < 0 || index >= pgnw_shared->nslots)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("node worker slot %d is out of range", index)));
	slot = &pgnw_shared->slots[index];

	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	if (!slot->in_use || strcmp(slot->name, name) != 0)
	{
		LWLockRelease(pgnw_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("node worker slot %d does not belong to worker \"%s\"", index, name)));
	}
	if (slot->pid != 0 && slot->pid != MyProcPid && kill(slot->pid, 0) == 0)
	{
		pid_t		other = slot->pid;

		/* never two processes in one slot: the second would run untracked */
		LWLockRelease(pgnw_shared->lock);
		ereport(LOG,
				(errmsg("node worker \"%s\" is already running as process %d; this process (%d) exits",
						name, (int) other, (int) MyProcPid)));
		return false;
	}
	pgnw_my_slot = index;
	pgnw_my_start = GetCurrentTimestamp();
	pgnw_fill_slot_from_manifest(slot, m);
	slot->pid = MyProcPid;
	slot->procno = MyProc->pgprocno;
	slot->wake_pending = false;
	failures = slot->consecutive_failures;
	stop = slot->stop_requested;
	/* a process that only reports "failed" or "stopped" is not a start */
	if (!stop && failures < pgnw_max_failures)
	{
		slot->starts++;
		slot->started_at = pgnw_my_start;
	}
	if (!stop && failures >= pgnw_max_failures)
		slot->state = PGNW_STATE_FAILED;
	else if (!stop && failures >= 2)
	{
		/* the postmaster already waited restart_seconds once */
		long		base = Max(slot->restart_seconds, 1);
		long		total = base << Min(failures - 1, 20);

		total = Min(total, PGNW_BACKOFF_CAP_S);
		backoff_ms = Max(total - slot->restart_seconds, 0) * 1000L;
		slot->state = PGNW_STATE_BACKING_OFF;
	}
	else
		slot->state = PGNW_STATE_STARTING;
	if (slot->has_args)
		*args = pstrdup(slot->args);
	LWLockRelease(pgnw_shared->lock);

	before_shmem_exit(pgnw_worker_on_exit, (Datum) 0);

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
	{
		TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff_ms);

		ereport(LOG,
				(errmsg("node worker \"%s\" failed %d times in a row; backing off %ld s before starting",
						name, failures, backoff_ms / 1000)));
		for (;;)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

			if (left <= 0 || should_stop())
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (should_stop())
			return false;
		LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
		slot->state = PGNW_STATE_STARTING;
		LWLockRelease(pgnw_shared->lock);
	}
	return true;
}

/* The worker's main() is running. */
void
pgnw_worker_set_running(void)
{
	if (pgnw_my_slot < 0)
		return;
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	pgnw_shared->slots[pgnw_my_slot].state = PGNW_STATE_RUNNING;
	pgnw_shared->slots[pgnw_my_slot].main_pid = MyProcPid;
	pgnw_shared->slots[pgnw_my_slot].last_error[0] = '\0';
	pgnw_shared->slots[pgnw_my_slot].last_sqlstate[0] = '\0';
	LWLockRelease(pgnw_shared->lock);
}

/* Record why the worker is failing (shown in node_worker.workers). */
void
pgnw_worker_set_error(const char *sqlstate, const char *message)
{
	if (pgnw_my_slot < 0)
		return;
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	strlcpy(pgnw_shared->slots[pgnw_my_slot].last_error, message ? message : "",
			PGNW_ERROR_MAX);
	strlcpy(pgnw_shared->slots[pgnw_my_slot].last_sqlstate, sqlstate ? sqlstate : "",
			sizeof(pgnw_shared->slots[pgnw_my_slot].last_sqlstate));
	LWLockRelease(pgnw_shared->lock);
}

/* pid running in slot (0 when none) and the slot's last exit code */
pid_t
pgnw_slot_pid(int index, int *last_exit_code)
{
	pid_t		pid;

	pgnw_check_shared();
	if (index < 0 || index >= pgnw_shared->nslots)
		return 0;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	pid = pgnw_shared->slots[index].pid;
	*last_exit_code = pgnw_shared->slots[index].last_exit_code;
	LWLockRelease(pgnw_shared->lock);
	return pid;
}

pid_t
pgnw_slot_process(int index, int *procno)
{
	pid_t		pid;

	*procno = -1;
	if (pgnw_shared == NULL || index < 0 || index >= pgnw_shared->nslots)
		return 0;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	pid = pgnw_shared->slots[index].pid;
	if (pid != 0)
		*procno = pgnw_shared->slots[index].procno;
	LWLockRelease(pgnw_shared->lock);
	return pid;
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
	int			any = -1;

	pgnw_check_shared();
	memset(t, 0, sizeof(*t));
	t->slot = -1;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	for (int i = 0; i < pgnw_shared->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_shared->slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		if (any < 0 || (s->is_static && !pgnw_shared->slots[any].is_static))
			any = i;
		if (s->pid != 0 && s->state == PGNW_STATE_RUNNING &&
			(t->slot < 0 || (s->is_static && !pgnw_shared->slots[t->slot].is_static)))
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
		strlcpy(t->callers, pgnw_shared->slots[any].callers, PGNW_CALLERS_MAX);
	}
	LWLockRelease(pgnw_shared->lock);
	if (!t->known && pgnw_valid_worker_name(name))
	{
		char		path[MAXPGPATH];
		PgnwManifest m;
		char	   *reason = NULL;

		pgnw_manifest_path(name, path);
		if (pgnw_read_manifest(path, &m, &reason))
		{
			t->known = true;
			strlcpy(t->callers, m.callers, PGNW_CALLERS_MAX);
		}
		else
		{
			struct stat st;

			/* deployed but unreadable: known, and nobody but admins may talk to it */
			t->known = stat(path, &st) == 0;
			free(reason);
		}
	}
}

/*
 * Is role a member of one of the roles in callers?  The list is role names
 * separated by commas, compared exactly (role names are case-sensitive; the
 * CLI refuses names with commas).
 */
bool
pgnw_callers_admit(const char *callers, Oid role)
{
	const char *p = callers;

	while (*p != '\0')
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);

		if (len > 0 && len < NAMEDATALEN)
		{
			char		name[NAMEDATALEN];
			Oid			member;

			memcpy(name, p, len);
			name[len] = '\0';
			member = get_role_oid(name, true);
			if (OidIsValid(member) && is_member_of_role(role, member))
				return true;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

uint64
pgnw_slot_generation(int index)
{
	uint64		generation = 0;

	if (pgnw_shared == NULL || index < 0 || index >= pgnw_shared->nslots)
		return 0;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	if (pgnw_shared->slots[index].in_use)
		generation = pgnw_shared->slots[index].generation;
	LWLockRelease(pgnw_shared->lock);
	return generation;
}

void
pgnw_slot_name(int index, char *out)
{
	out[0] = '\0';
	if (pgnw_shared == NULL || index < 0 || index >= pgnw_shared->nslots)
		return;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	if (pgnw_shared->slots[index].in_use)
		strlcpy(out, pgnw_shared->slots[index].name, 64);
	LWLockRelease(pgnw_shared->lock);
}

void
pgnw_slot_set_wake(int index)
{
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	pgnw_shared->slots[index].wake_pending = true;
	LWLockRelease(pgnw_shared->lock);
}

bool
pgnw_slot_peek_wake(int index)
{
	return pgnw_shared->slots[index].wake_pending;
}

bool
pgnw_slot_take_wake(int index)
{
	bool		woken;

	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	woken = pgnw_shared->slots[index].wake_pending;
	pgnw_shared->slots[index].wake_pending = false;
	LWLockRelease(pgnw_shared->lock);
	return woken;
}

int
pgnw_worker_slot(void)
{
	return pgnw_my_slot;
}

TimestampTz
pgnw_worker_start_time(void)
{
	return pgnw_my_start;
}

/* Has stop() been called for this worker? */
bool
pgnw_worker_stop_requested(void)
{
	bool		stop;

	if (pgnw_my_slot < 0)
		return false;
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	stop = pgnw_shared->slots[pgnw_my_slot].stop_requested;
	LWLockRelease(pgnw_shared->lock);
	return stop;
}

/* ------------------------------------------------------ control operations */

/* Forget this backend's control operation (error, exit, or done). */
static void
pgnw_control_clear(void)
{
	int			me = MyProc->pgprocno;

	pgnw_control_depth = 0;
	if (pgnw_shared == NULL || me < 0 || me >= pgnw_shared->nops)
		return;
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	if (pgnw_shared->ops[me].pid == MyProcPid)
		pgnw_shared->ops[me].pid = 0;
	LWLockRelease(pgnw_shared->lock);
}

static void
pgnw_control_on_exit(int code, Datum arg)
{
	pgnw_control_clear();
}

/*
 * Wait until no other backend runs a control operation (launch, stop,
 * restart) on worker "name", then mark ours.  Pair with pgnw_control_end(),
 * also on error (PG_FINALLY).  Nests within one backend.  The wait is
 * interruptible (cancel, terminate); an entry left by a process that died
 * is ignored.
 */
static void
pgnw_control_begin(const char *name)
{
	static bool exit_hook = false;
	int			me = MyProc->pgprocno;

	if (pgnw_control_depth++ > 0)
		return;
	if (me < 0 || me >= pgnw_shared->nops)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("process number %d is out of range for node worker control", me)));
	if (!exit_hook)
	{
		before_shmem_exit(pgnw_control_on_exit, (Datum) 0);
		exit_hook = true;
	}
	for (;;)
	{
		bool		busy = false;

		LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < pgnw_shared->nops && !busy; i++)
		{
			PgnwControlOp *op = &pgnw_shared->ops[i];

			busy = i != me && op->pid != 0 && strcmp(op->name, name) == 0 &&
				kill(op->pid, 0) == 0;
		}
		if (!busy)
		{
			pgnw_shared->ops[me].pid = MyProcPid;
			strlcpy(pgnw_shared->ops[me].name, name, sizeof(pgnw_shared->ops[me].name));
		}
		LWLockRelease(pgnw_shared->lock);
		if (!busy)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
pgnw_control_end(void)
{
	if (pgnw_control_depth > 0 && --pgnw_control_depth == 0)
		pgnw_control_clear();
}

/* ------------------------------------------------------------- launching */

/* The bgworker registration of a node worker for slot "index". */
void
pgnw_fill_bgworker(BackgroundWorker *worker, const PgnwManifest *m, int index)
{
	memset(worker, 0, sizeof(*worker));

	/*
	 * PostgreSQL gives no database connection to workers that start with the
	 * postmaster: those run JS only (ctx.sql explains why it is refused).
	 */
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS;
	if (m->start_time != BgWorkerStart_PostmasterStart)
		worker->bgw_flags |= BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = m->start_time;
	/* dynamic workers are restarted after a failure too, like static ones */
	worker->bgw_restart_time = m->restart_seconds;
	strlcpy(worker->bgw_library_name, "pg_node_worker_runtime", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, "pg_node_worker_main", BGW_MAXLEN);
	strlcpy(worker->bgw_type, "node_worker", BGW_MAXLEN);
	snprintf(worker->bgw_name, BGW_MAXLEN, "node_worker %s", m->name);
	strlcpy(worker->bgw_extra, m->name, BGW_EXTRALEN);
	worker->bgw_main_arg = Int32GetDatum(index);
	worker->bgw_notify_pid = 0;
}

/* Names of the deployed workers, for hints: "a, b, c" (palloc'd). */
static char *
pgnw_deployed_names(void)
{
	int			n;
	char	  **names = pgnw_list_manifests(&n);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		size_t		len = strlen(names[i]);

		appendStringInfo(&buf, "%s%.*s", i ? ", " : "", (int) (len - 5), names[i]);
	}
	return buf.len ? buf.data : pstrdup("(none)");
}

static void
pgnw_load_manifest_or_error(const char *name, PgnwManifest *m)
{
	char		path[MAXPGPATH];
	char	   *reason = NULL;
	struct stat st;

	if (!pgnw_valid_worker_name(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid node worker name \"%s\"", name),
				 errhint("A worker name is 1 to 63 ASCII letters, digits, \"_\" or \"-\", starting with a letter or \"_\".")));
	pgnw_manifest_path(name, path);
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node worker \"%s\" is not deployed", name),
				 errhint("Deployed workers: %s. Deploy one with \"pg-node-worker deploy FILE -D PGDATA\".",
						 pgnw_deployed_names())));
	if (!pgnw_read_manifest(path, m, &reason))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not load node worker manifest \"%s\": %s", path,
						reason ? reason : "out of memory")));
	if (m->start_time == BgWorkerStart_PostmasterStart)
		m->start_time = BgWorkerStart_ConsistentState;
}

/*
 * Wait until process pid of slot index runs its main() (it is then
 * connected and visible in pg_stat_activity), or report why it did not.
 */
static void
pgnw_wait_until_running(int index, pid_t pid, const char *name)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PGNW_START_TIMEOUT_MS);

	for (;;)
	{
		PgnwSlot	s;

		LWLockAcquire(pgnw_shared->lock, LW_SHARED);
		s = pgnw_shared->slots[index];
		LWLockRelease(pgnw_shared->lock);

		/* it reached main(), even if it already finished */
		if (s.main_pid == pid)
			return;
		if (kill(pid, 0) != 0 || (s.pid != pid && s.pid != 0) ||
			(s.pid == 0 && s.last_exit_at != 0 && s.state != PGNW_STATE_STARTING))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("node worker \"%s\" exited during start-up", name),
					 s.last_error[0] ? errdetail("%s", s.last_error) : 0,
					 errhint("See node_worker.workers and the server log.")));
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(WARNING,
					(errmsg("node worker \"%s\" (pid %d) has not started its main function after %d s",
							name, (int) pid, PGNW_START_TIMEOUT_MS / 1000)));
			return;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Start a worker process for slot "index" (which already holds the worker's
 * name and arguments) and wait until it runs.  Returns its pid.
 */
static pid_t
pgnw_start_process(int index, const PgnwManifest *m, bool dynamic_kind)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	pgnw_fill_bgworker(&worker, m, index);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
		if (dynamic_kind)
			pgnw_shared->slots[index].in_use = false;
		LWLockRelease(pgnw_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start node worker \"%s\": no free background worker slot", m->name),
				 errhint("Raise max_worker_processes (a server restart is needed), or stop another background worker.")));
	}
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the postmaster died while node worker \"%s\" was starting", m->name)));
	if (status != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node worker \"%s\" could not be started", m->name),
				 errhint("See the server log.")));
	pgnw_wait_until_running(index, pid, m->name);
	return pid;
}

/*
 * Launch a dynamic worker from a deployed bundle; args is JSON text or NULL.
 * Returns its pid once it runs.  Also used by ctx.launch() in workers.
 */
static pid_t
pgnw_launch_locked(const char *name, const char *args, int *slot_out)
{
	PgnwManifest m;
	int			index = -1;
	int			oldest = -1;
	pid_t		pid;

	pgnw_check_shared();
	pgnw_load_manifest_or_error(name, &m);
	if (args != NULL && strlen(args) >= PGNW_ARGS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("launch arguments are too large (%zu bytes)", strlen(args)),
				 errdetail("The limit is %d bytes of JSON.", PGNW_ARGS_MAX - 1),
				 errhint("Pass a key (e.g. a row id) and let the worker read the rest with SQL.")));

	/* a free slot, or else the finished dynamic slot that ended longest ago */
	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_shared->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_shared->slots[i];

		if (!s->in_use)
		{
			index = i;
			break;
		}
		if (!s->is_static && s->pid == 0 &&
			(s->state == PGNW_STATE_STOPPED || s->state == PGNW_STATE_FAILED) &&
			(oldest < 0 || s->last_exit_at < pgnw_shared->slots[oldest].last_exit_at))
			oldest = i;
	}
	if (index < 0)
		index = oldest;
	if (index < 0)
	{
		LWLockRelease(pgnw_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start node worker \"%s\": all %d worker slots are in use", name,
						pgnw_shared->nslots),
				 errhint("Raise node_worker.max_workers (a server restart is needed).")));
	}
	{
		PgnwSlot   *s = &pgnw_shared->slots[index];

		memset(s, 0, sizeof(*s));
		s->in_use = true;
		s->is_static = false;
		s->generation = ++pgnw_shared->next_generation;
		s->state = PGNW_STATE_STARTING;
		pgnw_fill_slot_from_manifest(s, &m);
		if (args != NULL)
		{
			s->has_args = true;
			strlcpy(s->args, args, PGNW_ARGS_MAX);
		}
	}
	LWLockRelease(pgnw_shared->lock);

	pid = pgnw_start_process(index, &m, true);
	if (slot_out)
		*slot_out = index;
	return pid;
}

pid_t
pgnw_launch(const char *name, const char *args, int *slot_out)
{
	pid_t		pid = 0;

	pgnw_check_shared();
	pgnw_control_begin(name);
	PG_TRY();
	{
		pid = pgnw_launch_locked(name, args, slot_out);
	}
	PG_FINALLY();
	{
		pgnw_control_end();
	}
	PG_END_TRY();
	return pid;
}

/*
 * Ask every running process of worker "name" to stop and wait for them
 * (the worker's own watchdog forces a stop after the grace period).  Marks
 * the slots stopped so that nothing restarts them.  Returns how many
 * processes were running.
 */
static int
pgnw_stop_all(const char *name)
{
	pid_t	   *pids = palloc(sizeof(pid_t) * pgnw_shared->nslots);
	int			n = 0;
	TimestampTz deadline;

	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_shared->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_shared->slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		s->stop_requested = true;
		if (s->pid != 0)
			pids[n++] = s->pid;
		else if (s->state != PGNW_STATE_FAILED)
			s->state = PGNW_STATE_STOPPED;
	}
	LWLockRelease(pgnw_shared->lock);

	for (int i = 0; i < n; i++)
		kill(pids[i], SIGTERM);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pgnw_shutdown_grace_ms + 5000);
	for (int i = 0; i < n; i++)
	{
		while (kill(pids[i], 0) == 0 && GetCurrentTimestamp() < deadline)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(pids);
	return n;
}

Datum
node_worker_launch(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *args = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		args = JsonbToCString(NULL, &PG_GETARG_JSONB_P(1)->root, VARSIZE(PG_GETARG_JSONB_P(1)));
	PG_RETURN_INT32(pgnw_launch(name, args, NULL));
}

/* stop(name) under the name's control lock; false when no process ran */
static bool
pgnw_stop_locked(const char *name)
{
	bool		known = false;

	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	for (int i = 0; i < pgnw_shared->nslots && !known; i++)
		known = pgnw_shared->slots[i].in_use && strcmp(pgnw_shared->slots[i].name, name) == 0;
	LWLockRelease(pgnw_shared->lock);
	if (!known)
	{
		PgnwManifest m;

		/* an unknown name is an error; a deployed one that never ran is just not running */
		pgnw_load_manifest_or_error(name, &m);
		return false;
	}
	return pgnw_stop_all(name) > 0;
}

Datum
node_worker_stop(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		stopped = false;

	pgnw_check_shared();
	pgnw_control_begin(name);
	PG_TRY();
	{
		stopped = pgnw_stop_locked(name);
	}
	PG_FINALLY();
	{
		pgnw_control_end();
	}
	PG_END_TRY();
	PG_RETURN_BOOL(stopped);
}

/*
 * restart(name) under the name's control lock: stop every process of the
 * worker, then start it again with the current bundle and manifest, in its
 * static slot if it has one (or the slot of its last dynamic run, keeping
 * its arguments and its inbox).  Returns the new pid.
 */
static pid_t
pgnw_restart_locked(const char *name)
{
	PgnwManifest m;
	int			index = -1;

	pgnw_load_manifest_or_error(name, &m);
	(void) pgnw_stop_all(name);

	LWLockAcquire(pgnw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgnw_shared->nslots; i++)
	{
		PgnwSlot   *s = &pgnw_shared->slots[i];

		if (!s->in_use || strcmp(s->name, name) != 0)
			continue;
		if (index < 0 || s->is_static)
			index = i;
		if (s->is_static)
			break;
	}
	if (index >= 0)
	{
		PgnwSlot   *s = &pgnw_shared->slots[index];

		s->stop_requested = false;
		s->consecutive_failures = 0;
		s->last_error[0] = '\0';
		s->last_sqlstate[0] = '\0';
		s->state = PGNW_STATE_STARTING;
		pgnw_fill_slot_from_manifest(s, &m);
	}
	LWLockRelease(pgnw_shared->lock);

	if (index < 0)
		return pgnw_launch(name, NULL, NULL);
	return pgnw_start_process(index, &m, false);
}

Datum
node_worker_restart(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pid_t		pid = 0;

	pgnw_check_shared();
	pgnw_control_begin(name);
	PG_TRY();
	{
		pid = pgnw_restart_locked(name);
	}
	PG_FINALLY();
	{
		pgnw_control_end();
	}
	PG_END_TRY();
	PG_RETURN_INT32(pid);
}

/*
 * The worker name shown for a manifest file "<name>.json" that has no slot.
 * An invalid file name may hold any bytes: shown as ASCII, with other bytes
 * as \xHH, cut to fit, so the view's text is valid in any encoding.
 */
static void
pgnw_name_of_file(const char *file, char *out, size_t outlen)
{
	size_t		len = strlen(file) - strlen(".json");
	size_t		o = 0;

	for (size_t k = 0; k < len; k++)
	{
		unsigned char c = (unsigned char) file[k];

		if (c >= 0x20 && c < 0x7f)
		{
			if (o + 1 >= outlen)
				break;
			out[o++] = (char) c;
		}
		else
		{
			if (o + 4 >= outlen)
				break;
			snprintf(out + o, outlen - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
}

/*
 * The rows of node_worker.workers: every slot in use, plus every deployed
 * worker that has none (deployed after the server started, not launched).
 */
Datum
node_worker_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgnwSlot   *copy;
	int			nslots;
	int			nnames;
	char	  **names;

	pgnw_check_shared();
	InitMaterializedSRF(fcinfo, 0);

	nslots = pgnw_shared->nslots;
	copy = palloc(sizeof(PgnwSlot) * nslots);
	LWLockAcquire(pgnw_shared->lock, LW_SHARED);
	memcpy(copy, pgnw_shared->slots, sizeof(PgnwSlot) * nslots);
	LWLockRelease(pgnw_shared->lock);

	names = pgnw_list_manifests(&nnames);

	for (int i = 0; i < nslots + nnames; i++)
	{
		Datum		values[14];
		bool		nulls[14];
		PgnwSlot	pending;
		PgnwSlot   *s;
		char		path[MAXPGPATH];
		struct stat st;

		memset(nulls, 0, sizeof(nulls));
		if (i < nslots)
		{
			s = &copy[i];
			if (!s->in_use)
				continue;
		}
		else
		{
			/* a deployed worker with no slot */
			char		name[64];
			bool		seen = false;
			PgnwManifest m;
			char	   *reason = NULL;

			pgnw_name_of_file(names[i - nslots], name, sizeof(name));
			for (int j = 0; j < nslots && !seen; j++)
				seen = copy[j].in_use && strcmp(copy[j].name, name) == 0;
			if (seen)
				continue;
			memset(&pending, 0, sizeof(pending));
			snprintf(path, sizeof(path), "%s/%s", pgnw_directory(), names[i - nslots]);
			if (!pgnw_read_manifest(path, &m, &reason))
			{
				strlcpy(pending.name, name, sizeof(pending.name));
				snprintf(pending.last_error, sizeof(pending.last_error), "invalid manifest: %s",
						 reason ? reason : "out of memory");
				free(reason);
				pending.state = PGNW_STATE_FAILED;
			}
			else
			{
				pgnw_fill_slot_from_manifest(&pending, &m);
				pending.state = PGNW_STATE_STOPPED;
			}
			pending.is_static = true;
			s = &pending;
		}

		values[0] = CStringGetTextDatum(s->name);
		values[1] = CStringGetTextDatum(s->is_static ? "static" : "dynamic");
		values[2] = Int32GetDatum(s->pid);
		nulls[2] = s->pid == 0;
		values[3] = CStringGetTextDatum(pgnw_state_names[s->state]);
		values[4] = CStringGetTextDatum(s->database);
		values[5] = CStringGetTextDatum(s->role);
		nulls[5] = s->role[0] == '\0';
		values[6] = TimestampTzGetDatum(s->started_at);
		nulls[6] = s->started_at == 0;
		values[7] = Int32GetDatum(Max(s->starts - 1, 0));
		values[8] = TimestampTzGetDatum(s->last_exit_at);
		nulls[8] = s->last_exit_at == 0;
		values[9] = CStringGetTextDatum(s->last_error);
		nulls[9] = s->last_error[0] == '\0';
		values[10] = CStringGetTextDatum(s->last_sqlstate);
		nulls[10] = s->last_sqlstate[0] == '\0';
		values[11] = CStringGetTextDatum(s->sha256);
		nulls[11] = s->sha256[0] == '\0';
		pgnw_manifest_path(s->name, path);
		if (stat(path, &st) == 0)
			values[12] = TimestampTzGetDatum(time_t_to_timestamptz(st.st_mtime));
		else
			nulls[12] = true;
		/* read only where the SQL definition has it (0.5 on) */
		values[13] = Int32GetDatum(i);
		nulls[13] = i >= nslots;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
