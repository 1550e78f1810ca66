// SPDX-License-Identifier: MIT
/* backup/plan.c with a fake clock: the next run, and retention across day,
 * ISO-week, month and year boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <errno.h>

#include "backup/backup.h"

/* UTC seconds for Y-M-D h:m:s (timegm: no time zone, no DST). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return (int64_t)timegm(&tm);
}

static void test_next_daily(void **state)
{
	struct conf_schedule s = { .kind = CONF_SCHEDULE_DAILY, .hour = 3, .minute = 0 };

	(void)state;
	assert_int_equal(backup_next_run(&s, "spoke-a", utc(2026, 11, 22, 2, 59, 59)), utc(2026, 11, 22, 3, 0, 0));
	/* exactly at the time: that run is due now, the next is tomorrow */
	assert_int_equal(backup_next_run(&s, "spoke-a", utc(2026, 11, 22, 3, 0, 0)), utc(2026, 11, 23, 3, 0, 0));
	/* across a month and a year */
	assert_int_equal(backup_next_run(&s, "spoke-a", utc(2026, 12, 31, 23, 0, 0)), utc(2027, 1, 1, 3, 0, 0));
}

static void test_next_jitter_is_stable_per_node(void **state)
{
	struct conf_schedule s = { .kind = CONF_SCHEDULE_DAILY, .hour = 3, .minute = 0, .jitter_s = 600 };
	int64_t now = utc(2026, 11, 22, 1, 0, 0), a, b;
	uint32_t ja = backup_jitter_s(&s, "spoke-a"), jb = backup_jitter_s(&s, "spoke-b");

	(void)state;
	assert_true(ja < 600 && jb < 600);
	assert_int_not_equal(ja, jb); /* two nodes do not dump at the same second */
	a = backup_next_run(&s, "spoke-a", now);
	b = backup_next_run(&s, "spoke-a", now + 60);
	assert_int_equal(a, b);       /* a restart does not move it */
	assert_int_equal(a, utc(2026, 11, 22, 3, 0, 0) + ja);
	/* inside the jitter window, before this node's time: still today */
	assert_int_equal(backup_next_run(&s, "spoke-a", utc(2026, 11, 22, 3, 0, 0) + ja - 1), a);
	s.jitter_s = 0;
	assert_int_equal(backup_jitter_s(&s, "spoke-a"), 0);
}

static void test_next_interval(void **state)
{
	struct conf_schedule every6 = { .kind = CONF_SCHEDULE_INTERVAL, .interval_s = 6 * 3600 };
	struct conf_schedule hourly = { .kind = CONF_SCHEDULE_INTERVAL, .interval_s = 3600 };

	(void)state;
	assert_int_equal(backup_next_run(&every6, "n", utc(2026, 11, 22, 5, 0, 0)), utc(2026, 11, 22, 6, 0, 0));
	assert_int_equal(backup_next_run(&every6, "n", utc(2026, 11, 22, 6, 0, 0)), utc(2026, 11, 22, 12, 0, 0));
	assert_int_equal(backup_next_run(&every6, "n", utc(2026, 11, 22, 23, 30, 0)), utc(2026, 11, 23, 0, 0, 0));
	assert_int_equal(backup_next_run(&hourly, "n", utc(2026, 11, 22, 5, 59, 59)), utc(2026, 11, 22, 6, 0, 0));
}

static size_t kept(const int64_t *t, size_t n, struct backup_keep k, bool *out)
{
	return backup_retention(t, n, &k, out);
}

/* One backup a day for 60 days: 7 daily + the weeks and months beyond them. */
static void test_retention_daily_weekly_monthly(void **state)
{
	int64_t t[60];
	bool out[60];
	size_t n;

	(void)state;
	for (int i = 0; i < 60; i++) /* newest first: 2026-11-22 back to 2026-09-24 */
		t[i] = utc(2026, 11, 22, 3, 0, 0) - (int64_t)i * 86400;
	n = kept(t, 60, (struct backup_keep){ .daily = 7 }, out);
	assert_int_equal(n, 7);
	for (int i = 0; i < 60; i++)
		assert_int_equal(out[i], i < 7);
	/*
	 * weekly 4: the newest of ISO weeks 47 (Sun 22nd), 46 (Sun 15th), 45
	 * (Sun 8th), 44 (Sun 1st): indexes 0, 7, 14, 21. monthly 3: November
	 * (22nd), October (31st, index 22), September (30th, index 53).
	 */
	n = kept(t, 60, (struct backup_keep){ .weekly = 4, .monthly = 3 }, out);
	assert_int_equal(n, 6);
	assert_true(out[0] && out[7] && out[14] && out[21] && out[22] && out[53]);
}

/* Several a day: the newest of each day counts. Unsorted input is fine. */
static void test_retention_newest_of_each_period(void **state)
{
	int64_t t[] = { utc(2026, 11, 21, 9, 0, 0), utc(2026, 11, 22, 3, 0, 0), utc(2026, 11, 21, 21, 0, 0),
			utc(2026, 11, 22, 15, 0, 0), utc(2026, 11, 20, 3, 0, 0) };
	bool out[5];

	(void)state;
	assert_int_equal(kept(t, 5, (struct backup_keep){ .daily = 2, .min = 1 }, out), 2);
	assert_false(out[0]);
	assert_false(out[1]);
	assert_true(out[2]);  /* the 21st's newest */
	assert_true(out[3]);  /* the 22nd's newest, and the newest of all */
	assert_false(out[4]);
}

/* ISO weeks: Sunday belongs to the week that began on Monday; 2026-12-31 and
 * 2027-01-01 are both in 2026-W53, but in different months and years. */
static void test_retention_iso_weeks_and_year_end(void **state)
{
	int64_t t[] = { utc(2026, 11, 22, 3, 0, 0), utc(2026, 11, 16, 3, 0, 0), utc(2026, 11, 15, 3, 0, 0) };
	int64_t y[] = { utc(2027, 1, 1, 3, 0, 0), utc(2026, 12, 31, 3, 0, 0), utc(2026, 12, 27, 3, 0, 0) };
	bool out[3];

	(void)state;
	assert_int_equal(kept(t, 3, (struct backup_keep){ .weekly = 2, .min = 1 }, out), 2);
	assert_true(out[0] && !out[1] && out[2]);
	assert_int_equal(kept(y, 3, (struct backup_keep){ .weekly = 2, .min = 1 }, out), 2);
	assert_true(out[0] && !out[1] && out[2]); /* Dec 27 (Sunday) is W52 */
	assert_int_equal(kept(y, 3, (struct backup_keep){ .monthly = 2, .min = 1 }, out), 2);
	assert_true(out[0] && out[1] && !out[2]);
}

/* Every recent run failed: only old good backups are left, and they stay. */
static void test_retention_never_eats_the_last_good(void **state)
{
	int64_t old[] = { utc(2026, 8, 1, 3, 0, 0), utc(2026, 7, 1, 3, 0, 0), utc(2026, 6, 1, 3, 0, 0) };
	bool out[3];

	(void)state;
	/* nothing asked for: the newest still stays */
	assert_int_equal(kept(old, 3, (struct backup_keep){ 0 }, out), 1);
	assert_true(out[0] && !out[1] && !out[2]);
	/* the minimum: the 2 newest, whatever their age */
	assert_int_equal(kept(old, 3, (struct backup_keep){ .min = BACKUP_KEEP_MIN }, out), 2);
	assert_true(out[0] && out[1] && !out[2]);
	/* daily 7 counts days that have a backup, not the last 7 calendar days */
	assert_int_equal(kept(old, 3, (struct backup_keep){ .daily = 7 }, out), 3);
	assert_int_equal(kept(old, 0, (struct backup_keep){ .daily = 7 }, out), 0);
}

static void test_names(void **state)
{
	char name[32];
	char *f;

	(void)state;
	backup_name(utc(2026, 11, 22, 3, 0, 7), name, sizeof(name));
	assert_string_equal(name, "20261122T030007Z");
	assert_true(backup_name_valid(name));
	assert_true(backup_name_valid("20261122T030007Z-2"));
	assert_false(backup_name_valid(".inprogress"));
	assert_false(backup_name_valid("20261122T030007Z-"));
	assert_false(backup_name_valid("20261122T030007"));
	assert_false(backup_name_valid("catalog.json"));
	assert_false(backup_name_valid("20261122T030007Zx"));
	f = backup_db_file("app");
	assert_string_equal(f, "db_app.dump");
	free(f);
	/* every unsafe byte escaped: no two databases share a file, none escapes the directory */
	f = backup_db_file("../a b.c");
	assert_string_equal(f, "db_%2E%2E%2Fa%20b%2Ec.dump");
	free(f);
	f = backup_db_file("db_%2E");
	assert_string_equal(f, "db_db_%252E.dump");
	free(f);
}

static json_t *manifest(void)
{
	return json_pack("{s:i, s:[{s:s, s:i, s:s, s:i}, {s:s, s:i, s:s, s:i, s:i, s:s}]}", "format", 1, "files",
			 "name", "globals.sql", "size", 10, "sha256", "aa", "dump_exit", 0,
			 "name", "db_app.dump", "size", 20, "sha256", "bb", "dump_exit", 0, "verify_exit", 0,
			 "database", "app");
}

static void test_manifest_check(void **state)
{
	json_t *m = manifest();
	json_t *actual = json_pack("{s:{s:i, s:s}, s:{s:i, s:s}}", "globals.sql", "size", 10, "sha256", "aa",
				   "db_app.dump", "size", 20, "sha256", "bb");
	const char *why = NULL;

	(void)state;
	assert_true(backup_manifest_check(m, actual, &why));
	/* sizes only (the cheap check): still good */
	json_object_del(json_object_get(actual, "globals.sql"), "sha256");
	assert_true(backup_manifest_check(m, actual, &why));
	/* flipped bytes */
	json_object_set_new(json_object_get(actual, "db_app.dump"), "sha256", json_string("bc"));
	assert_false(backup_manifest_check(m, actual, &why));
	assert_non_null(strstr(why, "sha256"));
	/* truncated */
	json_object_set_new(json_object_get(actual, "db_app.dump"), "sha256", json_string("bb"));
	json_object_set_new(json_object_get(actual, "db_app.dump"), "size", json_integer(19));
	assert_false(backup_manifest_check(m, actual, &why));
	assert_non_null(strstr(why, "size"));
	/* missing */
	json_object_del(actual, "db_app.dump");
	assert_false(backup_manifest_check(m, actual, &why));
	assert_non_null(strstr(why, "missing"));
	/* a tool that did not exit 0 */
	json_object_set_new(actual, "db_app.dump", json_pack("{s:i, s:s}", "size", 20, "sha256", "bb"));
	json_object_set_new(json_array_get(json_object_get(m, "files"), 1), "verify_exit", json_integer(1));
	assert_false(backup_manifest_check(m, actual, &why));
	/* not a manifest at all */
	json_object_set_new(m, "format", json_integer(2));
	assert_false(backup_manifest_check(m, actual, &why));
	json_decref(m);
	m = json_pack("{s:i, s:[]}", "format", 1, "files");
	assert_false(backup_manifest_check(m, actual, &why));
	json_decref(m);
	json_decref(actual);
}

/* pgBackRest 2.45 `verify --output=text`, as printed on this machine. */
static const char verify_ok[] =
	"stanza: main\n"
	"status: ok\n"
	"  archiveId: 15-1, total WAL checked: 4, total valid WAL: 4\n"
	"    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n"
	"  backup: 20261122-070809F, status: valid, total files checked: 970, total valid files: 970\n"
	"    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n";
static const char verify_bad[] =
	"stanza: main\n"
	"status: error\n"
	"  backup: 20261122-070809F, status: invalid, total files checked: 970, total valid files: 969\n"
	"    missing: 0, checksum invalid: 1, size invalid: 0, other: 0\n";

static void test_pgbackrest_verify(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_true(backup_pgbackrest_verify_ok(verify_ok, &why));
	assert_null(why);
	assert_false(backup_pgbackrest_verify_ok(verify_bad, &why));
	assert_non_null(why);
	/* "status: ok" but a counter says otherwise */
	assert_false(backup_pgbackrest_verify_ok("stanza: main\nstatus: ok\n    missing: 2, checksum invalid: 0\n", &why));
	/* nothing at all is not ok */
	assert_false(backup_pgbackrest_verify_ok("", &why));
	assert_false(backup_pgbackrest_verify_ok("ERROR: [055]: unable to load info file\n", &why));
}

static void test_pgbackrest_info(void **state)
{
	static const char text[] =
		"[{\"archive\":[{\"database\":{\"id\":1,\"repo-key\":1},\"id\":\"15-1\",\"max\":\"000000010000000000000007\","
		"\"min\":\"000000010000000000000004\"}],\"backup\":[{\"archive\":{\"start\":\"000000010000000000000005\","
		"\"stop\":\"000000010000000000000005\"},\"backrest\":{\"format\":5,\"version\":\"2.45\"},"
		"\"database\":{\"id\":1,\"repo-key\":1},\"error\":false,\"info\":{\"delta\":23000000,"
		"\"repository\":{\"delta\":3000000,\"size\":3000000},\"size\":23000000},\"label\":\"20261122-070809F\","
		"\"prior\":null,\"reference\":null,\"timestamp\":{\"start\":1795331289,\"stop\":1795331293},"
		"\"type\":\"full\"}],\"cipher\":\"none\",\"db\":[{\"id\":1,\"repo-key\":1,\"system-id\":7,"
		"\"version\":\"15\"}],\"name\":\"main\",\"repo\":[{\"cipher\":\"none\",\"key\":1,"
		"\"status\":{\"code\":0,\"message\":\"ok\"}}],\"status\":{\"code\":0,\"lock\":{\"backup\":"
		"{\"held\":false}},\"message\":\"ok\"}}]";
	json_t *info = NULL, *b;

	(void)state;
	assert_int_equal(backup_pgbackrest_info(text, &info), 0);
	assert_int_equal(json_integer_value(json_object_get(info, "status_code")), 0);
	b = json_array_get(json_object_get(info, "backups"), 0);
	assert_string_equal(json_string_value(json_object_get(b, "label")), "20261122-070809F");
	assert_string_equal(json_string_value(json_object_get(b, "type")), "full");
	assert_int_equal(json_integer_value(json_object_get(b, "finished_at")), 1795331293);
	assert_int_equal(json_integer_value(json_object_get(b, "size_bytes")), 3000000);
	assert_false(json_is_true(json_object_get(b, "error")));
	json_decref(info);
	/* a missing stanza is a document too (code 1, no backups) */
	assert_int_equal(backup_pgbackrest_info("[{\"name\":\"main\",\"status\":{\"code\":1,"
						"\"message\":\"missing stanza path\"}}]", &info), 0);
	assert_int_equal(json_integer_value(json_object_get(info, "status_code")), 1);
	assert_int_equal(json_array_size(json_object_get(info, "backups")), 0);
	json_decref(info);
	assert_int_equal(backup_pgbackrest_info("not json", &info), -EINVAL);
	assert_int_equal(backup_pgbackrest_info("[]", &info), -EINVAL);
	assert_int_equal(backup_pgbackrest_info("{\"status\":1}", &info), -EINVAL);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_daily),
		cmocka_unit_test(test_next_jitter_is_stable_per_node),
		cmocka_unit_test(test_next_interval),
		cmocka_unit_test(test_retention_daily_weekly_monthly),
		cmocka_unit_test(test_retention_newest_of_each_period),
		cmocka_unit_test(test_retention_iso_weeks_and_year_end),
		cmocka_unit_test(test_retention_never_eats_the_last_good),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_manifest_check),
		cmocka_unit_test(test_pgbackrest_verify),
		cmocka_unit_test(test_pgbackrest_info),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
