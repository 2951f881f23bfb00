/*
 * bridge.h — what the .cc files of the N-API bridge share (C++ only).
 *
 * Everything here may throw into V8 (leave a JS exception pending) and
 * never calls PostgreSQL except through the boundary functions of the C
 * headers (see the rule in guard.h).
 */
#ifndef PGNW_BRIDGE_H
#define PGNW_BRIDGE_H

#include <napi.h>
#include <v8.h>

#include <cstring>

#include "guard.h"
#include "result.h"

/* Throw a PgError (the class init() was given) built from err, then clear err. */
void		PgnwThrowPgError(Napi::Env env, PgnwError *err);

/*
 * value as text for a C string that people read (the server log, last_error,
 * the ps display): ToString(), each NUL written as "\0".  A NUL would end
 * the C string there and hide the rest: a SyntaxError's stack quotes the
 * first line of a binary file, a handler logs data (log.cc).
 */
std::string PgnwReadableText(const Napi::Value &value);

/*
 * A new ArrayBuffer of `bytes` uninitialised bytes from the worker's
 * ArrayBuffer budget, or an empty value with a RangeError pending
 * (process.cc).
 */
Napi::ArrayBuffer PgnwNewArrayBuffer(Napi::Env env, size_t bytes);

/*
 * A napi_value is a v8::Local<v8::Value> in disguise on every Node this
 * runtime supports (js_native_api_v8.h: V8LocalValueFromJsValue); the hot
 * paths and V8-only objects (SharedArrayBuffer) use that.
 */
inline napi_value
PgnwToNapi(v8::Local<v8::Value> local)
{
	return reinterpret_cast<napi_value>(*local);
}

/* the v8::Local behind a napi_value (see PgnwToNapi) */
inline v8::Local<v8::Value>
PgnwToV8(napi_value value)
{
	v8::Local<v8::Value> local;

	static_assert(sizeof(local) == sizeof(value), "napi_value is a v8::Local");
	memcpy(static_cast<void *>(&local), &value, sizeof(value));
	return local;
}

/* convert.cc: keep JSON.parse (init()) */
void		PgnwConvertInit(Napi::Env env);

/*
 * convert.cc: the payload of a result and its layout (PGNW_LAYOUT_*), or
 * undefined with a JS exception pending
 */
Napi::Value PgnwResultToJs(Napi::Env env, PgnwResult &res, int *layout);

/*
 * One function on the bridge's exports: an N-API function, or (v8fn) a
 * plain V8 one for a path every statement takes.  A V8 function skips
 * N-API's callback wrapper (napi_get_cb_info, the module call bookkeeping:
 * ~60 ns of a ~1.7 us SELECT 1); it must end with PgnwV8Return, which does
 * what that wrapper does with an exception an N-API call left pending.
 */
struct PgnwExport
{
	const char *name;
	Napi::Value (*fn) (const Napi::CallbackInfo &info);
	void		(*v8fn) (const v8::FunctionCallbackInfo<v8::Value> &args) = nullptr;
};

/* the N-API environment of the bridge, for its V8 functions (set when it loads) */
napi_env	PgnwBridgeEnv();

/*
 * The end of a V8 function of the exports: out as its return value, or the
 * exception an N-API call in it left pending (N-API catches what napi_throw
 * and JS called through N-API throw, and its wrapper throws it when the
 * function returns), thrown now.
 */
void		PgnwV8Return(const v8::FunctionCallbackInfo<v8::Value> &args, Napi::Value out);

/* a module's functions, put on the bridge's exports by bridge.cc */
struct PgnwExports
{
	const PgnwExport *functions;
	size_t		count;
};

extern const PgnwExports PgnwSqlExports;		/* sql.cc */
extern const PgnwExports PgnwLogExports;		/* log.cc */
extern const PgnwExports PgnwProcessExports;	/* process.cc */
extern const PgnwExports PgnwControlExports;	/* control.cc */
extern const PgnwExports PgnwMessagingExports;	/* messaging.cc */
extern const PgnwExports PgnwBuffersExports;	/* buffers.cc */
extern const PgnwExports PgnwSharedExports;		/* shared.cc */

#endif							/* PGNW_BRIDGE_H */
