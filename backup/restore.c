// SPDX-License-Identifier: MIT
/*
 * `supervisor restore`: a pg_dump backup back into a fresh cluster. The
 * backup is checked against its manifest first (a corrupted one is refused
 * before anything is written); then the globals (roles), then every
 * database with --exit-on-error. Databases other than "postgres" are
 * created by pg_restore itself, so a target that already has one stops
 * the restore instead of merging into it.
 */
#include "backup/backup_internal.h"
#include "lib/mem.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const json_t *pick(const json_t *backups, const char *name)
{
	const json_t *e;
	size_t i;

	if (!name)
		return catalog_newest_good(backups);
	json_array_foreach(backups, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
			return e;
	return NULL;
}

static bool drop_privileges(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return true;
	pw = getpwnam(user);
	if (!pw) {
		fprintf(stderr, "restore: no such OS user %s (postgres.user)\n", user);
		return false;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "restore: cannot become %s: %s\n", user, strerror(errno));
		return false;
	}
	setenv("HOME", pw->pw_dir, 1);
	return true;
}

int backup_restore(const struct conf *conf, const char *name, const char *conninfo)
{
	const struct conf_postgres *pg = &conf_self(conf)->settings.postgres;
	_cleanup_free_ char *nodedir = backup_node_dir(conf);
	_cleanup_free_ char *target = xasprintf("%s dbname=postgres", conninfo);
	_cleanup_free_ char *psql = xasprintf("%s/psql", pg->bin_dir);
	_cleanup_free_ char *pg_restore = xasprintf("%s/pg_restore", pg->bin_dir);
	_cleanup_free_ char *dir = NULL, *globals = NULL;
	json_t *backups, *manifest = NULL, *f;
	const json_t *b;
	const char *method;
	int rc = 1, st;
	size_t i;

	if (!drop_privileges(pg->user))
		return 1;
	backups = catalog_scan(nodedir, true);
	b = pick(backups, name);
	if (!b) {
		fprintf(stderr, "restore: %s in %s\n", name ? "no such backup" : "no good backup", nodedir);
		goto out;
	}
	if (!json_is_true(json_object_get(b, "good"))) {
		fprintf(stderr, "restore: %s is not good: %s\n", json_string_value(json_object_get(b, "name")),
			json_string_value(json_object_get(b, "problem")));
		goto out;
	}
	method = json_string_value(json_object_get(b, "method"));
	if (!method || strcmp(method, "pg_dump") != 0) {
		fprintf(stderr, "restore: %s is a pgBackRest backup: restore it with pgbackrest restore "
			"(README, \"Restoring a backup\")\n", json_string_value(json_object_get(b, "name")));
		goto out;
	}
	dir = xasprintf("%s/%s", nodedir, json_string_value(json_object_get(b, "name")));
	globals = xasprintf("%s/globals.sql", dir);
	{
		_cleanup_free_ char *mpath = xasprintf("%s/%s", dir, BACKUP_MANIFEST);

		manifest = json_load_file(mpath, 0, NULL);
	}
	fprintf(stderr, "restore: %s (checksums verified), into \"%s\"\n",
		json_string_value(json_object_get(b, "name")), conninfo);
	/* Roles first; "role postgres already exists" and the like are expected on a fresh cluster. */
	{
		const char *argv[] = { psql, "-X", "-q", "-d", target, "-f", globals, NULL };

		st = run_tool(argv, NULL, NULL, NULL);
		if (st != 0) {
			fprintf(stderr, "restore: applying the globals failed: %s\n", tool_status_text(st));
			goto out;
		}
	}
	json_array_foreach(json_object_get(manifest, "files"), i, f) {
		const char *db = json_string_value(json_object_get(f, "database"));
		_cleanup_free_ char *path = NULL;
		bool existing;

		if (!db)
			continue;
		path = xasprintf("%s/%s", dir, json_string_value(json_object_get(f, "name")));
		existing = strcmp(db, "postgres") == 0; /* every cluster has it */
		const char *argv[] = { pg_restore, "--exit-on-error", "--no-password", existing ? "-d" : "--create",
				       existing ? target : "-d", existing ? path : target, existing ? NULL : path,
				       NULL };

		fprintf(stderr, "restore: database %s\n", db);
		st = run_tool(argv, NULL, NULL, NULL);
		if (st != 0) {
			fprintf(stderr, "restore: database %s failed: %s (an existing database of that name "
				"is never merged into)\n", db, tool_status_text(st));
			goto out;
		}
	}
	fprintf(stderr, "restore: done: %zu database(s) from %s\n",
		json_array_size(json_object_get(b, "databases")), json_string_value(json_object_get(b, "name")));
	rc = 0;
out:
	json_decref(manifest);
	json_decref(backups);
	return rc;
}
