/*
 * sql.cc — the SQL entry points of the bridge: prepared statements,
 * execute, cursors, transactions (what src/runtime/sql.ts calls).
 *
 * Arguments are checked and converted here (JS parameters to PgnwParams),
 * PostgreSQL is reached through the boundary functions of plan.h,
 * execute.h and xact.h, and a result goes back as its payload (convert.cc)
 * plus the figures written into the shared result header (contract.h
 * PGNW_H_*), so that a small result crosses without making JS objects for
 * its count, command or shape.
 *
 * Limits: a BigInt parameter outside int64 is sent as its decimal text; a
 * parameter of another JS type than null/undefined, boolean, number,
 * bigint, string or Uint8Array is a TypeError.
 */
#include <napi.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "bridge.h"
#include "contract.h"
#include "execute.h"
#include "plan.h"
#include "xact.h"

namespace
{

/* the result header, shared with JS as a Float64Array; never freed (see bridge.cc) */
double	   *header = static_cast<double *>(calloc(PGNW_H_SIZE, sizeof(double)));
Napi::Reference<Napi::Float64Array> &header_ref = *new Napi::Reference<Napi::Float64Array>();

/* { id, paramTypes, elemTypes } of a prepared statement */
Napi::Object
PlanObject(Napi::Env env, const PgnwPlanInfo &plan)
{
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

/* prepare(sql) → { id, paramTypes, elemTypes } */
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
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return PlanObject(env, plan);
}

/* planTypes(id) → { id, paramTypes, elemTypes } as they are now, or undefined */
Napi::Value
PlanTypes(const Napi::CallbackInfo &info)
{
	PgnwPlanInfo plan;

	if (info.Length() < 1 || !info[0].IsNumber() ||
		!pgnw_plan_info(info[0].As<Napi::Number>().Int32Value(), &plan))
		return info.Env().Undefined();
	return PlanObject(info.Env(), plan);
}

/* freePlan(id) */
Napi::Value
FreePlan(const Napi::CallbackInfo &info)
{
	if (info.Length() >= 1 && info[0].IsNumber())
		pgnw_free_plan(info[0].As<Napi::Number>().Int32Value());
	return info.Env().Undefined();
}

/* a JS string's UTF-8 (kept alive in *keep) as a TEXT parameter */
void
TextParam(std::string text, std::string *keep, PgnwParam &p)
{
	*keep = std::move(text);
	p.kind = PGNW_TEXT;
	p.u.s.ptr = keep->data();
	p.u.s.len = (int) keep->size();
}

/*
 * The n JS parameter values arg(0) .. arg(n - 1) as PgnwParams.  strings
 * keeps the UTF-8 copies alive while PostgreSQL reads them.  Returns false
 * with a JS exception pending.
 */
template <typename Arg>
bool
ExtractParams(Napi::Env env, size_t n, Arg arg, std::vector<PgnwParam> &params,
			  std::vector<std::string> &strings)
{
	params.resize(n);
	strings.resize(n);
	for (size_t i = 0; i < n; i++)
	{
		Napi::Value v = arg(i);
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
				TextParam(v.ToString().Utf8Value(), &strings[i], p);
		}
		else if (v.IsString())
			TextParam(v.As<Napi::String>().Utf8Value(), &strings[i], p);
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

/* resultHeader() → the Float64Array every execute/cursorFetch writes (one, shared) */
Napi::Value
ResultHeader(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();

	if (header_ref.IsEmpty())
	{
		Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, header, PGNW_H_SIZE * sizeof(double));

		header_ref = Napi::Persistent(Napi::Float64Array::New(env, PGNW_H_SIZE, ab, 0));
	}
	return header_ref.Value();
}

/* [payload, column names, column kinds] */
Napi::Value
WithFields(Napi::Env env, Napi::Value payload, const PgnwResult &res)
{
	Napi::Array fields = Napi::Array::New(env, res.ncols);
	Napi::Array kinds = Napi::Array::New(env, res.ncols);
	Napi::Array wrap = Napi::Array::New(env, 3);

	for (int c = 0; c < res.ncols; c++)
	{
		fields.Set(c, Napi::String::New(env, res.colnames[c]));
		kinds.Set(c, Napi::Number::New(env, res.colkinds[c]));
	}
	wrap.Set(0u, payload);
	wrap.Set(1u, fields);
	wrap.Set(2u, kinds);
	return wrap;
}

/*
 * The JS side of a result that the builder holds: the payload (with the
 * column names when the caller lacks them), the header's figures, then
 * pgnw_finish() to release it (and commit a statement's own transaction).
 * known_shape: the shape id the caller has names for (0: none).
 */
Napi::Value
FinishResult(Napi::Env env, PgnwResult &res, int known_shape)
{
	PgnwError	err = {};
	int			layout;
	bool		send_fields = res.ncols > 0 && (res.shape_id == 0 || res.shape_id != known_shape);
	Napi::Value payload = PgnwResultToJs(env, res, &layout);
	Napi::Value out = payload;
	bool		had_exception = env.IsExceptionPending();

	if (send_fields && !had_exception)
	{
		out = WithFields(env, payload, res);
		had_exception = env.IsExceptionPending();
	}
	header[PGNW_H_COMMAND] = res.command;
	header[PGNW_H_COUNT] = static_cast<double>(res.processed);
	header[PGNW_H_SHAPE] = res.shape_id;
	header[PGNW_H_NROWS] = static_cast<double>(res.nrows);
	header[PGNW_H_NCOLS] = res.ncols;
	header[PGNW_H_LAYOUT] = layout;
	header[PGNW_H_FIELDS] = send_fields ? 1 : 0;
	header[PGNW_H_RETYPED] = res.held ? PGNW_RETYPED_HELD : res.retyped ? PGNW_RETYPED : 0;
	header[PGNW_H_KEPT] = pgnw_result_needed_big() ? 1 : 0;

	if (!pgnw_finish(&err))
	{
		if (!had_exception)
			PgnwThrowPgError(env, &err);
		else
			pgnw_error_clear(&err);
		return env.Undefined();
	}
	if (had_exception)
		return env.Undefined();
	return out;
}

/*
 * execute(planId, knownShape, ...params) → result (see FinishResult).  A
 * plain V8 function (PgnwExport): every ctx.sql statement comes here.
 */
void
Execute(const v8::FunctionCallbackInfo<v8::Value> &args)
{
	Napi::Env	env(PgnwBridgeEnv());
	PgnwError	err = {};
	PgnwResult	res;
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;
	size_t		nparams = args.Length() > 2 ? args.Length() - 2 : 0;

	if (args.Length() < 2 || !args[0]->IsInt32() || !args[1]->IsInt32())
	{
		Napi::TypeError::New(env, "execute(planId, knownShape, ...params) got bad arguments").ThrowAsJavaScriptException();
		PgnwV8Return(args, Napi::Value());
		return;
	}
	int32_t		plan_id = args[0].As<v8::Int32>()->Value();
	int32_t		known = args[1].As<v8::Int32>()->Value();

	if (nparams > 0 &&
		!ExtractParams(env, nparams, [&](size_t i) { return Napi::Value(env, PgnwToNapi(args[static_cast<int>(i) + 2])); },
					   params, strings))
	{
		PgnwV8Return(args, Napi::Value());
		return;
	}
	if (!pgnw_execute(plan_id, nullptr, (int) params.size(), params.data(), &res, &err))
	{
		PgnwThrowPgError(env, &err);
		PgnwV8Return(args, Napi::Value());
		return;
	}
	PgnwV8Return(args, FinishResult(env, res, known));
}

/* executeText(sql) → result: SQL text, possibly several statements, no parameters */
Napi::Value
ExecuteText(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwResult	res;

	if (info.Length() < 1 || !info[0].IsString())
	{
		Napi::TypeError::New(env, "executeText(sql) expects a string").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string sql = info[0].As<Napi::String>().Utf8Value();

	if (!pgnw_execute(-1, sql.c_str(), 0, nullptr, &res, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res, 0);
}

/* cursorOpen(planId, ...params) → cursor name ('' when held for new parameter types) */
Napi::Value
CursorOpen(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	char		name[PGNW_CURSOR_NAME_LEN];
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;

	if (info.Length() < 1 || !info[0].IsNumber())
	{
		Napi::TypeError::New(env, "cursorOpen(planId, ...params) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	int			plan_id = info[0].As<Napi::Number>().Int32Value();

	if (!ExtractParams(env, info.Length() - 1, [&](size_t i) { return info[i + 1]; }, params, strings))
		return env.Undefined();
	if (!pgnw_cursor_open(plan_id, (int) params.size(), params.data(), name, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return Napi::String::New(env, name);
}

/* cursorFetch(name, count, planId, knownShape) → result (no rows when exhausted) */
Napi::Value
CursorFetch(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwResult	res;

	if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() ||
		!info[3].IsNumber())
	{
		Napi::TypeError::New(env, "cursorFetch(name, count, planId, knownShape) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string name = info[0].As<Napi::String>().Utf8Value();
	long		count = (long) info[1].As<Napi::Number>().Int64Value();
	int			plan_id = info[2].As<Napi::Number>().Int32Value();
	int			known = info[3].As<Napi::Number>().Int32Value();

	if (!pgnw_cursor_fetch(name.c_str(), count, plan_id, &res, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res, known);
}

/* cursorClose(name) */
Napi::Value
CursorClose(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (info.Length() >= 1 && info[0].IsString())
	{
		std::string name = info[0].As<Napi::String>().Utf8Value();

		if (!pgnw_cursor_close(name.c_str(), &err))
			PgnwThrowPgError(info.Env(), &err);
	}
	return info.Env().Undefined();
}

/* begin() → the new depth */
Napi::Value
Begin(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_begin(&err))
		PgnwThrowPgError(info.Env(), &err);
	return Napi::Number::New(info.Env(), pgnw_xact_depth());
}

/* commit() */
Napi::Value
Commit(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_commit(&err))
		PgnwThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

/* rollback() */
Napi::Value
Rollback(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};

	if (!pgnw_rollback(&err))
		PgnwThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

/* depth() → 0: no transaction, 1: a transaction, more: savepoints */
Napi::Value
Depth(const Napi::CallbackInfo &info)
{
	return Napi::Number::New(info.Env(), pgnw_xact_depth());
}

/*
 * dropResultBuffers(): frees the big column buffers kept for the next
 * statement (the runtime calls it once no statement has needed them for a
 * while).  Between statements only, which is when JS runs.
 */
Napi::Value
DropResultBuffers(const Napi::CallbackInfo &info)
{
	pgnw_result_drop_big();
	return info.Env().Undefined();
}

/* the SQL entry points, by the names the runtime calls them */
const PgnwExport sql_exports[] = {
	{"prepare", Prepare},
	{"planTypes", PlanTypes},
	{"freePlan", FreePlan},
	{"resultHeader", ResultHeader},
	{"execute", nullptr, Execute},
	{"executeText", ExecuteText},
	{"cursorOpen", CursorOpen},
	{"cursorFetch", CursorFetch},
	{"cursorClose", CursorClose},
	{"begin", Begin},
	{"commit", Commit},
	{"rollback", Rollback},
	{"depth", Depth},
	{"dropResultBuffers", DropResultBuffers},
};

}								/* namespace */

extern const PgnwExports PgnwSqlExports = {sql_exports, sizeof(sql_exports) / sizeof(sql_exports[0])};
