/*-------------------------------------------------------------------------
 *
 * runtime_memory.cc
 *		Memory outside the JavaScript heap, and every way a worker can run
 *		out of memory: the ArrayBuffer allocator and its budget, the heap
 *		limit fitted to a data-segment limit, the new_handler, terminate,
 *		out-of-memory and fatal-error paths, malloc's arenas, and dropping
 *		the pages of start-up an idle worker no longer needs.
 *
 * ArrayBuffers (Buffers, typed arrays) are malloc'd outside the V8 heap, so
 * the heap limit does not bound them.  Left alone, a worker filling memory
 * with them runs until malloc fails; under an operating-system limit on the
 * data segment (ulimit -d, systemd LimitDATA=) the failure then lands in
 * V8's garbage collector or in a C++ `new` inside Node, both of which abort
 * the process, and a worker killed by a signal resets the whole cluster.
 *
 * So every ArrayBuffer of the worker's isolate comes from this allocator,
 * which refuses (V8 then throws "RangeError: Array buffer allocation failed",
 * after a last-resort GC) past a budget: node_worker.buffer_limit_mb (or
 * the manifest's bufferLimitMb) and, under a data-segment limit, what is
 * left of it once the JavaScript heap limit and a reserve for the GC, Node
 * and PostgreSQL are set aside.  A C++ allocation that still fails gets a
 * reserve block released by the new_handler, and the worker leaves cleanly.
 *
 * Limits: small ArrayBuffers (64 kB or less) may overdraw the budget by
 * 16 MB; 96 MB of a data-segment limit stay outside the heap and the
 * budget; on Node 24 an eighth of it (32 to 128 MB) goes to compiled code,
 * and a worker under such a limit starts without Node's snapshot (slower);
 * the second failed C++ allocation leaves at once.
 *
 * extension/runtime_memory.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>

#include <atomic>
#include <exception>
#include <new>

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "node_compat.h"
#include "runtime_memory.h"
#include "runtime_process.h"
#include "runtime_signals.h"

extern "C"
{
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"

#include "pg_node_worker.h"
#include "runtime.h"
}

#define PGNW_MB ((size_t) 1024 * 1024)
/* set aside under a data-segment limit: GC work space, Node, PostgreSQL */
#define PGNW_DATA_RESERVE_MB 96
/* what a Node environment and the runtime add to the data segment */
#define PGNW_NODE_START_MB 64
/*
 * The code range under a data-segment limit where it counts against it
 * (PGNW_CODE_RANGE_COUNTS_AS_DATA): an eighth of the limit, as V8 sizes it
 * under a limit on address space, within these bounds.  An idle worker's
 * code takes a few MB, a busy one tens; past the range V8 runs out of
 * memory and the worker leaves with exit 1.
 */
#define PGNW_CODE_RANGE_MIN_MB 32
#define PGNW_CODE_RANGE_MAX_MB 128
/* freed for a C++ allocation that failed, so the worker can leave cleanly */
#define PGNW_NEW_RESERVE_MB 16
/*
 * Small ArrayBuffers may go this far past the budget: Node's and V8's C++
 * make small ones (v8::ArrayBuffer::New) and treat a refusal as fatal, so
 * when JS has used the budget up they still get theirs.
 */
#define PGNW_SMALL_BUFFER (64 * 1024)
#define PGNW_SMALL_OVERDRAFT_MB 16

/*
 * node::ArrayBufferAllocator keeps GetImpl() private (IsolateData is its
 * friend); a wrapper must hand Node the wrapped allocator's implementation,
 * so the member is named through the explicit-instantiation exception to
 * access checking ([temp.spec]/6).  Node needs it: without it Buffer
 * allocations go through v8::ArrayBuffer::New, where a refusal is fatal.
 */
struct PgnwGetImplTag
{
	using type = node::NodeArrayBufferAllocator *(node::ArrayBufferAllocator::*) ();
	friend type pgnw_member(PgnwGetImplTag);
};

template <typename Tag, typename Tag::type Member>
struct PgnwExposeMember
{
	/* the private member, through the template argument */
	friend typename Tag::type pgnw_member(Tag)
	{
		return Member;
	}
};

template struct PgnwExposeMember<PgnwGetImplTag, &node::ArrayBufferAllocator::GetImpl>;

/*
 * Node's allocator, with a budget in front of it.  Its methods run on any
 * thread that makes or frees an ArrayBuffer, so it keeps to atomics.
 */
class PgnwBufferAllocator final : public node::ArrayBufferAllocator
{
public:
	std::atomic<size_t> used{0};
	std::atomic<size_t> peak{0};
	std::atomic<size_t> limit{SIZE_MAX};
	std::atomic<uint64_t> refused{0};

	/* a zero-filled buffer, if the budget allows */
	void	   *Allocate(size_t length) override
	{
		return Take(length) ? Keep(length, inner->Allocate(length)) : nullptr;
	}

	/* a buffer JS fills itself, if the budget allows */
	void	   *AllocateUninitialized(size_t length) override
	{
		return Take(length) ? Keep(length, inner->AllocateUninitialized(length)) : nullptr;
	}

#if PGNW_ALLOCATOR_HAS_REALLOCATE
	/* a buffer resized: growth counts against the budget, shrinking gives back */
	void	   *Reallocate(void *data, size_t old_length, size_t new_length) override
	{
		void	   *p;

		if (new_length > old_length && !Take(new_length - old_length))
			return nullptr;
		p = inner->Reallocate(data, old_length, new_length);
		if (new_length > old_length)
			return Keep(new_length - old_length, p);
		if (p != nullptr)
			used.fetch_sub(old_length - new_length);
		return p;
	}
#endif

	/* a buffer freed: its bytes go back to the budget */
	void		Free(void *data, size_t length) override
	{
		inner->Free(data, length);
		used.fetch_sub(length);
	}

private:
	std::unique_ptr<node::ArrayBufferAllocator> inner = node::ArrayBufferAllocator::Create();

	/* Node's own allocator inside (see PgnwGetImplTag) */
	node::NodeArrayBufferAllocator *GetImpl() override
	{
		return (inner.get()->*pgnw_member(PgnwGetImplTag())) ();
	}

	/* count length in, if the budget allows */
	bool		Take(size_t length)
	{
		size_t		now = used.fetch_add(length) + length;
		size_t		cap = limit.load();

		if (length <= PGNW_SMALL_BUFFER && cap != SIZE_MAX)
			cap += PGNW_SMALL_OVERDRAFT_MB * PGNW_MB;
		if (now >= length && now <= cap)
		{
			for (size_t high = peak.load(); now > high && !peak.compare_exchange_weak(high, now);)
				;
			return true;
		}
		used.fetch_sub(length);
		refused++;
		return false;
	}

	/* an allocation counted in by Take(): count it out again if it failed */
	void	   *Keep(size_t length, void *p)
	{
		if (p == nullptr)
		{
			used.fetch_sub(length);
			refused++;
		}
		return p;
	}
};

/* heap-allocated, never freed: no static destructor (see runtime_process.cc) */
static PgnwBufferAllocator &pgnw_memory_buffers = *new PgnwBufferAllocator();
static void *pgnw_memory_new_reserve = nullptr;
/* the heap limit in effect (MB) */
static int	pgnw_memory_heap_limit_mb;
/* the code range to give the isolate (MB), or 0 for V8's default */
static int	pgnw_memory_code_range;
/* a C++ allocation failed / V8 ran out of memory on a thread other than main */
static std::atomic<bool> pgnw_memory_cxx_out_of_memory{false};
static std::atomic<bool> pgnw_memory_oom_off_main_thread{false};

static void pgnw_v8_oom(const char *location, bool is_heap_oom);
static void pgnw_v8_fatal(const char *location, const char *message);


/* ---------------------------------------------------------------- budgets */

/* The ArrayBuffer allocator of the worker's isolate. */
node::ArrayBufferAllocator *
pgnw_memory_allocator(void)
{
	return &pgnw_memory_buffers;
}

/*
 * Start-up touches much code and data of libnode, ICU and PostgreSQL that an
 * idle worker never uses again, and those pages count in its PSS.  For a
 * read-only private file mapping that holds no page of its own (smaps
 * "Anonymous: 0 kB": nothing was copied on write, so every page equals the
 * file's), MADV_DONTNEED only unmaps: a page used later is mapped again from
 * the page cache (a minor fault).  Writable mappings and any mapping with a
 * page of its own (RELRO after relocation) are left alone: there it would
 * throw data away.
 */
extern "C" long
pgnw_drop_file_pages(void)
{
	FILE	   *f = fopen("/proc/self/smaps", "r");
	char		line[1024];
	uintptr_t	start = 0,
				end = 0;
	bool		candidate = false;
	long		rss_kb = 0,
				dropped_kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
	{
		unsigned long s,
					e,
					inode;
		char		perms[8];
		long		kb;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &s, &e, perms, &inode) == 4)
		{
			start = s;
			end = e;
			candidate = inode != 0 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
			rss_kb = 0;
		}
		else if (candidate && sscanf(line, "Rss: %ld kB", &kb) == 1)
			rss_kb = kb;
		else if (candidate && sscanf(line, "Anonymous: %ld kB", &kb) == 1)
		{
			if (kb == 0 && rss_kb > 0 &&
				madvise(reinterpret_cast<void *>(start), end - start, MADV_DONTNEED) == 0)
				dropped_kb += rss_kb;
			candidate = false;
		}
	}
	fclose(f);
	return dropped_kb;
}

/* The ArrayBuffer budget, the heap limit and the code range, for ctx.memoryUsage() and lockdown.ts. */
extern "C" void
pgnw_memory_usage(PgnwMemoryUsage *out)
{
	size_t		limit = pgnw_memory_buffers.limit.load();

	out->buffers = (double) pgnw_memory_buffers.used.load();
	out->buffers_peak = (double) pgnw_memory_buffers.peak.load();
	out->buffer_limit = limit == SIZE_MAX ? -1 : (double) limit;
	out->refused = (double) pgnw_memory_buffers.refused.load();
	out->heap_limit = (double) pgnw_memory_heap_limit_mb * PGNW_MB;
	out->code_range = (double) pgnw_memory_code_range * PGNW_MB;
}

/* the data segment's size now (VmData), in bytes; 0 if unknown */
static size_t
pgnw_memory_data_segment_bytes(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	size_t		kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmData: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* RLIMIT_DATA's soft limit in bytes, or SIZE_MAX */
static size_t
pgnw_memory_data_segment_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_DATA, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	return (size_t) rl.rlim_cur;
}

/* what the JS heap may take of the data segment: old space and the rest */
static size_t
pgnw_memory_heap_footprint(int heap_mb)
{
	return ((size_t) heap_mb * 5 / 4 + 16) * PGNW_MB;
}

/*
 * Before Node starts its threads: at most two malloc arenas.  glibc gives
 * each thread that allocates an arena of its own (up to eight per core), and
 * an arena keeps what its thread's allocations fragmented: under load, V8's
 * platform threads (GC and compile jobs) and libuv's each held 1-2 MB more
 * per worker after malloc_trim, varying from minute to minute.  With two,
 * all threads share the main arena and one more.  If glibc refuses, its
 * default stays (said at DEBUG1).
 */
void
pgnw_memory_limit_arenas(void)
{
	if (mallopt(M_ARENA_MAX, 2) != 1)
		ereport(DEBUG1,
				(errmsg("could not limit the malloc arenas of node worker \"%s\"", pgnw_worker_info.name)));
}

/*
 * Before Node starts: the heap limit.  Under a data-segment limit the heap
 * gets at most half of what is left after start-up, the code range (where
 * it counts, see PGNW_CODE_RANGE_COUNTS_AS_DATA) and the reserve, so that
 * a full heap leaves room for ArrayBuffers and the other way round.
 */
int
pgnw_memory_plan_heap(int heap_mb)
{
	size_t		limit = pgnw_memory_data_segment_limit();
	size_t		used = pgnw_memory_data_segment_bytes();
	size_t		set_aside = used + (PGNW_NODE_START_MB + PGNW_DATA_RESERVE_MB) * PGNW_MB;
	int			fits;

	pgnw_memory_heap_limit_mb = heap_mb;
	pgnw_memory_code_range = 0;
	if (limit == SIZE_MAX)
		return heap_mb;
	if (PGNW_CODE_RANGE_COUNTS_AS_DATA)
	{
		size_t		code_mb = limit / 8 / PGNW_MB;

		code_mb = Max(code_mb, (size_t) PGNW_CODE_RANGE_MIN_MB);
		code_mb = Min(code_mb, (size_t) PGNW_CODE_RANGE_MAX_MB);
		pgnw_memory_code_range = (int) code_mb;
		set_aside += code_mb * PGNW_MB;
		ereport(LOG,
				(errmsg("node worker \"%s\": JavaScript code space limited to %zu MB to fit the data segment limit of %zu MB",
						pgnw_worker_info.name, code_mb, limit / PGNW_MB),
				 errdetail("This Node.js version counts all of its code space against the limit from the start; the worker starts without Node's start-up snapshot to size it.")));
	}
	/* half of what is left, less the young generation and code space */
	fits = limit > set_aside ? (int) (((long) ((limit - set_aside) / 2 / PGNW_MB) - 16) * 4 / 5) : 0;
	if (fits < 16)
		fits = 16;
	if (heap_mb <= fits)
		return heap_mb;
	ereport(LOG,
			(errmsg("node worker \"%s\": JavaScript heap limit lowered from %d MB to %d MB to fit the data segment limit of %zu MB",
					pgnw_worker_info.name, heap_mb, fits, limit / PGNW_MB),
			 errhint("Raise the server's data segment limit (ulimit -d, LimitDATA=) or lower heapLimitMb.")));
	pgnw_memory_heap_limit_mb = fits;
	return fits;
}

/* The code range the isolate gets (MB), planned with the heap; 0: V8's default. */
int
pgnw_memory_code_range_mb(void)
{
	return pgnw_memory_code_range;
}

/*
 * After Node started, before user code: the ArrayBuffer budget, and the
 * reserve for C++ allocations.
 */
void
pgnw_memory_plan_buffers(int buffer_mb)
{
	size_t		budget = buffer_mb < 0 ? SIZE_MAX : (size_t) buffer_mb * PGNW_MB;
	size_t		limit = pgnw_memory_data_segment_limit();

	/* malloc'd, never touched: costs address space, not memory */
	pgnw_memory_new_reserve = malloc(PGNW_NEW_RESERVE_MB * PGNW_MB);

	if (limit != SIZE_MAX)
	{
		size_t		taken = pgnw_memory_data_segment_bytes() +
			pgnw_memory_heap_footprint(pgnw_memory_heap_limit_mb) +
			PGNW_DATA_RESERVE_MB * PGNW_MB;
		size_t		fits = limit > taken ? limit - taken : 0;

		if (fits < budget)
		{
			ereport(LOG,
					(errmsg("node worker \"%s\": ArrayBuffers limited to %zu MB to fit the data segment limit of %zu MB",
							pgnw_worker_info.name, fits / PGNW_MB, limit / PGNW_MB)));
			budget = fits;
		}
	}
	pgnw_memory_buffers.limit = budget;
}


/* ------------------------------------------------- running out of memory */

/*
 * operator new failed (any thread): give back the reserve so that this
 * allocation and the way out succeed, and have the worker leave.  A second
 * failure finds no reserve.  Then it must not throw: libnode is built without
 * exceptions, so std::bad_alloc would end in std::terminate and SIGABRT, and
 * a worker killed by a signal resets the cluster (a few 100 MB URLs with the
 * ArrayBuffer budget used up are enough to get there).  So it leaves as V8's
 * out-of-memory handler does: the main thread with exit 1, another thread
 * parks.
 */
static void
pgnw_v8_new_handler(void)
{
	void	   *reserve = __atomic_exchange_n(&pgnw_memory_new_reserve, nullptr, __ATOMIC_SEQ_CST);

	if (reserve == nullptr)
		pgnw_v8_oom("operator new", false);
	free(reserve);
	pgnw_memory_cxx_out_of_memory = true;
	SetLatch(MyLatch);
}

/*
 * std::terminate (an exception nothing catches: libnode has no handlers).
 * On the main thread outside PostgreSQL, PostgreSQL's state is intact:
 * leave with exit 1 as for V8's fatal errors.  Inside PostgreSQL, or on
 * another thread, abort as the default handler does (the thread-abort
 * handler parks other threads).
 */
static void
pgnw_v8_terminate(void)
{
	const char *what = "an exception nothing caught";
	bool		oom = false;

	try
	{
		if (std::current_exception())
			std::rethrow_exception(std::current_exception());
	}
	catch (const std::bad_alloc &)
	{
		oom = true;
	}
	catch (const std::exception &e)
	{
		what = e.what();
	}
	catch (...)
	{
	}
	if (!pthread_equal(pthread_self(), pgnw_main_thread) || pgnw_in_postgres)
		abort();
	if (oom)
		pgnw_v8_oom("std::bad_alloc", false);
	pgnw_v8_fatal("std::terminate", what);
}

/*
 * V8 ran out of memory: leave through proc_exit(1), never abort().  On
 * another thread (a GC helper) PostgreSQL must not run: park that thread
 * and let the watchdog stop the main thread, which then leaves.
 */
static void
pgnw_v8_oom(const char *location, bool is_heap_oom)
{
	if (!pthread_equal(pthread_self(), pgnw_main_thread))
	{
		pgnw_memory_oom_off_main_thread = true;
		SetLatch(MyLatch);
		for (;;)
			pause();
	}
	HOLD_INTERRUPTS();
	pgnw_worker_set_error("53200", is_heap_oom ? "ran out of JavaScript heap memory" : "ran out of memory");
	if (is_heap_oom)
		ereport(LOG,
				(errmsg("node worker \"%s\" ran out of JavaScript heap memory (%s)",
						pgnw_worker_info.name, location ? location : "unknown location"),
				 errhint("Raise node_worker.heap_limit_mb or reduce the worker's memory use.")));
	else
		ereport(LOG,
				(errmsg("node worker \"%s\" ran out of memory (%s)",
						pgnw_worker_info.name, location ? location : "unknown location"),
				 errdetail("ArrayBuffers held %zu MB.", pgnw_memory_buffers.used.load() / PGNW_MB),
				 errhint("Lower the worker's memory use, or raise node_worker.buffer_limit_mb and the server's data segment limit.")));
	proc_exit(1);
}

/* V8's fatal error handler: log it and leave with exit 1. */
static void
pgnw_v8_fatal(const char *location, const char *message)
{
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\": fatal JavaScript engine error in %s: %s",
					pgnw_worker_info.name, location ? location : "?", message ? message : "?")));
	proc_exit(1);
}

/*
 * The heap is near its limit: let the isolate finish the current step with
 * 64 MB more, then leave cleanly.  This runs inside V8's GC: no interrupt
 * processing (no longjmp) from the ereport.
 */
static size_t
pgnw_v8_near_heap_limit(void *data, size_t current_limit, size_t initial_limit)
{
	HOLD_INTERRUPTS();
	pgnw_worker_set_error("53200", psprintf("reached its JavaScript heap limit (%zu MB)", initial_limit / (1024 * 1024)));
	ereport(LOG,
			(errmsg("node worker \"%s\" reached its JavaScript heap limit (%zu MB), stopping",
					pgnw_worker_info.name, initial_limit / (1024 * 1024)),
			 errhint("Raise node_worker.heap_limit_mb or reduce the worker's memory use.")));
	RESUME_INTERRUPTS();
	pgnw_request_exit(1);
	return current_limit + 64 * 1024 * 1024;
}

/* Before anything can run out of memory: the handlers of every way it can. */
void
pgnw_memory_install_handlers(v8::Isolate *isolate)
{
	pgnw_set_oom_handler(isolate, pgnw_v8_oom);
	isolate->SetFatalErrorHandler(pgnw_v8_fatal);
	std::set_new_handler(pgnw_v8_new_handler);
	std::set_terminate(pgnw_v8_terminate);
}

/* Leave cleanly when the JavaScript heap reaches its limit. */
void
pgnw_memory_watch_heap_limit(v8::Isolate *isolate)
{
	isolate->AddNearHeapLimitCallback(pgnw_v8_near_heap_limit, nullptr);
}

/* A C++ allocation failed, or V8 ran out of memory on another thread. */
bool
pgnw_sig_out_of_memory(void)
{
	return pgnw_memory_cxx_out_of_memory || pgnw_memory_oom_off_main_thread;
}

/*
 * The main thread says why the worker is stopping, once: a thread other
 * than main aborted (a worker_threads Worker out of memory, most often), or
 * memory ran out (the watchdog then stopped JS).
 */
void
pgnw_memory_report_exhaustion(void)
{
	static bool reported = false;
	int			signo = pgnw_sig_thread_abort_signal();

	if (!reported && signo != 0)
	{
		reported = true;
		pgnw_worker_set_error(NULL, psprintf("a thread other than the main one aborted (signal %d); see the server log",
											 signo));
		HOLD_INTERRUPTS();
		ereport(LOG,
				(errmsg("node worker \"%s\": a thread other than the main one aborted (signal %d), stopping",
						pgnw_worker_info.name, signo),
				 errdetail("A worker_threads Worker that ran out of memory ends this way; its output is above."),
				 errhint("Limit the memory of worker threads (resourceLimits), or keep large data on the main thread, where node_worker.buffer_limit_mb applies.")));
		RESUME_INTERRUPTS();
		return;
	}
	if (reported || !pgnw_sig_out_of_memory())
		return;
	reported = true;
	pgnw_worker_set_error("53200", "ran out of memory (a memory allocation inside Node.js failed)");
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\" ran out of memory, stopping", pgnw_worker_info.name),
			 errdetail("A memory allocation inside Node.js failed; ArrayBuffers held %zu MB (limit %s).",
					   pgnw_memory_buffers.used.load() / PGNW_MB,
					   pgnw_memory_buffers.limit.load() == SIZE_MAX ? "none" :
					   psprintf("%zu MB", pgnw_memory_buffers.limit.load() / PGNW_MB)),
			 errhint("Lower the worker's memory use, or raise node_worker.buffer_limit_mb and the server's data segment limit.")));
	RESUME_INTERRUPTS();
}
