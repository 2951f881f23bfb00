/*-------------------------------------------------------------------------
 *
 * shared.c
 *		Named shared memory regions for workers (ctx.shared(name, bytes)),
 *		and the SQL functions that list and read them.
 *
 * A pool of node_worker.shared_memory_mb in the main shared memory segment,
 * requested at postmaster start, with a small directory (name, offset,
 * size) in front of it under one LWLock.  A region is created on first
 * open, zero-filled, and then found by name by every process: workers map
 * it into JavaScript as a SharedArrayBuffer (native/shared.cc), SQL reads
 * it with node_worker.shared_read().
 *
 * Allocation is a bump pointer: a region lives until the server stops (or
 * a crash resets shared memory), it is never freed or resized.  Opening an
 * existing name with another size is an error, so a worker that changed its
 * layout finds out at once instead of reading someone else's bytes.
 *
 * The main shared memory segment is mapped at the same address in every
 * process forked by the postmaster, but nothing here relies on it: each
 * process computes its pointer from its own mapping.
 *
 * extension/shared.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

#include "pg_node_worker.h"
#include "shared.h"

PG_FUNCTION_INFO_V1(node_worker_shared_regions);
PG_FUNCTION_INFO_V1(node_worker_shared_read);

/* regions start on cache-line boundaries: no false sharing between them */
#define PGNW_REGION_ALIGN 64

typedef struct PgnwRegion
{
	char		name[PGNW_REGION_NAME_MAX + 1];
	Size		offset;			/* from the pool's start */
	Size		size;			/* as requested */
} PgnwRegion;

typedef struct PgnwRegionDir
{
	LWLock	   *lock;
	Size		pool_size;
	Size		used;			/* bump pointer, PGNW_REGION_ALIGN-aligned */
	int			nregions;
	PgnwRegion	regions[PGNW_MAX_REGIONS];
} PgnwRegionDir;

/* setting: node_worker.shared_memory_mb (defined in pg_node_worker.c) */
int			pgnw_shared_memory_mb = 16;

static PgnwRegionDir *pgnw_shared_dir = NULL;
static char *pgnw_shared_pool = NULL;

/* Bytes of the pool. */
static Size
pgnw_shared_pool_size(void)
{
	return (Size) pgnw_shared_memory_mb * 1024 * 1024;
}

/* Shared memory of the regions: their directory and the pool. */
Size
pgnw_shared_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(PgnwRegionDir));

	/* the pool, plus room to align its start */
	if (pgnw_shared_memory_mb > 0)
		size = add_size(size, add_size(pgnw_shared_pool_size(), PGNW_REGION_ALIGN));
	return size;
}

/* Set up the directory and the pool; caller holds AddinShmemInitLock. */
void
pgnw_shared_shmem_init(LWLock *lock)
{
	bool		found;
	char	   *base;

	base = ShmemInitStruct("pg_node_worker shared regions", pgnw_shared_shmem_size(), &found);
	pgnw_shared_dir = (PgnwRegionDir *) base;
	pgnw_shared_pool = pgnw_shared_memory_mb > 0 ?
		(char *) TYPEALIGN(PGNW_REGION_ALIGN, base + MAXALIGN(sizeof(PgnwRegionDir))) : NULL;
	if (!found)
	{
		/* regions are zeroed when created: only the directory here */
		memset(pgnw_shared_dir, 0, sizeof(PgnwRegionDir));
		pgnw_shared_dir->lock = lock;
		pgnw_shared_dir->pool_size = pgnw_shared_memory_mb > 0 ? pgnw_shared_pool_size() : 0;
	}
}

/* ERROR unless the library was preloaded and its shared memory exists. */
static void
pgnw_shared_check(void)
{
	if (pgnw_shared_dir == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_node_worker's shared memory is not initialized"),
				 errhint("Load pg_node_worker through shared_preload_libraries.")));
}

/* ERROR unless name is a valid region name. */
static void
pgnw_shared_check_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > PGNW_REGION_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid shared region name \"%s\"", name),
				 errdetail("A region name is 1 to %d bytes long.", PGNW_REGION_NAME_MAX)));
}

/*
 * The memory of the region called name and its size (*size), or NULL when
 * there is none; caller holds the lock.
 */
static char *
pgnw_shared_lookup(const char *name, Size *size)
{
	for (int i = 0; i < pgnw_shared_dir->nregions; i++)
	{
		PgnwRegion *r = &pgnw_shared_dir->regions[i];

		if (strcmp(r->name, name) == 0)
		{
			*size = r->size;
			return pgnw_shared_pool + r->offset;
		}
	}
	return NULL;
}

/*
 * Create the region called name, of size bytes, zero-filled; caller holds
 * the lock exclusively, which is released before any ERROR.
 */
static char *
pgnw_shared_create(const char *name, Size size)
{
	Size		need = TYPEALIGN(PGNW_REGION_ALIGN, size);
	Size		free_bytes = pgnw_shared_dir->pool_size - pgnw_shared_dir->used;
	PgnwRegion *r;
	char	   *ptr;

	if (pgnw_shared_dir->nregions >= PGNW_MAX_REGIONS)
	{
		LWLockRelease(pgnw_shared_dir->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not create shared region \"%s\": all %d region names are in use",
						name, PGNW_MAX_REGIONS),
				 errhint("Regions live until the server stops; use fewer, larger regions.")));
	}
	if (size > free_bytes || need > free_bytes)
	{
		LWLockRelease(pgnw_shared_dir->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create shared region \"%s\" of %zu bytes: the pool has %zu of %zu bytes left",
						name, (size_t) size, (size_t) free_bytes,
						(size_t) pgnw_shared_dir->pool_size),
				 errhint("Raise node_worker.shared_memory_mb (a server restart is needed); regions are kept until the server stops.")));
	}
	r = &pgnw_shared_dir->regions[pgnw_shared_dir->nregions];
	strlcpy(r->name, name, sizeof(r->name));
	r->offset = pgnw_shared_dir->used;
	r->size = size;
	ptr = pgnw_shared_pool + r->offset;
	memset(ptr, 0, need);
	pgnw_shared_dir->used += need;
	pgnw_shared_dir->nregions++;
	return ptr;
}

/*
 * The region called name, of exactly size bytes: created (zero-filled) if
 * it does not exist.  ereports when the name is bad, the size differs from
 * the existing region's, or the pool or the directory is full.
 */
void *
pgnw_shared_region(const char *name, Size size, bool *created)
{
	Size		existing = 0;
	char	   *ptr;

	pgnw_shared_check();
	pgnw_shared_check_name(name);
	if (created)
		*created = false;
	if (pgnw_shared_dir->pool_size == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shared regions are disabled"),
				 errhint("Set node_worker.shared_memory_mb to the pool size in MB (a server restart is needed).")));
	if (size == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a shared region needs at least 1 byte")));

	/* the common case, an existing region: a shared lock */
	LWLockAcquire(pgnw_shared_dir->lock, LW_SHARED);
	ptr = pgnw_shared_lookup(name, &existing);
	LWLockRelease(pgnw_shared_dir->lock);
	if (ptr == NULL)
	{
		LWLockAcquire(pgnw_shared_dir->lock, LW_EXCLUSIVE);
		ptr = pgnw_shared_lookup(name, &existing);
		if (ptr == NULL)
		{
			ptr = pgnw_shared_create(name, size);
			existing = size;
			if (created)
				*created = true;
		}
		LWLockRelease(pgnw_shared_dir->lock);
	}
	if (existing != size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shared region \"%s\" exists with %zu bytes, not %zu",
						name, (size_t) existing, (size_t) size),
				 errhint("A region keeps its size until the server restarts: open it with %zu bytes, or use another name.",
						 (size_t) existing)));
	return ptr;
}

/*
 * node_worker.shared_regions: name and size of every region, in creation
 * order.
 */
Datum
node_worker_shared_regions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgnwRegion *copy;
	int			n;

	pgnw_shared_check();
	InitMaterializedSRF(fcinfo, 0);

	copy = palloc(sizeof(PgnwRegion) * PGNW_MAX_REGIONS);
	LWLockAcquire(pgnw_shared_dir->lock, LW_SHARED);
	n = pgnw_shared_dir->nregions;
	memcpy(copy, pgnw_shared_dir->regions, sizeof(PgnwRegion) * n);
	LWLockRelease(pgnw_shared_dir->lock);

	for (int i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {0};

		values[0] = CStringGetTextDatum(copy[i].name);
		values[1] = Int64GetDatum((int64) copy[i].size);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * node_worker.shared_read(name, offset default 0, length default null):
 * a copy of the region's bytes (from offset to the end when length is
 * null).  For debugging: the copy is not atomic with respect to workers
 * writing the region at the same time.
 */
Datum
node_worker_shared_read(PG_FUNCTION_ARGS)
{
	char	   *name;
	int64		offset;
	int64		length;
	Size		size = 0;
	char	   *src = NULL;
	bytea	   *out;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("region name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	offset = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	pgnw_shared_check();
	pgnw_shared_check_name(name);

	LWLockAcquire(pgnw_shared_dir->lock, LW_SHARED);
	src = pgnw_shared_lookup(name, &size);
	LWLockRelease(pgnw_shared_dir->lock);
	if (src == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shared region \"%s\" does not exist", name),
				 errhint("A region exists once a worker opened it with ctx.shared(name, bytes); see node_worker.shared_regions.")));

	if (offset < 0 || offset > (int64) size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset %lld is out of range for shared region \"%s\" of %zu bytes",
						(long long) offset, name, (size_t) size)));
	length = PG_ARGISNULL(2) ? (int64) size - offset : PG_GETARG_INT32(2);
	if (length < 0 || offset + length > (int64) size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("length %lld at offset %lld is out of range for shared region \"%s\" of %zu bytes",
						(long long) length, (long long) offset, name, (size_t) size)));
	if (length > (int64) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot read %lld bytes at once", (long long) length),
				 errhint("Read the region in parts with offset and length.")));

	out = (bytea *) palloc(VARHDRSZ + length);
	SET_VARSIZE(out, VARHDRSZ + length);
	memcpy(VARDATA(out), src + offset, length);
	PG_RETURN_BYTEA_P(out);
}
