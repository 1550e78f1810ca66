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
#include "backup/backup_internal.h"

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

/* ---- the age of a backup's data (backup/asof.c) ---------------------------------- */

#define T0 1795000000.0 /* some UTC second */

/* The run's position query on a replica (times in UTC seconds; NULL pointers are SQL NULLs). */
static json_t *replica_raw(const char *rx_status, double backlog, double upstream_lag, double sent_ago,
			   double replayed_ago, bool paused)
{
	json_t *raw = json_pack("{s:f, s:b, s:b, s:f}", "now", T0 + 0.75, "in_recovery", 1,
				"replay_paused", paused, "backlog_bytes", backlog);

	json_object_set_new(raw, "last_replay_at", replayed_ago >= 0 ? json_real(T0 - replayed_ago) : json_null());
	if (rx_status)
		json_object_set_new(raw, "receiver", json_pack("{s:s, s:f, s:f, s:f}", "status", rx_status,
						    "upstream_lag_bytes", upstream_lag, "last_msg_sent_at",
						    T0 - sent_ago, "since_last_msg_s", sent_ago));
	else
		json_object_set_new(raw, "receiver", json_null());
	return raw;
}

static json_t *lag_of(const json_t *pos, const char *k)
{
	return json_object_get(json_object_get(pos, "replica_lag"), k);
}

static void test_position_primary(void **state)
{
	json_t *raw = json_pack("{s:f, s:b, s:n, s:n, s:n, s:n}", "now", T0 + 0.9, "in_recovery", 0,
				"replay_paused", "backlog_bytes", "last_replay_at", "receiver");
	json_t *pos = backup_position(raw);
	char why[300];

	(void)state;
	/* a primary's data is as of now (floored: the dumps' snapshots come later) */
	assert_int_equal(json_integer_value(json_object_get(pos, "as_of")), (json_int_t)T0);
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "primary");
	assert_true(json_is_null(json_object_get(pos, "replica_lag")));
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), 0);
	json_decref(pos);
	json_decref(raw);
}

static void test_position_replica_caught_up_idle(void **state)
{
	/* idle primary: the last commit is an hour old, yet everything is replayed */
	json_t *raw = replica_raw("streaming", 0, 0, 3, 3600, false);
	json_t *pos = backup_position(raw);
	char why[300];

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(pos, "as_of")), (json_int_t)(T0 - 3));
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "caught_up");
	assert_int_equal(json_integer_value(lag_of(pos, "bytes")), 0);
	assert_true(json_number_value(lag_of(pos, "seconds")) == 0);
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), 0);
	json_decref(pos);
	json_decref(raw);
	/* paused while idle: nothing is missing, still current */
	raw = replica_raw("streaming", 0, 0, 3, 3600, true);
	pos = backup_position(raw);
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "caught_up");
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), 0);
	json_decref(pos);
	json_decref(raw);
}

static void test_position_replica_paused_behind(void **state)
{
	/* replay paused 10 min ago, 8 MB of WAL received since */
	json_t *raw = replica_raw("streaming", 8e6, 8e6, 1, 600, true);
	json_t *pos = backup_position(raw);
	char why[300];

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(pos, "as_of")), (json_int_t)(T0 - 600));
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "last_replayed_commit");
	assert_int_equal(json_integer_value(lag_of(pos, "bytes")), 8000000);
	assert_int_equal(json_integer_value(lag_of(pos, "backlog_bytes")), 8000000);
	assert_true(json_number_value(lag_of(pos, "seconds")) > 600);
	assert_true(json_is_true(lag_of(pos, "replay_paused")));
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), BACKUP_E_BEHIND);
	assert_non_null(strstr(why, "paused"));
	assert_non_null(strstr(why, "max_replica_lag 5m00s"));
	/* within a wider bound it may be taken, and says how far behind */
	assert_int_equal(backup_lag_verdict(pos, 900, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "10m01s behind"));
	json_decref(pos);
	json_decref(raw);
	/* received everything but the upstream reported more: not caught up either */
	raw = replica_raw("streaming", 0, 4096, 1, 400, false);
	pos = backup_position(raw);
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "last_replayed_commit");
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), BACKUP_E_BEHIND);
	assert_non_null(strstr(why, "4096 bytes"));
	json_decref(pos);
	json_decref(raw);
}

static void test_position_replica_receiver_down(void **state)
{
	/* receive = replay reads "caught up" with a dead receiver: the lag is unknown, not 0 */
	json_t *raw = replica_raw(NULL, 0, 0, 0, 30, false);
	json_t *pos = backup_position(raw);
	char why[300];

	(void)state;
	assert_true(json_is_null(lag_of(pos, "bytes")));
	assert_true(json_is_null(lag_of(pos, "seconds")));
	assert_true(json_is_null(lag_of(pos, "receiver")));
	assert_string_equal(json_string_value(json_object_get(pos, "as_of_source")), "last_replayed_commit");
	/* the data is at least 30 s old: within 5 min, provably */
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), 0);
	json_decref(pos);
	json_decref(raw);
	/* ... at least 2 h old: it may be current (an idle primary), but that cannot be told */
	raw = replica_raw(NULL, 0, 0, 0, 7200, false);
	pos = backup_position(raw);
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), BACKUP_E_BEHIND);
	assert_non_null(strstr(why, "not running"));
	json_decref(pos);
	json_decref(raw);
	/* no commit replayed since it started: undated */
	raw = replica_raw(NULL, 0, 0, 0, -1, false);
	pos = backup_position(raw);
	assert_true(json_is_null(json_object_get(pos, "as_of")));
	assert_true(json_is_null(json_object_get(pos, "as_of_source")));
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), BACKUP_E_UNDATED);
	json_decref(pos);
	json_decref(raw);
	/* a receiver that is there but not streaming knows nothing of its upstream either */
	raw = replica_raw("waiting", 0, 0, 50, 7200, false);
	pos = backup_position(raw);
	assert_true(json_is_null(lag_of(pos, "bytes")));
	assert_int_equal(backup_lag_verdict(pos, 300, why, sizeof(why)), BACKUP_E_BEHIND);
	assert_non_null(strstr(why, "waiting"));
	json_decref(pos);
	json_decref(raw);
}

static void test_manifest_as_of(void **state)
{
	json_t *m = json_pack("{s:i, s:I, s:b, s:I, s:s, s:{s:I, s:f, s:s}}", "format", 1,
			      "started_at", (json_int_t)T0, "in_recovery", 1, "as_of", (json_int_t)T0 - 7200,
			      "as_of_source", "last_replayed_commit", "replica_lag", "bytes", (json_int_t)5000000,
			      "seconds", 7200.5, "receiver", "streaming");
	json_t *e = json_object();
	int64_t age = -1;

	(void)state;
	backup_manifest_as_of(m, e);
	assert_int_equal(json_integer_value(json_object_get(e, "as_of")), (json_int_t)T0 - 7200);
	assert_string_equal(json_string_value(json_object_get(e, "as_of_source")), "last_replayed_commit");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "replica_lag"), "bytes")), 5000000);
	/* the age is the data's, not the file's: two hours, though taken just now */
	assert_true(backup_data_age(e, (int64_t)T0 + 5, &age));
	assert_int_equal(age, 7205);
	/* two clocks: an as_of ahead of now reads 0, not negative */
	assert_true(backup_data_age(e, (int64_t)T0 - 8000, &age));
	assert_int_equal(age, 0);
	json_decref(e);
	/* written with an unknown as_of: null, and no age */
	json_object_set_new(m, "as_of", json_null());
	json_object_set_new(m, "as_of_source", json_null());
	e = json_object();
	backup_manifest_as_of(m, e);
	assert_true(json_is_null(json_object_get(e, "as_of")));
	assert_false(backup_data_age(e, (int64_t)T0, &age));
	json_decref(e);
	/* older manifests: a replica's data age is unknown ... */
	json_object_del(m, "as_of");
	json_object_del(m, "as_of_source");
	json_object_del(m, "replica_lag");
	e = json_object();
	backup_manifest_as_of(m, e);
	assert_true(json_is_null(json_object_get(e, "as_of")));
	assert_true(json_is_null(json_object_get(e, "replica_lag")));
	assert_false(backup_data_age(e, (int64_t)T0, &age));
	json_decref(e);
	/* ... a primary's is its start (the snapshots came after) */
	json_object_set_new(m, "in_recovery", json_false());
	e = json_object();
	backup_manifest_as_of(m, e);
	assert_int_equal(json_integer_value(json_object_get(e, "as_of")), (json_int_t)T0);
	assert_string_equal(json_string_value(json_object_get(e, "as_of_source")), "started_at");
	assert_true(backup_data_age(e, (int64_t)T0 + 60, &age));
	assert_int_equal(age, 60);
	json_decref(e);
	json_decref(m);
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

/*
 * A run started by hand that ends in the same second as the daemon's own
 * (a precheck refusal takes milliseconds) is the later one when it appeared
 * later: finished_at alone is a tie, and the daemon kept reporting its own.
 */
static void test_catalog_run_is_newer(void **state)
{
	json_t *own = json_pack("{s:s, s:I, s:b}", "id", "own", "finished_at", (json_int_t)1000, "ok", 0);
	json_t *same_s = json_pack("{s:s, s:I, s:b}", "id", "hand", "finished_at", (json_int_t)1000, "ok", 0);
	json_t *later = json_pack("{s:s, s:I, s:b}", "id", "hand", "finished_at", (json_int_t)1001, "ok", 1);
	json_t *older = json_pack("{s:s, s:I, s:b}", "id", "old", "finished_at", (json_int_t)999, "ok", 1);

	(void)state;
	assert_true(catalog_run_is_newer(same_s, 5001, own, 5000));  /* the field fault */
	assert_false(catalog_run_is_newer(same_s, 5000, own, 5001)); /* ours came later */
	assert_false(catalog_run_is_newer(same_s, 5000, own, 5000)); /* read as ours ended: ours */
	assert_true(catalog_run_is_newer(later, 1, own, 5000));
	assert_false(catalog_run_is_newer(older, 9000, own, 5000));
	assert_true(catalog_run_is_newer(older, 1, NULL, 0));
	assert_false(catalog_run_is_newer(NULL, 9000, own, 5000));
	json_decref(own);
	json_decref(same_s);
	json_decref(later);
	json_decref(older);
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
		cmocka_unit_test(test_position_primary),
		cmocka_unit_test(test_position_replica_caught_up_idle),
		cmocka_unit_test(test_position_replica_paused_behind),
		cmocka_unit_test(test_position_replica_receiver_down),
		cmocka_unit_test(test_manifest_as_of),
		cmocka_unit_test(test_pgbackrest_verify),
		cmocka_unit_test(test_pgbackrest_info),
		cmocka_unit_test(test_catalog_run_is_newer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
