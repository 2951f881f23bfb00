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
 * Each backend owns a reply mailbox indexed by its pgprocno: a caller
 * stamps it with a request id, waits on its latch, and the worker writes
 * the reply there and sets the caller's latch.  A caller that gives up
 * (timeout, cancel) marks the mailbox abandoned, so a late reply is
 * dropped.  Nothing here polls: every wait is on a latch, with a timeout
 * only to notice a worker that died.
 *
 * notify(): messages are kept in the transaction and appended to the inbox
 * at pre-commit, stamped with the transaction's xid, under a transaction
 * lock that serialises committing notifiers, so inbox order is commit
 * order.  The worker delivers a message once its xid committed, waits
 * while it is in progress, and drops it if it aborted.  Messages of a
 * rolled back savepoint are discarded with it.
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
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "compat.h"
#include "pg_node_worker.h"

PG_FUNCTION_INFO_V1(node_worker_call);
PG_FUNCTION_INFO_V1(node_worker_notify);
PG_FUNCTION_INFO_V1(node_worker_wake);

/* an arbitrary key for the lock that serialises committing notifiers */
#define PGNW_NOTIFY_LOCK_KEY 0x706e7731

/* how long a committing notifier waits for room in a full inbox */
#define PGNW_COMMIT_QUEUE_WAIT_MS 10000

/* a caller re-checks that its worker is alive this often */
#define PGNW_CALLER_CHECK_MS 100

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
	bool		is_error;
	char		sqlstate[6];
	uint32		len;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* max_message_kb */
} PgnwMailbox;

typedef struct PgnwInbox
{
	uint64		head;			/* next byte to read (monotonic) */
	uint64		tail;			/* next byte to write (monotonic) */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* queue_size_kb */
} PgnwInbox;

typedef struct PgnwMsgShared
{
	LWLock	   *lock;
	uint64		next_request_id;
	TimestampTz started;
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
	int			nest_level;
	uint32		len;
	char	   *payload;
	struct PgnwPendingNotify *next;
} PgnwPendingNotify;

static PgnwPendingNotify *pgnw_pending = NULL;
static bool pgnw_callbacks_registered = false;

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
							NULL,
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
 * The running process of worker "name" that SQL talks to (its static slot
 * first, else the first running dynamic one), or ERROR.  Also checks that
 * the current user may talk to it.
 */
static int
pgnw_recipient(const char *name, pid_t *pid_out)
{
	int			slot;
	char		callers[PGNW_CALLERS_MAX];

	slot = pgnw_find_running(name, pid_out, callers);
	if (slot == -2)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node worker \"%s\" does not exist", name),
				 errhint("See SELECT name, state FROM node_worker.workers.")));
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node worker \"%s\" is not running", name),
				 errhint("Start it with SELECT node_worker.restart('%s').", name)));

	if (!superuser())
	{
		bool		allowed = false;
		Oid			admin = get_role_oid("node_worker_admin", true);
		char	   *rawlist = pstrdup(callers);
		List	   *roles = NIL;
		ListCell   *lc;

		if (OidIsValid(admin) && is_member_of_role(GetUserId(), admin))
			allowed = true;
		if (!allowed && SplitIdentifierString(rawlist, ',', &roles))
		{
			foreach(lc, roles)
			{
				Oid			role = get_role_oid((char *) lfirst(lc), true);

				if (OidIsValid(role) && is_member_of_role(GetUserId(), role))
				{
					allowed = true;
					break;
				}
			}
		}
		if (!allowed)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to talk to node worker \"%s\"", name),
					 errhint("Superusers, members of node_worker_admin and members of the roles in the worker's callers list may.")));
	}
	return slot;
}

static void
pgnw_fill_header(PgnwMessage *h, PgnwMessageKind kind, uint32 len)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->caller_pid = MyProcPid;
	h->caller_procno = MyProc->pgprocno;
	h->sent_at = GetCurrentTimestamp();
	h->payload_len = len;
	strlcpy(h->role, GetUserNameFromId(GetUserId(), false), NAMEDATALEN);
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

/* ------------------------------------------------------------------ call */

static void
pgnw_abandon_mailbox(int procno, uint64 request_id)
{
	PgnwMailbox *mb = pgnw_mailbox(procno);

	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	if (mb->request_id == request_id)
		mb->state = PGNW_MAILBOX_ABANDONED;
	LWLockRelease(pgnw_msg->lock);
}

Datum
node_worker_call(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *payload;
	uint32		len;
	int			timeout_ms;
	int			slot;
	pid_t		pid;
	PgnwMessage h;
	PgnwMailbox *mb;
	int			procno = MyProc->pgprocno;
	uint64		request_id;
	TimestampTz deadline;
	bool		done = false;
	bool		is_error = false;
	char		sqlstate[6];
	char	   *reply = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	payload = PG_ARGISNULL(1) ? pstrdup("null") :
		JsonbToCString(NULL, &PG_GETARG_JSONB_P(1)->root, VARSIZE(PG_GETARG_JSONB_P(1)));
	timeout_ms = PG_ARGISNULL(2) ? 5000 : PG_GETARG_INT32(2);
	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive")));
	len = strlen(payload);
	pgnw_check_payload_size("call payload", len);
	slot = pgnw_recipient(name, &pid);

	pgnw_fill_header(&h, PGNW_MSG_CALL, len);
	mb = pgnw_mailbox(procno);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	/* stamp the mailbox and queue the request (waiting for room if full) */
	for (;;)
	{
		bool		queued;

		LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
		request_id = pgnw_msg->next_request_id++;
		h.request_id = request_id;
		mb->request_id = request_id;
		mb->state = PGNW_MAILBOX_WAITING;
		mb->len = 0;
		queued = pgnw_inbox_put(slot, &h, payload);
		if (!queued)
			mb->state = PGNW_MAILBOX_IDLE;
		LWLockRelease(pgnw_msg->lock);
		if (queued)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("call to node worker \"%s\" timed out after %d ms: its inbox stayed full",
							name, timeout_ms)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pgnw_set_worker_latch(slot);

	/* wait for the reply; cancel, timeout and a dying worker abandon it */
	PG_TRY();
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
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("call to node worker \"%s\" timed out after %d ms", name, timeout_ms),
						 errhint("Pass a larger timeout_ms, or make the handler answer sooner.")));
			if (pgnw_slot_process(slot, &procno_w) != pid)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("node worker \"%s\" exited before it replied", name)));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, PGNW_CALLER_CHECK_MS), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		pgnw_abandon_mailbox(procno, request_id);
		PG_RE_THROW();
	}
	PG_END_TRY();

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

static void
pgnw_notify_xact_callback(XactEvent event, void *arg)
{
	if (pgnw_pending == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			{
				LOCKTAG		tag;
				TransactionId xid = GetTopTransactionId();
				TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																   PGNW_COMMIT_QUEUE_WAIT_MS);

				/*
				 * Held until the transaction ends: committing notifiers append
				 * one after the other, so inbox order is commit order.
				 */
				SET_LOCKTAG_ADVISORY(tag, InvalidOid, PGNW_NOTIFY_LOCK_KEY, 0, 3);
				(void) LockAcquire(&tag, ExclusiveLock, false, false);

				for (PgnwPendingNotify *n = pgnw_pending; n != NULL;)
				{
					PgnwMessage h;
					bool		queued;

					pgnw_fill_header(&h, PGNW_MSG_NOTIFY, n->len);
					h.xid = xid;
					LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
					queued = pgnw_inbox_put(n->slot, &h, n->payload);
					LWLockRelease(pgnw_msg->lock);
					if (queued)
					{
						n = n->next;
						continue;
					}
					if (GetCurrentTimestamp() >= deadline)
						ereport(ERROR,
								(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
								 errmsg("the inbox of a node worker stayed full for %d ms; the transaction was not committed",
										PGNW_COMMIT_QUEUE_WAIT_MS),
								 errhint("The worker is not keeping up with notify(); raise node_worker.queue_size_kb or slow down.")));
					(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									 10, PG_WAIT_EXTENSION);
					ResetLatch(MyLatch);
					CHECK_FOR_INTERRUPTS();
				}
				break;
			}
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
		default:
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
	char	   *name;
	char	   *payload;
	uint32		len;
	int			slot;
	pid_t		pid;
	PgnwPendingNotify *n;
	PgnwPendingNotify **tail;
	uint32		pending_bytes = 0;
	uint32		used;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("worker name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	payload = PG_ARGISNULL(1) ? pstrdup("null") :
		JsonbToCString(NULL, &PG_GETARG_JSONB_P(1)->root, VARSIZE(PG_GETARG_JSONB_P(1)));
	len = strlen(payload);
	pgnw_check_payload_size("notify payload", len);
	slot = pgnw_recipient(name, &pid);

	/* refuse up front what cannot fit in the inbox now */
	for (n = pgnw_pending; n != NULL; n = n->next)
		if (n->slot == slot)
			pending_bytes += MAXALIGN(sizeof(PgnwMessage) + n->len);
	LWLockAcquire(pgnw_msg->lock, LW_SHARED);
	used = pgnw_inbox_used(pgnw_inbox(slot));
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
	n->slot = slot;
	n->nest_level = GetCurrentTransactionNestLevel();
	n->len = len;
	n->payload = MemoryContextStrdup(TopTransactionContext, payload);
	for (tail = &pgnw_pending; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = n;
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------ wake */

Datum
node_worker_wake(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pid_t		pid;
	int			slot = pgnw_recipient(name, &pid);

	pgnw_slot_set_wake(slot);
	pgnw_set_worker_latch(slot);
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
	return box->tail != box->head || pgnw_slot_peek_wake(slot);
}

/*
 * Take the deliverable messages of the worker in "slot", in order, into a
 * palloc'd array.  Stops at a notify whose transaction is still in
 * progress (its commit will wake us); drops notifies of aborted
 * transactions and calls sent to an earlier process of this worker.
 */
int
pgnw_worker_take_messages(int slot, TimestampTz my_start, PgnwTakenMessage **out, bool *woken)
{
	PgnwInbox  *box = pgnw_inbox(slot);
	int			n = 0;
	int			max = 16;
	PgnwTakenMessage *msgs = palloc(sizeof(PgnwTakenMessage) * max);

	*woken = pgnw_slot_take_wake(slot);
	LWLockAcquire(pgnw_msg->lock, LW_EXCLUSIVE);
	while (box->head != box->tail)
	{
		PgnwMessage h;

		pgnw_ring_read(box, box->head, &h, sizeof(h));
		if (h.kind == PGNW_MSG_NOTIFY)
		{
			if (TransactionIdIsInProgress(h.xid))
				break;
			if (!TransactionIdDidCommit(h.xid))
			{
				box->head += h.total_len;
				continue;
			}
		}
		else if (h.sent_at < my_start)
		{
			box->head += h.total_len;
			continue;
		}
		if (n == max)
		{
			max *= 2;
			msgs = repalloc(msgs, sizeof(PgnwTakenMessage) * max);
		}
		msgs[n].header = h;
		msgs[n].payload = palloc(h.payload_len + 1);
		pgnw_ring_read(box, box->head + sizeof(h), msgs[n].payload, h.payload_len);
		msgs[n].payload[h.payload_len] = '\0';
		n++;
		box->head += h.total_len;
	}
	LWLockRelease(pgnw_msg->lock);
	*out = msgs;
	return n;
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
