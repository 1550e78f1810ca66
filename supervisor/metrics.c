// SPDX-License-Identifier: MIT
/*
 * /metrics in the Prometheus text format (version 0.0.4), rendered from the
 * same snapshot as /status. Peer metrics use the names of the WireGuard
 * exporters (wireguard_latest_handshake_seconds, wireguard_sent_bytes_total,
 * wireguard_received_bytes_total, labelled by interface and public_key)
 * so existing dashboards work; everything else is supervisor_*. A figure
 * that is unknown is left out, never reported as 0.
 */
#include "supervisor/snapshot.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct out {
	FILE *f;
	const char *last;   /* the family whose HELP/TYPE was written last */
};

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	if (o->last && strcmp(o->last, name) == 0)
		return;
	fprintf(o->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	o->last = name;
}

/* A label: its value's backslash, quote and newline escaped, as the format asks. */
static void label(FILE *f, const char *k, const char *v)
{
	fprintf(f, "%s=\"", k);
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/*
 * One sample; @labels are name/value pairs ending in NULL. An unknown
 * figure (NAN) has no sample: absent, never 0.
 */
static void sample(struct out *o, const char *name, double value, ...)
{
	va_list ap;
	const char *k;
	bool first = true;

	if (isnan(value))
		return;
	fputs(name, o->f);
	va_start(ap, value);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		fputc(first ? '{' : ',', o->f);
		label(o->f, k, v);
		first = false;
	}
	va_end(ap);
	if (!first)
		fputc('}', o->f);
	if (value == floor(value) && fabs(value) < 9007199254740992.0)
		fprintf(o->f, " %lld\n", (long long)value);
	else
		fprintf(o->f, " %.6g\n", value);
}

static double flag(bool b)
{
	return b ? 1 : 0;
}

/* The public key of the peer named @name, from the cluster file. */
static const char *peer_key(const struct node_snapshot *s, const char *name)
{
	for (size_t k = 0; k < s->conf->n_nodes; k++)
		if (strcmp(s->conf->nodes[k].name, name) == 0)
			return s->conf->nodes[k].public_key_b64;
	return "";
}

static void tunnel_metrics(struct out *o, const struct node_snapshot *s)
{
	const char *iface = s->conf->cluster.interface;
	const struct overlay_status *ov = s->tunnel;
	size_t i;

	for (i = 0; i < ov->n_peers; i++) {
		const struct overlay_peer_status *p = &ov->peers[i];

		/*
		 * The exporters write 0 for a peer that never handshook; a 0 reads
		 * as 1970 and hides "never" from alerts, so such a peer has no sample.
		 */
		family(o, "wireguard_latest_handshake_seconds", "gauge",
		       "Unix time of the peer's last handshake; absent when there never was one.");
		sample(o, "wireguard_latest_handshake_seconds", p->last_handshake ? (double)p->last_handshake : NAN,
		       "interface", iface, "public_key", peer_key(s, p->name), "peer", p->name, NULL);
	}
	for (i = 0; i < ov->n_peers; i++) {
		family(o, "supervisor_wireguard_handshake_age_seconds", "gauge",
		       "Seconds since the peer's last handshake; absent when there never was one.");
		sample(o, "supervisor_wireguard_handshake_age_seconds",
		       ov->peers[i].age_s >= 0 ? (double)ov->peers[i].age_s : NAN,
		       "interface", iface, "peer", ov->peers[i].name, NULL);
	}
	for (i = 0; i < ov->n_peers; i++) {
		family(o, "supervisor_wireguard_peer_fresh", "gauge",
		       "1 when the peer's last handshake is at most cluster.fresh_handshake old.");
		sample(o, "supervisor_wireguard_peer_fresh", flag(ov->peers[i].state == TUNNEL_FRESH),
		       "interface", iface, "peer", ov->peers[i].name, NULL);
	}
	for (i = 0; i < ov->n_peers; i++) {
		family(o, "wireguard_received_bytes_total", "counter", "Bytes received from the peer.");
		sample(o, "wireguard_received_bytes_total", (double)ov->peers[i].rx_bytes, "interface", iface,
		       "peer", ov->peers[i].name, NULL);
	}
	for (i = 0; i < ov->n_peers; i++) {
		family(o, "wireguard_sent_bytes_total", "counter", "Bytes sent to the peer.");
		sample(o, "wireguard_sent_bytes_total", (double)ov->peers[i].tx_bytes, "interface", iface,
		       "peer", ov->peers[i].name, NULL);
	}
	family(o, "supervisor_wireguard_fresh_handshake_seconds", "gauge",
	       "cluster.fresh_handshake in seconds: a peer's handshake at most this old is fresh.");
	sample(o, "supervisor_wireguard_fresh_handshake_seconds", s->fresh_handshake_s, NULL);
	family(o, "supervisor_tunnel_fresh", "gauge",
	       "1 when this node's tunnel is fresh (spoke: its hub; hub: every spoke).");
	sample(o, "supervisor_tunnel_fresh", flag(ov->state == TUNNEL_FRESH), NULL);
	family(o, "supervisor_tunnel_repairs_total", "counter", "Overlay pieces found missing and restored.");
	sample(o, "supervisor_tunnel_repairs_total", (double)ov->repairs, NULL);
}

/*
 * pg_replication_slots.wal_status as an enum in labels: a sample per known
 * value, 1 for the slot's own. Only for the slots seen here (downstream
 * rows, as slot_retained_bytes); a status Postgres did not report, or one
 * this build does not know, has no sample.
 */
static void slot_wal_status(struct out *o, const struct pg_member *m)
{
	static const char *const known[] = { "reserved", "extended", "unreserved", "lost" };
	const char *ws = m->view == PG_MEMBER_DOWNSTREAM && m->slot_row ? m->slot_row->wal_status : NULL;
	bool found = false;
	size_t k;

	for (k = 0; ws && k < ARRAY_SIZE(known); k++)
		found |= strcmp(ws, known[k]) == 0;
	if (!found)
		return;
	family(o, "supervisor_replication_slot_wal_status", "gauge",
	       "1 for the WAL status of a replica's slot on this node (pg_replication_slots.wal_status), 0 for the others.");
	for (k = 0; found && k < ARRAY_SIZE(known); k++)
		sample(o, "supervisor_replication_slot_wal_status", flag(strcmp(ws, known[k]) == 0),
		       "member", m->node->name, "slot", m->slot, "status", known[k], NULL);
}

static void postgres_metrics(struct out *o, const struct node_snapshot *s)
{
	const struct pg_report *pg = &s->pg;
	const char *seen = pg_observed_role(pg);
	size_t i;

	if (pg->state == PG_STATE_NONE)
		return;
	family(o, "supervisor_postgres_up", "gauge", "1 when Postgres runs and answers probes.");
	sample(o, "supervisor_postgres_up", flag(pg->state == PG_STATE_RUNNING), NULL);
	family(o, "supervisor_postgres_info", "gauge", "Postgres state and roles, as labels.");
	sample(o, "supervisor_postgres_info", 1, "state", pg_state_name(pg->state), "role",
	       conf_pg_role_name(pg->role), "observed_role", seen ? seen : "", NULL);
	family(o, "supervisor_postgres_timeline", "gauge", "Timeline of this node's Postgres.");
	sample(o, "supervisor_postgres_timeline", pg->probed ? pg->timeline : NAN, NULL);
	family(o, "supervisor_postgres_replay_paused", "gauge",
	       "1 when WAL replay is paused on this replica (pg_is_wal_replay_paused); absent when not a replica.");
	sample(o, "supervisor_postgres_replay_paused",
	       pg->probed && pg->in_recovery == PG_TRI_TRUE && pg->replay_paused != PG_TRI_NULL ?
	       flag(pg->replay_paused == PG_TRI_TRUE) : NAN, NULL);
	family(o, "supervisor_replication_max_lag_seconds", "gauge",
	       "backup.max_replica_lag in seconds: a replica further behind is degraded and takes no backup.");
	sample(o, "supervisor_replication_max_lag_seconds", s->max_replica_lag_s, NULL);
	for (i = 0; i < pg->n_members; i++) {
		const struct pg_member *m = &pg->members[i];

		family(o, "supervisor_replication_lag_bytes", "gauge",
		       "Replay lag of a replica in bytes; absent when unknown.");
		sample(o, "supervisor_replication_lag_bytes", m->replay_lag_bytes, "member", m->node->name,
		       "link", m->link ? m->link : "", NULL);
	}
	for (i = 0; i < pg->n_members; i++) {
		family(o, "supervisor_replication_lag_seconds", "gauge",
		       "Replay lag of a replica in seconds; absent when unknown (never 0 for a broken link).");
		sample(o, "supervisor_replication_lag_seconds", pg->members[i].replay_lag_s, "member",
		       pg->members[i].node->name, NULL);
	}
	for (i = 0; i < pg->n_members; i++) {
		const struct pg_member *m = &pg->members[i];

		family(o, "supervisor_replication_streaming", "gauge",
		       "1 when the replica's link is streaming (rows this node can see).");
		if (m->link)
			sample(o, "supervisor_replication_streaming", flag(strcmp(m->link, "streaming") == 0),
			       "member", m->node->name, NULL);
	}
	for (i = 0; i < pg->n_members; i++) {
		family(o, "supervisor_replication_clone_streamed_bytes", "gauge",
		       "Bytes a replica's clone (pg_basebackup) has streamed so far; only while cloning.");
		sample(o, "supervisor_replication_clone_streamed_bytes",
		       pg->members[i].clone.active ? pg->members[i].clone.done_bytes : NAN,
		       "member", pg->members[i].node->name, NULL);
	}
	for (i = 0; i < pg->n_members; i++) {
		family(o, "supervisor_replication_clone_total_bytes", "gauge",
		       "Estimated size of a replica's clone; only while cloning, when estimated.");
		sample(o, "supervisor_replication_clone_total_bytes",
		       pg->members[i].clone.active ? pg->members[i].clone.total_bytes : NAN,
		       "member", pg->members[i].node->name, NULL);
	}
	family(o, "supervisor_postgres_bootstraps_redone_total", "counter",
	       "Unfinished bootstraps (initdb, pg_basebackup) found in the data directory, removed and redone.");
	sample(o, "supervisor_postgres_bootstraps_redone_total", pg->bootstraps_redone, NULL);
	for (i = 0; i < pg->n_members; i++) {
		const struct pg_member *m = &pg->members[i];

		if (m->view != PG_MEMBER_DOWNSTREAM)
			continue;
		family(o, "supervisor_replication_slot_retained_bytes", "gauge",
		       "WAL a replica's slot holds back on this node.");
		sample(o, "supervisor_replication_slot_retained_bytes",
		       m->slot_row ? m->slot_row->retained_bytes : NAN, "member", m->node->name, "slot", m->slot, NULL);
	}
	for (i = 0; i < pg->n_members; i++)
		slot_wal_status(o, &pg->members[i]);
}

static void disk_metric(struct out *o, const struct disk_usage *u)
{
	if (u->path)
		sample(o, "supervisor_disk_free_bytes", u->known ? (double)u->free_bytes : NAN, "dir", u->path, NULL);
}

static void node_metrics(struct out *o, const struct node_snapshot *s)
{
	const struct fw_status *fw = s->fw.st;
	static const enum health levels[] = { HEALTH_OK, HEALTH_DEGRADED, HEALTH_CRITICAL };
	enum health overall = snapshot_health(s, SNAP_ALL, NULL);
	size_t i;

	family(o, "supervisor_info", "gauge", "Build and node, as labels.");
	sample(o, "supervisor_info", 1, "node", s->self->name, "role", s->hub ? "hub" : "spoke",
	       "version", SUPERVISOR_VERSION, NULL);
	family(o, "supervisor_health", "gauge", "1 for the node's overall health, 0 for the others.");
	for (i = 0; i < ARRAY_SIZE(levels); i++)
		sample(o, "supervisor_health", flag(overall == levels[i]), "state", health_name(levels[i]), NULL);
	family(o, "supervisor_health_reasons", "gauge",
	       "Reasons /status lists for a part of the node's health (a count).");
	for (i = 0; i < SNAP_PARTS; i++)
		sample(o, "supervisor_health_reasons", (double)s->part[i].n_reasons, "part", snap_part_name(i), NULL);
	family(o, "supervisor_uptime_seconds", "gauge", "Seconds since the supervisor started.");
	sample(o, "supervisor_uptime_seconds", (double)s->uptime_s, NULL);
	family(o, "supervisor_disk_free_bytes", "gauge", "Free bytes for unprivileged use.");
	disk_metric(o, &s->root);
	disk_metric(o, &s->data_dir);
	disk_metric(o, &s->backup_dir);
	family(o, "supervisor_firewall_applied", "gauge", "1 when our nftables table is in force and verified.");
	sample(o, "supervisor_firewall_applied", flag(fw->state == FW_STATE_APPLIED), NULL);
	family(o, "supervisor_firewall_repairs_total", "counter", "Times our table was found changed and re-applied.");
	sample(o, "supervisor_firewall_repairs_total", (double)fw->repairs, NULL);
	family(o, "supervisor_firewall_last_apply_seconds", "gauge",
	       "Duration of the last apply; absent before the first one.");
	sample(o, "supervisor_firewall_last_apply_seconds",
	       fw->applied_at_ms ? (double)fw->apply_us / 1e6 : NAN, NULL);
	for (i = 0; i < s->fw.n_drops; i++) {
		const struct fw_counter *c = &s->fw.drops[i];
		char rule[16];

		snprintf(rule, sizeof(rule), "%u", c->rule);
		family(o, "supervisor_firewall_dropped_packets_total", "counter",
		       "Packets dropped by a counted rule (as of the last read-back).");
		sample(o, "supervisor_firewall_dropped_packets_total", (double)c->packets, "chain", c->chain,
		       "rule", rule, "why", c->why ? c->why : "", NULL);
	}
	for (i = 0; i < s->n_children; i++) {
		family(o, "supervisor_child_restarts_total", "counter", "Restarts of a supervised child.");
		sample(o, "supervisor_child_restarts_total", s->children[i].restarts, "child", s->children[i].name, NULL);
	}
	for (i = 0; i < s->n_children; i++) {
		family(o, "supervisor_child_up", "gauge", "1 when the child is running.");
		sample(o, "supervisor_child_up", flag(s->children[i].state == CHILD_STATE_RUNNING), "child",
		       s->children[i].name, NULL);
	}
}

static void backup_metrics(struct out *o, const struct node_snapshot *s)
{
	const struct backup_report *b = &s->backup;
	const struct pg_archiver *arch = &s->pg.archiver;

	if (b->enabled) {
		family(o, "supervisor_backup_last_success_timestamp_seconds", "gauge",
		       "When the newest good backup finished (UTC seconds).");
		sample(o, "supervisor_backup_last_success_timestamp_seconds", b->last_ok_at, NULL);
		family(o, "supervisor_backup_age_seconds", "gauge", "Age of the newest good backup.");
		sample(o, "supervisor_backup_age_seconds", b->age_s >= 0 ? (double)b->age_s : NAN, NULL);
		family(o, "supervisor_backup_size_bytes", "gauge", "Size of the newest good backup.");
		sample(o, "supervisor_backup_size_bytes", b->size_bytes, NULL);
		family(o, "supervisor_backup_next_run_timestamp_seconds", "gauge", "When the next run is scheduled.");
		sample(o, "supervisor_backup_next_run_timestamp_seconds", (double)b->next_at, NULL);
		family(o, "supervisor_backups", "gauge", "Backups on disk, by verification result.");
		sample(o, "supervisor_backups", (double)b->good_count, "good", "true", NULL);
		sample(o, "supervisor_backups", (double)(b->count - b->good_count), "good", "false", NULL);
		family(o, "supervisor_backup_running", "gauge", "1 while a backup or verify run is going.");
		sample(o, "supervisor_backup_running", flag(b->running), NULL);
		family(o, "supervisor_backup_failed_runs_total", "counter", "Runs that failed since start.");
		sample(o, "supervisor_backup_failed_runs_total", b->failed_runs, NULL);
		family(o, "supervisor_backup_last_run_failed", "gauge",
		       "1 when the last backup run failed, 0 when it succeeded or none ran yet.");
		sample(o, "supervisor_backup_last_run_failed", flag(b->last_run_failed), NULL);
		family(o, "supervisor_backup_max_age_seconds", "gauge",
		       "backup.max_age in seconds: the newest good backup's data may be at most this old.");
		sample(o, "supervisor_backup_max_age_seconds", s->backup_max_age_s, NULL);
	}
	if (s->pg.probed && s->pg.has_archiver) {
		family(o, "supervisor_postgres_wal_archived_total", "counter", "pg_stat_archiver.archived_count.");
		sample(o, "supervisor_postgres_wal_archived_total", arch->archived_count, NULL);
		family(o, "supervisor_postgres_wal_archive_failed_total", "counter", "pg_stat_archiver.failed_count.");
		sample(o, "supervisor_postgres_wal_archive_failed_total", arch->failed_count, NULL);
	}
}

/* High availability: only on nodes that take part. */
static void ha_metrics(struct out *o, const struct node_snapshot *s)
{
	const json_t *ha = s->ha, *lease = json_object_get(ha, "lease_remaining_s");

	if (!s->ha_enabled)
		return;
	family(o, "supervisor_ha_is_leader", "gauge", "1 when this node holds the leader key under a live lease.");
	sample(o, "supervisor_ha_is_leader", s->ha_is_leader ? 1 : 0, NULL);
	family(o, "supervisor_ha_epoch", "gauge", "The leader key's revision: changes with every new leader.");
	sample(o, "supervisor_ha_epoch", (double)json_integer_value(json_object_get(ha, "epoch")), NULL);
	family(o, "supervisor_ha_lease_remaining_seconds", "gauge",
	       "Seconds this node's store lease has left (absent: no lease).");
	if (json_is_number(lease))
		sample(o, "supervisor_ha_lease_remaining_seconds", json_number_value(lease), NULL);
	family(o, "supervisor_ha_leader_changes_total", "counter", "Leader changes this node has applied since it started.");
	sample(o, "supervisor_ha_leader_changes_total",
	       (double)json_integer_value(json_object_get(ha, "leader_changes")), NULL);
	family(o, "supervisor_ha_fences_total", "counter",
	       "Times this node fenced itself (automatic: stopped Postgres, its lease not renewed) since it started.");
	sample(o, "supervisor_ha_fences_total", (double)json_integer_value(json_object_get(ha, "fences")), NULL);
	family(o, "supervisor_ha_store_reachable", "gauge", "1 when the last read of the store (etcd) answered.");
	sample(o, "supervisor_ha_store_reachable",
	       json_is_true(json_object_get(json_object_get(ha, "store"), "reachable")) ? 1 : 0, NULL);
	family(o, "supervisor_ha_leader", "gauge", "1 for the node the store names leader (none: no leader).");
	if (json_is_string(json_object_get(ha, "leader")))
		sample(o, "supervisor_ha_leader", 1, "leader", json_string_value(json_object_get(ha, "leader")), NULL);
}

char *metrics_text(const struct node_snapshot *s)
{
	struct out o = { 0 };
	char *text = NULL;
	size_t len = 0;

	o.f = xmemstream(&text, &len);
	node_metrics(&o, s);
	tunnel_metrics(&o, s);
	postgres_metrics(&o, s);
	backup_metrics(&o, s);
	ha_metrics(&o, s);
	if (fclose(o.f) != 0)
		fatalx("http", "out of memory");
	return text;
}
