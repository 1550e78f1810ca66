// SPDX-License-Identifier: MIT
/*
 * The HA loop (failover-anchors.md §4.2): once a second, renew this node's
 * lease when due, publish its member record, read everything under the
 * prefix in one linearizable range, and decide. The decisions are few and
 * each is a transaction, so two nodes acting on the same state cannot both
 * win:
 *   - no leader, empty history, this node is the bootstrap primary: take
 *     the key (epoch 1 of the cluster's history);
 *   - no leader, this node was the last leader in the history: take it
 *     back (a restart of the primary; nobody else may have it meanwhile
 *     without a failover, which writes the history);
 *   - a switchover request from this leader: stop Postgres (checkpoint,
 *     fast shutdown: the walsender waits for the standby's flush), publish
 *     the shutdown checkpoint's LSN; the candidate takes the key once it
 *     has received past it, then promotes; if it never does, this node
 *     starts again as the primary it still is.
 * Everything else follows the key: its holder runs as primary, every other
 * Postgres spoke as its replica (the daemon's leader view).
 */
#include "ha/ha_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TICK_MS 1000
#define TICK_FAST_MS 250

int64_t ha_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ha_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

void ha_key(const struct ha *ha, char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, size, "%s", HA_PREFIX);

	va_start(ap, fmt);
	vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	(void)ha;
}

void ha_set_state(struct ha *ha, const char *state, const char *fmt, ...)
{
	char why[sizeof(ha->why)] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	if (strcmp(state, ha->state) != 0 || strcmp(why, ha->why) != 0) {
		char q[600];

		log_info("ha", "state=%s was=%s reason=%s", state, ha->state, log_quote(q, sizeof(q), why));
	}
	snprintf(ha->state, sizeof(ha->state), "%s", state);
	snprintf(ha->why, sizeof(ha->why), "%s", why);
}

const struct conf_node *ha_self(const struct ha *ha)
{
	return conf_self(ha->conf);
}

int ha_node_index(const struct ha *ha, const char *name)
{
	for (size_t i = 0; name && i < ha->conf->n_nodes; i++)
		if (strcmp(ha->conf->nodes[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* ---- the leader, as the daemon applies it -------------------------------------- */

static void apply_leader(struct ha *ha, int leader)
{
	if (leader == ha->applied_leader)
		return;
	log_info("ha", "leader=%s was=%s epoch=%" PRId64,
		 leader >= 0 ? ha->conf->nodes[leader].name : "none",
		 ha->applied_leader >= 0 ? ha->conf->nodes[ha->applied_leader].name : "none", ha->epoch);
	if (leader >= 0 && ha->applied_leader >= 0)
		ha->leader_changes++;
	ha->applied_leader = leader;
	if (ha->on_leader)
		ha->on_leader(ha->on_leader_data, leader, ha->fenced_nodes);
}

void ha_set_fenced(struct ha *ha, const bool *fenced)
{
	bool changed = false;

	for (size_t i = 0; i < ha->n_fenced_nodes; i++) {
		if (fenced[i] == ha->fenced_nodes[i])
			continue;
		log_warnx("ha", "%s node=%s", fenced[i] ? "fencing" : "unfencing", ha->conf->nodes[i].name);
		ha->fenced_nodes[i] = fenced[i];
		changed = true;
	}
	if (changed && ha->on_leader)
		ha->on_leader(ha->on_leader_data, ha->applied_leader, ha->fenced_nodes);
}

void ha_follow(struct ha *ha, int leader)
{
	apply_leader(ha, leader);
	/* The daemon applied the leader's view first: Postgres starts in that role. */
	pgwatch_hold(ha->pg, false, NULL);
}

/* ---- this node's lease ------------------------------------------------------------ */

static void lease_done(void *data, const struct etcd_result *r)
{
	struct ha *ha = data;

	ha->lease_inflight = false;
	if (r->err == -ENOENT) {
		log_warnx("ha", "lease expired in the store lease=%" PRId64 "; asking for a new one", ha->lease_id);
		ha->lease_id = 0;
		ha->lease_until_ms = 0;
		return;
	}
	if (r->err) {
		log_debug("ha", "lease renewal failed error=%s", r->error);
		return;
	}
	if (r->lease_id)
		ha->lease_id = r->lease_id;
	/* Monotonic, from when the request left: never longer than etcd's own view. */
	ha->lease_until_ms = r->sent_ms + (uint64_t)(r->ttl_s > 0 ? r->ttl_s : 0) * 1000;
	ha->lease_renewed_ms = r->sent_ms;
}

static void lease_tick(struct ha *ha)
{
	uint64_t now = now_ms();

	if (ha->lease_inflight)
		return;
	if (!ha->lease_id) {
		if (etcd_lease_grant(ha->etcd, ha->conf->ha.ttl_s, lease_done, ha) == 0)
			ha->lease_inflight = true;
	} else if (now - ha->lease_renewed_ms >= (uint64_t)ha->conf->ha.loop_wait_s * 1000 / 2) {
		if (etcd_lease_keepalive(ha->etcd, ha->lease_id, lease_done, ha) == 0)
			ha->lease_inflight = true;
	}
}

bool ha_lease_valid(const struct ha *ha)
{
	return ha->lease_id && now_ms() < ha->lease_until_ms;
}

/* ---- the member record ------------------------------------------------------------ */

/* A rejoin by pg_rewind: where the timelines parted and what this node's own WAL lost. */
static void rewind_record(struct ha *ha, json_t *m)
{
	const struct pg_rewind_note *rw = pgwatch_last_rewind(ha->pg);
	char lsn[32];
	json_t *o;

	if (!rw->started)
		return;
	o = json_pack("{s:I, s:b, s:b}", "at", (json_int_t)rw->at, "required", !rw->none_required,
		      "fell_back_to_clone", rw->failed);
	if (rw->diverged_lsn) {
		json_object_set_new(o, "diverged_at", json_string(pg_lsn_text(rw->diverged_lsn, lsn, sizeof(lsn))));
		json_object_set_new(o, "discarded_bytes", json_integer((json_int_t)rw->discarded_bytes));
	}
	if (rw->aside[0])
		json_object_set_new(o, "wal_kept_at", json_string(rw->aside));
	json_object_set_new(m, "last_rewind", o);
}

static json_t *member_record(struct ha *ha)
{
	struct pg_report r;
	json_t *m;

	pgwatch_report(ha->pg, &r);
	m = json_pack("{s:s, s:s, s:b, s:I, s:I}", "name", ha_self(ha)->name, "state", pg_state_name(r.state),
		      "failover", conf_node_candidate(ha->conf, ha_self(ha)), "lease", (json_int_t)ha->lease_id,
		      "at", (json_int_t)ha_wall_ms());
	if (r.probed && r.observed_age_s < 10) {
		json_object_set_new(m, "role", json_string(r.in_recovery == PG_TRI_TRUE ? "replica" :
							   r.in_recovery == PG_TRI_FALSE ? "primary" : "unknown"));
		if (!isnan(r.timeline))
			json_object_set_new(m, "timeline", json_integer((json_int_t)r.timeline));
		if (r.flush_lsn)
			json_object_set_new(m, "flush_lsn", json_string(r.flush_lsn));
		if (r.receive_lsn)
			json_object_set_new(m, "receive_lsn", json_string(r.receive_lsn));
		if (r.replay_lsn)
			json_object_set_new(m, "replay_lsn", json_string(r.replay_lsn));
		json_object_set_new(m, "streaming", json_boolean(r.has_receiver && r.receiver.status &&
								 strcmp(r.receiver.status, "streaming") == 0));
		if (r.has_receiver && r.receiver.sender_host)
			json_object_set_new(m, "upstream", json_string(r.receiver.sender_host));
	}
	if (ha->stopped_lsn)
		json_object_set_new(m, "stopped_lsn", json_string(ha->stopped_lsn_text));
	rewind_record(ha, m);
	pg_report_clear(&r);
	return m;
}

static void put_done(void *data, const struct etcd_result *r)
{
	struct ha *ha = data;

	ha->put_inflight = false;
	if (r->err)
		log_debug("ha", "publishing the member record failed error=%s", r->error);
}

static void publish_tick(struct ha *ha)
{
	char key[256];
	char *text;
	json_t *m;

	if (ha->put_inflight || !ha->lease_id)
		return;
	m = member_record(ha);
	text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	ha_key(ha, key, sizeof(key), "members/%s", ha_self(ha)->name);
	if (etcd_put(ha->etcd, key, text, ha->lease_id, put_done, ha) == 0)
		ha->put_inflight = true;
	free(text);
	/* The leader's position outlives its lease: the loss bound of a later failover. */
	if (ha_is_leader(ha) && ha->optime_text[0] && !ha->optime_inflight) {
		_cleanup_free_ char *ot = xasprintf("{\"node\":\"%s\",\"flush_lsn\":\"%s\",\"at\":%" PRId64 "}",
						    ha_self(ha)->name, ha->optime_text, ha_wall_ms());

		ha_key(ha, key, sizeof(key), "optime");
		if (etcd_put(ha->etcd, key, ot, 0, ha_optime_done, ha) == 0)
			ha->optime_inflight = true;
	}
}

void ha_optime_done(void *data, const struct etcd_result *r)
{
	struct ha *ha = data;

	(void)r;
	ha->optime_inflight = false;
}

/* ---- reading the store -------------------------------------------------------------- */

static json_t *parse_value(const struct etcd_kv *kv)
{
	return kv->value ? json_loads(kv->value, 0, NULL) : NULL;
}

static void read_done(void *data, const struct etcd_result *r)
{
	struct ha *ha = data;
	size_t plen = strlen(HA_PREFIX);

	ha->read_inflight = false;
	if (r->err) {
		if (ha->store_ok || !ha->store_error[0])
			log_warnx("ha", "cannot read the store error=%s", r->error);
		ha->store_ok = false;
		snprintf(ha->store_error, sizeof(ha->store_error), "%s", r->error);
		ha_decide(ha);
		return;
	}
	if (!ha->store_ok)
		log_info("ha", "store reachable revision=%" PRId64, r->revision);
	ha->store_ok = true;
	ha->store_error[0] = '\0';
	ha->store_ok_ms = now_ms();
	ha->store_read_sent_ms = r->sent_ms;
	ha->leader_name[0] = '\0';
	ha->epoch = 0;
	ha->leader_lease = 0;
	json_object_clear(ha->members);
	json_array_clear(ha->history);
	json_decref(ha->switchover);
	ha->switchover = NULL;
	json_decref(ha->optime);
	ha->optime = NULL;
	for (size_t i = 0; i < r->n_kvs; i++) {
		const struct etcd_kv *kv = &r->kvs[i];
		const char *k = kv->key + (strncmp(kv->key, HA_PREFIX, plen) == 0 ? plen : 0);

		if (strcmp(k, "leader") == 0) {
			snprintf(ha->leader_name, sizeof(ha->leader_name), "%s", kv->value ? kv->value : "");
			ha->epoch = kv->mod_revision; /* rewritten by every transaction that makes a leader */
			ha->leader_mod = kv->mod_revision;
			ha->leader_lease = kv->lease;
		} else if (strncmp(k, "members/", 8) == 0) {
			json_t *v = parse_value(kv);

			if (json_is_object(v))
				json_object_set(ha->members, k + 8, v);
			json_decref(v);
		} else if (strncmp(k, "history/", 8) == 0) {
			json_t *v = parse_value(kv);

			if (json_is_object(v)) {
				json_object_set_new(v, "epoch", json_integer(kv->create_revision));
				json_array_append(ha->history, v);
			}
			json_decref(v);
		} else if (strcmp(k, "switchover") == 0) {
			ha->switchover = parse_value(kv);
			ha->switchover_mod = kv->mod_revision;
		} else if (strcmp(k, "optime") == 0) {
			ha->optime = parse_value(kv);
		}
	}
	ha_decide(ha);
}

static void read_tick(struct ha *ha)
{
	if (ha->read_inflight)
		return;
	if (etcd_range(ha->etcd, HA_PREFIX, true, read_done, ha) == 0)
		ha->read_inflight = true;
}

/*
 * Watched four times a second: a handover in progress (writes wait for it),
 * and a leader whose renewal is overdue (its first renewal once the store
 * answers again goes out at once, and a fence comes on time).
 */
static bool hurried(const struct ha *ha)
{
	uint64_t overdue_ms = (uint64_t)ha->conf->ha.loop_wait_s * 1000 / 2 + TICK_MS;

	return ha->switchover || ha->demote_started_ms ||
	       (ha->applied_leader == ha->conf->self && ha->lease_renewed_ms &&
		now_ms() - ha->lease_renewed_ms > overdue_ms);
}

static void on_tick(struct loop_source *src, void *data)
{
	struct ha *ha = data;
	uint64_t every;

	(void)src;
	if (!ha->etcd)
		return;
	every = hurried(ha) ? TICK_FAST_MS : TICK_MS;
	loop_timer_arm(ha->tick, every, every);
	ha_fence_check(ha);
	ha_poll_now(ha);
}

void ha_poll_now(struct ha *ha)
{
	struct pg_report r;

	pgwatch_report(ha->pg, &r);
	snprintf(ha->optime_text, sizeof(ha->optime_text), "%s",
		 r.probed && r.in_recovery == PG_TRI_FALSE && r.flush_lsn ? r.flush_lsn : "");
	pg_report_clear(&r);
	lease_tick(ha);
	publish_tick(ha);
	read_tick(ha);
}

/* ---- public ---------------------------------------------------------------------- */

bool ha_enabled(const struct ha *ha)
{
	return ha && ha->enabled;
}

int ha_leader(const struct ha *ha)
{
	return ha && ha->enabled ? ha->applied_leader : -1;
}

bool ha_is_leader(const struct ha *ha)
{
	return ha_enabled(ha) && ha->leader_name[0] && strcmp(ha->leader_name, ha_self(ha)->name) == 0 &&
	       ha->leader_lease == ha->lease_id && ha_lease_valid(ha);
}

void ha_tunnel(struct ha *ha, bool fresh)
{
	if (!ha_enabled(ha) || !fresh || ha->etcd_added)
		return;
	if (ha_etcd_start(ha) == 0)
		ha->etcd_added = true;
}

int ha_new(struct loop *loop, struct child_set *children, const struct conf *conf, struct pgwatch *pg,
	   ha_leader_fn *on_leader, void *data, struct ha **out)
{
	struct ha *ha = xcalloc(1, sizeof(*ha));
	const struct conf_node *me = conf_self(conf);
	char url[64];
	int r;

	ha->loop = loop;
	ha->children = children;
	ha->conf = conf;
	ha->pg = pg;
	ha->on_leader = on_leader;
	ha->on_leader_data = data;
	ha->applied_leader = -1;
	ha->members = json_object();
	ha->history = json_array();
	ha->n_fenced_nodes = conf->n_nodes;
	ha->fenced_nodes = xcalloc(conf->n_nodes ? conf->n_nodes : 1, sizeof(*ha->fenced_nodes));
	snprintf(ha->state, sizeof(ha->state), "off");
	ha->enabled = conf_ha_on(conf) && me->kind == CONF_NODE_SPOKE && me->pg_role != CONF_PG_NONE;
	*out = ha;
	if (!ha->enabled)
		return 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", conf->ha.client_port);
	if ((r = etcd_new(loop, url, 2000, &ha->etcd)) < 0 ||
	    (r = loop_add_timer(loop, on_tick, ha, &ha->tick)) < 0) {
		*out = ha_free(ha);
		return r;
	}
	ha_set_state(ha, "starting", "waiting for the store (etcd) to answer");
	pgwatch_hold(pg, true, "waiting for the store (etcd) to name a leader");
	loop_timer_arm(ha->tick, TICK_MS, TICK_MS);
	return 0;
}

struct ha *ha_free(struct ha *ha)
{
	if (!ha)
		return NULL;
	loop_remove(ha->tick);
	etcd_free(ha->etcd);
	json_decref(ha->members);
	json_decref(ha->history);
	json_decref(ha->switchover);
	json_decref(ha->optime);
	free(ha->fenced_nodes);
	free(ha);
	return NULL;
}

void ha_set_conf(struct ha *ha, const struct conf *conf)
{
	if (!ha)
		return;
	ha->conf = conf;
	/* Nodes may have been added or removed: fencing is worked out again at the next read. */
	free(ha->fenced_nodes);
	ha->n_fenced_nodes = conf->n_nodes;
	ha->fenced_nodes = xcalloc(conf->n_nodes ? conf->n_nodes : 1, sizeof(*ha->fenced_nodes));
	if (ha->enabled && !conf_ha_on(conf))
		log_warnx("ha", "ha.mode changed to off; it takes effect at the next start");
}
