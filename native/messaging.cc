/*
 * messaging.cc — N-API side of a worker's inbox: takeMessages(), reply(),
 * ack() and callStates().  PostgreSQL is reached only through messaging.h
 * (messaging_ops.c).
 */
#include <napi.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "bridge.h"
#include "messaging.h"

namespace
{

/*
 * takeMessages() → [woken, abandoned, messages], each message
 * [isCall, requestId (string), callerProcno, callerPid, role, database, payloadJson,
 *  position (notify: for ack), timeLeftMs (call), redelivered (notify)]
 */
Napi::Value
TakeMessages(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	PgnwInboxMessage *msgs = nullptr;
	int			n = 0;
	bool		woken = false;
	bool		abandoned = false;

	if (!pgnw_inbox_take(&msgs, &n, &woken, &abandoned, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Array list = Napi::Array::New(env, n);

	for (int i = 0; i < n; i++)
	{
		Napi::Array m = Napi::Array::New(env, 10);

		m.Set(0u, Napi::Boolean::New(env, msgs[i].is_call));
		m.Set(1u, Napi::String::New(env, std::to_string(msgs[i].request_id)));
		m.Set(2u, Napi::Number::New(env, msgs[i].caller_procno));
		m.Set(3u, Napi::Number::New(env, msgs[i].caller_pid));
		m.Set(4u, Napi::String::New(env, msgs[i].role));
		m.Set(5u, Napi::String::New(env, msgs[i].database));
		m.Set(6u, Napi::String::New(env, msgs[i].payload, msgs[i].payload_len));
		/* byte positions in the inbox stay below 2^53 for centuries of traffic */
		m.Set(7u, Napi::Number::New(env, (double) msgs[i].position));
		m.Set(8u, Napi::Number::New(env, msgs[i].time_left_ms));
		m.Set(9u, Napi::Boolean::New(env, msgs[i].redelivered));
		list.Set(i, m);
	}
	pgnw_inbox_free(msgs, n);
	Napi::Array out = Napi::Array::New(env, 3);

	out.Set(0u, Napi::Boolean::New(env, woken));
	out.Set(1u, Napi::Boolean::New(env, abandoned));
	out.Set(2u, list);
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

/* ack(positions: number[]): those notifications were handled */
Napi::Value
Ack(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};

	if (info.Length() < 1 || !info[0].IsArray())
	{
		Napi::TypeError::New(env, "ack(positions) expects an array").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	Napi::Array list = info[0].As<Napi::Array>();
	std::vector<uint64_t> positions;

	positions.reserve(list.Length());
	for (uint32_t i = 0; i < list.Length(); i++)
	{
		Napi::Value v = list.Get(i);

		if (v.IsNumber())
			positions.push_back((uint64_t) v.As<Napi::Number>().DoubleValue());
	}
	if (!pgnw_inbox_ack(positions.data(), (int) positions.size(), &err))
		PgnwThrowPgError(env, &err);
	return env.Undefined();
}

/* callStates(procnos: number[], requestIds: string[]) → contract.h PGNW_CALLER_* per call */
Napi::Value
CallStates(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};

	if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray() ||
		info[0].As<Napi::Array>().Length() != info[1].As<Napi::Array>().Length())
	{
		Napi::TypeError::New(env, "callStates(procnos, requestIds) expects two arrays of one length")
			.ThrowAsJavaScriptException();
		return env.Undefined();
	}
	Napi::Array procs = info[0].As<Napi::Array>();
	Napi::Array ids = info[1].As<Napi::Array>();
	uint32_t	n = procs.Length();
	std::vector<int> procnos(n);
	std::vector<uint64_t> request_ids(n);
	std::vector<int> states(n);

	for (uint32_t i = 0; i < n; i++)
	{
		procnos[i] = procs.Get(i).ToNumber().Int32Value();
		request_ids[i] = strtoull(ids.Get(i).ToString().Utf8Value().c_str(), nullptr, 10);
	}
	if (!pgnw_inbox_call_states(procnos.data(), request_ids.data(), (int) n, states.data(), &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Array out = Napi::Array::New(env, n);

	for (uint32_t i = 0; i < n; i++)
		out.Set(i, Napi::Number::New(env, states[i]));
	return out;
}

/* the inbox's functions, by the names the runtime calls them */
const PgnwExport messaging_exports[] = {
	{"takeMessages", TakeMessages},
	{"reply", Reply},
	{"ack", Ack},
	{"callStates", CallStates},
};

}								/* namespace */

extern const PgnwExports PgnwMessagingExports = {messaging_exports, sizeof(messaging_exports) / sizeof(messaging_exports[0])};
