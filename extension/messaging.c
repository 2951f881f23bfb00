/*-------------------------------------------------------------------------
 *
 * messaging.c
 *		SQL talking to workers through shared memory: node_worker.call()
 *		(request/reply), node_worker.notify() (delivered on commit, in commit
 *		order) and node_worker.wake() (sets the worker's latch).
 *
 * Each worker slot owns a byte ring in shared memory (its inbox, size
 * node_worker.queue_size_kb).  Senders append messages under pgnw_msg_lock
 * and set the worker's latch; the worker takes them in its event loop.
 * Each backend owns a reply mailbox indexed by its PGPROC number: a caller
 * stamps it with a request id, waits on its latch, and the worker writes
 * the reply there and sets the caller's latch.  A caller that gives up
 * (timeout, cancel) marks the mailbox abandoned, so a late reply is
 * dropped, and tells the worker, whose handler sees meta.signal fire.
 * Nothing here polls: every wait is on a latch, with a timeout only to
 * notice a worker that died or a lock it waits for that we hold.
 *
 * notify(): messages are kept in the transaction and appended to the inbox
 * at pre-commit, stamped with the transaction's xid, under a lock per
 * target worker that serialises its committing notifiers, so its inbox
 * order is commit order and a full inbox delays only its own senders.  The
 * worker delivers a message once its xid committed, waits while it is in
 * progress, and drops it if it aborted.  Messages of a rolled back
 * savepoint are discarded with it; PREPARE TRANSACTION is refused while
 * messages are pending (like core NOTIFY).
 *
 * Delivery: a notification stays in the inbox until the worker's JS says it
 * was handled, so JS never holds more than the inbox and a full inbox makes
 * notify() fail up front.  A worker process that exits (restart(), stop(),
 * an error) leaves what it did not finish to the next process of the same
 * worker; a message handed out PGNW_MAX_DELIVERIES times without being
 * finished is dropped and counted.  An inbox belongs to one identity of its
 * slot (PgnwSlot.generation): messages left for an identity that is gone
 * are counted and logged when the slot's next identity claims the inbox,
 * and a commit whose target changed identity fails.  A crash (which resets
 * shared memory) or a server stop loses what is in the inboxes: notify()
 * is at most once across those; the worker logs what it leaves behind.
 *
 * extension/messaging.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "compat.h"
#include "pg_node_worker.h"

PG_FUNCTION_INFO_V1(node_worker_call);
PG_FUNCTION_INFO_V1(node_worker_notify);
PG_FUNCTION_INFO_V1(node_worker_wake);
PG_FUNCTION_INFO_V1(node_worker_inboxes);

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

/* a notification handed to this many worker processes that exited before finishing it is dropped */
#define PGNW_MAX_DELIVERIES 3

/* processes followed through pg_blocking_pids() when looking for a wait cycle */
#define PGNW_MAX_BLOCKERS 64

typedef enum PgnwMailboxState
{
	PGNW_MAILBOX_IDLE = 0,
	PGNW_MAILBOX_WAITING,
	PGNW_MAILBOX_DONE,
	PGNW_MAILBOX_ABANDONED
} PgnwMailboxState;

typedef struct PgnwMailbox
{
	uint64		request_id;
	PgnwMailboxState state;
	PgnwCallState abandoned;	/* why, when state is ABANDONED */
	bool		is_error;
	char		sqlstate[6];
	uint32		len;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* max_message_kb */
} PgnwMailbox;

/*
 * A slot's inbox.  Byte positions only grow: head <= next <= tail.  Bytes
 * [head, next) were handed to the worker (notifications there wait for
 * their acknowledgement), [next, tail) were not yet.
 */
typedef struct PgnwInbox
{
	uint64		head;			/* oldest byte still held */
	uint64		next;			/* next byte to hand to the worker */
	uint64		tail;			/* next byte to write */
	uint64		generation;		/* the slot identity these messages were sent to */
	uint64		lost;			/* committed notifications dropped unhandled */
	uint32		abandons;		/* calls their callers gave up on */
	pid_t		reader;			/* the worker process that took from it last */
	char		owner[64];		/* worker name of that identity */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* queue_size_kb */
} PgnwInbox;

typedef struct PgnwMsgShared
{
	LWLock	   *lock;
	uint64		next_request_id;
} PgnwMsgShared;

int			pgnw_queue_size_kb = 256;
int			pgnw_max_message_kb = 64;

static PgnwMsgShared *pgnw_msg = NULL;
static char *pgnw_inboxes = NULL;
static char *pgnw_mailboxes = NULL;

/* notify()s of the current transaction, in order */
typedef struct PgnwPendingNotify
{
	int			slot;
	uint64		generation;		/* the target's identity at notify() */
	int			nest_level;
	uint32		len;
	char	   *payload;
	char		name[64];
	char		role[NAMEDATALEN];	/* current at notify(), not at commit */
	struct PgnwPendingNotify *next;
} PgnwPendingNotify;

static PgnwPendingNotify *pgnw_pending = NULL;
static bool pgnw_callbacks_registered = false;

/* worker side: the slot this process reads, and the last abandon count it saw */
static int	pgnw_reader_slot = -1;
static uint32 pgnw_seen_abandons = 0;

static Size
pgnw_inbox_size(void)
{
	return MAXALIGN(offsetof(PgnwInbox, data) + (Size) pgnw_queue_size_kb * 1024);
}

static Size
pgnw_mailbox_size(void)
{
	return MAXALIGN(offsetof(PgnwMailbox, data) + (Size) pgnw_max_message_kb * 1024);
}

static PgnwInbox *
pgnw_inbox(int slot)
{
	return (PgnwInbox *) (pgnw_inboxes + pgnw_inbox_size() * slot);
}

static PgnwMailbox *
pgnw_mailbox(int procno)
{
	return (PgnwMailbox *) (pgnw_mailboxes + pgnw_mailbox_size() * procno);
}

static uint32
pgnw_queue_capacity(void)
{
	return (uint32) pgnw_queue_size_kb * 1024;
}

/* largest payload a message may carry */
static uint32
pgnw_payload_limit(void)
{
	uint32		limit = (uint32) pgnw_max_message_kb * 1024;

	return Min(limit, pgnw_queue_capacity() - (uint32) MAXALIGN(sizeof(PgnwMessage)));
}

Size
pgnw_messaging_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgnwMsgShared));

	size = add_size(size, mul_size(pgnw_inbox_size(), pgnw_max_workers));
	size = add_size(size, mul_size(pgnw_mailbox_size(), MaxBackends));
	return size;
}

void
pgnw_messaging_define_gucs(void)
{
	DefineCustomIntVariable("node_worker.queue_size_kb",
							"Size of each worker's inbox for call() and notify() messages.",
							"Notifications stay in the inbox until the worker has handled them; when it is full, notify() fails.",
							&pgnw_queue_size_kb,
							256,
							16,
							1024 * 1024,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("node_worker.max_message_kb",
							"Largest call() payload or result, and notify() payload.",
							NULL,
							&pgnw_max_message_kb,
							64,
							1,
							64 * 1024,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

void
pgnw_messaging_shmem_startup(void)
{
	bool		found;
	char	   *base;

	base = ShmemInitStruct("pg_node_worker messaging", pgnw_messaging_shmem_size(), &found);
	pgnw_msg = (PgnwMsgShared *) base;
	pgnw_inboxes = base + MAXALIGN(sizeof(PgnwMsgShared));
	pgnw_mailboxes = pgnw_inboxes + pgnw_inbox_size() * pgnw_max_workers;
	if (!found)
	{
		memset(base, 0, pgnw_messaging_shmem_size());
		pgnw_msg->lock = &(GetNamedLWLockTranche("pg_node_worker"))[1].lock;
		pgnw_msg->next_request_id = 1;
	}
}

/* ---------------------------------------------------------------- inbox */

static uint32
pgnw_inbox_used(PgnwInbox *box)
{
	return (uint32) (box->tail - box->head);
}

static void
pgnw_ring_write(PgnwInbox *box, uint64 pos, const void *src, uint32 len)
{
	uint32		cap = pgnw_queue_capacity();
	uint32		off = (uint32) (pos % cap);
	uint32		first = Min(len, cap - off);

	memcpy(box->data + off, src, first);
	if (first < len)
		memcpy(box->data, (const char *) src + first, len - first);
}

static void
pgnw_ring_read(PgnwInbox *box, uint64 pos, void *dst, uint32 len)
{
	uint32		cap = pgnw_queue_capacity();
	uint32		off = (uint32) (pos % cap);
	uint32		first = Min(len, cap - off);

	memcpy(dst, box->data + off, first);
	if (first < len)
		memcpy((char *) dst + first, box->data, len - first);
}

/* Mark the message at pos handled; caller holds the lock exclusively. */
static void
pgnw_mark_handled(PgnwInbox *box, uint64 pos, PgnwMessage *h)
{
	h->flags |= PGNW_MSG_HANDLED;
	pgnw_ring_write(box, pos, h, sizeof(*h));
}

/* Give back the space of the handled messages at the front. */
static void
pgnw_inbox_advance(PgnwInbox *box)
{
	while (box->head != box->next)
	{
		PgnwMessage h;

		pgnw_ring_read(box, box->head, &h, sizeof(h));
		if (!(h.flags & PGNW_MSG_HANDLED))
			break;
		box->head += h.total_len;
	}
}

/*
 * Committed notifications in the inbox not handled yet (with in_progress,
 * also those whose transaction has not ended).
 */
static int
pgnw_inbox_unhandled(PgnwInbox *box, bool in_progress)
{
	int			n = 0;

	for (uint64 pos = box->head; pos != box->tail;)
	{
		PgnwMessage h;

		pgnw_ring_read(box, pos, &h, sizeof(h));
		if (h.kind == PGNW_MSG_NOTIFY && !(h.flags & PGNW_MSG_HANDLED) &&
			((in_progress && TransactionIdIsInProgress(h.xid)) || TransactionIdDidCommit(h.xid)))
			n++;
		pos += h.total_len;
	}
	return n;
}

/*
 * Make the inbox of slot belong to identity generation; caller holds the
 * lock exclusively.  Messages left for an earlier identity are dropped: the
 * committed notifications among them are returned (the caller logs them,
 * after releasing the lock) with the name they were for.
 */
static int
pgnw_inbox_claim(int slot, uint64 generation, char *old_owner)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	int			dropped = 0;

	if (box->generation == generation)
		return 0;
	dropped = pgnw_inbox_unhandled(box, true);
	strlcpy(old_owner, box->owner, 64);
	box->head = box->next = box->tail;
	box->generation = generation;
	box->lost = 0;
	box->reader = 0;
	pgnw_slot_name(slot, box->owner);
	return dropped;
}

static void
pgnw_log_dropped(int dropped, const char *owner)
{
	if (dropped > 0)
		ereport(LOG,
				(errmsg("%d committed notifications for node worker \"%s\" were dropped unhandled: its slot was given to another worker",
						dropped, owner),
				 errhint("A stopped dynamic worker keeps its messages only until its slot is reused; restart() it to have them handled.")));
}

/*
 * Append a message; caller holds pgnw_msg->lock exclusively.  Returns false
 * when the inbox has no room.
 */
static bool
pgnw_inbox_put(int slot, const PgnwMessage *header, const char *payload)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	uint32		total = MAXALIGN(sizeof(PgnwMessage) + header->payload_len);
	PgnwMessage h = *header;

	if (pgnw_inbox_used(box) + total > pgnw_queue_capacity())
		return false;
	h.total_len = total;
	pgnw_ring_write(box, box->tail, &h, sizeof(h));
	pgnw_ring_write(box, box->tail + sizeof(h), payload, header->payload_len);
	box->tail += total;
	return true;
}

static void
pgnw_set_worker_latch(int slot)
{
	int			procno;
	pid_t		pid = pgnw_slot_process(slot, &procno);

	if (pid != 0 && procno >= 0)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

/* -------------------------------------------------------- the recipient */

/*
 * The running process of worker "name" that SQL talks to, or ERROR.  Who
 * may talk to it is checked first, so a role without the right learns
 * nothing about the worker (whether it exists, runs or is stopped) but a
 * uniform 42501.
 */
static void
pgnw_recipient(const char *name, PgnwTarget *t)
{
	pgnw_find_worker(name, t);

	if (!superuser())
	{
		Oid			admin = get_role_oid("node_worker_admin", true);
		bool		allowed = false;

		if (OidIsValid(admin) && is_member_of_role(GetUserId(), admin))
			allowed = true;
		else if (t->known)
			allowed = pgnw_callers_admit(t->callers, GetUserId());
		if (!allowed)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to talk to node worker \"%s\"", name),
					 errhint("Superusers, members of node_worker_admin and members of the roles in the worker's callers list may.")));
	}
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

static void
pgnw_fill_header(PgnwMessage *h, PgnwMessageKind kind, uint32 len, const char *role)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->caller_pid = MyProcPid;
	h->caller_procno = pgnw_my_procno();
	h->sent_at = GetCurrentTimestamp();
	h->payload_len = len;
	strlcpy(h->role, role, NAMEDATALEN);
	strlcpy(h->database, get_database_name(MyDatabaseId), NAMEDATALEN);
}

static void
pgnw_check_payload_size(const char *what, uint32 len)
{
	if (len > pgnw_payload_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large: %u bytes", what, len),
				 errdetail("The limit is %u bytes (node_worker.max_message_kb and node_worker.queue_size_kb).",
						   pgnw_payload_limit())));
}

/* a jsonb argument as JSON text ("null" for SQL NULL) */
static char *
pgnw_payload_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *jb;

	if (PG_ARGISNULL(argno))
		return pstrdup("null");
	jb = PG_GETARG_JSONB_P(argno);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

static char *
pgnw_name_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/* ------------------------------------------------------------------ call */

/* A call waiting for its reply, for the cleanup when the caller gives up. */
typedef struct PgnwWaitingCall
{
	int			procno;
	uint64		request_id;
	int			slot;
	PgnwCallState why;			/* TIMED_OUT once the deadline passed, else CANCELLED */
} PgnwWaitingCall;

/*
 * The caller gave up (its timeout, a cancel, an error, its session ending):
 * a late reply is dropped, and the worker is told, so that the handler's
 * meta.signal fires.  Runs on ERROR and on FATAL (PG_ENSURE_ERROR_CLEANUP).
 */
static void
pgnw_abandon_call(int code, Datum arg)
{
	PgnwWaitingCall *w = (PgnwWaitingCall *) DatumGetPointer(arg);
	PgnwMailbox *mb = pgnw_mailbox(w->procno);

	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (mb->request_id == w->request_id && mb->state == PGNW_MAILBOX_WAITING)
	{
		mb->state = PGNW_MAILBOX_ABANDONED;
		mb->abandoned = w->why;
		pgnw_inbox(w->slot)->abandons++;
	}
	LWLockRelease(pgnw_msg->lock);
	pgnw_set_worker_latch(w->slot);
}

/*
 * Does the worker process wait, directly or through other processes, for a
 * lock this backend holds?  Then its reply cannot come while we wait for it,
 * and the deadlock detector cannot see the cycle (we wait on a latch, not a
 * lock).  Cheap when the worker waits for no lock.
 */
static bool
pgnw_worker_waits_for_us(pid_t worker_pid, int worker_procno)
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

Datum
node_worker_call(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_name_arg(fcinfo);
	char	   *payload = pgnw_payload_arg(fcinfo, 1);
	uint32		len = strlen(payload);
	int			timeout_ms = PG_ARGISNULL(2) ? 5000 : PG_GETARG_INT32(2);
	PgnwTarget	t;
	PgnwMessage h;
	PgnwMailbox *mb;
	int			procno = pgnw_my_procno();
	uint64		request_id = 0;
	TimestampTz deadline;
	bool		done = false;
	bool		is_error = false;
	char		sqlstate[6];
	char	   *reply = NULL;
	PgnwWaitingCall waiting;

	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive")));
	pgnw_check_payload_size("call payload", len);
	pgnw_recipient(name, &t);

	pgnw_fill_header(&h, PGNW_MSG_CALL, len, GetUserNameFromId(GetUserId(), false));
	mb = pgnw_mailbox(procno);
	deadline = TimestampTzPlusMilliseconds(h.sent_at, timeout_ms);
	h.deadline = deadline;

	/* stamp the mailbox and queue the request (waiting for room if full) */
	for (;;)
	{
		bool		queued;
		char		old_owner[64];
		int			dropped;

		LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
		dropped = pgnw_inbox_claim(t.slot, t.generation, old_owner);
		request_id = pgnw_msg->next_request_id++;
		h.request_id = request_id;
		mb->request_id = request_id;
		mb->state = PGNW_MAILBOX_WAITING;
		mb->len = 0;
		queued = pgnw_inbox_put(t.slot, &h, payload);
		if (!queued)
			mb->state = PGNW_MAILBOX_IDLE;
		LWLockRelease(pgnw_msg->lock);
		pgnw_log_dropped(dropped, old_owner);
		if (queued)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("call to node worker \"%s\" timed out after %d ms: its inbox stayed full",
							name, timeout_ms),
					 errhint("The worker is not taking messages as fast as they come, or does not handle its notifications (ctx.messages(), ctx.onMessage()).")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pgnw_set_worker_latch(t.slot);

	/* wait for the reply; cancel, timeout, a dying worker and a wait cycle abandon it */
	waiting.procno = procno;
	waiting.request_id = request_id;
	waiting.slot = t.slot;
	waiting.why = PGNW_CALL_CANCELLED;
	PG_ENSURE_ERROR_CLEANUP(pgnw_abandon_call, PointerGetDatum(&waiting));
	{
		for (;;)
		{
			long		left;
			int			procno_w;

			LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
			if (mb->request_id == request_id && mb->state == PGNW_MAILBOX_DONE)
			{
				done = true;
				is_error = mb->is_error;
				memcpy(sqlstate, mb->sqlstate, sizeof(sqlstate));
				reply = palloc(mb->len + 1);
				memcpy(reply, mb->data, mb->len);
				reply[mb->len] = '\0';
				mb->state = PGNW_MAILBOX_IDLE;
			}
			LWLockRelease(pgnw_msg->lock);
			if (done)
				break;

			left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (left <= 0)
				waiting.why = PGNW_CALL_TIMED_OUT;
			if (left <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("call to node worker \"%s\" timed out after %d ms", name, timeout_ms),
						 errhint("Pass a larger timeout_ms, or make the handler answer sooner.")));
			if (pgnw_slot_process(t.slot, &procno_w) != t.pid)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("node worker \"%s\" exited before it replied", name)));
			if (procno_w >= 0 && pgnw_worker_waits_for_us(t.pid, procno_w))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
						 errmsg("deadlock detected"),
						 errdetail("Node worker \"%s\" (process %d) waits for a lock held by this transaction, while this transaction waits for the worker's reply.",
								   name, (int) t.pid),
						 errhint("Commit or roll back before calling the worker, or do not lock what its handler needs.")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, PGNW_CALLER_CHECK_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(pgnw_abandon_call, PointerGetDatum(&waiting));

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

static int
pgnw_cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/*
 * Pre-commit: append the transaction's messages to their inboxes, stamped
 * with its xid, holding each target's lock until the transaction ends so
 * that each inbox's order is commit order.  Locks are taken in slot order
 * (no deadlock between notifiers).  A target that changed identity since
 * notify() fails the commit: its messages were meant for a worker that is
 * gone.
 */
static void
pgnw_notify_precommit(void)
{
	TransactionId xid = GetTopTransactionId();
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   PGNW_COMMIT_QUEUE_WAIT_MS);
	int			nslots = 0;
	int		   *slots;
	int			count = 0;

	for (PgnwPendingNotify *n = pgnw_pending; n != NULL; n = n->next)
		count++;
	slots = palloc(sizeof(int) * count);
	for (PgnwPendingNotify *n = pgnw_pending; n != NULL; n = n->next)
		slots[nslots++] = n->slot;
	qsort(slots, nslots, sizeof(int), pgnw_cmp_int);
	for (int i = 0; i < nslots; i++)
	{
		LOCKTAG		tag;

		if (i > 0 && slots[i] == slots[i - 1])
			continue;
		SET_LOCKTAG_ADVISORY(tag, InvalidOid, PGNW_NOTIFY_LOCK_KEY, (uint32) slots[i],
							 PGNW_NOTIFY_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}

	for (PgnwPendingNotify *n = pgnw_pending; n != NULL;)
	{
		PgnwMessage h;
		bool		queued;
		bool		replaced;
		char		old_owner[64];
		int			dropped = 0;

		pgnw_fill_header(&h, PGNW_MSG_NOTIFY, n->len, n->role);
		h.xid = xid;
		LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
		replaced = pgnw_slot_generation(n->slot) != n->generation;
		if (!replaced)
			dropped = pgnw_inbox_claim(n->slot, n->generation, old_owner);
		queued = !replaced && pgnw_inbox_put(n->slot, &h, n->payload);
		LWLockRelease(pgnw_msg->lock);
		pgnw_log_dropped(dropped, old_owner);
		if (replaced)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node worker \"%s\" was removed or replaced before this transaction committed; the transaction was not committed",
							n->name),
					 errhint("Its notify() messages were for a worker process that no longer exists. Retry the transaction.")));
		if (queued)
		{
			n = n->next;
			continue;
		}
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("the inbox of node worker \"%s\" stayed full for %d ms; the transaction was not committed",
							n->name, PGNW_COMMIT_QUEUE_WAIT_MS),
					 errhint("The worker is not keeping up with notify(); raise node_worker.queue_size_kb or slow down.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(slots);
}

/*
 * Every event that ends the transaction forgets its messages (they live in
 * its memory); PREPARE is refused while there are any, since a prepared
 * transaction commits in another session, where nothing would deliver them.
 */
static void
pgnw_notify_xact_callback(XactEvent event, void *arg)
{
	if (pgnw_pending == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			pgnw_notify_precommit();
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
			for (PgnwPendingNotify *n = pgnw_pending; n != NULL; n = n->next)
				pgnw_set_worker_latch(n->slot);
			pgnw_pending = NULL;
			break;
		case XACT_EVENT_PREPARE:
			pgnw_pending = NULL;
			break;
	}
}

static void
pgnw_notify_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	PgnwPendingNotify **p = &pgnw_pending;

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
		for (PgnwPendingNotify *n = pgnw_pending; n != NULL; n = n->next)
			if (n->nest_level >= level)
				n->nest_level = level - 1;
	}
}

Datum
node_worker_notify(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_name_arg(fcinfo);
	char	   *payload = pgnw_payload_arg(fcinfo, 1);
	uint32		len = strlen(payload);
	PgnwTarget	t;
	PgnwPendingNotify *n;
	PgnwPendingNotify **tail;
	uint32		pending_bytes = 0;
	uint32		used;

	pgnw_check_payload_size("notify payload", len);
	pgnw_recipient(name, &t);

	/* refuse up front what cannot fit in the inbox now */
	for (n = pgnw_pending; n != NULL; n = n->next)
		if (n->slot == t.slot)
			pending_bytes += MAXALIGN(sizeof(PgnwMessage) + n->len);
	LWLockAcquire(pgnw_msg->lock, LW_SHARED);
	used = pgnw_inbox(t.slot)->generation == t.generation ? pgnw_inbox_used(pgnw_inbox(t.slot)) : 0;
	LWLockRelease(pgnw_msg->lock);
	if (used + pending_bytes + MAXALIGN(sizeof(PgnwMessage) + len) > pgnw_queue_capacity())
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the inbox of node worker \"%s\" is full", name),
				 errdetail("%u of %u bytes are in use, and this transaction has %u bytes of messages for it already.",
						   used, pgnw_queue_capacity(), pending_bytes),
				 errhint("The worker is not keeping up: retry later, or raise node_worker.queue_size_kb.")));

	if (!pgnw_callbacks_registered)
	{
		RegisterXactCallback(pgnw_notify_xact_callback, NULL);
		RegisterSubXactCallback(pgnw_notify_subxact_callback, NULL);
		pgnw_callbacks_registered = true;
	}

	n = MemoryContextAllocZero(TopTransactionContext, sizeof(*n));
	n->slot = t.slot;
	n->generation = t.generation;
	n->nest_level = GetCurrentTransactionNestLevel();
	n->len = len;
	n->payload = MemoryContextStrdup(TopTransactionContext, payload);
	strlcpy(n->name, name, sizeof(n->name));
	strlcpy(n->role, GetUserNameFromId(GetUserId(), false), sizeof(n->role));
	for (tail = &pgnw_pending; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = n;
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------ wake */

Datum
node_worker_wake(PG_FUNCTION_ARGS)
{
	char	   *name = pgnw_name_arg(fcinfo);
	PgnwTarget	t;

	pgnw_recipient(name, &t);
	pgnw_slot_set_wake(t.slot);
	pgnw_set_worker_latch(t.slot);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------- the worker side */

/* Is anything waiting for this worker (runtime.cc asks after each wake-up)? */
bool
pgnw_worker_has_messages(int slot)
{
	PgnwInbox  *box;

	if (pgnw_msg == NULL || slot < 0)
		return false;
	box = pgnw_inbox(slot);
	/* unlocked peek: a sender sets our latch after appending */
	return box->tail != box->next || pgnw_reader_slot != slot ||
		box->abandons != pgnw_seen_abandons || pgnw_slot_peek_wake(slot);
}

/* The worker process exits: say what it leaves in its inbox. */
static void
pgnw_reader_on_exit(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);
	PgnwInbox  *box = pgnw_inbox(slot);
	int			left = 0;
	char		name[64];

	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (box->reader == MyProcPid)
	{
		box->reader = 0;
		left = pgnw_inbox_unhandled(box, false);
		strlcpy(name, box->owner, sizeof(name));
	}
	LWLockRelease(pgnw_msg->lock);
	if (left > 0)
		ereport(LOG,
				(errmsg("node worker \"%s\" exits with %d committed notifications not handled yet",
						name, left),
				 errdetail("They are delivered to its next process; they are lost if the server stops first.")));
}

/*
 * The first take of a worker process: claim the inbox for the slot's
 * identity and hand out again what earlier processes did not finish.
 * Caller holds the lock exclusively.
 */
static int
pgnw_inbox_attach(int slot, char *old_owner)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	int			dropped = pgnw_inbox_claim(slot, pgnw_slot_generation(slot), old_owner);

	box->reader = MyProcPid;
	box->next = box->head;
	return dropped;
}

/*
 * Take the messages ready for the worker in "slot", in order, into a
 * palloc'd array.  Stops at a notify whose transaction is still in progress
 * (its commit will wake us); marks handled at once what needs no
 * acknowledgement: notifies of aborted transactions, calls (answered through
 * the mailbox, never twice), calls sent to an earlier process of this worker
 * or whose caller is gone.
 */
int
pgnw_worker_take_messages(int slot, TimestampTz my_start, PgnwTakenMessage **out,
						  bool *woken, bool *abandoned)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	int			n = 0;
	int			max = 16;
	int			poisoned = 0;
	int			dropped = 0;
	bool		attach = pgnw_reader_slot != slot;
	char		old_owner[64];
	char		owner[64];
	TimestampTz now = GetCurrentTimestamp();
	PgnwTakenMessage *msgs = palloc(sizeof(PgnwTakenMessage) * max);

	*woken = pgnw_slot_take_wake(slot);
	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (attach)
		dropped = pgnw_inbox_attach(slot, old_owner);
	*abandoned = box->abandons != pgnw_seen_abandons;
	pgnw_seen_abandons = box->abandons;
	while (box->next != box->tail)
	{
		uint64		pos = box->next;
		PgnwMessage h;

		pgnw_ring_read(box, pos, &h, sizeof(h));
		if (h.flags & PGNW_MSG_HANDLED)
		{
			box->next += h.total_len;
			continue;
		}
		if (h.kind == PGNW_MSG_NOTIFY)
		{
			if (TransactionIdIsInProgress(h.xid))
				break;
			if (!TransactionIdDidCommit(h.xid))
			{
				pgnw_mark_handled(box, pos, &h);
				box->next += h.total_len;
				continue;
			}
			if (h.deliveries >= PGNW_MAX_DELIVERIES)
			{
				pgnw_mark_handled(box, pos, &h);
				box->lost++;
				poisoned++;
				box->next += h.total_len;
				continue;
			}
			h.deliveries++;
			pgnw_ring_write(box, pos, &h, sizeof(h));
		}
		else
		{
			PgnwMailbox *mb = h.caller_procno >= 0 && h.caller_procno < MaxBackends ?
			pgnw_mailbox(h.caller_procno) : NULL;
			bool		gone = h.sent_at < my_start || h.deadline <= now || mb == NULL ||
				mb->request_id != h.request_id || mb->state != PGNW_MAILBOX_WAITING;

			pgnw_mark_handled(box, pos, &h);
			if (gone)
			{
				box->next += h.total_len;
				continue;
			}
		}
		if (n == max)
		{
			max *= 2;
			msgs = repalloc(msgs, sizeof(PgnwTakenMessage) * max);
		}
		msgs[n].header = h;
		msgs[n].position = pos;
		msgs[n].payload = palloc(h.payload_len + 1);
		pgnw_ring_read(box, pos + sizeof(h), msgs[n].payload, h.payload_len);
		msgs[n].payload[h.payload_len] = '\0';
		n++;
		box->next += h.total_len;
	}
	pgnw_inbox_advance(box);
	strlcpy(owner, box->owner, sizeof(owner));
	LWLockRelease(pgnw_msg->lock);

	if (attach)
	{
		pgnw_reader_slot = slot;
		before_shmem_exit(pgnw_reader_on_exit, Int32GetDatum(slot));
		pgnw_log_dropped(dropped, old_owner);
	}
	if (poisoned > 0)
		ereport(LOG,
				(errmsg("node worker \"%s\": %d notifications were dropped after being delivered %d times without being handled",
						owner, poisoned, PGNW_MAX_DELIVERIES),
				 errdetail("Each time, the worker process exited before its handler finished."),
				 errhint("See node_worker.workers.messages_lost and the errors logged before.")));
	*out = msgs;
	return n;
}

static int
pgnw_cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/*
 * Notifications at these positions (from pgnw_worker_take_messages) were
 * handled.  Positions that are not a message handed out to this process
 * (stale, or not a message boundary) are ignored.
 */
void
pgnw_worker_ack(int slot, uint64 *positions, int n)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	int			i = 0;

	if (n <= 0 || slot != pgnw_reader_slot)
		return;
	qsort(positions, n, sizeof(uint64), pgnw_cmp_u64);
	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (box->reader == MyProcPid)
	{
		for (uint64 pos = box->head; pos != box->next && i < n;)
		{
			PgnwMessage h;

			pgnw_ring_read(box, pos, &h, sizeof(h));
			while (i < n && positions[i] < pos)
				i++;
			if (i < n && positions[i] == pos)
			{
				pgnw_mark_handled(box, pos, &h);
				i++;
			}
			pos += h.total_len;
		}
		pgnw_inbox_advance(box);
	}
	LWLockRelease(pgnw_msg->lock);
}

/* For each call: does its caller still wait for the reply, and if not, why? */
void
pgnw_worker_call_states(const int *procnos, const uint64 *request_ids, int n, PgnwCallState *states)
{
	LWLockAcquire(pgnw_msg->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		PgnwMailbox *mb;

		states[i] = PGNW_CALL_CANCELLED;
		if (procnos[i] < 0 || procnos[i] >= MaxBackends)
			continue;
		mb = pgnw_mailbox(procnos[i]);
		if (mb->request_id != request_ids[i])
			continue;
		if (mb->state == PGNW_MAILBOX_WAITING)
			states[i] = PGNW_CALL_WAITING;
		else if (mb->state == PGNW_MAILBOX_ABANDONED)
			states[i] = mb->abandoned;
	}
	LWLockRelease(pgnw_msg->lock);
}

/*
 * Deliver a call's reply (JSON text, or an error message with its
 * SQLSTATE) to the caller's mailbox, unless the caller gave up.  Returns
 * false when the reply was dropped.
 */
bool
pgnw_worker_reply(int procno, uint64 request_id, bool is_error, const char *sqlstate,
				  const char *data, uint32 len)
{
	PgnwMailbox *mb;
	bool		delivered = false;

	if (procno < 0 || procno >= MaxBackends)
		return false;
	mb = pgnw_mailbox(procno);
	if (len > (uint32) pgnw_max_message_kb * 1024)
	{
		/* tell the caller instead of truncating */
		static const char too_big[] = "the worker's result is larger than node_worker.max_message_kb";

		is_error = true;
		sqlstate = "54000";
		data = too_big;
		len = sizeof(too_big) - 1;
	}
	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (mb->request_id == request_id && mb->state == PGNW_MAILBOX_WAITING)
	{
		mb->is_error = is_error;
		strlcpy(mb->sqlstate, sqlstate ? sqlstate : "P0001", sizeof(mb->sqlstate));
		memcpy(mb->data, data, len);
		mb->len = len;
		mb->state = PGNW_MAILBOX_DONE;
		delivered = true;
	}
	LWLockRelease(pgnw_msg->lock);
	if (delivered)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
	return delivered;
}

/* ------------------------------------------------------------ inbox view */

/*
 * One row per inbox in use: its slot, the messages in it not handled yet
 * (committed or still committing notifications; calls are handled when
 * taken), the bytes they take, and the committed notifications dropped
 * unhandled.  Joined with worker_status() by slot in node_worker.workers.
 */
Datum
node_worker_inboxes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (pgnw_msg == NULL)
		return (Datum) 0;
	for (int slot = 0; slot < pgnw_max_workers; slot++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		PgnwInbox  *box = pgnw_inbox(slot);
		uint64		generation = pgnw_slot_generation(slot);
		int			pending;
		uint32		used;
		uint64		lost;

		if (generation == 0)
			continue;
		LWLockAcquire(pgnw_msg->lock, LW_SHARED);
		if (box->generation == generation)
		{
			pending = pgnw_inbox_unhandled(box, true);
			used = pgnw_inbox_used(box);
			lost = box->lost;
		}
		else
		{
			pending = 0;
			used = 0;
			lost = 0;
		}
		LWLockRelease(pgnw_msg->lock);
		values[0] = Int32GetDatum(slot);
		values[1] = Int32GetDatum(pending);
		values[2] = Int64GetDatum((int64) used);
		values[3] = Int64GetDatum((int64) lost);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
