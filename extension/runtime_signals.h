/*-------------------------------------------------------------------------
 *
 * runtime_signals.h
 *	  Signals in a worker process that runs Node's threads
 *	  (runtime_signals.cc).  Not exported (see runtime.h for what the
 *	  bridge sees and for the naming rule).
 *
 * extension/runtime_signals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RUNTIME_SIGNALS_H
#define PGNW_RUNTIME_SIGNALS_H

#include <signal.h>

#include <cstdint>

#pragma GCC visibility push(hidden)

/* SIGTERM and SIGHUP handlers of a node worker, signals unblocked (start-up) */
extern void pgnw_signals_install_postgres_handlers(void);

/* block every signal in the main thread, saving the mask */
extern void pgnw_signals_block_all(sigset_t *saved);

/* put the mask back (before an ERROR while signals are blocked) */
extern void pgnw_signals_restore_mask(const sigset_t *saved);

/*
 * Node's threads exist: the main thread takes signals again, PostgreSQL's
 * handlers are wrapped by the trampoline, aborts on other threads park them.
 */
extern void pgnw_signals_take_over(const sigset_t *saved);

/* SIGTERM has arrived; when (pgnw_sig_now_ms(), 0 if not) */
extern bool pgnw_sig_term_pending(void);
extern int64_t pgnw_sig_term_at_ms(void);

/* the signal with which a thread other than main aborted, or 0 */
extern int	pgnw_sig_thread_abort_signal(void);

/*
 * A thread aborted, or Node gave up on the main thread, over 10 s ago and
 * the process is still there: leaving cleanly failed.
 */
extern bool pgnw_sig_leaving_overdue(void);

/* put back any handler something replaced; wakes the main thread to report it */
extern void pgnw_thread_restore_handlers(void);

/* main thread: a WARNING per handler the watchdog restored */
extern void pgnw_signals_report_restored(void);

#pragma GCC visibility pop

#endif							/* PGNW_RUNTIME_SIGNALS_H */
