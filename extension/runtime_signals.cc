/*-------------------------------------------------------------------------
 *
 * runtime_signals.cc
 *		Signals in a worker process that also runs Node's threads: SIGTERM,
 *		the trampolines that keep PostgreSQL's handlers on the main thread,
 *		restoring handlers that something replaced, and aborts (SIGABRT,
 *		SIGTRAP, SIGILL) that must not turn into a cluster reset.
 *
 * Node starts with every signal blocked, so the threads it makes at
 * start-up never take one; threads made later (worker_threads, threadpool
 * growth) inherit an unblocked mask, and the kernel may pick one of them
 * for a process-directed signal.  PostgreSQL's handlers must only ever run
 * on the main thread, so each is wrapped by a trampoline that re-sends a
 * signal that landed elsewhere to the main thread.
 *
 * An abort on another thread (a worker_threads isolate out of memory, a V8
 * check on a helper thread) parks that thread: PostgreSQL's state, on the
 * main thread, is intact, and the watchdog makes the main thread leave with
 * exit 1.  An abort on the main thread outside PostgreSQL whose stack holds
 * one of Node's or V8's give-up functions leaves through proc_exit(1) from
 * the handler.  Any other abort keeps its default action.
 *
 * Limits: handlers installed with SA_SIGINFO are not wrapped (PostgreSQL
 * installs none); restoring covers signals 1 to 63.
 *
 * extension/runtime_signals.cc
 *
 *-------------------------------------------------------------------------
 */
#include <node.h>

#include <atomic>

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_process.h"
#include "runtime_signals.h"

extern "C"
{
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"

#include "pg_node_worker.h"
#include "runtime.h"
}

static_assert(std::atomic<int64_t>::is_always_lock_free, "set from a signal handler");

/* ---- state shared with the bridge (see runtime.h) ---- */
extern "C"
{
	volatile sig_atomic_t pgnw_shutdown_requested = 0;
	PgnwSignalStats pgnw_signal_stats;
}

static volatile sig_atomic_t pgnw_signals_got_sigterm = 0;
static std::atomic<int64_t> pgnw_signals_sigterm_at_ms{0};

/* the signal (SIGABRT, SIGTRAP, SIGILL) with which a thread other than main aborted, or 0 */
static volatile sig_atomic_t pgnw_signals_thread_abort = 0;
static std::atomic<int64_t> pgnw_signals_thread_abort_at_ms{0};
/* when the main thread began to leave after Node or V8 gave up on it, or 0 */
static std::atomic<int64_t> pgnw_signals_gave_up_at_ms{0};

/* Signals PostgreSQL installed handlers for, and those handlers. */
static struct sigaction pgnw_signals_pg_actions[NSIG];
static bool pgnw_signals_trampolined[NSIG];

/* handlers the watchdog restored, one bit per signal, for the main thread to report */
static std::atomic<uint64_t> pgnw_signals_restored{0};

/*
 * Where Node and V8 give up on purpose: a failed CHECK (node::Assert,
 * V8_Fatal) and their abort functions.  Node's CHECKs include "an allocation
 * failed": a big string turned into a C string (a file name, a hash input)
 * when memory has run out ends in node::Realloc's CHECK.  Looked up in
 * libnode at start (null where a version lacks one).
 */
static const char *const pgnw_signals_give_up_names[] = {
	"_ZN4node5AbortEv",			/* node::Abort() */
	"_ZN4node6AssertERKNS_13AssertionInfoE",	/* node::Assert(const AssertionInfo &) */
	"_Z8V8_FatalPKcz",			/* V8_Fatal(const char *, ...) */
	"_ZN2v84base2OS5AbortEv",	/* v8::base::OS::Abort() */
};
static void *pgnw_signals_give_up_fns[lengthof(pgnw_signals_give_up_names)];


/* ---------------------------------------------------------------- SIGTERM */

/*
 * SIGTERM: server stop or pg_terminate_backend.  Only flags and the latch
 * here.  If the main thread is inside a SQL statement, cancel it so that a
 * long statement (pg_sleep) does not hold up the shutdown: JS then sees a
 * PgError 57014 and ctx.signal already aborted.
 */
static void
pgnw_sig_term(SIGNAL_ARGS)
{
	int			save_errno = errno;

	pgnw_signals_got_sigterm = 1;
	pgnw_shutdown_requested = 1;
	/* starts the grace period even if JS never yields to the event loop */
	if (pgnw_signals_sigterm_at_ms.load() == 0)
		pgnw_signals_sigterm_at_ms = pgnw_sig_now_ms();
	if (pgnw_in_postgres)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Has SIGTERM arrived? */
bool
pgnw_sig_term_pending(void)
{
	return pgnw_signals_got_sigterm != 0;
}

/* When SIGTERM arrived (pgnw_sig_now_ms()), or 0. */
int64_t
pgnw_sig_term_at_ms(void)
{
	return pgnw_signals_sigterm_at_ms.load();
}

/* At start-up: SIGTERM and SIGHUP handlers of a node worker, signals unblocked. */
void
pgnw_signals_install_postgres_handlers(void)
{
	pqsignal(SIGTERM, pgnw_sig_term);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
}


/* ------------------------------------------------------------ trampolines */

/*
 * Every PostgreSQL signal handler is wrapped by this trampoline.  Threads
 * created after start-up (worker_threads, threadpool growth) inherit an
 * unblocked mask, so the kernel may pick one of them for a process-directed
 * signal; PostgreSQL's handlers must only ever run on the main thread, so
 * the signal is re-sent to it.
 */
static void
pgnw_sig_trampoline(int signo)
{
	if ((pid_t) syscall(SYS_gettid) != MyProcPid)
	{
		pgnw_signal_stats.forwarded++;
		syscall(SYS_tgkill, MyProcPid, MyProcPid, signo);
		return;
	}
	pgnw_signal_stats.on_main++;
	pgnw_signals_pg_actions[signo].sa_handler(signo);
}

/* Wrap every handler PostgreSQL installed in the trampoline. */
static void
pgnw_signals_install_trampolines(void)
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
		pgnw_signals_pg_actions[signo] = act;
		act.sa_handler = pgnw_sig_trampoline;
		sigaction(signo, &act, NULL);
		pgnw_signals_trampolined[signo] = true;
	}
}

/*
 * Put back any handler that something in the process replaced.  JS-level
 * refusals (process.on('SIGHUP'), child_process) are the first line; this
 * catches whatever got past them (native addons).  Called by the watchdog,
 * so a replacement is undone within 100 ms even while JS is busy;
 * sigaction() is thread-safe.  The main thread logs what was restored.
 */
void
pgnw_thread_restore_handlers(void)
{
	for (int signo = 1; signo < NSIG && signo < 64; signo++)
	{
		struct sigaction act;

		if (!pgnw_signals_trampolined[signo] || sigaction(signo, NULL, &act) != 0)
			continue;
		if (act.sa_handler == pgnw_sig_trampoline && !(act.sa_flags & SA_SIGINFO))
			continue;
		act = pgnw_signals_pg_actions[signo];
		act.sa_handler = pgnw_sig_trampoline;
		sigaction(signo, &act, NULL);
		pgnw_signal_stats.restored++;
		pgnw_signals_restored.fetch_or(UINT64_C(1) << signo);
	}
	if (pgnw_signals_restored.load() != 0)
		SetLatch(MyLatch);
}

/* Main thread: report the handlers the watchdog restored. */
void
pgnw_signals_report_restored(void)
{
	uint64_t	restored = pgnw_signals_restored.exchange(0);

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


/* ----------------------------------------------------------------- aborts */

/* Look up the give-up functions in libnode; load the unwinder. */
static void
pgnw_signals_find_give_up_functions(void)
{
	Dl_info		info;
	void	   *frames[2];
	void	   *libnode = nullptr;

	if (dladdr(reinterpret_cast<void *>(&node::FreeEnvironment), &info) && info.dli_fname)
		libnode = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	for (size_t i = 0; i < lengthof(pgnw_signals_give_up_names); i++)
		pgnw_signals_give_up_fns[i] = dlsym(libnode ? libnode : RTLD_DEFAULT,
											pgnw_signals_give_up_names[i]);
	/* backtrace() loads the unwinder on first use: not in a signal handler */
	(void) backtrace(frames, lengthof(frames));
}

/*
 * Is one of the give-up functions on the stack of this (signal handler's)
 * thread?  backtrace() and dladdr() are not async-signal-safe in general;
 * the unwinder is loaded at start, and this runs only for an abort, when
 * the alternative is dying by the signal.
 */
static bool
pgnw_sig_gave_up_on_purpose(void)
{
	void	   *frames[48];
	int			n = backtrace(frames, lengthof(frames));

	for (int i = 0; i < n; i++)
	{
		Dl_info		info;

		/* a return address may lie just past a call to a noreturn function */
		if (!dladdr(static_cast<char *>(frames[i]) - 1, &info) || info.dli_saddr == nullptr)
			continue;
		for (void *fn : pgnw_signals_give_up_fns)
			if (fn != nullptr && info.dli_saddr == fn)
				return true;
	}
	return false;
}

/*
 * Node or V8 gave up on the main thread, outside PostgreSQL: PostgreSQL's
 * state is intact (it runs only inside the guarded calls), so leave as from
 * V8's fatal error handler, with exit 1, instead of dying by the signal,
 * which would reset the cluster.  The one pgnw_sig_ function that calls
 * PostgreSQL (see runtime.h): it never returns.  If leaving hangs (the
 * abort came from inside malloc, say), the watchdog aborts after all, 10 s
 * later.
 */
static void
pgnw_sig_leave_after_give_up(int signo)
{
	static char message[128];

	signal(SIGABRT, SIG_DFL);
	signal(SIGTRAP, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	pgnw_signals_gave_up_at_ms = pgnw_sig_now_ms();
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
 * cluster.  On the main thread see pgnw_sig_leave_after_give_up; otherwise
 * the signal takes its default course.
 */
static void
pgnw_sig_thread_abort(int signo)
{
	static const char msg[] =
		"pg_node_worker: a thread of this worker aborted; the worker stops and exits with code 1\n";

	if ((pid_t) syscall(SYS_gettid) == MyProcPid)
	{
		if (!pgnw_in_postgres && pgnw_signals_gave_up_at_ms.load() == 0 &&
			pgnw_sig_gave_up_on_purpose())
			pgnw_sig_leave_after_give_up(signo);
		/* abort() raises again; a trap instruction runs again: both now fatal */
		signal(signo, SIG_DFL);
		return;
	}
	if (pgnw_signals_thread_abort == 0)
	{
		pgnw_signals_thread_abort = signo;
		pgnw_signals_thread_abort_at_ms = pgnw_sig_now_ms();
		if (write(2, msg, sizeof(msg) - 1) < 0)
		{
			/* nothing to do: the server log is all there is */
		}
	}
	SetLatch(MyLatch);
	for (;;)
		pause();
}

/* Catch SIGABRT, SIGTRAP and SIGILL with pgnw_sig_thread_abort(). */
static void
pgnw_signals_install_thread_abort_handlers(void)
{
	static const int signals[] = {SIGABRT, SIGTRAP, SIGILL};

	for (int signo : signals)
	{
		struct sigaction act;

		memset(&act, 0, sizeof(act));
		act.sa_handler = pgnw_sig_thread_abort;
		sigemptyset(&act.sa_mask);
		sigaction(signo, &act, NULL);
	}
}

/* The signal with which a thread other than main aborted, or 0. */
int
pgnw_sig_thread_abort_signal(void)
{
	return pgnw_signals_thread_abort;
}

/*
 * The main thread could not leave (it waits for the parked thread, inside
 * V8, or hangs in the give-up path) for 10 s: then the crash it would have
 * been.
 */
bool
pgnw_sig_leaving_overdue(void)
{
	int64_t		aborted_at = pgnw_signals_thread_abort_at_ms.load();
	int64_t		gave_up_at = pgnw_signals_gave_up_at_ms.load();

	return (aborted_at != 0 && pgnw_sig_now_ms() - aborted_at > 10000) ||
		(gave_up_at != 0 && pgnw_sig_now_ms() - gave_up_at > 10000);
}


/* ------------------------------------------------------- the signal mask */

/*
 * Block every signal in the main thread: every thread Node, V8 and libuv
 * create from now on inherits the mask, so no PostgreSQL signal handler can
 * run on them.
 */
void
pgnw_signals_block_all(sigset_t *saved)
{
	sigset_t	all_blocked;

	sigfillset(&all_blocked);
	pthread_sigmask(SIG_SETMASK, &all_blocked, saved);
}

/* Put the main thread's mask back. */
void
pgnw_signals_restore_mask(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/*
 * Node's threads exist: the main thread takes signals again, behind the
 * trampolines, and aborts on other threads park them.
 */
void
pgnw_signals_take_over(const sigset_t *saved)
{
	pgnw_signals_restore_mask(saved);
	pgnw_signals_install_trampolines();
	pgnw_signals_find_give_up_functions();
	pgnw_signals_install_thread_abort_handlers();
}
