/*
 * log.cc — the server log, settings and the ps display for the runtime:
 * log(level, message) under console.* and ctx.log, setting(name) under
 * ctx.setting, setTitle(text) under process.title.  PostgreSQL is reached
 * through log.h (log_ops.c).
 */
#include <napi.h>

#include <cstdlib>
#include <string>

#include "bridge.h"
#include "log.h"

namespace
{

/* log(level, message): PGNW_LOG_* level; a bad level argument logs nothing */
Napi::Value
Log(const Napi::CallbackInfo &info)
{
	Napi::Env	env = info.Env();
	PgnwError	err = {};

	if (info.Length() < 2 || !info[0].IsNumber())
		return env.Undefined();
	std::string msg = PgnwReadableText(info[1]);

	if (!pgnw_log(info[0].As<Napi::Number>().Int32Value(), msg.c_str(), &err))
		PgnwThrowPgError(env, &err);
	return env.Undefined();
}

/* setting(name) → its value, or null when there is no such setting */
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
		PgnwThrowPgError(env, &err);
		return env.Undefined();
	}
	if (value == nullptr)
		return env.Null();
	Napi::String out = Napi::String::New(env, value);

	free(value);
	return out;
}

/* setTitle(text): the ps display */
Napi::Value
SetTitle(const Napi::CallbackInfo &info)
{
	PgnwError	err = {};
	std::string text = info.Length() > 0 ? PgnwReadableText(info[0]) : "";

	if (!pgnw_set_ps_display(text.c_str(), &err))
		PgnwThrowPgError(info.Env(), &err);
	return info.Env().Undefined();
}

/* log, setting and setTitle, by the names the runtime calls them */
const PgnwExport log_exports[] = {
	{"log", Log},
	{"setting", Setting},
	{"setTitle", SetTitle},
};

}								/* namespace */

extern const PgnwExports PgnwLogExports = {log_exports, sizeof(log_exports) / sizeof(log_exports[0])};

/* See bridge.h: lives here, next to its main user. */
std::string
PgnwReadableText(const Napi::Value &value)
{
	std::string text = value.ToString().Utf8Value();

	for (size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at + 2))
		text.replace(at, 1, "\\0");
	return text;
}
