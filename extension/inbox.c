/*-------------------------------------------------------------------------
 *
 * inbox.c
 *		The shared memory that SQL and workers talk through: an inbox per
 *		worker slot (a byte ring of messages) and a reply mailbox per
 *		backend, the worker's side of both (taking messages, acknowledging
 *		notifications, replying to calls), and the SQL function behind the
 *		inbox columns of node_worker.workers.
 *
 * Each worker slot owns a byte ring (its inbox, size
 * node_worker.queue_size_kb).  Senders (messaging.c) append messages under
 * the messaging lock and set the worker's latch; the worker takes them in
 * its event loop.  Each backend owns a reply mailbox indexed by its PGPROC
 * number: a caller stamps it with a request id, waits on its latch, and the
 * worker writes the reply there and sets the caller's latch.  A caller
 * that gives up marks the mailbox abandoned, so a late reply is dropped,
 * and counts it in the inbox, so the worker's handler sees meta.signal
 * fire.
 *
 * Delivery: a notification stays in the inbox until the worker's JS says it
 * was handled, so JS never holds more than the inbox and a full inbox makes
 * notify() fail up front.  A worker process that exits leaves what it did
 * not finish to the next process of the same worker; a message handed out
 * PGNW_MAX_DELIVERIES times without being finished is dropped and counted.
 * An inbox belongs to one identity of its slot (PgnwSlot.generation):
 * messages left for an identity that is gone are counted and logged when
 * the slot's next identity claims the inbox.  A crash (which resets shared
 * memory) or a server stop loses what is in the inboxes.
 *
 * Limits: a message is at most node_worker.max_message_kb of JSON and must
 * fit in an inbox with its header; inboxes and mailboxes are sized at
 * server start.
 *
 * extension/inbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "supervisor.h"

PG_FUNCTION_INFO_V1(node_worker_inboxes);

/* a notification handed to this many worker processes that exited before finishing it is dropped */
#define PGNW_MAX_DELIVERIES 3

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
	char		owner[PGNW_WORKER_NAME_MAX + 1];	/* worker name of that identity */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* queue_size_kb */
} PgnwInbox;

typedef struct PgnwInboxShared
{
	LWLock	   *lock;
	uint64		next_request_id;
} PgnwInboxShared;

/* What the worker does with the message at its inbox's next position */
typedef enum PgnwTakeAction
{
	PGNW_TAKE_HAND_OUT,			/* give it to JS */
	PGNW_TAKE_SKIP,				/* handled already, or nothing to do */
	PGNW_TAKE_STOP				/* a notification still committing: stop here */
} PgnwTakeAction;

/* settings: node_worker.* (defined in pg_node_worker.c) */
int			pgnw_queue_size_kb = 256;
int			pgnw_max_message_kb = 64;

static PgnwInboxShared *pgnw_inbox_shared = NULL;
static char *pgnw_inbox_boxes = NULL;
static char *pgnw_inbox_mailboxes = NULL;

/* worker side: the slot this process reads, and the last abandon count it saw */
static int	pgnw_inbox_reader_slot = -1;
static uint32 pgnw_inbox_seen_abandons = 0;


/* ------------------------------------------------------- shared memory */

/* Bytes of one inbox, with its header. */
static Size
pgnw_inbox_box_size(void)
{
	return MAXALIGN(offsetof(PgnwInbox, data) + (Size) pgnw_queue_size_kb * 1024);
}

/* Bytes of one mailbox, with its header. */
static Size
pgnw_inbox_mailbox_size(void)
{
	return MAXALIGN(offsetof(PgnwMailbox, data) + (Size) pgnw_max_message_kb * 1024);
}

/* The inbox of a slot. */
static PgnwInbox *
pgnw_inbox_of(int slot)
{
	return (PgnwInbox *) (pgnw_inbox_boxes + pgnw_inbox_box_size() * slot);
}

/* The reply mailbox of a backend. */
static PgnwMailbox *
pgnw_inbox_mailbox(int procno)
{
	return (PgnwMailbox *) (pgnw_inbox_mailboxes + pgnw_inbox_mailbox_size() * procno);
}

/* Bytes of messages an inbox holds. */
uint32
pgnw_inbox_capacity(void)
{
	return (uint32) pgnw_queue_size_kb * 1024;
}

/* Largest payload a message may carry. */
uint32
pgnw_inbox_payload_limit(void)
{
	uint32		limit = (uint32) pgnw_max_message_kb * 1024;

	return Min(limit, pgnw_inbox_capacity() - (uint32) MAXALIGN(sizeof(PgnwMessage)));
}

/* Shared memory of messaging: one inbox per slot, one mailbox per backend. */
Size
pgnw_inbox_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgnwInboxShared));

	size = add_size(size, mul_size(pgnw_inbox_box_size(), pgnw_max_workers));
	size = add_size(size, mul_size(pgnw_inbox_mailbox_size(), MaxBackends));
	return size;
}

/* Set up the inboxes and mailboxes; caller holds AddinShmemInitLock. */
void
pgnw_inbox_shmem_init(LWLock *lock)
{
	bool		found;
	char	   *base;

	base = ShmemInitStruct("pg_node_worker messaging", pgnw_inbox_shmem_size(), &found);
	pgnw_inbox_shared = (PgnwInboxShared *) base;
	pgnw_inbox_boxes = base + MAXALIGN(sizeof(PgnwInboxShared));
	pgnw_inbox_mailboxes = pgnw_inbox_boxes + pgnw_inbox_box_size() * pgnw_max_workers;
	if (!found)
	{
		memset(base, 0, pgnw_inbox_shmem_size());
		pgnw_inbox_shared->lock = lock;
		pgnw_inbox_shared->next_request_id = 1;
	}
}


/* ------------------------------------------------------------ the ring */

/* Bytes in use in an inbox. */
static uint32
pgnw_inbox_bytes_used(PgnwInbox *box)
{
	return (uint32) (box->tail - box->head);
}

/* Copy len bytes into the ring at byte position pos, wrapping around. */
static void
pgnw_inbox_ring_write(PgnwInbox *box, uint64 pos, const void *src, uint32 len)
{
	uint32		cap = pgnw_inbox_capacity();
	uint32		off = (uint32) (pos % cap);
	uint32		first = Min(len, cap - off);

	memcpy(box->data + off, src, first);
	if (first < len)
		memcpy(box->data, (const char *) src + first, len - first);
}

/* Copy len bytes out of the ring at byte position pos, wrapping around. */
static void
pgnw_inbox_ring_read(PgnwInbox *box, uint64 pos, void *dst, uint32 len)
{
	uint32		cap = pgnw_inbox_capacity();
	uint32		off = (uint32) (pos % cap);
	uint32		first = Min(len, cap - off);

	memcpy(dst, box->data + off, first);
	if (first < len)
		memcpy((char *) dst + first, box->data, len - first);
}

/* Mark the message at pos handled; caller holds the lock exclusively. */
static void
pgnw_inbox_mark_handled(PgnwInbox *box, uint64 pos, PgnwMessage *h)
{
	h->flags |= PGNW_MSG_HANDLED;
	pgnw_inbox_ring_write(box, pos, h, sizeof(*h));
}

/* Give back the space of the handled messages at the front. */
static void
pgnw_inbox_advance(PgnwInbox *box)
{
	while (box->head != box->next)
	{
		PgnwMessage h;

		pgnw_inbox_ring_read(box, box->head, &h, sizeof(h));
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

		pgnw_inbox_ring_read(box, pos, &h, sizeof(h));
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
 * committed notifications among them are returned (the caller logs them
 * with pgnw_inbox_log_dropped(), after releasing the lock) with the name
 * they were for.
 */
static int
pgnw_inbox_claim(int slot, uint64 generation, char *old_owner)
{
	PgnwInbox  *box = pgnw_inbox_of(slot);
	int			dropped = 0;

	if (box->generation == generation)
		return 0;
	dropped = pgnw_inbox_unhandled(box, true);
	strlcpy(old_owner, box->owner, PGNW_WORKER_NAME_MAX + 1);
	box->head = box->next = box->tail;
	box->generation = generation;
	box->lost = 0;
	box->reader = 0;
	pgnw_slot_name(slot, box->owner);
	return dropped;
}

/* LOG the notifications pgnw_inbox_claim() dropped, if any. */
static void
pgnw_inbox_log_dropped(int dropped, const char *owner)
{
	if (dropped > 0)
		ereport(LOG,
				(errmsg("%d committed notifications for node worker \"%s\" were dropped unhandled: its slot was given to another worker",
						dropped, owner),
				 errhint("A stopped dynamic worker keeps its messages only until its slot is reused; restart() it to have them handled.")));
}

/*
 * Append a message; caller holds the lock exclusively.  Returns false when
 * the inbox has no room.
 */
static bool
pgnw_inbox_put(int slot, const PgnwMessage *header, const char *payload)
{
	PgnwInbox  *box = pgnw_inbox_of(slot);
	uint32		total = MAXALIGN(sizeof(PgnwMessage) + header->payload_len);
	PgnwMessage h = *header;

	if (pgnw_inbox_bytes_used(box) + total > pgnw_inbox_capacity())
		return false;
	h.total_len = total;
	pgnw_inbox_ring_write(box, box->tail, &h, sizeof(h));
	pgnw_inbox_ring_write(box, box->tail + sizeof(h), payload, header->payload_len);
	box->tail += total;
	return true;
}


/* ------------------------------------------------------ the senders' side */

/* Bytes in use in the inbox of slot, when it belongs to identity generation. */
uint32
pgnw_inbox_used(int slot, uint64 generation)
{
	PgnwInbox  *box = pgnw_inbox_of(slot);
	uint32		used;

	LWLockAcquire(pgnw_inbox_shared->lock, LW_SHARED);
	used = box->generation == generation ? pgnw_inbox_bytes_used(box) : 0;
	LWLockRelease(pgnw_inbox_shared->lock);
	return used;
}

/*
 * Stamp the caller's mailbox with a new request id and queue the call, at
 * once under the lock, so the reply can never come before the stamp.
 */
bool
pgnw_inbox_queue_call(int slot, uint64 generation, PgnwMessage *h, const char *payload)
{
	PgnwMailbox *mb = pgnw_inbox_mailbox(h->caller_procno);
	char		old_owner[PGNW_WORKER_NAME_MAX + 1];
	int			dropped;
	bool		queued;

	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	dropped = pgnw_inbox_claim(slot, generation, old_owner);
	h->request_id = pgnw_inbox_shared->next_request_id++;
	mb->request_id = h->request_id;
	mb->state = PGNW_MAILBOX_WAITING;
	mb->len = 0;
	queued = pgnw_inbox_put(slot, h, payload);
	if (!queued)
		mb->state = PGNW_MAILBOX_IDLE;
	LWLockRelease(pgnw_inbox_shared->lock);
	pgnw_inbox_log_dropped(dropped, old_owner);
	return queued;
}

/*
 * Queue a committing notification, unless its target slot was given to
 * another identity since notify() (then the message is for a worker that
 * is gone) or the inbox is full.
 */
PgnwQueueResult
pgnw_inbox_queue_notify(int slot, uint64 generation, const PgnwMessage *h, const char *payload)
{
	char		old_owner[PGNW_WORKER_NAME_MAX + 1];
	int			dropped = 0;
	PgnwQueueResult result = PGNW_QUEUE_REPLACED;

	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (pgnw_slot_generation(slot) == generation)
	{
		dropped = pgnw_inbox_claim(slot, generation, old_owner);
		result = pgnw_inbox_put(slot, h, payload) ? PGNW_QUEUE_DONE : PGNW_QUEUE_FULL;
	}
	LWLockRelease(pgnw_inbox_shared->lock);
	pgnw_inbox_log_dropped(dropped, old_owner);
	return result;
}

/* The reply to request_id, if it is in the caller's mailbox. */
bool
pgnw_inbox_take_reply(int procno, uint64 request_id, bool *is_error, char *sqlstate,
					  char **reply)
{
	PgnwMailbox *mb = pgnw_inbox_mailbox(procno);
	bool		done = false;

	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (mb->request_id == request_id && mb->state == PGNW_MAILBOX_DONE)
	{
		done = true;
		*is_error = mb->is_error;
		memcpy(sqlstate, mb->sqlstate, sizeof(mb->sqlstate));
		*reply = palloc(mb->len + 1);
		memcpy(*reply, mb->data, mb->len);
		(*reply)[mb->len] = '\0';
		mb->state = PGNW_MAILBOX_IDLE;
	}
	LWLockRelease(pgnw_inbox_shared->lock);
	return done;
}

/*
 * The caller gave up on request_id: a late reply is dropped, and the worker
 * is told (its abandon count grows, its latch is set), so that the
 * handler's meta.signal fires.
 */
void
pgnw_inbox_abandon_call(int procno, uint64 request_id, int slot, PgnwCallState why)
{
	PgnwMailbox *mb = pgnw_inbox_mailbox(procno);

	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (mb->request_id == request_id && mb->state == PGNW_MAILBOX_WAITING)
	{
		mb->state = PGNW_MAILBOX_ABANDONED;
		mb->abandoned = why;
		pgnw_inbox_of(slot)->abandons++;
	}
	LWLockRelease(pgnw_inbox_shared->lock);
	pgnw_slot_set_latch(slot);
}


/* ------------------------------------------------------- the worker side */

/* Is anything waiting for this worker (the event loop asks after each wake-up)? */
bool
pgnw_worker_has_messages(int slot)
{
	PgnwInbox  *box;

	if (pgnw_inbox_shared == NULL || slot < 0)
		return false;
	box = pgnw_inbox_of(slot);
	/* unlocked peek: a sender sets our latch after appending */
	return box->tail != box->next || pgnw_inbox_reader_slot != slot ||
		box->abandons != pgnw_inbox_seen_abandons || pgnw_slot_peek_wake(slot);
}

/* The worker process exits: say what it leaves in its inbox. */
static void
pgnw_inbox_reader_on_exit(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);
	PgnwInbox  *box = pgnw_inbox_of(slot);
	int			left = 0;
	char		name[PGNW_WORKER_NAME_MAX + 1];

	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (box->reader == MyProcPid)
	{
		box->reader = 0;
		left = pgnw_inbox_unhandled(box, false);
		strlcpy(name, box->owner, sizeof(name));
	}
	LWLockRelease(pgnw_inbox_shared->lock);
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
	PgnwInbox  *box = pgnw_inbox_of(slot);
	int			dropped = pgnw_inbox_claim(slot, pgnw_slot_generation(slot), old_owner);

	box->reader = MyProcPid;
	box->next = box->head;
	return dropped;
}

/*
 * What to do with the message h at position pos, which the worker has not
 * been handed yet; caller holds the lock exclusively.  Notifications wait
 * for their transaction, are dropped when it aborted, and are dropped and
 * counted (*poisoned) after PGNW_MAX_DELIVERIES hand-outs.  Calls are
 * handled at once (answered through the mailbox, never twice), and skipped
 * when sent to an earlier process of this worker or their caller is gone.
 */
static PgnwTakeAction
pgnw_inbox_triage(PgnwInbox *box, uint64 pos, PgnwMessage *h, int64 my_start,
				  int64 now, int *poisoned)
{
	PgnwMailbox *mb;
	bool		gone;

	if (h->flags & PGNW_MSG_HANDLED)
		return PGNW_TAKE_SKIP;
	if (h->kind == PGNW_MSG_NOTIFY)
	{
		if (TransactionIdIsInProgress(h->xid))
			return PGNW_TAKE_STOP;
		if (!TransactionIdDidCommit(h->xid))
		{
			pgnw_inbox_mark_handled(box, pos, h);
			return PGNW_TAKE_SKIP;
		}
		if (h->deliveries >= PGNW_MAX_DELIVERIES)
		{
			pgnw_inbox_mark_handled(box, pos, h);
			box->lost++;
			(*poisoned)++;
			return PGNW_TAKE_SKIP;
		}
		h->deliveries++;
		pgnw_inbox_ring_write(box, pos, h, sizeof(*h));
		return PGNW_TAKE_HAND_OUT;
	}
	mb = h->caller_procno >= 0 && h->caller_procno < MaxBackends ?
		pgnw_inbox_mailbox(h->caller_procno) : NULL;
	gone = h->sent_at < my_start || h->deadline <= now || mb == NULL ||
		mb->request_id != h->request_id || mb->state != PGNW_MAILBOX_WAITING;
	pgnw_inbox_mark_handled(box, pos, h);
	return gone ? PGNW_TAKE_SKIP : PGNW_TAKE_HAND_OUT;
}

/*
 * Take the messages ready for the worker in "slot", in order, into a
 * palloc'd array, up to the first notification whose transaction is still
 * in progress (its commit will wake us).  See pgnw_inbox_triage() for what
 * is handed out.
 */
int
pgnw_worker_take_messages(int slot, int64 my_start, PgnwTakenMessage **out,
						  bool *woken, bool *abandoned)
{
	PgnwInbox  *box = pgnw_inbox_of(slot);
	int			n = 0;
	int			max = 16;
	int			poisoned = 0;
	int			dropped = 0;
	bool		attach = pgnw_inbox_reader_slot != slot;
	char		old_owner[PGNW_WORKER_NAME_MAX + 1];
	char		owner[PGNW_WORKER_NAME_MAX + 1];
	int64		now = pgnw_clock_us();
	PgnwTakenMessage *msgs = palloc(sizeof(PgnwTakenMessage) * max);

	*woken = pgnw_slot_take_wake(slot);
	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (attach)
		dropped = pgnw_inbox_attach(slot, old_owner);
	*abandoned = box->abandons != pgnw_inbox_seen_abandons;
	pgnw_inbox_seen_abandons = box->abandons;
	while (box->next != box->tail)
	{
		uint64		pos = box->next;
		PgnwMessage h;
		PgnwTakeAction action;

		pgnw_inbox_ring_read(box, pos, &h, sizeof(h));
		action = pgnw_inbox_triage(box, pos, &h, my_start, now, &poisoned);
		if (action == PGNW_TAKE_STOP)
			break;
		if (action == PGNW_TAKE_HAND_OUT)
		{
			if (n == max)
			{
				max *= 2;
				msgs = repalloc(msgs, sizeof(PgnwTakenMessage) * max);
			}
			msgs[n].header = h;
			msgs[n].position = pos;
			msgs[n].payload = palloc(h.payload_len + 1);
			pgnw_inbox_ring_read(box, pos + sizeof(h), msgs[n].payload, h.payload_len);
			msgs[n].payload[h.payload_len] = '\0';
			n++;
		}
		box->next += h.total_len;
	}
	pgnw_inbox_advance(box);
	strlcpy(owner, box->owner, sizeof(owner));
	LWLockRelease(pgnw_inbox_shared->lock);

	if (attach)
	{
		pgnw_inbox_reader_slot = slot;
		before_shmem_exit(pgnw_inbox_reader_on_exit, Int32GetDatum(slot));
		pgnw_inbox_log_dropped(dropped, old_owner);
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

/* qsort() comparator of uint64 */
static int
pgnw_inbox_cmp_u64(const void *a, const void *b)
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
	PgnwInbox  *box = pgnw_inbox_of(slot);
	int			i = 0;

	if (n <= 0 || slot != pgnw_inbox_reader_slot)
		return;
	qsort(positions, n, sizeof(uint64), pgnw_inbox_cmp_u64);
	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (box->reader == MyProcPid)
	{
		for (uint64 pos = box->head; pos != box->next && i < n;)
		{
			PgnwMessage h;

			pgnw_inbox_ring_read(box, pos, &h, sizeof(h));
			while (i < n && positions[i] < pos)
				i++;
			if (i < n && positions[i] == pos)
			{
				pgnw_inbox_mark_handled(box, pos, &h);
				i++;
			}
			pos += h.total_len;
		}
		pgnw_inbox_advance(box);
	}
	LWLockRelease(pgnw_inbox_shared->lock);
}

/* For each call: does its caller still wait for the reply, and if not, why? */
void
pgnw_worker_call_states(const int *procnos, const uint64 *request_ids, int n, PgnwCallState *states)
{
	LWLockAcquire(pgnw_inbox_shared->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		PgnwMailbox *mb;

		states[i] = PGNW_CALL_CANCELLED;
		if (procnos[i] < 0 || procnos[i] >= MaxBackends)
			continue;
		mb = pgnw_inbox_mailbox(procnos[i]);
		if (mb->request_id != request_ids[i])
			continue;
		if (mb->state == PGNW_MAILBOX_WAITING)
			states[i] = PGNW_CALL_WAITING;
		else if (mb->state == PGNW_MAILBOX_ABANDONED)
			states[i] = mb->abandoned;
	}
	LWLockRelease(pgnw_inbox_shared->lock);
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
	mb = pgnw_inbox_mailbox(procno);
	if (len > (uint32) pgnw_max_message_kb * 1024)
	{
		/* tell the caller instead of truncating */
		static const char too_big[] = "the worker's result is larger than node_worker.max_message_kb";

		is_error = true;
		sqlstate = "54000";
		data = too_big;
		len = sizeof(too_big) - 1;
	}
	LWLockAcquire(pgnw_inbox_shared->lock, LW_EXCLUSIVE);
	if (mb->request_id == request_id && mb->state == PGNW_MAILBOX_WAITING)
	{
		mb->is_error = is_error;
		strlcpy(mb->sqlstate, sqlstate ? sqlstate : "P0001", sizeof(mb->sqlstate));
		memcpy(mb->data, data, len);
		mb->len = len;
		mb->state = PGNW_MAILBOX_DONE;
		delivered = true;
	}
	LWLockRelease(pgnw_inbox_shared->lock);
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
	if (pgnw_inbox_shared == NULL)
		return (Datum) 0;
	for (int slot = 0; slot < pgnw_max_workers; slot++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		PgnwInbox  *box = pgnw_inbox_of(slot);
		uint64		generation = pgnw_slot_generation(slot);
		int			pending = 0;
		uint32		used = 0;
		uint64		lost = 0;

		if (generation == 0)
			continue;
		LWLockAcquire(pgnw_inbox_shared->lock, LW_SHARED);
		if (box->generation == generation)
		{
			pending = pgnw_inbox_unhandled(box, true);
			used = pgnw_inbox_bytes_used(box);
			lost = box->lost;
		}
		LWLockRelease(pgnw_inbox_shared->lock);
		values[0] = Int32GetDatum(slot);
		values[1] = Int32GetDatum(pending);
		values[2] = Int64GetDatum((int64) used);
		values[3] = Int64GetDatum((int64) lost);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
