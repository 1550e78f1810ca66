// SPDX-License-Identifier: MIT
/*
 * Control commands: one row per command. Each handler fills a JSON reply;
 * every reply carries "v" (protocol version), "ok", "command" and, where
 * it judges health, "health" (ok/degraded/critical/unknown), which
 * `supervisor ctl` turns into its exit status.
 */
#include "supervisor/daemon.h"
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

static json_t *tunnel_json(const struct overlay_status *ov);

static json_t *exit_json(int st)
{
	if (st < 0)
		return json_null();
	if (WIFEXITED(st))
		return json_pack("{s:i}", "code", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return json_pack("{s:i, s:s}", "signal", WTERMSIG(st), "signal_name",
				 signal_name(WTERMSIG(st)));
	return json_null();
}

static void worse(enum health *h, enum health x)
{
	if (x > *h)
		*h = x;
}

static void ctl_status(struct daemon *d, const char *args, json_t *reply)
{
	const struct conf_node *me = conf_self(d->conf);
	struct child_status st[256];
	size_t n = child_set_status(d->children, st, ARRAY_SIZE(st));
	uint64_t now = now_ms();
	json_t *children = json_array(), *reasons = json_array();
	enum health h = daemon_health(d, reasons);

	(void)args;
	for (size_t i = 0; i < n; i++) {
		/* a child that is not running has no pid: null, not 0 */
		json_t *c = json_pack("{s:s, s:s, s:o, s:i, s:o, s:I, s:b, s:s?}",
				      "name", st[i].name, "state", child_state_name(st[i].state),
				      "pid", st[i].pid > 0 ? json_integer(st[i].pid) : json_null(),
				      "restarts", (int)st[i].restarts,
				      "last_exit", exit_json(st[i].last_status),
				      "state_for_s", (json_int_t)((now - st[i].state_since_ms) / 1000),
				      "required", st[i].required, "last_error", st[i].last_error);

		if (st[i].state == CHILD_STATE_BACKOFF)
			json_object_set_new(c, "restart_in_s",
					    json_integer((json_int_t)((st[i].next_start_ms - now + 999) / 1000)));
		json_array_append_new(children, c);
	}
	json_object_set_new(reply, "node", json_string(me->name));
	json_object_set_new(reply, "role", json_string(me->kind == CONF_NODE_HUB ? "hub" : "spoke"));
	json_object_set_new(reply, "version", json_string(SUPERVISOR_VERSION));
	json_object_set_new(reply, "pid", json_integer(getpid()));
	json_object_set_new(reply, "pid1", json_boolean(d->pid1));
	json_object_set_new(reply, "uptime_s", json_integer((json_int_t)((now - d->started_ms) / 1000)));
	json_object_set_new(reply, "config", json_pack("{s:s, s:I, s:i, s:s?}",
		"path", d->conf_path, "loaded_at", (json_int_t)(d->conf_loaded_ms / 1000),
		"reloads", (int)d->reloads, "last_reload_error", d->last_reload_error));
	json_object_set_new(reply, "tunnel", tunnel_json(overlay_status(d->overlay)));
	json_object_set_new(reply, "postgres", pgwatch_json(d->pgwatch));
	json_object_set_new(reply, "firewall", firewall_json(d->firewall));
	json_object_set_new(reply, "children", children);
	json_object_set_new(reply, "overall", json_string(health_name(h)));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name(h)));
}

static json_t *tunnel_json(const struct overlay_status *ov)
{
	json_t *peers = tunnel_peers_json(ov);

	return json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:o, s:I, s:I, s:s?, s:o, s:o, s:o}",
		"state", tunnel_state_name(ov->state), "interface", ov->interface,
		"backend", ov->backend, "link_up", ov->link_up, "peer_count", (int)ov->n_peers,
		"fresh_peers", (int)ov->n_fresh,
		/* null while a peer never handshook, and with no peer judged yet (down from the start) */
		"max_handshake_age_s", ov->n_peers && ov->max_age_s >= 0 ? json_integer(ov->max_age_s) :
				       json_null(),
		"repairs", (json_int_t)ov->repairs, "rearms", (json_int_t)ov->rearms,
		"last_error", ov->last_error[0] ? ov->last_error : NULL, "hub_endpoint", hub_endpoint_json(ov),
		"mtu", mtu_json(ov),
		"peers", peers);
}

static void ctl_tunnel(struct daemon *d, const char *args, json_t *reply)
{
	const struct overlay_status *ov = overlay_status(d->overlay);
	json_t *reasons = json_array();
	enum health h = tunnel_health(ov, reasons);

	(void)args;
	/* On the hub, fresh tunnels carry nothing while another firewall drops wg0 to wg0. */
	worse(&h, (enum health)firewall_foreign_health(d->firewall, reasons));
	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	json_object_set_new(reply, "tunnel", tunnel_json(ov));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name(h)));
}

/*
 * The DBA's view: Postgres and replication of this node, each spoke's row
 * with the tunnel beside it (this node's own handshake; on the hub peer of
 * a spoke the handshake is the only tunnel figure it has).
 */
static void ctl_replication(struct daemon *d, const char *args, json_t *reply)
{
	const struct overlay_status *ov = overlay_status(d->overlay);
	json_t *pg = pgwatch_json(d->pgwatch), *row, *reasons = json_array();
	enum health h = tunnel_health(ov, reasons);
	size_t i;

	(void)args;
	worse(&h, (enum health)pgwatch_health(d->pgwatch, reasons));
	json_array_foreach(json_object_get(pg, "replication"), i, row) {
		/* A spoke knows its own tunnel: the handshake with the hub. */
		if (json_is_true(json_object_get(row, "self")) && ov->n_peers) {
			json_object_set_new(row, "tunnel", json_string(tunnel_state_name(ov->state)));
			json_object_set_new(row, "handshake_age_s", ov->peers[0].age_s >= 0 ?
					    json_integer(ov->peers[0].age_s) : json_null());
		}
	}
	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	json_object_set_new(reply, "postgres", pg);
	json_object_set_new(reply, "overall", json_string(health_name(h)));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name(h)));
}

/* The firewall, read back from the kernel now: drift is repaired before answering. */
static void ctl_firewall(struct daemon *d, const char *args, json_t *reply)
{
	json_t *reasons = json_array();
	enum health h;

	(void)args;
	firewall_refresh(d->firewall);
	h = (enum health)firewall_health(d->firewall, reasons);
	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	json_object_set_new(reply, "firewall", firewall_json(d->firewall));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name(h)));
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

static void ctl_backups(struct daemon *d, const char *args, json_t *reply)
{
	json_t *reasons = json_array();
	int h = backup_health(d->backup, reasons);

	(void)args;
	json_object_set_new(reply, "node", json_string(conf_self(d->conf)->name));
	json_object_set_new(reply, "backup", backup_list_json(d->backup));
	json_object_set_new(reply, "reasons", reasons);
	json_object_set_new(reply, "health", json_string(health_name((enum health)h)));
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
	const char *why = NULL;
	int r = backup_now(d->backup, &why);

	(void)args;
	if (r < 0) {
		refused(reply, r, why);
		return;
	}
	json_object_set_new(reply, "started", json_true());
	json_object_set_new(reply, "backup", backup_json(d->backup));
	json_object_set_new(reply, "health", json_string("ok"));
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
