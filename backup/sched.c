// SPDX-License-Identifier: MIT
/*
 * The daemon's side of backups: when runs start, and what is reported.
 * Runs are one-shot children (`supervisor backup run|verify`) in their own
 * process group with a timeout; one at a time here, and the run's own
 * flock guards against runs started by hand. What the daemon reports
 * comes from the catalog a run writes (DIR/NODE/catalog.json) and from the
 * run's exit status when it died before writing it.
 */
#include "backup/backup_internal.h"
#include "child/child.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"
#include "lib/str.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define BACKUP_OWNER "backup"
#define CHILD_NAME "backup"
#define TICK_MS 5000
#define REVERIFY_S 86400   /* re-hash every backup once a day: bit rot shows */

struct backup {
	struct loop *loop;
	struct child_set *children;
	const struct conf *conf;
	struct backup_env env;
	char *self_exe, *conf_path;
	bool enabled;                  /* a spoke */
	struct loop_source *schedule;  /* fires at next_at */
	struct loop_source *tick;      /* a due run waiting for Postgres; daily re-verify */
	struct loop_source *deadline;  /* the running run's timeout */
	int64_t next_at;               /* wall clock: schedules are times of day (UTC) */
	uint64_t created_ms;           /* now_ms(): how long we have run, whatever the clock does */
	uint64_t fire_ms;              /* now_ms() when the schedule timer fires */
	bool due;                      /* a scheduled or requested run is waiting */
	const char *waiting_why;
	struct child *running;
	enum backup_mode running_mode;
	char run_id[40];
	int64_t run_started_at;
	bool timed_out;
	uint64_t last_verify_ms;       /* now_ms() of the last verify run's start */
	json_t *catalog;               /* the last catalog.json read */
	struct timespec catalog_mtime;
	ino_t catalog_ino;
	uint64_t catalog_run_ms;       /* now_ms() when the catalog's last_run changed */
	json_t *last_run;              /* the last backup run as the daemon saw it end */
	uint64_t last_run_ms;          /* now_ms() when last_run was set */
	char *refused;                 /* the last run that could not start, and why */
	unsigned runs, failed_runs;
};

static const struct conf_backup *bconf(const struct backup *b)
{
	return &conf_self(b->conf)->settings.backup;
}

/* Re-read catalog.json when it changed (a run of ours, or one started by hand). */
static void read_catalog(struct backup *b)
{
	_cleanup_free_ char *dir = backup_node_dir(b->conf);
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, BACKUP_CATALOG);
	struct stat st;
	json_t *doc;

	if (stat(path, &st) < 0 || (b->catalog && st.st_mtim.tv_sec == b->catalog_mtime.tv_sec &&
				    st.st_mtim.tv_nsec == b->catalog_mtime.tv_nsec && st.st_ino == b->catalog_ino))
		return;
	doc = json_load_file(path, 0, NULL);
	if (!doc)
		return; /* unreadable: keep what we had */
	if (!json_equal(json_object_get(doc, "last_run"), json_object_get(b->catalog, "last_run")))
		b->catalog_run_ms = now_ms();
	json_decref(b->catalog);
	b->catalog = doc;
	b->catalog_mtime = st.st_mtim;
	b->catalog_ino = st.st_ino;
}

static void arm_schedule(struct backup *b)
{
	int64_t now = time(NULL);

	b->next_at = backup_next_run(&bconf(b)->schedule, conf_self(b->conf)->name, now);
	b->fire_ms = now_ms() + (uint64_t)(b->next_at - now) * 1000;
	loop_timer_arm(b->schedule, (uint64_t)(b->next_at - now) * 1000, 0);
}

/* ---- runs ------------------------------------------------------------------ */

static void set_last_run(struct backup *b, bool ok, const char *error)
{
	json_decref(b->last_run);
	b->last_run = json_pack("{s:s, s:s, s:I, s:I, s:b, s:s?}", "id", b->run_id,
				"kind", b->running_mode == BACKUP_MODE_RUN ? "run" : "verify",
				"started_at", (json_int_t)b->run_started_at,
				"finished_at", (json_int_t)time(NULL), "ok", ok, "error", error);
	b->last_run_ms = now_ms();
}

/* The catalog's record of the run that just ended, if it wrote one. */
static const json_t *catalog_record(const struct backup *b)
{
	const json_t *rec = json_object_get(b->catalog, b->running_mode == BACKUP_MODE_RUN ?
					    "last_run" : "last_verify");
	const char *id = json_string_value(json_object_get(rec, "id"));

	return id && strcmp(id, b->run_id) == 0 ? rec : NULL;
}

static void on_run_exit(struct child *c, int status, void *data)
{
	struct backup *b = data;
	const json_t *rec;
	char why[256];
	bool ok;

	loop_timer_disarm(b->deadline);
	read_catalog(b);
	rec = catalog_record(b);
	if (WIFEXITED(status) && WEXITSTATUS(status) == BACKUP_EXIT_BUSY) {
		/* not a failure of backups: the run holding the lock reports its own result */
		log_warnx("backup", "run refused: already running (another run holds the lock)");
		free(b->refused);
		b->refused = xstrdup("already running: another run (started by hand?) held the lock");
		ok = true;
	} else if (rec) {
		ok = json_is_true(json_object_get(rec, "ok"));
		if (b->timed_out)
			snprintf(why, sizeof(why), "timed out after %u s and was stopped", bconf(b)->timeout_s);
		if (b->running_mode == BACKUP_MODE_RUN) {
			json_decref(b->last_run);
			b->last_run = json_deep_copy(rec);
			b->last_run_ms = now_ms();
			if (b->timed_out)
				json_object_set_new(b->last_run, "error", json_string(why));
		}
	} else {
		if (b->timed_out)
			snprintf(why, sizeof(why), "timed out after %u s and was killed", bconf(b)->timeout_s);
		else if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "killed by %s before it finished; nothing was committed and "
				 "the next run sweeps its partial", signal_name(WTERMSIG(status)));
		else
			snprintf(why, sizeof(why), "exited %d without a report (see the log)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		ok = false;
		if (b->running_mode == BACKUP_MODE_RUN)
			set_last_run(b, false, why);
		else
			log_warnx("backup", "verify run failed err=\"%s\"", why);
	}
	if (b->running_mode == BACKUP_MODE_VERIFY)
		b->last_verify_ms = now_ms();
	if (!ok)
		b->failed_runs++;
	log_info("backup", "run ended kind=%s ok=%s", b->running_mode == BACKUP_MODE_RUN ? "run" : "verify",
		 ok ? "yes" : "no");
	b->running = NULL;
	child_remove(c);
	if (b->due)
		loop_timer_arm(b->tick, 100, TICK_MS); /* the waiting run goes next */
}

static void on_deadline(struct loop_source *src, void *data)
{
	struct backup *b = data;

	(void)src;
	if (!b->running)
		return;
	log_warnx("backup", "run timed out timeout_s=%u; stopping it", bconf(b)->timeout_s);
	b->timed_out = true;
	child_remove(b->running); /* SIGTERM to its group, then SIGKILL */
}

static int start_run(struct backup *b, enum backup_mode mode)
{
	const char *argv[] = { b->self_exe, "backup", mode == BACKUP_MODE_RUN ? "run" : "verify",
			       "-c", b->conf_path, "-n", conf_self(b->conf)->name, "--run-id", b->run_id, NULL };
	struct child_spec spec = {
		.name = CHILD_NAME,
		.argv = argv,
		.restart = CHILD_RESTART_NEVER,
		/* the run removes its partial on SIGTERM; pg_dump gets it too (one group) */
		.stop = { { SIGTERM, 10000 } },
		.n_stop = 1,
		.signal_group = true,
		.owner = BACKUP_OWNER,
		.on_exit = on_run_exit,
		.data = b,
	};
	int r;

	b->run_started_at = time(NULL);
	snprintf(b->run_id, sizeof(b->run_id), "%lld-%u", (long long)b->run_started_at, b->runs + 1);
	b->running_mode = mode;
	b->timed_out = false;
	r = child_add(b->children, &spec, &b->running);
	if (r < 0) {
		b->running = NULL;
		return r;
	}
	b->runs++;
	loop_timer_arm(b->deadline, (uint64_t)bconf(b)->timeout_s * 1000, 0);
	log_info("backup", "run starting kind=%s id=%s", mode == BACKUP_MODE_RUN ? "run" : "verify", b->run_id);
	return 0;
}

/* A due run starts when nothing runs and Postgres answers. */
static void try_due(struct backup *b)
{
	const char *why = NULL;

	if (!b->due || b->running)
		return;
	if (!b->env.postgres_ready(b->env.data, &why)) {
		if (b->waiting_why != why)
			log_info("backup", "scheduled run waits reason=\"%s\"", why);
		b->waiting_why = why;
		return;
	}
	b->waiting_why = NULL;
	if (start_run(b, BACKUP_MODE_RUN) == 0)
		b->due = false;
}

static void on_schedule(struct loop_source *src, void *data);

static void on_tick(struct loop_source *src, void *data)
{
	struct backup *b = data;

	(void)src;
	if (!b->running)
		read_catalog(b);
	try_due(b);
	if (!b->running && !b->due && now_ms() - b->last_verify_ms >= (uint64_t)REVERIFY_S * 1000)
		(void)start_run(b, BACKUP_MODE_VERIFY);
	/*
	 * The schedule is a time of day, but its timer counts monotonic time:
	 * after the wall clock steps (NTP at boot, a VM resumed), fire or re-arm
	 * by the wall clock.
	 */
	{
		int64_t wall_left = b->next_at - time(NULL);
		int64_t mono_left = ((int64_t)b->fire_ms - (int64_t)now_ms()) / 1000;

		if (wall_left <= 0)
			on_schedule(b->schedule, b);
		else if (llabs(wall_left - mono_left) > TICK_MS / 1000)
			arm_schedule(b);
	}
}

static void on_schedule(struct loop_source *src, void *data)
{
	struct backup *b = data;

	(void)src;
	log_info("backup", "scheduled run due schedule=\"%s\"", bconf(b)->schedule.text);
	b->due = true;
	try_due(b);
	arm_schedule(b);
}

/* ---- public ------------------------------------------------------------------ */

int backup_new(struct loop *loop, struct child_set *children, const struct conf *conf,
	       const struct backup_env *env, struct backup **out)
{
	struct backup *b = xcalloc(1, sizeof(*b));
	int r;

	b->loop = loop;
	b->children = children;
	b->conf = conf;
	b->env = *env;
	b->self_exe = xstrdup(env->self_exe);
	b->conf_path = xstrdup(env->conf_path);
	b->created_ms = now_ms();
	b->enabled = conf_self(conf)->kind == CONF_NODE_SPOKE;
	if (!b->enabled) {
		*out = b;
		return 0;
	}
	if ((r = loop_add_timer(loop, on_schedule, b, &b->schedule)) < 0 ||
	    (r = loop_add_timer(loop, on_tick, b, &b->tick)) < 0 ||
	    (r = loop_add_timer(loop, on_deadline, b, &b->deadline)) < 0) {
		backup_free(b);
		return r;
	}
	read_catalog(b);
	arm_schedule(b);
	loop_timer_arm(b->tick, TICK_MS, TICK_MS);
	/* At once: sweep what a killed run left, and re-check every backup. */
	if ((r = start_run(b, BACKUP_MODE_VERIFY)) < 0)
		log_warnx("backup", "cannot start the first verify run err=\"%s\"", strerror(-r));
	*out = b;
	return 0;
}

struct backup *backup_free(struct backup *b)
{
	if (!b)
		return NULL;
	loop_remove(b->schedule);
	loop_remove(b->tick);
	loop_remove(b->deadline);
	json_decref(b->catalog);
	json_decref(b->last_run);
	free(b->refused);
	free(b->self_exe);
	free(b->conf_path);
	free(b);
	return NULL;
}

void backup_set_conf(struct backup *b, const struct conf *conf)
{
	b->conf = conf;
	if (b->enabled)
		arm_schedule(b); /* the schedule may have changed */
}

int backup_now(struct backup *b, const char **why)
{
	if (!b->enabled) {
		*why = "the hub runs no database, so it has no backups";
		return -ENOTSUP;
	}
	if (b->running) {
		*why = b->running_mode == BACKUP_MODE_RUN ? "already running: a backup run is in progress"
							   : "already running: a verify run is in progress; try again shortly";
		return -EBUSY;
	}
	if (!b->env.postgres_ready(b->env.data, why))
		return -EAGAIN;
	return start_run(b, BACKUP_MODE_RUN);
}

/* ---- reports -------------------------------------------------------------------- */

static const json_t *newest_good(const struct backup *b)
{
	return catalog_newest_good(json_object_get(b->catalog, "backups"));
}

/* The latest backup run: ours, or one started by hand that wrote the catalog since. */
static const json_t *latest_run(const struct backup *b)
{
	const json_t *cat = json_object_get(b->catalog, "last_run");

	return catalog_run_is_newer(cat, b->catalog_run_ms, b->last_run, b->last_run_ms) ? cat : b->last_run;
}

static bool last_run_failed(const struct backup *b)
{
	const json_t *lr = latest_run(b);

	return lr && json_is_false(json_object_get(lr, "ok"));
}

static const char *last_error(const struct backup *b)
{
	const json_t *lr = latest_run(b);

	return json_string_value(json_object_get(lr, "error"));
}

/*
 * The age that matters is the data's (backup_data_age()): a backup taken
 * a minute ago on a replica paused for a day is a day old. Unknown reads
 * as stale: it cannot be shown to be within max_age.
 */
static bool newest_fresh(const struct backup *b, const json_t *g)
{
	int64_t age;

	return backup_data_age(g, time(NULL), &age) && age <= bconf(b)->max_age_s;
}

const char *backup_state_name(enum backup_state st)
{
	switch (st) {
	case BACKUP_STATE_NONE: return "none";
	case BACKUP_STATE_WAITING: return "waiting";
	case BACKUP_STATE_RUNNING: return "running";
	case BACKUP_STATE_VERIFYING: return "verifying";
	case BACKUP_STATE_OK: return "ok";
	case BACKUP_STATE_STALE: return "stale";
	case BACKUP_STATE_FAILED: return "failed";
	}
	return "unknown";
}

static enum backup_state state_of(const struct backup *b)
{
	const json_t *g = newest_good(b);

	if (b->running)
		return b->running_mode == BACKUP_MODE_RUN ? BACKUP_STATE_RUNNING : BACKUP_STATE_VERIFYING;
	if (last_run_failed(b))
		return BACKUP_STATE_FAILED;
	if (!g)
		return b->due ? BACKUP_STATE_WAITING : BACKUP_STATE_NONE;
	if (!newest_fresh(b, g))
		return BACKUP_STATE_STALE;
	return BACKUP_STATE_OK;
}

static json_t *copy_or_null(const json_t *v)
{
	return v ? json_deep_copy(v) : json_null();
}

static double num_or_nan(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

void backup_report(const struct backup *b, struct backup_report *out)
{
	const json_t *backups, *g, *e;
	size_t i;

	*out = (struct backup_report){ .age_s = -1, .last_ok_at = NAN, .as_of = NAN, .size_bytes = NAN };
	if (!b || !b->enabled)
		return;
	backups = json_object_get(b->catalog, "backups");
	g = newest_good(b);
	out->enabled = true;
	out->state = state_of(b);
	out->method = bconf(b)->method;
	out->next_at = b->next_at;
	out->count = json_array_size(backups);
	out->bad = xcalloc(out->count ? out->count : 1, sizeof(*out->bad));
	json_array_foreach(backups, i, e) {
		if (json_is_true(json_object_get(e, "good")))
			out->good_count++;
		else
			out->bad[out->n_bad++] = (struct backup_bad){
				.name = json_string_value(json_object_get(e, "name")),
				.problem = json_string_value(json_object_get(e, "problem")) };
	}
	if (g) {
		const json_t *lag = json_object_get(g, "replica_lag");

		out->has_good = true;
		out->last_ok_at = num_or_nan(g, "finished_at");
		if (!backup_data_age(g, time(NULL), &out->age_s))
			out->age_s = -1;
		out->as_of = num_or_nan(g, "as_of");
		out->as_of_source = json_string_value(json_object_get(g, "as_of_source"));
		out->replica_lag = json_is_null(lag) ? NULL : lag;
		out->size_bytes = num_or_nan(g, "size_bytes");
		out->last_backup = json_string_value(json_object_get(g, "name"));
	}
	out->last_run_failed = last_run_failed(b);
	out->last_error = out->last_run_failed ? last_error(b) : NULL;
	out->max_age_s = bconf(b)->max_age_s;
	out->running = b->running != NULL;
	out->running_since = b->run_started_at;
	out->waiting_for = b->due ? b->waiting_why : NULL;
	out->runs = b->runs;
	out->failed_runs = b->failed_runs;
	out->up_for_s = (now_ms() - b->created_ms) / 1000;
}

void backup_report_clear(struct backup_report *r)
{
	free(r->bad);
	*r = (struct backup_report){ 0 };
}

json_t *backup_catalog_json(const struct backup *b)
{
	const json_t *lr;
	json_t *o;

	if (!b || !b->enabled)
		return json_null();
	lr = latest_run(b);
	o = json_object();
	json_object_set_new(o, "dir", json_string_nocheck(bconf(b)->dir));
	json_object_set_new(o, "schedule", json_string_nocheck(bconf(b)->schedule.text));
	json_object_set_new(o, "keep", json_pack("{s:i, s:i, s:i, s:i}", "daily", bconf(b)->keep_daily,
						 "weekly", bconf(b)->keep_weekly, "monthly", bconf(b)->keep_monthly,
						 "min", BACKUP_KEEP_MIN));
	json_object_set_new(o, "last_run", lr ? json_deep_copy(lr) : json_null());
	json_object_set_new(o, "last_verify", copy_or_null(json_object_get(b->catalog, "last_verify")));
	if (b->refused)
		json_object_set_new(o, "last_refused", json_string(b->refused));
	json_object_set_new(o, "backups", json_is_array(json_object_get(b->catalog, "backups")) ?
			    json_deep_copy(json_object_get(b->catalog, "backups")) : json_array());
	if (json_object_get(b->catalog, "pgbackrest"))
		json_object_set_new(o, "pgbackrest", json_deep_copy(json_object_get(b->catalog, "pgbackrest")));
	return o;
}

void backup_health(const struct backup_report *r, struct health_report *out)
{
	char d1[32], d2[32];

	if (!r->enabled)
		return;
	if (r->has_good) {
		if (r->age_s < 0)
			health_add(out, HEALTH_DEGRADED, "backup", "backup: the age of the newest good backup's data is "
				   "unknown (%s, taken on a replica that could not date it); the next run records it",
				   r->last_backup);
		else if (r->age_s > r->max_age_s)
			health_add(out, HEALTH_DEGRADED, "backup", "backup: the newest good backup's data is %s old "
				   "(max_age %s)", fmt_duration(r->age_s, d1, sizeof(d1)),
				   fmt_duration(r->max_age_s, d2, sizeof(d2)));
	} else if (r->up_for_s > r->max_age_s) {
		health_add(out, HEALTH_DEGRADED, "backup", "backup: no good backup after %s of running (max_age)",
			   fmt_duration((long long)r->up_for_s, d1, sizeof(d1)));
	}
	if (r->last_run_failed)
		health_add(out, HEALTH_DEGRADED, "backup", "backup: the last run failed: %s",
			   r->last_error ? r->last_error : "see the log");
	for (size_t i = 0; i < r->n_bad; i++)
		health_add(out, HEALTH_DEGRADED, "backup", "backup: %s is not good: %s", r->bad[i].name,
			   r->bad[i].problem);
}
