// SPDX-License-Identifier: MIT
/*
 * The health model and the public status document: one function judges
 * the node (children, tunnel, Postgres, firewall, reload errors) for `ctl
 * status` and `/status` alike; the /status document keeps the spec's keys
 * (node, overlay_ip, wg{...}, disk_free_gb, time) with honest meanings
 * (null for "never", peer_count = configured peers) and adds the detail.
 * Nothing secret goes in: no key, no password, no conninfo.
 */
#include "supervisor/daemon.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

static void worse(enum health *h, enum health x)
{
	if (x > *h)
		*h = x;
}

static void add_reason(json_t *reasons, const char *fmt, ...) _printf_(2, 3);
static void add_reason(json_t *reasons, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(reasons, json_string(buf));
}

static enum health tunnel_state_health(const struct overlay_status *ov, json_t *reasons)
{
	switch (ov->state) {
	case TUNNEL_FRESH:
		return HEALTH_OK;
	case TUNNEL_CONNECTING:
		add_reason(reasons, "tunnel: no handshake yet");
		return HEALTH_DEGRADED;
	case TUNNEL_STALE:
		add_reason(reasons, "tunnel: %zu of %zu peers without a fresh handshake",
			   ov->n_peers - ov->n_fresh, ov->n_peers);
		return HEALTH_DEGRADED;
	case TUNNEL_DOWN:
		add_reason(reasons, "tunnel down: %s", ov->last_error[0] ? ov->last_error : "starting");
		return HEALTH_CRITICAL;
	}
	return HEALTH_UNKNOWN;
}

enum health tunnel_health(const struct overlay_status *ov, json_t *reasons)
{
	enum health h = tunnel_state_health(ov, reasons);

	/* Handshakes are small: a too-large MTU reads fresh while big packets vanish. */
	if (ov->state != TUNNEL_DOWN && !ov->mtu_auto && ov->path_mtu &&
	    ov->mtu + OVERLAY_WG_OVERHEAD > ov->path_mtu) {
		unsigned fit = ov->path_mtu > OVERLAY_WG_OVERHEAD ? ov->path_mtu - OVERLAY_WG_OVERHEAD : 0;

		add_reason(reasons, "tunnel: mtu %u is above what the path allows (%u - %u = %u): large "
			   "packets are lost while handshakes pass; set cluster.mtu = %u, or \"auto\"",
			   ov->mtu, ov->path_mtu, OVERLAY_WG_OVERHEAD, fit, fit);
		if (h < HEALTH_DEGRADED)
			h = HEALTH_DEGRADED;
	}
	return h;
}

enum health daemon_health(struct daemon *d, json_t *reasons)
{
	struct child_status st[256];
	size_t n = child_set_status(d->children, st, ARRAY_SIZE(st));
	enum health h = HEALTH_OK;

	for (size_t i = 0; i < n; i++) {
		switch (st[i].state) {
		case CHILD_STATE_FAILED:
			add_reason(reasons, "child %s gave up", st[i].name);
			worse(&h, st[i].required ? HEALTH_CRITICAL : HEALTH_DEGRADED);
			break;
		case CHILD_STATE_BACKOFF:
			add_reason(reasons, "child %s is restarting after a failure%s%s", st[i].name,
				   st[i].last_error ? ": " : "", st[i].last_error ? st[i].last_error : "");
			worse(&h, HEALTH_DEGRADED);
			break;
		case CHILD_STATE_WAITING:
		case CHILD_STATE_STARTING:
		case CHILD_STATE_RUNNING:
		case CHILD_STATE_STOPPING:
		case CHILD_STATE_EXITED:
			break;
		}
	}
	worse(&h, tunnel_health(overlay_status(d->overlay), reasons));
	worse(&h, (enum health)pgwatch_health(d->pgwatch, reasons));
	worse(&h, (enum health)firewall_health(d->firewall, reasons));
	worse(&h, (enum health)backup_health(d->backup, reasons));
	if (child_set_shutting_down(d->children)) {
		json_array_append_new(reasons, json_string("shutting down"));
		worse(&h, HEALTH_DEGRADED);
	}
	if (d->last_reload_error) {
		json_array_append_new(reasons, json_string(d->last_reload_error));
		worse(&h, HEALTH_DEGRADED);
	}
	return h;
}

/* ---- the /status document ------------------------------------------------------- */

static json_t *disk_json(const char *path)
{
	struct statvfs sv;

	if (!path || statvfs(path, &sv) < 0)
		return json_pack("{s:s?, s:n}", "path", path, "free_bytes");
	return json_pack("{s:s, s:I, s:I}", "path", path,
			 "free_bytes", (json_int_t)((uint64_t)sv.f_bavail * sv.f_frsize),
			 "size_bytes", (json_int_t)((uint64_t)sv.f_blocks * sv.f_frsize));
}

/* The spec's disk_free_gb: GiB free on /, rounded down to 0.1; null when unknown. */
static json_t *disk_free_gb(void)
{
	struct statvfs sv;

	if (statvfs("/", &sv) < 0)
		return json_null();
	return json_real(floor((double)sv.f_bavail * (double)sv.f_frsize / (1024.0 * 1024 * 1024) * 10) / 10);
}

json_t *tunnel_peers_json(const struct overlay_status *ov)
{
	json_t *peers = json_array();
	char ip[16];

	for (size_t i = 0; i < ov->n_peers; i++) {
		const struct overlay_peer_status *p = &ov->peers[i];

		json_array_append_new(peers, json_pack("{s:s, s:s, s:s?, s:o, s:o, s:o, s:I, s:I, s:s, s:b}",
			"name", p->name, "overlay_ip", conf_ip_str(p->overlay_ip, ip),
			"endpoint", p->endpoint[0] ? p->endpoint : NULL,
			"last_handshake", p->last_handshake ? json_integer(p->last_handshake) : json_null(),
			"last_handshake_ms", p->last_handshake ? json_integer(p->last_handshake_ms) : json_null(),
			"handshake_age_s", p->age_s >= 0 ? json_integer(p->age_s) : json_null(),
			"rx_bytes", (json_int_t)p->rx_bytes, "tx_bytes", (json_int_t)p->tx_bytes,
			"state", tunnel_state_name(p->state), "fresh", p->state == TUNNEL_FRESH));
	}
	return peers;
}

json_t *mtu_json(const struct overlay_status *ov)
{
	return json_pack("{s:o, s:b, s:o}", "value", ov->mtu ? json_integer(ov->mtu) : json_null(),
			 "auto", ov->mtu_auto, "path", ov->path_mtu ? json_integer(ov->path_mtu) : json_null());
}

json_t *hub_endpoint_json(const struct overlay_status *ov)
{
	if (!ov->endpoint_host)
		return json_null();
	return json_pack("{s:s, s:s?, s:o, s:s?}", "host", ov->endpoint_host,
			 "address", ov->endpoint_address[0] ? ov->endpoint_address : NULL,
			 "resolved_at", ov->endpoint_resolved_at ? json_integer(ov->endpoint_resolved_at) : json_null(),
			 "error", ov->endpoint_error[0] ? ov->endpoint_error : NULL);
}

static json_t *firewall_public(struct daemon *d)
{
	const struct fw_status *st = firewall_status(d->firewall);

	return json_pack("{s:s, s:o, s:s?, s:I, s:s?}", "state", fw_state_name(st->state),
			 "applied_at", st->applied_at_ms ? json_integer(st->applied_at_ms / 1000) : json_null(),
			 "rules_hash", st->rules_hash[0] ? st->rules_hash : NULL,
			 "repairs", (json_int_t)st->repairs, "error", st->last_error[0] ? st->last_error : NULL);
}

json_t *status_document(struct daemon *d)
{
	const struct conf_node *me = conf_self(d->conf);
	const struct overlay_status *ov = overlay_status(d->overlay);
	json_t *doc, *reasons = json_array(), *pg, *repl;
	enum health h = daemon_health(d, reasons);
	char ip[16], when[32];
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	pg = pgwatch_json(d->pgwatch);
	repl = json_pack("{s:O}", "members", json_object_get(pg, "replication"));
	json_object_del(pg, "replication");
	{
		const struct conf_node *primary = conf_primary(d->conf);

		json_object_set_new(repl, "primary", primary ? json_string(primary->name) : json_null());
	}
	/* Configured peers, whatever the link's state: a spoke has the hub, the hub every spoke. */
	int peers = me->kind == CONF_NODE_HUB ? (int)d->conf->n_nodes - 1 : 1;

	doc = json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:o}, s:o, s:s}",
		"node", me->name, "overlay_ip", conf_ip_str(me->overlay_ip, ip),
		"wg", "interface", d->conf->cluster.interface, "peer_count", peers,
		"fresh_peer_count", (int)ov->n_fresh,
		/* the oldest handshake; null while any peer never had one, or without peers (not 0) */
		"max_last_handshake_sec", peers > 0 && ov->max_age_s >= 0 && ov->n_peers == (size_t)peers ?
					  json_integer(ov->max_age_s) : json_null(),
		"disk_free_gb", disk_free_gb(), "time", when);
	json_object_set_new(doc, "version", json_string(SUPERVISOR_VERSION));
	json_object_set_new(doc, "role", json_string(me->kind == CONF_NODE_HUB ? "hub" : "spoke"));
	json_object_set_new(doc, "uptime_s", json_integer((json_int_t)((now_ms() - d->started_ms) / 1000)));
	json_object_set_new(doc, "disk", json_pack("{s:o, s:o, s:o}", "root", disk_json("/"),
		"data_dir", me->kind == CONF_NODE_HUB ? json_null() : disk_json(me->settings.postgres.data_dir),
		"backup_dir", me->kind == CONF_NODE_HUB ? json_null() : disk_json(me->settings.backup.dir)));
	json_object_set_new(doc, "tunnel", json_pack("{s:s, s:s, s:b, s:I, s:o, s:o, s:o}",
		"state", tunnel_state_name(ov->state), "backend", ov->backend, "link_up", ov->link_up,
		"repairs", (json_int_t)ov->repairs, "mtu", mtu_json(ov), "hub_endpoint", hub_endpoint_json(ov),
		"peers", tunnel_peers_json(ov)));
	json_object_set_new(doc, "postgres", pg);
	json_object_set_new(doc, "replication", repl);
	json_object_set_new(doc, "backup", me->kind == CONF_NODE_HUB ?
		json_pack("{s:s, s:n, s:n, s:n, s:n, s:n}", "state", "none", "last_ok_at", "age_s",
			  "size_bytes", "next_at", "last_error") : backup_json(d->backup));
	json_object_set_new(doc, "firewall", firewall_public(d));
	json_object_set_new(doc, "overall", json_string(health_name(h)));
	json_object_set_new(doc, "reasons", reasons);
	return doc;
}
