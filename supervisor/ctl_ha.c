// SPDX-License-Identifier: MIT
/*
 * High availability's control commands: `ha` (the store's view), and the
 * two requests. Their arguments are words after the command
 * ("switchover --to spoke-b --dry-run"); the requests are answered once
 * written to the store, and `supervisor ctl` follows the outcome on `ha`.
 */
#include "supervisor/daemon.h"
#include "ha/ha.h"

#include <errno.h>
#include <string.h>

/* The words of @args: --to NODE, --dry-run, --allow-data-loss. Return: 0 or -EINVAL. */
static int ha_args(const char *args, char *to, size_t size, bool *dry_run, bool *allow_loss)
{
	char buf[256], *save = NULL, *w;

	*to = '\0';
	snprintf(buf, sizeof(buf), "%s", args);
	for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (strcmp(w, "--to") == 0 && (w = strtok_r(NULL, " ", &save)))
			snprintf(to, size, "%s", w);
		else if (strcmp(w, "--dry-run") == 0 && dry_run)
			*dry_run = true;
		else if (strcmp(w, "--allow-data-loss") == 0 && allow_loss)
			*allow_loss = true;
		else
			return -EINVAL;
	}
	return 0;
}

static void ha_health(json_t *reply, const json_t *ha)
{
	const char *state = json_string_value(json_object_get(ha, "state"));

	json_object_set_new(reply, "health", json_string(
		!state || !strcmp(state, "off") ? "unknown" :
		!json_is_true(json_object_get(json_object_get(ha, "store"), "reachable")) ? "degraded" :
		!strcmp(state, "leader") || !strcmp(state, "follower") ? "ok" :
		!strcmp(state, "leaderless") ? "critical" : "degraded"));
}

void ctl_ha(struct daemon *d, const char *args, json_t *reply)
{
	json_t *ha = ha_status(d->ha);

	(void)args;
	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	ha_health(reply, ha);
	json_object_set_new(reply, "ha", ha);
}

void ctl_switchover(struct daemon *d, const char *args, json_t *reply)
{
	char to[CONF_NAME_MAX + 1];
	bool dry_run = false;

	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	if (ha_args(args, to, sizeof(to), &dry_run, NULL) < 0) {
		json_object_set_new(reply, "ok", json_false());
		json_object_set_new(reply, "error", json_string("usage: switchover [--to NODE] [--dry-run]"));
		return;
	}
	json_object_set_new(reply, "dry_run", json_boolean(dry_run));
	if (ha_switchover(d->ha, to[0] ? to : NULL, dry_run, reply) == 0)
		json_object_set_new(reply, "requested", json_boolean(!dry_run));
	json_object_set_new(reply, "health", json_string(json_is_true(json_object_get(reply, "ok")) ? "ok" : "critical"));
}

void ctl_failover(struct daemon *d, const char *args, json_t *reply)
{
	char to[CONF_NAME_MAX + 1];
	bool allow = false;

	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	if (ha_args(args, to, sizeof(to), NULL, &allow) < 0 || !to[0]) {
		json_object_set_new(reply, "ok", json_false());
		json_object_set_new(reply, "error", json_string("usage: failover --to NODE [--allow-data-loss]"));
		return;
	}
	if (ha_failover(d->ha, to, allow, reply) == 0)
		json_object_set_new(reply, "requested", json_true());
	json_object_set_new(reply, "health", json_string(json_is_true(json_object_get(reply, "ok")) ? "ok" : "critical"));
}
