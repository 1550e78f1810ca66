/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL on a spoke: the lifecycle (bootstrap and a supervised
 * postmaster, started only once the hub tunnel is fresh, bound only to the
 * overlay IP) and the health probes (non-blocking libpq on the event loop,
 * a fresh connection per probe so a frozen postmaster shows, every figure
 * with the time it was observed).
 *
 * Bootstrap steps are one-shot children (initdb, pg_basebackup), never work
 * in the loop; nothing is ever deleted: a data directory that is not empty
 * is used as it is, or refused with the reason and the fix.
 */
#ifndef SUP_PGWATCH_H
#define SUP_PGWATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "child/child.h"
#include "conf/conf.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"

enum pg_state {
	PG_STATE_NONE,               /* this node runs no Postgres */
	PG_STATE_WAITING_FOR_TUNNEL, /* not started: the hub handshake was never fresh */
	PG_STATE_WAITING_FOR_FIREWALL, /* not started: our nftables table is not in force */
	PG_STATE_WAITING_FOR_LEADER, /* held by high availability: no leader known, or demoting */
	PG_STATE_BOOTSTRAPPING,      /* initdb or pg_basebackup running */
	PG_STATE_STARTING,           /* postmaster started, not accepting yet */
	PG_STATE_RUNNING,            /* accepting connections, probes answer */
	PG_STATE_UNRESPONSIVE,       /* running, but probes time out */
	PG_STATE_STOPPED,            /* exited; restarting or shutting down */
	PG_STATE_FAILED,             /* cannot go on by itself: see the reason */
};

struct pgwatch;

/*
 * What the daemon tells pgwatch about its neighbours, so that pgwatch
 * includes no other module. The archive command is a function rather
 * than a string: it follows a reload's new backup method without a
 * second call to remember (the daemon passes backup_archive_command()).
 */
typedef char *pgwatch_archive_command_fn(const struct conf *conf);
struct pgwatch_links {
	/*
	 * A child Postgres stops before (and starts after) when it is
	 * supervised in the same set (the overlay's userspace WireGuard);
	 * NULL: none. Not copied: a static name.
	 */
	const char *stop_before;
	/* archive_command for @conf, or NULL for none (caller frees); NULL: never archive. */
	pgwatch_archive_command_fn *archive_command;
};

/**
 * pgwatch_new() - manage this node's Postgres (a no-op on the hub).
 * @loop: the event loop.
 * @children: where initdb, pg_basebackup and postgres are supervised.
 * @conf: the configuration (replace with pgwatch_set_conf() on reload).
 * @links: the neighbours (copied; NULL: none).
 * @out: receives the object.
 *
 * Return: 0 or -errno.
 */
int pgwatch_new(struct loop *loop, struct child_set *children, const struct conf *conf,
		const struct pgwatch_links *links, struct pgwatch **out) _must_check_;
struct pgwatch *pgwatch_free(struct pgwatch *pw);
void pgwatch_set_conf(struct pgwatch *pw, const struct conf *conf);
/*
 * pgwatch_tunnel() - the hub tunnel's freshness, on every change. Postgres
 * starts the first time the tunnel is fresh while the firewall is applied;
 * while it is fresh, an absent replica's reason points at the replica and
 * the hub's forwarding.
 */
void pgwatch_tunnel(struct pgwatch *pw, bool fresh);
/* pgwatch_firewall() - whether the firewall is in force (@why: if not, why). */
void pgwatch_firewall(struct pgwatch *pw, bool applied, const char *why);

/**
 * pgwatch_reinit() - re-clone this replica: stop Postgres, move the data
 * directory aside (kept, never deleted), clone again from the upstream.
 * @pw: the watcher.
 * @aside: receives the path the data directory is moved to.
 * @size: its size.
 * @why: on refusal, why (static text).
 *
 * Returns once the stop is under way; the rest follows on the loop and
 * shows in pgwatch_report() (state, clone progress).
 * Return: 0; -ENOTSUP on a primary or a node without Postgres; -EAGAIN
 * before Postgres was first started; -EBUSY while a bootstrap or reinit
 * runs; -EXDEV when the data directory is a mount point (it cannot be
 * moved aside).
 */
int pgwatch_reinit(struct pgwatch *pw, char *aside, size_t size, const char **why);

/**
 * pgwatch_hold() - keep Postgres stopped (high availability), or let it run.
 * @pw: the watcher.
 * @hold: true: stop Postgres if it runs (checkpoint, fast shutdown) and do
 *        not start it; false: start it as the current configuration says.
 * @why: shown as the reason while held (copied).
 * Holding before the first start is the boot gate: with high availability
 * Postgres waits until the store has named a leader.
 */
void pgwatch_hold(struct pgwatch *pw, bool hold, const char *why);
/**
 * pgwatch_fence() - hold Postgres stopped at once: no CHECKPOINT first, a
 * fast shutdown now (sessions end, no new ones).
 * @pw: the watcher.
 * @why: the reason shown (copied).
 */
void pgwatch_fence(struct pgwatch *pw, const char *why);
/* pgwatch_stopped() - held, and no postmaster or backend of it is left. */
bool pgwatch_stopped(const struct pgwatch *pw);

/* The last pg_rewind of this run (high availability's rejoin of a former primary). */
struct pg_rewind_note {
	bool started, none_required, failed; /* failed: fell back to a new clone, old directory kept */
	bool wal_missing;                 /* pg_rewind said the WAL it needs is gone (else: retried) */
	int64_t at;                       /* wall clock, seconds */
	uint64_t diverged_lsn, end_lsn;   /* where the timelines parted; this node's last checkpoint */
	double discarded_bytes;           /* end - diverged: at least this much WAL was discarded */
	char aside[320];                  /* its pg_wal as it was, kept there; "" when nothing diverged */
};
/* pgwatch_last_rewind() - the last rewind (started false: none in this run). */
const struct pg_rewind_note *pgwatch_last_rewind(const struct pgwatch *pw);

enum pg_state pgwatch_state(const struct pgwatch *pw);
const char *pg_state_name(enum pg_state st);

/* ---- the typed report ------------------------------------------------------------
 *
 * What pgwatch knows, as plain C for the supervisor's snapshot: figures
 * Postgres did not report (or that mean nothing in the current state) are
 * NAN, "unknown", never 0; tri-state flags are PG_TRI_*. Strings and arrays
 * borrow from the watcher and the conf: a report lives for one loop turn
 * (build, render, clear), never across a reload or a probe.
 */

enum pg_tri { PG_TRI_NULL = -1, PG_TRI_FALSE = 0, PG_TRI_TRUE = 1 };

/* A clone (pg_basebackup) in progress: ours, or a downstream's seen from the primary. */
struct pg_clone {
	bool active;
	const char *phase;     /* pg_stat_progress_basebackup.phase; NULL for ours (from -P lines) */
	double done_bytes;     /* NAN: unknown */
	double total_bytes;    /* NAN: not estimated */
	double elapsed_s;
	double eta_s;          /* NAN: no rate yet */
};

/* pg_stat_wal_receiver, as this replica sees its upstream. */
struct pg_receiver {
	const char *status, *sender_host, *slot_name, *latest_end_lsn;
	double sender_port, received_tli, since_last_msg_s, lag_bytes;
};

/* A physical replication slot on this node. */
struct pg_slot {
	const char *slot_name, *wal_status;
	enum pg_tri active;
	double safe_wal_size, retained_bytes;
};

/* pg_stat_archiver (archive_mode on). */
struct pg_archiver {
	double archived_count, failed_count, last_archived_at, last_failed_at;
	const char *last_failed_wal;
	bool failing;          /* the last failure is newer than the last success */
};

/* Whose eyes a replication row is seen through. */
enum pg_member_view {
	PG_MEMBER_UNSEEN,      /* another spoke this node does not stream to: link unknown here */
	PG_MEMBER_DOWNSTREAM,  /* a replica of this primary: its walsender (or its absence) */
	PG_MEMBER_SELF,        /* this node, not (yet) probed as a replica */
	PG_MEMBER_SELF_REPLICA,/* this node as a replica: its WAL receiver */
};

/* One configured spoke's replication row. */
struct pg_member {
	const struct conf_node *node;
	const char *upstream;  /* its upstream's name, NULL for the primary */
	bool self;
	enum pg_member_view view;
	const char *link;      /* "streaming", "absent", "cloning", "not_streaming", ...; NULL: unknown here */
	char slot[64];         /* its slot's name (downstream, self replica) */
	const struct pg_slot *slot_row;  /* downstream: that slot on this node, or NULL */
	bool connected;        /* downstream: a walsender row exists */
	const char *sync_state;
	double send_lag_bytes, flush_lag_bytes, replay_lag_bytes, replay_lag_s, last_msg_age_s;
	bool idle;             /* streaming and caught up: Postgres' NULL lag read as 0 */
	const char *sender;    /* self replica: the upstream host it streams from */
	struct pg_clone clone;
	enum pg_state pg_state;/* self only */
	double timeline;       /* self only */
};

struct pg_report {
	enum pg_state state;
	const char *reason;                  /* "" when none */
	const struct conf_node *self;
	enum conf_pg_role role;              /* in the cluster file */
	char listen[32];                     /* "IP:PORT" configured */
	const char *const *bound;            /* addresses Postgres listens on; NULL: not read yet */
	size_t n_bound;
	bool probed;                         /* a probe answered at least once */
	int64_t observed_at_ms;              /* wall clock of the last good probe */
	double observed_age_s;
	const char *sysid, *flush_lsn, *receive_lsn, *replay_lsn;
	double version, timeline, replay_delay_s;
	enum pg_tri in_recovery, replay_paused;
	bool has_receiver;
	struct pg_receiver receiver;
	struct pg_slot *slots;               /* owned by the report */
	size_t n_slots;
	bool has_archiver;
	struct pg_archiver archiver;
	const char *probe_error;             /* NULL when the last probe answered */
	struct pg_clone clone;               /* this node's own clone */
	unsigned bootstraps_redone;
	struct pg_member *members;           /* owned; one per configured spoke */
	size_t n_members;
	/* what health needs beyond the figures */
	uint64_t paused_for_ms, rx_down_for_ms; /* as a replica: replay paused / receiver down so long */
	bool wal_gone;                       /* the upstream said our WAL is gone, within a minute */
	bool tunnel_fresh_now;
};

/**
 * pgwatch_report() - this node's Postgres and replication, typed.
 * @pw: the watcher.
 * @out: filled; free its arrays with pg_report_clear() in the same loop turn.
 */
void pgwatch_report(const struct pgwatch *pw, struct pg_report *out);
/* pg_report_clear() - free what pgwatch_report() allocated. */
void pg_report_clear(struct pg_report *r);
/* pg_observed_role() - "primary"/"replica" as probed; NULL before a probe. */
const char *pg_observed_role(const struct pg_report *r);
/**
 * pgwatch_health() - judge a report: state, listen addresses, each
 * replication row, slots, archiving, the role against the file.
 * @r: the report.
 * @conf: the configuration it was made with (max_replica_lag, names).
 * @out: findings are added here (component "postgres" or "replication").
 */
void pgwatch_health(const struct pg_report *r, const struct conf *conf, struct health_report *out);
/**
 * pg_clone_text() - a clone's progress for people: "41% (190.0 MiB of
 * 455.0 MiB, ~12s left)", "190.0 MiB so far", or its phase while nothing
 * was streamed yet.
 * @clone: the progress.
 * @buf: output.
 * @size: its size.
 *
 * Return: @buf.
 */
const char *pg_clone_text(const struct pg_clone *clone, char *buf, size_t size);
/* pg_control's DBState (src/include/catalog/pg_control.h). */
enum pg_db_state {
	PG_DB_STARTUP,
	PG_DB_SHUTDOWNED,
	PG_DB_SHUTDOWNED_IN_RECOVERY,
	PG_DB_SHUTDOWNING,
	PG_DB_IN_CRASH_RECOVERY,
	PG_DB_IN_ARCHIVE_RECOVERY,
	PG_DB_IN_PRODUCTION,
};

/* What high availability reads from a stopped data directory's pg_control. */
struct pg_control {
	uint64_t sysid;
	enum pg_db_state state;
	uint64_t checkpoint_lsn;   /* the latest checkpoint record (a clean stop: the shutdown one) */
	uint32_t timeline;
};

/**
 * pg_control_read() - read @data_dir/global/pg_control (pgwatch/role.c).
 * @data_dir: the data directory.
 * @out: filled on success.
 * Return: 0, -errno when it cannot be opened, -EIO when it is short.
 */
int pg_control_read(const char *data_dir, struct pg_control *out);
/* pg_control_was_primary() - the directory was last run as a primary (not a standby). */
bool pg_control_was_primary(const struct pg_control *c);
/* pg_lsn_text() - "16/B374D848". Return: @buf. */
const char *pg_lsn_text(uint64_t lsn, char *buf, size_t size);
/* pg_lsn_parse() - parse "16/B374D848". Return: 0 or -EINVAL. */
int pg_lsn_parse(const char *s, uint64_t *out);

/* Pure helpers (pgwatch/files.c), unit-tested. */
/* pg_hba_text() - the generated pg_hba for this node. Caller frees. */
char *pg_hba_text(const struct conf *conf, const char *local_extra);
/*
 * pg_settings_text() - the generated settings include file, archiving with
 * @archive_command when it is not NULL. Caller frees.
 */
char *pg_settings_text(const struct conf *conf, const char *passfile, const char *archive_command);
/* pg_slot_name() - "spoke_b" for "spoke-b" (slot names allow [a-z0-9_]). */
void pg_slot_name(const char *node, char *out, size_t size);

/* How the postmaster is stopped (pgwatch/stop.c), every part in ms. */
struct pg_stop_plan {
	uint32_t checkpoint_ms; /* the CHECKPOINT before the first signal, at most */
	uint32_t fast_ms;       /* SIGINT (fast shutdown), then */
	uint32_t immediate_ms;  /* SIGQUIT (immediate shutdown), then SIGKILL */
};

/**
 * pg_stop_plan() - the postmaster's stop plan, cut to fit a shutdown budget.
 * @budget_ms: supervisor.shutdown_budget (1 s .. 300 s).
 * @out: the plan; its sum stays below @budget_ms, leaving a tenth of it
 *       (at most 2 s) for what stops after Postgres.
 *
 * 25 s gives 8 s + 10 s + 5 s.
 */
void pg_stop_plan(uint32_t budget_ms, struct pg_stop_plan *out);
/* pg_stop_steps() - @plan as the child engine's stop steps: SIGINT, then SIGQUIT. */
void pg_stop_steps(const struct pg_stop_plan *plan, struct child_stop_step steps[2]);

#endif
