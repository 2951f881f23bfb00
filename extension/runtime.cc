/*-------------------------------------------------------------------------
 *
 * runtime.cc
 *		The worker side of pg_node_worker: embeds Node.js (libnode) in a
 *		background worker process and drives its event loop from
 *		PostgreSQL's latch and wait-event machinery.
 *
 * This file is pg_node_worker_runtime.so, the bgw_library_name of every
 * worker.  It is loaded only in worker processes, so libnode never enters
 * the postmaster or client backends.  It owns the process-level state that
 * Node must not touch: signals, exit paths, stdio, and the watchdog thread
 * that services PostgreSQL interrupts while JavaScript is busy and stops
 * runaway JavaScript when the worker is asked to shut down.
 *
 * Node's C++ embedder API is not stable across majors; everything that
 * depends on it lives in this file, pinned to Node 18.
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>
#include <uv.h>

#include <atomic>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if NODE_MAJOR_VERSION != 18
#error "pg_node_worker_runtime is written against Node 18's embedder API (libnode108)"
#endif

namespace node
{
/* exported by libnode, not declared in node.h: NewIsolate()'s settings */
NODE_EXTERN void SetIsolateCreateParamsForNode(v8::Isolate::CreateParams *params);
}

extern "C"
{
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/timestamp.h"

#include "pg_node_worker.h"
#include "runtime.h"
}

extern "C"
{
	PG_MODULE_MAGIC;
}

/* ---- state shared with the bridge (see runtime.h) ---- */
extern "C"
{
	pthread_t	pgnw_main_thread;
	volatile sig_atomic_t pgnw_in_postgres = 0;
	volatile sig_atomic_t pgnw_shutdown_requested = 0;
	PgnwWorkerInfo pgnw_worker_info;
	PgnwSignalStats pgnw_signal_stats;
}

static volatile sig_atomic_t pgnw_got_sigterm = 0;
static std::atomic<bool> pgnw_exit_requested{false};
static std::atomic<int> pgnw_exit_code{0};
static std::atomic<bool> pgnw_interrupt_requested{false};
static std::atomic<bool> pgnw_force_stopped{false};
/* the watchdog stopped JS because it outlived the shutdown grace period */
static std::atomic<bool> pgnw_grace_expired{false};
/* a C++ allocation failed / V8 ran out of memory on a thread other than main */
static std::atomic<bool> pgnw_cxx_out_of_memory{false};
static std::atomic<bool> pgnw_oom_off_main_thread{false};
/* the signal (SIGABRT, SIGTRAP, SIGILL) with which a thread other than main aborted, or 0 */
static volatile sig_atomic_t pgnw_thread_abort_signal = 0;
static std::atomic<int64_t> pgnw_thread_abort_at_ms{0};
/* when the main thread began to leave after Node or V8 gave up on it, or 0 */
static std::atomic<int64_t> pgnw_main_gave_up_at_ms{0};
static std::atomic<int64_t> pgnw_sigterm_at_ms{0};
static_assert(std::atomic<int64_t>::is_always_lock_free, "set from a signal handler");
static node::Environment *pgnw_env = nullptr;
static v8::Isolate *pgnw_isolate = nullptr;
static int	pgnw_saved_exit_code = 1;

/* Signals PostgreSQL installed handlers for, and those handlers. */
static struct sigaction pgnw_pg_actions[NSIG];
static bool pgnw_trampolined[NSIG];

static int64_t
pgnw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * SIGTERM: server stop or pg_terminate_backend.  Only flags and the latch
 * here.  If the main thread is inside a SQL statement, cancel it so that a
 * long statement (pg_sleep) does not hold up the shutdown: JS then sees a
 * PgError 57014 and ctx.signal already aborted.
 */
static void
pgnw_handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	pgnw_got_sigterm = 1;
	pgnw_shutdown_requested = 1;
	/* starts the grace period even if JS never yields to the event loop */
	if (pgnw_sigterm_at_ms.load() == 0)
		pgnw_sigterm_at_ms = pgnw_now_ms();
	if (pgnw_in_postgres)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

static bool
pgnw_sigterm_pending(void)
{
	return pgnw_got_sigterm != 0;
}

/*
 * Every PostgreSQL signal handler is wrapped by this trampoline.  Threads
 * created after start-up (worker_threads, threadpool growth) inherit an
 * unblocked mask, so the kernel may pick one of them for a process-directed
 * signal; PostgreSQL's handlers must only ever run on the main thread, so
 * the signal is re-sent to it.
 */
static void
pgnw_signal_trampoline(int signo)
{
	if ((pid_t) syscall(SYS_gettid) != MyProcPid)
	{
		pgnw_signal_stats.forwarded++;
		syscall(SYS_tgkill, MyProcPid, MyProcPid, signo);
		return;
	}
	pgnw_signal_stats.on_main++;
	pgnw_pg_actions[signo].sa_handler(signo);
}

static void
pgnw_install_trampolines(void)
{
	for (int signo = 1; signo < NSIG; signo++)
	{
		struct sigaction act;

		if (signo == SIGKILL || signo == SIGSTOP)
			continue;
		if (sigaction(signo, NULL, &act) != 0)
			continue;
		if ((act.sa_flags & SA_SIGINFO) || act.sa_handler == SIG_DFL ||
			act.sa_handler == SIG_IGN)
			continue;
		pgnw_pg_actions[signo] = act;
		act.sa_handler = pgnw_signal_trampoline;
		sigaction(signo, &act, NULL);
		pgnw_trampolined[signo] = true;
	}
}

/*
 * Put back any handler that something in the process replaced.  JS-level
 * refusals (process.on('SIGHUP'), child_process) are the first line; this
 * catches whatever got past them (native addons).  Called by the watchdog,
 * so a replacement is undone within 100 ms even while JS is busy;
 * sigaction() is thread-safe.  The main thread logs what was restored.
 */
static std::atomic<uint64_t> pgnw_restored_signals{0};

static void
pgnw_restore_signal_handlers(void)
{
	for (int signo = 1; signo < NSIG && signo < 64; signo++)
	{
		struct sigaction act;

		if (!pgnw_trampolined[signo] || sigaction(signo, NULL, &act) != 0)
			continue;
		if (act.sa_handler == pgnw_signal_trampoline && !(act.sa_flags & SA_SIGINFO))
			continue;
		act = pgnw_pg_actions[signo];
		act.sa_handler = pgnw_signal_trampoline;
		sigaction(signo, &act, NULL);
		pgnw_signal_stats.restored++;
		pgnw_restored_signals.fetch_or(UINT64_C(1) << signo);
	}
}

/* main thread: report handlers the watchdog restored */
static void
pgnw_report_restored_signals(void)
{
	uint64_t	restored = pgnw_restored_signals.exchange(0);

	for (int signo = 1; restored != 0 && signo < 64; signo++)
	{
		if (!(restored & (UINT64_C(1) << signo)))
			continue;
		HOLD_INTERRUPTS();
		ereport(WARNING,
				(errmsg("node worker \"%s\": the handler for signal %d was replaced and has been restored",
						pgnw_worker_info.name, signo)));
		RESUME_INTERRUPTS();
	}
}

/*
 * libuv sets O_NONBLOCK on fds 1 and 2 when JS touches process.stdout.  Their
 * open file description is shared with the postmaster and the syslogger pipe,
 * so give this process its own: opening /proc/self/fd/N of a pipe or a file
 * makes a new open file description.
 */
static void
pgnw_private_stdio(void)
{
	for (int fd = 1; fd <= 2; fd++)
	{
		char		path[64];
		int			newfd;
		int			flags = fcntl(fd, F_GETFL);

		if (flags < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		newfd = open(path, (flags & O_ACCMODE) | (flags & O_APPEND) | O_CLOEXEC);
		if (newfd < 0)
			continue;
		dup2(newfd, fd);
		close(newfd);
	}
}

/*
 * The process must never run the static destructors of libnode or of any
 * addon: they abort ("Disposing the isolate that is entered by a thread") or
 * crash on a live isolate, and a worker killed by a signal makes the
 * postmaster reset the whole cluster.  exit() runs atexit handlers in reverse
 * order of registration, so the handler that skips them is registered at the
 * last moment: from an on_proc_exit callback, i.e. inside proc_exit() after
 * PostgreSQL's own cleanup has run and just before it calls exit().
 */
static void
pgnw_exit_without_destructors(void)
{
	_exit(pgnw_saved_exit_code == 0 ? 0 : 1);
}

static void
pgnw_arm_exit(int code, Datum arg)
{
	pgnw_saved_exit_code = code;
	atexit(pgnw_exit_without_destructors);
}

/* Runs on the main thread from inside V8 (node::RequestInterrupt). */
static void
pgnw_service_interrupts(void *arg)
{
	pgnw_interrupt_requested = false;
	if (!InterruptPending)
		return;

	MemoryContext oldcontext = CurrentMemoryContext;

	pgnw_in_postgres = 1;
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		/* a cancel with no statement running has nothing to cancel */
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
			ereport(LOG,
					(errmsg("node worker \"%s\": error while servicing interrupts: %s",
							pgnw_worker_info.name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgnw_in_postgres = 0;
}

/*
 * Where Node and V8 give up on purpose: a failed CHECK (node::Assert,
 * V8_Fatal) and their abort functions.  Node's CHECKs include "an allocation
 * failed": a big string turned into a C string (a file name, a hash input)
 * when memory has run out ends in node::Realloc's CHECK.  Looked up in
 * libnode at start (null where a version lacks one).
 */
static const char *const pgnw_give_up_names[] = {
	"_ZN4node5AbortEv",			/* node::Abort() */
	"_ZN4node6AssertERKNS_13AssertionInfoE",	/* node::Assert(const AssertionInfo &) */
	"_Z8V8_FatalPKcz",			/* V8_Fatal(const char *, ...) */
	"_ZN2v84base2OS5AbortEv",	/* v8::base::OS::Abort() */
};
static void *pgnw_give_up_fns[lengthof(pgnw_give_up_names)];

static void
pgnw_find_give_up_functions(void)
{
	Dl_info		info;
	void	   *frames[2];
	void	   *libnode = nullptr;

	if (dladdr(reinterpret_cast<void *>(&node::FreeEnvironment), &info) && info.dli_fname)
		libnode = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	for (size_t i = 0; i < lengthof(pgnw_give_up_names); i++)
		pgnw_give_up_fns[i] = dlsym(libnode ? libnode : RTLD_DEFAULT, pgnw_give_up_names[i]);
	/* backtrace() loads the unwinder on first use: not in a signal handler */
	(void) backtrace(frames, lengthof(frames));
}

/* Is one of the give-up functions on the stack of this (signal handler's) thread? */
static bool
pgnw_gave_up_on_purpose(void)
{
	void	   *frames[48];
	int			n = backtrace(frames, lengthof(frames));

	for (int i = 0; i < n; i++)
	{
		Dl_info		info;

		/* a return address may lie just past a call to a noreturn function */
		if (!dladdr(static_cast<char *>(frames[i]) - 1, &info) || info.dli_saddr == nullptr)
			continue;
		for (void *fn : pgnw_give_up_fns)
			if (fn != nullptr && info.dli_saddr == fn)
				return true;
	}
	return false;
}

/*
 * Node or V8 gave up on the main thread, outside PostgreSQL: PostgreSQL's
 * state is intact (it runs only inside the guarded calls), so leave as from
 * V8's fatal error handler, with exit 1, instead of dying by the signal,
 * which would reset the cluster.  If leaving hangs (the abort came from
 * inside malloc, say), the watchdog aborts after all, 10 s later.
 */
static void
pgnw_leave_after_give_up(int signo)
{
	static char message[128];

	signal(SIGABRT, SIG_DFL);
	signal(SIGTRAP, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	pgnw_main_gave_up_at_ms = pgnw_now_ms();
	HOLD_INTERRUPTS();
	snprintf(message, sizeof(message),
			 "Node.js stopped on an internal check (signal %d); see the server log", signo);
	pgnw_worker_set_error(NULL, message);
	ereport(LOG,
			(errmsg("node worker \"%s\": Node.js stopped on an internal check (signal %d), stopping",
					pgnw_worker_info.name, signo),
			 errdetail("Its message is above. A failed allocation when memory ran out (node::Realloc) ends this way."),
			 errhint("Lower the worker's memory use (big strings passed to Node APIs are copied), or raise node_worker.buffer_limit_mb and the server's data segment limit.")));
	proc_exit(1);
}

/*
 * A thread other than the main one aborted: a worker_threads isolate ran out
 * of memory (Node prints "FATAL ERROR" and calls abort()), or a V8 check
 * failed on a helper thread.  Only that thread's JavaScript is lost;
 * PostgreSQL runs on the main thread alone, and its state is intact.  So the
 * thread parks here and the watchdog has the main thread leave cleanly (exit
 * 1), instead of the process dying by a signal, which would reset the whole
 * cluster.  On the main thread see pgnw_leave_after_give_up; otherwise the
 * signal takes its default course.
 */
static void
pgnw_handle_thread_abort(int signo)
{
	static const char msg[] =
		"pg_node_worker: a thread of this worker aborted; the worker stops and exits with code 1\n";

	if ((pid_t) syscall(SYS_gettid) == MyProcPid)
	{
		if (!pgnw_in_postgres && pgnw_main_gave_up_at_ms.load() == 0 && pgnw_gave_up_on_purpose())
			pgnw_leave_after_give_up(signo);
		/* abort() raises again; a trap instruction runs again: both now fatal */
		signal(signo, SIG_DFL);
		return;
	}
	if (pgnw_thread_abort_signal == 0)
	{
		pgnw_thread_abort_signal = signo;
		pgnw_thread_abort_at_ms = pgnw_now_ms();
		if (write(2, msg, sizeof(msg) - 1) < 0)
		{
			/* nothing to do: the server log is all there is */
		}
	}
	SetLatch(MyLatch);
	for (;;)
		pause();
}

static void
pgnw_install_thread_abort_handlers(void)
{
	static const int signals[] = {SIGABRT, SIGTRAP, SIGILL};

	for (int signo : signals)
	{
		struct sigaction act;

		memset(&act, 0, sizeof(act));
		act.sa_handler = pgnw_handle_thread_abort;
		sigemptyset(&act.sa_mask);
		sigaction(signo, &act, NULL);
	}
}

/*
 * Watchdog: stop JS wherever it is (a runaway loop included), once, and make
 * the main thread leave with exit code 1; if it is inside a SQL statement,
 * cancel that too.
 */
static void
pgnw_stop_js(bool cancel_sql)
{
	if (pgnw_force_stopped.exchange(true))
		return;
	pgnw_exit_code = 1;
	pgnw_exit_requested = true;
	node::Stop(pgnw_env);
	if (cancel_sql && pgnw_in_postgres)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
}

/*
 * The watchdog thread.  It never calls PostgreSQL: it reads flags set by
 * signal handlers and asks the main thread to act.
 *  - PostgreSQL interrupts (ProcSignalBarrier for DROP DATABASE, cancel, ...)
 *    pending while JS runs: interrupt V8 and run CHECK_FOR_INTERRUPTS there.
 *  - After SIGTERM plus node_worker.shutdown_grace_ms: stop JS (runaway loop)
 *    and cancel any statement still running.
 */
static void *
pgnw_watchdog(void *arg)
{
	for (unsigned long tick = 0;; tick++)
	{
		usleep(20 * 1000);

		if (tick % 5 == 0)
		{
			pgnw_restore_signal_handlers();
			if (pgnw_restored_signals.load() != 0)
				SetLatch(MyLatch);
		}

		if (InterruptPending && !pgnw_in_postgres && !pgnw_interrupt_requested.exchange(true))
			node::RequestInterrupt(pgnw_env, pgnw_service_interrupts, nullptr);

		/*
		 * Postmaster gone while JS is busy: the main thread only notices in
		 * its wait, so stop JS now (the wait then sees the death and exits).
		 */
		if (getppid() != PostmasterPid)
			pgnw_stop_js(false);

		/* out of memory, or a thread aborted: stop JS; the main thread leaves cleanly */
		if (pgnw_cxx_out_of_memory || pgnw_oom_off_main_thread || pgnw_thread_abort_signal != 0)
			pgnw_stop_js(true);

		/*
		 * The main thread could not leave (it waits for the parked thread,
		 * inside V8): then the crash it would have been.
		 */
		int64_t		aborted_at = pgnw_thread_abort_at_ms.load();
		int64_t		gave_up_at = pgnw_main_gave_up_at_ms.load();

		if ((aborted_at != 0 && pgnw_now_ms() - aborted_at > 10000) ||
			(gave_up_at != 0 && pgnw_now_ms() - gave_up_at > 10000))
		{
			signal(SIGABRT, SIG_DFL);
			abort();
		}

		int64_t		since = pgnw_sigterm_at_ms.load();

		if (since != 0 && pgnw_now_ms() - since >= pgnw_shutdown_grace_ms &&
			!pgnw_force_stopped.load())
		{
			pgnw_grace_expired = true;
			pgnw_stop_js(true);
		}
	}
	return nullptr;
}

extern "C" void
pgnw_request_exit(int code)
{
	/* never an exit code the postmaster treats as a crash */
	pgnw_exit_code = code == 0 ? 0 : 1;
	pgnw_exit_requested = true;
	if (pgnw_env)
		node::Stop(pgnw_env);
}

/*
 * ---- Memory outside the JavaScript heap ----
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
 */
#define PGNW_MB ((size_t) 1024 * 1024)
/* set aside under a data-segment limit: GC work space, Node, PostgreSQL */
#define PGNW_DATA_RESERVE_MB 96
/* what a Node environment and the runtime add to the data segment */
#define PGNW_NODE_START_MB 64
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
	friend typename Tag::type pgnw_member(Tag)
	{
		return Member;
	}
};

template struct PgnwExposeMember<PgnwGetImplTag, &node::ArrayBufferAllocator::GetImpl>;

/* Node's allocator, with a budget in front of it */
class PgnwBufferAllocator final : public node::ArrayBufferAllocator
{
public:
	std::atomic<size_t> used{0};
	std::atomic<size_t> peak{0};
	std::atomic<size_t> limit{SIZE_MAX};
	std::atomic<uint64_t> refused{0};

	void	   *Allocate(size_t length) override
	{
		return Take(length) ? Keep(length, inner->Allocate(length)) : nullptr;
	}

	void	   *AllocateUninitialized(size_t length) override
	{
		return Take(length) ? Keep(length, inner->AllocateUninitialized(length)) : nullptr;
	}

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

	void		Free(void *data, size_t length) override
	{
		inner->Free(data, length);
		used.fetch_sub(length);
	}

private:
	std::unique_ptr<node::ArrayBufferAllocator> inner = node::ArrayBufferAllocator::Create();

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

/* heap-allocated, never freed: no static destructor (see pgnw_exit_without_destructors) */
static PgnwBufferAllocator &pgnw_buffers = *new PgnwBufferAllocator();
static void *pgnw_new_reserve = nullptr;
/* the heap limit in effect (MB) and whether a data-segment limit lowered it */
static int	pgnw_heap_limit_in_effect;

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

extern "C" void
pgnw_memory_usage(PgnwMemoryUsage *out)
{
	size_t		limit = pgnw_buffers.limit.load();

	out->buffers = (double) pgnw_buffers.used.load();
	out->buffers_peak = (double) pgnw_buffers.peak.load();
	out->buffer_limit = limit == SIZE_MAX ? -1 : (double) limit;
	out->refused = (double) pgnw_buffers.refused.load();
	out->heap_limit = (double) pgnw_heap_limit_in_effect * PGNW_MB;
}

/* the data segment's size now (VmData), in bytes; 0 if unknown */
static size_t
pgnw_data_segment_bytes(void)
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
pgnw_data_segment_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_DATA, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	return (size_t) rl.rlim_cur;
}

/* what the JS heap may take of the data segment: old space and the rest */
static size_t
pgnw_heap_footprint(int heap_mb)
{
	return ((size_t) heap_mb * 5 / 4 + 16) * PGNW_MB;
}

/*
 * Before Node starts: the heap limit.  Under a data-segment limit the heap
 * gets at most half of what is left after start-up and the reserve, so that
 * a full heap leaves room for ArrayBuffers and the other way round.
 */
static int
pgnw_plan_heap(int heap_mb)
{
	size_t		limit = pgnw_data_segment_limit();
	size_t		used = pgnw_data_segment_bytes();
	size_t		set_aside = used + (PGNW_NODE_START_MB + PGNW_DATA_RESERVE_MB) * PGNW_MB;
	int			fits;

	if (limit == SIZE_MAX)
		return heap_mb;
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
	return fits;
}

/*
 * After Node started, before user code: the ArrayBuffer budget, and the
 * reserve for C++ allocations.
 */
static void
pgnw_plan_buffers(int buffer_mb)
{
	size_t		budget = buffer_mb < 0 ? SIZE_MAX : (size_t) buffer_mb * PGNW_MB;
	size_t		limit = pgnw_data_segment_limit();

	/* malloc'd, never touched: costs address space, not memory */
	pgnw_new_reserve = malloc(PGNW_NEW_RESERVE_MB * PGNW_MB);

	if (limit != SIZE_MAX)
	{
		size_t		taken = pgnw_data_segment_bytes() +
			pgnw_heap_footprint(pgnw_heap_limit_in_effect) +
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
	pgnw_buffers.limit = budget;
}

static void pgnw_v8_oom(const char *location, bool is_heap_oom);
static void pgnw_v8_fatal(const char *location, const char *message);

/*
 * operator new failed (any thread): give back the reserve so that this
 * allocation and the way out succeed, and have the worker leave.  A second
 * failure finds no reserve.  Then it must not throw: libnode is built without
 * exceptions, so std::bad_alloc would end in std::terminate and SIGABRT, and
 * a worker killed by a signal resets the cluster (a few 100 MB URLs with the
 * ArrayBuffer budget used up did that).  So it leaves as V8's out-of-memory
 * handler does: the main thread with exit 1, another thread parks.
 */
static void
pgnw_new_handler(void)
{
	void	   *reserve = __atomic_exchange_n(&pgnw_new_reserve, nullptr, __ATOMIC_SEQ_CST);

	if (reserve == nullptr)
		pgnw_v8_oom("operator new", false);
	free(reserve);
	pgnw_cxx_out_of_memory = true;
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
pgnw_terminate(void)
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

/* The main thread says that the watchdog had to stop JS at shutdown, once. */
static void
pgnw_report_grace_expired(void)
{
	static bool reported = false;

	if (reported || !pgnw_grace_expired)
		return;
	reported = true;
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\" did not stop within node_worker.shutdown_grace_ms (%d ms): its JavaScript was stopped",
					pgnw_worker_info.name, pgnw_shutdown_grace_ms),
			 errhint("End main() when ctx.signal aborts; a statement cancelled because the worker is shutting down fails with SQLSTATE 57014, which should not be swallowed.")));
	RESUME_INTERRUPTS();
}

/* The main thread says why the worker ran out of memory, once. */
static void
pgnw_report_out_of_memory(void)
{
	static bool reported = false;

	if (!reported && pgnw_thread_abort_signal != 0)
	{
		reported = true;
		pgnw_worker_set_error(NULL, psprintf("a thread other than the main one aborted (signal %d); see the server log",
											 (int) pgnw_thread_abort_signal));
		HOLD_INTERRUPTS();
		ereport(LOG,
				(errmsg("node worker \"%s\": a thread other than the main one aborted (signal %d), stopping",
						pgnw_worker_info.name, (int) pgnw_thread_abort_signal),
				 errdetail("A worker_threads Worker that ran out of memory ends this way; its output is above."),
				 errhint("Limit the memory of worker threads (resourceLimits), or keep large data on the main thread, where node_worker.buffer_limit_mb applies.")));
		RESUME_INTERRUPTS();
		return;
	}
	if (reported || !(pgnw_cxx_out_of_memory || pgnw_oom_off_main_thread))
		return;
	reported = true;
	pgnw_worker_set_error("53200", "ran out of memory (a memory allocation inside Node.js failed)");
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\" ran out of memory, stopping", pgnw_worker_info.name),
			 errdetail("A memory allocation inside Node.js failed; ArrayBuffers held %zu MB (limit %s).",
					   pgnw_buffers.used.load() / PGNW_MB,
					   pgnw_buffers.limit.load() == SIZE_MAX ? "none" :
					   psprintf("%zu MB", pgnw_buffers.limit.load() / PGNW_MB)),
			 errhint("Lower the worker's memory use, or raise node_worker.buffer_limit_mb and the server's data segment limit.")));
	RESUME_INTERRUPTS();
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
		pgnw_oom_off_main_thread = true;
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
				 errdetail("ArrayBuffers held %zu MB.", pgnw_buffers.used.load() / PGNW_MB),
				 errhint("Lower the worker's memory use, or raise node_worker.buffer_limit_mb and the server's data segment limit.")));
	proc_exit(1);
}

static void
pgnw_v8_fatal(const char *location, const char *message)
{
	HOLD_INTERRUPTS();
	ereport(LOG,
			(errmsg("node worker \"%s\": fatal JavaScript engine error in %s: %s",
					pgnw_worker_info.name, location ? location : "?", message ? message : "?")));
	proc_exit(1);
}

static size_t
pgnw_near_heap_limit(void *data, size_t current_limit, size_t initial_limit)
{
	/*
	 * Let the isolate finish the current step, then leave cleanly.  This runs
	 * inside V8's GC: no interrupt processing (no longjmp) from the ereport.
	 */
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

static void
pgnw_threadpool_noop(uv_work_t *req)
{
}

static void
pgnw_threadpool_done(uv_work_t *req, int status)
{
	*(bool *) req->data = true;
}

/* Call the runtime's dispatch function with an event name. */
static void
pgnw_dispatch(v8::Isolate *isolate, v8::Local<v8::Context> context,
			  v8::Global<v8::Function> &dispatch, const char *event)
{
	v8::HandleScope scope(isolate);
	v8::Local<v8::Value> argv[1] = {
		v8::String::NewFromUtf8(isolate, event).ToLocalChecked()
	};

	(void) node::MakeCallback(isolate, context->Global(), dispatch.Get(isolate),
							  1, argv, {0, 0});
}

/*
 * The event loop: one wait on the latch, postmaster death and libuv's
 * backend fd, for as long as libuv's next timer allows.  Nothing in the loop
 * spins: with nothing alive in libuv the wait has no timeout.
 */
static void
pgnw_run_loop(v8::Isolate *isolate, v8::Local<v8::Context> context, uv_loop_t *loop,
			  v8::Global<v8::Function> &dispatch)
{
	WaitEventSet *set;
	bool		sigterm_dispatched = false;
	bool		latch_seen = true;	/* messages may have arrived before the loop */

	set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_POSTMASTER_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, uv_backend_fd(loop), NULL, NULL);

	while (!pgnw_exit_requested)
	{
		bool		dispatched = false;

		uv_run(loop, UV_RUN_NOWAIT);
		if (pgnw_exit_requested)
			break;

		if (pgnw_got_sigterm && !sigterm_dispatched)
		{
			sigterm_dispatched = true;
			pgnw_dispatch(isolate, context, dispatch, "sigterm");
			dispatched = true;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			pgnw_in_postgres = 1;
			PG_TRY();
			{
				ProcessConfigFile(PGC_SIGHUP);
			}
			PG_CATCH();
			{
				EmitErrorReport();
				FlushErrorState();
			}
			PG_END_TRY();
			pgnw_in_postgres = 0;
			pgnw_dispatch(isolate, context, dispatch, "reload");
			dispatched = true;
		}
		if (InterruptPending)
			pgnw_service_interrupts(nullptr);
		/*
		 * call(), notify(), wake() from SQL set our latch after queueing:
		 * JS takes what is deliverable.  Only after a latch wake-up: a notify
		 * whose transaction is still committing stays queued until its
		 * committer sets the latch again.
		 */
		if (latch_seen && pgnw_worker_has_messages(pgnw_worker_slot()))
			pgnw_dispatch(isolate, context, dispatch, "messages");
		latch_seen = false;

		pgnw_report_restored_signals();
		pgnw_report_out_of_memory();
		if (pgnw_exit_requested)
			break;

		long		timeout;

		if (dispatched)
			timeout = 0;
		else if (!uv_loop_alive(loop))
			timeout = -1;
		else
			timeout = uv_backend_timeout(loop);

		WaitEvent	events[3];
		int			n = WaitEventSetWait(set, timeout, events, 3, PG_WAIT_EXTENSION);

		for (int i = 0; i < n; i++)
		{
			if (events[i].events & WL_POSTMASTER_DEATH)
			{
				/* nothing left to serve; leave without running more JS */
				proc_exit(1);
			}
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				latch_seen = true;
			}
		}
	}
	FreeWaitEventSet(set);
}

static std::string
pgnw_js_string(const char *s)
{
	std::string out = "\"";

	for (const char *p = s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			out += '\\';
		out += *p;
	}
	return out + "\"";
}

/*
 * Start Node and run the worker.  Returns the exit code (0 or 1).
 */
static int
pgnw_run_node(const PgnwManifest *manifest)
{
	sigset_t	all_blocked,
				saved_mask;
	char		rtdir[MAXPGPATH];
	int			exit_code;

	snprintf(rtdir, sizeof(rtdir), "%s/pg_node_worker", pkglib_path);

	/*
	 * Every thread Node, V8 and libuv create at start-up inherits this mask,
	 * so no PostgreSQL signal handler can run on them.
	 */
	sigfillset(&all_blocked);
	pthread_sigmask(SIG_SETMASK, &all_blocked, &saved_mask);

	pgnw_private_stdio();

	std::vector<std::string> args = {"postgres"};
	pgnw_heap_limit_in_effect =
		pgnw_plan_heap(manifest->heap_limit_mb > 0 ? manifest->heap_limit_mb : pgnw_heap_limit_mb);
	std::string heap_flag = "--max-old-space-size=" + std::to_string(pgnw_heap_limit_in_effect);
	std::vector<std::string> exec_args = {heap_flag};

	std::vector<std::string> init_args = {"postgres", heap_flag};
	std::unique_ptr<node::InitializationResult> result =
		node::InitializeOncePerProcess(init_args, {
			node::ProcessInitializationFlags::kNoInitializeV8,
			node::ProcessInitializationFlags::kNoInitializeNodeV8Platform,
			node::ProcessInitializationFlags::kNoDefaultSignalHandling,
			node::ProcessInitializationFlags::kNoStdioInitialization,
			node::ProcessInitializationFlags::kDisableNodeOptionsEnv,
			node::ProcessInitializationFlags::kNoAdjustResourceLimits,
			node::ProcessInitializationFlags::kNoUseLargePages,
			node::ProcessInitializationFlags::kNoPrintHelpOrVersionOutput,
			node::ProcessInitializationFlags::kNoInitOpenSSL,
		});
	if (result->early_return() || !result->errors().empty())
	{
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
		for (const std::string &err : result->errors())
			ereport(LOG, (errmsg("node worker \"%s\": %s", manifest->name, err.c_str())));
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize the Node.js runtime")));
	}

	std::unique_ptr<node::MultiIsolatePlatform> platform =
		node::MultiIsolatePlatform::Create(2);

	v8::V8::InitializePlatform(platform.get());
	v8::V8::Initialize();

	on_proc_exit(pgnw_arm_exit, (Datum) 0);

	/*
	 * Node's CommonEnvironmentSetup, by hand, for one difference: the
	 * isolate's ArrayBuffer allocator is pgnw_buffers (Node's own, budgeted).
	 */
	static uv_loop_t loop;

	if (uv_loop_init(&loop) != 0)
	{
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize the event loop")));
	}

	v8::Isolate::CreateParams params;

	params.array_buffer_allocator = &pgnw_buffers;
	node::SetIsolateCreateParamsForNode(&params);

	v8::Isolate *isolate = v8::Isolate::Allocate();

	platform->RegisterIsolate(isolate, &loop);
	v8::Isolate::Initialize(isolate, params);
	node::SetIsolateUpForNode(isolate);
	/* before anything can run out of memory */
	isolate->SetOOMErrorHandler(pgnw_v8_oom);
	isolate->SetFatalErrorHandler(pgnw_v8_fatal);
	std::set_new_handler(pgnw_new_handler);
	std::set_terminate(pgnw_terminate);

	pgnw_isolate = isolate;

	{
		v8::Locker	locker(isolate);
		v8::Isolate::Scope isolate_scope(isolate);
		v8::HandleScope handle_scope(isolate);
		node::IsolateData *isolate_data =
			node::CreateIsolateData(isolate, &loop, platform.get(), &pgnw_buffers);
		v8::Local<v8::Context> context = node::NewContext(isolate);
		node::Environment *env = nullptr;

		if (!context.IsEmpty())
		{
			v8::Context::Scope context_scope(context);

			env = node::CreateEnvironment(
				isolate_data, context, args, exec_args,
				static_cast<node::EnvironmentFlags::Flags>(
					node::EnvironmentFlags::kOwnsProcessState |
					node::EnvironmentFlags::kNoCreateInspector));
		}
		if (env == nullptr)
		{
			pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("could not create the Node.js environment")));
		}
		pgnw_env = env;

		v8::Context::Scope context_scope(context);
		v8::Global<v8::Function> dispatch;

		pgnw_plan_buffers(manifest->buffer_limit_mb != 0 ? manifest->buffer_limit_mb : pgnw_buffer_limit_mb);
		isolate->AddNearHeapLimitCallback(pgnw_near_heap_limit, nullptr);

		node::SetProcessExitHandler(env, [](node::Environment *e, int code) {
			pgnw_request_exit(code);
		});

		/*
		 * Pre-create libuv's threadpool while every signal is blocked: its
		 * threads are made on first use.
		 */
		{
			uv_work_t	req;
			bool		done = false;

			req.data = &done;
			uv_queue_work(&loop, &req, pgnw_threadpool_noop,
						  pgnw_threadpool_done);
			while (!done)
				uv_run(&loop, UV_RUN_ONCE);
		}

		pthread_t	watchdog;

		if (pthread_create(&watchdog, NULL, pgnw_watchdog, NULL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not start the watchdog thread: %m")));
		pthread_detach(watchdog);

		/* Threads exist; the main thread takes signals again. */
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
		pgnw_install_trampolines();
		pgnw_find_give_up_functions();
		pgnw_install_thread_abort_handlers();

		std::string bootstrap =
			"const rtdir = " + pgnw_js_string(rtdir) + ";\n"
			"const req = require('module').createRequire(rtdir + '/');\n"
			"globalThis.require = req;\n"
			"req(rtdir + '/runtime.js').start(" +
			pgnw_js_string(rtdir) + ", " + pgnw_js_string(manifest->bundle_path) + ");\n";

		v8::TryCatch try_catch(isolate);

		if (node::LoadEnvironment(env, bootstrap.c_str()).IsEmpty() && !pgnw_exit_requested)
		{
			v8::String::Utf8Value msg(isolate, try_catch.Exception());

			ereport(LOG,
					(errmsg("node worker \"%s\" failed to start: %s",
							manifest->name, *msg ? *msg : "unknown error")));
			pgnw_request_exit(1);
		}

		if (!pgnw_exit_requested)
		{
			v8::Local<v8::String> key =
				v8::String::NewFromUtf8Literal(isolate, "__pgnwDispatch");
			v8::Local<v8::Value> fn;

			if (context->Global()->Get(context, key).ToLocal(&fn) && fn->IsFunction())
			{
				dispatch.Reset(isolate, fn.As<v8::Function>());
				if (context->Global()->Delete(context, key).IsNothing())
					ereport(DEBUG1, (errmsg("could not remove the dispatch function from the global object")));
				pgnw_run_loop(isolate, context, &loop, dispatch);
			}
			else
			{
				ereport(LOG,
						(errmsg("node worker \"%s\": the runtime did not register its dispatch function",
								manifest->name)));
				pgnw_request_exit(1);
			}
		}
		pgnw_report_out_of_memory();
		pgnw_report_grace_expired();
		exit_code = pgnw_exit_code;
	}

	/*
	 * A worker told to stop that returned cleanly still exits 1, as C
	 * workers do, so pg_terminate_backend does not unregister it forever;
	 * one stopped with node_worker.stop() exits 0 and stays stopped.
	 */
	if (pgnw_worker_stop_requested())
		exit_code = 0;			/* node_worker.stop(): stay stopped */
	else if (pgnw_got_sigterm && exit_code == 0)
		exit_code = 1;
	return exit_code;
}

extern "C" PGDLLEXPORT void pg_node_worker_main(Datum main_arg);

static void
pgnw_connect_context(void *arg)
{
	errcontext("node worker \"%s\" connecting to its database", (const char *) arg);
}

void
pg_node_worker_main(Datum main_arg)
{
	char		name[BGW_EXTRALEN];
	char		path[MAXPGPATH];
	char	   *reason = NULL;
	char	   *args = NULL;
	PgnwManifest manifest;

	pgnw_main_thread = pthread_self();
	strlcpy(name, MyBgworkerEntry->bgw_extra, sizeof(name));

	pqsignal(SIGTERM, pgnw_handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (!pgnw_valid_worker_name(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid node worker name \"%s\"", name)));
	pgnw_manifest_path(name, path);
	if (!pgnw_read_manifest(path, &manifest, &reason))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not load node worker manifest \"%s\": %s", path, reason)));

	/*
	 * Claim the shared slot (node_worker.workers); a worker in a crash loop
	 * backs off here, one that failed too often or was stopped exits 0 so
	 * that the postmaster does not start it again.
	 */
	if (!pgnw_worker_begin(DatumGetInt32(main_arg), name, &manifest,
						   pgnw_sigterm_pending, &args))
		proc_exit(0);
	pgnw_worker_info.args = args;
	pgnw_verify_bundle(&manifest);

	strlcpy(pgnw_worker_info.name, manifest.name, sizeof(pgnw_worker_info.name));
	if (manifest.start_time != BgWorkerStart_PostmasterStart)
	{
		char		why[256];
		ErrorContextCallback context;

		/* a FATAL here (unknown database or role) names the worker, and the view says why */
		snprintf(why, sizeof(why), "could not connect to database \"%s\" as role \"%s\" (see the server log)",
				 manifest.database, manifest.role[0] ? manifest.role : "(bootstrap superuser)");
		pgnw_worker_set_error(NULL, why);
		context.callback = pgnw_connect_context;
		context.arg = manifest.name;
		context.previous = error_context_stack;
		error_context_stack = &context;
		pgnw_worker_connect(&manifest);
		error_context_stack = context.previous;
		pgnw_worker_info.connected = true;
		strlcpy(pgnw_worker_info.database, manifest.database, sizeof(pgnw_worker_info.database));
		strlcpy(pgnw_worker_info.role, manifest.role, sizeof(pgnw_worker_info.role));
	}
	pgnw_worker_info.started_at_ms =
		(double) (MyStartTimestamp / 1000) +
		(double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) * 1000.0;
	pgnw_worker_info.fork_to_connected_ms =
		(double) (GetCurrentTimestamp() - MyStartTimestamp) / 1000.0;

	SetConfigOption("application_name", manifest.name, PGC_USERSET, PGC_S_SESSION);
	pgstat_report_activity(STATE_IDLE, NULL);

	proc_exit(pgnw_run_node(&manifest));
}
