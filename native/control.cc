/*
 * control.cc — N-API side of the control surface: ctx.launch, the worker's
 * own state in node_worker.workers, ctx.isInRecovery, the launch arguments.
 * PostgreSQL is only reached through control.h (control_ops.c).
 */
#include <napi.h>

#include <string>

#include "../extension/runtime.h"
#include "bridge.h"
#include "control.h"

namespace
{

/* launch(name, argsJson | null, database | null) → { pid, slot } */
Napi::Value
Launch(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};
	int			pid = 0;
	int			slot = -1;

	if (info.Length() < 3 || !info[0].IsString() || !(info[1].IsString() || info[1].IsNull()) ||
		!(info[2].IsString() || info[2].IsNull()))
	{
		Napi::TypeError::New(env, "launch(name, argsJson, database) got bad arguments").ThrowAsJavaScriptException();
		return env.Undefined();
	}
	std::string name = info[0].As<Napi::String>().Utf8Value();
	std::string args = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
	std::string database = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";

	if (!pgnw_control_launch(name.c_str(), info[1].IsString() ? args.c_str() : nullptr,
							 info[2].IsString() ? database.c_str() : nullptr, &pid, &slot, &err))
	{
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	Napi::Object out = Napi::Object::New(env);

	out.Set("pid", Napi::Number::New(env, pid));
	out.Set("slot", Napi::Number::New(env, slot));
	return out;
}

/* childExitCode(slot, pid) → null while it runs, else its exit code */
Napi::Value
ChildExitCode(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	int			exit_code = 0;

	if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
		return env.Null();
	if (pgnw_control_child_running(info[0].As<Napi::Number>().Int32Value(),
								   info[1].As<Napi::Number>().Int32Value(), &exit_code))
		return env.Null();
	return Napi::Number::New(env, exit_code);
}

/* markRunning(): main() runs (node_worker.workers) */
Napi::Value
MarkRunning(const Napi::CallbackInfo &info)
{
	pgnw_control_mark_running();
	return info.Env().Undefined();
}

/* reportError(sqlstate | null, message) */
Napi::Value
ReportError(const Napi::CallbackInfo &info)
{
	std::string sqlstate = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
	std::string message = info.Length() > 1 ? PgnwReadableText(info[1]) : "";

	pgnw_control_report_error(sqlstate.c_str(), message.c_str());
	return info.Env().Undefined();
}

/* isInRecovery() → the server is in recovery (a standby) */
Napi::Value
IsInRecovery(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};
	bool		in_recovery = false;

	if (!pgnw_control_in_recovery(&in_recovery, &err))
	{
		PgnwThrowPgError(info.Env(), &err);
		return info.Env().Undefined();
	}
	return Napi::Boolean::New(info.Env(), in_recovery);
}

/* workerArgs() → the JSON text given to launch(), or null */
Napi::Value
WorkerArgs(const Napi::CallbackInfo &info)
{
	if (pgnw_worker_info.args == nullptr)
		return info.Env().Null();
	return Napi::String::New(info.Env(), pgnw_worker_info.args);
}

/* workerInstance() → which of its worker's instances this process is (0-based) */
Napi::Value
WorkerInstance(const Napi::CallbackInfo &info)
{
	return Napi::Number::New(info.Env(), pgnw_control_instance());
}

/* the control surface's functions, by the names the runtime calls them */
const PgnwExport control_exports[] = {
	{"launch", Launch},
	{"childExitCode", ChildExitCode},
	{"markRunning", MarkRunning},
	{"reportError", ReportError},
	{"isInRecovery", IsInRecovery},
	{"workerArgs", WorkerArgs},
	{"workerInstance", WorkerInstance},
};

}								/* namespace */

extern const PgnwExports PgnwControlExports = {control_exports, sizeof(control_exports) / sizeof(control_exports[0])};
