/*
 * bridge.cc — the N-API addon the worker's JavaScript calls
 * (pg_node_worker_bridge.node).
 *
 * It translates between JS values and the plain C structures of guard.h.
 * It never includes PostgreSQL headers and never calls PostgreSQL itself:
 * every such call goes through guard.c, which holds the PG_TRY boundary.
 * The JS error class (PgError) is defined in TypeScript and handed over by
 * init(); errors from PostgreSQL become instances of it.
 */
#include <napi.h>

#include <pthread.h>
#include <string>
#include <vector>

#include "../extension/runtime.h"
#include "guard.h"

namespace
{

/*
 * Heap-allocated and never freed: the process leaves through _exit(), and
 * static destructors of N-API references would run against a live isolate.
 */
Napi::FunctionReference &pg_error_class = *new Napi::FunctionReference();
Napi::FunctionReference &json_parse = *new Napi::FunctionReference();

void
SetIf(Napi::Object &obj, const char *key, const char *value)
{
	if (value != nullptr)
		obj.Set(key, value);
}

/* Throw a PgError built from err, then clear err. */
void
ThrowPgError(Napi::Env env, PgnwError *err)
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
	json_parse = Napi::Persistent(
		env.Global().Get("JSON").As<Napi::Object>().Get("parse").As<Napi::Function>());
	return env.Undefined();
}

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

Napi::Value
Prepare(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwPlanInfo plan;

	if (info.Length() < 1 || !info[0].IsString())
	{
		Napi::TypeError::New(env, "prepare(sql) expects a string").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string sql = info[0].As<Napi::String>().Utf8Value();

	if (!pgnw_prepare(sql.c_str(), &plan, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Object out = Napi::Object::New(env);
	Napi::Array types = Napi::Array::New(env, plan.nparams);
	Napi::Array elems = Napi::Array::New(env, plan.nparams);

	for (int i = 0; i < plan.nparams; i++)
	{
		types.Set(i, Napi::Number::New(env, plan.param_types[i]));
		elems.Set(i, Napi::Number::New(env, plan.param_elem_types[i]));
	}
	out.Set("id", Napi::Number::New(env, plan.id));
	out.Set("paramTypes", types);
	out.Set("elemTypes", elems);
	return out;
}

Napi::Value
FreePlan(const Napi::CallbackInfo &info)
{
	if (info.Length() >= 1 && info[0].IsNumber())
		pgnw_free_plan(info[0].As<Napi::Number>().Int32Value());
	return info.Env().Undefined();
}

Napi::Value ToJs(Napi::Env env, const PgnwValue &v);

Napi::Value
ArrayToJs(Napi::Env env, const PgnwArray *arr, int dim, int *pos)
{
	if (arr->ndims == 0)
		return Napi::Array::New(env, 0);
	int			n = arr->dims[dim];
	Napi::Array out = Napi::Array::New(env, n);

	for (int i = 0; i < n; i++)
	{
		if (dim + 1 < arr->ndims)
			out.Set(i, ArrayToJs(env, arr, dim + 1, pos));
		else
			out.Set(i, ToJs(env, arr->items[(*pos)++]));
	}
	return out;
}

Napi::Value
ToJs(Napi::Env env, const PgnwValue &v)
{
	switch (v.kind)
	{
		case PGNW_BOOL:
			return Napi::Boolean::New(env, v.u.b);
		case PGNW_NUMBER:
			return Napi::Number::New(env, v.u.d);
		case PGNW_BIGINT:
			return Napi::BigInt::New(env, v.u.i);
		case PGNW_TEXT:
			return Napi::String::New(env, v.u.s.ptr, v.u.s.len);
		case PGNW_JSON:
			return json_parse.Call({Napi::String::New(env, v.u.s.ptr, v.u.s.len)});
		case PGNW_BYTES:
			{
				Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, v.u.s.len);

				if (v.u.s.len > 0)
					memcpy(ab.Data(), v.u.s.ptr, v.u.s.len);
				return Napi::Uint8Array::New(env, v.u.s.len, ab, 0);
			}
		case PGNW_DATE:
			return Napi::Date::New(env, v.u.d);
		case PGNW_ARRAY:
			{
				int			pos = 0;

				return ArrayToJs(env, v.u.arr, 0, &pos);
			}
		default:
			return env.Null();
	}
}

/*
 * JS parameter values as PgnwParams.  strings keeps the UTF-8 copies alive
 * while PostgreSQL reads them.  Returns false with a JS exception pending.
 */
bool
ExtractParams(Napi::Env env, Napi::Array jsparams, std::vector<PgnwParam> &params,
			  std::vector<std::string> &strings)
{
	uint32_t	n = jsparams.Length();

	params.resize(n);
	strings.resize(n);
	for (uint32_t i = 0; i < n; i++)
	{
		Napi::Value v = jsparams.Get(i);
		PgnwParam  &p = params[i];

		if (v.IsNull() || v.IsUndefined())
			p.kind = PGNW_NULL;
		else if (v.IsBoolean())
		{
			p.kind = PGNW_BOOL;
			p.u.b = v.As<Napi::Boolean>().Value();
		}
		else if (v.IsNumber())
		{
			p.kind = PGNW_NUMBER;
			p.u.d = v.As<Napi::Number>().DoubleValue();
		}
		else if (v.IsBigInt())
		{
			bool		lossless = false;
			int64_t		i64 = v.As<Napi::BigInt>().Int64Value(&lossless);

			if (lossless)
			{
				p.kind = PGNW_BIGINT;
				p.u.i = i64;
			}
			else
			{
				strings[i] = v.ToString().Utf8Value();
				p.kind = PGNW_TEXT;
				p.u.s.ptr = strings[i].data();
				p.u.s.len = (int) strings[i].size();
			}
		}
		else if (v.IsString())
		{
			strings[i] = v.As<Napi::String>().Utf8Value();
			p.kind = PGNW_TEXT;
			p.u.s.ptr = strings[i].data();
			p.u.s.len = (int) strings[i].size();
		}
		else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array)
		{
			Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();

			p.kind = PGNW_BYTES;
			p.u.s.ptr = reinterpret_cast<const char *>(bytes.Data());
			p.u.s.len = (int) bytes.ByteLength();
		}
		else
		{
			Napi::TypeError::New(env, "parameter $" + std::to_string(i + 1) +
								 " has a type that cannot be sent to PostgreSQL")
				.ThrowAsJavaScriptException();
			return false;
		}
	}
	return true;
}

/*
 * [command, count, fields, values] from a result that SPI's memory still
 * holds, then pgnw_finish() to release it (and commit an implicit
 * transaction).  values is flat, row-major; the JS side builds the rows.
 * An array rather than an object: no property keys to make per call.
 */
Napi::Value
FinishResult(Napi::Env env, PgnwResult &res)
{
	PgnwError	err = {};
	Napi::Array out = Napi::Array::New(env, 4);
	Napi::Array fields = Napi::Array::New(env, res.ncols);
	uint64_t	total = res.nrows * (uint64_t) res.ncols;
	Napi::Array values = Napi::Array::New(env, total);

	for (int c = 0; c < res.ncols; c++)
		fields.Set(c, res.colnames[c]);
	for (uint64_t i = 0; i < total; i++)
	{
		Napi::Value v = ToJs(env, res.values[i]);

		if (env.IsExceptionPending())
			break;
		values.Set(static_cast<uint32_t>(i), v);
	}
	out.Set(0u, res.command);
	out.Set(1u, Napi::Number::New(env, (double) res.processed));
	out.Set(2u, fields);
	out.Set(3u, values);

	bool		had_exception = env.IsExceptionPending();

	if (!pgnw_finish(&err))
	{
		if (!had_exception)
			ThrowPgError(env, &err);
		else
			pgnw_error_clear(&err);
		return env.Undefined();
	}
	if (had_exception)
		return env.Undefined();
	return out;
}

/*
 * execute(planId, sql, params) → result
 * planId -1 runs sql as text (may hold several statements, no parameters).
 */
Napi::Value
Execute(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwResult	res;
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;

	if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsArray())
	{
		Napi::TypeError::New(env, "execute(planId, sql, params) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	int			plan_id = info[0].As<Napi::Number>().Int32Value();
	std::string sql = info[1].As<Napi::String>().Utf8Value();

	if (!ExtractParams(env, info[2].As<Napi::Array>(), params, strings))
		return env.Undefined();
	if (!pgnw_execute(plan_id, sql.c_str(), (int) params.size(), params.data(), &res, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res);
}

/* cursorOpen(planId, sql, params) → cursor name */
Napi::Value
CursorOpen(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	char		name[PGNW_CURSOR_NAME_LEN];
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;

	if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsArray())
	{
		Napi::TypeError::New(env, "cursorOpen(planId, sql, params) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	int			plan_id = info[0].As<Napi::Number>().Int32Value();
	std::string sql = info[1].As<Napi::String>().Utf8Value();

	if (!ExtractParams(env, info[2].As<Napi::Array>(), params, strings))
		return env.Undefined();
	if (!pgnw_cursor_open(plan_id, sql.c_str(), (int) params.size(), params.data(), name, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return Napi::String::New(env, name);
}

/* cursorFetch(name, count) → result (no rows when exhausted) */
Napi::Value
CursorFetch(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwResult	res;

	if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
	{
		Napi::TypeError::New(env, "cursorFetch(name, count) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string name = info[0].As<Napi::String>().Utf8Value();
	long		count = (long) info[1].As<Napi::Number>().Int64Value();

	if (!pgnw_cursor_fetch(name.c_str(), count, &res, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res);
}

Napi::Value
CursorClose(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (info.Length() >= 1 && info[0].IsString())
	{
		std::string name = info[0].As<Napi::String>().Utf8Value();

		if (!pgnw_cursor_close(name.c_str(), &err))
			ThrowPgError(info.Env(), &err);
	}
	return info.Env().Undefined();
}

Napi::Value
Begin(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_begin(&err))
		ThrowPgError(info.Env(), &err);
	return Napi::Number::New(info.Env(), pgnw_xact_depth());
}

Napi::Value
Commit(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_commit(&err))
		ThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

Napi::Value
Rollback(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_rollback(&err))
		ThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

Napi::Value
Depth(const Napi::CallbackInfo &info)
{
	return Napi::Number::New(info.Env(), pgnw_xact_depth());
}

Napi::Value
Log(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};

	if (info.Length() < 2 || !info[0].IsNumber())
		return env.Undefined();
	std::string msg = info[1].ToString().Utf8Value();

	if (!pgnw_log(info[0].As<Napi::Number>().Int32Value(), msg.c_str(), &err))
		ThrowPgError(env, &err);
	return env.Undefined();
}

Napi::Value
Setting(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	char	   *value = nullptr;

	if (info.Length() < 1 || !info[0].IsString())
	{
		Napi::TypeError::New(env, "setting(name) expects a string").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string name = info[0].As<Napi::String>().Utf8Value();

	if (!pgnw_get_setting(name.c_str(), &value, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	if (value == nullptr)
		return env.Null();
	Napi::String out = Napi::String::New(env, value);

	free(value);
	return out;
}

Napi::Value
SetTitle(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};
	std::string text = info.Length() > 0 ? info[0].ToString().Utf8Value() : "";

	if (!pgnw_set_ps_display(text.c_str(), &err))
		ThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

Napi::Value
Exit(const Napi::CallbackInfo &info)
{
	int			code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;

	pgnw_request_exit(code);
	return info.Env().Undefined();
}

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

Napi::Value
ShutdownRequested(const Napi::CallbackInfo &info)
{
	return Napi::Boolean::New(info.Env(), pgnw_shutdown_requested != 0);
}

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
	exports.Set("init", Napi::Function::New(env, Init));
	exports.Set("info", Napi::Function::New(env, Info));
	exports.Set("prepare", Napi::Function::New(env, Prepare));
	exports.Set("freePlan", Napi::Function::New(env, FreePlan));
	exports.Set("execute", Napi::Function::New(env, Execute));
	exports.Set("cursorOpen", Napi::Function::New(env, CursorOpen));
	exports.Set("cursorFetch", Napi::Function::New(env, CursorFetch));
	exports.Set("cursorClose", Napi::Function::New(env, CursorClose));
	exports.Set("begin", Napi::Function::New(env, Begin));
	exports.Set("commit", Napi::Function::New(env, Commit));
	exports.Set("rollback", Napi::Function::New(env, Rollback));
	exports.Set("depth", Napi::Function::New(env, Depth));
	exports.Set("log", Napi::Function::New(env, Log));
	exports.Set("setting", Napi::Function::New(env, Setting));
	exports.Set("setTitle", Napi::Function::New(env, SetTitle));
	exports.Set("exit", Napi::Function::New(env, Exit));
	exports.Set("signalStats", Napi::Function::New(env, SignalStats));
	exports.Set("shutdownRequested", Napi::Function::New(env, ShutdownRequested));
	return exports;
}

}								/* namespace */

NODE_API_MODULE(pg_node_worker_bridge, Module)
