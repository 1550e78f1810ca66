// SPDX-License-Identifier: MIT
/*
 * pgwatch: pg_hba from the ACLs, replica settings, slot names; the start
 * gates; the primary's per-replica rows from pg_stat_replication; clone
 * progress.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "child/child.h"
#include "lib/loop.h"
#include "pgwatch/pgwatch_internal.h"

static struct conf *load(const char *path, const char *node)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_file(path, node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		fail_msg("cannot load %s", path);
	}
	return c;
}

static struct conf *example(const char *node)
{
	return load(getenv("EXAMPLE_CONF"), node);
}

static void test_hba_primary_follows_acl(void **state)
{
	struct conf *c = example("spoke-a");
	char *hba = pg_hba_text(c, NULL);

	(void)state;
	assert_non_null(strstr(hba, "local   all          postgres                       peer map=supervisor\n"));
	assert_non_null(strstr(hba, "host    replication  replicator   10.88.0.12/32     scram-sha-256  # spoke-b\n"));
	assert_non_null(strstr(hba, "host    all          all          10.88.0.13/32     scram-sha-256  # spoke-c\n"));
	assert_null(strstr(hba, "10.88.0.1/32"));  /* never the hub */
	assert_null(strstr(hba, "10.88.0.11/32")); /* not itself */
	assert_null(strstr(hba, " trust"));
	assert_null(strstr(hba, "md5"));
	free(hba);
	conf_free(c);
}

static void test_hba_replica_only_allowed_sources(void **state)
{
	struct conf *c = example("spoke-b");
	char *hba = pg_hba_text(c, "host all app 10.88.0.13/32 scram-sha-256");

	(void)state;
	/* acl: only spoke-a may reach spoke-b on 5432 */
	assert_non_null(strstr(hba, "10.88.0.11/32"));
	assert_null(strstr(hba, "10.88.0.13/32     scram-sha-256  # spoke-c"));
	/* the user's own lines come last, as given */
	assert_non_null(strstr(hba, "# pg_hba.local.conf\nhost all app 10.88.0.13/32 scram-sha-256\n"));
	free(hba);
	conf_free(c);
}

static void test_hba_without_acl_trusts_spokes(void **state)
{
	struct conf *c = load(getenv("CASCADE_CONF"), "spoke-a");
	char *hba = pg_hba_text(c, NULL);

	(void)state;
	assert_non_null(strstr(hba, "10.88.0.12/32"));
	assert_non_null(strstr(hba, "10.88.0.13/32"));
	assert_null(strstr(hba, "10.88.0.1/32"));
	free(hba);
	conf_free(c);
}

static void test_settings_replica(void **state)
{
	struct conf *c = load(getenv("CASCADE_CONF"), "spoke-c");
	char *s = pg_settings_text(c, "/run/supervisor/pgpass", NULL);

	(void)state;
	/* cascading: spoke-c streams from spoke-b */
	assert_non_null(strstr(s, "primary_conninfo = 'host=10.88.0.12 port=5432 user=replicator passfile=/run/supervisor/pgpass application_name=spoke-c connect_timeout=5'\n"));
	assert_non_null(strstr(s, "primary_slot_name = 'spoke_c'\n"));
	assert_non_null(strstr(s, "wal_level = replica\n"));
	assert_null(strstr(s, "password="));
	assert_null(strstr(s, "\nlisten_addresses")); /* a setting only on the command line */
	free(s);
	conf_free(c);
}

static void test_settings_primary(void **state)
{
	struct conf *c = example("spoke-a");
	char *s = pg_settings_text(c, "/x", NULL);

	(void)state;
	assert_null(strstr(s, "primary_conninfo"));
	assert_non_null(strstr(s, "cluster_name = 'spoke-a'\n"));
	free(s);
	conf_free(c);
}

static void test_slot_names(void **state)
{
	char buf[64];

	(void)state;
	pg_slot_name("spoke-b", buf, sizeof(buf));
	assert_string_equal(buf, "spoke_b");
	pg_slot_name("a-b-c9", buf, sizeof(buf));
	assert_string_equal(buf, "a_b_c9");
	pg_slot_name("spoke-b", buf, 4);
	assert_string_equal(buf, "spo");
}

/* The postmaster's stop plan always fits the budget, with room for what stops after it. */
static void test_stop_plan_fits_budget(void **state)
{
	struct pg_stop_plan p;
	struct child_stop_step steps[2];

	(void)state;
	pg_stop_plan(25000, &p); /* the default: documented as 8 + 10 + 5 */
	assert_int_equal(p.checkpoint_ms, 8000);
	assert_int_equal(p.fast_ms, 10000);
	assert_int_equal(p.immediate_ms, 5000);
	pg_stop_steps(&p, steps);
	assert_int_equal(steps[0].signo, SIGINT);
	assert_int_equal(steps[0].timeout_ms, 10000);
	assert_int_equal(steps[1].signo, SIGQUIT);
	assert_int_equal(steps[1].timeout_ms, 5000);

	pg_stop_plan(8000, &p); /* the old default: everything shrinks */
	assert_int_equal(p.checkpoint_ms + p.fast_ms + p.immediate_ms, 7200);
	assert_true(p.immediate_ms < 5000);

	pg_stop_plan(300000, &p); /* the largest: SIGQUIT needs no more than 5 s */
	assert_int_equal(p.immediate_ms, 5000);
	assert_int_equal(p.checkpoint_ms + p.fast_ms, 293000);
	assert_true(p.fast_ms > p.checkpoint_ms);

	for (uint32_t b = 1000; b <= 300000; b += 1000) { /* every budget the file allows */
		uint32_t reserve = b / 10 < 2000 ? b / 10 : 2000;

		pg_stop_plan(b, &p);
		assert_true(p.checkpoint_ms > 0 && p.fast_ms > 0 && p.immediate_ms > 0);
		assert_int_equal((uint64_t)p.checkpoint_ms + p.fast_ms + p.immediate_ms, b - reserve);
		assert_true(p.immediate_ms <= 5000);
	}
}

/* Postgres needs both gates open: a fresh tunnel and the firewall in force. */
/* The watcher's report, judged. The report is cleared; @h keeps the findings. */
static enum health judge(const struct pgwatch *pw, const struct conf *c, struct health_report *h)
{
	struct pg_report r;

	pgwatch_report(pw, &r);
	pgwatch_health(&r, c, h);
	pg_report_clear(&r);
	return h->level;
}

static void test_start_waits_for_firewall(void **state)
{
	struct conf *c = example("spoke-b");
	struct loop *loop;
	struct child_set *children;
	struct pgwatch *pw;
	struct child_policy pol = { .backoff_max_ms = 1000 };
	struct health_report h = { 0 };

	(void)state;
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(child_set_new(loop, &pol, &children), 0);
	assert_int_equal(pgwatch_new(loop, children, c, NULL, &pw), 0);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_TUNNEL);
	pgwatch_firewall(pw, true, NULL);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_TUNNEL); /* no tunnel yet */
	pgwatch_firewall(pw, false, "table inet supervisor (delete): Operation not permitted");
	pgwatch_tunnel(pw, true);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_FIREWALL);
	assert_null(child_find(children, "postgres"));
	assert_int_equal(judge(pw, c, &h), HEALTH_CRITICAL);
	assert_non_null(strstr(h.reasons[0].text, "Operation not permitted"));
	assert_string_equal(h.reasons[0].component, "postgres");
	health_report_clear(&h);
	pgwatch_free(pw);
	child_set_free(children);
	loop_free(loop);
	conf_free(c);
}

/* A pgwatch for @node whose last probe returned @probe (JSON text), Postgres running. */
struct fixture {
	struct conf *c;
	struct loop *loop;
	struct child_set *children;
	struct pgwatch *pw;
};

static void fixture_up(struct fixture *f, const char *node, const char *probe)
{
	struct child_policy pol = { .backoff_max_ms = 1000 };

	f->c = example(node);
	assert_int_equal(loop_new(&f->loop), 0);
	assert_int_equal(child_set_new(f->loop, &pol, &f->children), 0);
	assert_int_equal(pgwatch_new(f->loop, f->children, f->c, NULL, &f->pw), 0);
	f->pw->last = json_loads(probe, 0, NULL);
	assert_non_null(f->pw->last);
	f->pw->state = PG_STATE_RUNNING;
}

static void fixture_down(struct fixture *f)
{
	pgwatch_free(f->pw);
	child_set_free(f->children);
	loop_free(f->loop);
	conf_free(f->c);
}

static const struct pg_member *member(const struct pg_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_members; i++)
		if (!strcmp(r->members[i].node->name, name))
			return &r->members[i];
	fail_msg("no row for %s", name);
	return NULL;
}

/*
 * Field fault: during a clone the primary has two pg_stat_replication rows
 * from the replica's address, pg_basebackup's WAL stream ("streaming", with
 * the slot) and the base backup itself. The first one used to be taken for
 * the replica's link: "streaming" while it was still being cloned.
 */
static void test_clone_connections_are_not_the_link(void **state)
{
	struct fixture f;
	struct pg_report r;
	struct health_report h = { 0 };
	const struct pg_member *b, *c;
	char text[128];

	(void)state;
	fixture_up(&f, "spoke-a",
		   "{\"in_recovery\": false, \"timeline\": 1, \"slots\": [], \"replicas\": ["
		   " {\"application_name\": \"spoke-b/clone\", \"client_addr\": \"10.88.0.12\","
		   "  \"state\": \"streaming\", \"replay_lag_bytes\": 0, \"backend_age_s\": 10.0,"
		   "  \"clone_phase\": null, \"clone_done_bytes\": null, \"clone_total_bytes\": null},"
		   " {\"application_name\": \"spoke-b/clone\", \"client_addr\": \"10.88.0.12\","
		   "  \"state\": \"backup\", \"clone_phase\": \"streaming database files\","
		   "  \"clone_total_bytes\": 1000000000, \"clone_done_bytes\": 400000000, \"backend_age_s\": 10.0},"
		   " {\"application_name\": \"spoke-b/clone\", \"client_addr\": \"10.88.0.12\","
		   "  \"state\": \"streaming\", \"clone_phase\": null, \"clone_done_bytes\": null},"
		   " {\"application_name\": \"spoke-c\", \"client_addr\": \"10.88.0.12\","
		   "  \"state\": \"streaming\", \"replay_lag_bytes\": 0}"
		   "]}");
	pgwatch_report(f.pw, &r);
	b = member(&r, "spoke-b");
	assert_string_equal(b->link, "cloning");
	assert_true(isnan(b->replay_lag_s));
	assert_true(b->clone.active);
	assert_true(b->clone.done_bytes == 400000000);
	assert_true(b->clone.eta_s == 15);
	assert_string_equal(pg_clone_text(&b->clone, text, sizeof(text)),
			    "40% (381.5 MiB of 953.7 MiB, ~15s left)");
	/* spoke-c's name from spoke-b's address is not spoke-c's link */
	c = member(&r, "spoke-c");
	assert_string_equal(c->link, "absent");
	pgwatch_health(&r, f.c, &h);
	assert_int_equal(h.level, HEALTH_DEGRADED);
	assert_non_null(strstr(h.reasons[0].text, "spoke-b is being cloned: 40% (381.5 MiB of 953.7 MiB, ~15s left)"));
	assert_string_equal(h.reasons[0].component, "replication");
	health_report_clear(&h);
	pg_report_clear(&r);
	fixture_down(&f);
}

/* The walreceiver (application_name = node name) is the link, whatever comes first. */
static void test_walreceiver_is_the_link(void **state)
{
	struct fixture f;
	struct pg_report r;
	const struct pg_member *b;

	(void)state;
	fixture_up(&f, "spoke-a",
		   "{\"in_recovery\": false, \"timeline\": 1, \"slots\": [], \"replicas\": ["
		   " {\"application_name\": \"psql\", \"client_addr\": \"10.88.0.12\", \"state\": \"startup\"},"
		   " {\"application_name\": \"spoke-b\", \"client_addr\": \"10.88.0.12\","
		   "  \"state\": \"streaming\", \"replay_lag_bytes\": 0, \"replay_lag_s\": null}"
		   "]}");
	pgwatch_report(f.pw, &r);
	b = member(&r, "spoke-b");
	assert_string_equal(b->link, "streaming");
	assert_true(b->idle);
	assert_true(b->replay_lag_s == 0);
	assert_false(b->clone.active);
	pg_report_clear(&r);
	fixture_down(&f);
}

/*
 * An absent replica while this node's own hub tunnel is fresh: the reason
 * points past the tunnel (the replica, or the hub's forwarding).
 */
static void test_absent_replica_hint(void **state)
{
	struct fixture f;
	struct health_report h = { 0 };
	const char *hint = "spoke-b is absent (this node's tunnel is fresh: check the replica, "
			   "and on the hub `supervisor ctl firewall`)";

	(void)state;
	fixture_up(&f, "spoke-a", "{\"in_recovery\": false, \"timeline\": 1, \"slots\": [], \"replicas\": []}");
	assert_int_equal(judge(f.pw, f.c, &h), HEALTH_DEGRADED);
	assert_string_equal(h.reasons[0].text, "replication: spoke-b is absent");
	health_report_clear(&h);
	f.pw->started = true; /* the tunnel's news must not start anything here */
	pgwatch_tunnel(f.pw, true);
	assert_int_equal(judge(f.pw, f.c, &h), HEALTH_DEGRADED);
	assert_non_null(strstr(h.reasons[0].text, hint));
	health_report_clear(&h);
	pgwatch_tunnel(f.pw, false);
	assert_int_equal(judge(f.pw, f.c, &h), HEALTH_DEGRADED);
	assert_string_equal(h.reasons[0].text, "replication: spoke-b is absent");
	health_report_clear(&h);
	fixture_down(&f);
}

static void test_clone_progress_lines(void **state)
{
	uint64_t done = 0, total = 0;
	struct pg_clone c = { .active = true, .done_bytes = 3 << 20, .total_bytes = NAN, .eta_s = NAN };
	char text[128];

	(void)state;
	assert_true(clone_progress_parse("190464/465920 kB (40%), 0/1 tablespace", &done, &total));
	assert_int_equal(done, 190464);
	assert_int_equal(total, 465920);
	assert_true(clone_progress_parse("     0/465920 kB (0%), 0/1 tablespace", &done, &total));
	assert_int_equal(done, 0);
	assert_true(clone_progress_parse("465930/465920 kB (100%), 1/1 tablespace", &done, &total));
	/* --no-estimate-size: the total reads 0 */
	assert_true(clone_progress_parse("20480/0 kB (0%), 0/2 tablespaces", &done, &total));
	assert_int_equal(total, 0);
	assert_false(clone_progress_parse("pg_basebackup: error: could not connect", &done, &total));
	assert_false(clone_progress_parse("", &done, &total));
	assert_false(clone_progress_parse("WARNING: 12/ kB", &done, &total));
	assert_string_equal(pg_clone_text(&c, text, sizeof(text)), "3.0 MiB so far");
	c = (struct pg_clone){ .active = true, .phase = "waiting for checkpoint to finish", .done_bytes = 0,
			       .total_bytes = NAN, .eta_s = NAN };
	assert_string_equal(pg_clone_text(&c, text, sizeof(text)), "waiting for checkpoint to finish");
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hba_primary_follows_acl),
		cmocka_unit_test(test_hba_replica_only_allowed_sources),
		cmocka_unit_test(test_hba_without_acl_trusts_spokes),
		cmocka_unit_test(test_settings_replica),
		cmocka_unit_test(test_settings_primary),
		cmocka_unit_test(test_slot_names),
		cmocka_unit_test(test_stop_plan_fits_budget),
		cmocka_unit_test(test_start_waits_for_firewall),
		cmocka_unit_test(test_clone_connections_are_not_the_link),
		cmocka_unit_test(test_walreceiver_is_the_link),
		cmocka_unit_test(test_clone_progress_lines),
		cmocka_unit_test(test_absent_replica_hint),
	};

	return cmocka_run_group_tests_name("pgwatch", tests, NULL, NULL);
}
