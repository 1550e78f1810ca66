// SPDX-License-Identifier: MIT
/*
 * Cluster-file tests. Every file in tests/conf/invalid/ is one case: its
 * "# expect: LINE: message" comments are exactly what the loader must
 * report, in order. Valid files, one per feature, are checked field by
 * field. Data directories come from the environment (set by meson).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "child/child.h"
#include "conf/conf.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "lib/wgkey.h"

static const char *data_dir(void)
{
	const char *d = getenv("CONF_TEST_DIR");

	return d ? d : "tests/conf";
}

static struct conf *load_ok(const char *rel, const char *node)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", data_dir(), rel);
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;
	int r = conf_load_file(path, node, &c, &diag);

	if (r != 0)
		conf_diag_print(&diag, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(diag.n, 0);
	assert_non_null(c);
	return c;
}

static int node_index(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return (int)i;
	fail_msg("no node %s", name);
	return -1;
}

/* ---- invalid files: one case each ------------------------------------- */

static void test_invalid_file(void **state)
{
	const char *path = *state;
	_cleanup_fclose_ FILE *f = fopen(path, "r");
	char line[1024], node[64] = "spoke-a";
	char *expect[32];
	size_t n_expect = 0;
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		str_trim_right(line);
		if (strncmp(line, "# node: ", 8) == 0)
			snprintf(node, sizeof(node), "%.63s", line + 8);
		if (strncmp(line, "# expect: ", 10) == 0 && n_expect < ARRAY_SIZE(expect))
			expect[n_expect++] = xasprintf("%s:%s", path, line + 10);
	}
	assert_true(n_expect > 0); /* a case without expectations proves nothing */

	assert_int_equal(conf_load_file(path, node, &c, &diag), CONF_E_INVALID);
	assert_null(c);
	for (size_t i = 0; i < diag.n || i < n_expect; i++) {
		const char *got = i < diag.n ? diag.lines[i] : "(nothing)";
		const char *want = i < n_expect ? expect[i] : "(nothing)";

		if (strcmp(got, want) != 0)
			fail_msg("error %zu:\n  got:  %s\n  want: %s", i, got, want);
	}
	for (size_t i = 0; i < n_expect; i++)
		free(expect[i]);
	conf_diag_clear(&diag);
}

/* ---- valid files, one per feature ------------------------------------- */

static void test_example_cluster(void **state)
{
	const char *ex = getenv("EXAMPLE_CONF");
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;
	char ip[16];

	(void)state;
	assert_non_null(ex);
	assert_int_equal(conf_load_file(ex, "spoke-b", &c, &diag), 0);
	assert_int_equal(c->n_nodes, 4);
	assert_string_equal(conf_self(c)->name, "spoke-b");
	assert_int_equal(conf_self(c)->pg_role, CONF_PG_REPLICA);
	assert_string_equal(c->nodes[conf_self(c)->upstream].name, "spoke-a");
	assert_string_equal(conf_ip_str(conf_self(c)->overlay_ip, ip), "10.88.0.12");
	assert_string_equal(conf_hub(c)->endpoint.host, "203.0.113.10");
	assert_int_equal(conf_hub(c)->endpoint.port, 51820);
	assert_int_equal(conf_hub(c)->n_ssh_from, 1);
	assert_int_equal(conf_hub(c)->ssh_from[0].prefix, 32);
	assert_true(c->has_acl);
	assert_int_equal(c->n_flows, 4);
	assert_string_equal(conf_self(c)->settings.keys.private_key_env, "WG_PRIVATE_KEY");
	assert_null(conf_self(c)->settings.keys.private_key_file);
	assert_string_equal(conf_primary(c)->name, "spoke-a");
	conf_free(c);
}

static void test_minimal_defaults(void **state)
{
	struct conf *c = load_ok("valid/minimal.conf", "spoke-a");
	const struct conf_settings *s = &conf_self(c)->settings;

	(void)state;
	assert_string_equal(c->cluster.interface, "wg0");
	assert_int_equal(c->cluster.port, 51820);
	assert_int_equal(c->cluster.keepalive, 25);
	assert_int_equal(c->cluster.fresh_handshake_s, 180);
	assert_int_equal(c->cluster.mtu, 0); /* "auto" */
	assert_false(c->has_acl);
	assert_int_equal(c->n_flows, 0);
	assert_string_equal(conf_hub(c)->endpoint.host, "hub.example.net");
	assert_string_equal(s->keys.private_key_file, "/etc/supervisor/wg.key");
	assert_string_equal(s->postgres.data_dir, "/var/lib/postgresql/data");
	assert_int_equal(s->postgres.port, 5432);
	assert_string_equal(s->postgres.replication_user, "replicator");
	assert_int_equal(s->backup.method, CONF_BACKUP_PG_DUMP);
	assert_int_equal(s->backup.schedule.kind, CONF_SCHEDULE_DAILY);
	assert_int_equal(s->backup.schedule.hour, 3);
	assert_int_equal(s->backup.keep_daily, 7);
	assert_int_equal(s->backup.keep_weekly, 4);
	assert_int_equal(s->backup.keep_monthly, 6);
	assert_int_equal(s->backup.max_age_s, 93600);
	assert_int_equal(s->backup.max_replica_lag_s, 300);
	assert_string_equal(s->status_listen.host, "0.0.0.0");
	assert_int_equal(s->status_listen.port, 8000);
	assert_string_equal(s->control_socket, "/run/supervisor/ctl.sock");
	assert_int_equal(s->log_level, LOG_LEVEL_INFO);
	conf_free(c);
}

/* cluster.mtu = "auto" is the default spelled out; a number stays a number (test_overrides). */
static void test_mtu_auto(void **state)
{
	struct conf *c = load_ok("valid/mtu_auto.conf", "spoke-a");

	(void)state;
	assert_int_equal(c->cluster.mtu, 0);
	conf_free(c);
}

static void test_overrides(void **state)
{
	struct conf *c = load_ok("valid/overrides.conf", "spoke-b");
	const struct conf_node *hub = conf_hub(c);
	const struct conf_node *a = &c->nodes[node_index(c, "spoke-a")];
	const struct conf_node *b = &c->nodes[node_index(c, "spoke-b")];
	const struct conf_node *sc = &c->nodes[node_index(c, "spoke-c")];

	(void)state;
	assert_int_equal(c->cluster.mtu, 1380);
	assert_int_equal(c->cluster.keepalive, 15);
	/* keys: the hub replaces the whole group (file instead of env) */
	assert_string_equal(hub->settings.keys.private_key_file, "/etc/wireguard/hub.key");
	assert_null(hub->settings.keys.private_key_env);
	assert_string_equal(a->settings.keys.private_key_env, "WG_PRIVATE_KEY");
	assert_string_equal(hub->endpoint.host, "2001:db8::1");
	assert_string_equal(hub->settings.status_listen.host, "127.0.0.1");
	assert_int_equal(hub->settings.status_listen.port, 8001);
	assert_int_equal(a->settings.status_listen.port, 8000);
	/* postgres: key-by-key over the top-level group */
	assert_int_equal(a->settings.postgres.port, 5433);
	assert_int_equal(b->settings.postgres.port, 5434);
	assert_string_equal(b->settings.postgres.data_dir, "/srv/pg");
	assert_string_equal(b->settings.postgres.user, "pg");
	assert_int_equal(b->pg_role, CONF_PG_REPLICA);
	/* backup */
	assert_int_equal(a->settings.backup.schedule.kind, CONF_SCHEDULE_INTERVAL);
	assert_int_equal(a->settings.backup.schedule.interval_s, 3600);
	assert_int_equal(sc->settings.backup.method, CONF_BACKUP_PGBACKREST);
	assert_int_equal(sc->settings.backup.schedule.interval_s, 6 * 3600);
	assert_int_equal(sc->settings.backup.schedule.jitter_s, 600);
	assert_int_equal(sc->settings.backup.keep_daily, 2);
	assert_int_equal(sc->settings.backup.keep_weekly, 4);
	assert_int_equal(sc->settings.backup.max_age_s, 7200);
	assert_int_equal(sc->settings.backup.max_replica_lag_s, 60);
	assert_int_equal(b->settings.backup.max_replica_lag_s, 300);
	assert_int_equal(a->settings.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(b->settings.log_level, LOG_LEVEL_INFO);
	assert_string_equal(b->settings.control_socket, "/run/sup/ctl.sock");
	conf_free(c);
}

/* The run directory and Postgres' socket directory follow control.socket. */
static void test_derived_paths(void **state)
{
	struct conf *c = load_ok("valid/minimal.conf", "spoke-a");
	struct conf_diag diag = { 0 };
	char buf[256];

	(void)state;
	assert_string_equal(conf_run_dir(c, buf, sizeof(buf)), "/run/supervisor");
	assert_string_equal(conf_pg_socket_dir(c, buf, sizeof(buf)), "/run/supervisor/postgresql");
	conf_free(c);
	c = load_ok("valid/overrides.conf", "spoke-b");
	assert_string_equal(conf_run_dir(c, buf, sizeof(buf)), "/run/sup");
	assert_string_equal(conf_pg_socket_dir(c, buf, sizeof(buf)), "/run/sup/postgresql");
	conf_free(c);
	c = NULL;
	assert_int_equal(conf_load_string(
		"cluster = { network = \"10.88.0.0/24\"; };\n"
		"hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"h:1\";\n"
		"  public_key = \"FN+bZ6djGKzJiUTbK+nkFbc3vVlLBX7D2DhBAzsGIxs=\"; };\n"
		"spokes = ( { name = \"s\"; overlay_ip = \"10.88.0.2\"; postgres = \"primary\";\n"
		"  public_key = \"M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=\"; } );\n"
		"control = { socket = \"/ctl.sock\"; };\n", "mem", "s", &c, &diag), 0);
	assert_string_equal(conf_run_dir(c, buf, sizeof(buf)), "/");
	assert_string_equal(conf_pg_socket_dir(c, buf, sizeof(buf)), "/postgresql");
	conf_free(c);
}

static bool has_flow(const struct conf *c, const char *from, const char *to, uint8_t proto,
		     uint16_t port)
{
	for (size_t i = 0; i < c->n_flows; i++) {
		const struct conf_flow *f = &c->flows[i];

		if (strcmp(c->nodes[f->from].name, from) == 0 && strcmp(c->nodes[f->to].name, to) == 0 &&
		    f->proto == proto && f->port == port)
			return true;
	}
	return false;
}

static void test_acl_mesh(void **state)
{
	struct conf *c = load_ok("valid/acl_mesh.conf", "spoke-c");

	(void)state;
	/* 3 spokes x 2 others x (2 tcp + 1 udp), self-flows dropped, repeat merged */
	assert_int_equal(c->n_flows, 18);
	assert_true(has_flow(c, "spoke-b", "spoke-a", IPPROTO_TCP, 5432));
	assert_true(has_flow(c, "spoke-c", "spoke-b", IPPROTO_UDP, 5353));
	assert_false(has_flow(c, "spoke-a", "spoke-a", IPPROTO_TCP, 5432));
	for (size_t i = 0; i < c->n_flows; i++) {
		assert_int_not_equal(c->flows[i].from, 0);
		assert_int_not_equal(c->flows[i].to, 0);
	}
	assert_int_equal(conf_self(c)->pg_role, CONF_PG_NONE);
	assert_int_equal(c->cluster.network.prefix, 16);
	conf_free(c);
}

static void test_cascade(void **state)
{
	struct conf *c = load_ok("valid/cascade.conf", "spoke-c");
	const struct conf_node *me = conf_self(c);

	(void)state;
	assert_string_equal(c->nodes[me->upstream].name, "spoke-b");
	assert_string_equal(c->nodes[c->nodes[me->upstream].upstream].name, "spoke-a");
	conf_free(c);
}

static void test_children(void **state)
{
	struct conf *c = load_ok("valid/children.conf", "spoke-a");
	const struct conf_node *me = conf_self(c);
	const struct conf_child *db, *app;

	(void)state;
	assert_int_equal(me->n_children, 2);
	db = &me->children[0];
	app = &me->children[1];
	assert_string_equal(db->name, "db");
	assert_string_equal(db->argv[0], "/bin/sleep");
	assert_string_equal(db->argv[1], "1000");
	assert_null(db->argv[2]);
	assert_null(db->env); /* inherit */
	assert_int_equal(db->restart, CHILD_RESTART_ALWAYS);
	assert_int_equal(db->n_stop, 2);
	assert_int_equal(db->stop[0].signo, SIGINT);
	assert_int_equal(db->stop[0].timeout_ms, 3000);
	assert_int_equal(db->stop[1].signo, SIGQUIT);
	assert_int_equal(db->stop[1].timeout_ms, 500);
	assert_true(db->required);
	assert_string_equal(db->user, "nobody");
	assert_string_equal(db->cwd, "/tmp");
	assert_null(db->after[0]);
	/* defaults */
	assert_int_equal(app->restart, CHILD_RESTART_ON_FAILURE);
	assert_int_equal(app->n_stop, 1);
	assert_int_equal(app->stop[0].signo, SIGTERM);
	assert_int_equal(app->stop[0].timeout_ms, 5000);
	assert_false(app->required);
	assert_null(app->user);
	assert_string_equal(app->after[0], "db");
	assert_null(app->after[1]);
	assert_string_equal(app->env[0], "MODE=test");
	assert_string_equal(app->env[1], "EMPTY=");
	assert_null(app->env[2]);
	/* supervision: node group over top-level group over defaults */
	assert_int_equal(me->settings.supervision.shutdown_budget_ms, 6000);
	assert_int_equal(me->settings.supervision.backoff_max_ms, 4000);
	assert_int_equal(me->settings.supervision.stable_after_ms, 2000);
	assert_int_equal(me->settings.supervision.give_up_after, 5);
	assert_int_equal(conf_hub(c)->settings.supervision.shutdown_budget_ms, 25000);
	assert_int_equal(conf_hub(c)->n_children, 0);
	conf_free(c);
}

/* ---- the ha group ------------------------------------------------------ */

static const struct conf_flow *find_flow(const struct conf *c, const char *from, const char *to,
					 uint16_t port)
{
	for (size_t i = 0; i < c->n_flows; i++) {
		const struct conf_flow *f = &c->flows[i];

		if (strcmp(c->nodes[f->from].name, from) == 0 && strcmp(c->nodes[f->to].name, to) == 0 &&
		    f->proto == IPPROTO_TCP && f->port == port)
			return f;
	}
	return NULL;
}

static void assert_flows_unique(const struct conf *c)
{
	for (size_t i = 0; i < c->n_flows; i++)
		for (size_t j = 0; j < i; j++) {
			const struct conf_flow *x = &c->flows[i], *y = &c->flows[j];

			if (x->from == y->from && x->to == y->to && x->proto == y->proto &&
			    x->port == y->port)
				fail_msg("flow %s -> %s %u twice", c->nodes[x->from].name,
					 c->nodes[x->to].name, x->port);
		}
}

/* No ha group: off, Patroni's defaults, nothing derived, today's roles. */
static void test_ha_absent(void **state)
{
	struct conf *c = load_ok("valid/minimal.conf", "spoke-a");
	const struct conf_node *a = &c->nodes[node_index(c, "spoke-a")];
	struct conf_diag warnings = { 0 };

	(void)state;
	assert_false(conf_ha_on(c));
	assert_int_equal(c->ha.mode, CONF_HA_OFF);
	assert_string_equal(conf_ha_mode_name(c->ha.mode), "off");
	assert_int_equal(c->ha.bootstrap_primary, -1);
	assert_int_equal(c->ha.line, 0);
	assert_int_equal(c->ha.ttl_s, 30);
	assert_int_equal(c->ha.loop_wait_s, 10);
	assert_int_equal(c->ha.retry_timeout_s, 10);
	assert_int_equal(c->ha.maximum_lag_on_failover, 1048576);
	assert_string_equal(c->ha.etcd_bin, "/usr/bin/etcd");
	assert_string_equal(c->ha.data_dir, "/var/lib/supervisor/etcd");
	assert_int_equal(c->ha.client_port, 2379);
	assert_int_equal(c->ha.peer_port, 2380);
	assert_true(a->failover); /* the default on a Postgres spoke */
	assert_false(conf_hub(c)->failover);
	assert_false(conf_node_candidate(c, a));
	assert_int_equal(conf_ha_members(c, NULL, 0), 0);
	assert_int_equal(conf_warnings(c, &warnings), 0);
	conf_free(c);
}

/* Every key parsed, the 64-bit L suffix, and an upstream left out. */
static void test_ha_full(void **state)
{
	struct conf *c = load_ok("valid/ha.conf", "spoke-c");
	const struct conf_node *m[4];
	int a = node_index(c, "spoke-a");
	struct conf_diag warnings = { 0 };

	(void)state;
	assert_true(conf_ha_on(c));
	assert_int_equal(c->ha.mode, CONF_HA_AUTOMATIC);
	assert_string_equal(conf_ha_mode_name(c->ha.mode), "automatic");
	assert_int_equal(c->ha.bootstrap_primary, a);
	assert_int_equal(c->ha.line, 18);
	assert_int_equal(c->ha.ttl_s, 40);
	assert_int_equal(c->ha.loop_wait_s, 5);
	assert_int_equal(c->ha.retry_timeout_s, 15);
	assert_true(c->ha.maximum_lag_on_failover == 5000000000ULL);
	assert_string_equal(c->ha.etcd_bin, "/opt/etcd/bin/etcd");
	assert_string_equal(c->ha.data_dir, "/srv/etcd");
	assert_int_equal(c->ha.client_port, 12379);
	assert_int_equal(c->ha.peer_port, 2380);
	/* spoke-c wrote no upstream: it clones from the bootstrap primary */
	assert_int_equal(conf_self(c)->upstream, a);
	assert_int_equal(c->nodes[node_index(c, "spoke-b")].upstream, a);
	assert_int_equal(conf_ha_members(c, m, ARRAY_SIZE(m)), 3);
	assert_string_equal(m[0]->name, "spoke-a");
	assert_string_equal(m[1]->name, "spoke-b");
	assert_string_equal(m[2]->name, "spoke-c");
	for (size_t i = 1; i < c->n_nodes; i++)
		assert_true(conf_node_candidate(c, &c->nodes[i]));
	assert_false(conf_node_candidate(c, conf_hub(c)));
	assert_false(conf_ha_member(c, conf_hub(c)));
	assert_int_equal(conf_warnings(c, &warnings), 0);
	conf_free(c);
}

/*
 * The example's acl opens only spoke-a <-> spoke-b, spoke-c on 5432. After
 * a switchover to spoke-b, spoke-c must follow it: the ha group derives
 * c -> b and b -> c on 5432 and every etcd peer pair on 2380; the four
 * written flows stay as written, once each.
 */
static void test_ha_derived_flows(void **state)
{
	static const char *const pg[] = { "spoke-a", "spoke-b", "spoke-c" };
	static const char *const written[][2] = {
		{ "spoke-b", "spoke-a" }, { "spoke-c", "spoke-a" },
		{ "spoke-a", "spoke-b" }, { "spoke-a", "spoke-c" },
	};
	struct conf *c = load_ok("valid/ha.conf", "spoke-c");
	const struct conf_flow *f;

	(void)state;
	assert_int_equal(c->n_flows, 4 + 2 + 6);
	assert_flows_unique(c);
	for (size_t i = 0; i < ARRAY_SIZE(written); i++) {
		f = find_flow(c, written[i][0], written[i][1], 5432);
		assert_non_null(f);
		assert_false(f->derived);
		assert_true(f->line > 29); /* the acl's, after the ha group's */
	}
	f = find_flow(c, "spoke-c", "spoke-b", 5432);
	assert_non_null(f);
	assert_true(f->derived);
	assert_int_equal(f->line, 18);
	f = find_flow(c, "spoke-b", "spoke-c", 5432);
	assert_non_null(f);
	assert_true(f->derived);
	for (size_t i = 0; i < ARRAY_SIZE(pg); i++)
		for (size_t j = 0; j < ARRAY_SIZE(pg); j++) {
			if (i == j) {
				assert_null(find_flow(c, pg[i], pg[j], 2380));
				continue;
			}
			f = find_flow(c, pg[i], pg[j], 2380);
			assert_non_null(f);
			assert_true(f->derived);
			assert_int_equal(f->line, 18);
		}
	for (size_t i = 0; i < c->n_flows; i++)
		assert_int_equal(c->flows[i].proto, IPPROTO_TCP);
	conf_free(c);
}

/*
 * failover = false: still an etcd member, follows any candidate, but no
 * one follows it. Derived 5432 flows go to each candidate's own port.
 */
static void test_ha_failover_false(void **state)
{
	struct conf *c = load_ok("valid/ha_nofailover.conf", "spoke-a");
	const struct conf_node *sc = &c->nodes[node_index(c, "spoke-c")];
	const struct conf_node *sd = &c->nodes[node_index(c, "spoke-d")];
	const struct conf_flow *f;

	(void)state;
	assert_int_equal(c->ha.mode, CONF_HA_MANUAL);
	assert_false(sc->failover);
	assert_false(conf_node_candidate(c, sc));
	assert_true(conf_ha_member(c, sc));
	assert_false(sd->failover); /* no database: never a candidate */
	assert_false(conf_ha_member(c, sd));
	assert_true(conf_node_candidate(c, &c->nodes[node_index(c, "spoke-b")]));
	assert_int_equal(conf_ha_members(c, NULL, 0), 3);
	assert_string_equal(c->nodes[sc->upstream].name, "spoke-b");
	/* 3 written + a,c -> b on 5433 + 6 etcd pairs */
	assert_int_equal(c->n_flows, 3 + 2 + 6);
	assert_flows_unique(c);
	f = find_flow(c, "spoke-a", "spoke-b", 5433);
	assert_non_null(f);
	assert_true(f->derived);
	f = find_flow(c, "spoke-c", "spoke-b", 5433);
	assert_non_null(f);
	assert_true(f->derived);
	assert_null(find_flow(c, "spoke-a", "spoke-b", 5432));
	assert_null(find_flow(c, "spoke-b", "spoke-c", 5432));
	assert_null(find_flow(c, "spoke-a", "spoke-c", 5432));
	assert_non_null(find_flow(c, "spoke-a", "spoke-c", 2380));
	assert_non_null(find_flow(c, "spoke-c", "spoke-a", 2380));
	for (size_t i = 0; i < c->n_flows; i++) {
		const struct conf_flow *fl = &c->flows[i];

		if (fl->derived)
			assert_true(&c->nodes[fl->from] != sd && &c->nodes[fl->to] != sd);
		if (&c->nodes[fl->to] == sc && fl->port != 2380)
			assert_false(fl->derived);
	}
	conf_free(c);
}

/* Without an acl spokes trust each other fully: nothing is derived. Two members warn. */
static void test_ha_no_acl(void **state)
{
	struct conf *c = load_ok("valid/ha_two.conf", "spoke-b");
	_cleanup_free_ char *path = xasprintf("%s/valid/ha_two.conf", data_dir());
	_cleanup_free_ char *want = NULL;
	struct conf_diag warnings = { 0 };

	(void)state;
	assert_true(conf_ha_on(c));
	assert_false(c->has_acl);
	assert_int_equal(c->n_flows, 0);
	assert_string_equal(c->nodes[conf_self(c)->upstream].name, "spoke-a");
	assert_false(c->nodes[node_index(c, "spoke-c")].failover);
	assert_int_equal(conf_ha_members(c, NULL, 0), 2);
	assert_int_equal(conf_warnings(c, &warnings), 1);
	want = xasprintf("%s:13: ha: only 2 etcd members (spoke-a, spoke-b): etcd needs a majority",
			 path);
	assert_true(strncmp(warnings.lines[0], want, strlen(want)) == 0);
	conf_diag_clear(&warnings);
	conf_free(c);
}

/*
 * A fresh_handshake under the rekey interval is valid but makes spokes drop
 * their hub session that often: warned, on the cluster group's line. (The
 * warnings come after any lines the caller already collected.)
 */
static void test_fresh_short_warns(void **state)
{
	struct conf *c = load_ok("valid/fresh_short.conf", "spoke-a");
	_cleanup_free_ char *want = xasprintf("%s/valid/fresh_short.conf:2: cluster: fresh_handshake = 30 is below WireGuard's rekey interval (120 s)",
					       data_dir());
	struct conf_diag warnings = { 0 };

	(void)state;
	assert_int_equal(c->cluster.fresh_handshake_s, 30);
	assert_int_equal(conf_warnings(c, &warnings), 1);
	assert_true(strncmp(warnings.lines[0], want, strlen(want)) == 0);
	assert_int_equal(conf_warnings(c, &warnings), 1);
	assert_int_equal(warnings.n, 2);
	conf_diag_clear(&warnings);
	assert_int_equal(warnings.n, 0);
	conf_free(c);
}

/* mode = "off" with every other key written: valid, unused, nothing derived. */
static void test_ha_off(void **state)
{
	struct conf *c = load_ok("valid/ha_off.conf", "spoke-b");
	const struct conf_node *a = &c->nodes[node_index(c, "spoke-a")];

	(void)state;
	assert_false(conf_ha_on(c));
	assert_int_equal(c->ha.bootstrap_primary, -1);
	assert_int_equal(c->ha.line, 13);
	assert_int_equal(c->ha.maximum_lag_on_failover, 0);
	assert_false(a->failover);
	assert_false(conf_node_candidate(c, &c->nodes[node_index(c, "spoke-b")]));
	assert_int_equal(c->n_flows, 1);
	assert_false(c->flows[0].derived);
	conf_free(c);
}

static void test_node_from_environment(void **state)
{
	struct conf *c;

	(void)state;
	setenv("SUPERVISOR_NODE", "hub", 1);
	c = load_ok("valid/minimal.conf", NULL);
	assert_int_equal(c->self, 0);
	assert_int_equal(conf_self(c)->kind, CONF_NODE_HUB);
	conf_free(c);
	unsetenv("SUPERVISOR_NODE");
}

/* Schedules through the public loader, so the syntax users write is tested. */
static void test_schedules(void **state)
{
	static const struct {
		const char *text;
		bool ok;
		enum conf_schedule_kind kind;
		uint32_t interval, jitter;
		int hour, minute;
	} cases[] = {
		{ "daily 03:00", true, CONF_SCHEDULE_DAILY, 0, 0, 3, 0 },
		{ "daily 23:59 jitter 15m", true, CONF_SCHEDULE_DAILY, 0, 900, 23, 59 },
		{ "hourly", true, CONF_SCHEDULE_INTERVAL, 3600, 0, 0, 0 },
		{ "every 6h", true, CONF_SCHEDULE_INTERVAL, 21600, 0, 0, 0 },
		{ "every 30s", true, CONF_SCHEDULE_INTERVAL, 30, 0, 0, 0 },
		{ "every 2d jitter 1h", true, CONF_SCHEDULE_INTERVAL, 172800, 3600, 0, 0 },
		{ "every 5s", false, 0, 0, 0, 0, 0 },
		{ "every 6", false, 0, 0, 0, 0, 0 },
		{ "daily 3:00", false, 0, 0, 0, 0, 0 },
		{ "daily 24:00", false, 0, 0, 0, 0, 0 },
		{ "hourly jitter 1h", false, 0, 0, 0, 0, 0 },
		{ "weekly", false, 0, 0, 0, 0, 0 },
		{ "hourly please", false, 0, 0, 0, 0, 0 },
		{ "", false, 0, 0, 0, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *text = xasprintf(
			"cluster = { network = \"10.88.0.0/24\"; };\n"
			"hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"h:1\";\n"
			"  public_key = \"FN+bZ6djGKzJiUTbK+nkFbc3vVlLBX7D2DhBAzsGIxs=\"; };\n"
			"spokes = ( { name = \"s\"; overlay_ip = \"10.88.0.2\"; postgres = \"primary\";\n"
			"  public_key = \"M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=\"; } );\n"
			"backup = { schedule = \"%s\"; };\n", cases[i].text);
		struct conf_diag diag = { 0 };
		struct conf *c = NULL;
		int r = conf_load_string(text, "mem", "s", &c, &diag);

		if ((r == 0) != cases[i].ok)
			fail_msg("schedule \"%s\": expected %s", cases[i].text,
				 cases[i].ok ? "valid" : "an error");
		if (c) {
			const struct conf_schedule *s = &conf_self(c)->settings.backup.schedule;

			assert_int_equal(s->kind, cases[i].kind);
			assert_int_equal(s->interval_s, cases[i].interval);
			assert_int_equal(s->jitter_s, cases[i].jitter);
			assert_int_equal(s->hour, cases[i].hour);
			assert_int_equal(s->minute, cases[i].minute);
			assert_string_equal(s->text, cases[i].text);
		} else {
			assert_int_equal(diag.n, 1);
			assert_non_null(strstr(diag.lines[0], "mem:6: backup.schedule: "));
		}
		conf_free(c);
		conf_diag_clear(&diag);
	}
}

static void test_missing_file(void **state)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	(void)state;
	assert_int_equal(conf_load_file("/nonexistent/cluster.conf", "a", &c, &diag),
			 CONF_E_INVALID);
	assert_int_equal(diag.n, 1);
	assert_string_equal(diag.lines[0],
			    "/nonexistent/cluster.conf:0: cannot read the file (hint: check the path given with -c or SUPERVISOR_CONFIG)");
	conf_diag_clear(&diag);
}

/* ---- private keys ----------------------------------------------------- */

#define TEST_PRIV "oVWwpnqTnJOTJOgWUtgg/A+pn1lwZb7p0JuR8McMhyg="

static char *write_key(const char *text, mode_t mode)
{
	char *path = xstrdup("/tmp/test-conf-key-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void test_private_key_file(void **state)
{
	_cleanup_free_ char *good = write_key(TEST_PRIV "\n", 0600);
	_cleanup_free_ char *loose = write_key(TEST_PRIV "\n", 0644);
	_cleanup_free_ char *junk = write_key("not a key\n", 0600);
	struct conf_keys keys = { 0 };
	uint8_t key[WG_KEY_LEN], pub[WG_KEY_LEN];
	char why[512], b64[WG_KEY_B64_LEN + 1];

	(void)state;
	keys.private_key_file = good;
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), 0);
	assert_int_equal(wgkey_public(key, pub), 0);
	wgkey_to_base64(pub, b64);
	/* the public key `wg pubkey` prints for TEST_PRIV */
	assert_string_equal(b64, "Nl6JC++zEPxSTUkF+A/HGtexUV0E1OpZNNw14PqZrEc=");

	keys.private_key_file = loose;
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "accessible by group or others (mode 0644)"));
	assert_null(strstr(why, TEST_PRIV));

	keys.private_key_file = junk;
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), -EINVAL);
	assert_null(strstr(why, "not a key"));

	keys.private_key_file = "/nonexistent/wg.key";
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), -ENOENT);
	unlink(good);
	unlink(loose);
	unlink(junk);
}

static void test_private_key_env(void **state)
{
	struct conf_keys keys = { .private_key_env = "TEST_WG_KEY" };
	uint8_t key[WG_KEY_LEN];
	char why[512];

	(void)state;
	unsetenv("TEST_WG_KEY");
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "environment variable TEST_WG_KEY is not set");
	setenv("TEST_WG_KEY", TEST_PRIV, 1);
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), 0);
	setenv("TEST_WG_KEY", "oVWwpnqTnJOTJOgWUtgg/A+pn1lwZb7p0JuR8McMhy==", 1);
	assert_int_equal(conf_load_private_key(&keys, key, why, sizeof(why)), -EINVAL);
	assert_null(strstr(why, "oVWw"));
	unsetenv("TEST_WG_KEY");
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_example_cluster),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_mtu_auto),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_derived_paths),
		cmocka_unit_test(test_acl_mesh),
		cmocka_unit_test(test_cascade),
		cmocka_unit_test(test_children),
		cmocka_unit_test(test_ha_absent),
		cmocka_unit_test(test_fresh_short_warns),
		cmocka_unit_test(test_ha_full),
		cmocka_unit_test(test_ha_derived_flows),
		cmocka_unit_test(test_ha_failover_false),
		cmocka_unit_test(test_ha_no_acl),
		cmocka_unit_test(test_ha_off),
		cmocka_unit_test(test_node_from_environment),
		cmocka_unit_test(test_schedules),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_private_key_file),
		cmocka_unit_test(test_private_key_env),
	};
	_cleanup_free_ char *dir = xasprintf("%s/invalid", data_dir());
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);
	struct CMUnitTest *tests;
	size_t nt = 0;
	int r;

	if (n < 0) {
		fprintf(stderr, "cannot read %s: %s\n", dir, strerror(errno));
		return 1;
	}
	tests = xcalloc(ARRAY_SIZE(fixed) + (size_t)n, sizeof(*tests));
	memcpy(tests, fixed, sizeof(fixed));
	nt = ARRAY_SIZE(fixed);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);

		if (len > 5 && strcmp(name + len - 5, ".conf") == 0) {
			tests[nt].name = xasprintf("invalid/%s", name);
			tests[nt].test_func = test_invalid_file;
			tests[nt].initial_state = xasprintf("%s/%s", dir, name);
			nt++;
		}
		free(ents[i]);
	}
	free(ents);
	r = _cmocka_run_group_tests("conf", tests, nt, NULL, NULL);
	for (size_t i = ARRAY_SIZE(fixed); i < nt; i++) {
		free((void *)tests[i].name);
		free(tests[i].initial_state);
	}
	free(tests);
	return r;
}
