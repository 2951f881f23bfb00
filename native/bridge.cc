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
#include <v8.h>

#include <pthread.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <string>
#include <vector>

#include "../extension/runtime.h"
#include "guard.h"

/* control.cc: the control-surface functions (launch, worker state) */
void		RegisterControl(Napi::Env env, Napi::Object exports);

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

	return Napi::ArrayBuffer(env, reinterpret_cast<napi_value>(*ab));
}

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
				Napi::ArrayBuffer ab = PgnwNewArrayBuffer(env, v.u.s.len);

				if (ab.IsEmpty())
					return Napi::Value();
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
 * JS parameter values (argv[0..n-1]) as PgnwParams.  strings keeps the UTF-8
 * copies alive while PostgreSQL reads them.  Returns false with a JS
 * exception pending.
 */
bool
ExtractParams(Napi::Env env, const napi_value *argv, size_t n, std::vector<PgnwParam> &params,
			  std::vector<std::string> &strings)
{
	params.resize(n);
	strings.resize(n);
	for (size_t i = 0; i < n; i++)
	{
		Napi::Value v(env, argv[i]);
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
 * The result header: a Float64Array shared with JS (sql.ts), written by
 * every execute/cursorFetch, so the figures of a result cross without
 * making JS values.
 */
enum
{
	H_COMMAND = 0,				/* PgnwCommand */
	H_COUNT,					/* rows returned or affected */
	H_SHAPE,					/* shape id (0: not cached) */
	H_NROWS,
	H_NCOLS,
	H_LAYOUT,					/* LAYOUT_* */
	H_FIELDS,					/* 1: the return value is [payload, fields, kinds] */
	H_RETYPED,					/* 1: the plan's parameter types changed (planTypes); 2: and it was not run */
	H_SIZE = 8
};

enum
{
	LAYOUT_NONE = 0,			/* no rows: returns undefined (or [undefined, fields, kinds]) */
	LAYOUT_SCALAR,				/* one row, one column: the value itself */
	LAYOUT_FLAT,				/* up to SMALL_ROWS rows: values, row-major */
	LAYOUT_COLUMNS				/* per column: data, nulls, offsets (see ColumnsToJs) */
};

/* up to this many rows, values are made here one by one; above, column by column */
constexpr uint64_t SMALL_ROWS = 16;

double	   *header = static_cast<double *>(calloc(H_SIZE, sizeof(double)));
Napi::Reference<Napi::Float64Array> &header_ref = *new Napi::Reference<Napi::Float64Array>();

Napi::Value
ResultHeader(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();

	if (header_ref.IsEmpty())
	{
		Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, header, H_SIZE * sizeof(double));

		header_ref = Napi::Persistent(Napi::Float64Array::New(env, H_SIZE, ab, 0));
	}
	return header_ref.Value();
}

inline bool
IsNull(const PgnwColumn &col, uint64_t r)
{
	return col.has_nulls && col.nulls[r];
}

inline napi_value
MakeString(napi_env env, const PgnwColumn &col, uint64_t r)
{
	const uint32_t *off = static_cast<const uint32_t *>(col.data);
	const char *p = col.bytes ? col.bytes + off[r] : "";
	size_t		len = off[r + 1] - off[r];
	napi_value	s;

	if (col.ascii)
		napi_create_string_latin1(env, p, len, &s);
	else
		napi_create_string_utf8(env, p, len, &s);
	return s;
}

napi_value
MakeBytes(napi_env env, const char *p, size_t len)
{
	Napi::ArrayBuffer ab = PgnwNewArrayBuffer(Napi::Env(env), len);

	if (ab.IsEmpty())
		return nullptr;
	if (len > 0)
		memcpy(ab.Data(), p, len);
	return Napi::Uint8Array::New(env, len, ab, 0);
}

/* the JS value of row r of a column (small results) */
napi_value
CellToJs(Napi::Env env, const PgnwColumn &col, uint64_t r)
{
	napi_value	v;

	if (IsNull(col, r))
	{
		napi_get_null(env, &v);
		return v;
	}
	switch (col.kind)
	{
		case PGNW_COL_BOOL:
			napi_get_boolean(env, static_cast<const uint8_t *>(col.data)[r] != 0, &v);
			return v;
		case PGNW_COL_INT32:
			napi_create_int32(env, static_cast<const int32_t *>(col.data)[r], &v);
			return v;
		case PGNW_COL_FLOAT64:
			napi_create_double(env, static_cast<const double *>(col.data)[r], &v);
			return v;
		case PGNW_COL_INT64:
			napi_create_bigint_int64(env, static_cast<const int64_t *>(col.data)[r], &v);
			return v;
		case PGNW_COL_DATE:
			{
				double		ms = static_cast<const double *>(col.data)[r];

				if (std::isinf(ms))
					napi_create_string_latin1(env, ms > 0 ? "infinity" : "-infinity", NAPI_AUTO_LENGTH, &v);
				else
					napi_create_date(env, ms, &v);
				return v;
			}
		case PGNW_COL_TEXT:
			return MakeString(env, col, r);
		case PGNW_COL_JSON:
			return json_parse.Call({Napi::Value(env, MakeString(env, col, r))});
		case PGNW_COL_BYTES:
			{
				const uint32_t *off = static_cast<const uint32_t *>(col.data);

				return MakeBytes(env, col.bytes ? col.bytes + off[r] : "", off[r + 1] - off[r]);
			}
		case PGNW_COL_VALUES:
			return ToJs(env, static_cast<const PgnwValue *>(col.data)[r]);
		default:
			napi_get_null(env, &v);
			return v;
	}
}

/*
 * Text columns of big results are built with V8 directly: N-API has no bulk
 * array creation, and napi_set_element opens a TryCatch per element, which
 * made strings cost ~4x what V8 needs.  A napi_value is a v8::Local in
 * disguise in Node 18 (js_native_api_v8.h: V8LocalValueFromJsValue), the
 * version this runtime is pinned to.
 */
inline napi_value
ToNapi(v8::Local<v8::Value> local)
{
	return reinterpret_cast<napi_value>(*local);
}

inline v8::Local<v8::Value>
ToV8(napi_value value)
{
	v8::Local<v8::Value> local;

	static_assert(sizeof(local) == sizeof(value), "napi_value is a v8::Local");
	memcpy(static_cast<void *>(&local), &value, sizeof(value));
	return local;
}

/* one JSON.parse of "[v1,v2,...]" instead of one per value: the column's values */
constexpr size_t JSON_BATCH_MAX = size_t(1) << 28;	/* V8 strings stop at ~2^29 chars */

napi_value
JsonColumnToJs(Napi::Env env, const PgnwColumn &col, uint64_t n)
{
	const uint32_t *off = static_cast<const uint32_t *>(col.data);
	const char *bytes = col.bytes ? col.bytes : "";
	std::string text;

	text.reserve(col.nbytes + n * 5 + 2);
	text += '[';
	for (uint64_t r = 0; r < n; r++)
	{
		if (r > 0)
			text += ',';
		if (IsNull(col, r))
			text += "null";
		else
			text.append(bytes + off[r], off[r + 1] - off[r]);
	}
	text += ']';
	Napi::Value str = col.ascii ?
		Napi::Value(env, ToNapi(v8::String::NewFromOneByte(v8::Isolate::GetCurrent(),
														   reinterpret_cast<const uint8_t *>(text.data()),
														   v8::NewStringType::kNormal, (int) text.size()).ToLocalChecked())) :
		Napi::String::New(env, text.data(), text.size());

	return json_parse.Call({str});
}

/*
 * The column's strings (JSON text for JSON), null for NULL, as an array of
 * chunks of TEXT_CHUNK strings (JS reads d[r >>> 13][r & 8191]): handles of a
 * chunk are released when it is done, so the scavenges that creating a
 * million strings triggers do not visit a million live handles each time.
 */
constexpr int TEXT_CHUNK_BITS = 13;
constexpr uint64_t TEXT_CHUNK = uint64_t(1) << TEXT_CHUNK_BITS;

napi_value
TextColumnToJs(Napi::Env env, const PgnwColumn &col, uint64_t n)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::EscapableHandleScope scope(isolate);
	std::vector<v8::Local<v8::Value>> chunks((n + TEXT_CHUNK - 1) / TEXT_CHUNK);
	std::vector<v8::Local<v8::Value>> items(std::min(n, TEXT_CHUNK));
	const uint32_t *off = static_cast<const uint32_t *>(col.data);
	const char *bytes = col.bytes ? col.bytes : "";

	for (uint64_t r0 = 0, k = 0; r0 < n; r0 += TEXT_CHUNK, k++)
	{
		v8::EscapableHandleScope chunk_scope(isolate);
		v8::Local<v8::Value> null = v8::Null(isolate);
		uint64_t	end = std::min(n, r0 + TEXT_CHUNK);

		for (uint64_t r = r0; r < end; r++)
		{
			v8::MaybeLocal<v8::String> s;
			v8::Local<v8::String> str;
			int			len = static_cast<int>(off[r + 1] - off[r]);

			if (IsNull(col, r))
			{
				items[r - r0] = null;
				continue;
			}
			if (col.ascii)
				s = v8::String::NewFromOneByte(isolate, reinterpret_cast<const uint8_t *>(bytes + off[r]),
											   v8::NewStringType::kNormal, len);
			else
				s = v8::String::NewFromUtf8(isolate, bytes + off[r], v8::NewStringType::kNormal, len);
			if (!s.ToLocal(&str))
			{
				Napi::RangeError::New(env, "a text value is too long for a JavaScript string").ThrowAsJavaScriptException();
				return nullptr;
			}
			items[r - r0] = str;
		}
		chunks[k] = chunk_scope.Escape(v8::Array::New(isolate, items.data(), end - r0));
	}
	return ToNapi(scope.Escape(v8::Array::New(isolate, chunks.data(), chunks.size())));
}

/*
 * Up to this many rows, fixed-width columns cross as plain JS arrays rather
 * than typed arrays over malloc'd buffers: a cursor loop makes a result per
 * batch, and external ArrayBuffers that got promoted wait for a full GC
 * (V8 starts one only after ~64 MB of external memory), so RSS crept up.
 */
constexpr uint64_t TYPED_MIN_ROWS = 65536;

/* a fixed-width column as a JS array of the same raw values (bool 0/1, dates ms) */
napi_value
FixedColumnToJs(const PgnwColumn &col, uint64_t n)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::EscapableHandleScope scope(isolate);
	std::vector<v8::Local<v8::Value>> items(n);

	for (uint64_t r = 0; r < n; r++)
	{
		switch (col.kind)
		{
			case PGNW_COL_BOOL:
				items[r] = v8::Integer::New(isolate, static_cast<const uint8_t *>(col.data)[r]);
				break;
			case PGNW_COL_INT32:
				items[r] = v8::Integer::New(isolate, static_cast<const int32_t *>(col.data)[r]);
				break;
			case PGNW_COL_INT64:
				items[r] = v8::BigInt::New(isolate, static_cast<const int64_t *>(col.data)[r]);
				break;
			default:			/* FLOAT64, DATE */
				items[r] = v8::Number::New(isolate, static_cast<const double *>(col.data)[r]);
				break;
		}
	}
	return ToNapi(scope.Escape(v8::Array::New(isolate, items.data(), n)));
}

/* the column's null flags as a JS array of 0/1 */
napi_value
NullsToJs(const PgnwColumn &col, uint64_t n)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::EscapableHandleScope scope(isolate);
	std::vector<v8::Local<v8::Value>> items(n);

	for (uint64_t r = 0; r < n; r++)
		items[r] = v8::Integer::New(isolate, col.nulls[r]);
	return ToNapi(scope.Escape(v8::Array::New(isolate, items.data(), n)));
}

void
FreeBuffer(napi_env env, void *data, void *hint)
{
	free(data);
}

/* A column buffer handed to JS as an ArrayBuffer it owns (no copy). */
Napi::ArrayBuffer
TakeBuffer(Napi::Env env, void *&ptr, size_t &cap, size_t len)
{
	napi_value	ab;

	if (ptr == nullptr || len == 0)
		return Napi::ArrayBuffer::New(env, 0);
	/* give back what the doubling left over */
	if (cap > len + 4096)
	{
		void	   *shrunk = realloc(ptr, len);

		if (shrunk != nullptr)
			ptr = shrunk;
	}
	if (napi_create_external_arraybuffer(env, ptr, len, FreeBuffer, nullptr, &ab) != napi_ok)
		return Napi::ArrayBuffer::New(env, 0);	/* exception pending; ptr stays with guard.c */
	ptr = nullptr;
	cap = 0;
	return Napi::ArrayBuffer(env, ab);
}

/*
 * Big results, per column three slots [data, nulls, offsets]:
 *   BOOL Uint8Array, INT32 Int32Array, FLOAT64/DATE Float64Array, INT64
 *   BigInt64Array (nulls: Uint8Array, 1 = NULL, or null when none); below
 *   TYPED_MIN_ROWS rows plain arrays of the same values instead;
 *   TEXT (and JSON too big for one parse) chunks of strings (null for NULL),
 *   see TextColumnToJs; JSON the parsed values (offsets slot: 1);
 *   BYTES Uint8Array of all bytes + Uint32Array offsets (nrows + 1), nulls;
 *   VALUES an array of values (null for NULL).
 */
Napi::Value
ColumnsToJs(Napi::Env env, PgnwResult &res)
{
	uint64_t	n = res.nrows;
	Napi::Array out = Napi::Array::New(env, res.ncols * 3);

	for (int c = 0; c < res.ncols; c++)
	{
		PgnwColumn &col = res.columns[c];
		Napi::Value data = env.Null();
		Napi::Value nulls = env.Null();
		Napi::Value offsets = env.Null();

		bool		typed = n >= TYPED_MIN_ROWS;

		switch (col.kind)
		{
			case PGNW_COL_BOOL:
			case PGNW_COL_INT32:
			case PGNW_COL_FLOAT64:
			case PGNW_COL_DATE:
			case PGNW_COL_INT64:
				if (!typed)
					data = Napi::Value(env, FixedColumnToJs(col, n));
				else if (col.kind == PGNW_COL_BOOL)
					data = Napi::Uint8Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n), 0);
				else if (col.kind == PGNW_COL_INT32)
					data = Napi::Int32Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 4), 0);
				else if (col.kind == PGNW_COL_INT64)
					data = Napi::TypedArrayOf<int64_t>::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 8), 0,
															napi_bigint64_array);
				else
					data = Napi::Float64Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 8), 0);
				break;
			case PGNW_COL_BYTES:
				{
					void	   *bytes = col.bytes;

					data = Napi::Uint8Array::New(env, col.nbytes, TakeBuffer(env, bytes, col.bytes_cap, col.nbytes), 0);
					col.bytes = static_cast<char *>(bytes);
					offsets = Napi::Uint32Array::New(env, n + 1, TakeBuffer(env, col.data, col.data_cap, (n + 1) * 4), 0);
				}
				break;
			case PGNW_COL_JSON:
				if (col.nbytes + n * 5 + 2 < JSON_BATCH_MAX)
				{
					/* parsed values; offsets slot 1 says so */
					data = Napi::Value(env, JsonColumnToJs(env, col, n));
					offsets = Napi::Number::New(env, 1);
					break;
				}
				/* too big for one parse: strings, parsed one by one in JS */
				[[fallthrough]];
			case PGNW_COL_TEXT:
				{
					napi_value	arr = TextColumnToJs(env, col, n);

					if (arr == nullptr)
						return env.Undefined();
					data = Napi::Value(env, arr);
				}
				break;
			case PGNW_COL_VALUES:
				{
					Napi::Array arr = Napi::Array::New(env, n);
					napi_value	jsnull;

					napi_get_null(env, &jsnull);
					for (uint64_t r0 = 0; r0 < n; r0 += 1024)
					{
						Napi::HandleScope scope(env);
						uint64_t	end = std::min(n, r0 + 1024);

						for (uint64_t r = r0; r < end; r++)
						{
							napi_value	v;

							if (IsNull(col, r))
								v = jsnull;
							else if (col.kind == PGNW_COL_VALUES)
								v = ToJs(env, static_cast<const PgnwValue *>(col.data)[r]);
							else
								v = MakeString(env, col, r);
							napi_set_element(env, arr, static_cast<uint32_t>(r), v);
						}
						if (env.IsExceptionPending())
							return env.Undefined();
					}
					data = arr;
				}
				break;
		}
		if (col.has_nulls && col.kind != PGNW_COL_TEXT && col.kind != PGNW_COL_JSON &&
			col.kind != PGNW_COL_VALUES)
		{
			if (!typed)
				nulls = Napi::Value(env, NullsToJs(col, n));
			else
			{
				void	   *p = col.nulls;

				nulls = Napi::Uint8Array::New(env, n, TakeBuffer(env, p, col.nulls_cap, n), 0);
				col.nulls = static_cast<uint8_t *>(p);
			}
		}
		if (env.IsExceptionPending())
			return env.Undefined();
		out.Set(c * 3, data);
		out.Set(c * 3 + 1, nulls);
		out.Set(c * 3 + 2, offsets);
	}
	return out;
}

/*
 * The JS side of a result that guard.c holds (see the header above), then
 * pgnw_finish() to release it (and commit an implicit transaction).
 * known_shape: the shape id the caller has names for (0: none).
 */
Napi::Value
FinishResult(Napi::Env env, PgnwResult &res, int known_shape)
{
	PgnwError	err = {};
	Napi::Value payload = env.Undefined();
	int			layout = LAYOUT_NONE;
	bool		send_fields = res.ncols > 0 && (res.shape_id == 0 || res.shape_id != known_shape);

	if (res.ncols > 0 && res.nrows > 0)
	{
		if (res.nrows == 1 && res.ncols == 1)
		{
			layout = LAYOUT_SCALAR;
			payload = Napi::Value(env, CellToJs(env, res.columns[0], 0));
		}
		else if (res.nrows <= SMALL_ROWS)
		{
			uint32_t	total = static_cast<uint32_t>(res.nrows * res.ncols);
			std::vector<v8::Local<v8::Value>> items(total);
			uint32_t	i = 0;

			layout = LAYOUT_FLAT;
			for (uint64_t r = 0; r < res.nrows && !env.IsExceptionPending(); r++)
				for (int c = 0; c < res.ncols; c++)
				{
					napi_value	v = CellToJs(env, res.columns[c], r);

					if (v == nullptr || env.IsExceptionPending())
						break;
					items[i++] = ToV8(v);
				}
			if (!env.IsExceptionPending())
				payload = Napi::Value(env, ToNapi(v8::Array::New(v8::Isolate::GetCurrent(), items.data(), total)));
		}
		else
		{
			layout = LAYOUT_COLUMNS;
			payload = ColumnsToJs(env, res);
		}
	}
	Napi::Value out = payload;

	if (send_fields && !env.IsExceptionPending())
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
		out = wrap;
	}
	header[H_COMMAND] = res.command;
	header[H_COUNT] = static_cast<double>(res.processed);
	header[H_SHAPE] = res.shape_id;
	header[H_NROWS] = static_cast<double>(res.nrows);
	header[H_NCOLS] = res.ncols;
	header[H_LAYOUT] = layout;
	header[H_FIELDS] = send_fields ? 1 : 0;
	header[H_RETYPED] = res.held ? 2 : res.retyped ? 1 : 0;

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

/* at most this many parameters on the stack; more is rare (and allowed) */
constexpr size_t ARGV_STACK = 16;

/*
 * execute(planId, knownShape, ...params) → result (see FinishResult)
 */
Napi::Value
Execute(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwResult	res;
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;
	size_t		argc = info.Length();

	if (argc < 2 || !info[0].IsNumber() || !info[1].IsNumber())
	{
		Napi::TypeError::New(env, "execute(planId, knownShape, ...params) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	int			plan_id = info[0].As<Napi::Number>().Int32Value();
	int			known = info[1].As<Napi::Number>().Int32Value();

	if (argc > 2)
	{
		napi_value	stackv[ARGV_STACK];
		std::vector<napi_value> heapv;
		napi_value *argv = stackv;

		if (argc - 2 > ARGV_STACK)
		{
			heapv.resize(argc - 2);
			argv = heapv.data();
		}
		for (size_t i = 2; i < argc; i++)
			argv[i - 2] = info[i];
		if (!ExtractParams(env, argv, argc - 2, params, strings))
			return env.Undefined();
	}
	if (!pgnw_execute(plan_id, nullptr, (int) params.size(), params.data(), &res, &err))
	{
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res, known);
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
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res, 0);
}

/* cursorOpen(planId, ...params) → cursor name */
Napi::Value
CursorOpen(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	char		name[PGNW_CURSOR_NAME_LEN];
	std::vector<PgnwParam> params;
	std::vector<std::string> strings;
	size_t		argc = info.Length();

	if (argc < 1 || !info[0].IsNumber())
	{
		Napi::TypeError::New(env, "cursorOpen(planId, ...params) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	int			plan_id = info[0].As<Napi::Number>().Int32Value();
	std::vector<napi_value> argv;

	for (size_t i = 1; i < argc; i++)
		argv.push_back(info[i]);
	if (!ExtractParams(env, argv.data(), argv.size(), params, strings))
		return env.Undefined();
	if (!pgnw_cursor_open(plan_id, nullptr, (int) params.size(), params.data(), name, &err))
	{
		ThrowPgError(env, &err);
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
		ThrowPgError(env, &err);
		return env.Undefined();
	}
	return FinishResult(env, res, known);
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

/* memoryUsage(): the ArrayBuffer budget (extension/runtime.cc), in bytes */
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
	return out;
}

/*
 * releaseMemory(): a full GC that also shrinks V8's young generation, then
 * malloc_trim: what an idle worker can give back (see bench: idle PSS).
 */
Napi::Value
ReleaseMemory(const Napi::CallbackInfo &info)
{
	bool		drop_file_pages = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();

	v8::Isolate::GetCurrent()->LowMemoryNotification();
	malloc_trim(0);
	return Napi::Number::New(info.Env(), drop_file_pages ? static_cast<double>(pgnw_drop_file_pages()) : 0.0);
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
	exports.Set("planTypes", Napi::Function::New(env, PlanTypes));
	exports.Set("freePlan", Napi::Function::New(env, FreePlan));
	exports.Set("resultHeader", Napi::Function::New(env, ResultHeader));
	exports.Set("execute", Napi::Function::New(env, Execute));
	exports.Set("executeText", Napi::Function::New(env, ExecuteText));
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
	exports.Set("memoryUsage", Napi::Function::New(env, MemoryUsage));
	exports.Set("shutdownRequested", Napi::Function::New(env, ShutdownRequested));
	exports.Set("releaseMemory", Napi::Function::New(env, ReleaseMemory));
	RegisterControl(env, exports);
	return exports;
}

}								/* namespace */

/* for control.cc */
void
PgnwThrowPgError(Napi::Env env, PgnwError *err)
{
	ThrowPgError(env, err);
}

NODE_API_MODULE(pg_node_worker_bridge, Module)
