// SPDX-License-Identifier: MIT
/*
 * Taking the snapshot: each module's typed report, the children, the
 * disks; then each part of the node's health is judged once, by the
 * module that knows it (overlay_health, pgwatch_health, firewall_health,
 * backup_health) or here for what is the daemon's own (children, reloads,
 * shutting down). Renderers only read the result.
 */
#include "supervisor/snapshot.h"
#include "child/child.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static struct disk_usage disk_of(const char *path)
{
	struct disk_usage u = { .path = path };
	struct statvfs sv;

	if (path && statvfs(path, &sv) == 0) {
		u.known = true;
		u.free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
		u.size_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	}
	return u;
}

/* Every supervised child, however many (the set has no fixed size). */
static void take_children(struct daemon *d, struct node_snapshot *s)
{
	size_t cap = 16;

	for (;;) {
		s->children = xreallocarray(s->children, cap, sizeof(*s->children));
		s->n_children = child_set_status(d->children, s->children, cap);
		if (s->n_children < cap)
			return;
		cap *= 2;
	}
}

static void children_health(const struct node_snapshot *s, struct health_report *out)
{
	for (size_t i = 0; i < s->n_children; i++) {
		const struct child_status *c = &s->children[i];

		switch (c->state) {
		case CHILD_STATE_FAILED:
			health_add(out, c->required ? HEALTH_CRITICAL : HEALTH_DEGRADED, "children",
				   "child %s gave up", c->name);
			break;
		case CHILD_STATE_BACKOFF:
			health_add(out, HEALTH_DEGRADED, "children", "child %s is restarting after a failure%s%s",
				   c->name, c->last_error ? ": " : "", c->last_error ? c->last_error : "");
			break;
		case CHILD_STATE_WAITING:
		case CHILD_STATE_STARTING:
		case CHILD_STATE_RUNNING:
		case CHILD_STATE_STOPPING:
		case CHILD_STATE_EXITED:
			break;
		}
	}
}

static void node_health(const struct node_snapshot *s, struct health_report *out)
{
	if (s->shutting_down)
		health_add(out, HEALTH_DEGRADED, "node", "shutting down");
	if (s->last_reload_error)
		health_add(out, HEALTH_DEGRADED, "config", "%s", s->last_reload_error);
}

/* High availability's findings belong with Postgres': they decide its role. */
static void ha_health(const struct node_snapshot *s, struct health_report *out)
{
	const char *state = json_string_value(json_object_get(s->ha, "state"));
	const char *reason = json_string_value(json_object_get(s->ha, "reason"));

	if (!s->ha_enabled || !state)
		return;
	if (!json_is_true(json_object_get(json_object_get(s->ha, "store"), "reachable")))
		health_add(out, HEALTH_DEGRADED, "ha", "ha: the store (etcd) does not answer; roles stay as they are");
	else if (!strcmp(state, "leaderless"))
		health_add(out, HEALTH_CRITICAL, "ha", "ha: %s", reason ? reason : "no leader");
	else if (strcmp(state, "leader") != 0 && strcmp(state, "follower") != 0)
		health_add(out, HEALTH_DEGRADED, "ha", "ha: %s: %s", state, reason ? reason : "");
}

void snapshot_take(struct daemon *d, struct node_snapshot *s)
{
	const struct conf_node *me = conf_self(d->conf);
	const struct conf_node *primary = conf_primary(d->conf);
	bool hub = me->kind == CONF_NODE_HUB;

	*s = (struct node_snapshot){
		.conf = d->conf, .self = me, .hub = hub, .time_s = time(NULL),
		.uptime_s = (now_ms() - d->started_ms) / 1000, .pid = getpid(), .pid1 = d->pid1,
		.conf_path = d->conf_path, .conf_loaded_at = (int64_t)(d->conf_loaded_ms / 1000),
		.reloads = d->reloads, .last_reload_error = d->last_reload_error,
		.shutting_down = child_set_shutting_down(d->children),
		.tunnel = overlay_status(d->overlay),
		.peers_configured = hub ? d->conf->n_nodes - 1 : 1,
		.primary = primary ? primary->name : NULL,
		.root = disk_of("/"),
		.data_dir = disk_of(hub ? NULL : me->settings.postgres.data_dir),
		.backup_dir = disk_of(hub ? NULL : me->settings.backup.dir),
		.fresh_handshake_s = d->conf->cluster.fresh_handshake_s,
	};
	pgwatch_report(d->pgwatch, &s->pg);
	firewall_report(d->firewall, &s->fw);
	backup_report(d->backup, &s->backup);
	s->max_replica_lag_s = s->pg.state != PG_STATE_NONE ? me->settings.backup.max_replica_lag_s : NAN;
	s->backup_max_age_s = s->backup.enabled ? s->backup.max_age_s : NAN;
	take_children(d, s);
	s->ha = ha_status(d->ha);
	s->ha_enabled = ha_enabled(d->ha);
	s->ha_is_leader = ha_is_leader(d->ha);

	children_health(s, &s->part[SNAP_CHILDREN]);
	overlay_health(s->tunnel, &s->part[SNAP_TUNNEL]);
	pgwatch_health(&s->pg, s->conf, &s->part[SNAP_POSTGRES]);
	ha_health(s, &s->part[SNAP_POSTGRES]);
	firewall_health(&s->fw, &s->part[SNAP_FIREWALL]);
	firewall_foreign_health(&s->fw, &s->part[SNAP_FIREWALL_FOREIGN]);
	backup_health(&s->backup, &s->part[SNAP_BACKUP]);
	node_health(s, &s->part[SNAP_NODE]);
}

const char *snap_part_name(enum snap_part p)
{
	switch (p) {
	case SNAP_CHILDREN: return "children";
	case SNAP_TUNNEL: return "tunnel";
	case SNAP_POSTGRES: return "postgres";
	case SNAP_FIREWALL: return "firewall";
	case SNAP_FIREWALL_FOREIGN: return "other_firewalls";
	case SNAP_BACKUP: return "backup";
	case SNAP_NODE: return "node";
	case SNAP_PARTS: break;
	}
	return "unknown";
}

void snapshot_clear(struct node_snapshot *s)
{
	pg_report_clear(&s->pg);
	backup_report_clear(&s->backup);
	json_decref(s->ha);
	free(s->children);
	for (size_t i = 0; i < SNAP_PARTS; i++)
		health_report_clear(&s->part[i]);
	*s = (struct node_snapshot){ 0 };
}

enum health snapshot_health(const struct node_snapshot *s, unsigned parts, json_t *reasons)
{
	enum health h = HEALTH_OK;

	for (size_t p = 0; p < SNAP_PARTS; p++) {
		if (!(parts & SNAP_BIT(p)))
			continue;
		h = health_worse(h, s->part[p].level);
		for (size_t i = 0; reasons && i < s->part[p].n_reasons; i++)
			json_array_append_new(reasons, json_string(s->part[p].reasons[i].text));
	}
	return h;
}

int64_t snapshot_max_handshake_age(const struct node_snapshot *s)
{
	const struct overlay_status *ov = s->tunnel;

	/* null while any configured peer never had one, or without peers: never 0 */
	if (!s->peers_configured || ov->max_age_s < 0 || ov->n_peers != s->peers_configured)
		return -1;
	return ov->max_age_s;
}

const struct pg_member *snapshot_self_member(const struct node_snapshot *s)
{
	for (size_t i = 0; i < s->pg.n_members; i++)
		if (s->pg.members[i].self)
			return &s->pg.members[i];
	return NULL;
}
