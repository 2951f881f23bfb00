/*
 * buffers.cc — N-API side of ctx.buffers: snapshot, stats, residency,
 * prewarm, readPage.  PostgreSQL is reached only through buffers.h
 * (buffers_ops.c).
 */
#include <napi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bridge.h"
#include "buffers.h"

namespace
{

/*
 * A typed array with a copy of a malloc'd C array, which is freed here.  The
 * copy lives in V8's own ArrayBuffer memory: an external ArrayBuffer would
 * save the copy, but Node runs its finalizer only when the event loop turns,
 * so a synchronous loop of calls would pile up every buffer until then.
 */
template <typename T>
Napi::Value
Adopt(Napi::Env env, T *&data, uint32_t count)
{
	size_t		bytes = sizeof(T) * count;
	Napi::ArrayBuffer ab = PgnwNewArrayBuffer(env, bytes);

	if (!ab.IsEmpty() && bytes > 0 && data != nullptr)
		memcpy(ab.Data(), data, bytes);
	free(data);
	data = nullptr;
	if (ab.IsEmpty())
		return Napi::Value();
	return Napi::TypedArrayOf<T>::New(env, count, ab, 0);
}

/*
 * The relation argument pair (relation, fork): relation is a name (string)
 * or an oid (number); fork a string or null.  name and fork keep the
 * strings alive for the call.
 */
bool
RelationArg(const Napi::CallbackInfo &info, size_t i, size_t fork_i, std::string &name,
			std::string &fork, PgnwRelationRef *ref)
{
	Napi::Env	env = info.Env();

	*ref = {nullptr, 0, nullptr};
	if (i < info.Length() && info[i].IsString())
	{
		name = info[i].As<Napi::String>().Utf8Value();
		/* PostgreSQL reads a C string: the name would end at the NUL, naming another relation */
		if (name.find('\0') != std::string::npos)
		{
			Napi::TypeError::New(env, "a relation name must not contain NUL").ThrowAsJavaScriptException();
			return false;
		}
		ref->name = name.c_str();
	}
	else if (i < info.Length() && info[i].IsNumber())
	{
		double		oid = info[i].As<Napi::Number>().DoubleValue();

		if (!(oid >= 1 && oid <= 4294967295.0 && std::floor(oid) == oid))
		{
			Napi::RangeError::New(env, "a relation oid is an integer from 1 to 4294967295").ThrowAsJavaScriptException();
			return false;
		}
		ref->oid = (uint32_t) oid;
	}
	else
	{
		Napi::TypeError::New(env, "relation must be a name (string) or an oid (number)").ThrowAsJavaScriptException();
		return false;
	}
	if (fork_i < info.Length() && info[fork_i].IsString())
	{
		fork = info[fork_i].As<Napi::String>().Utf8Value();
		if (fork.find('\0') != std::string::npos)
		{
			Napi::TypeError::New(env, "fork must be 'main', 'fsm', 'vm' or 'init'").ThrowAsJavaScriptException();
			return false;
		}
		ref->fork = fork.c_str();
	}
	else if (fork_i < info.Length() && !info[fork_i].IsNull() && !info[fork_i].IsUndefined())
	{
		Napi::TypeError::New(env, "fork must be 'main', 'fsm', 'vm' or 'init'").ThrowAsJavaScriptException();
		return false;
	}
	return true;
}

/* snapshot() → { count, total, database, tablespace, relfilenode, fork, block, dirty, usage } */
Napi::Value
Snapshot(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwBufferSnapshot s;

	if (!pgnw_buffers_snapshot(&s, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Object out = Napi::Object::New(env);

	out.Set("count", Napi::Number::New(env, s.count));
	out.Set("total", Napi::Number::New(env, s.total));
	out.Set("database", Adopt(env, s.database, s.count));
	out.Set("tablespace", Adopt(env, s.tablespace, s.count));
	out.Set("relfilenode", Adopt(env, s.relfilenode, s.count));
	out.Set("fork", Adopt(env, s.fork, s.count));
	out.Set("block", Adopt(env, s.block, s.count));
	out.Set("dirty", Adopt(env, s.dirty, s.count));
	out.Set("usage", Adopt(env, s.usage, s.count));
	pgnw_buffers_snapshot_free(&s);
	return out;
}

/* stats() → { total, used, unused, dirty, pinned, usageAverage } */
Napi::Value
Stats(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwBufferStats s;

	if (!pgnw_buffers_stats(&s, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Object out = Napi::Object::New(env);

	out.Set("total", Napi::Number::New(env, s.total));
	out.Set("used", Napi::Number::New(env, s.used));
	out.Set("unused", Napi::Number::New(env, s.total - s.used));
	out.Set("dirty", Napi::Number::New(env, s.dirty));
	out.Set("pinned", Napi::Number::New(env, s.pinned));
	out.Set("usageAverage", Napi::Number::New(env, s.usage_average));
	return out;
}

/* residency(relation, fork | null) → [blocks, cached] */
Napi::Value
Residency(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwRelationRef ref;
	std::string name, fork;
	int64_t		blocks = 0, cached = 0;

	if (!RelationArg(info, 0, 1, name, fork, &ref))
		return env.Undefined();
	if (!pgnw_buffers_residency(&ref, &blocks, &cached, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Array out = Napi::Array::New(env, 2);

	out.Set(0u, Napi::Number::New(env, (double) blocks));
	out.Set(1u, Napi::Number::New(env, (double) cached));
	return out;
}

/* an optional block number argument: null/undefined → absent */
bool
BlockArg(const Napi::CallbackInfo &info, size_t i, const char *what, bool *has, int64_t *value)
{
	*has = false;
	*value = 0;
	if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined())
		return true;
	double		d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : NAN;

	if (!std::isfinite(d) || std::floor(d) != d)
	{
		Napi::TypeError::New(info.Env(), std::string(what) + " must be an integer block number").ThrowAsJavaScriptException();
		return false;
	}
	/* out-of-range values reach PostgreSQL, which reports them with the relation's size */
	*has = true;
	*value = d < -1 ? -1 : d > 9007199254740991.0 ? (int64_t) 9007199254740991LL : (int64_t) d;
	return true;
}

/* prewarm(relation, fork | null, first | null, last | null) → blocks read */
Napi::Value
Prewarm(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwRelationRef ref;
	std::string name, fork;
	bool		has_first, has_last;
	int64_t		first, last, done = 0;

	if (!RelationArg(info, 0, 1, name, fork, &ref) ||
		!BlockArg(info, 2, "first", &has_first, &first) ||
		!BlockArg(info, 3, "last", &has_last, &last))
		return env.Undefined();
	if (!pgnw_buffers_prewarm(&ref, has_first, first, has_last, last, &done, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return Napi::Number::New(env, (double) done);
}

/* readPage(relation, block, fork | null) → Uint8Array */
Napi::Value
ReadPage(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwRelationRef ref;
	std::string name, fork;
	bool		has_block;
	int64_t		block;
	uint8_t    *page = nullptr;
	size_t		len = 0;

	if (!RelationArg(info, 0, 2, name, fork, &ref) || !BlockArg(info, 1, "block", &has_block, &block))
		return env.Undefined();
	if (!has_block)
	{
		Napi::TypeError::New(env, "readPage(relation, block, fork?): block is required").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	if (!pgnw_buffers_read_page(&ref, block, &page, &len, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return Adopt(env, page, (uint32_t) len);
}

/* ctx.buffers' functions, by the names the runtime calls them */
const PgnwExport buffers_exports[] = {
	{"buffersSnapshot", Snapshot},
	{"buffersStats", Stats},
	{"buffersResidency", Residency},
	{"buffersPrewarm", Prewarm},
	{"buffersReadPage", ReadPage},
};

}								/* namespace */

extern const PgnwExports PgnwBuffersExports = {buffers_exports, sizeof(buffers_exports) / sizeof(buffers_exports[0])};
