// SPDX-License-Identifier: MIT
/* pgwatch/files.c: pg_hba from the ACLs, replica settings, slot names. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgwatch/pgwatch.h"

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
	char *s = pg_settings_text(c, "/run/supervisor/pgpass");

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
	char *s = pg_settings_text(c, "/x");

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
static void test_start_waits_for_firewall(void **state)
{
	struct conf *c = example("spoke-b");
	struct loop *loop;
	struct child_set *children;
	struct pgwatch *pw;
	struct child_policy pol = { .backoff_max_ms = 1000 };
	json_t *reasons = json_array(), *js;

	(void)state;
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(child_set_new(loop, &pol, &children), 0);
	assert_int_equal(pgwatch_new(loop, children, c, &pw), 0);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_TUNNEL);
	pgwatch_firewall(pw, true, NULL);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_TUNNEL); /* no tunnel yet */
	pgwatch_firewall(pw, false, "table inet supervisor (delete): Operation not permitted");
	pgwatch_tunnel(pw, true);
	assert_int_equal(pgwatch_state(pw), PG_STATE_WAITING_FOR_FIREWALL);
	assert_null(child_find(children, "postgres"));
	assert_int_equal(pgwatch_health(pw, reasons), 2);
	js = json_array_get(reasons, 0);
	assert_non_null(strstr(json_string_value(js), "Operation not permitted"));
	json_decref(reasons);
	pgwatch_free(pw);
	child_set_free(children);
	loop_free(loop);
	conf_free(c);
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
	};

	return cmocka_run_group_tests_name("pgwatch", tests, NULL, NULL);
}
