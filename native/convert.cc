/*
 * convert.cc — a result (result.h) and its values as JS values.
 *
 * The payload of a result is laid out by its size (contract.h LAYOUT_*):
 * the one value of a 1x1 result; up to FLAT_MAX_ROWS rows the values
 * row-major, made one by one; above, column by column (ColumnsToJs), which
 * is where the time of big results goes.  Column data cross as typed arrays
 * over the builder's malloc'd buffers (no copy) from TYPED_MIN_ROWS rows,
 * text as V8 strings made in bulk, JSON parsed in one JSON.parse per column.
 * The row objects themselves are made by the runtime (src/runtime/sql.ts).
 *
 * The bulk paths use V8's API directly: N-API has no bulk array creation,
 * and napi_set_element opens a TryCatch per element, which made strings
 * cost ~4x what V8 needs.  That ties this file to Node 18's V8, like
 * extension/runtime.cc.
 *
 * Limits: a JSON column is parsed in one go below JSON_BATCH_MAX bytes (V8
 * strings stop at ~2^29 characters), above as strings JS parses one by one;
 * a text value longer than a V8 string is a RangeError.
 */
#include <napi.h>
#include <v8.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bridge.h"
#include "convert.h"
#include "result.h"

namespace
{

/* Heap-allocated and never freed: see bridge.cc's pg_error_class. */
Napi::FunctionReference &json_parse = *new Napi::FunctionReference();

/* up to this many rows, values are made here one by one; above, column by column */
constexpr uint64_t FLAT_MAX_ROWS = 16;

/*
 * Up to this many rows, fixed-width columns cross as plain JS arrays rather
 * than typed arrays over malloc'd buffers: a cursor loop makes a result per
 * batch, and external ArrayBuffers that got promoted wait for a full GC
 * (V8 starts one only after ~64 MB of external memory), so RSS crept up.
 */
constexpr uint64_t TYPED_MIN_ROWS = 65536;

/* one JSON.parse of "[v1,v2,...]" below this many bytes */
constexpr size_t JSON_BATCH_MAX = size_t(1) << 28;

/* text columns: chunks of TEXT_CHUNK strings (contract.h) */
constexpr uint64_t TEXT_CHUNK = uint64_t(1) << PGNW_TEXT_CHUNK_BITS;

/* PgnwValues made per handle scope in a column of them */
constexpr uint64_t VALUES_SCOPE_ROWS = 1024;

Napi::Value ValueToJs(Napi::Env env, const PgnwValue &v);

/* Dimension dim of an array value (items from *pos on) as nested JS arrays. */
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
			out.Set(i, ValueToJs(env, arr->items[(*pos)++]));
	}
	return out;
}

/* A Uint8Array with a copy of the len bytes at p (nullptr with a RangeError pending). */
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

/* One value (an array element or a whole array) as JS. */
Napi::Value
ValueToJs(Napi::Env env, const PgnwValue &v)
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
			return Napi::Value(env, MakeBytes(env, v.u.s.ptr, v.u.s.len));
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

/* is row r of col NULL? */
inline bool
IsNull(const PgnwColumn &col, uint64_t r)
{
	return col.has_nulls && col.nulls[r];
}

/* Row r of a text-kind column as a JS string (Latin-1 when the column is ASCII). */
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

/* the JS value of row r of a fixed-width column (small results) */
napi_value
FixedCellToJs(napi_env env, const PgnwColumn &col, uint64_t r)
{
	napi_value	v;

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
		default:				/* DATE */
			{
				double		ms = static_cast<const double *>(col.data)[r];

				if (std::isinf(ms))
					napi_create_string_latin1(env, ms > 0 ? "infinity" : "-infinity", NAPI_AUTO_LENGTH, &v);
				else
					napi_create_date(env, ms, &v);
				return v;
			}
	}
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
		case PGNW_COL_INT32:
		case PGNW_COL_FLOAT64:
		case PGNW_COL_INT64:
		case PGNW_COL_DATE:
			return FixedCellToJs(env, col, r);
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
			return ValueToJs(env, static_cast<const PgnwValue *>(col.data)[r]);
		default:
			napi_get_null(env, &v);
			return v;
	}
}

/* LAYOUT_FLAT: every value, row-major, in one JS array */
Napi::Value
FlatToJs(Napi::Env env, PgnwResult &res)
{
	uint32_t	total = static_cast<uint32_t>(res.nrows * res.ncols);
	std::vector<v8::Local<v8::Value>> items(total);
	uint32_t	i = 0;

	for (uint64_t r = 0; r < res.nrows && !env.IsExceptionPending(); r++)
		for (int c = 0; c < res.ncols; c++)
		{
			napi_value	v = CellToJs(env, res.columns[c], r);

			if (v == nullptr || env.IsExceptionPending())
				break;
			items[i++] = PgnwToV8(v);
		}
	if (env.IsExceptionPending())
		return env.Undefined();
	return Napi::Value(env, PgnwToNapi(v8::Array::New(v8::Isolate::GetCurrent(), items.data(), total)));
}

/* A JSON column's values: one JSON.parse of "[v1,v2,...]" instead of one per value. */
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
		Napi::Value(env, PgnwToNapi(v8::String::NewFromOneByte(v8::Isolate::GetCurrent(),
															   reinterpret_cast<const uint8_t *>(text.data()),
															   v8::NewStringType::kNormal, (int) text.size()).ToLocalChecked())) :
		Napi::String::New(env, text.data(), text.size());

	return json_parse.Call({str});
}

/*
 * The column's strings (JSON text for JSON), null for NULL, as an array of
 * chunks of TEXT_CHUNK strings: handles of a chunk are released when it is
 * done, so the scavenges that creating a million strings triggers do not
 * visit a million live handles each time.
 */
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
	return PgnwToNapi(scope.Escape(v8::Array::New(isolate, chunks.data(), chunks.size())));
}

/* n values of a C array of T as a JS array, each made by make(isolate, value) */
template <typename T, typename Make>
napi_value
ArrayOfValues(const void *data, uint64_t n, Make make)
{
	v8::Isolate *isolate = v8::Isolate::GetCurrent();
	v8::EscapableHandleScope scope(isolate);
	std::vector<v8::Local<v8::Value>> items(n);
	const T    *values = static_cast<const T *>(data);

	for (uint64_t r = 0; r < n; r++)
		items[r] = make(isolate, values[r]);
	return PgnwToNapi(scope.Escape(v8::Array::New(isolate, items.data(), n)));
}

/* a fixed-width column as a JS array of the same raw values (bool 0/1, dates ms) */
napi_value
FixedColumnToJs(const PgnwColumn &col, uint64_t n)
{
	auto		integer = [](v8::Isolate *isolate, int32_t v) { return v8::Integer::New(isolate, v); };

	switch (col.kind)
	{
		case PGNW_COL_BOOL:
			return ArrayOfValues<uint8_t>(col.data, n, integer);
		case PGNW_COL_INT32:
			return ArrayOfValues<int32_t>(col.data, n, integer);
		case PGNW_COL_INT64:
			return ArrayOfValues<int64_t>(col.data, n,
										  [](v8::Isolate *isolate, int64_t v) { return v8::BigInt::New(isolate, v); });
		default:				/* FLOAT64, DATE */
			return ArrayOfValues<double>(col.data, n,
										 [](v8::Isolate *isolate, double v) { return v8::Number::New(isolate, v); });
	}
}

/* the column's null flags as a JS array of 0/1 */
napi_value
NullsToJs(const PgnwColumn &col, uint64_t n)
{
	return ArrayOfValues<uint8_t>(col.nulls, n,
								  [](v8::Isolate *isolate, int32_t v) { return v8::Integer::New(isolate, v); });
}

/* the finalizer of a column buffer handed to JS */
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
		return Napi::ArrayBuffer::New(env, 0);	/* exception pending; ptr stays with the builder */
	ptr = nullptr;
	cap = 0;
	return Napi::ArrayBuffer(env, ab);
}

/* a fixed-width column's data: a plain array, or (typed) a typed array over its buffer */
Napi::Value
FixedColumnData(Napi::Env env, PgnwColumn &col, uint64_t n, bool typed)
{
	if (!typed)
		return Napi::Value(env, FixedColumnToJs(col, n));
	switch (col.kind)
	{
		case PGNW_COL_BOOL:
			return Napi::Uint8Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n), 0);
		case PGNW_COL_INT32:
			return Napi::Int32Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 4), 0);
		case PGNW_COL_INT64:
			return Napi::TypedArrayOf<int64_t>::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 8), 0,
													napi_bigint64_array);
		default:				/* FLOAT64, DATE */
			return Napi::Float64Array::New(env, n, TakeBuffer(env, col.data, col.data_cap, n * 8), 0);
	}
}

/* a column of PgnwValues (arrays): an array of values, null for NULL */
Napi::Value
ValuesColumnData(Napi::Env env, const PgnwColumn &col, uint64_t n)
{
	Napi::Array arr = Napi::Array::New(env, n);
	napi_value	jsnull;

	napi_get_null(env, &jsnull);
	for (uint64_t r0 = 0; r0 < n; r0 += VALUES_SCOPE_ROWS)
	{
		Napi::HandleScope scope(env);
		uint64_t	end = std::min(n, r0 + VALUES_SCOPE_ROWS);

		for (uint64_t r = r0; r < end; r++)
		{
			napi_value	v = IsNull(col, r) ? jsnull :
				static_cast<napi_value>(ValueToJs(env, static_cast<const PgnwValue *>(col.data)[r]));

			napi_set_element(env, arr, static_cast<uint32_t>(r), v);
		}
		if (env.IsExceptionPending())
			return Napi::Value();
	}
	return arr;
}

/* the null flags of a non-text column: a plain array, or (typed) a Uint8Array over its buffer */
Napi::Value
NullsData(Napi::Env env, PgnwColumn &col, uint64_t n, bool typed)
{
	void	   *p = col.nulls;
	Napi::Value nulls;

	if (!typed)
		return Napi::Value(env, NullsToJs(col, n));
	nulls = Napi::Uint8Array::New(env, n, TakeBuffer(env, p, col.nulls_cap, n), 0);
	col.nulls = static_cast<uint8_t *>(p);
	return nulls;
}

/*
 * One column of a big result as its three slots [data, nulls, offsets]:
 *   BOOL Uint8Array, INT32 Int32Array, FLOAT64/DATE Float64Array, INT64
 *   BigInt64Array (nulls: Uint8Array, 1 = NULL, or null when none); below
 *   TYPED_MIN_ROWS rows plain arrays of the same values instead;
 *   TEXT (and JSON too big for one parse) chunks of strings (null for NULL),
 *   see TextColumnToJs; JSON the parsed values (offsets: PGNW_JSON_PARSED);
 *   BYTES Uint8Array of all bytes + Uint32Array offsets (nrows + 1), nulls;
 *   VALUES an array of values (null for NULL).
 * false with a JS exception pending.
 */
bool
ColumnToJs(Napi::Env env, PgnwColumn &col, uint64_t n, Napi::Value slots[3])
{
	bool		typed = n >= TYPED_MIN_ROWS;

	slots[0] = slots[1] = slots[2] = env.Null();
	switch (col.kind)
	{
		case PGNW_COL_BOOL:
		case PGNW_COL_INT32:
		case PGNW_COL_FLOAT64:
		case PGNW_COL_DATE:
		case PGNW_COL_INT64:
			slots[0] = FixedColumnData(env, col, n, typed);
			break;
		case PGNW_COL_BYTES:
			{
				void	   *bytes = col.bytes;

				slots[0] = Napi::Uint8Array::New(env, col.nbytes, TakeBuffer(env, bytes, col.bytes_cap, col.nbytes), 0);
				col.bytes = static_cast<char *>(bytes);
				slots[2] = Napi::Uint32Array::New(env, n + 1, TakeBuffer(env, col.data, col.data_cap, (n + 1) * 4), 0);
			}
			break;
		case PGNW_COL_JSON:
			if (col.nbytes + n * 5 + 2 < JSON_BATCH_MAX)
			{
				slots[0] = Napi::Value(env, JsonColumnToJs(env, col, n));
				slots[2] = Napi::Number::New(env, PGNW_JSON_PARSED);
				break;
			}
			/* too big for one parse: strings, parsed one by one in JS */
			[[fallthrough]];
		case PGNW_COL_TEXT:
			{
				napi_value	arr = TextColumnToJs(env, col, n);

				if (arr == nullptr)
					return false;
				slots[0] = Napi::Value(env, arr);
			}
			break;
		case PGNW_COL_VALUES:
			slots[0] = ValuesColumnData(env, col, n);
			if (slots[0].IsEmpty())
				return false;
			break;
	}
	if (col.has_nulls && col.kind != PGNW_COL_TEXT && col.kind != PGNW_COL_JSON &&
		col.kind != PGNW_COL_VALUES)
		slots[1] = NullsData(env, col, n, typed);
	return !env.IsExceptionPending();
}

/* LAYOUT_COLUMNS: per column [data, nulls, offsets] (ColumnToJs), flat in one array */
Napi::Value
ColumnsToJs(Napi::Env env, PgnwResult &res)
{
	Napi::Array out = Napi::Array::New(env, res.ncols * 3);

	for (int c = 0; c < res.ncols; c++)
	{
		Napi::Value slots[3];

		if (!ColumnToJs(env, res.columns[c], res.nrows, slots))
			return env.Undefined();
		out.Set(c * 3, slots[0]);
		out.Set(c * 3 + 1, slots[1]);
		out.Set(c * 3 + 2, slots[2]);
	}
	return out;
}

}								/* namespace */

/* Keep JSON.parse for the JSON values (init()). */
void
PgnwConvertInit(Napi::Env env)
{
	json_parse = Napi::Persistent(
		env.Global().Get("JSON").As<Napi::Object>().Get("parse").As<Napi::Function>());
}

/*
 * The payload of a result and its layout (PGNW_LAYOUT_*); undefined with a
 * JS exception pending when a value could not be made.
 */
Napi::Value
PgnwResultToJs(Napi::Env env, PgnwResult &res, int *layout)
{
	*layout = PGNW_LAYOUT_NONE;
	if (res.ncols == 0 || res.nrows == 0)
		return env.Undefined();
	if (res.nrows == 1 && res.ncols == 1)
	{
		*layout = PGNW_LAYOUT_SCALAR;
		return Napi::Value(env, CellToJs(env, res.columns[0], 0));
	}
	if (res.nrows <= FLAT_MAX_ROWS)
	{
		*layout = PGNW_LAYOUT_FLAT;
		return FlatToJs(env, res);
	}
	*layout = PGNW_LAYOUT_COLUMNS;
	return ColumnsToJs(env, res);
}
