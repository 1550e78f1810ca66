// SPDX-License-Identifier: MIT
/*
 * JSON renderers of the snapshot, shared by /status and the ctl replies so
 * that one figure has one name everywhere. The /status document keeps the
 * spec's keys (node, overlay_ip, wg{...}, disk_free_gb, time) with honest
 * meanings (null for "never" or "unknown", peer_count = configured peers)
 * and adds the detail. Nothing secret goes in: no key, no password, no
 * conninfo.
 */
#include "supervisor/snapshot.h"
#include "child/child.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* A figure: null when unknown (NAN), an integer when it is one, else a real. */
static json_t *num(double v)
{
	if (isnan(v))
		return json_null();
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *tri(enum pg_tri t)
{
	return t == PG_TRI_NULL ? json_null() : json_boolean(t == PG_TRI_TRUE);
}

static json_t *secs_or_null(int64_t ms)
{
	return ms ? json_integer(ms / 1000) : json_null();
}

/* ---- tunnel ------------------------------------------------------------------------- */

static json_t *peers_json(const struct overlay_status *ov)
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

static json_t *mtu_json(const struct overlay_status *ov)
{
	return json_pack("{s:o, s:b, s:o}", "value", ov->mtu ? json_integer(ov->mtu) : json_null(),
			 "auto", ov->mtu_auto, "path", ov->path_mtu ? json_integer(ov->path_mtu) : json_null());
}

/* A spoke's hub endpoint {host, address, resolved_at, error}; null on the hub. */
static json_t *hub_endpoint_json(const struct overlay_status *ov)
{
	if (!ov->endpoint_host)
		return json_null();
	return json_pack("{s:s, s:s?, s:o, s:s?}", "host", ov->endpoint_host,
			 "address", ov->endpoint_address[0] ? ov->endpoint_address : NULL,
			 "resolved_at", ov->endpoint_resolved_at ? json_integer(ov->endpoint_resolved_at) : json_null(),
			 "error", ov->endpoint_error[0] ? ov->endpoint_error : NULL);
}

json_t *render_tunnel(const struct node_snapshot *s)
{
	const struct overlay_status *ov = s->tunnel;
	int64_t max_age = snapshot_max_handshake_age(s);

	return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:I, s:I, s:s?, s:o, s:o, s:o}",
		"state", tunnel_state_name(ov->state), "interface", s->conf->cluster.interface,
		"backend", ov->backend, "link_up", ov->link_up,
		"peer_count", (json_int_t)s->peers_configured, "fresh_peer_count", (json_int_t)ov->n_fresh,
		"max_last_handshake_sec", max_age >= 0 ? json_integer(max_age) : json_null(),
		"repairs", (json_int_t)ov->repairs, "rearms", (json_int_t)ov->rearms,
		"last_error", ov->last_error[0] ? ov->last_error : NULL,
		"hub_endpoint", hub_endpoint_json(ov), "mtu", mtu_json(ov), "peers", peers_json(ov));
}

/* ---- postgres and replication ------------------------------------------------------------ */

static json_t *clone_json(const struct pg_clone *c)
{
	if (!c->active)
		return json_null();
	return json_pack("{s:o, s:o, s:o, s:f, s:o}", "phase", str_or_null(c->phase),
			 "done_bytes", num(c->done_bytes), "total_bytes", num(c->total_bytes),
			 "elapsed_s", c->elapsed_s, "eta_s", num(c->eta_s));
}

static json_t *listen_json(const struct pg_report *r)
{
	json_t *bound = json_array();
	char ip[16];
	bool only = true;

	conf_ip_str(r->self->overlay_ip, ip);
	for (size_t i = 0; i < r->n_bound; i++) {
		json_array_append_new(bound, json_string(r->bound[i]));
		only &= strcmp(r->bound[i], ip) == 0;
	}
	if (!r->bound) {
		json_decref(bound);
		return json_pack("{s:s, s:n, s:n}", "configured", r->listen, "bound", "only_overlay");
	}
	return json_pack("{s:s, s:o, s:b}", "configured", r->listen, "bound", bound, "only_overlay", only);
}

static json_t *receiver_json(const struct pg_report *r)
{
	const struct pg_receiver *x = &r->receiver;

	if (!r->has_receiver)
		return json_null();
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "status", str_or_null(x->status),
			 "sender_host", str_or_null(x->sender_host), "sender_port", num(x->sender_port),
			 "slot_name", str_or_null(x->slot_name), "received_tli", num(x->received_tli),
			 "latest_end_lsn", str_or_null(x->latest_end_lsn),
			 "since_last_msg_s", num(x->since_last_msg_s), "lag_bytes", num(x->lag_bytes));
}

static json_t *slots_json(const struct pg_report *r)
{
	json_t *slots = json_array();

	for (size_t i = 0; i < r->n_slots; i++) {
		const struct pg_slot *x = &r->slots[i];

		json_array_append_new(slots, json_pack("{s:o, s:o, s:o, s:o, s:o}",
			"slot_name", str_or_null(x->slot_name), "active", tri(x->active),
			"wal_status", str_or_null(x->wal_status), "safe_wal_size", num(x->safe_wal_size),
			"retained_bytes", num(x->retained_bytes)));
	}
	return slots;
}

static json_t *archiver_json(const struct pg_report *r)
{
	const struct pg_archiver *a = &r->archiver;

	if (!r->has_archiver)
		return json_null();
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}", "archived_count", num(a->archived_count),
			 "failed_count", num(a->failed_count), "last_failed_wal", str_or_null(a->last_failed_wal),
			 "last_archived_at", num(a->last_archived_at), "last_failed_at", num(a->last_failed_at),
			 "failing", a->failing);
}

json_t *render_postgres(const struct node_snapshot *s)
{
	const struct pg_report *r = &s->pg;
	json_t *o = json_pack("{s:s, s:o, s:s, s:o}", "state", pg_state_name(r->state),
			      "reason", r->reason[0] ? json_string(r->reason) : json_null(),
			      "role", conf_pg_role_name(r->role), "listen", listen_json(r));

	json_object_set_new(o, "observed_at_ms", r->probed ? json_integer(r->observed_at_ms) : json_null());
	json_object_set_new(o, "observed_age_s", r->probed ? json_real(r->observed_age_s) : json_null());
	if (r->probed) {
		json_object_set_new(o, "sysid", str_or_null(r->sysid));
		json_object_set_new(o, "version", num(r->version));
		json_object_set_new(o, "timeline", num(r->timeline));
		json_object_set_new(o, "in_recovery", tri(r->in_recovery));
		json_object_set_new(o, "flush_lsn", str_or_null(r->flush_lsn));
		json_object_set_new(o, "receive_lsn", str_or_null(r->receive_lsn));
		json_object_set_new(o, "replay_lsn", str_or_null(r->replay_lsn));
		json_object_set_new(o, "replay_delay_s", num(r->replay_delay_s));
		json_object_set_new(o, "replay_paused", tri(r->replay_paused));
		json_object_set_new(o, "receiver", receiver_json(r));
		json_object_set_new(o, "slots", slots_json(r));
		json_object_set_new(o, "archiver", archiver_json(r));
		json_object_set_new(o, "observed_role", str_or_null(pg_observed_role(r)));
	}
	json_object_set_new(o, "probe_error", str_or_null(r->probe_error));
	json_object_set_new(o, "clone", clone_json(&r->clone));
	json_object_set_new(o, "bootstraps_redone", json_integer(r->bootstraps_redone));
	return o;
}

static void set(json_t *o, const char *k, json_t *v)
{
	json_object_set_new(o, k, v);
}

/* The figures each view has: a row carries only what can be seen from here. */
static void member_view(const struct pg_member *m, json_t *row)
{
	switch (m->view) {
	case PG_MEMBER_UNSEEN:
		set(row, "link", json_null()); /* not seen from here */
		return;
	case PG_MEMBER_SELF:
		return;
	case PG_MEMBER_SELF_REPLICA:
		set(row, "link", json_string(m->link));
		set(row, "slot", json_string(m->slot));
		set(row, "replay_lag_bytes", num(m->replay_lag_bytes));
		set(row, "replay_lag_s", num(m->replay_lag_s));
		set(row, "last_msg_age_s", num(m->last_msg_age_s));
		set(row, "sender", str_or_null(m->sender));
		return;
	case PG_MEMBER_DOWNSTREAM:
		set(row, "slot", json_string(m->slot));
		set(row, "slot_active", m->slot_row ? tri(m->slot_row->active) : json_null());
		set(row, "slot_wal_status", m->slot_row ? str_or_null(m->slot_row->wal_status) : json_null());
		set(row, "slot_retained_bytes", m->slot_row ? num(m->slot_row->retained_bytes) : json_null());
		set(row, "link", json_string(m->link));
		if (!m->connected) {
			if (m->clone.active)
				set(row, "clone", clone_json(&m->clone));
			set(row, "replay_lag_bytes", json_null());
			set(row, "replay_lag_s", json_null());
			return;
		}
		set(row, "sync_state", str_or_null(m->sync_state));
		set(row, "send_lag_bytes", num(m->send_lag_bytes));
		set(row, "flush_lag_bytes", num(m->flush_lag_bytes));
		set(row, "replay_lag_bytes", num(m->replay_lag_bytes));
		set(row, "replay_lag_s", num(m->replay_lag_s));
		if (m->idle)
			set(row, "idle", json_true());
		set(row, "last_msg_age_s", num(m->last_msg_age_s));
		return;
	}
}

static json_t *member_json(const struct node_snapshot *s, const struct pg_member *m)
{
	json_t *row = json_object();
	char ip[16];

	member_view(m, row);
	set(row, "name", json_string(m->node->name));
	set(row, "overlay_ip", json_string(conf_ip_str(m->node->overlay_ip, ip)));
	set(row, "role", json_string(conf_pg_role_name(m->node->pg_role)));
	set(row, "upstream", str_or_null(m->upstream));
	set(row, "self", json_boolean(m->self));
	if (!m->self)
		return row;
	if (m->clone.active) {
		set(row, "link", json_string("cloning"));
		set(row, "clone", clone_json(&m->clone));
	}
	set(row, "pg_state", json_string(pg_state_name(m->pg_state)));
	set(row, "timeline", num(m->timeline));
	/* A spoke knows its own tunnel: the handshake with the hub. */
	if (s->tunnel->n_peers) {
		set(row, "tunnel", json_string(tunnel_state_name(s->tunnel->state)));
		set(row, "handshake_age_s", s->tunnel->peers[0].age_s >= 0 ?
		    json_integer(s->tunnel->peers[0].age_s) : json_null());
	}
	return row;
}

json_t *render_replication(const struct node_snapshot *s)
{
	json_t *members = json_array();

	for (size_t i = 0; i < s->pg.n_members; i++)
		json_array_append_new(members, member_json(s, &s->pg.members[i]));
	return json_pack("{s:o, s:o}", "primary", str_or_null(s->primary), "members", members);
}

/* ---- firewall, backup, children -------------------------------------------------------- */

static json_t *foreign_json(const struct fw_report *r)
{
	json_t *blocks;

	if (!r->hub)
		return json_null();
	blocks = json_array();
	for (size_t i = 0; i < r->n_blocks; i++)
		json_array_append_new(blocks, json_pack("{s:s, s:s, s:s}", "chain", r->blocks[i].chain,
					"why", r->blocks[i].why, "fix", r->blocks[i].fix));
	return json_pack("{s:s, s:o, s:o, s:s?, s:o}", "interface", r->ifname,
			 "checked_at", secs_or_null(r->foreign_at_ms),
			 "generation", r->foreign_read ? json_integer(r->foreign_genid) : json_null(),
			 "error", r->foreign_error, "blocking", blocks);
}

json_t *render_firewall(const struct node_snapshot *s, bool detail)
{
	const struct fw_status *st = s->fw.st;
	json_t *o, *drops;

	o = json_pack("{s:s, s:o, s:s?, s:I, s:s?}", "state", fw_state_name(st->state),
		      "applied_at", secs_or_null(st->applied_at_ms),
		      "rules_hash", st->rules_hash[0] ? st->rules_hash : NULL,
		      "repairs", (json_int_t)st->repairs, "last_error", st->last_error[0] ? st->last_error : NULL);
	if (!detail)
		return o;
	drops = json_array();
	for (size_t i = 0; i < s->fw.n_drops; i++) {
		const struct fw_counter *c = &s->fw.drops[i];

		json_array_append_new(drops, json_pack("{s:s, s:i, s:s?, s:I, s:I}", "chain", c->chain,
			"rule", (int)c->rule, "why", c->why, "packets", (json_int_t)c->packets,
			"bytes", (json_int_t)c->bytes));
	}
	json_object_update_new(o, json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:s?, s:o, s:i, s:i, s:o, s:o}",
		"table", s->fw.table, "wanted_hash", st->wanted_hash,
		/* never applied: no duration, not 0 ms */
		"apply_ms", st->applied_at_ms ? json_real((double)st->apply_us / 1000.0) : json_null(),
		"generation", (json_int_t)st->genid, "applies", (json_int_t)st->applies,
		"checks", (json_int_t)st->checks, "last_repair", st->last_repair[0] ? st->last_repair : NULL,
		"last_repair_at", secs_or_null(st->last_repair_at_ms),
		"rules", (int)st->n_rules, "elements", (int)st->n_elems, "drops", drops,
		"foreign", foreign_json(&s->fw)));
	return o;
}

json_t *render_backup(const struct node_snapshot *s)
{
	const struct backup_report *b = &s->backup;
	json_t *o;

	if (s->hub)
		return json_pack("{s:s, s:n, s:n, s:n, s:n, s:n}", "state", "none", "last_ok_at", "age_s",
				 "size_bytes", "next_at", "last_error");
	if (!b->enabled)
		return json_null();
	o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", backup_state_name(b->state),
		      "method", conf_backup_method_name(b->method), "next_at", (json_int_t)b->next_at,
		      "count", (json_int_t)b->count, "good_count", (json_int_t)b->good_count);
	set(o, "last_ok_at", num(b->last_ok_at));
	set(o, "age_s", b->age_s >= 0 ? json_integer(b->age_s) : json_null());
	set(o, "as_of", num(b->as_of));
	set(o, "as_of_source", str_or_null(b->as_of_source));
	set(o, "replica_lag", b->replica_lag ? json_deep_copy(b->replica_lag) : json_null());
	set(o, "size_bytes", num(b->size_bytes));
	set(o, "last_backup", str_or_null(b->last_backup));
	set(o, "last_error", str_or_null(b->last_error));
	set(o, "max_age_s", json_integer(b->max_age_s));
	if (b->running)
		set(o, "running_since", json_integer(b->running_since));
	if (b->waiting_for)
		set(o, "waiting_for", json_string(b->waiting_for));
	set(o, "runs", json_integer(b->runs));
	set(o, "failed_runs", json_integer(b->failed_runs));
	return o;
}

static json_t *exit_json(int st)
{
	if (st < 0)
		return json_null();
	if (WIFEXITED(st))
		return json_pack("{s:i}", "code", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return json_pack("{s:i, s:s}", "signal", WTERMSIG(st), "signal_name", signal_name(WTERMSIG(st)));
	return json_null();
}

json_t *render_children(const struct node_snapshot *s)
{
	json_t *children = json_array();
	uint64_t now = now_ms();

	for (size_t i = 0; i < s->n_children; i++) {
		const struct child_status *c = &s->children[i];
		/* a child that is not running has no pid: null, not 0 */
		json_t *o = json_pack("{s:s, s:s, s:o, s:i, s:o, s:I, s:b, s:s?}",
				      "name", c->name, "state", child_state_name(c->state),
				      "pid", c->pid > 0 ? json_integer(c->pid) : json_null(),
				      "restarts", (int)c->restarts, "last_exit", exit_json(c->last_status),
				      "state_for_s", (json_int_t)((now - c->state_since_ms) / 1000),
				      "required", c->required, "last_error", c->last_error);

		if (c->state == CHILD_STATE_BACKOFF)
			set(o, "restart_in_s", json_integer((json_int_t)((c->next_start_ms - now + 999) / 1000)));
		json_array_append_new(children, o);
	}
	return children;
}

/* ---- the /status document ------------------------------------------------------- */

static json_t *disk_json(const struct disk_usage *u)
{
	if (!u->known)
		return json_pack("{s:s?, s:n}", "path", u->path, "free_bytes");
	return json_pack("{s:s, s:I, s:I}", "path", u->path, "free_bytes", (json_int_t)u->free_bytes,
			 "size_bytes", (json_int_t)u->size_bytes);
}

/* The spec's disk_free_gb: GiB free on /, rounded down to 0.1; null when unknown. */
static json_t *disk_free_gb(const struct disk_usage *root)
{
	if (!root->known)
		return json_null();
	return json_real(floor((double)root->free_bytes / (1024.0 * 1024 * 1024) * 10) / 10);
}

json_t *status_document(const struct node_snapshot *s)
{
	json_t *doc, *reasons = json_array();
	enum health h = snapshot_health(s, SNAP_ALL, reasons);
	int64_t max_age = snapshot_max_handshake_age(s);
	char ip[16], when[32];
	time_t now = (time_t)s->time_s;
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	doc = json_pack("{s:s, s:s, s:{s:s, s:I, s:I, s:o}, s:o, s:s}",
		"node", s->self->name, "overlay_ip", conf_ip_str(s->self->overlay_ip, ip),
		"wg", "interface", s->conf->cluster.interface, "peer_count", (json_int_t)s->peers_configured,
		"fresh_peer_count", (json_int_t)s->tunnel->n_fresh,
		"max_last_handshake_sec", max_age >= 0 ? json_integer(max_age) : json_null(),
		"disk_free_gb", disk_free_gb(&s->root), "time", when);
	set(doc, "version", json_string(SUPERVISOR_VERSION));
	set(doc, "role", json_string(s->hub ? "hub" : "spoke"));
	set(doc, "uptime_s", json_integer((json_int_t)s->uptime_s));
	set(doc, "disk", json_pack("{s:o, s:o, s:o}", "root", disk_json(&s->root),
		"data_dir", s->hub ? json_null() : disk_json(&s->data_dir),
		"backup_dir", s->hub ? json_null() : disk_json(&s->backup_dir)));
	set(doc, "tunnel", render_tunnel(s));
	set(doc, "postgres", render_postgres(s));
	set(doc, "replication", render_replication(s));
	set(doc, "backup", render_backup(s));
	set(doc, "firewall", render_firewall(s, false));
	set(doc, "ha", json_incref(s->ha));
	set(doc, "overall", json_string(health_name(h)));
	set(doc, "reasons", reasons);
	return doc;
}

/* ---- the service manager's one line ------------------------------------------------- */

char *status_line(const struct node_snapshot *s)
{
	json_t *reasons = json_array();
	enum health h = snapshot_health(s, SNAP_ALL, reasons);
	char *line = NULL;
	size_t len = 0, i;
	FILE *f = xmemstream(&line, &len);
	json_t *r;

	fprintf(f, "%s: tunnel %s (%zu/%zu peers fresh), firewall %s", health_name(h),
		tunnel_state_name(s->tunnel->state), s->tunnel->n_fresh, s->peers_configured,
		fw_state_name(s->fw.st->state));
	if (s->pg.state != PG_STATE_NONE)
		fprintf(f, ", postgres %s", pg_state_name(s->pg.state));
	json_array_foreach(reasons, i, r)
		fprintf(f, "; %s", json_string_value(r));
	fclose(f);
	json_decref(reasons);
	/* One line, short enough for `systemctl status`. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (strlen(line) > STATUS_LINE_MAX)
		memcpy(line + STATUS_LINE_MAX - 3, "...", 4);
	return line;
}

/* ---- readiness for load balancers ------------------------------------------------- */

bool snapshot_ready(const struct node_snapshot *s, enum conf_pg_role role, json_t *why)
{
	const char *name = conf_pg_role_name(role), *seen = pg_observed_role(&s->pg);
	const struct pg_member *self = snapshot_self_member(s);
	bool ok = true;

	if (s->pg.role != role || s->pg.state == PG_STATE_NONE) {
		if (why)
			json_array_append_new(why, json_pack("s+", "not a ", name));
		return false;
	}
	/* With HA, only the holder of the leader key under a live lease is the primary. */
	if (role == CONF_PG_PRIMARY && s->ha_enabled && !s->ha_is_leader) {
		if (why)
			json_array_append_new(why, json_string("does not hold the leader key under a live lease"));
		ok = false;
	}
	if (s->pg.state != PG_STATE_RUNNING) {
		if (why)
			json_array_append_new(why, json_pack("s+", "postgres is ", pg_state_name(s->pg.state)));
		ok = false;
	} else if (!seen || strcmp(seen, name) != 0) {
		if (why)
			json_array_append_new(why, json_pack("s+", "postgres runs as ", seen ? seen : "unknown"));
		ok = false;
	}
	if (s->tunnel->state != TUNNEL_FRESH) {
		if (why)
			json_array_append_new(why, json_pack("s+", "tunnel is ", tunnel_state_name(s->tunnel->state)));
		ok = false;
	}
	if (ok && role == CONF_PG_REPLICA) {
		const char *link = self && self->link ? self->link : NULL;

		if (!link || strcmp(link, "streaming") != 0) {
			if (why)
				json_array_append_new(why, json_pack("s+", "replication link is ", link ? link : "unknown"));
			ok = false;
		}
	}
	return ok;
}
