/*-------------------------------------------------------------------------
 *
 * runtime_memory.h
 *	  Memory of a worker outside and at the edge of the JavaScript heap
 *	  (runtime_memory.cc).  Not exported (see runtime.h for what the bridge
 *	  sees and for the naming rule).
 *
 * extension/runtime_memory.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGNW_RUNTIME_MEMORY_H
#define PGNW_RUNTIME_MEMORY_H

#include <node.h>

#pragma GCC visibility push(hidden)

/* the ArrayBuffer allocator of the worker's isolate: Node's own, with a budget */
extern node::ArrayBufferAllocator *pgnw_memory_allocator(void);

/* before Node starts its threads: at most two malloc arenas */
extern void pgnw_memory_limit_arenas(void);

/*
 * Before Node starts: the JavaScript heap limit to use for heap_mb (the
 * manifest's or the setting), lowered to fit a data-segment limit.
 */
extern int	pgnw_memory_plan_heap(int heap_mb);

/* the code range pgnw_memory_plan_heap() planned for the isolate (MB); 0: V8's default */
extern int	pgnw_memory_code_range_mb(void);

/* after Node started, before user code: the ArrayBuffer budget and the C++ reserve */
extern void pgnw_memory_plan_buffers(int buffer_mb);

/* the isolate's out-of-memory and fatal error handlers, and C++'s new_handler and terminate */
extern void pgnw_memory_install_handlers(v8::Isolate *isolate);

/* leave cleanly when the JavaScript heap reaches its limit */
extern void pgnw_memory_watch_heap_limit(v8::Isolate *isolate);

/* a C++ allocation failed, or V8 ran out of memory on a thread other than main */
extern bool pgnw_sig_out_of_memory(void);

/* main thread: say, once, why memory ran out (or a thread aborted) */
extern void pgnw_memory_report_exhaustion(void);

#pragma GCC visibility pop

#endif							/* PGNW_RUNTIME_MEMORY_H */
