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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
