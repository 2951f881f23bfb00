/*-------------------------------------------------------------------------
 *
 * buffers_ops.c
 *		PostgreSQL side of ctx.buffers (the buffer cache) and ctx.shared
 *		(named shared regions), each through pgnw_guard().
 *
 * Buffer headers are read the way contrib/pg_buffercache reads them: one
 * buffer at a time under its header lock, never all at once.  Blocks are
 * read into shared_buffers the way pg_prewarm's 'buffer' mode does
 * (ReadBufferExtended + ReleaseBuffer, interrupts serviced between blocks),
 * and a page is copied the way pageinspect's get_raw_page does (under a
 * share content lock).  Each entry point checks the privileges the matching
 * PostgreSQL function requires.
 *
 * Transactions: catalog access (privileges, relation names) needs one.
 * Outside ctx.transaction an operation runs in a transaction of its own.
 * Inside one it runs in an internal subtransaction, like a PL/pgSQL block
 * with an exception handler: an error rolls back only what the operation
 * did (its locks, pins, memory), and the worker's transaction goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "../extension/compat.h"
#include "../extension/pg_node_worker.h"
#include "../extension/runtime.h"
#include "buffers.h"

/* ------------------------------------------------- transaction wrapper */

typedef struct PgnwBufCall
{
	PgnwOperation op;
	void	   *arg;
	bool		snapshot;		/* push an active snapshot (catalog reads) */
	bool		own_xact;		/* started a transaction */
	bool		subxact;		/* started a subtransaction */
	MemoryContext oldcxt;
	ResourceOwner oldowner;
} PgnwBufCall;

/*
 * Run c->op inside a transaction of its own, or a subtransaction of the
 * worker's, with a memory context that goes at its end (arg: PgnwBufCall).
 */
static void
buffers_op_call(void *arg)
{
	PgnwBufCall *c = (PgnwBufCall *) arg;
	MemoryContext tmp;

	c->oldcxt = CurrentMemoryContext;
	c->oldowner = CurrentResourceOwner;
	if (!IsTransactionState())
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		c->own_xact = true;
	}
	else
	{
		BeginInternalSubTransaction(NULL);
		c->subxact = true;
	}
	tmp = AllocSetContextCreate(CurTransactionContext, "pg_node_worker buffers",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(tmp);
	if (c->snapshot)
		PushActiveSnapshot(GetTransactionSnapshot());

	c->op(c->arg);

	if (c->snapshot)
		PopActiveSnapshot();
	MemoryContextSwitchTo(c->oldcxt);
	MemoryContextDelete(tmp);
	if (c->own_xact)
	{
		c->own_xact = false;
		CommitTransactionCommand();
	}
	else
	{
		c->subxact = false;
		ReleaseCurrentSubTransaction();
		CurrentResourceOwner = c->oldowner;
	}
	MemoryContextSwitchTo(c->oldcxt);
}

/* after an error in buffers_op_call: roll back what it started */
static void
buffers_op_call_abort(void *arg)
{
	PgnwBufCall *c = (PgnwBufCall *) arg;

	if (c->own_xact)
		AbortCurrentTransaction();
	else if (c->subxact)
	{
		RollbackAndReleaseCurrentSubTransaction();
		CurrentResourceOwner = c->oldowner;
	}
	c->own_xact = c->subxact = false;
	MemoryContextSwitchTo(c->oldcxt);
}

/* Run op(arg) with buffers_op_call; on an error, roll back what it started. */
static bool
buffers_call(PgnwOperation op, void *arg, bool snapshot, PgnwError *err)
{
	PgnwBufCall c = {op, arg, snapshot, false, false, NULL, NULL};
	PgnwError	abort_err = {0};

	if (!pgnw_worker_info.connected)
	{
		pgnw_error_set(err, "08003", "this worker has no database connection",
					   "Workers with start: 'postmaster' have no database; use start: 'consistent' or 'recovery-finished'.");
		return false;
	}
	if (pgnw_guard(buffers_op_call, &c, err))
		return true;
	if ((c.own_xact || c.subxact) && !pgnw_guard(buffers_op_call_abort, &c, &abort_err))
		ereport(FATAL,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not roll back after an error: %s",
						abort_err.message ? abort_err.message : "unknown error")));
	pgnw_error_clear(&abort_err);
	return false;
}

/* ----------------------------------------------------------- privileges */

/* pg_buffercache's rule (PostgreSQL 15): the privileges of pg_monitor */
static void
buffers_require_monitor(void)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read shared_buffers"),
				 errdetail("Only roles with privileges of the \"pg_monitor\" role may read the buffer cache, as with pg_buffercache."),
				 errhint("GRANT pg_monitor TO the worker's role.")));
}

/* ------------------------------------------------------------ relations */

/* the fork named fork (NULL: main); forkname_to_number rejects other names */
static ForkNumber
buffers_fork(const char *fork)
{
	return fork == NULL ? MAIN_FORKNUM : forkname_to_number(fork);
}

/*
 * Open the relation (AccessShareLock, held until the (sub)transaction
 * ends) and check that it has storage this backend may read.
 */
static Relation
buffers_open_relation(const PgnwRelationRef *ref)
{
	Relation	rel;

	if (ref->name != NULL)
	{
		RangeVar   *rv = makeRangeVarFromNameList(pgnw_qualified_name_list(ref->name));
		Oid			relid = RangeVarGetRelid(rv, AccessShareLock, false);

		rel = relation_open(relid, NoLock);
	}
	else
	{
		rel = try_relation_open((Oid) ref->oid, AccessShareLock);
		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", ref->oid)));
	}
	if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" has no storage", RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary tables of other sessions")));
	return rel;
}

/* blocks in the fork; 0 when the fork does not exist (vm before a vacuum) */
static BlockNumber
buffers_fork_blocks(Relation rel, ForkNumber fork)
{
	if (!smgrexists(RelationGetSmgr(rel), fork))
		return 0;
	return RelationGetNumberOfBlocksInFork(rel, fork);
}

/* ------------------------------------------------------------- snapshot */

/* malloc, or the ERROR palloc would raise (the bridge frees with free()) */
static void *
buffers_malloc_or_error(size_t size)
{
	void	   *p = malloc(size > 0 ? size : 1);

	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", size)));
	return p;
}

/* Every valid buffer's header into the snapshot (arg), one header lock at a time. */
static void
buffers_op_snapshot(void *arg)
{
	PgnwBufferSnapshot *s = (PgnwBufferSnapshot *) arg;
	uint32_t	n = 0;

	buffers_require_monitor();

	s->total = (uint32_t) NBuffers;
	s->database = buffers_malloc_or_error(sizeof(uint32_t) * NBuffers);
	s->tablespace = buffers_malloc_or_error(sizeof(uint32_t) * NBuffers);
	s->relfilenode = buffers_malloc_or_error(sizeof(uint32_t) * NBuffers);
	s->block = buffers_malloc_or_error(sizeof(uint32_t) * NBuffers);
	s->fork = buffers_malloc_or_error(NBuffers);
	s->dirty = buffers_malloc_or_error(NBuffers);
	s->usage = buffers_malloc_or_error(NBuffers);

	for (int i = 0; i < NBuffers; i++)
	{
		BufferDesc *hdr = GetBufferDescriptor(i);
		uint32		state = LockBufHdr(hdr);

		if ((state & (BM_VALID | BM_TAG_VALID)) == (BM_VALID | BM_TAG_VALID))
		{
			s->database[n] = pgnw_buftag_db(&hdr->tag);
			s->tablespace[n] = pgnw_buftag_spc(&hdr->tag);
			s->relfilenode[n] = pgnw_buftag_rel(&hdr->tag);
			s->fork[n] = (uint8_t) pgnw_buftag_fork(&hdr->tag);
			s->block[n] = hdr->tag.blockNum;
			s->dirty[n] = (state & BM_DIRTY) != 0;
			s->usage[n] = (uint8_t) BUF_STATE_GET_USAGECOUNT(state);
			n++;
		}
		UnlockBufHdr(hdr, state);
	}
	s->count = n;
}

/* shrink an array to count entries (the snapshot filled at most NBuffers) */
static void *
buffers_shrink(void *p, size_t bytes)
{
	void	   *q;

	if (bytes == 0)
	{
		free(p);
		return NULL;
	}
	q = realloc(p, bytes);
	return q ? q : p;
}

/* Every valid buffer of shared_buffers, column by column (pg_monitor). */
bool
pgnw_buffers_snapshot(PgnwBufferSnapshot *out, PgnwError *err)
{
	memset(out, 0, sizeof(*out));
	if (!buffers_call(buffers_op_snapshot, out, false, err))
	{
		pgnw_buffers_snapshot_free(out);
		return false;
	}
	if (out->count < out->total)
	{
		size_t		n = out->count;

		out->database = buffers_shrink(out->database, n * sizeof(uint32_t));
		out->tablespace = buffers_shrink(out->tablespace, n * sizeof(uint32_t));
		out->relfilenode = buffers_shrink(out->relfilenode, n * sizeof(uint32_t));
		out->block = buffers_shrink(out->block, n * sizeof(uint32_t));
		out->fork = buffers_shrink(out->fork, n);
		out->dirty = buffers_shrink(out->dirty, n);
		out->usage = buffers_shrink(out->usage, n);
	}
	return true;
}

/* Free what the bridge did not take of a snapshot. */
void
pgnw_buffers_snapshot_free(PgnwBufferSnapshot *s)
{
	free(s->database);
	free(s->tablespace);
	free(s->relfilenode);
	free(s->block);
	free(s->fork);
	free(s->dirty);
	free(s->usage);
	s->database = s->tablespace = s->relfilenode = s->block = NULL;
	s->fork = s->dirty = s->usage = NULL;
}

/* ---------------------------------------------------------------- stats */

/*
 * Like pg_buffercache_summary (PostgreSQL 16): the state word read without
 * the header lock, which is exact enough for counts.
 */
static void
buffers_op_stats(void *arg)
{
	PgnwBufferStats *s = (PgnwBufferStats *) arg;
	uint64		usage = 0;

	buffers_require_monitor();
	memset(s, 0, sizeof(*s));
	s->total = (uint32_t) NBuffers;
	for (int i = 0; i < NBuffers; i++)
	{
		uint32		state = pg_atomic_read_u32(&GetBufferDescriptor(i)->state);

		if ((state & BM_VALID) == 0)
			continue;
		s->used++;
		if (state & BM_DIRTY)
			s->dirty++;
		if (BUF_STATE_GET_REFCOUNT(state) > 0)
			s->pinned++;
		usage += BUF_STATE_GET_USAGECOUNT(state);
	}
	s->usage_average = s->used > 0 ? (double) usage / s->used : 0.0;
}

/* Counts over shared_buffers (pg_monitor). */
bool
pgnw_buffers_stats(PgnwBufferStats *out, PgnwError *err)
{
	return buffers_call(buffers_op_stats, out, false, err);
}

/* ------------------------------------------------------------ residency */

typedef struct PgnwResidencyArgs
{
	const PgnwRelationRef *ref;
	int64_t		blocks;
	int64_t		cached;
} PgnwResidencyArgs;

/* The fork's size and how many of its blocks are cached (arg: PgnwResidencyArgs). */
static void
buffers_op_residency(void *arg)
{
	PgnwResidencyArgs *a = (PgnwResidencyArgs *) arg;
	ForkNumber	fork = buffers_fork(a->ref->fork);
	Relation	rel;
	Oid			db;
	Oid			spc;
	Oid			filenode;
	int64		cached = 0;

	buffers_require_monitor();
	rel = buffers_open_relation(a->ref);
	a->blocks = buffers_fork_blocks(rel, fork);
	db = pgnw_rel_db(rel);
	spc = pgnw_rel_spc(rel);
	filenode = pgnw_rel_filenode(rel);
	relation_close(rel, NoLock);

	for (int i = 0; i < NBuffers; i++)
	{
		BufferDesc *hdr = GetBufferDescriptor(i);
		uint32		state;

		/* an unlocked look first: most buffers belong to other relations */
		if (pgnw_buftag_rel(&hdr->tag) != filenode)
			continue;
		state = LockBufHdr(hdr);
		if ((state & (BM_VALID | BM_TAG_VALID)) == (BM_VALID | BM_TAG_VALID) &&
			pgnw_buftag_rel(&hdr->tag) == filenode &&
			pgnw_buftag_db(&hdr->tag) == db &&
			pgnw_buftag_spc(&hdr->tag) == spc &&
			pgnw_buftag_fork(&hdr->tag) == fork)
			cached++;
		UnlockBufHdr(hdr, state);
	}
	a->cached = cached;
}

/* How much of a relation's fork is in shared_buffers (pg_monitor). */
bool
pgnw_buffers_residency(const PgnwRelationRef *rel, int64_t *blocks, int64_t *cached,
					   PgnwError *err)
{
	PgnwResidencyArgs a = {rel, 0, 0};

	if (!buffers_call(buffers_op_residency, &a, true, err))
		return false;
	*blocks = a.blocks;
	*cached = a.cached;
	return true;
}

/* -------------------------------------------------------------- prewarm */

typedef struct PgnwPrewarmArgs
{
	const PgnwRelationRef *ref;
	bool		has_first;
	int64_t		first;
	bool		has_last;
	int64_t		last;
	int64_t		done;
} PgnwPrewarmArgs;

/* Read blocks first..last of the fork into shared_buffers (arg: PgnwPrewarmArgs). */
static void
buffers_op_prewarm(void *arg)
{
	PgnwPrewarmArgs *a = (PgnwPrewarmArgs *) arg;
	ForkNumber	fork = buffers_fork(a->ref->fork);
	Relation	rel = buffers_open_relation(a->ref);
	AclResult	aclresult;
	int64		nblocks;
	int64		first = 0;
	int64		last;

	/* pg_prewarm's rule: SELECT on the relation */
	aclresult = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	if (!smgrexists(RelationGetSmgr(rel), fork))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fork \"%s\" does not exist for this relation", forkNames[fork])));

	nblocks = RelationGetNumberOfBlocksInFork(rel, fork);
	last = nblocks - 1;
	if (a->has_first)
	{
		first = a->first;
		if (first < 0 || first >= nblocks)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("starting block number must be between 0 and " INT64_FORMAT,
							nblocks - 1)));
	}
	if (a->has_last)
	{
		last = a->last;
		if (last < 0 || last >= nblocks)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ending block number must be between 0 and " INT64_FORMAT,
							nblocks - 1)));
	}

	for (int64 block = first; block <= last; block++)
	{
		Buffer		buf;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBufferExtended(rel, fork, (BlockNumber) block, RBM_NORMAL, NULL);
		ReleaseBuffer(buf);
		a->done++;
	}
	relation_close(rel, NoLock);
}

/* Read a relation's blocks into shared_buffers, as pg_prewarm's 'buffer' mode (SELECT). */
bool
pgnw_buffers_prewarm(const PgnwRelationRef *rel, bool has_first, int64_t first,
					 bool has_last, int64_t last, int64_t *done, PgnwError *err)
{
	PgnwPrewarmArgs a = {rel, has_first, first, has_last, last, 0};

	if (!buffers_call(buffers_op_prewarm, &a, true, err))
		return false;
	*done = a.done;
	return true;
}

/* ------------------------------------------------------------ read page */

typedef struct PgnwReadPageArgs
{
	const PgnwRelationRef *ref;
	int64_t		block;
	uint8_t    *page;			/* malloc'd */
} PgnwReadPageArgs;

/* Copy one page under a share content lock (arg: PgnwReadPageArgs). */
static void
buffers_op_read_page(void *arg)
{
	PgnwReadPageArgs *a = (PgnwReadPageArgs *) arg;
	ForkNumber	fork;
	Relation	rel;
	Buffer		buf;

	/* pageinspect's rule */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to use raw page functions")));
	fork = buffers_fork(a->ref->fork);
	rel = buffers_open_relation(a->ref);
	if (a->block < 0 || a->block >= (int64) buffers_fork_blocks(rel, fork))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("block number " INT64_FORMAT " is out of range for relation \"%s\"",
						(int64) a->block, RelationGetRelationName(rel))));

	a->page = buffers_malloc_or_error(BLCKSZ);
	buf = ReadBufferExtended(rel, fork, (BlockNumber) a->block, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	memcpy(a->page, BufferGetPage(buf), BLCKSZ);
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buf);
	relation_close(rel, NoLock);
}

/* A copy of one page of a relation, as get_raw_page (superuser). */
bool
pgnw_buffers_read_page(const PgnwRelationRef *rel, int64_t block, uint8_t **page, size_t *len,
					   PgnwError *err)
{
	PgnwReadPageArgs a = {rel, block, NULL};

	if (!buffers_call(buffers_op_read_page, &a, true, err))
	{
		free(a.page);
		return false;
	}
	*page = a.page;
	*len = BLCKSZ;
	return true;
}

/* ------------------------------------------------------- shared regions */

typedef struct PgnwSharedArgs
{
	const char *name;
	size_t		size;
	void	   *ptr;
	bool		created;
} PgnwSharedArgs;

/* Find or create the named region (arg: PgnwSharedArgs). */
static void
buffers_op_shared_open(void *arg)
{
	PgnwSharedArgs *a = (PgnwSharedArgs *) arg;

	a->ptr = pgnw_shared_region(a->name, (Size) a->size, &a->created);
}

/* The named shared region (created zero-filled on first use). */
bool
pgnw_shared_open(const char *name, size_t size, void **ptr, bool *created, PgnwError *err)
{
	PgnwSharedArgs a = {name, size, NULL, false};

	/* no transaction: only the region directory and its LWLock */
	if (!pgnw_guard(buffers_op_shared_open, &a, err))
		return false;
	*ptr = a.ptr;
	*created = a.created;
	return true;
}
