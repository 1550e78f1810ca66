// SPDX-License-Identifier: MIT
/*
 * /metrics in the Prometheus text format (version 0.0.4), rendered from the
 * same snapshot as /status. Peer metrics use the names of the WireGuard
 * exporters (wireguard_latest_handshake_seconds, wireguard_sent_bytes_total,
 * wireguard_received_bytes_total, labelled by interface and public_key)
 * so existing dashboards work; everything else is supervisor_*. A figure
 * that is unknown is left out, never reported as 0.
 */
#include "supervisor/daemon.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"

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

/* One sample; @labels are name/value pairs ending in NULL. Skips JSON null. */
static void sample(struct out *o, const char *name, json_t *value, ...)
{
	va_list ap;
	const char *k;
	bool first = true;

	if (!json_is_number(value) && !json_is_boolean(value)) {
		json_decref(value);
		return;
	}
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
	if (json_is_boolean(value))
		fprintf(o->f, " %d\n", json_is_true(value));
	else if (json_is_integer(value))
		fprintf(o->f, " %lld\n", (long long)json_integer_value(value));
	else
		fprintf(o->f, " %.6g\n", json_real_value(value));
	json_decref(value);
}

static json_t *num(double v)
{
	return json_real(v);
}

static json_t *get(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v ? json_incref(v) : NULL;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void tunnel_metrics(struct out *o, struct daemon *d, const json_t *doc)
{
	const char *iface = d->conf->cluster.interface;
	json_t *peers = json_object_get(json_object_get(doc, "tunnel"), "peers"), *p;
	size_t i;

	json_array_foreach(peers, i, p) {
		const struct conf *c = d->conf;
		const char *name = str(p, "name");
		/* the rows' order: the hub's row i is node i + 1, a spoke's only row the hub */
		const struct conf_node *node = conf_self(c)->kind == CONF_NODE_HUB ?
			(i + 1 < c->n_nodes ? &c->nodes[i + 1] : NULL) : conf_hub(c);

		for (size_t k = 0; (!node || strcmp(node->name, name) != 0) && k < c->n_nodes; k++)
			node = &c->nodes[k];
		/*
		 * The exporters write 0 for a peer that never handshook; a 0 reads
		 * as 1970 and hides "never" from alerts, so such a peer has no sample.
		 */
		family(o, "wireguard_latest_handshake_seconds", "gauge",
		       "Unix time of the peer's last handshake; absent when there never was one.");
		sample(o, "wireguard_latest_handshake_seconds", get(p, "last_handshake"),
		       "interface", iface, "public_key", node && !strcmp(node->name, name) ? node->public_key_b64 : "",
		       "peer", name, NULL);
	}
	json_array_foreach(peers, i, p) {
		family(o, "supervisor_wireguard_handshake_age_seconds", "gauge",
		       "Seconds since the peer's last handshake; absent when there never was one.");
		sample(o, "supervisor_wireguard_handshake_age_seconds", get(p, "handshake_age_s"),
		       "interface", iface, "peer", str(p, "name"), NULL);
	}
	json_array_foreach(peers, i, p) {
		family(o, "supervisor_wireguard_peer_fresh", "gauge",
		       "1 when the peer's last handshake is at most cluster.fresh_handshake old.");
		sample(o, "supervisor_wireguard_peer_fresh", get(p, "fresh"), "interface", iface, "peer",
		       str(p, "name"), NULL);
	}
	json_array_foreach(peers, i, p) {
		family(o, "wireguard_received_bytes_total", "counter", "Bytes received from the peer.");
		sample(o, "wireguard_received_bytes_total", get(p, "rx_bytes"), "interface", iface,
		       "peer", str(p, "name"), NULL);
	}
	json_array_foreach(peers, i, p) {
		family(o, "wireguard_sent_bytes_total", "counter", "Bytes sent to the peer.");
		sample(o, "wireguard_sent_bytes_total", get(p, "tx_bytes"), "interface", iface, "peer",
		       str(p, "name"), NULL);
	}
	family(o, "supervisor_tunnel_fresh", "gauge",
	       "1 when this node's tunnel is fresh (spoke: its hub; hub: every spoke).");
	sample(o, "supervisor_tunnel_fresh",
	       json_boolean(strcmp(str(json_object_get(doc, "tunnel"), "state"), "fresh") == 0), NULL);
	family(o, "supervisor_tunnel_repairs_total", "counter", "Overlay pieces found missing and restored.");
	sample(o, "supervisor_tunnel_repairs_total", get(json_object_get(doc, "tunnel"), "repairs"), NULL);
}

static void postgres_metrics(struct out *o, const json_t *doc)
{
	const json_t *pg = json_object_get(doc, "postgres");
	json_t *members = json_object_get(json_object_get(doc, "replication"), "members"), *m;
	const char *state = str(pg, "state");
	size_t i;

	if (strcmp(state, "none") == 0)
		return;
	family(o, "supervisor_postgres_up", "gauge", "1 when Postgres runs and answers probes.");
	sample(o, "supervisor_postgres_up", json_boolean(strcmp(state, "running") == 0), NULL);
	family(o, "supervisor_postgres_info", "gauge", "Postgres state and roles, as labels.");
	sample(o, "supervisor_postgres_info", json_integer(1), "state", state, "role", str(pg, "role"),
	       "observed_role", str(pg, "observed_role"), NULL);
	family(o, "supervisor_postgres_timeline", "gauge", "Timeline of this node's Postgres.");
	sample(o, "supervisor_postgres_timeline", get(pg, "timeline"), NULL);
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_lag_bytes", "gauge",
		       "Replay lag of a replica in bytes; absent when unknown.");
		sample(o, "supervisor_replication_lag_bytes", get(m, "replay_lag_bytes"), "member",
		       str(m, "name"), "link", str(m, "link"), NULL);
	}
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_lag_seconds", "gauge",
		       "Replay lag of a replica in seconds; absent when unknown (never 0 for a broken link).");
		sample(o, "supervisor_replication_lag_seconds", get(m, "replay_lag_s"), "member",
		       str(m, "name"), NULL);
	}
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_streaming", "gauge",
		       "1 when the replica's link is streaming (rows this node can see).");
		if (!json_is_null(json_object_get(m, "link")) && json_object_get(m, "link"))
			sample(o, "supervisor_replication_streaming",
			       json_boolean(strcmp(str(m, "link"), "streaming") == 0), "member", str(m, "name"), NULL);
	}
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_clone_streamed_bytes", "gauge",
		       "Bytes a replica's clone (pg_basebackup) has streamed so far; only while cloning.");
		sample(o, "supervisor_replication_clone_streamed_bytes",
		       get(json_object_get(m, "clone"), "done_bytes"), "member", str(m, "name"), NULL);
	}
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_clone_total_bytes", "gauge",
		       "Estimated size of a replica's clone; only while cloning, when estimated.");
		sample(o, "supervisor_replication_clone_total_bytes",
		       get(json_object_get(m, "clone"), "total_bytes"), "member", str(m, "name"), NULL);
	}
	family(o, "supervisor_postgres_bootstraps_redone_total", "counter",
	       "Unfinished bootstraps (initdb, pg_basebackup) found in the data directory, removed and redone.");
	sample(o, "supervisor_postgres_bootstraps_redone_total", get(pg, "bootstraps_redone"), NULL);
	json_array_foreach(members, i, m) {
		family(o, "supervisor_replication_slot_retained_bytes", "gauge",
		       "WAL a replica's slot holds back on this node.");
		sample(o, "supervisor_replication_slot_retained_bytes", get(m, "slot_retained_bytes"),
		       "member", str(m, "name"), "slot", str(m, "slot"), NULL);
	}
}

static void node_metrics(struct out *o, struct daemon *d, const json_t *doc)
{
	const struct fw_status *fw = firewall_status(d->firewall);
	struct child_status st[256];
	size_t n = child_set_status(d->children, st, ARRAY_SIZE(st));
	static const char *const levels[] = { "ok", "degraded", "critical" };
	json_t *fwj = firewall_json(d->firewall), *drop;
	size_t i;

	family(o, "supervisor_info", "gauge", "Build and node, as labels.");
	sample(o, "supervisor_info", json_integer(1), "node", str(doc, "node"), "role", str(doc, "role"),
	       "version", str(doc, "version"), NULL);
	family(o, "supervisor_health", "gauge", "1 for the node's overall health, 0 for the others.");
	for (i = 0; i < ARRAY_SIZE(levels); i++)
		sample(o, "supervisor_health", json_boolean(strcmp(str(doc, "overall"), levels[i]) == 0),
		       "state", levels[i], NULL);
	family(o, "supervisor_uptime_seconds", "gauge", "Seconds since the supervisor started.");
	sample(o, "supervisor_uptime_seconds", get(doc, "uptime_s"), NULL);
	family(o, "supervisor_disk_free_bytes", "gauge", "Free bytes for unprivileged use.");
	sample(o, "supervisor_disk_free_bytes", get(json_object_get(json_object_get(doc, "disk"), "root"), "free_bytes"),
	       "dir", "/", NULL);
	for (i = 0; i < 2; i++) {
		const char *k = i ? "backup_dir" : "data_dir";
		json_t *dj = json_object_get(json_object_get(doc, "disk"), k);

		if (json_is_object(dj))
			sample(o, "supervisor_disk_free_bytes", get(dj, "free_bytes"), "dir", str(dj, "path"), NULL);
	}
	family(o, "supervisor_firewall_applied", "gauge", "1 when our nftables table is in force and verified.");
	sample(o, "supervisor_firewall_applied", json_boolean(fw->state == FW_STATE_APPLIED), NULL);
	family(o, "supervisor_firewall_repairs_total", "counter", "Times our table was found changed and re-applied.");
	sample(o, "supervisor_firewall_repairs_total", json_integer((json_int_t)fw->repairs), NULL);
	family(o, "supervisor_firewall_last_apply_seconds", "gauge",
	       "Duration of the last apply; absent before the first one.");
	sample(o, "supervisor_firewall_last_apply_seconds",
	       fw->applied_at_ms ? num((double)fw->apply_us / 1e6) : NULL, NULL);
	json_array_foreach(json_object_get(fwj, "drops"), i, drop) {
		char rule[16];

		snprintf(rule, sizeof(rule), "%lld", (long long)json_integer_value(json_object_get(drop, "rule")));
		family(o, "supervisor_firewall_dropped_packets_total", "counter",
		       "Packets dropped by a counted rule (as of the last read-back).");
		sample(o, "supervisor_firewall_dropped_packets_total", get(drop, "packets"), "chain",
		       str(drop, "chain"), "rule", rule, "why", str(drop, "why"), NULL);
	}
	json_decref(fwj);
	for (i = 0; i < n; i++) {
		family(o, "supervisor_child_restarts_total", "counter", "Restarts of a supervised child.");
		sample(o, "supervisor_child_restarts_total", json_integer(st[i].restarts), "child", st[i].name, NULL);
	}
	for (i = 0; i < n; i++) {
		family(o, "supervisor_child_up", "gauge", "1 when the child is running.");
		sample(o, "supervisor_child_up", json_boolean(st[i].state == CHILD_STATE_RUNNING), "child",
		       st[i].name, NULL);
	}
}

static void backup_metrics(struct out *o, const json_t *doc)
{
	json_t *b = json_object_get(doc, "backup");
	json_t *arch = json_object_get(json_object_get(doc, "postgres"), "archiver");

	if (json_is_object(b) && json_is_string(json_object_get(b, "method"))) {
		family(o, "supervisor_backup_last_success_timestamp_seconds", "gauge",
		       "When the newest good backup finished (UTC seconds).");
		sample(o, "supervisor_backup_last_success_timestamp_seconds", get(b, "last_ok_at"), NULL);
		family(o, "supervisor_backup_age_seconds", "gauge", "Age of the newest good backup.");
		sample(o, "supervisor_backup_age_seconds", get(b, "age_s"), NULL);
		family(o, "supervisor_backup_size_bytes", "gauge", "Size of the newest good backup.");
		sample(o, "supervisor_backup_size_bytes", get(b, "size_bytes"), NULL);
		family(o, "supervisor_backup_next_run_timestamp_seconds", "gauge", "When the next run is scheduled.");
		sample(o, "supervisor_backup_next_run_timestamp_seconds", get(b, "next_at"), NULL);
		family(o, "supervisor_backups", "gauge", "Backups on disk, by verification result.");
		sample(o, "supervisor_backups", get(b, "good_count"), "good", "true", NULL);
		sample(o, "supervisor_backups", json_integer(json_integer_value(json_object_get(b, "count")) -
			json_integer_value(json_object_get(b, "good_count"))), "good", "false", NULL);
		family(o, "supervisor_backup_running", "gauge", "1 while a backup or verify run is going.");
		sample(o, "supervisor_backup_running", json_boolean(json_object_get(b, "running_since") != NULL), NULL);
		family(o, "supervisor_backup_failed_runs_total", "counter", "Runs that failed since start.");
		sample(o, "supervisor_backup_failed_runs_total", get(b, "failed_runs"), NULL);
	}
	if (json_is_object(arch)) {
		family(o, "supervisor_postgres_wal_archived_total", "counter", "pg_stat_archiver.archived_count.");
		sample(o, "supervisor_postgres_wal_archived_total", get(arch, "archived_count"), NULL);
		family(o, "supervisor_postgres_wal_archive_failed_total", "counter", "pg_stat_archiver.failed_count.");
		sample(o, "supervisor_postgres_wal_archive_failed_total", get(arch, "failed_count"), NULL);
	}
}

char *metrics_text(struct daemon *d, const json_t *doc)
{
	struct out o = { 0 };
	char *text = NULL;
	size_t len = 0;

	o.f = open_memstream(&text, &len);
	if (!o.f)
		fatalx("http", "out of memory");
	node_metrics(&o, d, doc);
	tunnel_metrics(&o, d, doc);
	postgres_metrics(&o, doc);
	backup_metrics(&o, doc);
	if (fclose(o.f) != 0)
		fatalx("http", "out of memory");
	return text;
}
