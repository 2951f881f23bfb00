/*
 * process.cc — what the runtime asks of the worker process itself, none
 * of it through PostgreSQL: who it is (info), leaving (exit), whether
 * SIGTERM came (shutdownRequested), signal statistics, and memory: the
 * ArrayBuffer budget (memoryUsage, PgnwNewArrayBuffer) and giving memory
 * back (releaseMemory).  The state lives in pg_node_worker_runtime.so
 * (extension/runtime.h).
 *
 * Memory goes through V8's API (the isolate's allocator, a last-resort
 * GC), which ties this file to Node 18's V8 like extension/runtime.cc.
 */
#include <napi.h>
#include <v8.h>

#include <malloc.h>
#include <memory>
#include <unistd.h>

#include "../extension/runtime.h"
#include "bridge.h"
#include "result.h"

/*
 * A new ArrayBuffer of `bytes` uninitialised bytes from the isolate's
 * allocator (the worker's ArrayBuffer budget, extension/runtime.cc), or an
 * empty value with a RangeError pending.  Napi::ArrayBuffer::New
 * (v8::ArrayBuffer::New) would treat a refused allocation as a fatal
 * out-of-memory error and end the worker; SQL results and buffer snapshots
 * are sized by data, so running out there is an error JS can handle.
 */
Napi::ArrayBuffer
PgnwNewArrayBuffer(Napi::Env env, size_t bytes)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::ArrayBuffer::Allocator *allocator = isolate->GetArrayBufferAllocator();
	void	   *data = allocator->AllocateUninitialized(bytes);

	if (data == nullptr)
	{
		/* what V8 does for JS allocations: a last-resort GC, then once more */
		isolate->LowMemoryNotification();
		data = allocator->AllocateUninitialized(bytes);
	}
	if (data == nullptr)
	{
		Napi::RangeError::New(env, "Array buffer allocation failed").ThrowAsJavaScriptException();
		return Napi::ArrayBuffer();
	}

	std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
		data, bytes,
		[](void *data, size_t length, void *allocator) {
			static_cast<v8::ArrayBuffer::Allocator *>(allocator)->Free(data, length);
		},
		allocator);
	v8::Local<v8::ArrayBuffer> ab = v8::ArrayBuffer::New(isolate, std::move(store));

	return Napi::ArrayBuffer(env, PgnwToNapi(ab));
}

namespace
{

/* info() → { name, database, role, pid, startedAt, forkToConnectedMs } */
Napi::Value
Info(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	Napi::Object out = Napi::Object::New(env);

	out.Set("name", pgnw_worker_info.name);
	if (pgnw_worker_info.connected)
		out.Set("database", pgnw_worker_info.database);
	else
		out.Set("database", env.Null());
	if (pgnw_worker_info.role[0])
		out.Set("role", pgnw_worker_info.role);
	else
		out.Set("role", env.Null());
	out.Set("pid", Napi::Number::New(env, getpid()));
	out.Set("startedAt", Napi::Number::New(env, pgnw_worker_info.started_at_ms));
	out.Set("forkToConnectedMs", Napi::Number::New(env, pgnw_worker_info.fork_to_connected_ms));
	return out;
}

/* exit(code): the worker leaves once JS returns (code maps to 0 or 1) */
Napi::Value
Exit(const Napi::CallbackInfo &info)
{
	int			code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;

	pgnw_request_exit(code);
	return info.Env().Undefined();
}

/* shutdownRequested() → SIGTERM arrived */
Napi::Value
ShutdownRequested(const Napi::CallbackInfo &info)
{
	return Napi::Boolean::New(info.Env(), pgnw_shutdown_requested != 0);
}

/* signalStats() → { forwarded, onMain, restored } */
Napi::Value
SignalStats(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	Napi::Object out = Napi::Object::New(env);

	out.Set("forwarded", Napi::Number::New(env, (double) pgnw_signal_stats.forwarded));
	out.Set("onMain", Napi::Number::New(env, (double) pgnw_signal_stats.on_main));
	out.Set("restored", Napi::Number::New(env, (double) pgnw_signal_stats.restored));
	return out;
}

/*
 * memoryUsage(): the ArrayBuffer budget (extension/runtime.cc) and the
 * result buffers the bridge holds for the next statement, in bytes
 */
Napi::Value
MemoryUsage(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	Napi::Object out = Napi::Object::New(env);
	PgnwMemoryUsage m;

	pgnw_memory_usage(&m);
	out.Set("buffers", Napi::Number::New(env, m.buffers));
	out.Set("buffersPeak", Napi::Number::New(env, m.buffers_peak));
	out.Set("bufferLimit", m.buffer_limit < 0 ? env.Null() : Napi::Number::New(env, m.buffer_limit));
	out.Set("refused", Napi::Number::New(env, m.refused));
	out.Set("heapLimit", Napi::Number::New(env, m.heap_limit));
	out.Set("codeRange", Napi::Number::New(env, m.code_range));
	out.Set("resultBuffers", Napi::Number::New(env, static_cast<double>(pgnw_result_held_bytes())));
	return out;
}

/*
 * releaseMemory(dropFilePages) → kB of file pages dropped: the big result
 * buffers, a full GC that also shrinks V8's young generation, then
 * malloc_trim: what an idle worker can give back; with dropFilePages, the
 * libraries' start-up pages too.
 */
Napi::Value
ReleaseMemory(const Napi::CallbackInfo &info)
{
	bool		drop_file_pages = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();

	pgnw_result_drop_big();
	v8::Isolate::GetCurrent()->LowMemoryNotification();
	malloc_trim(0);
	return Napi::Number::New(info.Env(), drop_file_pages ? static_cast<double>(pgnw_drop_file_pages()) : 0.0);
}

/* the process functions, by the names the runtime calls them */
const PgnwExport process_exports[] = {
	{"info", Info},
	{"exit", Exit},
	{"shutdownRequested", ShutdownRequested},
	{"signalStats", SignalStats},
	{"memoryUsage", MemoryUsage},
	{"releaseMemory", ReleaseMemory},
};

}								/* namespace */

extern const PgnwExports PgnwProcessExports = {process_exports, sizeof(process_exports) / sizeof(process_exports[0])};
