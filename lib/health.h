/* SPDX-License-Identifier: MIT */
/*
 * The health model every module judges itself in: four levels, ordered so
 * that "worse of" is a comparison, and a report that collects, for each
 * finding, the level it implies, the component it belongs to and a reason
 * a person can act on. Modules fill a report from their typed status; the
 * supervisor renders it (JSON "overall"/"reasons", ctl's exit status,
 * /healthz, supervisor_health) and never re-derives a level from text.
 */
#ifndef SUP_LIB_HEALTH_H
#define SUP_LIB_HEALTH_H

#include <stddef.h>

#include "lib/common.h"

/* Health, also the Nagios-style exit codes of `supervisor ctl`. */
enum health {
	HEALTH_OK = 0,
	HEALTH_DEGRADED = 1,
	HEALTH_CRITICAL = 2,
	HEALTH_UNKNOWN = 3,
};

/* health_name() - "ok", "degraded", "critical" or "unknown". */
const char *health_name(enum health h);

/* health_worse() - the worse of @a and @b (unknown is worst: nothing is known to be fine). */
enum health health_worse(enum health a, enum health b);

struct health_reason {
	enum health level;
	const char *component;   /* static: "tunnel", "postgres", "replication", ... */
	char *text;              /* owned; the whole sentence, as shown to people */
};

/* A level and the reasons for it; zero-initialised is an empty, ok report. */
struct health_report {
	enum health level;
	struct health_reason *reasons;
	size_t n_reasons;
};

/**
 * health_add() - record a finding: raise @r's level to @level and keep the reason.
 * @r: the report.
 * @level: what this finding implies (HEALTH_OK records a note without raising).
 * @component: static component name.
 * @fmt: printf format of the reason (no secrets: reasons are public in /status).
 */
void health_add(struct health_report *r, enum health level, const char *component,
		const char *fmt, ...) _printf_(4, 5);

/* health_report_clear() - free the reasons; the report is empty and ok again. */
void health_report_clear(struct health_report *r);

#endif
