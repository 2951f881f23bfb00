/*-------------------------------------------------------------------------
 *
 * pg_node_worker.c
 *	  The library named in shared_preload_libraries.  Defines the
 *	  node_worker.* settings, reads the worker manifests in the worker
 *	  directory and registers one static background worker per valid
 *	  manifest.
 *
 * The workers themselves run in pg_node_worker_runtime.so (the worker's
 * bgw_library_name), which embeds Node.js; this library never links
 * libnode, so a server that preloads it stays cheap and safe even when the
 * runtime is broken.  The runtime re-reads its manifest with
 * pgnw_read_manifest(), exported from here (see pg_node_worker.h).
 *
 * A manifest is untrusted input: nothing in it may stop the server.  Bad
 * manifests are reported at LOG level and skipped.
 *
 * extension/pg_node_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "pg_node_worker.h"
#include "compat.h"

PG_MODULE_MAGIC;

/* Manifest limits */
#define PGNW_MANIFEST_MAX_BYTES		(64 * 1024)
#define PGNW_MANIFEST_MAX_DEPTH		32
#define PGNW_MAX_RESTART_SECONDS	86400
#define PGNW_WORKER_NAME_MAX		63

/* Size of a failure reason, including the terminating NUL */
#define PGNW_REASON_SIZE			512

/* GUC variables */
char	   *pgnw_directory_guc = NULL;
int			pgnw_shutdown_grace_ms = 5000;
int			pgnw_heap_limit_mb = 256;
int			pgnw_buffer_limit_mb = 1024;

/* pgnw_directory() result, computed on first use */
static char pgnw_directory_buf[MAXPGPATH];

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
	PGNW_FIELD_SEARCH_PATH,
	PGNW_NUM_FIELDS
} PgnwField;

static const char *const pgnw_field_names[PGNW_NUM_FIELDS] = {
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
	"searchPath",
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

extern PGDLLEXPORT void _PG_init(void);

PG_FUNCTION_INFO_V1(node_worker_directory);

static void pgnw_define_gucs(void);
static bool pgnw_check_directory(char **newval, void **extra, GucSource source);
static void pgnw_register_workers(void);
static void pgnw_register_one(const char *dir, const char *filename);
static int	pgnw_cmp_names(const void *a, const void *b);
static bool pgnw_fail(char *errbuf, const char *fmt,...) pg_attribute_printf(2, 3);
static void pgnw_clip_utf8(char *s);
static char *pgnw_strdup_reason(const char *errbuf);
static bool pgnw_read_file(const char *path, char **data, size_t *len,
						   char *errbuf);
static bool pgnw_prescan(const char *buf, size_t len, char *errbuf);
static bool pgnw_parse_manifest(char *json, size_t len, const char *dir,
								const char *expected_name, PgnwManifest *out,
								char *errbuf);
static bool pgnw_validate(PgnwParseState *ps, const char *dir,
						  const char *expected_name, PgnwManifest *out,
						  char *errbuf);
static bool pgnw_get_megabytes(PgnwParseState *ps, int field, long min, long max,
							   int *out, char *errbuf);
static bool pgnw_get_string(PgnwParseState *ps, PgnwField field,
							bool required, bool nullable,
							const char **value, char *errbuf);
static pgnw_json_action_result pgnw_json_object_start(void *state);
static pgnw_json_action_result pgnw_json_object_end(void *state);
static pgnw_json_action_result pgnw_json_array_start(void *state);
static pgnw_json_action_result pgnw_json_array_end(void *state);
static pgnw_json_action_result pgnw_json_field_start(void *state, char *fname,
													 bool isnull);
static pgnw_json_action_result pgnw_json_field_end(void *state, char *fname,
												   bool isnull);
static pgnw_json_action_result pgnw_json_scalar(void *state, char *token,
												JsonTokenType tokentype);


/*
 * Module load: settings, then the workers.
 *
 * Background workers can only be registered from shared_preload_libraries,
 * so refuse any other way of loading the library.  When the library is
 * preloaded, backends inherit it from the postmaster and CREATE EXTENSION
 * does not run _PG_init again.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_node_worker must be loaded via shared_preload_libraries"),
				 errhint("Add pg_node_worker to shared_preload_libraries in postgresql.conf (or run \"pg-node-worker deploy\", which does it) and restart the server.")));

	/* before pgnw_define_gucs() reserves the prefix, which drops placeholders */
	pgnw_supervisor_init();
	pgnw_define_gucs();

	/*
	 * With EXEC_BACKEND, every child process loads the preload libraries
	 * again; registration is the postmaster's business only.
	 */
	if (IsUnderPostmaster)
		return;

	pgnw_register_workers();
}

static void
pgnw_define_gucs(void)
{
	DefineCustomStringVariable("node_worker.directory",
							   "Directory holding the worker manifests and bundles.",
							   "A relative path is relative to the data directory.",
							   &pgnw_directory_guc,
							   "node_worker",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   pgnw_check_directory,
							   NULL,
							   NULL);

	DefineCustomIntVariable("node_worker.shutdown_grace_ms",
							"Time a worker's JavaScript gets to finish after a shutdown request.",
							NULL,
							&pgnw_shutdown_grace_ms,
							5000,
							0,
							600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("node_worker.heap_limit_mb",
							"Maximum size of the JavaScript heap of each worker.",
							NULL,
							&pgnw_heap_limit_mb,
							256,
							16,
							65536,
							PGC_POSTMASTER,
							GUC_UNIT_MB,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("node_worker.buffer_limit_mb",
							"Maximum memory each worker may hold in ArrayBuffers and Buffers.",
							"-1 means no limit of its own (an operating system limit on the data segment still applies). Applies to workers started after a reload.",
							&pgnw_buffer_limit_mb,
							1024,
							-1,
							MAX_KILOBYTES / 1024,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL,
							NULL,
							NULL);

	pgnw_reserve_guc_prefix("node_worker");
}

/*
 * node_worker.directory must be non-empty, and the resolved path must leave
 * room for file names inside it.
 */
static bool
pgnw_check_directory(char **newval, void **extra, GucSource source)
{
	size_t		len;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("The worker directory must not be empty.");
		return false;
	}

	len = strlen(*newval);
	if (!is_absolute_path(*newval) && DataDir != NULL)
		len += strlen(DataDir) + 1;
	if (len >= MAXPGPATH - 2 * (PGNW_WORKER_NAME_MAX + 8))
	{
		GUC_check_errdetail("The worker directory path is too long.");
		return false;
	}

	return true;
}

/*
 * The "<name>.json" files of the worker directory, sorted so that results do
 * not depend on the file system; hidden files are ignored (editors and tools
 * leave them around).  palloc'd; a missing directory gives none.
 */
char	  **
pgnw_list_manifests(int *n)
{
	const char *dir = pgnw_directory();
	DIR		   *dirp;
	struct dirent *de;
	char	  **names;
	int			nnames = 0;
	int			maxnames = 16;

	*n = 0;
	dirp = opendir(dir);
	if (dirp == NULL)
	{
		if (errno == ENOENT)
			ereport(DEBUG1,
					(errmsg_internal("pg_node_worker: directory \"%s\" does not exist",
									 dir)));
		else
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("pg_node_worker: could not open directory \"%s\": %m",
							dir)));
		return NULL;
	}

	names = palloc(maxnames * sizeof(char *));
	for (;;)
	{
		size_t		len;

		errno = 0;
		de = readdir(dirp);
		if (de == NULL)
			break;

		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 ||
			strcmp(de->d_name + len - 5, ".json") != 0)
			continue;

		if (nnames == maxnames)
		{
			maxnames *= 2;
			names = repalloc(names, maxnames * sizeof(char *));
		}
		names[nnames++] = pstrdup(de->d_name);
	}
	if (errno != 0)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: could not read directory \"%s\": %m",
						dir)));
	closedir(dirp);

	qsort(names, nnames, sizeof(char *), pgnw_cmp_names);
	*n = nnames;
	return names;
}

/*
 * Register one background worker per valid manifest, in file name order.
 */
static void
pgnw_register_workers(void)
{
	int			nnames;
	char	  **names = pgnw_list_manifests(&nnames);

	for (int i = 0; i < nnames; i++)
	{
		pgnw_register_one(pgnw_directory(), names[i]);
		pfree(names[i]);
	}
	if (names)
		pfree(names);
}

static int
pgnw_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Validate the manifest dir/filename and register its worker, or LOG why
 * not.
 */
static void
pgnw_register_one(const char *dir, const char *filename)
{
	char		path[MAXPGPATH];
	PgnwManifest manifest;
	char	   *reason = NULL;
	int			slot;
	BackgroundWorker worker;
	struct stat st;
	int			fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, filename) >= (int) sizeof(path))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s/%s\": %s",
						dir, filename, "path is too long")));
		return;
	}

	if (!pgnw_read_manifest(path, &manifest, &reason))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": %s",
						path, reason ? reason : "out of memory")));
		free(reason);
		return;
	}

	/*
	 * The bundle must be there and readable now, not only when the worker
	 * starts.  stat() first: opening a FIFO would block the postmaster.
	 */
	if (stat(manifest.bundle_path, &st) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: skipping worker manifest \"%s\": cannot open bundle file \"%s\": %m",
						path, manifest.bundle_path)));
		return;
	}
	if (!S_ISREG(st.st_mode))
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": bundle file \"%s\" is not a regular file",
						path, manifest.bundle_path)));
		return;
	}
	fd = open(manifest.bundle_path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: skipping worker manifest \"%s\": cannot open bundle file \"%s\": %m",
						path, manifest.bundle_path)));
		return;
	}
	close(fd);

	slot = pgnw_supervisor_add_static(&manifest);
	if (slot < 0)
	{
		ereport(LOG,
				(errmsg("pg_node_worker: skipping worker manifest \"%s\": more workers than node_worker.max_workers (%d)",
						path, pgnw_max_workers)));
		return;
	}
	pgnw_fill_bgworker(&worker, &manifest, slot);
	RegisterBackgroundWorker(&worker);

	ereport(LOG,
			(errmsg("pg_node_worker: registered worker \"%s\" (database \"%s\", bundle %s)",
					manifest.name, manifest.database, manifest.bundle_path)));
}

/*
 * node_worker.directory(): the resolved worker directory.
 */
Datum
node_worker_directory(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pgnw_directory()));
}

/* The manifest of worker name: <node_worker.directory>/<name>.json. */
void
pgnw_manifest_path(const char *name, char *path)
{
	snprintf(path, MAXPGPATH, "%s/%s.json", pgnw_directory(), name);
}

/*
 * Absolute path of the worker directory.  node_worker.directory is
 * PGC_POSTMASTER, so the result never changes once computed.
 */
const char *
pgnw_directory(void)
{
	const char *setting;

	if (pgnw_directory_buf[0] != '\0')
		return pgnw_directory_buf;

	setting = pgnw_directory_guc;
	if (setting == NULL || setting[0] == '\0')
		setting = "node_worker";

	if (is_absolute_path(setting) || DataDir == NULL)
		strlcpy(pgnw_directory_buf, setting, sizeof(pgnw_directory_buf));
	else
		snprintf(pgnw_directory_buf, sizeof(pgnw_directory_buf), "%s/%s",
				 DataDir, setting);
	canonicalize_path(pgnw_directory_buf);

	return pgnw_directory_buf;
}

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

void
pgnw_verify_bundle(const PgnwManifest *m)
{
	pg_cryptohash_ctx *ctx;
	ResourceOwner owner;
	ResourceOwner saved_owner;
	uint8		digest[32];
	char		found[65];
	char	   *buf;
	char		why[256];
	ssize_t		n;
	int			fd;

	if (m->sha256[0] == '\0')
		return;
	/* a missing or unreadable bundle is reported by the loader, with its path */
	fd = open(m->bundle_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	buf = palloc(65536);
	/* the OpenSSL implementation registers its context with a resource owner */
	owner = ResourceOwnerCreate(NULL, "pg_node_worker bundle check");
	saved_owner = CurrentResourceOwner;
	CurrentResourceOwner = owner;
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not compute the SHA-256 of bundle \"%s\"", m->bundle_path)));
	while ((n = read(fd, buf, 65536)) > 0)
	{
		if (pg_cryptohash_update(ctx, (uint8 *) buf, n) < 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	if (n < 0 || pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not compute the SHA-256 of bundle \"%s\": %m", m->bundle_path)));
	close(fd);
	pg_cryptohash_free(ctx);
	CurrentResourceOwner = saved_owner;
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, true, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, true, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, true, true);
	ResourceOwnerDelete(owner);
	pfree(buf);

	hex_encode((const char *) digest, sizeof(digest), found);
	found[64] = '\0';
	if (strcmp(found, m->sha256) == 0)
		return;

	snprintf(why, sizeof(why),
			 "bundle %s does not match the sha256 in its manifest (expected %.12s..., found %.12s...)",
			 last_dir_separator(m->bundle_path) ? last_dir_separator(m->bundle_path) + 1 : m->bundle_path,
			 m->sha256, found);
	pgnw_worker_set_error("XX001", why);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("node worker \"%s\": bundle \"%s\" does not match its manifest",
					m->name, m->bundle_path),
			 errdetail("The manifest gives SHA-256 %s; the file's is %s.", m->sha256, found),
			 errhint("Deploy the worker again with pg-node-worker deploy. A bundle changed by hand needs its manifest's \"sha256\" updated or removed.")));
}

/*
 * Read, parse and validate one manifest.  Never ereports: file and JSON
 * problems, and any error thrown by the backend's JSON code, become a
 * malloc'd *reason.
 */
bool
pgnw_read_manifest(const char *path, PgnwManifest *out, char **reason)
{
	char		errbuf[PGNW_REASON_SIZE];
	char		abspath[MAXPGPATH];
	char		expected_name[PGNW_WORKER_NAME_MAX + 1];
	char	   *slash;
	const char *base;
	size_t		baselen;
	char	   *data = NULL;
	size_t		len = 0;
	PgnwManifest result;
	bool		ok;

	*reason = NULL;
	errbuf[0] = '\0';

	/* Absolute path, so that bundle_path comes out absolute too */
	if (is_absolute_path(path))
		ok = strlcpy(abspath, path, sizeof(abspath)) < sizeof(abspath);
	else
	{
		char		cwd[MAXPGPATH];

		ok = getcwd(cwd, sizeof(cwd)) != NULL &&
			snprintf(abspath, sizeof(abspath), "%s/%s", cwd, path) < (int) sizeof(abspath);
	}
	if (!ok)
	{
		*reason = pgnw_strdup_reason("path is too long");
		return false;
	}
	canonicalize_path(abspath);

	/* The file name is the worker name plus ".json" */
	slash = strrchr(abspath, '/');
	base = slash ? slash + 1 : abspath;
	baselen = strlen(base);
	if (baselen <= 5 || baselen - 5 > PGNW_WORKER_NAME_MAX ||
		strcmp(base + baselen - 5, ".json") != 0)
	{
		*reason = pgnw_strdup_reason("file name is not a worker name followed by \".json\"");
		return false;
	}
	memcpy(expected_name, base, baselen - 5);
	expected_name[baselen - 5] = '\0';
	if (!pgnw_valid_worker_name(expected_name))
	{
		*reason = pgnw_strdup_reason("file name is not a valid worker name followed by \".json\"");
		return false;
	}

	/* From here on, abspath is the directory */
	if (slash)
		*slash = '\0';

	ok = pgnw_read_file(path, &data, &len, errbuf) &&
		pgnw_prescan(data, len, errbuf) &&
		pgnw_parse_manifest(data, len, abspath, expected_name, &result, errbuf);
	free(data);

	if (!ok)
	{
		*reason = pgnw_strdup_reason(errbuf);
		return false;
	}

	*out = result;
	return true;
}

/*
 * Format a failure reason into errbuf (PGNW_REASON_SIZE bytes); always
 * returns false.
 */
static bool
pgnw_fail(char *errbuf, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, PGNW_REASON_SIZE, fmt, ap);
	va_end(ap);
	pgnw_clip_utf8(errbuf);

	return false;
}

/*
 * If truncation cut a UTF-8 sequence at the end of s, drop its remains.
 */
static void
pgnw_clip_utf8(char *s)
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

static char *
pgnw_strdup_reason(const char *errbuf)
{
	return strdup(errbuf[0] != '\0' ? errbuf : "unknown error");
}

/*
 * Read the whole file into a malloc'd buffer, up to the size limit.
 */
static bool
pgnw_read_file(const char *path, char **data, size_t *len, char *errbuf)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		total = 0;
	int			save_errno;

	/* stat() first: opening a FIFO would block */
	if (stat(path, &st) != 0)
		return pgnw_fail(errbuf, "cannot read file: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return pgnw_fail(errbuf, "not a regular file");
	if (st.st_size > PGNW_MANIFEST_MAX_BYTES)
		return pgnw_fail(errbuf, "manifest is larger than 64 kB");

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return pgnw_fail(errbuf, "cannot read file: %s", strerror(errno));

	/* One byte more than allowed, to notice a file that grew meanwhile */
	buf = malloc(PGNW_MANIFEST_MAX_BYTES + 1);
	if (buf == NULL)
	{
		close(fd);
		return pgnw_fail(errbuf, "out of memory");
	}

	while (total <= PGNW_MANIFEST_MAX_BYTES)
	{
		ssize_t		n;

		n = read(fd, buf + total, PGNW_MANIFEST_MAX_BYTES + 1 - total);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			save_errno = errno;
			close(fd);
			free(buf);
			return pgnw_fail(errbuf, "cannot read file: %s",
							 strerror(save_errno));
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);

	if (total > PGNW_MANIFEST_MAX_BYTES)
	{
		free(buf);
		return pgnw_fail(errbuf, "manifest is larger than 64 kB");
	}

	*data = buf;
	*len = total;
	return true;
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
pgnw_prescan(const char *buf, size_t len, char *errbuf)
{
	size_t		i;
	int			depth = 0;
	bool		in_string = false;

	if (memchr(buf, '\0', len) != NULL)
		return pgnw_fail(errbuf, "manifest contains a NUL byte");

	if (pg_encoding_verifymbstr(PG_UTF8, buf, (int) len) != (int) len)
		return pgnw_fail(errbuf, "manifest is not valid UTF-8");

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
						return pgnw_fail(errbuf, "manifest uses a \\u escape for a non-ASCII character (write the character itself)");
				}
			}
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > PGNW_MANIFEST_MAX_DEPTH)
				return pgnw_fail(errbuf, "manifest is nested more than %d levels deep",
								 PGNW_MANIFEST_MAX_DEPTH);
		}
		else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}

	return true;
}

/*
 * Run the backend JSON parser over the manifest and validate the result.
 *
 * The parser pallocs, so it runs in a private memory context, and under
 * PG_TRY so that an error thrown anyway (out of memory) becomes a reason
 * instead of propagating: in the postmaster there is nothing to catch it.
 */
static bool
pgnw_parse_manifest(char *json, size_t len, const char *dir,
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
		sem.object_start = pgnw_json_object_start;
		sem.object_end = pgnw_json_object_end;
		sem.array_start = pgnw_json_array_start;
		sem.array_end = pgnw_json_array_end;
		sem.object_field_start = pgnw_json_field_start;
		sem.object_field_end = pgnw_json_field_end;
		sem.scalar = pgnw_json_scalar;

		lex = pgnw_make_json_lex(json, (int) len);
		rc = pg_parse_json(lex, &sem);
		if (rc != JSON_SUCCESS)
			pgnw_fail(errbuf, "invalid JSON on line %d: %s",
					  lex->line_number, json_errdetail(rc, lex));
		else
			ok = pgnw_validate(&ps, dir, expected_name, out, errbuf);

		MemoryContextSwitchTo(oldcxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* Error handling left us in ErrorContext */
		MemoryContextSwitchTo(tmpcxt != NULL ? tmpcxt : oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		pgnw_fail(errbuf, "cannot parse manifest: %s", edata->message);
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
 * Check the fields collected by the parse and fill *out.
 */
static bool
pgnw_validate(PgnwParseState *ps, const char *dir, const char *expected_name,
			  PgnwManifest *out, char *errbuf)
{
	const char *s;
	PgnwFieldValue *f;
	int			i;

	if (!ps->is_object)
		return pgnw_fail(errbuf, "manifest must be a JSON object");
	if (ps->duplicate >= 0)
		return pgnw_fail(errbuf, "duplicate field \"%s\"",
						 pgnw_field_names[ps->duplicate]);

	memset(out, 0, sizeof(*out));

	/* format: optional, 1 */
	f = &ps->fields[PGNW_FIELD_FORMAT];
	if (f->present)
	{
		if (f->composite || f->type != JSON_TOKEN_NUMBER)
			return pgnw_fail(errbuf, "field \"format\" must be a number");
		if (strcmp(f->value, "1") != 0)
			return pgnw_fail(errbuf, "unsupported manifest format %.20s (this version of pg_node_worker reads format 1)",
							 f->value);
	}

	/* name */
	if (!pgnw_get_string(ps, PGNW_FIELD_NAME, true, false, &s, errbuf))
		return false;
	if (!pgnw_valid_worker_name(s))
		return pgnw_fail(errbuf, "field \"name\" is not a valid worker name (1 to %d ASCII letters, digits, \"_\" or \"-\", not starting with a digit or \"-\")",
						 PGNW_WORKER_NAME_MAX);
	if (strcmp(s, expected_name) != 0)
		return pgnw_fail(errbuf, "field \"name\" does not match the file name \"%s.json\"",
						 expected_name);
	strlcpy(out->name, s, sizeof(out->name));

	/* database */
	if (!pgnw_get_string(ps, PGNW_FIELD_DATABASE, true, false, &s, errbuf))
		return false;
	if (s[0] == '\0')
		return pgnw_fail(errbuf, "field \"database\" must not be empty");
	if (strlen(s) >= NAMEDATALEN)
		return pgnw_fail(errbuf, "field \"database\" is longer than %d bytes",
						 NAMEDATALEN - 1);
	strlcpy(out->database, s, sizeof(out->database));

	/* role: optional, null = bootstrap superuser */
	if (!pgnw_get_string(ps, PGNW_FIELD_ROLE, false, true, &s, errbuf))
		return false;
	if (s != NULL)
	{
		if (s[0] == '\0')
			return pgnw_fail(errbuf, "field \"role\" must be a non-empty string or null");
		if (strlen(s) >= NAMEDATALEN)
			return pgnw_fail(errbuf, "field \"role\" is longer than %d bytes",
							 NAMEDATALEN - 1);
		strlcpy(out->role, s, sizeof(out->role));
	}

	/* restart: integer seconds or "never" */
	f = &ps->fields[PGNW_FIELD_RESTART];
	if (!f->present)
		return pgnw_fail(errbuf, "missing field \"restart\"");
	if (!f->composite && f->type == JSON_TOKEN_STRING &&
		strcmp(f->value, "never") == 0)
		out->restart_seconds = BGW_NEVER_RESTART;
	else if (!f->composite && f->type == JSON_TOKEN_NUMBER)
	{
		const char *p = f->value;
		bool		negative = false;
		long		seconds = 0;

		if (*p == '-')
		{
			negative = true;
			p++;
		}
		for (; *p != '\0'; p++)
		{
			if (*p < '0' || *p > '9')
				return pgnw_fail(errbuf, "field \"restart\" must be an integer number of seconds or \"never\"");
			if (seconds <= PGNW_MAX_RESTART_SECONDS)
				seconds = seconds * 10 + (*p - '0');
		}
		if (negative || seconds > PGNW_MAX_RESTART_SECONDS)
			return pgnw_fail(errbuf, "field \"restart\" must be between 0 and %d seconds, or \"never\"",
							 PGNW_MAX_RESTART_SECONDS);
		out->restart_seconds = (int) seconds;
	}
	else
		return pgnw_fail(errbuf, "field \"restart\" must be an integer number of seconds or \"never\"");

	/* start */
	if (!pgnw_get_string(ps, PGNW_FIELD_START, true, false, &s, errbuf))
		return false;
	if (strcmp(s, "postmaster") == 0)
		out->start_time = BgWorkerStart_PostmasterStart;
	else if (strcmp(s, "consistent") == 0)
		out->start_time = BgWorkerStart_ConsistentState;
	else if (strcmp(s, "recovery-finished") == 0)
		out->start_time = BgWorkerStart_RecoveryFinished;
	else
		return pgnw_fail(errbuf, "field \"start\" must be \"postmaster\", \"consistent\" or \"recovery-finished\"");

	/* bundle: a plain file name in the same directory */
	if (!pgnw_get_string(ps, PGNW_FIELD_BUNDLE, true, false, &s, errbuf))
		return false;
	if (s[0] == '\0')
		return pgnw_fail(errbuf, "field \"bundle\" must not be empty");
	for (i = 0; s[i] != '\0'; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c >= 0x7F)
			return pgnw_fail(errbuf, "field \"bundle\" must contain only printable ASCII characters");
		if (c == '/' || c == '\\')
			return pgnw_fail(errbuf, "field \"bundle\" must be a plain file name in the worker directory, without \"/\"");
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return pgnw_fail(errbuf, "field \"bundle\" must be a plain file name in the worker directory, not \".\" or \"..\"");
	if (snprintf(out->bundle_path, sizeof(out->bundle_path), "%s/%s",
				 dir, s) >= (int) sizeof(out->bundle_path))
		return pgnw_fail(errbuf, "bundle path is too long");

	/* sha256: optional, 64 hex digits */
	if (!pgnw_get_string(ps, PGNW_FIELD_SHA256, false, true, &s, errbuf))
		return false;
	if (s != NULL)
	{
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
			return pgnw_fail(errbuf, "field \"sha256\" must be 64 hexadecimal digits or null");
		out->sha256[64] = '\0';
	}

	/* callers: optional, role names separated by commas */
	if (!pgnw_get_string(ps, PGNW_FIELD_CALLERS, false, true, &s, errbuf))
		return false;
	if (s != NULL)
	{
		if (strlen(s) >= sizeof(out->callers))
			return pgnw_fail(errbuf, "field \"callers\" is longer than %d bytes",
							 (int) sizeof(out->callers) - 1);
		strlcpy(out->callers, s, sizeof(out->callers));
	}

	/* searchPath: optional, schema names separated by commas */
	if (!pgnw_get_string(ps, PGNW_FIELD_SEARCH_PATH, false, true, &s, errbuf))
		return false;
	if (s != NULL)
	{
		const char *p = s;

		if (strlen(s) >= sizeof(out->search_path))
			return pgnw_fail(errbuf, "field \"searchPath\" is longer than %d bytes",
							 (int) sizeof(out->search_path) - 1);
		for (;;)
		{
			const char *comma = strchr(p, ',');
			size_t		len = comma ? (size_t) (comma - p) : strlen(p);

			if (len == 0 || len >= NAMEDATALEN)
				return pgnw_fail(errbuf, "field \"searchPath\" must be schema names of 1 to %d bytes separated by commas",
								 NAMEDATALEN - 1);
			if (comma == NULL)
				break;
			p = comma + 1;
		}
		strlcpy(out->search_path, s, sizeof(out->search_path));
	}

	/* heapLimitMb, bufferLimitMb: optional, override node_worker.*_limit_mb */
	if (!pgnw_get_megabytes(ps, PGNW_FIELD_HEAP_LIMIT, 16, 65536, &out->heap_limit_mb, errbuf))
		return false;
	if (!pgnw_get_megabytes(ps, PGNW_FIELD_BUFFER_LIMIT, 16, 1048576, &out->buffer_limit_mb, errbuf))
		return false;

	return true;
}

/*
 * Fetch an optional integer field counting megabytes, from min to max.  A
 * missing field or null leaves *out alone.
 */
static bool
pgnw_get_megabytes(PgnwParseState *ps, int field, long min, long max, int *out,
				   char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[field];
	const char *name = pgnw_field_names[field];
	char	   *end;
	long		mb;

	if (!f->present || (f->type == JSON_TOKEN_NULL && !f->composite))
		return true;
	if (f->composite || f->type != JSON_TOKEN_NUMBER)
		return pgnw_fail(errbuf, "field \"%s\" must be an integer number of megabytes or null", name);
	errno = 0;
	mb = strtol(f->value, &end, 10);
	if (errno != 0 || *end != '\0' || mb < min || mb > max)
		return pgnw_fail(errbuf, "field \"%s\" must be an integer from %ld to %ld", name, min, max);
	*out = (int) mb;
	return true;
}

/*
 * Fetch a string field.  A missing optional field and, if nullable, a null
 * value both give *value = NULL.
 */
static bool
pgnw_get_string(PgnwParseState *ps, PgnwField field, bool required,
				bool nullable, const char **value, char *errbuf)
{
	PgnwFieldValue *f = &ps->fields[field];

	*value = NULL;

	if (!f->present)
	{
		if (required)
			return pgnw_fail(errbuf, "missing field \"%s\"",
							 pgnw_field_names[field]);
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
		return pgnw_fail(errbuf, "field \"%s\" must be a string or null",
						 pgnw_field_names[field]);
	return pgnw_fail(errbuf, "field \"%s\" must be a string",
					 pgnw_field_names[field]);
}

/*
 * JSON semantic actions: collect the scalar values of known top-level keys,
 * noting whether the document is an object and whether a known key carries
 * an object or array instead of a scalar.
 */
static pgnw_json_action_result
pgnw_json_object_start(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 0)
		ps->is_object = true;
	else if (ps->depth == 1 && ps->current >= 0)
		ps->fields[ps->current].composite = true;
	ps->depth++;

	return PGNW_JSON_ACTION_OK;
}

static pgnw_json_action_result
pgnw_json_object_end(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	ps->depth--;

	return PGNW_JSON_ACTION_OK;
}

static pgnw_json_action_result
pgnw_json_array_start(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1 && ps->current >= 0)
		ps->fields[ps->current].composite = true;
	ps->depth++;

	return PGNW_JSON_ACTION_OK;
}

static pgnw_json_action_result
pgnw_json_array_end(void *state)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	ps->depth--;

	return PGNW_JSON_ACTION_OK;
}

static pgnw_json_action_result
pgnw_json_field_start(void *state, char *fname, bool isnull)
{
	PgnwParseState *ps = (PgnwParseState *) state;
	int			i;

	if (ps->depth != 1)
		return PGNW_JSON_ACTION_OK;

	ps->current = -1;
	for (i = 0; i < PGNW_NUM_FIELDS; i++)
	{
		if (strcmp(fname, pgnw_field_names[i]) == 0)
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

static pgnw_json_action_result
pgnw_json_field_end(void *state, char *fname, bool isnull)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1)
		ps->current = -1;

	return PGNW_JSON_ACTION_OK;
}

static pgnw_json_action_result
pgnw_json_scalar(void *state, char *token, JsonTokenType tokentype)
{
	PgnwParseState *ps = (PgnwParseState *) state;

	if (ps->depth == 1 && ps->current >= 0)
	{
		ps->fields[ps->current].type = tokentype;
		ps->fields[ps->current].value = token;
	}

	return PGNW_JSON_ACTION_OK;
}
