/*
 * messaging.cc — N-API side of a worker's inbox: takeMessages() and reply().
 * PostgreSQL is reached only through messaging_ops.c (guarded).
 */
#include <napi.h>

#include <cstdlib>
#include <string>

#include "messaging.h"

void		PgnwThrowPgError(Napi::Env env, PgnwError *err);

namespace
{

/*
 * takeMessages() → [woken, messages], each message
 * [isCall, requestId (string), callerProcno, callerPid, role, database, payloadJson]
 */
Napi::Value
TakeMessages(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwInboxMessage *msgs = nullptr;
	int			n = 0;
	bool		woken = false;

	if (!pgnw_inbox_take(&msgs, &n, &woken, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Array list = Napi::Array::New(env, n);

	for (int i = 0; i < n; i++)
	{
		Napi::Array m = Napi::Array::New(env, 7);

		m.Set(0u, Napi::Boolean::New(env, msgs[i].is_call));
		m.Set(1u, Napi::String::New(env, std::to_string(msgs[i].request_id)));
		m.Set(2u, Napi::Number::New(env, msgs[i].caller_procno));
		m.Set(3u, Napi::Number::New(env, msgs[i].caller_pid));
		m.Set(4u, Napi::String::New(env, msgs[i].role));
		m.Set(5u, Napi::String::New(env, msgs[i].database));
		m.Set(6u, Napi::String::New(env, msgs[i].payload, msgs[i].payload_len));
		list.Set(i, m);
	}
	pgnw_inbox_free(msgs, n);
	Napi::Array out = Napi::Array::New(env, 2);

	out.Set(0u, Napi::Boolean::New(env, woken));
	out.Set(1u, list);
	return out;
}

/* reply(callerProcno, requestId, isError, sqlstate | null, text) → delivered */
Napi::Value
Reply(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	bool		delivered = false;

	if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsBoolean() ||
		!info[4].IsString())
	{
		Napi::TypeError::New(env, "reply(procno, requestId, isError, sqlstate, text) got bad arguments")
			.ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string request_id = info[1].As<Napi::String>().Utf8Value();
	std::string sqlstate = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
	std::string text = info[4].As<Napi::String>().Utf8Value();

	if (!pgnw_inbox_reply(info[0].As<Napi::Number>().Int32Value(), strtoull(request_id.c_str(), nullptr, 10),
						  info[2].As<Napi::Boolean>().Value(),
						  sqlstate.empty() ? nullptr : sqlstate.c_str(),
						  text.data(), (uint32_t) text.size(), &delivered, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	return Napi::Boolean::New(env, delivered);
}

}								/* namespace */

void
RegisterMessaging(Napi::Env env, Napi::Object exports)
{
	exports.Set("takeMessages", Napi::Function::New(env, TakeMessages));
	exports.Set("reply", Napi::Function::New(env, Reply));
}
