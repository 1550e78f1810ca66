// SPDX-License-Identifier: MIT
/* The health model: levels, "worse of", and the one way to add a reason. */
#include "lib/health.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *health_name(enum health h)
{
	switch (h) {
	case HEALTH_OK: return "ok";
	case HEALTH_DEGRADED: return "degraded";
	case HEALTH_CRITICAL: return "critical";
	case HEALTH_UNKNOWN: return "unknown";
	}
	return "unknown";
}

enum health health_worse(enum health a, enum health b)
{
	return b > a ? b : a;
}

void health_add(struct health_report *r, enum health level, const char *component, const char *fmt, ...)
{
	struct health_reason *x;
	va_list ap;

	r->reasons = xreallocarray(r->reasons, r->n_reasons + 1, sizeof(*r->reasons));
	x = &r->reasons[r->n_reasons++];
	x->level = level;
	x->component = component;
	va_start(ap, fmt);
	if (vasprintf(&x->text, fmt, ap) < 0)
		fatalx("health", "out of memory");
	va_end(ap);
	r->level = health_worse(r->level, level);
}

void health_report_clear(struct health_report *r)
{
	for (size_t i = 0; i < r->n_reasons; i++)
		free(r->reasons[i].text);
	free(r->reasons);
	*r = (struct health_report){ 0 };
}
