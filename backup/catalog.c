// SPDX-License-Identifier: MIT
/*
 * The catalog: what is under DIR/NODE and whether each backup is good.
 * A backup is a directory named by its start time (UTC) holding its files
 * and manifest.json; it is good only when the manifest lists every file
 * with the size and sha256 found on disk and every tool exited 0. Nothing
 * under .inprogress/ is ever a backup.
 */
#include "backup/backup_internal.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- pure --------------------------------------------------------------- */

void backup_name(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y%m%dT%H%M%SZ", &tm);
}

bool backup_name_valid(const char *s)
{
	/* YYYYMMDDTHHMMSSZ, optionally -N when two runs start in one second */
	static const char pattern[] = "ddddddddTddddddZ";
	size_t i;

	for (i = 0; pattern[i]; i++) {
		if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
			return false;
	}
	if (!s[i])
		return true;
	if (s[i] != '-' || !s[i + 1])
		return false;
	for (i++; s[i]; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

char *backup_db_file(const char *db)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(db);
	char *out = xmalloc(3 + n * 3 + 6), *p = out;

	p += sprintf(p, "db_");
	for (const unsigned char *s = (const unsigned char *)db; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    *s == '_' || *s == '-') {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	strcpy(p, ".dump");
	return out;
}

bool backup_manifest_check(const json_t *manifest, const json_t *actual, const char **problem)
{
	const json_t *files = json_object_get(manifest, "files"), *f;
	size_t i;

	if (!json_is_object(manifest) || json_integer_value(json_object_get(manifest, "format")) != 1) {
		*problem = "the manifest is not a format 1 manifest";
		return false;
	}
	if (!json_is_array(files) || json_array_size(files) == 0) {
		*problem = "the manifest lists no files";
		return false;
	}
	json_array_foreach(files, i, f) {
		const char *name = json_string_value(json_object_get(f, "name"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		const json_t *have = name ? json_object_get(actual, name) : NULL;
		const char *got = json_string_value(json_object_get(have, "sha256"));
		const json_t *ex;
		const char *key;

		if (!name || !want || !json_is_integer(json_object_get(f, "size"))) {
			*problem = "a manifest entry lacks its name, size or sha256";
			return false;
		}
		if (!have) {
			*problem = "a file the manifest lists is missing";
			return false;
		}
		if (json_integer_value(json_object_get(have, "size")) !=
		    json_integer_value(json_object_get(f, "size"))) {
			*problem = "a file's size differs from the manifest (truncated or grown)";
			return false;
		}
		if (got && strcmp(got, want) != 0) {
			*problem = "a file's sha256 differs from the manifest (corrupted)";
			return false;
		}
		json_object_foreach((json_t *)f, key, ex) {
			size_t kl = strlen(key);

			if (kl > 5 && strcmp(key + kl - 5, "_exit") == 0 && json_integer_value(ex) != 0) {
				*problem = "a tool did not exit 0 for a file in the manifest";
				return false;
			}
		}
	}
	return true;
}

/* ---- files -------------------------------------------------------------- */

int hash_file(const char *path, char hex[BACKUP_SHA256_HEX], uint64_t *size)
{
	crypto_hash_sha256_state st;
	unsigned char buf[1 << 16], h[crypto_hash_sha256_BYTES];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t total = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
		total += (uint64_t)n;
	}
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, BACKUP_SHA256_HEX, h, sizeof(h));
	*size = total;
	return 0;
}

int fsync_path(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int rm_tree(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int write_json_atomic(const char *dir, const char *name, const json_t *doc)
{
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	_cleanup_free_ char *dst = xasprintf("%s/%s", dir, name);
	_cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	size_t len = text ? strlen(text) : 0;
	int fd, r = 0;

	if (!text)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, text, len);
	if (!r && (write(fd, "\n", 1) != 1 || fsync(fd) < 0))
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, dst) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	return fsync_path(dir);
}

char *backup_node_dir(const struct conf *conf)
{
	const struct conf_node *me = conf_self(conf);

	return xasprintf("%s/%s", me->settings.backup.dir, me->name);
}

/* ---- the scan ----------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One backup directory: its manifest against what is there now. */
static json_t *check_one(const char *nodedir, const char *name, bool rehash)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", nodedir, name);
	_cleanup_free_ char *mpath = xasprintf("%s/%s", dir, BACKUP_MANIFEST);
	json_t *manifest = json_load_file(mpath, 0, NULL), *actual = json_object(), *f, *dbs = json_array();
	json_t *e = json_pack("{s:s}", "name", name);
	const char *problem = NULL;
	size_t i;

	if (!manifest) {
		problem = "no readable manifest.json";
		goto out;
	}
	json_array_foreach(json_object_get(manifest, "files"), i, f) {
		const char *fname = json_string_value(json_object_get(f, "name"));
		_cleanup_free_ char *path = NULL;
		char hex[BACKUP_SHA256_HEX];
		struct stat st;
		uint64_t size;

		if (!fname || strchr(fname, '/') || fname[0] == '.')
			continue; /* backup_manifest_check() reports it */
		if (json_is_string(json_object_get(f, "database")))
			json_array_append(dbs, json_object_get(f, "database"));
		path = xasprintf("%s/%s", dir, fname);
		if (rehash) {
			if (hash_file(path, hex, &size) == 0)
				json_object_set_new(actual, fname, json_pack("{s:I, s:s}", "size",
						    (json_int_t)size, "sha256", hex));
		} else if (stat(path, &st) == 0) {
			json_object_set_new(actual, fname, json_pack("{s:I}", "size", (json_int_t)st.st_size));
		}
	}
	backup_manifest_check(manifest, actual, &problem);
	json_object_set(e, "method", json_object_get(manifest, "method"));
	json_object_set(e, "started_at", json_object_get(manifest, "started_at"));
	json_object_set(e, "finished_at", json_object_get(manifest, "finished_at"));
	json_object_set(e, "size_bytes", json_object_get(manifest, "size_bytes"));
	json_object_set(e, "server_version", json_object_get(manifest, "server_version"));
	json_object_set(e, "lsn", json_object_get(manifest, "lsn"));
	json_object_set(e, "from_replica", json_object_get(manifest, "in_recovery"));
	backup_manifest_as_of(manifest, e);
out:
	json_object_set_new(e, "databases", dbs);
	json_object_set_new(e, "good", json_boolean(!problem));
	json_object_set_new(e, "problem", problem ? json_string(problem) : json_null());
	json_object_set_new(e, "verified", json_string(rehash ? "sha256" : "size"));
	json_object_set_new(e, "verified_at", json_integer((json_int_t)time(NULL)));
	json_decref(actual);
	json_decref(manifest);
	return e;
}

json_t *catalog_scan(const char *nodedir, bool rehash)
{
	json_t *out = json_array();
	DIR *d = opendir(nodedir);
	struct dirent *ent;
	char **names = NULL;
	size_t n = 0;

	if (!d)
		return out;
	while ((ent = readdir(d))) {
		if (!backup_name_valid(ent->d_name))
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(ent->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name); /* names sort by time */
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(out, check_one(nodedir, names[i], rehash));
		free(names[i]);
	}
	free(names);
	return out;
}

void catalog_carry_verdicts(json_t *backups, const json_t *old)
{
	json_t *e;
	const json_t *o;
	size_t i, k;

	json_array_foreach(backups, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));

		if (!json_is_true(json_object_get(e, "good")) ||
		    strcmp(json_string_value(json_object_get(e, "verified")), "size") != 0)
			continue;
		json_array_foreach(json_object_get(old, "backups"), k, o) {
			const char *v = json_string_value(json_object_get(o, "verified"));

			if (!json_equal(json_object_get(o, "name"), json_object_get(e, "name")) || !v ||
			    strcmp(v, "sha256") != 0 || !name)
				continue;
			/* the last checksum verdict stands until the next verify run */
			json_object_set(e, "good", json_object_get(o, "good"));
			json_object_set(e, "problem", json_object_get(o, "problem"));
			json_object_set(e, "verified", json_object_get(o, "verified"));
			json_object_set(e, "verified_at", json_object_get(o, "verified_at"));
		}
	}
}

json_t *backup_catalog(const struct conf *conf)
{
	_cleanup_free_ char *dir = backup_node_dir(conf);

	return catalog_scan(dir, true);
}

json_t *catalog_newest_good(const json_t *backups)
{
	for (size_t i = json_array_size(backups); i-- > 0;) {
		json_t *e = json_array_get(backups, i);

		if (json_is_true(json_object_get(e, "good")))
			return e;
	}
	return NULL;
}

bool catalog_run_is_newer(const json_t *cat, uint64_t cat_seen_ms, const json_t *own, uint64_t own_seen_ms)
{
	json_int_t cat_t, own_t;

	if (!cat)
		return false;
	if (!own)
		return true;
	cat_t = json_integer_value(json_object_get(cat, "finished_at"));
	own_t = json_integer_value(json_object_get(own, "finished_at"));
	return cat_t > own_t || (cat_t == own_t && cat_seen_ms > own_seen_ms);
}
