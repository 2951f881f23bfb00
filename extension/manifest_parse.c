/*-------------------------------------------------------------------------
 *
 * manifest_parse.c
 *	  The rules of a worker manifest: a valid worker name, the JSON of a
 *	  manifest and what each of its fields may hold.
 *
 * The text comes from manifest.c, which reads the file.  It is untrusted
 * and the postmaster parses it, so nothing here ereports: the backend's
 * JSON parser runs under PG_TRY in a memory context of its own, and every
 * problem becomes a reason phrase in a caller's buffer.  Before the
 * parser, a scan refuses what would make the backend's JSON code throw.
 *
 * Limits: nested at most 32 levels, no \u escapes of non-ASCII
 * characters (the postmaster has no database encoding to convert them
 * to).  Unknown keys are ignored, so newer manifests still load; a known
 * key given twice is an error.  The first problem found is the reason.
 *
 * A leaf: it calls no other module of the extension.
 *
 * extension/manifest_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "compat.h"
#include "manifest_parse.h"

#define PGNW_MANIFEST_MAX_DEPTH		32
#define PGNW_MAX_RESTART_SECONDS	86400

/*
 * The manifest fields we look at.  Unknown keys are ignored.
 */
typedef enum PgnwField
{
	PGNW_FIELD_FORMAT,
	PGNW_FIELD_NAME,
	PGNW_FIELD_DATABASE,
	PGNW_FIELD_ROLE,
	PGNW_FIELD_RESTART,
	PGNW_FIELD_START,
	PGNW_FIELD_BUNDLE,
	PGNW_FIELD_SHA256,
	PGNW_FIELD_CALLERS,
	PGNW_FIELD_HEAP_LIMIT,
	PGNW_FIELD_BUFFER_LIMIT,
	PGNW_FIELD_YOUNG_GENERATION,
	PGNW_FIELD_SEARCH_PATH,
	PGNW_FIELD_NODE_TARGET,
	PGNW_FIELD_AUTOSTART,
	PGNW_FIELD_INSTANCES,
	PGNW_NUM_FIELDS
} PgnwField;

static const char *const pgnw_manifest_field_names[PGNW_NUM_FIELDS] = {
	"format",
	"name",
	"database",
	"role",
	"restart",
	"start",
	"bundle",
	"sha256",
	"callers",
	"heapLimitMb",
	"bufferLimitMb",
	"youngGenerationMb",
	"searchPath",
	"nodeTarget",
	"autostart",
	"instances",
};

/* The value of one top-level field, as seen by the JSON parser */
typedef struct PgnwFieldValue
{
	bool		present;
	bool		composite;		/* the value is an object or an array */
	JsonTokenType type;			/* token type of a scalar value */
	char	   *value;			/* de-escaped string, or number text */
} PgnwFieldValue;

/* Semantic state of the JSON parse */
typedef struct PgnwParseState
{
	int			depth;			/* current nesting depth, 0 = outside */
	int			current;		/* PgnwField of the top-level key being
								 * parsed, or -1 */
	bool		is_object;		/* the document is an object */
	int			duplicate;		/* a known field seen twice, or -1 */
	PgnwFieldValue fields[PGNW_NUM_FIELDS];
} PgnwParseState;


/* ------------------------------------------------------ reasons, names */

/*
 * If truncation cut a UTF-8 sequence at the end of s, drop its remains.
 */
static void
pgnw_manifest_clip_utf8(char *s)
{
	size_t		len = strlen(s);
	size_t		start = len;

	while (start > 0 && ((unsigned char) s[start - 1] & 0xC0) == 0x80)
		start--;
	if (start > 0 && ((unsigned char) s[start - 1] & 0x80) != 0)
	{
		start--;
		if (start + pg_utf_mblen((const unsigned char *) s + start) > len)
			s[start] = '\0';
	}
}

/*
 * Format a failure reason into errbuf (PGNW_REASON_SIZE bytes); always
 * returns false.
 */
bool
pgnw_manifest_fail(char *errbuf, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, PGNW_REASON_SIZE, fmt, ap);
	va_end(ap);
	pgnw_manifest_clip_utf8(errbuf);

	return false;
}

/* ^[A-Za-z_][A-Za-z0-9_-]{0,62}$, in ASCII whatever the locale */
bool
pgnw_valid_worker_name(const char *name)
{
	int			i;

	if (name == NULL)
		return false;

	for (i = 0; name[i] != '\0'; i++)
	{
		char		c = name[i];

		if (i >= PGNW_WORKER_NAME_MAX)
			return false;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_')
			continue;
		if (i > 0 && ((c >= '0' && c <= '9') || c == '-'))
			continue;
		return false;
	}

	return i > 0;
}

/*
 * Checks that do not need the parser, and keep the backend's JSON code from
 * throwing errors:
 *
 * - no NUL bytes, valid UTF-8;
 * - bounded nesting: the parser recurses once per level, and the postmaster
 *   is not a place to test the stack depth limit;
 * - no \u escapes of non-ASCII characters: the backend converts those to the
 *   database encoding, which the postmaster does not have, so they would
 *   throw an error there.  JSON.stringify() writes such characters as they
 *   are, so refusing the escaped form costs nothing.
 */
static bool
pgnw_manifest_prescan(const char *buf, size_t len, char *errbuf)
{
	size_t		i;
	int			depth = 0;
	bool		in_string = false;

	if (memchr(buf, '\0', len) != NULL)
		return pgnw_manifest_fail(errbuf, "manifest contains a NUL byte");

	if (pg_encoding_verifymbstr(PG_UTF8, buf, (int) len) != (int) len)
		return pgnw_manifest_fail(errbuf, "manifest is not valid UTF-8");

	for (i = 0; i < len; i++)
	{
		char		c = buf[i];

		if (in_string)
		{
			if (c == '"')
				in_string = false;
			else if (c == '\\' && i + 1 < len)
			{
				i++;
				if (buf[i] == 'u' && i + 4 < len)
				{
					unsigned int code = 0;
					int			j;

					for (j = 1; j <= 4; j++)
					{
						char		h = buf[i + j];

						code <<= 4;
						if (h >= '0' && h <= '9')
							code |= h - '0';
						else if (h >= 'a' && h <= 'f')
							code |= h - 'a' + 10;
						else if (h >= 'A' && h <= 'F')
							code |= h - 'A' + 10;
						else
							break;	/* the parser reports it */
					}
					if (j > 4 && code > 0x7F)
						return pgnw_manifest_fail(errbuf, "manifest uses a \\u escape for a non-ASCII character (write the character itself)");
				}
			}
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > PGNW_MANIFEST_MAX_DEPTH)
				return pgnw_manifest_fail(errbuf, "manifest is nested more than %d levels deep",
										  PGNW_MANIFEST_MAX_DEPTH);
		}
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}

	return true;
}


/* ------------------------------------------------- validating the fields */

/*
 * Fetch a string field.  A missing optional field and, if nullable, a null
 * value both give *value = NULL.
 */
static bool
pgnw_manifest_get_string(PgnwParseState *ps, PgnwField field, bool required,
						 bool nullable, const char **value, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[field];

	*value = NULL;

	if (!f->present)
	{
		if (required)
			return pgnw_manifest_fail(errbuf, "missing field \"%s\"",
									  pgnw_manifest_field_names[field]);
		return true;
	}

	if (!f->composite && f->type == JSON_TOKEN_STRING)
	{
		*value = f->value;
		return true;
	}
	if (nullable && !f->composite && f->type == JSON_TOKEN_NULL)
		return true;

	if (nullable)
		return pgnw_manifest_fail(errbuf, "field \"%s\" must be a string or null",
								  pgnw_manifest_field_names[field]);
	return pgnw_manifest_fail(errbuf, "field \"%s\" must be a string",
							  pgnw_manifest_field_names[field]);
}

/*
 * Fetch an optional integer field counting megabytes, from min to max.  A
 * missing field or null leaves *out alone.
 */
static bool
pgnw_manifest_get_megabytes(PgnwParseState *ps, int field, long min, long max, int *out,
							char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[field];
	const char *name = pgnw_manifest_field_names[field];
	char	   *end;
	long		mb;

	if (!f->present || (f->type == JSON_TOKEN_NULL && !f->composite))
		return true;
	if (f->composite || f->type != JSON_TOKEN_NUMBER)
		return pgnw_manifest_fail(errbuf, "field \"%s\" must be an integer number of megabytes or null", name);
	errno = 0;
	mb = strtol(f->value, &end, 10);
	if (errno != 0 || *end != '\0' || mb < min || mb > max)
		return pgnw_manifest_fail(errbuf, "field \"%s\" must be an integer from %ld to %ld", name, min, max);
	*out = (int) mb;
	return true;
}

/* format: optional, 1 */
static bool
pgnw_manifest_take_format(PgnwParseState *ps, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[PGNW_FIELD_FORMAT];

	if (!f->present)
		return true;
	if (f->composite || f->type != JSON_TOKEN_NUMBER)
		return pgnw_manifest_fail(errbuf, "field \"format\" must be a number");
	if (strcmp(f->value, "1") != 0)
		return pgnw_manifest_fail(errbuf, "unsupported manifest format %.20s (this version of pg_node_worker reads format 1)",
								  f->value);
	return true;
}

/* autostart: optional, true (the default) or false */
static bool
pgnw_manifest_take_autostart(PgnwParseState *ps, PgnwManifest *out, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[PGNW_FIELD_AUTOSTART];

	out->autostart = true;
	if (!f->present)
		return true;
	if (!f->composite && f->type == JSON_TOKEN_TRUE)
		return true;
	if (!f->composite && f->type == JSON_TOKEN_FALSE)
	{
		out->autostart = false;
		return true;
	}
	return pgnw_manifest_fail(errbuf, "field \"autostart\" must be true or false");
}

/*
 * instances: optional, an integer from 1 (the default) to
 * PGNW_MAX_INSTANCES; more than 1 only for a worker that starts with the
 * server (a launch starts one process).
 */
static bool
pgnw_manifest_take_instances(PgnwParseState *ps, PgnwManifest *out, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[PGNW_FIELD_INSTANCES];
	char	   *end;
	long		n;

	out->instances = 1;
	if (!f->present)
		return true;
	if (f->composite || f->type != JSON_TOKEN_NUMBER)
		return pgnw_manifest_fail(errbuf, "field \"instances\" must be an integer from 1 to %d",
								  PGNW_MAX_INSTANCES);
	errno = 0;
	n = strtol(f->value, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > PGNW_MAX_INSTANCES)
		return pgnw_manifest_fail(errbuf, "field \"instances\" must be an integer from 1 to %d",
								  PGNW_MAX_INSTANCES);
	if (n > 1 && !out->autostart)
		return pgnw_manifest_fail(errbuf, "field \"instances\" must be 1 when \"autostart\" is false");
	out->instances = (int) n;
	return true;
}

/* restart: integer seconds or "never" */
static bool
pgnw_manifest_take_restart(PgnwParseState *ps, PgnwManifest *out, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[PGNW_FIELD_RESTART];
	const char *p;
	bool		negative = false;
	long		seconds = 0;

	if (!f->present)
		return pgnw_manifest_fail(errbuf, "missing field \"restart\"");
	if (!f->composite && f->type == JSON_TOKEN_STRING && strcmp(f->value, "never") == 0)
	{
		out->restart_seconds = BGW_NEVER_RESTART;
		return true;
	}
	if (f->composite || f->type != JSON_TOKEN_NUMBER)
		return pgnw_manifest_fail(errbuf, "field \"restart\" must be an integer number of seconds or \"never\"");

	p = f->value;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	for (; *p != '\0'; p++)
	{
		if (*p < '0' || *p > '9')
			return pgnw_manifest_fail(errbuf, "field \"restart\" must be an integer number of seconds or \"never\"");
		if (seconds <= PGNW_MAX_RESTART_SECONDS)
			seconds = seconds * 10 + (*p - '0');
	}
	if (negative || seconds > PGNW_MAX_RESTART_SECONDS)
		return pgnw_manifest_fail(errbuf, "field \"restart\" must be between 0 and %d seconds, or \"never\"",
								  PGNW_MAX_RESTART_SECONDS);
	out->restart_seconds = (int) seconds;
	return true;
}

/*
 * The string fields.  Each step gets the field's string (an optional field
 * that is missing or null never gets there), checks it and fills *out.
 */

/* s into dst of size bytes, unless it is too long */
static bool
pgnw_manifest_copy(const char *s, PgnwField field, char *dst, size_t size, char *errbuf)
{
	if (strlen(s) >= size)
		return pgnw_manifest_fail(errbuf, "field \"%s\" is longer than %d bytes",
								  pgnw_manifest_field_names[field], (int) size - 1);
	strlcpy(dst, s, size);
	return true;
}

/* name: a valid worker name, the one the file name gives */
static bool
pgnw_manifest_take_name(const char *s, const char *expected_name, PgnwManifest *out,
						char *errbuf)
{
	if (!pgnw_valid_worker_name(s))
		return pgnw_manifest_fail(errbuf, "field \"name\" is not a valid worker name (1 to %d ASCII letters, digits, \"_\" or \"-\", not starting with a digit or \"-\")",
								  PGNW_WORKER_NAME_MAX);
	if (strcmp(s, expected_name) != 0)
		return pgnw_manifest_fail(errbuf, "field \"name\" does not match the file name \"%s.json\"",
								  expected_name);
	strlcpy(out->name, s, sizeof(out->name));
	return true;
}

/*
 * database (required) and role (optional; null = the bootstrap
 * superuser): a name of 1 to NAMEDATALEN - 1 bytes, copied to dst.
 */
static bool
pgnw_manifest_take_sql_name(const char *s, PgnwField field, char *dst, char *errbuf)
{
	const char *name = pgnw_manifest_field_names[field];

	if (s[0] == '\0' && field == PGNW_FIELD_ROLE)
		return pgnw_manifest_fail(errbuf, "field \"role\" must be a non-empty string or null");
	if (s[0] == '\0')
		return pgnw_manifest_fail(errbuf, "field \"%s\" must not be empty", name);
	return pgnw_manifest_copy(s, field, dst, NAMEDATALEN, errbuf);
}

/* start: when the postmaster starts the worker */
static bool
pgnw_manifest_take_start(const char *s, PgnwManifest *out, char *errbuf)
{
	if (strcmp(s, "postmaster") == 0)
		out->start_time = BgWorkerStart_PostmasterStart;
	else if (strcmp(s, "consistent") == 0)
		out->start_time = BgWorkerStart_ConsistentState;
	else if (strcmp(s, "recovery-finished") == 0)
		out->start_time = BgWorkerStart_RecoveryFinished;
	else
		return pgnw_manifest_fail(errbuf, "field \"start\" must be \"postmaster\", \"consistent\" or \"recovery-finished\"");
	return true;
}

/* bundle: a plain file name in the same directory, dir */
static bool
pgnw_manifest_take_bundle(const char *s, const char *dir, PgnwManifest *out, char *errbuf)
{
	if (s[0] == '\0')
		return pgnw_manifest_fail(errbuf, "field \"bundle\" must not be empty");
	for (int i = 0; s[i] != '\0'; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c >= 0x7F)
			return pgnw_manifest_fail(errbuf, "field \"bundle\" must contain only printable ASCII characters");
		if (c == '/' || c == '\\')
			return pgnw_manifest_fail(errbuf, "field \"bundle\" must be a plain file name in the worker directory, without \"/\"");
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return pgnw_manifest_fail(errbuf, "field \"bundle\" must be a plain file name in the worker directory, not \".\" or \"..\"");
	if (snprintf(out->bundle_path, sizeof(out->bundle_path), "%s/%s",
				 dir, s) >= (int) sizeof(out->bundle_path))
		return pgnw_manifest_fail(errbuf, "bundle path is too long");
	return true;
}

/*
 * nodeTarget (optional): the Node version the bundle was built for, as
 * esbuild's target names it: "node<major>", "node<major>.<minor>" or
 * "node<major>.<minor>.<patch>".  The worker refuses a bundle built for a
 * newer Node than the one it embeds (its syntax or APIs may be missing).
 */
static bool
pgnw_manifest_take_node_target(const char *s, PgnwManifest *out, char *errbuf)
{
	int			parts[3] = {0, 0, 0};
	int			n = 0;
	const char *p = s;

	if (strncmp(p, "node", 4) != 0)
		return pgnw_manifest_fail(errbuf, "field \"nodeTarget\" must look like \"node24\" or \"node24.11\"");
	p += 4;
	for (;;)
	{
		int			digits = 0;
		long		v = 0;

		while (*p >= '0' && *p <= '9' && digits < 6)
		{
			v = v * 10 + (*p - '0');
			p++;
			digits++;
		}
		if (digits == 0 || n >= 3)
			return pgnw_manifest_fail(errbuf, "field \"nodeTarget\" must look like \"node24\" or \"node24.11\"");
		parts[n++] = (int) v;
		if (*p == '\0')
			break;
		if (*p != '.')
			return pgnw_manifest_fail(errbuf, "field \"nodeTarget\" must look like \"node24\" or \"node24.11\"");
		p++;
	}
	if (parts[0] == 0)
		return pgnw_manifest_fail(errbuf, "field \"nodeTarget\" must name a Node major version above 0");
	out->node_target_major = parts[0];
	out->node_target_minor = parts[1];
	return true;
}

/* sha256 (optional): 64 hex digits, kept in lower case */
static bool
pgnw_manifest_take_sha256(const char *s, PgnwManifest *out, char *errbuf)
{
	int			i;

	for (i = 0; s[i] != '\0'; i++)
	{
		char		c = s[i];

		if (i >= 64 ||
			!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			  (c >= 'A' && c <= 'F')))
			break;
		out->sha256[i] = pg_ascii_tolower((unsigned char) c);
	}
	if (i != 64 || s[i] != '\0')
		return pgnw_manifest_fail(errbuf, "field \"sha256\" must be 64 hexadecimal digits or null");
	out->sha256[64] = '\0';
	return true;
}

/*
 * callers and searchPath (optional): names (of roles, of schemas) separated
 * by commas, each 1 to NAMEDATALEN - 1 bytes; "" is no name at all.
 */
static bool
pgnw_manifest_take_name_list(const char *s, PgnwField field, const char *what, char *dst,
							 size_t dstsize, char *errbuf)
{
	if (!pgnw_manifest_copy(s, field, dst, dstsize, errbuf))
		return false;
	if (s[0] == '\0')
		return true;
	for (const char *p = s;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);

		if (len == 0 || len >= NAMEDATALEN)
			return pgnw_manifest_fail(errbuf, "field \"%s\" must be %s names of 1 to %d bytes separated by commas",
									  pgnw_manifest_field_names[field], what, NAMEDATALEN - 1);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return true;
}

/*
 * Check the fields collected by the parse and fill *out, one field after
 * the other, in this order: the first problem is the reason.  A string
 * field is fetched (required? may it be null?), then checked.  heapLimitMb
 * and bufferLimitMb override node_worker.heap_limit_mb and buffer_limit_mb;
 * youngGenerationMb caps V8's young generation (absent: V8 sizes it);
 * autostart false keeps the worker from starting with the server; instances
 * is how many processes start with it.
 */
static bool
pgnw_manifest_validate(PgnwParseState *ps, const char *dir, const char *expected_name,
					   PgnwManifest *out, char *errbuf)
{
	const char *s;

	if (!ps->is_object)
		return pgnw_manifest_fail(errbuf, "manifest must be a JSON object");
	if (ps->duplicate >= 0)
		return pgnw_manifest_fail(errbuf, "duplicate field \"%s\"",
								  pgnw_manifest_field_names[ps->duplicate]);

	memset(out, 0, sizeof(*out));

	return pgnw_manifest_take_format(ps, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_NAME, true, false, &s, errbuf) &&
		pgnw_manifest_take_name(s, expected_name, out, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_DATABASE, true, false, &s, errbuf) &&
		pgnw_manifest_take_sql_name(s, PGNW_FIELD_DATABASE, out->database, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_ROLE, false, true, &s, errbuf) &&
		(s == NULL || pgnw_manifest_take_sql_name(s, PGNW_FIELD_ROLE, out->role, errbuf)) &&
		pgnw_manifest_take_restart(ps, out, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_START, true, false, &s, errbuf) &&
		pgnw_manifest_take_start(s, out, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_BUNDLE, true, false, &s, errbuf) &&
		pgnw_manifest_take_bundle(s, dir, out, errbuf) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_SHA256, false, true, &s, errbuf) &&
		(s == NULL || pgnw_manifest_take_sha256(s, out, errbuf)) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_CALLERS, false, true, &s, errbuf) &&
		(s == NULL || pgnw_manifest_take_name_list(s, PGNW_FIELD_CALLERS, "role", out->callers,
												   sizeof(out->callers), errbuf)) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_SEARCH_PATH, false, true, &s, errbuf) &&
		(s == NULL || pgnw_manifest_take_name_list(s, PGNW_FIELD_SEARCH_PATH, "schema",
												   out->search_path, sizeof(out->search_path),
												   errbuf)) &&
		pgnw_manifest_get_string(ps, PGNW_FIELD_NODE_TARGET, false, true, &s, errbuf) &&
		(s == NULL || pgnw_manifest_take_node_target(s, out, errbuf)) &&
		pgnw_manifest_get_megabytes(ps, PGNW_FIELD_HEAP_LIMIT, 16, 65536,
									&out->heap_limit_mb, errbuf) &&
		pgnw_manifest_get_megabytes(ps, PGNW_FIELD_BUFFER_LIMIT, 16, 1048576,
									&out->buffer_limit_mb, errbuf) &&
		pgnw_manifest_get_megabytes(ps, PGNW_FIELD_YOUNG_GENERATION, 1, 1024,
									&out->young_generation_mb, errbuf) &&
		pgnw_manifest_take_autostart(ps, out, errbuf) &&
		pgnw_manifest_take_instances(ps, out, errbuf);
}


/* ------------------------------------------------ JSON semantic actions */

/*
 * The JSON semantic actions collect the scalar values of known top-level
 * keys, noting whether the document is an object and whether a known key
 * carries an object or array instead of a scalar.
 */

/* An array starts: a known key's value is not a scalar. */
static pgnw_json_action_result
pgnw_manifest_json_array_start(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1 && ps->current >= 0)
		ps->fields[ps->current].composite = true;
	ps->depth++;

	return PGNW_JSON_ACTION_OK;
}

/* An object starts: the document itself, or a value as for an array. */
static pgnw_json_action_result
pgnw_manifest_json_object_start(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 0)
		ps->is_object = true;
	return pgnw_manifest_json_array_start(state);
}

/* An object or an array ends. */
static pgnw_json_action_result
pgnw_manifest_json_end(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	ps->depth--;

	return PGNW_JSON_ACTION_OK;
}

/* A key: remember which known top-level field it is, and duplicates. */
static pgnw_json_action_result
pgnw_manifest_json_field_start(void *state, char *fname, bool isnull)
{
	PgnwParseState *ps = (PgnwParseState *) state;
	int			i;

	if (ps->depth != 1)
		return PGNW_JSON_ACTION_OK;

	ps->current = -1;
	for (i = 0; i < PGNW_NUM_FIELDS; i++)
	{
		if (strcmp(fname, pgnw_manifest_field_names[i]) == 0)
		{
			if (ps->fields[i].present && ps->duplicate < 0)
				ps->duplicate = i;
			ps->fields[i].present = true;
			ps->current = i;
			break;
		}
	}

	return PGNW_JSON_ACTION_OK;
}

/* A top-level key's value is over. */
static pgnw_json_action_result
pgnw_manifest_json_field_end(void *state, char *fname, bool isnull)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1)
		ps->current = -1;

	return PGNW_JSON_ACTION_OK;
}

/* A scalar: the value of the known top-level field being parsed, if any. */
static pgnw_json_action_result
pgnw_manifest_json_scalar(void *state, char *token, JsonTokenType tokentype)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1 && ps->current >= 0)
	{
		ps->fields[ps->current].type = tokentype;
		ps->fields[ps->current].value = token;
	}

	return PGNW_JSON_ACTION_OK;
}


/* ------------------------------------------------------------ parsing */

/*
 * Run the backend JSON parser over the manifest and validate the result.
 *
 * The parser pallocs, so it runs in a private memory context, and under
 * PG_TRY so that an error thrown anyway (out of memory) becomes a reason
 * instead of propagating: in the postmaster there is nothing to catch it.
 */
static bool
pgnw_manifest_parse_json(char *json, size_t len, const char *dir,
						 const char *expected_name, PgnwManifest *out,
						 char *errbuf)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext volatile tmpcxt = NULL;
	volatile bool ok = false;

	PG_TRY();
	{
		JsonLexContext *lex;
		JsonSemAction sem;
		PgnwParseState ps;
		JsonParseErrorType rc;

		tmpcxt = AllocSetContextCreate(oldcxt, "pg_node_worker manifest",
									   ALLOCSET_SMALL_SIZES);
		MemoryContextSwitchTo(tmpcxt);

		memset(&ps, 0, sizeof(ps));
		ps.current = -1;
		ps.duplicate = -1;

		memset(&sem, 0, sizeof(sem));
		sem.semstate = &ps;
		sem.object_start = pgnw_manifest_json_object_start;
		sem.object_end = pgnw_manifest_json_end;
		sem.array_start = pgnw_manifest_json_array_start;
		sem.array_end = pgnw_manifest_json_end;
		sem.object_field_start = pgnw_manifest_json_field_start;
		sem.object_field_end = pgnw_manifest_json_field_end;
		sem.scalar = pgnw_manifest_json_scalar;

		lex = pgnw_make_json_lex(json, (int) len);
		rc = pg_parse_json(lex, &sem);
		if (rc != JSON_SUCCESS)
			pgnw_manifest_fail(errbuf, "invalid JSON on line %d: %s",
							   lex->line_number, json_errdetail(rc, lex));
		else
			ok = pgnw_manifest_validate(&ps, dir, expected_name, out, errbuf);

		MemoryContextSwitchTo(oldcxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* Error handling left us in ErrorContext */
		MemoryContextSwitchTo(tmpcxt != NULL ? tmpcxt : oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		pgnw_manifest_fail(errbuf, "cannot parse manifest: %s", edata->message);
		FreeErrorData(edata);
		MemoryContextSwitchTo(oldcxt);
		ok = false;
	}
	PG_END_TRY();

	if (tmpcxt != NULL)
		MemoryContextDelete(tmpcxt);

	return ok;
}

/*
 * The manifest text json (len bytes, from the file of worker expected_name
 * in directory dir) into *out, or a reason in errbuf: first the checks that
 * keep the backend's JSON code from throwing, then the parse.
 */
bool
pgnw_manifest_parse(char *json, size_t len, const char *dir, const char *expected_name,
					PgnwManifest *out, char *errbuf)
{
	return pgnw_manifest_prescan(json, len, errbuf) &&
		pgnw_manifest_parse_json(json, len, dir, expected_name, out, errbuf);
}
