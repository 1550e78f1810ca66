// SPDX-License-Identifier: MIT
/*
 * Time-related value syntax: backup schedules and child stop plans.
 *
 * Backup schedule syntax: "daily HH:MM" (UTC), "hourly", "every N{s,m,h,d}",
 * each optionally followed by "jitter N{s,m,h}". Kept small on purpose: a
 * cron dialect would be one more thing to get wrong at 03:00.
 */
#include "conf/conf_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/proc.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* "500ms", "90s", "10m", "6h", "1d" -> milliseconds; false when malformed. */
static bool parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		      { "d", 86400000 } };
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return false;
	v = strtoul(s, &end, 10);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			if (v == 0 || v > 366ULL * 86400000 / units[i].ms)
				return false;
			*out = v * units[i].ms;
			return true;
		}
	}
	return false;
}

/* Whole seconds only (schedules). */
static bool parse_duration(const char *s, uint32_t *out)
{
	uint64_t ms;

	if (!parse_duration_ms(s, &ms) || ms % 1000)
		return false;
	*out = (uint32_t)(ms / 1000);
	return true;
}

/*
 * "SIGINT/30s SIGQUIT/10s": each step sends a signal and waits; SIGKILL
 * follows the last one. Stop signals that cannot stop anything (STOP, CONT,
 * CHLD) are refused: a plan made of them would always end in SIGKILL.
 */
bool stop_plan_parse(const char *text, struct conf_child *out, const char **why)
{
	char buf[256];
	char *save = NULL;

	if (strlen(text) >= sizeof(buf)) {
		*why = "too long";
		return false;
	}
	strcpy(buf, text);
	out->n_stop = 0;
	for (char *w = strtok_r(buf, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		char *slash = strchr(w, '/');
		uint64_t ms;
		int sig;

		if (out->n_stop == CHILD_STOP_STEPS_MAX) {
			*why = "at most 4 steps";
			return false;
		}
		if (!slash) {
			*why = "each step is SIGNAL/TIMEOUT";
			return false;
		}
		*slash = '\0';
		sig = signal_from_name(w);
		if (!sig || sig == SIGSTOP || sig == SIGCONT || sig == SIGCHLD) {
			*why = "unknown or unusable signal";
			return false;
		}
		if (!parse_duration_ms(slash + 1, &ms) || ms > 600000) {
			*why = "the timeout must be a duration up to 10m, e.g. 5s or 500ms";
			return false;
		}
		out->stop[out->n_stop++] = (struct child_stop_step){ sig, (uint32_t)ms };
	}
	if (!out->n_stop) {
		*why = "empty";
		return false;
	}
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
