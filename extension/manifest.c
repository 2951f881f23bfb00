/*-------------------------------------------------------------------------
 *
 * manifest.c
 *	  Worker manifests: the worker directory (node_worker.directory), the
 *	  manifests deployed in it, reading one manifest, and the SHA-256 of a
 *	  bundle.
 *
 * A manifest (<node_worker.directory>/<name>.json, written by
 * "pg-node-worker deploy") is untrusted input that the postmaster reads at
 * start: nothing in it may stop the server.  So pgnw_read_manifest() never
 * ereports: every problem, including an error thrown by the backend's JSON
 * code, becomes a reason string that the caller logs or reports.  What the
 * JSON must say is manifest_parse.c's.
 *
 * Limits: a manifest is at most 64 kB; a listing ignores hidden files; the
 * worker directory is resolved once (node_worker.directory needs a
 * restart).
 *
 * It calls only manifest_parse.c, so every module (and the worker runtime)
 * may use it.
 *
 * extension/manifest.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptohash.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "manifest.h"
#include "manifest_parse.h"

PG_FUNCTION_INFO_V1(node_worker_directory);

/* Manifest limits */
#define PGNW_MANIFEST_MAX_BYTES		(64 * 1024)

/* how much of a bundle is hashed per read() */
#define PGNW_HASH_CHUNK				65536

/* node_worker.directory */
char	   *pgnw_directory_guc = NULL;

/* pgnw_directory() result, computed on first use */
static char pgnw_manifest_directory_buf[MAXPGPATH];


/* ------------------------------------------------------ the directory */

/*
 * node_worker.directory must be non-empty, and the resolved path must leave
 * room for file names inside it.
 */
bool
pgnw_manifest_check_directory(char **newval, void **extra, GucSource source)
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
 * Absolute path of the worker directory.  node_worker.directory is
 * PGC_POSTMASTER, so the result never changes once computed.
 */
const char *
pgnw_directory(void)
{
	const char *setting;

	if (pgnw_manifest_directory_buf[0] != '\0')
		return pgnw_manifest_directory_buf;

	setting = pgnw_directory_guc;
	if (setting == NULL || setting[0] == '\0')
		setting = "node_worker";

	if (is_absolute_path(setting) || DataDir == NULL)
		strlcpy(pgnw_manifest_directory_buf, setting, sizeof(pgnw_manifest_directory_buf));
	else
		snprintf(pgnw_manifest_directory_buf, sizeof(pgnw_manifest_directory_buf), "%s/%s",
				 DataDir, setting);
	canonicalize_path(pgnw_manifest_directory_buf);

	return pgnw_manifest_directory_buf;
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
bool
pgnw_manifest_path(const char *name, char *path)
{
	return snprintf(path, MAXPGPATH, "%s/%s.json", pgnw_directory(), name) < MAXPGPATH;
}

/* qsort() comparator of C strings */
static int
pgnw_manifest_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The "<name>.json" files of the worker directory, as names, sorted so that
 * results do not depend on the file system; hidden files are ignored
 * (editors and tools leave them around).  A missing directory gives none.
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
		names[nnames++] = pnstrdup(de->d_name, len - 5);
	}
	if (errno != 0)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("pg_node_worker: could not read directory \"%s\": %m",
						dir)));
	closedir(dirp);

	qsort(names, nnames, sizeof(char *), pgnw_manifest_cmp_names);
	*n = nnames;
	return names;
}

/*
 * The SHA-256 of a bundle.  Runs in the worker before it connects, so it
 * has no resource owner of its own: the OpenSSL implementation registers
 * its context with one, made here for the purpose.
 */
bool
pgnw_manifest_file_sha256(const char *path, char *hex)
{
	pg_cryptohash_ctx *ctx;
	ResourceOwner owner;
	ResourceOwner saved_owner;
	uint8		digest[32];
	char	   *buf;
	ssize_t		n;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	buf = palloc(PGNW_HASH_CHUNK);
	owner = ResourceOwnerCreate(NULL, "pg_node_worker bundle check");
	saved_owner = CurrentResourceOwner;
	CurrentResourceOwner = owner;
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not compute the SHA-256 of bundle \"%s\"", path)));
	while ((n = read(fd, buf, PGNW_HASH_CHUNK)) > 0)
	{
		if (pg_cryptohash_update(ctx, (uint8 *) buf, n) < 0)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	if (n < 0 || pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not compute the SHA-256 of bundle \"%s\": %m", path)));
	close(fd);
	pg_cryptohash_free(ctx);
	CurrentResourceOwner = saved_owner;
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, true, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, true, true);
	ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, true, true);
	ResourceOwnerDelete(owner);
	pfree(buf);

	hex_encode((const char *) digest, sizeof(digest), hex);
	hex[64] = '\0';
	return true;
}


/* -------------------------------------------------- reading a manifest */

/* A malloc'd copy of a reason (NULL only when malloc fails). */
static char *
pgnw_manifest_strdup_reason(const char *errbuf)
{
	return strdup(errbuf[0] != '\0' ? errbuf : "unknown error");
}

/*
 * The absolute directory of the manifest at path (so that bundle_path comes
 * out absolute too) into dir[MAXPGPATH], and the worker name its file name
 * promises into expected_name.  On failure sets a malloc'd *reason.
 */
static bool
pgnw_manifest_split_path(const char *path, char *dir, char *expected_name, char **reason)
{
	char	   *slash;
	const char *base;
	size_t		baselen;
	bool		ok;

	if (is_absolute_path(path))
		ok = strlcpy(dir, path, MAXPGPATH) < MAXPGPATH;
	else
	{
		char		cwd[MAXPGPATH];

		ok = getcwd(cwd, sizeof(cwd)) != NULL &&
			snprintf(dir, MAXPGPATH, "%s/%s", cwd, path) < MAXPGPATH;
	}
	if (!ok)
	{
		*reason = pgnw_manifest_strdup_reason("path is too long");
		return false;
	}
	canonicalize_path(dir);

	/* The file name is the worker name plus ".json" */
	slash = strrchr(dir, '/');
	base = slash ? slash + 1 : dir;
	baselen = strlen(base);
	if (baselen <= 5 || baselen - 5 > PGNW_WORKER_NAME_MAX ||
		strcmp(base + baselen - 5, ".json") != 0)
	{
		*reason = pgnw_manifest_strdup_reason("file name is not a worker name followed by \".json\"");
		return false;
	}
	memcpy(expected_name, base, baselen - 5);
	expected_name[baselen - 5] = '\0';
	if (!pgnw_valid_worker_name(expected_name))
	{
		*reason = pgnw_manifest_strdup_reason("file name is not a valid worker name followed by \".json\"");
		return false;
	}

	/* From here on, dir is the directory */
	if (slash)
		*slash = '\0';
	return true;
}

/*
 * Read the whole file into a malloc'd buffer, up to the size limit.
 */
static bool
pgnw_manifest_read_file(const char *path, char **data, size_t *len, char *errbuf)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		total = 0;
	int			save_errno;

	/* stat() first: opening a FIFO would block */
	if (stat(path, &st) != 0)
		return pgnw_manifest_fail(errbuf, "cannot read file: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return pgnw_manifest_fail(errbuf, "not a regular file");
	if (st.st_size > PGNW_MANIFEST_MAX_BYTES)
		return pgnw_manifest_fail(errbuf, "manifest is larger than 64 kB");

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return pgnw_manifest_fail(errbuf, "cannot read file: %s", strerror(errno));

	/* One byte more than allowed, to notice a file that grew meanwhile */
	buf = malloc(PGNW_MANIFEST_MAX_BYTES + 1);
	if (buf == NULL)
	{
		close(fd);
		return pgnw_manifest_fail(errbuf, "out of memory");
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
			return pgnw_manifest_fail(errbuf, "cannot read file: %s",
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
		return pgnw_manifest_fail(errbuf, "manifest is larger than 64 kB");
	}

	*data = buf;
	*len = total;
	return true;
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
	char		dir[MAXPGPATH];
	char		expected_name[PGNW_WORKER_NAME_MAX + 1];
	char	   *data = NULL;
	size_t		len = 0;
	PgnwManifest result;
	bool		ok;

	*reason = NULL;
	errbuf[0] = '\0';

	if (!pgnw_manifest_split_path(path, dir, expected_name, reason))
		return false;

	ok = pgnw_manifest_read_file(path, &data, &len, errbuf) &&
		pgnw_manifest_parse(data, len, dir, expected_name, &result, errbuf);
	free(data);

	if (!ok)
	{
		*reason = pgnw_manifest_strdup_reason(errbuf);
		return false;
	}

	*out = result;
	return true;
}
