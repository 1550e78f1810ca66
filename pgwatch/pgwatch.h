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

#include "conf/conf.h"
#include "lib/common.h"

enum pg_state {
	PG_STATE_NONE,               /* this node runs no Postgres */
	PG_STATE_WAITING_FOR_TUNNEL, /* not started: the hub handshake was never fresh */
	PG_STATE_WAITING_FOR_FIREWALL, /* not started: our nftables table is not in force */
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
 * shows in pgwatch_json() (state, clone progress).
 * Return: 0; -ENOTSUP on a primary or a node without Postgres; -EAGAIN
 * before Postgres was first started; -EBUSY while a bootstrap or reinit
 * runs; -EXDEV when the data directory is a mount point (it cannot be
 * moved aside).
 */
int pgwatch_reinit(struct pgwatch *pw, char *aside, size_t size, const char **why);

enum pg_state pgwatch_state(const struct pgwatch *pw);
const char *pg_state_name(enum pg_state st);

/**
 * pgwatch_json() - this node's Postgres and replication view.
 * @pw: the watcher.
 *
 * Return: a new object: {state, reason, role, listen{...}, observed_at,
 * probe{...} (raw figures from the last good probe, with their age),
 * replication{...} (one entry per configured spoke, "absent" when a replica
 * is not connected)}. The caller owns it.
 */
json_t *pgwatch_json(const struct pgwatch *pw);

/* pgwatch_health() - 0 ok, 1 degraded, 2 critical; appends reasons. */
int pgwatch_health(const struct pgwatch *pw, json_t *reasons);

/**
 * pg_clone_text() - a clone's progress for people: "41% (190.0 MiB of
 * 455.0 MiB, ~12s left)", "190.0 MiB so far", or its phase while nothing
 * was streamed yet.
 * @clone: a "clone" object of pgwatch_json() (phase, done_bytes, total_bytes, eta_s).
 * @buf: output.
 * @size: its size.
 *
 * Return: @buf.
 */
const char *pg_clone_text(const json_t *clone, char *buf, size_t size);

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
