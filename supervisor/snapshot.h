/* SPDX-License-Identifier: MIT */
/*
 * Private to supervisor/: the node's health snapshot and its renderers.
 *
 * The loop takes a snapshot (once a second for the status port, and for
 * each ctl request, so a reply shows the effect of what was just done):
 * every module's typed report, the children, the disks, and the health of
 * each part judged from those reports. /status, /metrics, /healthz,
 * /primary, /replica and every ctl reply are rendered from a snapshot and
 * only from it: no renderer reads a module, and no decision is taken by
 * comparing rendered text. A snapshot borrows module strings, so it lives
 * for one loop turn: take, render, clear.
 */
#ifndef SUP_SNAPSHOT_H
#define SUP_SNAPSHOT_H

#include <jansson.h>

#include "supervisor/daemon.h"

/* The parts of a node's health, in the order their reasons are listed. */
enum snap_part {
	SNAP_CHILDREN,
	SNAP_TUNNEL,
	SNAP_POSTGRES,           /* Postgres and replication */
	SNAP_FIREWALL,           /* our table */
	SNAP_FIREWALL_FOREIGN,   /* other firewalls dropping overlay traffic (hub) */
	SNAP_BACKUP,
	SNAP_NODE,               /* shutting down, a failed reload */
	SNAP_PARTS
};

/* snap_part_name() - the part's label in /metrics: "tunnel", "other_firewalls", ... */
const char *snap_part_name(enum snap_part p);

#define SNAP_ALL ((1u << SNAP_PARTS) - 1)
#define SNAP_BIT(p) (1u << (p))

struct disk_usage {
	const char *path;        /* NULL: not applicable (a hub has no data directory) */
	bool known;
	uint64_t free_bytes, size_bytes;
};

struct node_snapshot {
	const struct conf *conf;
	const struct conf_node *self;
	bool hub;
	int64_t time_s;                      /* wall clock when taken */
	uint64_t uptime_s;
	int pid;
	bool pid1;
	const char *conf_path;
	int64_t conf_loaded_at;              /* UTC seconds */
	unsigned reloads;
	const char *last_reload_error;       /* NULL after a good reload */
	bool shutting_down;
	const struct overlay_status *tunnel;
	size_t peers_configured;             /* a spoke has the hub, the hub every spoke */
	const char *primary;                 /* the cluster file's primary; NULL */
	struct pg_report pg;
	struct fw_report fw;
	struct backup_report backup;
	struct child_status *children;       /* owned array */
	size_t n_children;
	struct disk_usage root, data_dir, backup_dir;
	/*
	 * The node's own thresholds, so alerts compare against its setting
	 * rather than a default; NAN where the node has none (the hub runs no
	 * Postgres, a node without backups has no max_age).
	 */
	double fresh_handshake_s;            /* cluster.fresh_handshake */
	double max_replica_lag_s;            /* backup.max_replica_lag: a node running Postgres */
	double backup_max_age_s;             /* backup.max_age: a node with backups */
	json_t *ha;                          /* ha_status(): owned; {"mode": "off"} when off */
	bool ha_enabled, ha_is_leader;
	struct health_report part[SNAP_PARTS];
};

/* snapshot_take() - everything the renderers show, now. Clear with snapshot_clear(). */
void snapshot_take(struct daemon *d, struct node_snapshot *out);
void snapshot_clear(struct node_snapshot *s);
/**
 * snapshot_health() - the worst level among @parts, with their reasons.
 * @s: the snapshot.
 * @parts: SNAP_BIT()s of the parts to judge (SNAP_ALL: the node).
 * @reasons: receives the reasons' texts in order (may be NULL).
 *
 * Return: the level (ok when no part found anything).
 */
enum health snapshot_health(const struct node_snapshot *s, unsigned parts, json_t *reasons);
/* snapshot_max_handshake_age() - the oldest handshake (s); -1 while a configured peer never had one. */
int64_t snapshot_max_handshake_age(const struct node_snapshot *s);
/* snapshot_self_member() - this node's replication row, or NULL (the hub). */
const struct pg_member *snapshot_self_member(const struct node_snapshot *s);

/* ---- renderers (supervisor/render.c): one vocabulary for /status and ctl --json ---- */

/* tunnel{state, interface, backend, link_up, peer_count, fresh_peer_count, max_last_handshake_sec, ...}. */
json_t *render_tunnel(const struct node_snapshot *s);
/* postgres{state, reason, role, listen, observed figures, receiver, slots, archiver, clone, ...}. */
json_t *render_postgres(const struct node_snapshot *s);
/* replication{primary, members[]}: one row per spoke; this node's row also has its tunnel. */
json_t *render_replication(const struct node_snapshot *s);
/* firewall{state, applied_at, rules_hash, repairs, last_error} and, with @detail, the rest (ctl). */
json_t *render_firewall(const struct node_snapshot *s, bool detail);
/* backup{state, last_ok_at, age_s, size_bytes, next_at, ...}; null on a spoke without backups. */
json_t *render_backup(const struct node_snapshot *s);
/* children[{name, state, pid, restarts, last_exit, ...}]. */
json_t *render_children(const struct node_snapshot *s);
/* status_document() - the public /status JSON (no secrets). Caller owns it. */
json_t *status_document(const struct node_snapshot *s);
/**
 * status_line() - the node's health in one line, for the service manager's
 * STATUS= (`systemctl status`): "ok: tunnel fresh (2/2 peers fresh),
 * firewall applied", then ", postgres STATE" on a node that runs it, then
 * every reason ("; tunnel: no handshake yet"); at most STATUS_LINE_MAX bytes.
 * @s: the snapshot.
 *
 * Return: the line; caller frees.
 */
char *status_line(const struct node_snapshot *s);
#define STATUS_LINE_MAX 400
/* metrics_text() - Prometheus text (format 0.0.4) for @s. Caller frees. */
char *metrics_text(const struct node_snapshot *s);
/**
 * snapshot_ready() - whether this node serves as @role now (the load
 * balancers' /primary and /replica): that role in the file and in
 * Postgres, Postgres running, the tunnel fresh and, for a replica, its
 * link streaming.
 * @s: the snapshot.
 * @role: CONF_PG_PRIMARY or CONF_PG_REPLICA.
 * @why: receives the reasons it is not (may be NULL).
 */
bool snapshot_ready(const struct node_snapshot *s, enum conf_pg_role role, json_t *why);

#endif
