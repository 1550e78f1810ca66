// SPDX-License-Identifier: MIT
/*
 * The DBA's view, built from the last probe and the cluster file: one row
 * per spoke. On the primary, a replica's row is its own walreceiver's
 * connection: the pg_stat_replication row with its node name as
 * application_name from its overlay address. Its clone's connections
 * (pg_basebackup, "NODE/clone") make it "cloning", with progress; they are
 * never taken for its link. A configured replica with neither still has a
 * row, marked "absent". Seconds of lag are unknown (NAN) whenever the link
 * is not streaming, never 0; an idle, caught-up link (NULL intervals in
 * Postgres) reads 0 with idle set.
 *
 * The probe's answer is the server's JSON (json_build_object in probe.c):
 * that wire format is read here, once, into the typed report; every
 * judgement below is made on the typed figures.
 */
#include "pgwatch/pgwatch_internal.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- reading the probe's answer ---------------------------------------------------- */

static double num(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static enum pg_tri tri(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_boolean(v) ? (json_is_true(v) ? PG_TRI_TRUE : PG_TRI_FALSE) : PG_TRI_NULL;
}

static bool str_is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

/*
 * The connection of @app_name from @ip; for a clone, the one that carries
 * the base backup's progress (its WAL stream is the other).
 */
static const json_t *find_conn(const json_t *replicas, const char *app_name, const char *ip)
{
	const json_t *e, *found = NULL;
	size_t i;

	json_array_foreach(replicas, i, e) {
		if (!str_is(str(e, "application_name"), app_name) || !str_is(str(e, "client_addr"), ip))
			continue;
		if (!found || json_is_string(json_object_get(e, "clone_phase")))
			found = e;
	}
	return found;
}

/* ---- clones -------------------------------------------------------------------------- */

/* Progress from what is known; the rate is the average since the start. */
static struct pg_clone clone_make(const char *phase, double done, double total, double elapsed_s)
{
	struct pg_clone c = { .active = true, .phase = phase, .elapsed_s = elapsed_s,
			      .done_bytes = done >= 0 ? done : NAN, .total_bytes = total > 0 ? total : NAN,
			      .eta_s = NAN };

	if (done > 0 && total > done && elapsed_s >= 1)
		c.eta_s = round((total - done) / (done / elapsed_s));
	return c;
}

const char *pg_clone_text(const struct pg_clone *clone, char *buf, size_t size)
{
	char d[32], t[32], e[32] = "";

	if (isnan(clone->done_bytes) || clone->done_bytes == 0) {
		snprintf(buf, size, "%s", clone->phase ? clone->phase : "starting");
		return buf;
	}
	fmt_bytes(clone->done_bytes, d, sizeof(d));
	if (!isnan(clone->eta_s))
		snprintf(e, sizeof(e), ", ~%s left", fmt_duration((long long)clone->eta_s, t, sizeof(t)));
	if (!isnan(clone->total_bytes))
		snprintf(buf, size, "%d%% (%s of %s%s)", (int)(100 * clone->done_bytes / clone->total_bytes), d,
			 fmt_bytes(clone->total_bytes, t, sizeof(t)), e);
	else
		snprintf(buf, size, "%s so far", d);
	return buf;
}

static struct pg_clone self_clone(const struct pgwatch *pw)
{
	const struct clone_progress *c = &pw->clone;

	return clone_make(NULL, (double)c->done_kb * 1024, (double)c->total_kb * 1024,
			  (double)(now_ms() - c->started_ms) / 1000.0);
}

/* ---- rows ------------------------------------------------------------------------------ */

static const struct pg_slot *slot_named(const struct pg_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_slots; i++)
		if (str_is(r->slots[i].slot_name, name))
			return &r->slots[i];
	return NULL;
}

/* A downstream replica as the primary sees it. */
static void downstream(const struct pgwatch *pw, const struct pg_report *r, struct pg_member *m)
{
	const json_t *replicas = json_object_get(pw->last, "replicas"), *conn, *clone;
	char ip[16], app[80];

	conf_ip_str(m->node->overlay_ip, ip);
	snprintf(app, sizeof(app), "%s/clone", m->node->name);
	m->view = PG_MEMBER_DOWNSTREAM;
	m->slot_row = slot_named(r, m->slot);
	conn = find_conn(replicas, m->node->name, ip);
	if (!conn) {
		clone = find_conn(replicas, app, ip);
		m->link = clone ? "cloning" : "absent";
		if (clone)
			m->clone = clone_make(str(clone, "clone_phase"), num(clone, "clone_done_bytes"),
					      num(clone, "clone_total_bytes"),
					      isnan(num(clone, "backend_age_s")) ? 0 : num(clone, "backend_age_s"));
		return;
	}
	m->connected = true;
	m->link = str(conn, "state") ? str(conn, "state") : "unknown";
	m->sync_state = str(conn, "sync_state");
	m->send_lag_bytes = num(conn, "send_lag_bytes");
	m->flush_lag_bytes = num(conn, "flush_lag_bytes");
	m->replay_lag_bytes = num(conn, "replay_lag_bytes");
	m->replay_lag_s = num(conn, "replay_lag_s");
	if (isnan(m->replay_lag_s) && str_is(m->link, "streaming")) {
		/* Postgres reports NULL once an idle standby has caught up. */
		m->replay_lag_s = 0;
		m->idle = true;
	}
	m->last_msg_age_s = num(conn, "reply_age_s");
}

/* This node as a replica: its WAL receiver is its link. */
static void self_replica(const struct pg_report *r, struct pg_member *m)
{
	const struct pg_receiver *rx = &r->receiver;
	bool streaming = r->has_receiver && str_is(rx->status, "streaming");

	m->view = PG_MEMBER_SELF_REPLICA;
	m->link = !r->has_receiver ? "not_streaming" : rx->status ? rx->status : "unknown";
	if (r->has_receiver) {
		m->replay_lag_bytes = rx->lag_bytes;
		m->last_msg_age_s = rx->since_last_msg_s;
		m->sender = rx->sender_host;
	}
	/* The receive = replay guard reads 0 with a dead receiver: only trust it streaming. */
	m->replay_lag_s = streaming ? r->replay_delay_s : NAN;
}

void replica_track(struct pgwatch *pw)
{
	bool replica = json_is_true(json_object_get(pw->last, "in_recovery"));
	const char *rx = str(json_object_get(pw->last, "receiver"), "status");
	bool paused = replica && json_is_true(json_object_get(pw->last, "replay_paused"));
	bool down = replica && !str_is(rx, "streaming");
	uint64_t now = now_ms();

	/* Postgres cannot say since when: from the first probe that saw it. */
	if (paused != !!pw->paused_since_ms)
		pw->paused_since_ms = paused ? now : 0;
	if (down != !!pw->rx_down_since_ms)
		pw->rx_down_since_ms = down ? now : 0;
}

static void members(const struct pgwatch *pw, struct pg_report *r)
{
	const struct conf *c = pw->conf;
	bool probed = r->probed && r->state != PG_STATE_NONE;
	bool primary_view = probed && r->in_recovery == PG_TRI_FALSE;

	r->n_members = c->n_nodes - 1;
	r->members = xcalloc(r->n_members ? r->n_members : 1, sizeof(*r->members));
	for (size_t i = 1; i < c->n_nodes; i++) {
		const struct conf_node *n = &c->nodes[i];
		struct pg_member *m = &r->members[i - 1];

		*m = (struct pg_member){ .node = n, .self = (int)i == c->self, .view = PG_MEMBER_UNSEEN,
					 .upstream = n->upstream >= 0 ? c->nodes[n->upstream].name : NULL,
					 .send_lag_bytes = NAN, .flush_lag_bytes = NAN, .replay_lag_bytes = NAN,
					 .replay_lag_s = NAN, .last_msg_age_s = NAN, .timeline = NAN };
		pg_slot_name(n->name, m->slot, sizeof(m->slot));
		if (m->self) {
			m->view = probed && !primary_view ? PG_MEMBER_SELF_REPLICA : PG_MEMBER_SELF;
			if (m->view == PG_MEMBER_SELF_REPLICA)
				self_replica(r, m);
			if (pw->clone.active) {
				m->link = "cloning";
				m->clone = r->clone;
			}
			m->pg_state = pw->state;
			m->timeline = probed ? r->timeline : NAN;
		} else if (primary_view && n->upstream == c->self) {
			downstream(pw, r, m);
		}
	}
}

/* ---- the report --------------------------------------------------------------------- */

static void probe_figures(const struct pgwatch *pw, struct pg_report *r)
{
	const json_t *last = pw->last, *rx = json_object_get(last, "receiver"), *e;
	const json_t *arch = json_object_get(last, "archiver");
	size_t i;

	r->probed = true;
	r->observed_at_ms = pw->last_ok_wall_ms;
	r->observed_age_s = (double)(now_ms() - pw->last_ok_mono_ms) / 1000.0;
	r->sysid = str(last, "sysid");
	r->version = num(last, "version");
	r->timeline = num(last, "timeline");
	r->in_recovery = tri(last, "in_recovery");
	r->flush_lsn = str(last, "flush_lsn");
	r->receive_lsn = str(last, "receive_lsn");
	r->replay_lsn = str(last, "replay_lsn");
	r->replay_delay_s = num(last, "replay_delay_s");
	r->replay_paused = tri(last, "replay_paused");
	if (json_is_object(rx)) {
		r->has_receiver = true;
		r->receiver = (struct pg_receiver){
			.status = str(rx, "status"), .sender_host = str(rx, "sender_host"),
			.slot_name = str(rx, "slot_name"), .latest_end_lsn = str(rx, "latest_end_lsn"),
			.sender_port = num(rx, "sender_port"), .received_tli = num(rx, "received_tli"),
			.since_last_msg_s = num(rx, "since_last_msg_s"), .lag_bytes = num(rx, "lag_bytes") };
	}
	r->n_slots = json_array_size(json_object_get(last, "slots"));
	r->slots = xcalloc(r->n_slots ? r->n_slots : 1, sizeof(*r->slots));
	json_array_foreach(json_object_get(last, "slots"), i, e)
		r->slots[i] = (struct pg_slot){ .slot_name = str(e, "slot_name"), .wal_status = str(e, "wal_status"),
						.active = tri(e, "active"), .safe_wal_size = num(e, "safe_wal_size"),
						.retained_bytes = num(e, "retained_bytes") };
	if (json_is_object(arch)) {
		r->has_archiver = true;
		r->archiver = (struct pg_archiver){
			.archived_count = num(arch, "archived_count"), .failed_count = num(arch, "failed_count"),
			.last_archived_at = num(arch, "last_archived_at"), .last_failed_at = num(arch, "last_failed_at"),
			.last_failed_wal = str(arch, "last_failed_wal"), .failing = json_is_true(json_object_get(arch, "failing")) };
	}
}

void pgwatch_report(const struct pgwatch *pw, struct pg_report *out)
{
	const struct conf_node *me = conf_self(pw->conf);
	uint64_t now = now_ms();
	char ip[16];
	size_t i;
	const json_t *b;

	*out = (struct pg_report){ .state = pw->state, .reason = pw->reason, .self = me, .role = me->pg_role,
				   .version = NAN, .timeline = NAN, .replay_delay_s = NAN, .observed_age_s = NAN,
				   .in_recovery = PG_TRI_NULL, .replay_paused = PG_TRI_NULL,
				   .probe_error = pw->probe_error[0] ? pw->probe_error : NULL,
				   .bootstraps_redone = pw->bootstraps_redone, .tunnel_fresh_now = pw->tunnel_fresh_now };
	snprintf(out->listen, sizeof(out->listen), "%s:%u", conf_ip_str(me->overlay_ip, ip),
		 me->settings.postgres.port);
	if (pw->bound) {
		const char **bound = xcalloc(json_array_size(pw->bound) + 1, sizeof(*bound));

		json_array_foreach(pw->bound, i, b)
			bound[i] = json_string_value(b);
		out->bound = bound;
		out->n_bound = json_array_size(pw->bound);
	}
	if (pw->last)
		probe_figures(pw, out);
	if (pw->clone.active)
		out->clone = self_clone(pw);
	out->paused_for_ms = pw->paused_since_ms ? now - pw->paused_since_ms : 0;
	out->rx_down_for_ms = pw->rx_down_since_ms ? now - pw->rx_down_since_ms : 0;
	out->wal_gone = pw->wal_gone_ms && now - pw->wal_gone_ms < 60000;
	members(pw, out);
}

void pg_report_clear(struct pg_report *r)
{
	free((void *)r->bound);
	free(r->slots);
	free(r->members);
	*r = (struct pg_report){ 0 };
}

const char *pg_observed_role(const struct pg_report *r)
{
	if (r->in_recovery == PG_TRI_NULL)
		return NULL;
	return r->in_recovery == PG_TRI_TRUE ? "replica" : "primary";
}

/* ---- health -------------------------------------------------------------------------- */

/*
 * This node as a replica, in its own view (the primary sees it too, but a
 * replica must not say ok while it serves, and backs up, old data): replay
 * paused or the receiver down for longer than backup.max_replica_lag, or
 * replay that far behind.
 */
static void self_replica_health(const struct pg_report *r, const struct pg_member *m, struct health_report *out)
{
	uint32_t bound = r->self->settings.backup.max_replica_lag_s;
	char d1[32], d2[32];

	fmt_duration(bound, d2, sizeof(d2));
	if (r->paused_for_ms > (uint64_t)bound * 1000)
		health_add(out, HEALTH_DEGRADED, "replication", "replication: WAL replay on this replica has been "
			   "paused for %s (max_replica_lag %s): its data grows old; SELECT pg_wal_replay_resume()",
			   fmt_duration((long long)r->paused_for_ms / 1000, d1, sizeof(d1)), d2);
	if (r->rx_down_for_ms > (uint64_t)bound * 1000)
		health_add(out, HEALTH_DEGRADED, "replication", "replication: this replica's WAL receiver has not "
			   "streamed for %s (max_replica_lag %s)",
			   fmt_duration((long long)r->rx_down_for_ms / 1000, d1, sizeof(d1)), d2);
	if (!isnan(m->replay_lag_s) && m->replay_lag_s > bound)
		health_add(out, HEALTH_DEGRADED, "replication", "replication: this replica's replay is %s behind "
			   "(max_replica_lag %s)", fmt_duration((long long)m->replay_lag_s, d1, sizeof(d1)), d2);
}

static void member_health(const struct pg_report *r, const struct pg_member *m, struct health_report *out)
{
	const char *name = m->node->name;
	const char *ws = m->slot_row ? m->slot_row->wal_status : NULL;
	char text[128];

	/* Every state but streaming (absent, cloning, startup, catchup, stopping). */
	if (str_is(m->link, "cloning")) {
		health_add(out, HEALTH_DEGRADED, "replication", "replication: %s is being cloned: %s", name,
			   pg_clone_text(&m->clone, text, sizeof(text)));
	} else if (str_is(m->link, "absent") && r->tunnel_fresh_now) {
		/*
		 * Only the hub knows each spoke's tunnel; ours being fresh points
		 * past it: the replica itself, or the hub forwarding (another
		 * firewall there drops wg0 to wg0).
		 */
		health_add(out, HEALTH_DEGRADED, "replication", "replication: %s is absent (this node's tunnel is "
			   "fresh: check the replica, and on the hub `supervisor ctl firewall`)", name);
	} else if (m->link && !str_is(m->link, "streaming")) {
		health_add(out, HEALTH_DEGRADED, "replication", "replication: %s is %s", name, m->link);
	}
	if (m->self && (m->view == PG_MEMBER_SELF_REPLICA || m->link))
		self_replica_health(r, m, out);
	if (str_is(ws, "lost"))
		health_add(out, HEALTH_CRITICAL, "replication", "replication: slot of %s lost its WAL (the replica "
			   "must be re-cloned: `supervisor ctl reinit` on %s)", name, name);
	else if (str_is(ws, "unreserved") || str_is(ws, "extended"))
		health_add(out, HEALTH_DEGRADED, "replication", "replication: slot of %s is %s (WAL retained "
			   "beyond max_wal_size)", name, ws);
}

static bool listens_beyond_overlay(const struct pg_report *r)
{
	char ip[16];

	conf_ip_str(r->self->overlay_ip, ip);
	for (size_t i = 0; i < r->n_bound; i++)
		if (!str_is(r->bound[i], ip))
			return true;
	return false;
}

void pgwatch_health(const struct pg_report *r, const struct conf *conf, struct health_report *out)
{
	const struct conf_node *me = r->self;
	const char *upstream = me->upstream >= 0 ? conf->nodes[me->upstream].name : "the upstream";
	char text[128];

	switch (r->state) {
	case PG_STATE_NONE:
		return;
	case PG_STATE_WAITING_FOR_TUNNEL:
		health_add(out, HEALTH_DEGRADED, "postgres", "postgres: waiting for a fresh hub handshake before starting");
		return;
	case PG_STATE_WAITING_FOR_FIREWALL:
		health_add(out, HEALTH_CRITICAL, "postgres", "postgres: not started until the firewall is in force: %s",
			   r->reason);
		return;
	case PG_STATE_WAITING_FOR_LEADER:
		health_add(out, HEALTH_DEGRADED, "postgres", "postgres: held by high availability: %s", r->reason);
		return;
	case PG_STATE_BOOTSTRAPPING:
	case PG_STATE_STARTING:
		if (r->clone.active)
			health_add(out, HEALTH_DEGRADED, "postgres", "postgres: bootstrapping: cloning from %s: %s",
				   upstream, pg_clone_text(&r->clone, text, sizeof(text)));
		else
			health_add(out, HEALTH_DEGRADED, "postgres", "postgres: %s%s%s", pg_state_name(r->state),
				   r->reason[0] ? ": " : "", r->reason);
		return;
	case PG_STATE_UNRESPONSIVE:
	case PG_STATE_STOPPED:
	case PG_STATE_FAILED:
		health_add(out, HEALTH_CRITICAL, "postgres", "postgres %s: %s", pg_state_name(r->state), r->reason);
		return;
	case PG_STATE_RUNNING:
		break;
	}
	if (listens_beyond_overlay(r))
		health_add(out, HEALTH_CRITICAL, "postgres", "postgres listens beyond the overlay IP");
	for (size_t i = 0; i < r->n_members; i++)
		member_health(r, &r->members[i], out);
	/* Seen in our walreceiver's log within the last minute (it retries every 5 s). */
	if (r->wal_gone)
		health_add(out, HEALTH_CRITICAL, "replication", "replication: %s no longer has the WAL this replica "
			   "needs (\"requested WAL segment has already been removed\"): it cannot catch up; re-clone "
			   "it with `supervisor ctl reinit`", upstream);
	/* A full or broken archive must not silently fill pg_wal. */
	if (r->has_archiver && r->archiver.failing && r->in_recovery == PG_TRI_FALSE)
		health_add(out, HEALTH_DEGRADED, "postgres", "postgres: WAL archiving is failing (%lld failures, last "
			   "on %s): pg_wal grows until archive_command works again",
			   isnan(r->archiver.failed_count) ? 0LL : (long long)r->archiver.failed_count,
			   r->archiver.last_failed_wal ? r->archiver.last_failed_wal : "?");
	if ((me->pg_role == CONF_PG_PRIMARY) != (r->in_recovery == PG_TRI_FALSE))
		health_add(out, HEALTH_CRITICAL, "postgres", "postgres runs as %s but the cluster file says %s",
			   pg_observed_role(r) ? pg_observed_role(r) : "unknown", conf_pg_role_name(me->pg_role));
}
