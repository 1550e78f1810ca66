// SPDX-License-Identifier: MIT
/*
 * One backup run (`supervisor backup run|verify`), a child of the daemon
 * or started by hand. The order is what makes it safe:
 *
 *   lock (flock, non-blocking: a second run says "already running")
 *   sweep .inprogress/ (the lock proves nothing else writes there)
 *   precheck free space from the last good backup's size
 *   pg_dumpall --globals-only, pg_dump -Fc per database, into .inprogress/NAME/
 *   verify each dump by a full read (pg_restore -f /dev/null; -l passes truncated files)
 *   hash and fsync every file, write manifest.json inside, fsync
 *   rename .inprogress/NAME -> NAME (the one commit point), fsync the parent
 *   re-check every backup, then retention over the good ones only
 *   catalog.json (what the daemon reports)
 *
 * Any failure removes this run's partial and leaves every older backup as
 * it was; retention never runs after a failure.
 */
#include "backup/backup_internal.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"
#include "lib/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Never fill the disk to the last block: WAL and the catalog need room. */
#define RESERVE_BYTES (8ull << 20)

struct run_ctx {
	const struct conf *conf;
	const struct conf_node *me;
	const struct conf_backup *bk;
	const struct conf_postgres *pg;
	const struct backup_run_opts *opts;
	char *nodedir;
	char *inprogress;
	char *work;             /* .inprogress/NAME while it exists */
	char name[32];
	int64_t started_at;
	char *error;
	char *note;
	json_t *facts;          /* server facts for the manifest */
	json_t *position;       /* where the data stands (backup_position()) */
	json_t *dbs;            /* names of the databases to dump */
	const char *method;
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int signo)
{
	stop_signal = signo;
}

static void fail(struct run_ctx *r, const char *fmt, ...) _printf_(2, 3);
static void fail(struct run_ctx *r, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		fatalx("backup", "out of memory");
	va_end(ap);
	if (stop_signal) {
		char *m = xasprintf("stopped by %s (timeout or shutdown): %s", signal_name(stop_signal), msg);

		free(msg);
		msg = m;
	}
	if (!r->error)
		r->error = msg;
	else
		free(msg);
}

static int mkdir_owned(const char *path, mode_t mode, const struct passwd *pw)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (pw && chown(path, pw->pw_uid, pw->pw_gid) < 0)
		return -errno;
	return 0;
}

/* prepare_and_lock(): another run holds the lock (expected: said on stderr, no error). */
#define BACKUP_E_LOCKED 1

/*
 * As root: create DIR, DIR/NODE, the lock and pgBackRest's repo, owned by
 * the postgres user; take the lock; then drop to that user for good.
 * @lock: receives the lock fd (kept open, and inherited by the tools on
 * purpose: the lock holds while anything of this run still writes).
 * Return: 0; BACKUP_E_LOCKED; or -errno, with the reason in r->error.
 */
static int prepare_and_lock(struct run_ctx *r, int *lock)
{
	const struct passwd *pw = NULL;
	_cleanup_free_ char *path = xasprintf("%s/%s", r->bk->dir, BACKUP_LOCK);
	_cleanup_free_ char *repo = xasprintf("%s/pgbackrest", r->bk->dir);
	_cleanup_close_ int fd = -1;
	int e;

	if (geteuid() == 0) {
		pw = getpwnam(r->pg->user);
		if (!pw) {
			fail(r, "no such OS user %s (postgres.user)", r->pg->user);
			return -ENOENT;
		}
	}
	if (mkdir(r->bk->dir, 0755) < 0 && errno != EEXIST) {
		e = -errno;
		fail(r, "cannot create %s: %s", r->bk->dir, strerror(-e));
		return e;
	}
	if ((e = mkdir_owned(r->nodedir, 0700, pw)) < 0 ||
	    (r->bk->method == CONF_BACKUP_PGBACKREST && (e = mkdir_owned(repo, 0700, pw)) < 0)) {
		fail(r, "cannot prepare %s: %s", r->nodedir, strerror(-e));
		return e;
	}
	fd = open(path, O_RDWR | O_CREAT, 0600); /* no O_CLOEXEC: see above */
	if (fd < 0 || (pw && fchown(fd, pw->pw_uid, pw->pw_gid) < 0)) {
		e = -errno;
		fail(r, "cannot open the lock %s: %s", path, strerror(-e));
		return e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = -errno;
		if (e == -EWOULDBLOCK) {
			fprintf(stderr, "backup: already running: another run holds %s\n", path);
			return BACKUP_E_LOCKED;
		}
		fail(r, "cannot lock %s: %s", path, strerror(-e));
		return e;
	}
	if (pw && (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)) {
		e = -errno;
		fail(r, "cannot become %s: %s", r->pg->user, strerror(-e));
		return e;
	}
	if (pw)
		setenv("HOME", pw->pw_dir, 1);
	*lock = fd;
	fd = -1; /* the caller's now */
	return 0;
}

static void sweep(struct run_ctx *r)
{
	DIR *d = opendir(r->inprogress);
	struct dirent *e;
	bool stale = false;

	while (d && (e = readdir(d)))
		stale |= strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d)
		closedir(d);
	if (stale) {
		/* the lock proves no run is writing there: whatever is left is a dead run's */
		log_info("backup", "sweeping what an earlier run left path=%s", r->inprogress);
		if (rm_tree(r->inprogress) < 0)
			log_warn("backup", "cannot sweep path=%s", r->inprogress);
	}
	if (mkdir(r->inprogress, 0700) < 0 && errno != EEXIST)
		log_warn("backup", "cannot create path=%s", r->inprogress);
	fsync_path(r->nodedir);
}

static void sync_fs(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

/* ---- server facts ---------------------------------------------------------- */

static char *conninfo(const struct run_ctx *r)
{
	char sockdir[256];

	return xasprintf("host=%s port=%u user=%s dbname=postgres connect_timeout=10 "
			 "application_name=supervisor-backup",
			 conf_pg_socket_dir(r->conf, sockdir, sizeof(sockdir)), r->pg->port, r->pg->user);
}

/* The server's identity and its databases. Return: BACKUP_EXIT_OK or BACKUP_EXIT_FAILED. */
static int server_facts(struct run_ctx *r)
{
	static const char facts_sql[] =
		"SELECT current_setting('server_version'), "
		"(SELECT system_identifier FROM pg_control_system())::text, "
		"pg_is_in_recovery(), "
		"(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text, "
		"(SELECT timeline_id FROM pg_control_checkpoint())::text";
	static const char dbs_sql[] =
		"SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1";
	_cleanup_free_ char *ci = conninfo(r);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = NULL;
	int code = BACKUP_EXIT_FAILED;

	if (PQstatus(c) != CONNECTION_OK) {
		fail(r, "cannot connect to Postgres: %s", str_trim_right(PQerrorMessage(c)));
		goto out;
	}
	res = PQexec(c, facts_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fail(r, "cannot read the server's identity: %s", str_trim_right(PQerrorMessage(c)));
		goto out;
	}
	r->facts = json_pack("{s:s, s:s, s:b, s:s?, s:I}", "server_version", PQgetvalue(res, 0, 0),
			     "system_identifier", PQgetvalue(res, 0, 1),
			     "in_recovery", PQgetvalue(res, 0, 2)[0] == 't',
			     "lsn", PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
			     "timeline", (json_int_t)strtoll(PQgetvalue(res, 0, 4), NULL, 10));
	PQclear(res);
	res = PQexec(c, dbs_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fail(r, "cannot list the databases: %s", str_trim_right(PQerrorMessage(c)));
		goto out;
	}
	r->dbs = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(r->dbs, json_string(PQgetvalue(res, i, 0)));
	code = BACKUP_EXIT_OK;
out:
	PQclear(res);
	PQfinish(c);
	return code;
}

/*
 * Where the data stands, measured once before the first dump: each
 * pg_dump's snapshot is taken when it starts, at a replay position that
 * can only be later, so this is the backup's as-of time or earlier.
 */
static const char position_sql[] =
	"SELECT json_build_object("
	" 'now', extract(epoch FROM clock_timestamp()),"
	" 'in_recovery', pg_is_in_recovery(),"
	" 'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,"
	" 'backlog_bytes', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()),"
	" 'last_replay_at', extract(epoch FROM pg_last_xact_replay_timestamp()),"
	" 'receiver', (SELECT row_to_json(w) FROM (SELECT status,"
	"   pg_wal_lsn_diff(latest_end_lsn, pg_last_wal_replay_lsn()) AS upstream_lag_bytes,"
	"   extract(epoch FROM last_msg_send_time) AS last_msg_sent_at,"
	"   extract(epoch FROM clock_timestamp() - last_msg_receipt_time) AS since_last_msg_s"
	"   FROM pg_stat_wal_receiver) w))::text";

/* A replica that cannot date its data yet (receiver reconnecting after a restart) gets this long. */
#define UNDATED_WAIT_S 30
/*
 * A streaming replica a few records behind its upstream (a checkpoint or a
 * standby snapshot of an idle primary, not replayed yet) dates its data by
 * its last replayed commit, which may be older than max_replica_lag though
 * nothing was committed since: it gets this long to catch up before it is
 * judged behind. A paused replay cannot catch up and is judged at once.
 */
#define BEHIND_SETTLE_S 5

static bool catching_up(const json_t *pos)
{
	const json_t *lag = json_object_get(pos, "replica_lag");
	const char *rx = json_string_value(json_object_get(lag, "receiver"));

	return rx && strcmp(rx, "streaming") == 0 && !json_is_true(json_object_get(lag, "replay_paused"));
}

/* Return: BACKUP_EXIT_OK, BACKUP_EXIT_BEHIND (max_replica_lag) or BACKUP_EXIT_FAILED. */
static int measure_position(struct run_ctx *r)
{
	_cleanup_free_ char *ci = conninfo(r);
	PGconn *c = PQconnectdb(ci);
	char why[512], at[32];
	const char *src;
	const json_t *as_of;
	int verdict = 0, code = BACKUP_EXIT_FAILED;

	if (PQstatus(c) != CONNECTION_OK) {
		fail(r, "cannot connect to Postgres: %s", str_trim_right(PQerrorMessage(c)));
		goto out;
	}
	for (int waited = 0, settled = 0;; waited++) {
		PGresult *res = PQexec(c, position_sql);
		json_t *raw = NULL;

		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			raw = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		PQclear(res);
		if (!raw) {
			fail(r, "cannot read where the data stands: %s", str_trim_right(PQerrorMessage(c)));
			goto out;
		}
		json_decref(r->position);
		r->position = backup_position(raw);
		json_decref(raw);
		verdict = backup_lag_verdict(r->position, r->bk->max_replica_lag_s, why, sizeof(why));
		if (stop_signal)
			break;
		if (verdict == BACKUP_E_BEHIND && catching_up(r->position) && settled < BEHIND_SETTLE_S) {
			if (settled++ == 0)
				log_info("backup", "replica behind; giving it time to catch up wait_s=%d", BEHIND_SETTLE_S);
			sleep(1);
			continue;
		}
		if (verdict != BACKUP_E_UNDATED || waited >= UNDATED_WAIT_S)
			break;
		if (waited == 0)
			log_info("backup", "waiting for the replica to date its data wait_s=%d", UNDATED_WAIT_S);
		sleep(1);
	}
	json_object_update(r->facts, r->position);
	json_object_del(r->facts, "measured_at");
	src = json_string_value(json_object_get(r->position, "as_of_source"));
	as_of = json_object_get(r->position, "as_of");
	snprintf(at, sizeof(at), json_is_integer(as_of) ? "%lld" : "unknown", (long long)json_integer_value(as_of));
	log_info("backup", "data position as_of=%s source=%s verdict=\"%s\"", at, src ? src : "unknown", why);
	if (verdict == 0) {
		code = BACKUP_EXIT_OK;
	} else if (r->opts->allow_lag) {
		char *note = xasprintf("%s%staken with --allow-lag: %s", r->note ? r->note : "",
				       r->note ? "; " : "", why);

		log_warnx("backup", "replica behind, going on anyway (--allow-lag); the backup's age is its data's");
		free(r->note);
		r->note = note;
		code = BACKUP_EXIT_OK;
	} else {
		fail(r, "%s", why);
		code = stop_signal ? BACKUP_EXIT_FAILED : BACKUP_EXIT_BEHIND;
	}
out:
	PQfinish(c);
	return code;
}

/* The tools find the server from the environment; no password: peer auth on the socket. */
static void set_pg_env(const struct run_ctx *r)
{
	char sockdir[256], port[8];

	snprintf(port, sizeof(port), "%u", r->pg->port);
	setenv("PGHOST", conf_pg_socket_dir(r->conf, sockdir, sizeof(sockdir)), 1);
	setenv("PGPORT", port, 1);
	setenv("PGUSER", r->pg->user, 1);
	setenv("PGCONNECT_TIMEOUT", "10", 1);
	setenv("PGAPPNAME", "supervisor-backup", 1);
	unsetenv("PGPASSWORD");
}

/* ---- pg_dump ---------------------------------------------------------------- */

/* Return: BACKUP_EXIT_OK, or BACKUP_EXIT_NO_SPACE (also when the free space cannot be read). */
static int precheck(struct run_ctx *r, const json_t *backups)
{
	const json_t *last = catalog_newest_good(backups);
	uint64_t est = last ? (uint64_t)json_integer_value(json_object_get(last, "size_bytes")) : 0;
	uint64_t need = est + est / 5 + RESERVE_BYTES, avail;
	struct statvfs vfs;

	if (statvfs(r->nodedir, &vfs) < 0) {
		fail(r, "cannot stat the file system of %s: %s", r->nodedir, strerror(errno));
		return BACKUP_EXIT_NO_SPACE;
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail >= need)
		return BACKUP_EXIT_OK;
	if (r->opts->no_precheck) {
		log_warnx("backup", "too little free space, going on anyway (--no-precheck) free=%llu need=%llu",
			  (unsigned long long)avail, (unsigned long long)need);
		return BACKUP_EXIT_OK;
	}
	fail(r, "not enough free space in %s: %llu MiB free, need %llu MiB (the last backup took %llu MiB, "
		"plus 20%% and %llu MiB reserve); nothing was started",
	     r->nodedir, (unsigned long long)(avail >> 20), (unsigned long long)(need >> 20),
	     (unsigned long long)(est >> 20), (unsigned long long)(RESERVE_BYTES >> 20));
	return BACKUP_EXIT_NO_SPACE;
}

/*
 * Run one tool writing FILE in the work directory; record it in @files.
 * Return: BACKUP_EXIT_OK or BACKUP_EXIT_FAILED (so do pg_dump_all() and commit()).
 */
static int dump_step(struct run_ctx *r, const char *const *argv, const char *file, const char *db,
		     json_t *files)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", r->work, file);
	_cleanup_free_ char *last = NULL;
	json_t *f = json_pack("{s:s}", "name", file);
	uint64_t t0 = now_ms();
	int st = run_tool(argv, path, NULL, &last);

	json_object_set_new(f, "dump_ms", json_integer((json_int_t)(now_ms() - t0)));
	json_object_set_new(f, "dump_exit", json_integer(WIFEXITED(st) ? WEXITSTATUS(st) : -1));
	if (db)
		json_object_set_new(f, "database", json_string(db));
	json_array_append_new(files, f);
	if (st != 0) {
		fail(r, "%s %s%s: %s%s%s", argv[0], db ? "of database " : "--globals-only", db ? db : "",
		     tool_status_text(st), last ? ": " : "", last ? last : "");
		return BACKUP_EXIT_FAILED;
	}
	if (db) {
		/*
		 * A full read: pg_restore -l reads only the TOC and passes
		 * truncated dumps. (Reading the file while pg_dump writes it was
		 * measured slower: the two fight for the CPU the dump needs.)
		 */
		_cleanup_free_ char *restore = xasprintf("%s/pg_restore", r->pg->bin_dir);
		const char *vargv[] = { restore, "-f", "/dev/null", path, NULL };

		free(last);
		last = NULL;
		t0 = now_ms();
		st = run_tool(vargv, NULL, NULL, &last);
		json_object_set_new(f, "verify_ms", json_integer((json_int_t)(now_ms() - t0)));
		json_object_set_new(f, "verify_exit", json_integer(WIFEXITED(st) ? WEXITSTATUS(st) : -1));
		if (st != 0) {
			fail(r, "the dump of database %s does not read back (pg_restore -f /dev/null: %s%s%s)",
			     db, tool_status_text(st), last ? ": " : "", last ? last : "");
			return BACKUP_EXIT_FAILED;
		}
	}
	return BACKUP_EXIT_OK;
}

static int pg_dump_all(struct run_ctx *r, json_t *files)
{
	_cleanup_free_ char *dumpall = xasprintf("%s/pg_dumpall", r->pg->bin_dir);
	_cleanup_free_ char *dump = xasprintf("%s/pg_dump", r->pg->bin_dir);
	const char *gargv[] = { dumpall, "--globals-only", "--no-password", NULL };
	json_t *db;
	size_t i;
	int code;

	if ((code = dump_step(r, gargv, "globals.sql", NULL, files)) != BACKUP_EXIT_OK)
		return code;
	json_array_foreach(r->dbs, i, db) {
		_cleanup_free_ char *file = backup_db_file(json_string_value(db));
		const char *argv[] = { dump, "-Fc", "--no-password", "-d", json_string_value(db), NULL };

		if (stop_signal)
			return BACKUP_EXIT_FAILED;
		if ((code = dump_step(r, argv, file, json_string_value(db), files)) != BACKUP_EXIT_OK)
			return code;
	}
	return BACKUP_EXIT_OK;
}

/* Hash and fsync every file, write the manifest in, commit by rename. */
static int commit(struct run_ctx *r, json_t *files)
{
	_cleanup_free_ char *dst = xasprintf("%s/%s", r->nodedir, r->name);
	json_t *f, *manifest;
	uint64_t total = 0;
	size_t i;
	int e;

	uint64_t t0 = now_ms();

	json_array_foreach(files, i, f) {
		_cleanup_free_ char *path = xasprintf("%s/%s", r->work, json_string_value(json_object_get(f, "name")));
		char hex[BACKUP_SHA256_HEX];
		uint64_t size;

		if ((e = hash_file(path, hex, &size)) < 0 || (e = fsync_path(path)) < 0) {
			fail(r, "cannot read back %s: %s", path, strerror(-e));
			return BACKUP_EXIT_FAILED;
		}
		json_object_set_new(f, "size", json_integer((json_int_t)size));
		json_object_set_new(f, "sha256", json_string(hex));
		total += size;
	}
	manifest = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:O, s:s?}",
			     "format", 1, "node", r->me->name, "name", r->name, "method", "pg_dump",
			     "started_at", (json_int_t)r->started_at, "finished_at", (json_int_t)time(NULL),
			     "size_bytes", (json_int_t)total, "files", files, "note", r->note);
	json_object_update(manifest, r->facts);
	json_object_set_new(manifest, "supervisor_version", json_string(SUPERVISOR_VERSION));
	json_object_set_new(manifest, "hash_ms", json_integer((json_int_t)(now_ms() - t0)));
	e = write_json_atomic(r->work, BACKUP_MANIFEST, manifest);
	json_decref(manifest);
	if (e < 0) {
		fail(r, "cannot write the manifest: %s", strerror(-e));
		return BACKUP_EXIT_FAILED;
	}
	if (rename(r->work, dst) < 0) {
		fail(r, "cannot rename %s to %s: %s", r->work, dst, strerror(errno));
		return BACKUP_EXIT_FAILED;
	}
	free(r->work);
	r->work = NULL;
	fsync_path(r->nodedir);
	fsync_path(r->inprogress);
	log_info("backup", "backup taken name=%s size=%llu databases=%zu", r->name,
		 (unsigned long long)total, json_array_size(r->dbs));
	return BACKUP_EXIT_OK;
}

/* Keep what the policy keeps among the good ones; bad ones are left for the operator. */
static void retention(struct run_ctx *r, json_t *backups)
{
	size_t n = json_array_size(backups), ng = 0, k = 0;
	int64_t *started = xcalloc(n + 1, sizeof(*started));
	bool *keep = xcalloc(n + 1, sizeof(*keep));
	size_t *idx = xcalloc(n + 1, sizeof(*idx));
	struct backup_keep policy = { r->bk->keep_daily, r->bk->keep_weekly, r->bk->keep_monthly,
				      BACKUP_KEEP_MIN };
	json_t *e;
	size_t i;

	json_array_foreach(backups, i, e) {
		if (!json_is_true(json_object_get(e, "good")))
			continue;
		started[ng] = json_integer_value(json_object_get(e, "started_at"));
		idx[ng++] = i;
	}
	backup_retention(started, ng, &policy, keep);
	for (i = 0; i < ng; i++) {
		const char *name;
		_cleanup_free_ char *path = NULL;

		if (keep[i])
			continue;
		name = json_string_value(json_object_get(json_array_get(backups, idx[i]), "name"));
		path = xasprintf("%s/%s", r->nodedir, name);
		log_info("backup", "retention removes name=%s", name);
		if (rm_tree(path) < 0)
			log_warn("backup", "cannot remove path=%s", path);
		json_object_set_new(json_array_get(backups, idx[i]), "removed", json_true());
	}
	fsync_path(r->nodedir);
	/* drop removed entries from the list */
	for (i = 0; i < json_array_size(backups); i++) {
		if (json_is_true(json_object_get(json_array_get(backups, i), "removed")))
			continue;
		json_array_set(backups, k++, json_array_get(backups, i));
	}
	while (json_array_size(backups) > k)
		json_array_remove(backups, k);
	free(started);
	free(keep);
	free(idx);
}

/*
 * A backup run reads sizes only (re-reading every kept backup would cost
 * more than the dump); checksums are re-read by the verify run at start
 * and daily, and their verdicts carry over.
 */
static json_t *scan(const struct run_ctx *r)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", r->nodedir, BACKUP_CATALOG);
	json_t *old = json_load_file(path, 0, NULL), *backups = catalog_scan(r->nodedir, false);

	catalog_carry_verdicts(backups, old);
	json_decref(old);
	return backups;
}

/* ---- the run ------------------------------------------------------------------ */

/* pgBackRest's backups join the list, judged by the repository's verify. */
static void add_pgbackrest_backups(json_t *backups, const json_t *pgbr)
{
	const json_t *verify = json_object_get(pgbr, "verify"), *b;
	const char *problem = json_string_value(json_object_get(verify, "problem"));
	bool verified = json_is_true(json_object_get(verify, "ok"));
	size_t i;

	json_array_foreach(json_object_get(json_object_get(pgbr, "info"), "backups"), i, b) {
		bool err = json_is_true(json_object_get(b, "error"));
		const char *why = err ? "pgBackRest saw page checksum errors in this backup"
				      : !verified ? (problem ? problem : "the repository was not verified") : NULL;

		/* A physical backup is consistent as of its stop point (as_of: its stop time). */
		json_array_append_new(backups, json_pack("{s:O, s:s, s:O, s:O, s:O, s:O, s:b, s:s?, s:s, s:O?, s:s}",
			"name", json_object_get(b, "label"), "method", "pgbackrest",
			"type", json_object_get(b, "type"), "started_at", json_object_get(b, "started_at"),
			"finished_at", json_object_get(b, "finished_at"), "size_bytes", json_object_get(b, "size_bytes"),
			"good", !why, "problem", why, "verified", "pgbackrest verify",
			"as_of", json_object_get(b, "finished_at"), "as_of_source", "pgbackrest_stop"));
	}
}

/*
 * catalog.json: the backups, the last backup run and the last verify run
 * (a verify run keeps the previous backup run's result, and vice versa).
 */
static void write_catalog(struct run_ctx *r, json_t *backups, json_t *pgbackrest, int code)
{
	_cleanup_free_ char *old_path = xasprintf("%s/%s", r->nodedir, BACKUP_CATALOG);
	json_t *old = json_load_file(old_path, 0, NULL);
	bool run = r->opts->mode == BACKUP_MODE_RUN;
	json_t *this = json_pack("{s:s?, s:s, s:s?, s:I, s:I, s:b, s:i, s:s?, s:s?, s:s?}",
				 "id", r->opts->run_id, "kind", run ? "run" : "verify",
				 "method", r->method, "started_at", (json_int_t)r->started_at,
				 "finished_at", (json_int_t)time(NULL), "ok", code == BACKUP_EXIT_OK,
				 "exit", code, "error", r->error,
				 "backup", code == BACKUP_EXIT_OK && run && r->bk->method != CONF_BACKUP_PGBACKREST ?
				 r->name : NULL, "note", r->note);
	json_t *doc = json_pack("{s:i, s:s, s:I, s:O}", "format", 1, "node", r->me->name,
				"updated_at", (json_int_t)time(NULL), "backups", backups);
	int e;

	if (run && r->position) { /* what the run found, taken or refused */
		json_object_set(this, "as_of", json_object_get(r->position, "as_of"));
		json_object_set(this, "replica_lag", json_object_get(r->position, "replica_lag"));
	}
	if (pgbackrest) {
		json_object_set(doc, "pgbackrest", pgbackrest);
		add_pgbackrest_backups(json_object_get(doc, "backups"), pgbackrest);
	}
	json_object_set_new(doc, run ? "last_run" : "last_verify", this);
	if (json_object_get(old, run ? "last_verify" : "last_run"))
		json_object_set(doc, run ? "last_verify" : "last_run", json_object_get(old, run ? "last_verify" : "last_run"));
	e = write_json_atomic(r->nodedir, BACKUP_CATALOG, doc);
	if (e == -ENOSPC) { /* once more, after the file system freed what was deleted */
		sync_fs(r->nodedir);
		e = write_json_atomic(r->nodedir, BACKUP_CATALOG, doc);
	}
	if (e < 0)
		log_warnx("backup", "cannot write the catalog err=\"%s\"", strerror(-e));
	json_decref(doc);
	json_decref(old);
}

/*
 * Every step of a run returns BACKUP_EXIT_OK (0) or the exit code the run
 * ends with, its reason in r->error (fail()).
 */
static int take_backup(struct run_ctx *r, json_t **backups, json_t **pgbr)
{
	json_t *files;
	int code;

	if ((code = server_facts(r)) != BACKUP_EXIT_OK)
		return code;
	r->method = conf_backup_method_name(r->bk->method);
	if (r->bk->method == CONF_BACKUP_PGBACKREST) {
		if (!json_is_true(json_object_get(r->facts, "in_recovery"))) {
			char *err = NULL;

			if (!pgbackrest_run(r->conf, pgbr, &err)) {
				fail(r, "%s", err ? err : "pgbackrest failed");
				free(err);
				return BACKUP_EXIT_FAILED;
			}
			return BACKUP_EXIT_OK;
		}
		r->note = xstrdup("pgBackRest backs up the primary only; this replica took a pg_dump instead");
		r->method = "pg_dump";
		log_info("backup", "replica: pg_dump instead of pgbackrest");
	}
	if ((code = measure_position(r)) != BACKUP_EXIT_OK || (code = precheck(r, *backups)) != BACKUP_EXIT_OK)
		return code;
	r->work = xasprintf("%s/%s", r->inprogress, r->name);
	if (mkdir(r->work, 0700) < 0) {
		fail(r, "cannot create %s: %s", r->work, strerror(errno));
		return BACKUP_EXIT_FAILED;
	}
	log_info("backup", "backup started name=%s databases=%zu from=%s", r->name, json_array_size(r->dbs),
		 json_is_true(json_object_get(r->facts, "in_recovery")) ? "replica" : "primary");
	files = json_array();
	if ((code = pg_dump_all(r, files)) == BACKUP_EXIT_OK)
		code = commit(r, files);
	json_decref(files);
	if (code != BACKUP_EXIT_OK)
		return code;
	/* the new backup was just hashed; older ones keep their last verdicts */
	json_decref(*backups);
	*backups = scan(r);
	retention(r, *backups);
	return BACKUP_EXIT_OK;
}

static void pick_name(struct run_ctx *r)
{
	char base[24];
	struct stat st;

	backup_name(r->started_at, base, sizeof(base));
	snprintf(r->name, sizeof(r->name), "%s", base);
	for (int i = 2; i < 100; i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", r->nodedir, r->name);

		if (stat(p, &st) < 0)
			break;
		snprintf(r->name, sizeof(r->name), "%s-%d", base, i);
	}
}

int backup_run(const struct conf *conf, const struct backup_run_opts *opts)
{
	struct run_ctx r = {
		.conf = conf, .me = conf_self(conf), .opts = opts, .started_at = time(NULL),
	};
	struct sigaction sa = { .sa_handler = on_stop };
	json_t *backups = NULL, *pgbr = NULL;
	int lock = -1, code, e;

	if (r.me->kind == CONF_NODE_HUB) {
		fprintf(stderr, "backup: the hub runs no database, so it has no backups\n");
		return BACKUP_EXIT_FAILED;
	}
	r.bk = &r.me->settings.backup;
	r.pg = &r.me->settings.postgres;
	r.method = conf_backup_method_name(r.bk->method);
	r.nodedir = backup_node_dir(conf);
	r.inprogress = xasprintf("%s/%s", r.nodedir, BACKUP_INPROGRESS);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	umask(077);
	e = prepare_and_lock(&r, &lock);
	if (e != 0) {
		char q[1024];

		if (r.error)
			log_errorx("backup", "cannot run err=%s", log_quote(q, sizeof(q), r.error));
		code = e == BACKUP_E_LOCKED ? BACKUP_EXIT_BUSY : BACKUP_EXIT_FAILED;
		goto out_nolock;
	}
	set_pg_env(&r);
	sweep(&r);
	pick_name(&r);
	backups = opts->mode == BACKUP_MODE_VERIFY ? catalog_scan(r.nodedir, true) : scan(&r);
	if (opts->mode == BACKUP_MODE_VERIFY) {
		if (r.bk->method == CONF_BACKUP_PGBACKREST)
			pgbr = pgbackrest_check(conf);
		code = BACKUP_EXIT_OK;
	} else {
		code = take_backup(&r, &backups, &pgbr);
	}
	if (r.work) { /* a failed run: its partial goes, nothing else is touched */
		rm_tree(r.work);
		fsync_path(r.inprogress);
		/*
		 * ext4 reuses freed blocks only once the journal commits: after
		 * an ENOSPC, the catalog could not be written without this.
		 */
		sync_fs(r.nodedir);
	}
	if (code != BACKUP_EXIT_OK && !r.error)
		fail(&r, "failed");
	if (r.error) {
		char q[1024];

		log_errorx("backup", "run failed name=%s err=%s", r.name, log_quote(q, sizeof(q), r.error));
	}
	write_catalog(&r, backups, pgbr, code);
	close(lock);
out_nolock:
	json_decref(backups);
	json_decref(pgbr);
	json_decref(r.facts);
	json_decref(r.position);
	json_decref(r.dbs);
	free(r.work);
	free(r.nodedir);
	free(r.inprogress);
	free(r.error);
	free(r.note);
	return code;
}
