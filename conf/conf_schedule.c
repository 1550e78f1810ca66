// SPDX-License-Identifier: MIT
/*
 * Backup schedule syntax: "daily HH:MM" (UTC), "hourly", "every N{s,m,h,d}",
 * each optionally followed by "jitter N{s,m,h}". Kept small on purpose: a
 * cron dialect would be one more thing to get wrong at 03:00.
 */
#include "conf_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* "90s", "10m", "6h", "1d" -> seconds; false when malformed. */
static bool parse_duration(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;
	uint32_t mult;

	if (!isdigit((unsigned char)*s))
		return false;
	v = strtoul(s, &end, 10);
	switch (*end) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: return false;
	}
	if (end[1] != '\0' || v == 0 || v > 366UL * 86400 / mult)
		return false;
	*out = (uint32_t)(v * mult);
	return true;
}

bool schedule_parse(const char *text, struct conf_schedule *out, const char **why)
{
	char buf[128];
	char *words[5];
	size_t n = 0;
	char *save = NULL;

	if (strlen(text) >= sizeof(buf)) {
		*why = "too long";
		return false;
	}
	strcpy(buf, text);
	for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == ARRAY_SIZE(words)) {
			*why = "too many words";
			return false;
		}
		words[n++] = w;
	}
	memset(out, 0, sizeof(*out));
	size_t used;

	if (n >= 1 && strcmp(words[0], "hourly") == 0) {
		out->kind = CONF_SCHEDULE_INTERVAL;
		out->interval_s = 3600;
		used = 1;
	} else if (n >= 2 && strcmp(words[0], "daily") == 0) {
		const char *t = words[1];

		if (strlen(t) != 5 || !isdigit((unsigned char)t[0]) || !isdigit((unsigned char)t[1]) ||
		    t[2] != ':' || !isdigit((unsigned char)t[3]) || !isdigit((unsigned char)t[4])) {
			*why = "the time must be HH:MM";
			return false;
		}
		out->kind = CONF_SCHEDULE_DAILY;
		out->hour = (t[0] - '0') * 10 + (t[1] - '0');
		out->minute = (t[3] - '0') * 10 + (t[4] - '0');
		if (out->hour > 23 || out->minute > 59) {
			*why = "no such time of day";
			return false;
		}
		used = 2;
	} else if (n >= 2 && strcmp(words[0], "every") == 0) {
		out->kind = CONF_SCHEDULE_INTERVAL;
		if (!parse_duration(words[1], &out->interval_s)) {
			*why = "the interval must be a number with s, m, h or d";
			return false;
		}
		if (out->interval_s < 10) {
			*why = "the interval must be at least 10s";
			return false;
		}
		used = 2;
	} else {
		*why = "unknown schedule";
		return false;
	}
	if (n == used)
		return true;
	if (n != used + 2 || strcmp(words[used], "jitter") != 0) {
		*why = "unexpected words after the schedule";
		return false;
	}
	if (!parse_duration(words[used + 1], &out->jitter_s)) {
		*why = "the jitter must be a number with s, m or h";
		return false;
	}
	uint32_t period = out->kind == CONF_SCHEDULE_DAILY ? 86400 : out->interval_s;

	if (out->jitter_s >= period) {
		*why = "the jitter must be shorter than the period";
		return false;
	}
	return true;
}
