// SPDX-License-Identifier: MIT
/*
 * The pure side of backups: the schedule's next time, and retention as a
 * grandfather-father-son choice among good backups (restic's and
 * postgres-backup-local's keep-daily/weekly/monthly, counting periods that
 * have a backup, never wall-clock windows that may be empty).
 */
#include "backup/backup.h"
#include "lib/mem.h"

#include <stdlib.h>
#include <string.h>

#define DAY 86400

uint32_t backup_jitter_s(const struct conf_schedule *s, const char *node)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	if (!s->jitter_s)
		return 0;
	for (const char *p = node; p && *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % s->jitter_s;
}

int64_t backup_next_run(const struct conf_schedule *s, const char *node, int64_t now)
{
	int64_t jitter = backup_jitter_s(s, node), base, t;

	switch (s->kind) {
	case CONF_SCHEDULE_DAILY:
		/* today's slot, or tomorrow's when it has passed (jitter included) */
		base = now - ((now % DAY) + DAY) % DAY;
		t = base + s->hour * 3600 + s->minute * 60 + jitter;
		while (t <= now)
			t += DAY;
		return t;
	case CONF_SCHEDULE_INTERVAL:
		base = now - ((now % s->interval_s) + s->interval_s) % s->interval_s;
		t = base + jitter;
		while (t <= now)
			t += s->interval_s;
		return t;
	}
	return now + DAY;
}

/* ---- retention ------------------------------------------------------------------ */

struct item {
	int64_t started;
	size_t index;
};

static int newest_first(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->started != y->started)
		return x->started > y->started ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int64_t day_of(int64_t t)
{
	return t >= 0 ? t / DAY : (t - DAY + 1) / DAY;
}

/* ISO 8601 week: year * 100 + week, weeks starting on Monday. */
static int64_t week_of(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[16];

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%G%V", &tm);
	return strtoll(buf, NULL, 10);
}

static int64_t month_of(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	return (int64_t)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

/* Keep the newest backup of each of the @count newest distinct periods. */
static void keep_periods(const struct item *it, size_t n, uint32_t count, int64_t (*period)(int64_t),
			 bool *out)
{
	int64_t last = 0;
	uint32_t seen = 0;

	for (size_t i = 0; i < n && seen < count; i++) {
		int64_t p = period(it[i].started);

		if (seen && p == last)
			continue;
		out[it[i].index] = true; /* newest first: the first of a period is its newest */
		last = p;
		seen++;
	}
}

size_t backup_retention(const int64_t *started, size_t n, const struct backup_keep *keep, bool *out)
{
	struct item *it;
	size_t kept = 0, min = keep->min ? keep->min : 1;

	if (!n)
		return 0;
	it = xcalloc(n, sizeof(*it));
	for (size_t i = 0; i < n; i++) {
		it[i] = (struct item){ .started = started[i], .index = i };
		out[i] = false;
	}
	qsort(it, n, sizeof(*it), newest_first);
	for (size_t i = 0; i < n && i < min; i++)
		out[it[i].index] = true;
	keep_periods(it, n, keep->daily, day_of, out);
	keep_periods(it, n, keep->weekly, week_of, out);
	keep_periods(it, n, keep->monthly, month_of, out);
	free(it);
	for (size_t i = 0; i < n; i++)
		kept += out[i];
	return kept;
}
