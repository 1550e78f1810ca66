/* SPDX-License-Identifier: MIT */
/*
 * Backups into backup.dir (/var/backups). This header holds the pure parts
 * every run depends on, unit-tested with a fake clock: when the next run
 * is due, and which good backups retention keeps. Time is UTC seconds
 * throughout (schedules are UTC; DST never moves a backup).
 */
#ifndef SUP_BACKUP_H
#define SUP_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "child/child.h"
#include "conf/conf.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"

/**
 * backup_jitter_s() - this node's fixed offset within the schedule's jitter.
 * @s: the schedule.
 * @node: the node's name.
 *
 * A hash of the name, so nodes spread out and a node's time is the same
 * across restarts (a random draw at every start could skip or double a
 * run). Return: seconds in [0, s->jitter_s).
 */
uint32_t backup_jitter_s(const struct conf_schedule *s, const char *node);

/**
 * backup_next_run() - the first scheduled time strictly after @now.
 * @s: the schedule: "daily HH:MM" (UTC), or an interval aligned to the
 *     epoch ("every 6h" runs at 00:00, 06:00, ... UTC), plus jitter.
 * @node: the node's name (for the jitter).
 * @now: UTC seconds.
 *
 * Return: UTC seconds.
 */
int64_t backup_next_run(const struct conf_schedule *s, const char *node, int64_t now);

/* What retention keeps, besides the newest good backup. */
struct backup_keep {
	uint32_t daily;    /* the newest backup of each of the last N days that have one */
	uint32_t weekly;   /* ... of the last N ISO weeks */
	uint32_t monthly;  /* ... of the last N calendar months */
	uint32_t min;      /* the N newest, whatever their age */
};

#define BACKUP_KEEP_MIN 2

/**
 * backup_retention() - which good backups to keep.
 * @started: start times (UTC seconds) of the good backups, any order. Only
 *           good ones (manifest present, checksum matching): a bad or
 *           partial backup never counts towards a period.
 * @n: how many.
 * @keep: the policy.
 * @out: receives, per backup, true to keep it.
 *
 * The newest good backup is always kept, and so are the @keep->min newest
 * (at least one), so a run of failures can never age the last good ones
 * away. Periods count back from the newest backup, not from the clock, so
 * a node that was down for a month keeps what it had.
 * Return: how many are kept.
 */
size_t backup_retention(const int64_t *started, size_t n, const struct backup_keep *keep, bool *out);

/* ---- the age of a backup's data (backup/asof.c), pure, unit-tested ---------
 *
 * A backup is as old as its data, not as its files. pg_dump takes its
 * snapshot when it starts, and on a replica that snapshot is the replay
 * position of that moment: a replica hours behind its upstream makes new
 * backups of old data. A run measures where the data stands just before
 * its first dump (the dumps' snapshots can only be newer: replay never goes
 * back, so this is a lower bound), records it in the manifest, and a
 * replica too far behind takes no backup. Unknown is null, never 0.
 */

/* Positive, documented outcomes of backup_lag_verdict(). */
#define BACKUP_E_BEHIND 1   /* the replica's data is further behind than allowed */
#define BACKUP_E_UNDATED 2  /* the replica cannot tell how old its data is */

/**
 * backup_position() - the data's as-of time and a replica's lag, from raw figures.
 * @raw: what the run's position query returned (backup/run.c): {now,
 *       in_recovery, replay_paused, backlog_bytes (received, not yet
 *       replayed), last_replay_at (the last replayed commit), receiver:
 *       null or {status, upstream_lag_bytes (the upstream's WAL end as of
 *       its last message, minus our replay position), last_msg_sent_at,
 *       since_last_msg_s}}; times in UTC seconds, null when unknown.
 *
 * On a primary the data is as of now. A replica that has replayed all the
 * WAL its streaming upstream reported is current as of the upstream's last
 * message (an idle primary commits nothing, so the last replayed commit's
 * time would be old although the data is not). Otherwise the data holds
 * every transaction up to the last replayed commit, and perhaps a little
 * more; with no replayed commit since the replica started, it is unknown.
 *
 * Return: a new object {measured_at, as_of (UTC seconds or null),
 * as_of_source ("primary", "caught_up", "last_replayed_commit" or null),
 * replica_lag (null on a primary, else {bytes, seconds, receiver,
 * replay_paused, backlog_bytes, since_last_msg_s}, each null when
 * unknown; a receiver that is not streaming leaves the lag unknown)}.
 */
json_t *backup_position(const json_t *raw);

/**
 * backup_lag_verdict() - may a backup be taken at this position?
 * @pos: backup_position()'s result.
 * @max_lag_s: backup.max_replica_lag.
 * @why: receives the reason when not (and a short note when yes).
 * @size: its size.
 *
 * The lag is replica_lag.seconds when known, else how old the data is at
 * least (measured_at - as_of): with no receiver the upstream may have
 * written nothing since, but that cannot be told from here.
 * Return: 0 (a primary, or a replica within the bound), BACKUP_E_BEHIND,
 * or BACKUP_E_UNDATED.
 */
int backup_lag_verdict(const json_t *pos, uint32_t max_lag_s, char *why, size_t size);

/**
 * backup_manifest_as_of() - a catalog entry's data time, read from its manifest.
 * @manifest: the parsed manifest.json.
 * @entry: receives as_of, as_of_source and replica_lag.
 *
 * Manifests written before as_of was recorded: a primary's data is as of
 * started_at (its dumps' snapshots are later); a replica's is unknown.
 */
void backup_manifest_as_of(const json_t *manifest, json_t *entry);

/**
 * backup_data_age() - how old a backup's data is.
 * @entry: a catalog entry (or a manifest) with as_of.
 * @now: UTC seconds.
 * @age: receives the age in seconds, 0 when as_of is ahead of @now (two clocks).
 *
 * Return: true when as_of is known.
 */
bool backup_data_age(const json_t *entry, int64_t now, int64_t *age);

/* ---- runs: `supervisor backup run|verify` (backup/run.c) ----------------
 *
 * A run is a child process of the daemon (or started by hand), so nothing
 * it does blocks the loop. It starts as root, prepares the directories,
 * takes the lock (flock on DIR/.lock: the kernel drops it when the run
 * dies, even by SIGKILL), then drops to the postgres user. Everything is
 * written under DIR/NODE/.inprogress/ and becomes a backup only by one
 * rename of a verified directory whose manifest is inside it; whatever a
 * dead run left under .inprogress/ is swept by the next one.
 */

/* Exit codes of a run, which the daemon turns into its report. */
#define BACKUP_EXIT_OK 0
#define BACKUP_EXIT_FAILED 1
#define BACKUP_EXIT_NO_SPACE 73  /* EX_CANTCREAT: the precheck refused */
#define BACKUP_EXIT_BUSY 75      /* EX_TEMPFAIL: another run holds the lock */
#define BACKUP_EXIT_BEHIND 69    /* EX_UNAVAILABLE: a replica too far behind (max_replica_lag) */

enum backup_mode {
	BACKUP_MODE_RUN,     /* take a backup, verify, commit, re-check all, retention */
	BACKUP_MODE_VERIFY,  /* sweep partials, re-hash every backup, write the catalog */
};

struct backup_run_opts {
	enum backup_mode mode;
	const char *run_id;   /* recorded in the catalog, so the daemon knows it is its run */
	bool no_precheck;     /* operator's override of the free-space estimate */
	bool allow_lag;       /* operator's override of max_replica_lag (the age stays honest) */
};

/**
 * backup_run() - one run for this node, synchronously (a child's main).
 * @conf: the configuration (this node's backup and postgres settings).
 * @opts: what to do.
 *
 * Writes DIR/NODE/catalog.json (the backups, each with its verification,
 * and the run's result) except when another run holds the lock.
 * Return: a BACKUP_EXIT_* code.
 */
int backup_run(const struct conf *conf, const struct backup_run_opts *opts);

/**
 * backup_restore() - restore a verified backup into a running, fresh cluster.
 * @conf: the configuration (where backups are).
 * @name: the backup's name, or NULL for the newest good one.
 * @conninfo: libpq connection string of the target (its "postgres" database).
 *
 * Checks the manifest's checksums first; applies the globals, then each
 * database with pg_restore --exit-on-error (--create, so an existing
 * database of that name makes it stop rather than merge).
 * Return: 0, or 1 with the reason on stderr.
 */
int backup_restore(const struct conf *conf, const char *name, const char *conninfo);

/* backup_catalog() - this node's backups, every checksum re-read now (blocking). */
json_t *backup_catalog(const struct conf *conf);

/* ---- pure helpers (backup/catalog.c, backup/pgbackrest.c), unit-tested ---- */

/* backup_name() - "20261122T030000Z" for @t (UTC). @out: at least 17 bytes. */
void backup_name(int64_t t, char *out, size_t size);
/* backup_name_valid() - whether a directory entry is a backup's name. */
bool backup_name_valid(const char *s);
/* backup_db_file() - "db_app%2Ex.dump": a database name made safe as a file name. Caller frees. */
char *backup_db_file(const char *db);

/**
 * backup_manifest_check() - compare a manifest with what is on disk.
 * @manifest: the parsed manifest.json.
 * @actual: {"file name": {"size": N, "sha256": "hex"}} measured now.
 * @problem: receives a static-lifetime or @manifest-owned reason when bad.
 *
 * Return: true when every file listed is there with its size and checksum,
 * every tool exited 0, and the manifest is complete.
 */
bool backup_manifest_check(const json_t *manifest, const json_t *actual, const char **problem);

/**
 * backup_pgbackrest_verify_ok() - read `pgbackrest verify` text output.
 * @text: its stdout (it exits 0 even when it found corruption).
 * @problem: receives a short reason (static storage) when not ok.
 *
 * Return: true only for "status: ok" with no invalid or missing file.
 */
bool backup_pgbackrest_verify_ok(const char *text, const char **problem);

/**
 * backup_pgbackrest_info() - the figures health needs, from `info --output=json`.
 * @text: the JSON.
 * @out: receives {status_code, status, backups[{label, type, started_at,
 *       finished_at, size_bytes, error}]} (new reference).
 *
 * Return: 0, or -EINVAL when the text is not the expected document.
 */
int backup_pgbackrest_info(const char *text, json_t **out);

/* backup_pgbackrest_conf_text() - pgBackRest's configuration for this node. Caller frees. */
char *backup_pgbackrest_conf_text(const struct conf *conf);
/* backup_pgbackrest_conf_path() - where it lives (DIR/pgbackrest/pgbackrest.conf). Caller frees. */
char *backup_pgbackrest_conf_path(const struct conf *conf);
/* backup_archive_command() - archive_command for the method, or NULL (pg_dump). Caller frees. */
char *backup_archive_command(const struct conf *conf);

/* ---- the daemon's side (backup/sched.c) ------------------------------------ */

struct backup;

/* What the scheduler needs from the rest of the daemon. */
struct backup_env {
	const char *self_exe;   /* this binary, to start runs */
	const char *conf_path;  /* the cluster file runs load */
	/* postgres_ready: may a run start now? If not, @why says why. */
	bool (*postgres_ready)(void *data, const char **why);
	void *data;
};

/**
 * backup_new() - schedule this node's backups (nothing on the hub).
 * @loop: the event loop.
 * @children: where runs are supervised.
 * @conf: the configuration (replace with backup_set_conf() on reload).
 * @env: see struct backup_env (copied).
 * @out: receives the object.
 *
 * Starts a verify run at once (sweeps partials, checks every backup).
 * Return: 0 or -errno.
 */
int backup_new(struct loop *loop, struct child_set *children, const struct conf *conf,
	       const struct backup_env *env, struct backup **out) _must_check_;
struct backup *backup_free(struct backup *b);
void backup_set_conf(struct backup *b, const struct conf *conf);

/**
 * backup_now() - start a run now (`ctl backup-now`).
 * @b: the scheduler.
 * @why: receives why not, when it cannot start.
 *
 * Return: 0 when started, -EBUSY when a run is going, -EAGAIN when Postgres
 * is not ready, -ENOTSUP on the hub.
 */
int backup_now(struct backup *b, const char **why);

/* ---- the typed report (the supervisor's snapshot) ------------------------------- */

enum backup_state {
	BACKUP_STATE_NONE,      /* no good backup yet, none due */
	BACKUP_STATE_WAITING,   /* a run is due, waiting (e.g. for Postgres) */
	BACKUP_STATE_RUNNING,
	BACKUP_STATE_VERIFYING,
	BACKUP_STATE_OK,        /* the newest good backup's data is within max_age */
	BACKUP_STATE_STALE,     /* it is older, or its age is unknown */
	BACKUP_STATE_FAILED,    /* the last run failed */
};

/* backup_state_name() - "none", "waiting", "running", ..., as in /status. */
const char *backup_state_name(enum backup_state st);

/* A backup on disk that did not verify. */
struct backup_bad {
	const char *name, *problem;
};

/*
 * What the scheduler knows. Strings and the replica_lag record borrow from
 * the scheduler's catalog: a report lives for one loop turn. Unknown
 * figures are NAN (doubles) or -1 (ages), never 0.
 */
struct backup_report {
	bool enabled;                 /* a spoke with backups; the rest is zero on the hub */
	enum backup_state state;
	enum conf_backup_method method;
	int64_t next_at;              /* wall clock, UTC seconds */
	size_t count, good_count;
	bool has_good;
	double last_ok_at;            /* the newest good backup's end (UTC seconds) */
	int64_t age_s;                /* its data's age; -1: unknown */
	double as_of;                 /* the time its data is from; NAN: unknown */
	const char *as_of_source;     /* "primary", "caught_up", "last_replayed_commit" */
	const json_t *replica_lag;    /* its manifest's replica_lag record, as stored; NULL */
	double size_bytes;
	const char *last_backup;      /* its name */
	bool last_run_failed;
	const char *last_error;       /* the last run's error, only when it failed (may be NULL then too) */
	uint32_t max_age_s;
	bool running;
	int64_t running_since;        /* wall clock of the running run's start */
	const char *waiting_for;      /* why a due run waits; NULL */
	unsigned runs, failed_runs;
	uint64_t up_for_s;            /* how long the scheduler has run */
	struct backup_bad *bad;       /* owned: backups that did not verify */
	size_t n_bad;
};

/* backup_report() - fill @out; clear it with backup_report_clear() in the same loop turn. */
void backup_report(const struct backup *b, struct backup_report *out);
void backup_report_clear(struct backup_report *r);
/*
 * backup_health() - the newest good backup's data too old (or of unknown
 * age), none at all after max_age of running, a failed last run, a backup
 * that did not verify: degraded; component "backup".
 */
void backup_health(const struct backup_report *r, struct health_report *out);
/*
 * backup_catalog_json() - what `ctl backups` lists beyond the report: dir,
 * schedule, keep, last_run, last_verify, last_refused, every backup with
 * its verification, pgbackrest's info. A listing of the catalog on disk.
 * Return: a new object, or JSON null on the hub. Caller owns it.
 */
json_t *backup_catalog_json(const struct backup *b);

#endif
