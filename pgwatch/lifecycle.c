// SPDX-License-Identifier: MIT
/*
 * Postgres' lifecycle on a spoke. Nothing happens until the hub handshake
 * has been fresh once; then, in order: directories and the passfile; the
 * data directory (used as it is when it holds a cluster, made by initdb on
 * the primary or pg_basebackup on a replica when it is empty, refused when
 * it holds anything else); the generated files; and the postmaster as a
 * supervised child (a CHECKPOINT, then SIGINT, then SIGQUIT, then SIGKILL,
 * all within the shutdown budget: stop.c). A failed step is
 * retried with a growing delay and its reason is shown meanwhile.
 *
 * Every change of the state is made here (set_state()); the probes only
 * report what they saw (lifecycle_probe_ok() and its siblings).
 */
#include "pgwatch/pgwatch_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"
#include "lib/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 2000
#define RETRY_MAX_MS 60000

static void bootstrap_or_start(struct pgwatch *pw);

const char *pg_state_name(enum pg_state st)
{
	switch (st) {
	case PG_STATE_NONE: return "none";
	case PG_STATE_WAITING_FOR_TUNNEL: return "waiting_for_tunnel";
	case PG_STATE_WAITING_FOR_FIREWALL: return "waiting_for_firewall";
	case PG_STATE_WAITING_FOR_LEADER: return "waiting_for_leader";
	case PG_STATE_BOOTSTRAPPING: return "bootstrapping";
	case PG_STATE_STARTING: return "starting";
	case PG_STATE_RUNNING: return "running";
	case PG_STATE_UNRESPONSIVE: return "unresponsive";
	case PG_STATE_STOPPED: return "stopped";
	case PG_STATE_FAILED: return "failed";
	}
	return "unknown";
}

/* Every change of pw->state goes through here, and only lifecycle.c calls it. */
static void set_state(struct pgwatch *pw, enum pg_state st, const char *fmt, ...) _printf_(3, 4);
static void set_state(struct pgwatch *pw, enum pg_state st, const char *fmt, ...)
{
	char reason[sizeof(pw->reason)] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
	}
	if (st != pw->state || strcmp(reason, pw->reason) != 0) {
		char q[600];

		log_info("pgwatch", "postgres state=%s was=%s reason=%s", pg_state_name(st),
			 pg_state_name(pw->state), log_quote(q, sizeof(q), reason));
	}
	pw->state = st;
	snprintf(pw->reason, sizeof(pw->reason), "%s", reason);
}

static const struct conf_postgres *pgconf(const struct pgwatch *pw)
{
	return &conf_self(pw->conf)->settings.postgres;
}

static void fail_and_retry(struct pgwatch *pw, const char *fmt, ...) _printf_(2, 3);
static void fail_and_retry(struct pgwatch *pw, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_state(pw, PG_STATE_FAILED, "%s (retrying in %us)", msg, pw->retry_ms / 1000);
	loop_timer_arm(pw->retry, pw->retry_ms, 0);
	pw->retry_ms = pw->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pw->retry_ms * 2;
}

static void reinit_continue(struct pgwatch *pw);
static void restart_continue(struct pgwatch *pw);

static void on_retry(struct loop_source *src, void *data)
{
	struct pgwatch *pw = data;

	(void)src;
	if (child_set_shutting_down(pw->children))
		return;
	if (pw->reinit_pending)
		reinit_continue(pw);
	else if (pw->restart_pending)
		restart_continue(pw);
	else if (!pw->held)
		bootstrap_or_start(pw);
}

/* ---- files ---------------------------------------------------------------- */

static int write_owned(struct pgwatch *pw, const char *path, const char *text, mode_t mode)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	size_t n = strlen(text);

	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) < 0 ||
	    fchown(fd, pw->uid, pw->gid) < 0 || fsync(fd) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return rename(tmp, path) < 0 ? -errno : 0;
}

static int ensure_dir(struct pgwatch *pw, const char *path, mode_t mode, bool own)
{
	struct stat st;

	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if (own && (st.st_uid != pw->uid || (st.st_mode & 07777) != mode)) {
		if (chown(path, pw->uid, pw->gid) < 0 || chmod(path, mode) < 0)
			return -errno;
	}
	return 0;
}

static int ensure_traversable(const char *path)
{
	struct stat st;

	if (mkdir(path, 0711) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if ((st.st_mode & 0111) != 0111 && chmod(path, (st.st_mode & 07777) | 0111) < 0)
		return -errno;
	return 0;
}

static char *read_small(const char *path, size_t max)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = xmalloc(max + 1);
	n = read(fd, buf, max);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* load_password(): the password is there but unusable (the reason is shown). */
#define PGWATCH_E_PASSWORD 1

/*
 * The replication password: from a 0600 file (or the environment), for the
 * passfile and the role. On failure the step fails with the reason.
 * Return: 0, PGWATCH_E_PASSWORD, or -errno when the file cannot be read.
 */
static int load_password(struct pgwatch *pw)
{
	const char *path = pgconf(pw)->password_file, *env = pgconf(pw)->password_env;
	struct stat st;
	char *text;
	int r;

	if (env) { /* Dstack's encrypted environment: never on disk */
		const char *v = getenv(env);

		if (!v || !*v || strlen(v) >= sizeof(pw->password) || strchr(v, '\n')) {
			fail_and_retry(pw, "replication password: $%s is %s (postgres.password_env)", env,
				       !v ? "not set" : "empty, too long or not one line");
			return PGWATCH_E_PASSWORD;
		}
		snprintf(pw->password, sizeof(pw->password), "%s", v);
		return 0;
	}
	if (stat(path, &st) < 0) {
		r = -errno;
		fail_and_retry(pw, "replication password: cannot read %s: %s (hint: one line, mode 0600)",
			       path, strerror(-r));
		return r;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		fail_and_retry(pw, "replication password: %s is readable by group or others (hint: chmod 600 %s)",
			       path, path);
		return PGWATCH_E_PASSWORD;
	}
	text = read_small(path, sizeof(pw->password) - 1);
	if (!text || !*str_trim_right(text) || strchr(text, '\n')) {
		r = text ? PGWATCH_E_PASSWORD : -errno;
		fail_and_retry(pw, "replication password: %s must hold one non-empty line", path);
		free(text);
		return r;
	}
	snprintf(pw->password, sizeof(pw->password), "%s", text);
	explicit_zero(text, strlen(text));
	free(text);
	return 0;
}

static int write_passfile(struct pgwatch *pw)
{
	char line[600];
	size_t o = 0;
	int r;

	o += (size_t)snprintf(line, sizeof(line), "*:*:*:%s:", pgconf(pw)->replication_user);
	/* pgpass escapes ':' and '\' with a backslash */
	for (const char *p = pw->password; *p && o + 3 < sizeof(line); p++) {
		if (*p == ':' || *p == '\\')
			line[o++] = '\\';
		line[o++] = *p;
	}
	line[o++] = '\n';
	line[o] = '\0';
	r = write_owned(pw, pw->passfile, line, 0600);
	explicit_zero(line, sizeof(line));
	return r;
}

int pgwatch_write_config(struct pgwatch *pw)
{
	const char *data = pgconf(pw)->data_dir;
	_cleanup_free_ char *local = NULL, *hba = NULL, *settings = NULL, *conf_text = NULL, *archive = NULL;
	_cleanup_free_ char *p_local = xasprintf("%s/pg_hba.local.conf", data);
	_cleanup_free_ char *p_hba = xasprintf("%s/pg_hba.supervisor.conf", data);
	_cleanup_free_ char *p_ident = xasprintf("%s/pg_ident.supervisor.conf", data);
	_cleanup_free_ char *p_set = xasprintf("%s/supervisor.conf", data);
	_cleanup_free_ char *p_conf = xasprintf("%s/postgresql.conf", data);
	char ident[256];
	int r;

	local = read_small(p_local, 1 << 16);
	if (pw->links.archive_command)
		archive = pw->links.archive_command(pw->conf);
	hba = pg_hba_text(pw->conf, local);
	settings = pg_settings_text(pw->conf, pw->passfile, archive);
	snprintf(ident, sizeof(ident),
		 "# Generated by supervisor: root (the supervisor) and %s may use the %s role locally.\n"
		 "supervisor root %s\nsupervisor %s %s\n", pgconf(pw)->user, pgconf(pw)->user,
		 pgconf(pw)->user, pgconf(pw)->user, pgconf(pw)->user);
	if ((r = write_owned(pw, p_hba, hba, 0600)) < 0 || (r = write_owned(pw, p_ident, ident, 0600)) < 0 ||
	    (r = write_owned(pw, p_set, settings, 0600)) < 0)
		return r;
	/* postgresql.conf stays the user's: we only make sure it includes ours, once. */
	conf_text = read_small(p_conf, 1 << 20);
	if (conf_text && !strstr(conf_text, "include_if_exists = 'supervisor.conf'")) {
		_cleanup_free_ char *next = xasprintf("%s%s# Added by supervisor: the settings it generates.\n"
						      "include_if_exists = 'supervisor.conf'\n", conf_text,
						      conf_text[0] && conf_text[strlen(conf_text) - 1] != '\n' ? "\n" : "");

		if ((r = write_owned(pw, p_conf, next, 0600)) < 0)
			return r;
	}
	return 0;
}

/* ---- steps ------------------------------------------------------------------ */

static void add_postgres(struct pgwatch *pw);
static void run_rewind(struct pgwatch *pw);
static void rewind_done(struct pgwatch *pw);
static void rewind_failed(struct pgwatch *pw);
static bool on_rewind_output(const char *line, void *data);
static void stop_for_restart(struct pgwatch *pw, const char *why);
static void maybe_start(struct pgwatch *pw);
static void identity_checked(struct pgwatch *pw, int verdict, uint64_t upstream);
static void configure_and_start(struct pgwatch *pw);

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

/* fsync a directory, so the renames in it survive a power loss. */
static int fsync_dir(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/*
 * rename() every entry of directory @from into @to (same file system).
 * Return: 0, or -errno of the first failure (entries moved so far stay moved).
 */
static int move_entries(const char *from, const char *to, const char *except)
{
	DIR *d = opendir(from);
	_cleanup_close_ int to_fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	int r = 0;

	if (!d || to_fd < 0) {
		r = -errno;
		if (d)
			closedir(d);
		return r;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (except && !strcmp(e->d_name, except)))
			continue;
		if (renameat(dirfd(d), e->d_name, to_fd, e->d_name) < 0) {
			r = -errno;
			break;
		}
	}
	closedir(d);
	return r;
}

static bool cluster_complete(const char *dir)
{
	_cleanup_free_ char *version = xasprintf("%s/PG_VERSION", dir);
	_cleanup_free_ char *control = xasprintf("%s/global/pg_control", dir);

	return access(version, F_OK) == 0 && access(control, F_OK) == 0;
}

/*
 * The step exited 0 and its cluster is complete in the staging directory:
 * move it into the data directory. The staging directory goes last; a
 * crash before that leaves it, and the next start redoes the whole step.
 */
static int commit_bootstrap(struct pgwatch *pw)
{
	const char *data = pgconf(pw)->data_dir;
	int r;

	if (!cluster_complete(pw->stagedir))
		return -ENOENT;
	if ((r = move_entries(pw->stagedir, data, NULL)) < 0 || (r = fsync_dir(data)) < 0)
		return r;
	if (rmdir(pw->stagedir) < 0)
		return -errno;
	return fsync_dir(data);
}

static void on_bootstrap_exit(struct child *c, int status, void *data)
{
	struct pgwatch *pw = data;
	const char *name = child_name(c);
	bool cleanup = strcmp(name, "bootstrap-cleanup") == 0;
	int r;

	pw->clone.active = false;
	if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && strcmp(name, "pg_rewind") == 0 &&
	    pw->rewind.wal_missing && !child_set_shutting_down(pw->children)) {
		child_remove(c);
		rewind_failed(pw);
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (child_set_shutting_down(pw->children))
			log_info("pgwatch", "bootstrap step stopped for shutdown, redone at the next start step=%s",
				 name);
		else
			fail_and_retry(pw, "%s failed (%s %d); its output is in the log%s", name,
				       WIFEXITED(status) ? "exit" : "signal",
				       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				       cleanup ? "" : "; its partial result is removed before the retry");
		child_remove(c);
		return;
	}
	child_remove(c);
	if (strcmp(name, "pg_rewind") == 0) {
		rewind_done(pw);
		pw->rewound = true;
		pw->cloned = true; /* pg_rewind checked the system identifier against its source */
	} else if (!cleanup) {
		if ((r = commit_bootstrap(pw)) < 0) {
			fail_and_retry(pw, "%s exited 0 but its result cannot be moved into %s: %s", name,
				       pgconf(pw)->data_dir,
				       r == -ENOENT ? "no complete cluster (PG_VERSION, global/pg_control)"
						    : strerror(-r));
			return;
		}
		if (strcmp(name, "pg_basebackup") == 0)
			pw->cloned = true; /* cloned from the upstream just now: same cluster */
	}
	log_info("pgwatch", "bootstrap step done step=%s", name);
	bootstrap_or_start(pw); /* the data directory now holds a cluster, or is empty again */
}

/*
 * A bootstrap step must not start while processes of an interrupted one
 * live on (pg_basebackup's WAL streamer outlives a killed parent, and as
 * PID 1 we inherit it): the same gate as the postmaster's.
 */
static bool no_old_backends(const struct child *c, void *data);

static bool on_clone_output(const char *line, void *data)
{
	struct pgwatch *pw = data;
	uint64_t done, total;

	if (!clone_progress_parse(line, &done, &total))
		return false;
	pw->clone.done_kb = done;
	pw->clone.total_kb = total;
	return true; /* once a second: the figures are in ctl and /status, not the log */
}

static void run_bootstrap(struct pgwatch *pw, const char *name, const char *const *argv)
{
	_cleanup_free_ char *passfile_env = xasprintf("PGPASSFILE=%s", pw->passfile);
	const char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", passfile_env, NULL };
	bool clone = strcmp(name, "pg_basebackup") == 0;
	struct child_spec spec = {
		.name = name,
		.argv = argv,
		.env = env,
		.user = pgconf(pw)->user,
		.restart = CHILD_RESTART_NEVER,
		/* pg_basebackup forks its WAL streamer: stop the whole group */
		.stop = { { SIGTERM, 5000 } },
		.n_stop = 1,
		.signal_group = true,
		.owner = PG_OWNER,
		.start_gate = no_old_backends,
		.on_exit = on_bootstrap_exit,
		.on_output = clone ? on_clone_output : strcmp(name, "pg_rewind") == 0 ? on_rewind_output : NULL,
		.data = pw,
	};

	set_state(pw, PG_STATE_BOOTSTRAPPING, "%s", name);
	if (clone)
		pw->clone = (struct clone_progress){ .active = true, .started_ms = now_ms() };
	if (child_add(pw->children, &spec, NULL) < 0)
		fail_and_retry(pw, "cannot start %s", name);
}

/*
 * An unfinished bootstrap of ours: the staging directory exists. The data
 * directory was empty when it was made, so everything in it is ours: gather
 * it into the staging directory and remove that in a child (a large clone
 * is many files; the loop must not block on it).
 */
static void remove_unfinished(struct pgwatch *pw)
{
	const char *argv[] = { "/bin/rm", "-rf", "--one-file-system", "--", pw->stagedir, NULL };
	int r;

	pw->bootstraps_redone++;
	log_warnx("pgwatch", "an unfinished bootstrap is in the data directory: removing it to start over dir=%s count=%u",
		  pgconf(pw)->data_dir, pw->bootstraps_redone);
	if ((r = move_entries(pgconf(pw)->data_dir, pw->stagedir, PG_STAGE_NAME)) < 0) {
		fail_and_retry(pw, "cannot gather the unfinished bootstrap in %s: %s", pw->stagedir,
			       strerror(-r));
		return;
	}
	run_bootstrap(pw, "bootstrap-cleanup", argv);
}

bool clone_progress_parse(const char *line, uint64_t *done_kb, uint64_t *total_kb)
{
	unsigned long long done, total;
	int pct, n = 0;

	/* "%*s/%s kB (%d%%), ..." as progress_report() prints it; the total
	 * reads 0 without an estimate. */
	if (sscanf(line, " %llu/%llu kB (%d%%)%n", &done, &total, &pct, &n) != 3 || n == 0)
		return false;
	*done_kb = done;
	*total_kb = total;
	return true;
}

/*
 * The one decision, taken again after every step: with the run directory
 * and passfile in place, remove an unfinished bootstrap, bootstrap an empty
 * data directory (initdb or pg_basebackup), refuse anything else that is
 * not a cluster, check a replica's cluster against its upstream, or start.
 */
static void bootstrap_or_start(struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf);
	const struct conf_postgres *pg = pgconf(pw);
	_cleanup_free_ char *version = xasprintf("%s/PG_VERSION", pg->data_dir);
	struct passwd *p = getpwnam(pg->user);
	int r;

	if (pw->held) {
		set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", pw->held_why);
		return;
	}
	if (!p) {
		fail_and_retry(pw, "no such OS user %s (postgres.user)", pg->user);
		return;
	}
	pw->uid = p->pw_uid;
	pw->gid = p->pw_gid;
	/*
	 * Postgres must traverse the run directory to its socket directory and
	 * passfile: 0711 lets it pass without listing; the control socket in
	 * it stays 0600.
	 */
	if ((r = ensure_traversable(pw->rundir)) < 0 ||
	    (r = ensure_dir(pw, pw->sockdir, 0700, true)) < 0) {
		fail_and_retry(pw, "cannot create %s: %s", pw->sockdir, strerror(-r));
		return;
	}
	if (load_password(pw) != 0)
		return;
	if ((r = write_passfile(pw)) < 0) {
		fail_and_retry(pw, "cannot write %s: %s", pw->passfile, strerror(-r));
		return;
	}
	if (access(pw->stagedir, F_OK) == 0) {
		remove_unfinished(pw);
		return;
	}
	if (access(version, F_OK) != 0) {
		if (!dir_empty(pg->data_dir)) {
			/* Never wipe: whatever is there may be someone's only copy. */
			fail_and_retry(pw, "%s is not empty but holds no cluster (no PG_VERSION); refusing to touch it (hint: move it away to let this node bootstrap)",
				       pg->data_dir);
			return;
		}
		if ((r = ensure_dir(pw, pg->data_dir, 0700, true)) < 0) {
			fail_and_retry(pw, "cannot create %s: %s", pg->data_dir, strerror(-r));
			return;
		}
		if (me->pg_role == CONF_PG_PRIMARY) {
			_cleanup_free_ char *initdb = xasprintf("%s/initdb", pg->bin_dir);
			_cleanup_free_ char *user = xasprintf("--username=%s", pg->user);
			const char *argv[] = { initdb, "-D", pw->stagedir, user, "--data-checksums",
					       "--encoding=UTF8", "--locale=C", "--auth-local=peer",
					       "--auth-host=scram-sha-256", NULL };

			run_bootstrap(pw, "initdb", argv);
		} else {
			const struct conf_node *up = &pw->conf->nodes[me->upstream];
			_cleanup_free_ char *bb = xasprintf("%s/pg_basebackup", pg->bin_dir);
			_cleanup_free_ char *port = xasprintf("%u", up->settings.postgres.port);
			/* Both of its connections say what they are in pg_stat_replication. */
			_cleanup_free_ char *app = xasprintf("application_name=%s/clone", me->name);
			char host[16], slot[64];
			const char *argv[] = { bb, "-d", app, "-h", conf_ip_str(up->overlay_ip, host),
					       "-p", port, "-U", pg->replication_user, "-D", pw->stagedir,
					       "-X", "stream", "-S", slot, "-c", "fast", "-P", "--no-password",
					       NULL };

			pg_slot_name(me->name, slot, sizeof(slot));
			run_bootstrap(pw, "pg_basebackup", argv);
		}
		return;
	}
	if (!cluster_complete(pg->data_dir)) {
		/* Not a staged bootstrap of ours: someone's, so never touched. */
		fail_and_retry(pw, "%s holds an incomplete cluster (PG_VERSION but no global/pg_control) that this supervisor did not make; refusing to touch it (hint: move it away to let this node bootstrap)",
			       pg->data_dir);
		return;
	}
	/*
	 * High availability: a directory last run as a primary that must now
	 * follow the leader may hold WAL the leader never had (a failover) or
	 * not (a clean switchover); pg_rewind tells the two apart and undoes
	 * the first ("no rewind required" otherwise).
	 */
	if (me->pg_role == CONF_PG_REPLICA && conf_ha_on(pw->conf) && !pw->rewound && !pw->cloned) {
		_cleanup_free_ char *label = xasprintf("%s/backup_label", pg->data_dir);
		struct pg_control ctl;

		/*
		 * A clone not yet started has the primary's "in production" in its
		 * pg_control too, and a backup_label: it was never run, never rewound.
		 */
		if (access(label, F_OK) != 0 && pg_control_read(pg->data_dir, &ctl) == 0 &&
		    pg_control_was_primary(&ctl)) {
			run_rewind(pw);
			return;
		}
	}
	/*
	 * A replica on a directory it did not just clone: is it the upstream's
	 * cluster? Asked before anything in it is written.
	 */
	if (me->pg_role == CONF_PG_REPLICA && !pw->cloned) {
		uint64_t local;

		if (pg_local_sysid(pg->data_dir, &local) == 0 &&
		    identity_check_start(pw, local, identity_checked) == 0) {
			set_state(pw, PG_STATE_BOOTSTRAPPING, "checking the system identifier against the upstream");
			return;
		}
	}
	configure_and_start(pw);
}

/* The data directory holds our cluster: write what we own in it, start. */
static void configure_and_start(struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf);
	_cleanup_free_ char *signal_file = xasprintf("%s/standby.signal", pgconf(pw)->data_dir);
	int r;

	/* A replica's data directory must say so, or it would come up as a primary. */
	if (me->pg_role == CONF_PG_REPLICA && access(signal_file, F_OK) != 0 &&
	    (r = write_owned(pw, signal_file, "", 0600)) < 0) {
		fail_and_retry(pw, "cannot write %s: %s", signal_file, strerror(-r));
		return;
	}
	if ((r = pgwatch_write_config(pw)) < 0) {
		fail_and_retry(pw, "cannot write the generated settings: %s", strerror(-r));
		return;
	}
	pw->retry_ms = RETRY_MIN_MS;
	add_postgres(pw);
}

static void identity_checked(struct pgwatch *pw, int verdict, uint64_t upstream)
{
	const struct conf_node *me = conf_self(pw->conf);
	uint64_t local = 0;

	(void)pg_local_sysid(pgconf(pw)->data_dir, &local);
	if (verdict == IDENTITY_DIFFERENT) {
		/* Refuse, keep every byte, say how to get out. Checked again later. */
		fail_and_retry(pw, "%s belongs to another cluster (system identifier %" PRIu64 ", upstream %s has %" PRIu64 "); refusing to start it (hint: stop this node, move the directory away to keep it, and start again to re-clone from %s)",
			       pgconf(pw)->data_dir, local, pw->conf->nodes[me->upstream].name, upstream,
			       pw->conf->nodes[me->upstream].name);
		return;
	}
	if (verdict == IDENTITY_UNKNOWN)
		log_warnx("pgwatch", "could not check the system identifier against the upstream; starting anyway");
	else
		log_info("pgwatch", "system identifier matches the upstream sysid=%" PRIu64, local);
	pw->cloned = true; /* checked: do not ask again on restarts of this run */
	configure_and_start(pw);
}

static void on_postgres_exit(struct child *c, int status, void *data)
{
	struct pgwatch *pw = data;

	(void)c;
	pw->setup_done = false;
	if (pw->reinit_pending || pw->restart_pending)
		return; /* stopped on purpose; reinit_continue() or restart_continue() goes on */
	set_state(pw, PG_STATE_STOPPED, "postmaster exited (%s %d)", WIFEXITED(status) ? "exit" : "signal",
		  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	pw->setup_done = false;
}

/* ---- what the probes saw (probe.c) ------------------------------------------ */

void lifecycle_probe_ok(struct pgwatch *pw)
{
	if (pw->state == PG_STATE_RUNNING)
		return;
	set_state(pw, PG_STATE_RUNNING, NULL);
	log_info("pgwatch", "postgres accepting connections after_ms=%llu",
		 (unsigned long long)(now_ms() - pw->started_ms));
	probe_fast(pw, false);
}

void lifecycle_probe_failed(struct pgwatch *pw, bool timeout)
{
	char q[400];

	if (pw->state == PG_STATE_STARTING && !timeout)
		return; /* "starting up", socket not there yet: keep waiting */
	if (timeout || pw->state == PG_STATE_RUNNING || pw->state == PG_STATE_UNRESPONSIVE)
		set_state(pw, PG_STATE_UNRESPONSIVE, "probe %s: %s", timeout ? "timed out" : "failed",
			  pw->probe_error);
	log_debug("pgwatch", "probe failed error=%s", log_quote(q, sizeof(q), pw->probe_error));
}

void lifecycle_postmaster_absent(struct pgwatch *pw)
{
	if (pw->state == PG_STATE_RUNNING || pw->state == PG_STATE_UNRESPONSIVE)
		set_state(pw, PG_STATE_STOPPED, "postmaster not running");
}

/* The child engine restarted it after an exit: wait for it to accept again. */
void lifecycle_postmaster_present(struct pgwatch *pw)
{
	if (pw->state == PG_STATE_STOPPED)
		set_state(pw, PG_STATE_STARTING, NULL);
}

/*
 * A new postmaster must not start while backends of the old one live on
 * (as PID 1 we inherit them when it dies): only when no process of the
 * postgres user is a direct child of ours any more. Checked after every
 * reap, so the restart follows the last one's exit.
 */
struct uid_count {
	unsigned uid;  /* whose processes */
	unsigned n;    /* found so far */
};

static void count_mine(int pid, unsigned uid, void *data)
{
	struct uid_count *count = data;

	(void)pid;
	if (uid == count->uid)
		count->n++;
}

static bool no_old_backends(const struct child *c, void *data)
{
	struct pgwatch *pw = data;
	struct uid_count count = { .uid = (unsigned)pw->uid };

	(void)c;
	proc_children(getpid(), count_mine, &count);
	if (count.n)
		log_info("pgwatch", "waiting for old postgres processes to exit count=%u", count.n);
	return count.n == 0;
}

/*
 * The upstream no longer has the WAL this replica asks for: streaming can
 * never resume, only a new clone helps. Postgres says so only in its log
 * (the walreceiver's FATAL), so that is where we look.
 */
static bool on_postgres_output(const char *line, void *data)
{
	struct pgwatch *pw = data;

	if (strstr(line, "requested WAL segment") && strstr(line, "has already been removed"))
		pw->wal_gone_ms = now_ms();
	return false; /* logged as usual */
}

static void add_postgres(struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf);
	const struct conf_postgres *pg = pgconf(pw);
	_cleanup_free_ char *bin = xasprintf("%s/postgres", pg->bin_dir);
	char ip[16];
	/*
	 * What decides who can reach Postgres is on the command line, where no
	 * configuration file can override it: the overlay IP only.
	 */
	_cleanup_free_ char *listen = xasprintf("listen_addresses=%s", conf_ip_str(me->overlay_ip, ip));
	_cleanup_free_ char *port = xasprintf("port=%u", pg->port);
	_cleanup_free_ char *sock = xasprintf("unix_socket_directories=%s", pw->sockdir);
	_cleanup_free_ char *hba = xasprintf("hba_file=%s/pg_hba.supervisor.conf", pg->data_dir);
	_cleanup_free_ char *ident = xasprintf("ident_file=%s/pg_ident.supervisor.conf", pg->data_dir);
	const char *argv[] = { bin, "-D", pg->data_dir, "-c", listen, "-c", port, "-c", sock,
			       "-c", hba, "-c", ident, NULL };
	const char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL };
	struct child_spec spec = {
		.name = PG_CHILD_NAME,
		.argv = argv,
		.env = env,
		.user = pg->user,
		.restart = CHILD_RESTART_ALWAYS,
		.after = (const char *const[]){ pw->links.stop_before, NULL },
		.owner = PG_OWNER,
		.start_gate = no_old_backends,
		.on_exit = on_postgres_exit,
		.on_output = on_postgres_output,
		.data = pw,
	};

	stop_fill_spec(pw, &spec);
	/* Stop before it only if it is supervised here (wireguard-go: the userspace backend). */
	if (!pw->links.stop_before || !child_find(pw->children, pw->links.stop_before))
		spec.after = NULL;
	if (child_add(pw->children, &spec, NULL) < 0) {
		fail_and_retry(pw, "cannot start postgres");
		return;
	}
	pw->bootstrapped = true;
	pw->started_ms = now_ms();
	set_state(pw, PG_STATE_STARTING, NULL);
	probe_fast(pw, true);
}

/* ---- high availability: stop, rewind, start in the new role -------------------- */

/* "servers diverged at WAL location 0/50286F0 on timeline 1", or "no rewind required". */
static bool on_rewind_output(const char *line, void *data)
{
	struct pgwatch *pw = data;
	const char *p = strstr(line, "diverged at WAL location ");
	char lsn[32];

	if (p && sscanf(p + strlen("diverged at WAL location "), "%31s", lsn) == 1)
		(void)pg_lsn_parse(lsn, &pw->rewind.diverged_lsn);
	if (strstr(line, "no rewind required"))
		pw->rewind.none_required = true;
	/* What only a new clone can fix: the WAL back to the last common checkpoint is gone. */
	if (strstr(line, "could not find previous WAL record") || strstr(line, "could not open file") ||
	    strstr(line, "could not find common ancestor"))
		pw->rewind.wal_missing = true;
	return false; /* logged as usual */
}

/*
 * pg_rewind from the leader, in place: a dry run first; only when the
 * directory really diverged is its pg_wal copied aside (DATA.diverged-TS,
 * for pg_waldump: the transactions it held are about to be discarded),
 * then the rewind proper.
 */
static void run_rewind(struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf), *up = &pw->conf->nodes[me->upstream];
	const struct conf_postgres *pg = pgconf(pw);
	_cleanup_free_ char *bin = xasprintf("%s/pg_rewind", pg->bin_dir);
	char ip[16], stamp[32];
	struct pg_control ctl;
	struct timespec ts;
	struct tm tm;
	/* The replication role has pg_rewind's four grants (probe.c); its password is in the passfile. */
	_cleanup_free_ char *source = xasprintf("--source-server=host=%s port=%u user=%s dbname=postgres "
						"connect_timeout=5 application_name=%s/rewind",
						conf_ip_str(up->overlay_ip, ip), up->settings.postgres.port,
						pg->replication_user, me->name);
	static const char script[] =
		"a=$1 d=$2 clean=$3; shift 3\n"
		/* a dry run cannot recover a crashed directory first; the real run does */
		"[ \"$clean\" = clean ] && {\n"
		"out=$(\"$@\" --dry-run 2>&1); rc=$?; printf '%s\\n' \"$out\"; [ $rc = 0 ] || exit $rc\n"
		"case $out in *'no rewind required'*) exit 0 ;; esac\n"
		"}\n"
		"cp -a \"$d/pg_wal\" \"$a/\" || { echo \"cannot copy pg_wal to $a\"; exit 1; }\n"
		"echo \"pg_wal copied aside to $a before the rewind\"\n"
		"exec \"$@\"\n";
	const char *argv[] = { "/bin/sh", "-c", script, "sh", pw->rewind.aside, pg->data_dir, "clean", bin,
			       "-D", pg->data_dir, source, "--progress", NULL };

	clock_gettime(CLOCK_REALTIME, &ts);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&ts.tv_sec, &tm));
	pw->rewind = (struct pg_rewind_note){ .started = true, .at = ts.tv_sec };
	snprintf(pw->rewind.aside, sizeof(pw->rewind.aside), "%s.diverged-%s", pg->data_dir, stamp);
	if (pg_control_read(pg->data_dir, &ctl) == 0) {
		pw->rewind.end_lsn = ctl.checkpoint_lsn;
		if (ctl.state != PG_DB_SHUTDOWNED)
			argv[6] = "crashed";
	}
	/* Made here, as root: the data directory's parent need not be writable by Postgres. */
	if (ensure_dir(pw, pw->rewind.aside, 0700, true) < 0)
		log_warn("pgwatch", "cannot create dir=%s", pw->rewind.aside);
	log_info("pgwatch", "this directory was last a primary: pg_rewind from the leader %s", up->name);
	run_bootstrap(pw, "pg_rewind", argv);
}

static void rewind_done(struct pgwatch *pw)
{
	char d[32], e[32];

	pw->rewound = true;
	pw->cloned = true; /* pg_rewind checked the system identifier against its source */
	if (pw->rewind.none_required || !pw->rewind.diverged_lsn) {
		(void)rmdir(pw->rewind.aside); /* made for a copy that was not needed */
		pw->rewind.aside[0] = '\0';
		log_info("pgwatch", "pg_rewind: no rewind required; starting as a standby of the leader");
		return;
	}
	/* What this node wrote after the divergence is gone: at least up to its last checkpoint. */
	pw->rewind.discarded_bytes = pw->rewind.end_lsn > pw->rewind.diverged_lsn ?
				     (double)(pw->rewind.end_lsn - pw->rewind.diverged_lsn) : 0;
	log_warnx("pgwatch", "pg_rewind discarded what this node wrote after the divergence diverged_at=%s "
		  "end=%s discarded_bytes=%.0f aside=%s", pg_lsn_text(pw->rewind.diverged_lsn, d, sizeof(d)),
		  pg_lsn_text(pw->rewind.end_lsn, e, sizeof(e)), pw->rewind.discarded_bytes, pw->rewind.aside);
}

/* pg_rewind could not do it (WAL before the divergence recycled, ...): clone again, old directory kept. */
static void rewind_failed(struct pgwatch *pw)
{
	const char *data = pgconf(pw)->data_dir;
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&ts.tv_sec, &tm));
	snprintf(pw->reinit_aside, sizeof(pw->reinit_aside), "%s.rewind-failed-%s", data, stamp);
	log_warnx("pgwatch", "pg_rewind failed: moving the data directory aside (kept) and cloning from the leader aside=%s",
		  pw->reinit_aside);
	pw->rewind.failed = true;
	pw->reinit_pending = true;
	set_state(pw, PG_STATE_BOOTSTRAPPING, "pg_rewind failed: cloning again from the leader; the old data directory is kept at %s",
		  pw->reinit_aside);
	loop_timer_arm(pw->retry, 100, 0);
}

/* Stop Postgres (its stop plan: checkpoint, fast, immediate), then restart_continue(). */
static void stop_for_restart(struct pgwatch *pw, const char *why)
{
	struct child *pg = child_find(pw->children, PG_CHILD_NAME);

	pw->restart_pending = true;
	pw->bootstrapped = false; /* no probes until it runs again */
	role_cancel(pw);
	if (pg)
		child_remove(pg); /* before the state changes: the checkpoint wants "running" */
	json_decref(pw->last);
	pw->last = NULL;
	set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", why);
	loop_timer_arm(pw->retry, 100, 0);
}

static void restart_continue(struct pgwatch *pw)
{
	if (child_find(pw->children, PG_CHILD_NAME) || !no_old_backends(NULL, pw)) {
		loop_timer_arm(pw->retry, 200, 0);
		return;
	}
	pw->restart_pending = false;
	if (pw->held) {
		set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", pw->held_why);
		return;
	}
	pw->retry_ms = RETRY_MIN_MS;
	bootstrap_or_start(pw);
}

void pgwatch_hold(struct pgwatch *pw, bool hold, const char *why)
{
	bool was = pw->held;

	if (hold)
		snprintf(pw->held_why, sizeof(pw->held_why), "%s", why ? why : "held");
	pw->held = hold;
	if (pw->state == PG_STATE_NONE || hold == was)
		return;
	if (hold) {
		loop_timer_disarm(pw->retry);
		identity_check_cancel(pw);
		if (child_find(pw->children, PG_CHILD_NAME))
			stop_for_restart(pw, pw->held_why);
		else if (pw->state != PG_STATE_BOOTSTRAPPING)
			set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", pw->held_why);
		return;
	}
	if (!pw->started) {
		maybe_start(pw);
		return;
	}
	if (!pw->restart_pending && !child_find(pw->children, PG_CHILD_NAME) &&
	    pw->state == PG_STATE_WAITING_FOR_LEADER)
		bootstrap_or_start(pw);
}

void pgwatch_fence(struct pgwatch *pw, const char *why)
{
	/* Not "running" any more: the stop plan skips its CHECKPOINT and signals at once. */
	if (pw->state == PG_STATE_RUNNING)
		set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", why);
	pgwatch_hold(pw, true, why);
}

bool pgwatch_stopped(const struct pgwatch *pw)
{
	return pw->held && !pw->restart_pending && !child_find(pw->children, PG_CHILD_NAME);
}

/* ---- public ------------------------------------------------------------------- */

static void set_paths(struct pgwatch *pw)
{
	conf_run_dir(pw->conf, pw->rundir, sizeof(pw->rundir));
	conf_pg_socket_dir(pw->conf, pw->sockdir, sizeof(pw->sockdir));
	snprintf(pw->passfile, sizeof(pw->passfile), "%s/pgpass", pw->rundir);
	snprintf(pw->stagedir, sizeof(pw->stagedir), "%s/" PG_STAGE_NAME,
		 conf_self(pw->conf)->settings.postgres.data_dir);
}

int pgwatch_new(struct loop *loop, struct child_set *children, const struct conf *conf,
		const struct pgwatch_links *links, struct pgwatch **out)
{
	struct pgwatch *pw = xcalloc(1, sizeof(*pw));
	int r;

	pw->loop = loop;
	pw->children = children;
	pw->conf = conf;
	if (links)
		pw->links = *links;
	pw->retry_ms = RETRY_MIN_MS;
	pw->role_applied = conf_self(conf)->pg_role;
	set_paths(pw);
	pw->state = conf_self(conf)->pg_role == CONF_PG_NONE || conf_self(conf)->kind == CONF_NODE_HUB ?
		    PG_STATE_NONE : PG_STATE_WAITING_FOR_TUNNEL;
	if ((r = loop_add_timer(loop, on_retry, pw, &pw->retry)) < 0 || (r = probe_init(pw)) < 0) {
		pgwatch_free(pw);
		return r;
	}
	*out = pw;
	return 0;
}

struct pgwatch *pgwatch_free(struct pgwatch *pw)
{
	if (!pw)
		return NULL;
	probe_stop(pw);
	stop_cancel(pw);
	role_cancel(pw);
	identity_check_cancel(pw);
	loop_remove(pw->retry);
	json_decref(pw->last);
	json_decref(pw->bound);
	explicit_zero(pw->password, sizeof(pw->password));
	free(pw);
	return NULL;
}

/* Start once both gates are open: a fresh hub handshake and our firewall. */
static void maybe_start(struct pgwatch *pw)
{
	if (pw->started || pw->state == PG_STATE_NONE || !pw->tunnel_fresh)
		return;
	if (!pw->firewall_applied) {
		set_state(pw, PG_STATE_WAITING_FOR_FIREWALL, "%s",
			  pw->firewall_why[0] ? pw->firewall_why : "not applied yet");
		return;
	}
	if (pw->held) {
		set_state(pw, PG_STATE_WAITING_FOR_LEADER, "%s", pw->held_why);
		return;
	}
	/* The first start is for good; a later stale tunnel or failed re-apply stops nothing. */
	pw->started = true;
	log_info("pgwatch", "hub tunnel fresh and firewall applied: starting postgres role=%s",
		 conf_pg_role_name(conf_self(pw->conf)->pg_role));
	bootstrap_or_start(pw);
}

void pgwatch_tunnel(struct pgwatch *pw, bool fresh)
{
	pw->tunnel_fresh_now = fresh;
	if (!fresh)
		return;
	pw->tunnel_fresh = true;
	maybe_start(pw);
}

void pgwatch_firewall(struct pgwatch *pw, bool applied, const char *why)
{
	pw->firewall_applied = applied;
	snprintf(pw->firewall_why, sizeof(pw->firewall_why), "%s", why && !applied ? why : "");
	maybe_start(pw);
}

void pgwatch_set_conf(struct pgwatch *pw, const struct conf *conf)
{
	struct child *pg;

	enum conf_pg_role was = pw->role_applied;

	pw->conf = conf;
	set_paths(pw);
	stop_set_conf(pw); /* the shutdown budget may have changed */
	role_set_conf(pw);
	pw->role_applied = conf_self(conf)->pg_role;
	if (was == CONF_PG_PRIMARY && pw->role_applied == CONF_PG_REPLICA) {
		/* Demoted by the store: stop, then come back through pg_rewind as a standby. */
		pw->rewound = false;
		pw->cloned = false; /* its directory ran as a primary since: rewound, then checked */
		if (pw->bootstrapped)
			stop_for_restart(pw, "demoting: another node holds the leader key");
		return;
	}
	if (!pw->bootstrapped)
		return;
	if (was == CONF_PG_REPLICA && pw->role_applied == CONF_PG_PRIMARY)
		role_after_probe(pw); /* promote now, not at the next probe: writes wait for it */
	/* hba and replication settings follow the file; Postgres rereads them on SIGHUP. */
	if (pgwatch_write_config(pw) < 0)
		log_warn("pgwatch", "cannot rewrite the generated settings");
	pg = child_find(pw->children, PG_CHILD_NAME);
	if (pg && child_pid(pg) > 0)
		kill(child_pid(pg), SIGHUP);
	pw->setup_done = false; /* slots for replicas added to the file */
}

/* Postgres is gone (and every backend of it): move the data directory aside, clone. */
static void reinit_continue(struct pgwatch *pw)
{
	const char *data = pgconf(pw)->data_dir;
	_cleanup_free_ char *parent = xstrdup(data);
	char *slash = strrchr(parent, '/');

	if (child_find(pw->children, PG_CHILD_NAME) || !no_old_backends(NULL, pw)) {
		loop_timer_arm(pw->retry, 200, 0);
		return;
	}
	pw->reinit_pending = false;
	if (rename(data, pw->reinit_aside) < 0) {
		fail_and_retry(pw, "reinit: cannot move %s to %s: %s; Postgres starts again on it",
			       data, pw->reinit_aside, strerror(errno));
		return;
	}
	if (slash)
		*(slash == parent ? slash + 1 : slash) = '\0';
	(void)fsync_dir(parent);
	log_info("pgwatch", "reinit: data directory moved aside, cloning again dir=%s aside=%s", data,
		 pw->reinit_aside);
	pw->cloned = false;
	pw->wal_gone_ms = 0;
	pw->retry_ms = RETRY_MIN_MS;
	bootstrap_or_start(pw);
}

int pgwatch_reinit(struct pgwatch *pw, char *aside, size_t size, const char **why)
{
	const struct conf_node *me = conf_self(pw->conf);
	const char *data = pgconf(pw)->data_dir;
	_cleanup_free_ char *parent = xasprintf("%s/..", data);
	struct stat st_data, st_parent;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	struct child *pg;

	if (me->pg_role != CONF_PG_REPLICA) {
		*why = me->pg_role == CONF_PG_PRIMARY ?
		       "refused: this node is the primary (reinit re-clones a replica from its upstream)" :
		       "this node runs no Postgres";
		return -ENOTSUP;
	}
	if (!pw->started) {
		*why = "Postgres was not started yet (it waits for a fresh tunnel and the firewall)";
		return -EAGAIN;
	}
	if (pw->reinit_pending || pw->state == PG_STATE_BOOTSTRAPPING) {
		*why = "a bootstrap is running already (ctl replication shows its progress)";
		return -EBUSY;
	}
	if (stat(data, &st_data) == 0 && stat(parent, &st_parent) == 0 && st_data.st_dev != st_parent.st_dev) {
		*why = "the data directory is a mount point and cannot be moved aside (hint: mount the volume on its parent, as the shipped compose file does)";
		return -EXDEV;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&ts.tv_sec, &tm));
	snprintf(pw->reinit_aside, sizeof(pw->reinit_aside), "%s.reinit-%s", data, stamp);
	if (access(pw->reinit_aside, F_OK) == 0) {
		*why = "a reinit moved the data directory aside this very second; try again";
		return -EBUSY;
	}
	snprintf(aside, size, "%s", pw->reinit_aside);
	log_info("pgwatch", "reinit requested: stopping postgres aside=%s", pw->reinit_aside);
	pw->reinit_pending = true;
	identity_check_cancel(pw);
	loop_timer_disarm(pw->retry);
	pw->bootstrapped = false; /* no probes until it runs again */
	json_decref(pw->last);
	pw->last = NULL;
	set_state(pw, PG_STATE_BOOTSTRAPPING, "reinit: stopping postgres, then cloning again");
	if ((pg = child_find(pw->children, PG_CHILD_NAME)))
		child_remove(pg);
	loop_timer_arm(pw->retry, 100, 0);
	return 0;
}

const struct pg_rewind_note *pgwatch_last_rewind(const struct pgwatch *pw)
{
	return &pw->rewind;
}

enum pg_state pgwatch_state(const struct pgwatch *pw)
{
	return pw->state;
}
