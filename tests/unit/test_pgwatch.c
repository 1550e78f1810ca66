// SPDX-License-Identifier: MIT
/* pgwatch/files.c: pg_hba from the ACLs, replica settings, slot names. */
#include <setjmp.h>
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

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hba_primary_follows_acl),
		cmocka_unit_test(test_hba_replica_only_allowed_sources),
		cmocka_unit_test(test_hba_without_acl_trusts_spokes),
		cmocka_unit_test(test_settings_replica),
		cmocka_unit_test(test_settings_primary),
		cmocka_unit_test(test_slot_names),
	};

	return cmocka_run_group_tests_name("pgwatch", tests, NULL, NULL);
}
