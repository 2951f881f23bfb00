/*
 * shared.cc — ctx.shared(name, bytes): a named region of PostgreSQL shared
 * memory (extension/shared.c) handed to JavaScript as a SharedArrayBuffer.
 * PostgreSQL is reached only through buffers.h (buffers_ops.c).
 *
 * N-API cannot make a SharedArrayBuffer over memory it does not own, so
 * this uses V8's API directly, which ties it to Node 18's V8 (10.2) like
 * runtime.cc.  Two things rely on that:
 *  - v8::SharedArrayBuffer::NewBackingStore with a deleter that does
 *    nothing: the memory belongs to the server's shared memory segment,
 *    which stays mapped until the process exits;
 *  - a napi_value is a v8::Local<v8::Value> in disguise (Node's
 *    js_native_api_v8.h, JsValueFromV8LocalValue), so a Local made in the
 *    callback's handle scope can be returned as one.
 *
 * Atomics on the buffer compile to locked CPU instructions on that memory,
 * so they are atomic across processes.  Atomics.wait/notify are not: V8
 * keeps its waiter lists per process.
 */
#include <napi.h>
#include <v8.h>

#include <cmath>
#include <cstring>
#include <string>

#include "bridge.h"
#include "buffers.h"

namespace
{

/* SharedArrayBuffer over shared memory; never freed by V8 */
napi_value
NewSharedArrayBuffer(void *data, size_t length)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	std::unique_ptr<v8::BackingStore> store =
		v8::SharedArrayBuffer::NewBackingStore(data, length,
											   [](void *, size_t, void *) {}, nullptr);

	return PgnwToNapi(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

/* sharedOpen(name, bytes) → [SharedArrayBuffer, created] */
Napi::Value
SharedOpen(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	void	   *ptr = nullptr;
	bool		created = false;

	if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
	{
		Napi::TypeError::New(env, "shared(name, bytes): name must be a string and bytes a number").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string name = info[0].As<Napi::String>().Utf8Value();
	double		bytes = info[1].As<Napi::Number>().DoubleValue();

	if (name.find('\0') != std::string::npos)
	{
		Napi::TypeError::New(env, "shared(name, bytes): name must not contain NUL characters").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	if (!(bytes >= 1 && bytes <= 9007199254740991.0) || std::floor(bytes) != bytes)
	{
		Napi::RangeError::New(env, "shared(name, bytes): bytes must be a positive integer").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	if (!pgnw_shared_open(name.c_str(), (size_t) bytes, &ptr, &created, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Array out = Napi::Array::New(env, 2);

	out.Set(0u, Napi::Value(env, NewSharedArrayBuffer(ptr, (size_t) bytes)));
	out.Set(1u, Napi::Boolean::New(env, created));
	return out;
}

/* sharedOpen, by the names the runtime calls them */
const PgnwExport shared_exports[] = {
	{"sharedOpen", SharedOpen},
};

}								/* namespace */

extern const PgnwExports PgnwSharedExports = {shared_exports, sizeof(shared_exports) / sizeof(shared_exports[0])};
