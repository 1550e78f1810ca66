// SPDX-License-Identifier: MIT
/*
 * Control commands: one row per command. Each handler fills a JSON reply;
 * every reply carries "v" (protocol version), "ok", "command" and, where
 * it judges health, "health" (ok/degraded/critical/unknown), which
 * `supervisor ctl` turns into its exit status.
 */
#include "supervisor/snapshot.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"
#include "lib/proc.h"
#include "overlay/overlay.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void ctl_handler_fn(struct daemon *d, const char *args, json_t *reply);

/*
 * A judged reply: @parts' level as "health" (ctl's exit status; also as
 * "overall" in the replies that stand for the node or its database), and
 * their reasons.
 */
static void judged(json_t *reply, const struct node_snapshot *s, unsigned parts, bool overall)
{
	json_t *reasons = json_array();
	enum health h = snapshot_health(s, parts, reasons);

	if (overall)
		json_object_set_new(reply, "overall", json_string(health_name(h)));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name(h)));
}

static void ctl_status(struct daemon *d, const char *args, json_t *reply)
{
	struct node_snapshot s;

	(void)args;
	snapshot_take(d, &s);
	json_object_set_new(reply, "node", json_string(s.self->name));
	json_object_set_new(reply, "role", json_string(s.hub ? "hub" : "spoke"));
	json_object_set_new(reply, "version", json_string(SUPERVISOR_VERSION));
	json_object_set_new(reply, "pid", json_integer(s.pid));
	json_object_set_new(reply, "pid1", json_boolean(s.pid1));
	json_object_set_new(reply, "uptime_s", json_integer((json_int_t)s.uptime_s));
	json_object_set_new(reply, "config", json_pack("{s:s, s:I, s:i, s:s?}",
		"path", s.conf_path, "loaded_at", (json_int_t)s.conf_loaded_at,
		"reloads", (int)s.reloads, "last_reload_error", s.last_reload_error));
	json_object_set_new(reply, "tunnel", render_tunnel(&s));
	json_object_set_new(reply, "postgres", render_postgres(&s));
	json_object_set_new(reply, "replication", render_replication(&s));
	json_object_set_new(reply, "firewall", render_firewall(&s, true));
	json_object_set_new(reply, "children", render_children(&s));
	judged(reply, &s, SNAP_ALL, true);
	snapshot_clear(&s);
}

static void ctl_tunnel(struct daemon *d, const char *args, json_t *reply)
{
	struct node_snapshot s;

	(void)args;
	snapshot_take(d, &s);
	json_object_set_new(reply, "node", json_string(s.self->name));
	json_object_set_new(reply, "tunnel", render_tunnel(&s));
	/* On the hub, fresh tunnels carry nothing while another firewall drops wg0 to wg0. */
	judged(reply, &s, SNAP_BIT(SNAP_TUNNEL) | SNAP_BIT(SNAP_FIREWALL_FOREIGN), false);
	snapshot_clear(&s);
}

/*
 * The DBA's view: Postgres and replication of this node, each spoke's row
 * with the tunnel beside it (this node's own handshake; on the hub peer of
 * a spoke the handshake is the only tunnel figure it has).
 */
static void ctl_replication(struct daemon *d, const char *args, json_t *reply)
{
	unsigned parts = SNAP_BIT(SNAP_TUNNEL) | SNAP_BIT(SNAP_POSTGRES);
	struct node_snapshot s;

	(void)args;
	snapshot_take(d, &s);
	json_object_set_new(reply, "node", json_string(s.self->name));
	json_object_set_new(reply, "postgres", render_postgres(&s));
	json_object_set_new(reply, "replication", render_replication(&s));
	judged(reply, &s, parts, true);
	snapshot_clear(&s);
}

/* The firewall, read back from the kernel now: drift is repaired before answering. */
static void ctl_firewall(struct daemon *d, const char *args, json_t *reply)
{
	struct node_snapshot s;

	(void)args;
	firewall_refresh(d->firewall);
	snapshot_take(d, &s);
	json_object_set_new(reply, "node", json_string(s.self->name));
	json_object_set_new(reply, "firewall", render_firewall(&s, true));
	judged(reply, &s, SNAP_BIT(SNAP_FIREWALL) | SNAP_BIT(SNAP_FIREWALL_FOREIGN), false);
	snapshot_clear(&s);
}

static void ctl_reload(struct daemon *d, const char *args, json_t *reply)
{
	json_t *errors = json_array();

	(void)args;
	if (daemon_reload(d, errors) == 0) {
		json_object_set_new(reply, "reloaded", json_true());
		json_object_set_new(reply, "health", json_string("ok"));
		json_decref(errors);
		return;
	}
	json_object_set_new(reply, "ok", json_false());
	json_object_set_new(reply, "error", json_string(d->last_reload_error));
	json_object_set_new(reply, "errors", errors);
	json_object_set_new(reply, "health", json_string("critical"));
}

/* The report's summary, and the catalog's listing beside it. */
static json_t *backup_listing(struct daemon *d, const struct node_snapshot *s)
{
	json_t *o = render_backup(s), *list = backup_catalog_json(d->backup);

	if (json_is_object(o) && json_is_object(list))
		json_object_update(o, list);
	json_decref(list);
	return o;
}

static void ctl_backups(struct daemon *d, const char *args, json_t *reply)
{
	struct node_snapshot s;

	(void)args;
	snapshot_take(d, &s);
	json_object_set_new(reply, "node", json_string(s.self->name));
	json_object_set_new(reply, "backup", s.hub ? json_null() : backup_listing(d, &s));
	judged(reply, &s, SNAP_BIT(SNAP_BACKUP), false);
	snapshot_clear(&s);
}

/* A request refused with -errno @r: busy is degraded, anything else critical. */
static void refused(json_t *reply, int r, const char *why)
{
	json_object_set_new(reply, "ok", json_false());
	json_object_set_new(reply, "error", json_string(why ? why : strerror(-r)));
	json_object_set_new(reply, "health", json_string(r == -EBUSY ? "degraded" : "critical"));
}

static void ctl_backup_now(struct daemon *d, const char *args, json_t *reply)
{
	struct node_snapshot s;
	const char *why = NULL;
	int r = backup_now(d->backup, &why);

	(void)args;
	if (r < 0) {
		refused(reply, r, why);
		return;
	}
	snapshot_take(d, &s);
	json_object_set_new(reply, "started", json_true());
	json_object_set_new(reply, "backup", render_backup(&s));
	json_object_set_new(reply, "health", json_string("ok"));
	snapshot_clear(&s);
}

/* Re-clone this replica; the client follows the progress with `replication`. */
static void ctl_reinit(struct daemon *d, const char *args, json_t *reply)
{
	const struct conf_node *me = conf_self(d->conf);
	const char *why = NULL;
	char aside[400];
	int r = pgwatch_reinit(d->pgwatch, aside, sizeof(aside), &why);

	(void)args;
	json_object_set_new(reply, "node", json_string(me->name));
	if (r < 0) {
		refused(reply, r, why);
		return;
	}
	json_object_set_new(reply, "started", json_true());
	json_object_set_new(reply, "aside", json_string(aside));
	json_object_set_new(reply, "upstream", json_string(d->conf->nodes[me->upstream].name));
	json_object_set_new(reply, "health", json_string("degraded"));
}

static const struct {
	const char *name;
	ctl_handler_fn *fn;
} commands[] = {
	{ "status", ctl_status },
	{ "reload", ctl_reload },
	{ "replication", ctl_replication },
	{ "tunnel", ctl_tunnel },
	{ "firewall", ctl_firewall },
	{ "backups", ctl_backups },
	{ "backup-now", ctl_backup_now },
	{ "reinit", ctl_reinit },
	{ "ha", ctl_ha },
	{ "switchover", ctl_switchover },
	{ "failover", ctl_failover },
};

json_t *control_dispatch(struct daemon *d, const char *line)
{
	char name[32];
	size_t len = strcspn(line, " ");
	const char *args = line + len;
	json_t *reply;

	while (*args == ' ')
		args++;
	if (len == 0 || len >= sizeof(name))
		return json_pack("{s:i, s:b, s:s}", "v", CONTROL_PROTOCOL_VERSION, "ok", 0, "error", "unknown command");
	memcpy(name, line, len);
	name[len] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		reply = json_pack("{s:i, s:b, s:s}", "v", CONTROL_PROTOCOL_VERSION, "ok", 1, "command", name);
		commands[i].fn(d, args, reply);
		return reply;
	}
	return json_pack("{s:i, s:b, s:s, s:s}", "v", CONTROL_PROTOCOL_VERSION, "ok", 0, "command", name, "error",
			 "unknown command");
}
