// SPDX-License-Identifier: MIT
/*
 * The DBA's view, built from the last probe and the cluster file: one row
 * per spoke. On the primary, a replica's row is its own walreceiver's
 * connection: the pg_stat_replication row with its node name as
 * application_name from its overlay address. Its clone's connections
 * (pg_basebackup, "NODE/clone") make it "cloning", with progress; they are
 * never taken for its link. A configured replica with neither still has a
 * row, marked "absent". Seconds of lag are null ("unknown") whenever the
 * link is not streaming, never 0; an idle, caught-up link (NULL intervals in
 * Postgres) reads 0 with "idle": true.
 */
#include "pgwatch/pgwatch_internal.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "lib/str.h"

#include <string.h>
#include <time.h>

static json_t *get(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v ? json_incref(v) : json_null();
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e) {
		const char *v = json_string_value(json_object_get(e, key));

		if (v && strcmp(v, value) == 0)
			return e;
	}
	return NULL;
}

/*
 * The connection of @app_name from @ip; for a clone, the one that carries
 * the base backup's progress (its WAL stream is the other).
 */
static json_t *find_conn(json_t *replicas, const char *app_name, const char *ip)
{
	json_t *e, *found = NULL;
	size_t i;

	json_array_foreach(replicas, i, e) {
		const char *a = json_string_value(json_object_get(e, "application_name"));
		const char *c = json_string_value(json_object_get(e, "client_addr"));

		if (!a || !c || strcmp(a, app_name) || strcmp(c, ip))
			continue;
		if (!found || json_is_string(json_object_get(e, "clone_phase")))
			found = e;
	}
	return found;
}

const char *pg_clone_text(const json_t *clone, char *buf, size_t size)
{
	json_t *done = json_object_get(clone, "done_bytes"), *total = json_object_get(clone, "total_bytes");
	json_t *eta = json_object_get(clone, "eta_s");
	const char *phase = json_string_value(json_object_get(clone, "phase"));
	char d[32], t[32], e[32] = "";

	if (!json_is_number(done) || json_number_value(done) == 0) {
		snprintf(buf, size, "%s", phase ? phase : "starting");
		return buf;
	}
	fmt_bytes(json_number_value(done), d, sizeof(d));
	if (json_is_number(eta))
		snprintf(e, sizeof(e), ", ~%s left", fmt_duration((long long)json_number_value(eta), t, sizeof(t)));
	if (json_is_number(total) && json_number_value(total) > 0)
		snprintf(buf, size, "%d%% (%s of %s%s)",
			 (int)(100 * json_number_value(done) / json_number_value(total)), d,
			 fmt_bytes(json_number_value(total), t, sizeof(t)), e);
	else
		snprintf(buf, size, "%s so far", d);
	return buf;
}

/*
 * clone_json() - progress as {phase, done_bytes, total_bytes, elapsed_s,
 * eta_s}: figures unknown are null. The rate is the average since the start.
 */
static json_t *clone_json(const char *phase, double done, double total, double elapsed_s)
{
	json_t *o = json_object();
	double eta = -1;

	if (done > 0 && total > done && elapsed_s >= 1)
		eta = (total - done) / (done / elapsed_s);
	json_object_set_new(o, "phase", phase ? json_string(phase) : json_null());
	json_object_set_new(o, "done_bytes", done >= 0 ? json_integer((json_int_t)done) : json_null());
	json_object_set_new(o, "total_bytes", total > 0 ? json_integer((json_int_t)total) : json_null());
	json_object_set_new(o, "elapsed_s", json_real(elapsed_s));
	json_object_set_new(o, "eta_s", eta >= 0 ? json_integer((json_int_t)(eta + 0.5)) : json_null());
	return o;
}

static double num_or(const json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

static void add_slot(json_t *row, const json_t *slot, const char *slot_name)
{
	json_object_set_new(row, "slot", slot_name ? json_string(slot_name) : json_null());
	json_object_set_new(row, "slot_active", get(slot, "active"));
	json_object_set_new(row, "slot_wal_status", get(slot, "wal_status"));
	json_object_set_new(row, "slot_retained_bytes", get(slot, "retained_bytes"));
}

/* A downstream replica as the primary sees it. */
static json_t *downstream_row(const struct pgwatch *pw, const struct conf_node *n)
{
	json_t *last = pw->last, *row = json_object(), *r, *clone;
	char ip[16], slot[64], app[80];

	conf_ip_str(n->overlay_ip, ip);
	pg_slot_name(n->name, slot, sizeof(slot));
	snprintf(app, sizeof(app), "%s/clone", n->name);
	r = find_conn(json_object_get(last, "replicas"), n->name, ip);
	clone = r ? NULL : find_conn(json_object_get(last, "replicas"), app, ip);
	add_slot(row, find_by(json_object_get(last, "slots"), "slot_name", slot), slot);
	if (!r) {
		json_object_set_new(row, "link", json_string(clone ? "cloning" : "absent"));
		if (clone)
			json_object_set_new(row, "clone",
					    clone_json(json_string_value(json_object_get(clone, "clone_phase")),
						       num_or(clone, "clone_done_bytes", -1),
						       num_or(clone, "clone_total_bytes", -1),
						       num_or(clone, "backend_age_s", 0)));
		json_object_set_new(row, "replay_lag_bytes", json_null());
		json_object_set_new(row, "replay_lag_s", json_null());
		return row;
	}
	const char *state = json_string_value(json_object_get(r, "state"));
	json_t *lag_s = json_object_get(r, "replay_lag_s");
	bool streaming = state && strcmp(state, "streaming") == 0;

	json_object_set_new(row, "link", json_string(state ? state : "unknown"));
	json_object_set_new(row, "sync_state", get(r, "sync_state"));
	json_object_set_new(row, "send_lag_bytes", get(r, "send_lag_bytes"));
	json_object_set_new(row, "flush_lag_bytes", get(r, "flush_lag_bytes"));
	json_object_set_new(row, "replay_lag_bytes", get(r, "replay_lag_bytes"));
	if (json_is_number(lag_s)) {
		json_object_set_new(row, "replay_lag_s", json_incref(lag_s));
	} else if (streaming) {
		/* Postgres reports NULL once an idle standby has caught up. */
		json_object_set_new(row, "replay_lag_s", json_integer(0));
		json_object_set_new(row, "idle", json_true());
	} else {
		json_object_set_new(row, "replay_lag_s", json_null());
	}
	json_object_set_new(row, "last_msg_age_s", get(r, "reply_age_s"));
	return row;
}

/* This node as a replica: its WAL receiver is its link. */
static void self_replica(const struct pgwatch *pw, json_t *row)
{
	json_t *rx = json_object_get(pw->last, "receiver");
	const char *status = json_string_value(json_object_get(rx, "status"));
	bool streaming = status && strcmp(status, "streaming") == 0;
	char slot[64];

	pg_slot_name(conf_self(pw->conf)->name, slot, sizeof(slot));
	json_object_set_new(row, "link", json_string(!rx || json_is_null(rx) ? "not_streaming" :
						      status ? status : "unknown"));
	json_object_set_new(row, "slot", json_string(slot));
	json_object_set_new(row, "replay_lag_bytes", get(rx, "lag_bytes"));
	/* The receive = replay guard reads 0 with a dead receiver: only trust it streaming. */
	json_object_set_new(row, "replay_lag_s", streaming ? get(pw->last, "replay_delay_s") : json_null());
	json_object_set_new(row, "last_msg_age_s", get(rx, "since_last_msg_s"));
	json_object_set_new(row, "sender", rx && !json_is_null(rx) ? get(rx, "sender_host") : json_null());
}

static json_t *self_clone_json(const struct pgwatch *pw)
{
	const struct clone_progress *c = &pw->clone;

	return clone_json(NULL, (double)c->done_kb * 1024, (double)c->total_kb * 1024,
			  (double)(now_ms() - c->started_ms) / 1000.0);
}

void replica_track(struct pgwatch *pw)
{
	bool replica = json_is_true(json_object_get(pw->last, "in_recovery"));
	const char *rx = json_string_value(json_object_get(json_object_get(pw->last, "receiver"), "status"));
	bool paused = replica && json_is_true(json_object_get(pw->last, "replay_paused"));
	bool down = replica && !(rx && strcmp(rx, "streaming") == 0);
	uint64_t now = now_ms();

	/* Postgres cannot say since when: from the first probe that saw it. */
	if (paused != !!pw->paused_since_ms)
		pw->paused_since_ms = paused ? now : 0;
	if (down != !!pw->rx_down_since_ms)
		pw->rx_down_since_ms = down ? now : 0;
}

static json_t *rows(const struct pgwatch *pw)
{
	const struct conf *c = pw->conf;
	bool probed = pw->last && pw->state != PG_STATE_NONE;
	bool primary_view = probed && json_is_false(json_object_get(pw->last, "in_recovery"));
	json_t *out = json_array();
	char ip[16];

	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct conf_node *n = &c->nodes[i];
		json_t *row;
		bool self = (int)i == c->self;

		if (self || !(primary_view && n->upstream == c->self)) {
			row = json_object();
			if (self && probed && !primary_view)
				self_replica(pw, row);
			else if (!self)
				json_object_set_new(row, "link", json_null()); /* not seen from here */
		} else {
			row = downstream_row(pw, n);
		}
		json_object_set_new(row, "name", json_string(n->name));
		json_object_set_new(row, "overlay_ip", json_string(conf_ip_str(n->overlay_ip, ip)));
		json_object_set_new(row, "role", json_string(conf_pg_role_name(n->pg_role)));
		json_object_set_new(row, "upstream", n->upstream >= 0 ? json_string(c->nodes[n->upstream].name)
								       : json_null());
		json_object_set_new(row, "self", json_boolean(self));
		if (self && pw->clone.active) {
			json_object_set_new(row, "link", json_string("cloning"));
			json_object_set_new(row, "clone", self_clone_json(pw));
		}
		if (self) {
			json_object_set_new(row, "pg_state", json_string(pg_state_name(pw->state)));
			json_object_set_new(row, "timeline", probed ? get(pw->last, "timeline") : json_null());
		}
		json_array_append_new(out, row);
	}
	return out;
}

json_t *pgwatch_json(const struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf);
	json_t *o = json_object(), *listen = json_object();
	char ip[16], addr[32];
	bool only = true;
	size_t i;
	json_t *b;

	json_object_set_new(o, "state", json_string(pg_state_name(pw->state)));
	json_object_set_new(o, "reason", pw->reason[0] ? json_string(pw->reason) : json_null());
	json_object_set_new(o, "role", json_string(conf_pg_role_name(me->pg_role)));
	snprintf(addr, sizeof(addr), "%s:%u", conf_ip_str(me->overlay_ip, ip), me->settings.postgres.port);
	json_object_set_new(listen, "configured", json_string(addr));
	json_object_set_new(listen, "bound", pw->bound ? json_incref(pw->bound) : json_null());
	json_array_foreach(pw->bound, i, b)
		only &= strcmp(json_string_value(b), ip) == 0;
	json_object_set_new(listen, "only_overlay", pw->bound ? json_boolean(only) : json_null());
	json_object_set_new(o, "listen", listen);
	if (pw->last) {
		static const char *const keys[] = { "sysid", "version", "timeline", "in_recovery",
						    "flush_lsn", "receive_lsn", "replay_lsn",
						    "replay_delay_s", "replay_paused", "receiver", "slots", "archiver" };

		json_object_set_new(o, "observed_at_ms", json_integer(pw->last_ok_wall_ms));
		json_object_set_new(o, "observed_age_s",
				    json_real((double)(now_ms() - pw->last_ok_mono_ms) / 1000.0));
		for (i = 0; i < ARRAY_SIZE(keys); i++)
			json_object_set_new(o, keys[i], get(pw->last, keys[i]));
		json_object_set_new(o, "observed_role",
				    json_string(json_is_true(json_object_get(pw->last, "in_recovery")) ?
						"replica" : "primary"));
	} else {
		json_object_set_new(o, "observed_at_ms", json_null());
		json_object_set_new(o, "observed_age_s", json_null());
	}
	json_object_set_new(o, "probe_error", pw->probe_error[0] ? json_string(pw->probe_error) : json_null());
	json_object_set_new(o, "clone", pw->clone.active ? self_clone_json(pw) : json_null());
	json_object_set_new(o, "bootstraps_redone", json_integer(pw->bootstraps_redone));
	json_object_set_new(o, "replication", rows(pw));
	return o;
}

static void reason(json_t *reasons, const char *fmt, ...) _printf_(2, 3);
static void reason(json_t *reasons, const char *fmt, ...)
{
	char buf[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(reasons, json_string(buf));
}

/*
 * This node as a replica, in its own view (the primary sees it too, but a
 * replica must not say ok while it serves, and backs up, old data): replay
 * paused or the receiver down for longer than backup.max_replica_lag, or
 * replay that far behind.
 */
static int self_replica_health(const struct pgwatch *pw, const json_t *row, json_t *reasons)
{
	uint32_t bound = conf_self(pw->conf)->settings.backup.max_replica_lag_s;
	uint64_t now = now_ms();
	const json_t *lag = json_object_get(row, "replay_lag_s");
	char d1[32], d2[32];
	int h = 0;

	fmt_duration(bound, d2, sizeof(d2));
	if (pw->paused_since_ms && now - pw->paused_since_ms > (uint64_t)bound * 1000) {
		reason(reasons, "replication: WAL replay on this replica has been paused for %s (max_replica_lag %s): "
		       "its data grows old; SELECT pg_wal_replay_resume()",
		       fmt_duration((long long)(now - pw->paused_since_ms) / 1000, d1, sizeof(d1)), d2);
		h = 1;
	}
	if (pw->rx_down_since_ms && now - pw->rx_down_since_ms > (uint64_t)bound * 1000) {
		reason(reasons, "replication: this replica's WAL receiver has not streamed for %s (max_replica_lag %s)",
		       fmt_duration((long long)(now - pw->rx_down_since_ms) / 1000, d1, sizeof(d1)), d2);
		h = 1;
	}
	if (json_is_number(lag) && json_number_value(lag) > bound) {
		reason(reasons, "replication: this replica's replay is %s behind (max_replica_lag %s)",
		       fmt_duration((long long)json_number_value(lag), d1, sizeof(d1)), d2);
		h = 1;
	}
	return h;
}

int pgwatch_health(const struct pgwatch *pw, json_t *reasons)
{
	json_t *rep, *row;
	int h = 0;
	size_t i;

	switch (pw->state) {
	case PG_STATE_NONE:
		return 0;
	case PG_STATE_WAITING_FOR_TUNNEL:
		reason(reasons, "postgres: waiting for a fresh hub handshake before starting");
		return 1;
	case PG_STATE_WAITING_FOR_FIREWALL:
		reason(reasons, "postgres: not started until the firewall is in force: %s", pw->reason);
		return 2;
	case PG_STATE_BOOTSTRAPPING:
	case PG_STATE_STARTING:
		if (pw->clone.active) {
			json_t *c = self_clone_json(pw);
			char text[128];

			reason(reasons, "postgres: bootstrapping: cloning from %s: %s",
			       pw->conf->nodes[conf_self(pw->conf)->upstream].name,
			       pg_clone_text(c, text, sizeof(text)));
			json_decref(c);
			return 1;
		}
		reason(reasons, "postgres: %s%s%s", pg_state_name(pw->state), pw->reason[0] ? ": " : "",
		       pw->reason);
		return 1;
	case PG_STATE_UNRESPONSIVE:
	case PG_STATE_STOPPED:
	case PG_STATE_FAILED:
		reason(reasons, "postgres %s: %s", pg_state_name(pw->state), pw->reason);
		return 2;
	case PG_STATE_RUNNING:
		break;
	}
	rep = pgwatch_json(pw);
	if (json_is_false(json_object_get(json_object_get(rep, "listen"), "only_overlay"))) {
		reason(reasons, "postgres listens beyond the overlay IP");
		h = 2;
	}
	json_array_foreach(json_object_get(rep, "replication"), i, row) {
		const char *link = json_string_value(json_object_get(row, "link"));
		const char *ws = json_string_value(json_object_get(row, "slot_wal_status"));
		const char *name = json_string_value(json_object_get(row, "name"));

		/* Every state but streaming (absent, cloning, startup, catchup, stopping). */
		if (link && strcmp(link, "cloning") == 0) {
			char text[128];

			reason(reasons, "replication: %s is being cloned: %s", name,
			       pg_clone_text(json_object_get(row, "clone"), text, sizeof(text)));
			h = h > 1 ? h : 1;
		} else if (link && strcmp(link, "absent") == 0 && pw->tunnel_fresh_now) {
			/*
			 * Only the hub knows each spoke's tunnel; ours being fresh
			 * points past it: the replica itself, or the hub forwarding
			 * (another firewall there drops wg0 to wg0).
			 */
			reason(reasons, "replication: %s is absent (this node's tunnel is fresh: check the "
			       "replica, and on the hub `supervisor ctl firewall`)", name);
			h = h > 1 ? h : 1;
		} else if (link && strcmp(link, "streaming") != 0) {
			reason(reasons, "replication: %s is %s", name, link);
			h = h > 1 ? h : 1;
		}
		if (json_is_true(json_object_get(row, "self")) && json_object_get(row, "link")) {
			int sh = self_replica_health(pw, row, reasons);

			h = h > sh ? h : sh;
		}
		if (ws && strcmp(ws, "lost") == 0) {
			reason(reasons, "replication: slot of %s lost its WAL (the replica must be re-cloned: "
			       "`supervisor ctl reinit` on %s)", name, name);
			h = 2;
		} else if (ws && (strcmp(ws, "unreserved") == 0 || strcmp(ws, "extended") == 0)) {
			reason(reasons, "replication: slot of %s is %s (WAL retained beyond max_wal_size)",
			       name, ws);
			h = h > 1 ? h : 1;
		}
	}
	/* Seen in our walreceiver's log within the last minute (it retries every 5 s). */
	if (pw->wal_gone_ms && now_ms() - pw->wal_gone_ms < 60000) {
		const struct conf_node *me = conf_self(pw->conf);

		reason(reasons, "replication: %s no longer has the WAL this replica needs (\"requested WAL "
		       "segment has already been removed\"): it cannot catch up; re-clone it with "
		       "`supervisor ctl reinit`", me->upstream >= 0 ? pw->conf->nodes[me->upstream].name : "the upstream");
		h = 2;
	}
	/* A full or broken archive must not silently fill pg_wal. */
	row = json_object_get(rep, "archiver");
	if (json_is_true(json_object_get(row, "failing")) && json_is_false(json_object_get(rep, "in_recovery"))) {
		reason(reasons, "postgres: WAL archiving is failing (%lld failures, last on %s): "
		       "pg_wal grows until archive_command works again",
		       (long long)json_integer_value(json_object_get(row, "failed_count")),
		       json_string_value(json_object_get(row, "last_failed_wal")) ?
		       json_string_value(json_object_get(row, "last_failed_wal")) : "?");
		h = h > 1 ? h : 1;
	}
	if ((conf_self(pw->conf)->pg_role == CONF_PG_PRIMARY) !=
	    json_is_false(json_object_get(rep, "in_recovery"))) {
		reason(reasons, "postgres runs as %s but the cluster file says %s",
		       json_string_value(json_object_get(rep, "observed_role")),
		       conf_pg_role_name(conf_self(pw->conf)->pg_role));
		h = 2;
	}
	json_decref(rep);
	return h;
}
