/*
 * bridge.cc — the N-API addon the worker's JavaScript loads
 * (pg_node_worker_bridge.node): its registration, its constants, and how
 * a PostgreSQL error becomes a JS one.
 *
 * Each concern lists its own functions (sql.cc, log.cc, process.cc,
 * control.cc, messaging.cc, buffers.cc, shared.cc: PgnwExports).  None includes
 * PostgreSQL headers or calls PostgreSQL itself: every such call goes
 * through a boundary function of the C side, which holds the PG_TRY
 * boundary (guard.h, with the rule on what may throw where).  The JS error
 * class (PgError) is defined in TypeScript and handed over by init();
 * errors from PostgreSQL become instances of it.
 *
 * Limits: the bridge loads only on the worker's main thread (worker_threads
 * get an error at require time), once per process.
 */
#include <napi.h>

#include <pthread.h>
#include <string>

#include "../extension/runtime.h"
#include "bridge.h"
#include "contract.h"

namespace
{

/*
 * Heap-allocated and never freed: the process leaves through _exit(), and
 * static destructors of N-API references would run against a live isolate.
 */
Napi::FunctionReference &pg_error_class = *new Napi::FunctionReference();

/* the environment the bridge was loaded in (one per process: main thread only) */
napi_env	bridge_env = nullptr;

/* one number of contract.h, by the name native.ts gives it */
struct Constant
{
	const char *name;
	int			value;
};

/* what exports.constants holds; native.ts checks it (checkBridgeConstants) */
const Constant constants[] = {
	{"LOG_DEBUG", PGNW_LOG_DEBUG},
	{"LOG_INFO", PGNW_LOG_INFO},
	{"LOG_NOTICE", PGNW_LOG_NOTICE},
	{"LOG_WARNING", PGNW_LOG_WARNING},
	{"LOG_ERROR", PGNW_LOG_ERROR},
	{"H_COMMAND", PGNW_H_COMMAND},
	{"H_COUNT", PGNW_H_COUNT},
	{"H_SHAPE", PGNW_H_SHAPE},
	{"H_NROWS", PGNW_H_NROWS},
	{"H_NCOLS", PGNW_H_NCOLS},
	{"H_LAYOUT", PGNW_H_LAYOUT},
	{"H_FIELDS", PGNW_H_FIELDS},
	{"H_RETYPED", PGNW_H_RETYPED},
	{"H_KEPT", PGNW_H_KEPT},
	{"H_SIZE", PGNW_H_SIZE},
	{"RETYPED", PGNW_RETYPED},
	{"RETYPED_HELD", PGNW_RETYPED_HELD},
	{"LAYOUT_NONE", PGNW_LAYOUT_NONE},
	{"LAYOUT_SCALAR", PGNW_LAYOUT_SCALAR},
	{"LAYOUT_FLAT", PGNW_LAYOUT_FLAT},
	{"LAYOUT_COLUMNS", PGNW_LAYOUT_COLUMNS},
	{"COL_BOOL", PGNW_COL_BOOL},
	{"COL_INT32", PGNW_COL_INT32},
	{"COL_FLOAT64", PGNW_COL_FLOAT64},
	{"COL_INT64", PGNW_COL_INT64},
	{"COL_DATE", PGNW_COL_DATE},
	{"COL_TEXT", PGNW_COL_TEXT},
	{"COL_JSON", PGNW_COL_JSON},
	{"COL_BYTES", PGNW_COL_BYTES},
	{"COL_VALUES", PGNW_COL_VALUES},
	{"TEXT_CHUNK_BITS", PGNW_TEXT_CHUNK_BITS},
	{"JSON_PARSED", PGNW_JSON_PARSED},
	{"CALL_WAITING", PGNW_CALLER_WAITING},
	{"CALL_TIMED_OUT", PGNW_CALLER_TIMED_OUT},
	{"CALL_CANCELLED", PGNW_CALLER_GONE},
};

/* COMMANDS[PgnwCommand]: the command names, by value */
const Constant commands[] = {
	{"SELECT", PGNW_CMD_SELECT},
	{"INSERT", PGNW_CMD_INSERT},
	{"UPDATE", PGNW_CMD_UPDATE},
	{"DELETE", PGNW_CMD_DELETE},
	{"MERGE", PGNW_CMD_MERGE},
	{"UTILITY", PGNW_CMD_UTILITY},
};

/* exports.constants: { NAME: value, ..., COMMANDS: [name by value] } */
Napi::Object
Constants(Napi::Env env)
{
	Napi::Object out = Napi::Object::New(env);
	Napi::Array names = Napi::Array::New(env, sizeof(commands) / sizeof(commands[0]));

	for (const Constant &c : constants)
		out.Set(c.name, Napi::Number::New(env, c.value));
	for (const Constant &c : commands)
		names.Set(static_cast<uint32_t>(c.value), Napi::String::New(env, c.name));
	out.Set("COMMANDS", names);
	return out;
}

/* the modules whose functions the bridge exports */
const PgnwExports *const modules[] = {
	&PgnwProcessExports, &PgnwSqlExports, &PgnwLogExports, &PgnwControlExports,
	&PgnwMessagingExports, &PgnwBuffersExports, &PgnwSharedExports,
};

/* fields[key] = value unless value is NULL */
void
SetIf(Napi::Object &obj, const char *key, const char *value)
{
	if (value != nullptr)
		obj.Set(key, value);
}

/* init(PgError): the class PostgreSQL errors become; JSON.parse for JSON values */
Napi::Value
Init(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();

	if (info.Length() < 1 || !info[0].IsFunction())
	{
		Napi::TypeError::New(env, "init(PgError) expects the PgError class").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	pg_error_class = Napi::Persistent(info[0].As<Napi::Function>());
	PgnwConvertInit(env);
	return env.Undefined();
}

/* a plain V8 function (see PgnwExport): not a constructor, named name */
Napi::Value
V8Function(Napi::Env env, const char *name, v8::FunctionCallback fn)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::Local<v8::Context> context = isolate->GetCurrentContext();
	v8::Local<v8::FunctionTemplate> tmpl =
		v8::FunctionTemplate::New(isolate, fn, v8::Local<v8::Value>(), v8::Local<v8::Signature>(), 0,
								  v8::ConstructorBehavior::kThrow);
	v8::Local<v8::Function> func = tmpl->GetFunction(context).ToLocalChecked();

	func->SetName(v8::String::NewFromUtf8(isolate, name).ToLocalChecked());
	return Napi::Value(env, PgnwToNapi(func));
}

/* The module's exports; refused on any thread but the worker's main one. */
Napi::Object
Module(Napi::Env env, Napi::Object exports)
{
	if (!pthread_equal(pthread_self(), pgnw_main_thread))
	{
		Napi::Error::New(env, "pg-node-worker's SQL bridge can only be loaded on the worker's main thread; "
						 "worker_threads cannot call PostgreSQL")
			.ThrowAsJavaScriptException();
		return exports;
	}
	bridge_env = env;
	exports.Set("constants", Constants(env));
	exports.Set("init", Napi::Function::New(env, Init));
	for (const PgnwExports *module : modules)
		for (size_t i = 0; i < module->count; i++)
		{
			const PgnwExport &f = module->functions[i];

			exports.Set(f.name, f.v8fn ? V8Function(env, f.name, f.v8fn) : Napi::Function::New(env, f.fn));
		}
	return exports;
}

}								/* namespace */

/* The N-API environment of the bridge (see bridge.h). */
napi_env
PgnwBridgeEnv()
{
	return bridge_env;
}

/* The return value of a V8 function of the exports, or the exception N-API holds (see bridge.h). */
void
PgnwV8Return(const v8::FunctionCallbackInfo<v8::Value> &args, Napi::Value out)
{
	bool		pending = false;
	napi_value	exception;

	if (napi_is_exception_pending(bridge_env, &pending) == napi_ok && pending &&
		napi_get_and_clear_last_exception(bridge_env, &exception) == napi_ok)
	{
		args.GetIsolate()->ThrowException(PgnwToV8(exception));
		return;
	}
	if (!out.IsEmpty())
		args.GetReturnValue().Set(PgnwToV8(out));
}

/* Throw a PgError built from err, then clear err. */
void
PgnwThrowPgError(Napi::Env env, PgnwError *err)
{
	Napi::Object fields = Napi::Object::New(env);

	fields.Set("code", err->code);
	SetIf(fields, "severity", err->severity);
	SetIf(fields, "detail", err->detail);
	SetIf(fields, "hint", err->hint);
	SetIf(fields, "where", err->context);
	SetIf(fields, "schema", err->schema);
	SetIf(fields, "table", err->table);
	SetIf(fields, "column", err->column);
	SetIf(fields, "dataType", err->datatype);
	SetIf(fields, "constraint", err->constraint);
	SetIf(fields, "internalQuery", err->internal_query);
	SetIf(fields, "file", err->file);
	SetIf(fields, "routine", err->routine);
	if (err->position > 0)
		fields.Set("position", std::to_string(err->position));
	if (err->internal_position > 0)
		fields.Set("internalPosition", std::to_string(err->internal_position));
	if (err->line > 0)
		fields.Set("line", std::to_string(err->line));

	Napi::String message = Napi::String::New(env, err->message ? err->message : "unknown error");

	pgnw_error_clear(err);
	if (pg_error_class.IsEmpty())
	{
		Napi::Error::New(env, message.Utf8Value()).ThrowAsJavaScriptException();
		return;
	}
	Napi::Value error = pg_error_class.New({message, fields});

	if (!env.IsExceptionPending())
		Napi::Error(env, error).ThrowAsJavaScriptException();
}

NODE_API_MODULE(pg_node_worker_bridge, Module)
