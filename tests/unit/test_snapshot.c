// SPDX-License-Identifier: MIT
/*
 * supervisor/render.c and metrics.c, from hand-filled snapshots: one name
 * per figure across /status and ctl, unknown figures absent (never 0),
 * health by parts, and the load balancers' readiness.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/snapshot.h"

struct fixture {
	struct conf *conf;
	struct overlay_peer_status peer;
	struct overlay_status ov;
	struct fw_status fw;
	struct node_snapshot s;
};

static struct conf *example(const char *node)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_file(getenv("EXAMPLE_CONF"), node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		fail_msg("cannot load the example");
	}
	return c;
}

/*
 * spoke-b, a replica: its hub peer never handshook (tunnel connecting),
 * Postgres running as a replica, its link streaming with 16 MiB to replay
 * and no figure for the seconds.
 */
static void fixture_up(struct fixture *f)
{
	struct node_snapshot *s = &f->s;

	memset(f, 0, sizeof(*f));
	f->conf = example("spoke-b");
	f->peer = (struct overlay_peer_status){ .name = "hub", .age_s = -1, .state = TUNNEL_CONNECTING };
	f->ov = (struct overlay_status){ .state = TUNNEL_CONNECTING, .backend = "userspace", .interface = "wg0",
					 .link_up = true, .n_peers = 1, .max_age_s = -1, .peers = &f->peer };
	f->fw = (struct fw_status){ .state = FW_STATE_FAILED, .last_error = "no nf_tables" };
	s->conf = f->conf;
	s->self = conf_self(f->conf);
	s->tunnel = &f->ov;
	s->peers_configured = 1;
	s->primary = "spoke-a";
	s->fw = (struct fw_report){ .st = &f->fw, .table = "inet supervisor", .ifname = "wg0" };
	s->pg = (struct pg_report){ .state = PG_STATE_RUNNING, .reason = "", .self = s->self,
				    .role = CONF_PG_REPLICA, .probed = true, .in_recovery = PG_TRI_TRUE,
				    .replay_paused = PG_TRI_FALSE, .version = 170000, .timeline = 1,
				    .replay_delay_s = NAN, .observed_age_s = 0.5 };
	snprintf(s->pg.listen, sizeof(s->pg.listen), "10.88.0.12:5432");
	s->pg.n_members = 1;
	s->pg.members = calloc(1, sizeof(*s->pg.members));
	s->pg.members[0] = (struct pg_member){
		.node = s->self, .self = true, .view = PG_MEMBER_SELF_REPLICA, .link = "streaming",
		.upstream = "spoke-a", .replay_lag_bytes = 16777216, .replay_lag_s = NAN,
		.last_msg_age_s = 1.25, .send_lag_bytes = NAN, .flush_lag_bytes = NAN,
		.pg_state = PG_STATE_RUNNING, .timeline = 1 };
	snprintf(s->pg.members[0].slot, sizeof(s->pg.members[0].slot), "spoke_b");
	s->backup = (struct backup_report){ .age_s = -1, .last_ok_at = NAN, .as_of = NAN, .size_bytes = NAN };
	s->root = (struct disk_usage){ .path = "/", .known = true, .free_bytes = 3ull << 30, .size_bytes = 8ull << 30 };
	s->data_dir = (struct disk_usage){ .path = "/var/lib/postgresql/data" };
	s->backup_dir = (struct disk_usage){ .path = "/var/backups" };
	s->fresh_handshake_s = 180;
	s->max_replica_lag_s = 300;
	s->backup_max_age_s = NAN; /* backups disabled */
}

static void fixture_down(struct fixture *f)
{
	snapshot_clear(&f->s);
	conf_free(f->conf);
}

/* The same figure has the same name in /status's spec keys, its tunnel object and ctl's. */
static void test_one_vocabulary(void **state)
{
	struct fixture f;
	json_t *doc, *tunnel, *wg, *fw, *repl;
	const char *key;
	json_t *v;

	(void)state;
	fixture_up(&f);
	doc = status_document(&f.s);
	tunnel = render_tunnel(&f.s);
	assert_true(json_equal(json_object_get(doc, "tunnel"), tunnel)); /* ctl tunnel renders the same object */
	wg = json_object_get(doc, "wg");
	json_object_foreach(wg, key, v)
		if (strcmp(key, "interface") != 0)
			assert_true(json_equal(v, json_object_get(tunnel, key)));
	assert_int_equal(json_integer_value(json_object_get(wg, "peer_count")), 1);
	assert_true(json_is_null(json_object_get(wg, "max_last_handshake_sec"))); /* never, not 0 */
	assert_null(json_object_get(tunnel, "fresh_peers"));
	fw = json_object_get(doc, "firewall");
	assert_string_equal(json_string_value(json_object_get(fw, "last_error")), "no nf_tables");
	assert_null(json_object_get(fw, "error"));
	repl = render_replication(&f.s); /* ctl replication's */
	assert_true(json_equal(json_object_get(doc, "replication"), repl));
	json_decref(repl);
	assert_null(json_object_get(json_object_get(doc, "postgres"), "replication"));
	json_decref(tunnel);
	json_decref(doc);
	fixture_down(&f);
}

/* Parts are judged once; a renderer picks which: the node, or ctl tunnel's two. */
static void test_health_by_parts(void **state)
{
	struct fixture f;
	json_t *reasons = json_array();

	(void)state;
	fixture_up(&f);
	health_add(&f.s.part[SNAP_TUNNEL], HEALTH_DEGRADED, "tunnel", "tunnel: no handshake yet");
	health_add(&f.s.part[SNAP_FIREWALL], HEALTH_CRITICAL, "firewall", "firewall failed: no nf_tables");
	health_add(&f.s.part[SNAP_CHILDREN], HEALTH_DEGRADED, "children", "child x is restarting");
	assert_int_equal(snapshot_health(&f.s, SNAP_ALL, reasons), HEALTH_CRITICAL);
	assert_int_equal(json_array_size(reasons), 3);
	assert_string_equal(json_string_value(json_array_get(reasons, 0)), "child x is restarting");
	assert_string_equal(json_string_value(json_array_get(reasons, 2)), "firewall failed: no nf_tables");
	json_array_clear(reasons);
	assert_int_equal(snapshot_health(&f.s, SNAP_BIT(SNAP_TUNNEL) | SNAP_BIT(SNAP_FIREWALL_FOREIGN), reasons),
			 HEALTH_DEGRADED);
	assert_int_equal(json_array_size(reasons), 1);
	assert_int_equal(snapshot_health(&f.s, SNAP_BIT(SNAP_BACKUP), NULL), HEALTH_OK);
	json_decref(reasons);
	fixture_down(&f);
}

/* Unknown is absent, never 0; whole numbers print whole (not 1.67772e+07). */
static void test_metrics_unknown_is_absent(void **state)
{
	struct fixture f;
	char *text;

	(void)state;
	fixture_up(&f);
	text = metrics_text(&f.s);
	assert_null(strstr(text, "\nwireguard_latest_handshake_seconds{"));
	assert_null(strstr(text, "\nsupervisor_wireguard_handshake_age_seconds{"));
	assert_non_null(strstr(text, "\nsupervisor_wireguard_peer_fresh{interface=\"wg0\",peer=\"hub\"} 0\n"));
	assert_non_null(strstr(text, "\nsupervisor_replication_lag_bytes{member=\"spoke-b\",link=\"streaming\"} 16777216\n"));
	assert_null(strstr(text, "\nsupervisor_replication_lag_seconds{"));
	assert_null(strstr(text, "\nsupervisor_firewall_last_apply_seconds "));
	assert_non_null(strstr(text, "\nsupervisor_disk_free_bytes{dir=\"/\"} 3221225472\n"));
	assert_null(strstr(text, "dir=\"/var/backups\"")); /* statvfs failed: unknown */
	assert_non_null(strstr(text, "\nsupervisor_postgres_info{state=\"running\",role=\"replica\",observed_role=\"replica\"} 1\n"));
	free(text);
	fixture_down(&f);
}

/*
 * The figures alerts need: the node's own thresholds, replay paused, the
 * last run's result, a slot's WAL status as an enum in labels (rows seen
 * downstream only), reasons per part; each absent while unknown.
 */
static void test_metrics_for_alerts(void **state)
{
	struct fixture f;
	struct pg_slot slot = { .slot_name = "spoke_c", .wal_status = "lost", .active = PG_TRI_FALSE,
				.safe_wal_size = NAN, .retained_bytes = 4096 };
	struct pg_member *m;
	char *text;

	(void)state;
	fixture_up(&f);
	text = metrics_text(&f.s);
	assert_non_null(strstr(text, "\nsupervisor_wireguard_fresh_handshake_seconds 180\n"));
	assert_non_null(strstr(text, "\nsupervisor_replication_max_lag_seconds 300\n"));
	assert_non_null(strstr(text, "\nsupervisor_postgres_replay_paused 0\n"));
	assert_null(strstr(text, "supervisor_backup_max_age_seconds")); /* no backups here */
	assert_null(strstr(text, "supervisor_backup_last_run_failed"));
	assert_null(strstr(text, "supervisor_replication_slot_wal_status")); /* no downstream row */
	assert_non_null(strstr(text, "\nsupervisor_health_reasons{part=\"tunnel\"} 0\n"));
	assert_non_null(strstr(text, "\nsupervisor_health_reasons{part=\"other_firewalls\"} 0\n"));
	free(text);

	/* a primary with a downstream whose slot lost its WAL, another firewall, a failed run */
	f.s.pg.replay_paused = PG_TRI_TRUE;
	f.s.pg.in_recovery = PG_TRI_FALSE;
	f.s.pg.n_members = 2;
	f.s.pg.members = realloc(f.s.pg.members, 2 * sizeof(*f.s.pg.members));
	m = &f.s.pg.members[1];
	*m = (struct pg_member){ .node = &f.conf->nodes[3], .view = PG_MEMBER_DOWNSTREAM, .link = "absent",
				 .slot_row = &slot, .replay_lag_bytes = NAN, .replay_lag_s = NAN,
				 .send_lag_bytes = NAN, .flush_lag_bytes = NAN, .last_msg_age_s = NAN, .timeline = NAN };
	snprintf(m->slot, sizeof(m->slot), "spoke_c");
	health_add(&f.s.part[SNAP_FIREWALL_FOREIGN], HEALTH_DEGRADED, "firewall", "another firewall drops wg0");
	health_add(&f.s.part[SNAP_FIREWALL_FOREIGN], HEALTH_DEGRADED, "firewall", "and another");
	f.s.backup.enabled = true;
	f.s.backup.last_run_failed = true;
	f.s.backup_max_age_s = 93600;
	text = metrics_text(&f.s);
	assert_null(strstr(text, "\nsupervisor_postgres_replay_paused ")); /* not a replica: unknown */
	assert_non_null(strstr(text, "\nsupervisor_health_reasons{part=\"other_firewalls\"} 2\n"));
	assert_non_null(strstr(text, "\nsupervisor_backup_last_run_failed 1\n"));
	assert_non_null(strstr(text, "\nsupervisor_backup_max_age_seconds 93600\n"));
	assert_non_null(strstr(text, "# TYPE supervisor_replication_slot_wal_status gauge\n"));
	assert_non_null(strstr(text, "\nsupervisor_replication_slot_wal_status{member=\"spoke-c\",slot=\"spoke_c\",status=\"reserved\"} 0\n"));
	assert_non_null(strstr(text, "\nsupervisor_replication_slot_wal_status{member=\"spoke-c\",slot=\"spoke_c\",status=\"lost\"} 1\n"));
	slot.wal_status = NULL; /* Postgres did not say: no sample at all */
	free(text);
	text = metrics_text(&f.s);
	assert_null(strstr(text, "supervisor_replication_slot_wal_status"));
	free(text);
	fixture_down(&f);
}

/* /replica and /primary from the typed snapshot, with the reasons a load balancer logs. */
static void test_ready(void **state)
{
	struct fixture f;
	json_t *why = json_array();

	(void)state;
	fixture_up(&f);
	assert_false(snapshot_ready(&f.s, CONF_PG_PRIMARY, why));
	assert_string_equal(json_string_value(json_array_get(why, 0)), "not a primary");
	json_array_clear(why);
	assert_false(snapshot_ready(&f.s, CONF_PG_REPLICA, why));
	assert_string_equal(json_string_value(json_array_get(why, 0)), "tunnel is connecting");
	json_array_clear(why);
	f.ov.state = TUNNEL_FRESH;
	assert_true(snapshot_ready(&f.s, CONF_PG_REPLICA, why));
	assert_int_equal(json_array_size(why), 0);
	f.s.pg.members[0].link = "catchup";
	assert_false(snapshot_ready(&f.s, CONF_PG_REPLICA, why));
	assert_string_equal(json_string_value(json_array_get(why, 0)), "replication link is catchup");
	json_decref(why);
	fixture_down(&f);
}

/* systemd's STATUS=: the verdict and the parts in one line, the reasons after, bounded. */
static void test_status_line(void **state)
{
	struct fixture f;
	char *line, big[600];

	(void)state;
	fixture_up(&f);
	line = status_line(&f.s);
	assert_string_equal(line, "ok: tunnel connecting (0/1 peers fresh), firewall failed, postgres running");
	free(line);
	health_add(&f.s.part[SNAP_TUNNEL], HEALTH_DEGRADED, "tunnel", "tunnel: no handshake yet");
	health_add(&f.s.part[SNAP_FIREWALL], HEALTH_CRITICAL, "firewall", "firewall failed:\nno nf_tables");
	line = status_line(&f.s);
	assert_string_equal(line, "critical: tunnel connecting (0/1 peers fresh), firewall failed, postgres running; "
			    "tunnel: no handshake yet; firewall failed: no nf_tables");
	free(line);
	/* the hub runs no Postgres: no word about it */
	f.s.pg.state = PG_STATE_NONE;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	health_add(&f.s.part[SNAP_NODE], HEALTH_DEGRADED, "config", "%s", big);
	line = status_line(&f.s);
	assert_int_equal(strlen(line), STATUS_LINE_MAX);
	assert_null(strstr(line, "postgres"));
	assert_string_equal(line + STATUS_LINE_MAX - 3, "...");
	free(line);
	fixture_down(&f);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_vocabulary),
		cmocka_unit_test(test_health_by_parts),
		cmocka_unit_test(test_metrics_unknown_is_absent),
		cmocka_unit_test(test_metrics_for_alerts),
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_status_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
