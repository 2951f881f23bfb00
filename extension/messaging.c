/*-------------------------------------------------------------------------
 *
 * messaging.c
 *		The SQL functions that talk to workers: node_worker.call()
 *		(request/reply), node_worker.notify() (delivered on commit, in commit
 *		order) and node_worker.wake() (sets the worker's latch).  The
 *		inboxes and mailboxes they go through are inbox.c's.
 *
 * Who may talk to a worker: superusers, members of node_worker_admin, and
 * members of the roles in the worker's callers list.  That is checked
 * before anything about the worker is told, so a role without the right
 * learns nothing (whether it exists, runs or is stopped) but a uniform
 * 42501.
 *
 * call(): the caller stamps its mailbox, queues the request and waits on
 * its latch for the reply.  It gives up at its timeout, on cancel, when
 * the worker exits, and when the worker waits (directly or through other
 * processes) for a lock this transaction holds: the deadlock detector
 * cannot see that cycle, since the caller waits on a latch.  Nothing here
 * polls: every wait is on a latch, with a timeout only to notice a worker
 * that died or a lock it waits for that we hold.
 *
 * notify(): messages are kept in the transaction and appended to the inbox
 * at pre-commit, stamped with the transaction's xid, under a lock per
 * target worker that serialises its committing notifiers, so its inbox
 * order is commit order and a full inbox delays only its own senders.  The
 * worker delivers a message once its xid committed, waits while it is in
 * progress, and drops it if it aborted.  Messages of a rolled back
 * savepoint are discarded with it; PREPARE TRANSACTION is refused while
 * messages are pending (like core NOTIFY).  A commit whose target changed
 * identity fails.  notify() is at most once across a crash or a server
 * stop, which lose the inboxes.
 *
 * extension/messaging.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "inbox.h"
#include "messaging.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_call);
PG_FUNCTION_INFO_V1(node_worker_notify);
PG_FUNCTION_INFO_V1(node_worker_wake);

/*
 * Key of the locks that serialise committing notifiers, one per target slot
 * (the slot is the second key).  Advisory lock tags with database 0 and
 * field 3: pg_advisory_lock() always uses the current database and 1 or 2,
 * so SQL cannot take or block these.
 */
#define PGNW_NOTIFY_LOCK_KEY 0x706e7731
#define PGNW_NOTIFY_LOCK_FIELD4 3

/* how long a committing notifier waits for room in a full inbox */
#define PGNW_COMMIT_QUEUE_WAIT_MS 10000

/* a caller re-checks that its worker is alive (and not waiting for our locks) this often */
#define PGNW_CALLER_CHECK_MS 100

/* processes followed through pg_blocking_pids() when looking for a wait cycle */
#define PGNW_MAX_BLOCKERS 64

/* notify()s of the current transaction, in order */
typedef struct PgnwPendingNotify
{
	int			slot;
	uint64		generation;		/* the target's identity at notify() */
	int			nest_level;
	uint32		len;
	char	   *payload;
	char		name[PGNW_WORKER_NAME_MAX + 1];
	char		role[NAMEDATALEN];	/* current at notify(), not at commit */
	struct PgnwPendingNotify *next;
} PgnwPendingNotify;

/* A call waiting for its reply, for the cleanup when the caller gives up. */
typedef struct PgnwWaitingCall
{
	int			procno;
	uint64		request_id;
	int			slot;
	PgnwCallState why;			/* TIMED_OUT once the deadline passed, else CANCELLED */
} PgnwWaitingCall;

static PgnwPendingNotify *pgnw_messaging_pending = NULL;
static bool pgnw_messaging_callbacks_registered = false;


/* ------------------------------------------------------- the recipient */

/*
 * Is role a member of one of the roles in callers?  The list is role names
 * separated by commas, compared exactly (role names are case-sensitive; the
 * CLI refuses names with commas).
 */
static bool
pgnw_messaging_callers_admit(const char *callers, Oid role)
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

/*
 * May role talk to worker name?  Superusers and node_worker_admin members
 * are answered without looking the worker up; everyone else by the
 * worker's callers list (from its slot, or its manifest).
 */
bool
pgnw_messaging_may_talk(const char *name, Oid role, PgnwTarget *t)
{
	Oid			admin;

	memset(t, 0, sizeof(*t));
	t->slot = -1;
	if (superuser_arg(role))
		return true;
	admin = get_role_oid("node_worker_admin", true);
	if (OidIsValid(admin) && is_member_of_role(role, admin))
		return true;
	pgnw_find_worker(name, t);
	return t->known && pgnw_messaging_callers_admit(t->callers, role);
}

/*
 * The running process of worker "name" that SQL talks to, or ERROR.  Who
 * may talk to it is checked first, so a role without the right learns
 * nothing about the worker (whether it exists, runs or is stopped) but a
 * uniform 42501.
 */
static void
pgnw_messaging_recipient(const char *name, PgnwTarget *t)
{
	if (!pgnw_messaging_may_talk(name, GetUserId(), t))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to talk to node worker \"%s\"", name),
				 errhint("Superusers, members of node_worker_admin and members of the roles in the worker's callers list may.")));
	/* the privileged were answered before the lookup */
	if (!t->known)
		pgnw_find_worker(name, t);
	if (!t->known)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node worker \"%s\" does not exist", name),
				 errhint("See SELECT name, state FROM node_worker.workers.")));
	if (t->slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node worker \"%s\" is not running", name),
				 errhint("Start it with SELECT node_worker.restart('%s').", name)));
}

/* The header of a message sent by this backend as role. */
static void
pgnw_messaging_fill_header(PgnwMessage *h, PgnwMessageKind kind, uint32 len, const char *role)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->caller_pid = MyProcPid;
	h->caller_procno = pgnw_my_procno();
	h->sent_at = pgnw_clock_us();
	h->payload_len = len;
	strlcpy(h->role, role, NAMEDATALEN);
	strlcpy(h->database, get_database_name(MyDatabaseId), NAMEDATALEN);
}

/* ERROR when a payload is larger than a message may carry. */
static void
pgnw_messaging_check_payload_size(const char *what, uint32 len)
{
	if (len > pgnw_inbox_payload_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large: %u bytes", what, len),
				 errdetail("The limit is %u bytes (node_worker.max_message_kb and node_worker.queue_size_kb).",
						   pgnw_inbox_payload_limit())));
}

/* a jsonb argument as JSON text ("null" for SQL NULL) */
static char *
pgnw_messaging_payload_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *jb;

	if (PG_ARGISNULL(argno))
		return pstrdup("null");
	jb = PG_GETARG_JSONB_P(argno);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/* the worker name argument (the first), never null */
static char *
pgnw_messaging_name_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}


/* ------------------------------------------------------------------ call */

/*
 * The caller gave up (its timeout, a cancel, an error, its session ending):
 * a late reply is dropped, and the worker is told, so that the handler's
 * meta.signal fires.  Runs on ERROR and on FATAL (PG_ENSURE_ERROR_CLEANUP).
 */
static void
pgnw_messaging_abandon_call(int code, Datum arg)
{
	PgnwWaitingCall *w = (PgnwWaitingCall *) DatumGetPointer(arg);

	pgnw_inbox_abandon_call(w->procno, w->request_id, w->slot, w->why);
}

/*
 * Does the worker process wait, directly or through other processes, for a
 * lock this backend holds?  Then its reply cannot come while we wait for it,
 * and the deadlock detector cannot see the cycle (we wait on a latch, not a
 * lock).  Cheap when the worker waits for no lock.
 */
static bool
pgnw_messaging_worker_waits_for_us(pid_t worker_pid, int worker_procno)
{
	PGPROC	   *proc = GetPGProcByNumber(worker_procno);
	int32		queue[PGNW_MAX_BLOCKERS];
	int			nq = 0;
	bool		found = false;
	MemoryContext cxt;
	MemoryContext old;

	if ((proc->wait_event_info & 0xFF000000) != PG_WAIT_LOCK)
		return false;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_node_worker blockers",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	queue[nq++] = (int32) worker_pid;
	for (int qi = 0; qi < nq && !found; qi++)
	{
		ArrayType  *arr = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
																 Int32GetDatum(queue[qi])));
		int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
		int32	   *pids = (int32 *) ARR_DATA_PTR(arr);

		for (int i = 0; i < n && !found; i++)
		{
			bool		seen = false;

			if (pids[i] == MyProcPid)
				found = true;
			for (int k = 0; k < nq && !seen; k++)
				seen = queue[k] == pids[i];
			if (!seen && nq < PGNW_MAX_BLOCKERS)
				queue[nq++] = pids[i];
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return found;
}

/*
 * Queue call h for worker t, waiting for room while its inbox is full, up
 * to the call's deadline.  Sets h->request_id.
 */
static void
pgnw_messaging_queue_call(const char *name, const PgnwTarget *t, PgnwMessage *h,
						  const char *payload, int timeout_ms)
{
	while (!pgnw_inbox_queue_call(t->slot, t->generation, h, payload))
	{
		if (pgnw_clock_us() >= h->deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("call to node worker \"%s\" timed out after %d ms: its inbox stayed full",
							name, timeout_ms),
					 errhint("The worker is not taking messages as fast as they come, or does not handle its notifications (ctx.messages(), ctx.onMessage()).")));
		pgnw_supervisor_nap(10, PGNW_WAIT_INBOX_FULL);
	}
	pgnw_slot_set_latch(t->slot);
}

/*
 * Wait for the reply to call h, queued for worker t: the reply's text, with
 * *is_error and sqlstate[6].  ERROR at the deadline, when the worker exits
 * first, and when it waits for a lock we hold; those, a cancel, and any
 * other error abandon the call.
 */
static char *
pgnw_messaging_await_reply(const char *name, const PgnwTarget *t, const PgnwMessage *h,
						   int timeout_ms, bool *is_error, char *sqlstate)
{
	char	   *reply = NULL;
	PgnwWaitingCall waiting;

	waiting.procno = h->caller_procno;
	waiting.request_id = h->request_id;
	waiting.slot = t->slot;
	waiting.why = PGNW_CALL_CANCELLED;
	PG_ENSURE_ERROR_CLEANUP(pgnw_messaging_abandon_call, PointerGetDatum(&waiting));
	{
		while (!pgnw_inbox_take_reply(h->caller_procno, h->request_id, is_error, sqlstate,
									  &reply))
		{
			long		left = pgnw_clock_ms_until(h->deadline);
			int			procno_w;

			if (left <= 0)
			{
				waiting.why = PGNW_CALL_TIMED_OUT;
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("call to node worker \"%s\" timed out after %d ms", name, timeout_ms),
						 errhint("Pass a larger timeout_ms, or make the handler answer sooner.")));
			}
			if (pgnw_slot_process(t->slot, &procno_w) != t->pid)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("node worker \"%s\" exited before it replied", name)));
			if (procno_w >= 0 && pgnw_messaging_worker_waits_for_us(t->pid, procno_w))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
						 errmsg("deadlock detected"),
						 errdetail("Node worker \"%s\" (process %d) waits for a lock held by this transaction, while this transaction waits for the worker's reply.",
								   name, (int) t->pid),
						 errhint("Commit or roll back before calling the worker, or do not lock what its handler needs.")));
			pgnw_supervisor_nap(Min(left, PGNW_CALLER_CHECK_MS), PGNW_WAIT_CALL);
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(pgnw_messaging_abandon_call, PointerGetDatum(&waiting));
	return reply;
}

/*
 * node_worker.call(name, payload jsonb, timeout_ms default 5000): the
 * handler's result, or its error raised here with its SQLSTATE.
 */
Datum
node_worker_call(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_messaging_name_arg(fcinfo);
	char	   *payload = pgnw_messaging_payload_arg(fcinfo, 1);
	uint32		len = strlen(payload);
	int			timeout_ms = PG_ARGISNULL(2) ? 5000 : PG_GETARG_INT32(2);
	PgnwTarget	t;
	PgnwMessage h;
	bool		is_error = false;
	char		sqlstate[6];
	char	   *reply;

	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive")));
	pgnw_messaging_check_payload_size("call payload", len);
	pgnw_messaging_recipient(name, &t);

	pgnw_messaging_fill_header(&h, PGNW_MSG_CALL, len, GetUserNameFromId(GetUserId(), false));
	h.deadline = h.sent_at + (int64) timeout_ms * 1000;
	pgnw_messaging_queue_call(name, &t, &h, payload, timeout_ms);
	reply = pgnw_messaging_await_reply(name, &t, &h, timeout_ms, &is_error, sqlstate);

	if (is_error)
	{
		int			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);

		ereport(ERROR,
				(errcode(code),
				 errmsg("%s", reply),
				 errcontext("call to node worker \"%s\"", name)));
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(reply)));
}


/* ---------------------------------------------------------------- notify */

/* qsort() comparator of int */
static int
pgnw_messaging_cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/*
 * Take the lock of every target slot of the transaction's messages, in slot
 * order (no deadlock between notifiers), until the transaction ends.
 */
static void
pgnw_messaging_lock_targets(void)
{
	int			nslots = 0;
	int		   *slots;
	int			count = 0;

	for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL; n = n->next)
		count++;
	slots = palloc(sizeof(int) * count);
	for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL; n = n->next)
		slots[nslots++] = n->slot;
	qsort(slots, nslots, sizeof(int), pgnw_messaging_cmp_int);
	for (int i = 0; i < nslots; i++)
	{
		LOCKTAG		tag;

		if (i > 0 && slots[i] == slots[i - 1])
			continue;
		SET_LOCKTAG_ADVISORY(tag, InvalidOid, PGNW_NOTIFY_LOCK_KEY, (uint32) slots[i],
							 PGNW_NOTIFY_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	pfree(slots);
}

/*
 * Pre-commit: append the transaction's messages to their inboxes, stamped
 * with its xid, holding each target's lock until the transaction ends so
 * that each inbox's order is commit order.  A target that changed identity
 * since notify() fails the commit: its messages were meant for a worker
 * that is gone.
 */
static void
pgnw_messaging_notify_precommit(void)
{
	TransactionId xid = GetTopTransactionId();
	int64		deadline = pgnw_clock_after_ms(PGNW_COMMIT_QUEUE_WAIT_MS);

	pgnw_messaging_lock_targets();
	for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL;)
	{
		PgnwMessage h;
		PgnwQueueResult result;

		pgnw_messaging_fill_header(&h, PGNW_MSG_NOTIFY, n->len, n->role);
		h.xid = xid;
		result = pgnw_inbox_queue_notify(n->slot, n->generation, &h, n->payload);
		if (result == PGNW_QUEUE_REPLACED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node worker \"%s\" was removed or replaced before this transaction committed; the transaction was not committed",
							n->name),
					 errhint("Its notify() messages were for a worker process that no longer exists. Retry the transaction.")));
		if (result == PGNW_QUEUE_DONE)
		{
			n = n->next;
			continue;
		}
		if (pgnw_clock_us() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("the inbox of node worker \"%s\" stayed full for %d ms; the transaction was not committed",
							n->name, PGNW_COMMIT_QUEUE_WAIT_MS),
					 errhint("The worker is not keeping up with notify(); raise node_worker.queue_size_kb or slow down.")));
		pgnw_supervisor_nap(10, PGNW_WAIT_INBOX_FULL);
	}
}

/*
 * Every event that ends the transaction forgets its messages (they live in
 * its memory); PREPARE is refused while there are any, since a prepared
 * transaction commits in another session, where nothing would deliver them.
 */
static void
pgnw_messaging_xact_callback(XactEvent event, void *arg)
{
	if (pgnw_messaging_pending == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			pgnw_messaging_notify_precommit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that has called node_worker.notify()"),
					 errhint("Send the notifications after COMMIT PREPARED, in a transaction of their own.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:

			/*
			 * Committed: the queued messages are deliverable now.  Aborted
			 * after pre-commit: the worker drops them by their xid.  Either
			 * way the workers must look again.
			 */
			for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL; n = n->next)
				pgnw_slot_set_latch(n->slot);
			pgnw_messaging_pending = NULL;
			break;
		case XACT_EVENT_PREPARE:
			pgnw_messaging_pending = NULL;
			break;
	}
}

/*
 * A rolled back subtransaction takes its messages with it; a committed one
 * hands them to its parent.
 */
static void
pgnw_messaging_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	PgnwPendingNotify **p = &pgnw_messaging_pending;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (*p != NULL)
		{
			if ((*p)->nest_level >= level)
				*p = (*p)->next;
			else
				p = &(*p)->next;
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL; n = n->next)
			if (n->nest_level >= level)
				n->nest_level = level - 1;
	}
}

/*
 * ERROR when a message of len bytes for worker t cannot fit in its inbox
 * now, with what the transaction already holds for it.
 */
static void
pgnw_messaging_check_room(const char *name, const PgnwTarget *t, uint32 len)
{
	uint32		pending_bytes = 0;
	uint32		used;

	for (PgnwPendingNotify *n = pgnw_messaging_pending; n != NULL; n = n->next)
		if (n->slot == t->slot)
			pending_bytes += MAXALIGN(sizeof(PgnwMessage) + n->len);
	used = pgnw_inbox_used(t->slot, t->generation);
	if (used + pending_bytes + MAXALIGN(sizeof(PgnwMessage) + len) > pgnw_inbox_capacity())
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the inbox of node worker \"%s\" is full", name),
				 errdetail("%u of %u bytes are in use, and this transaction has %u bytes of messages for it already.",
						   used, pgnw_inbox_capacity(), pending_bytes),
				 errhint("The worker is not keeping up: retry later, or raise node_worker.queue_size_kb.")));
}

/*
 * node_worker.notify(name, payload jsonb): queue a message for the worker,
 * sent when the transaction commits.
 */
Datum
node_worker_notify(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_messaging_name_arg(fcinfo);
	char	   *payload = pgnw_messaging_payload_arg(fcinfo, 1);
	uint32		len = strlen(payload);
	PgnwTarget	t;
	PgnwPendingNotify *n;
	PgnwPendingNotify **tail;

	pgnw_messaging_check_payload_size("notify payload", len);
	pgnw_messaging_recipient(name, &t);
	/* refuse up front what cannot fit in the inbox now */
	pgnw_messaging_check_room(name, &t, len);

	if (!pgnw_messaging_callbacks_registered)
	{
		RegisterXactCallback(pgnw_messaging_xact_callback, NULL);
		RegisterSubXactCallback(pgnw_messaging_subxact_callback, NULL);
		pgnw_messaging_callbacks_registered = true;
	}

	n = MemoryContextAllocZero(TopTransactionContext, sizeof(*n));
	n->slot = t.slot;
	n->generation = t.generation;
	n->nest_level = GetCurrentTransactionNestLevel();
	n->len = len;
	n->payload = MemoryContextStrdup(TopTransactionContext, payload);
	strlcpy(n->name, name, sizeof(n->name));
	strlcpy(n->role, GetUserNameFromId(GetUserId(), false), sizeof(n->role));
	for (tail = &pgnw_messaging_pending; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = n;
	PG_RETURN_VOID();
}


/* ------------------------------------------------------------------ wake */

/* node_worker.wake(name): set the worker's latch and its wake flag. */
Datum
node_worker_wake(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_messaging_name_arg(fcinfo);
	PgnwTarget	t;

	pgnw_messaging_recipient(name, &t);
	pgnw_slot_set_wake(t.slot);
	pgnw_slot_set_latch(t.slot);
	PG_RETURN_VOID();
}
