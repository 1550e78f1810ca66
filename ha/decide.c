// SPDX-License-Identifier: MIT
/*
 * What a node does after each read of the store (see ha.c for the rules).
 * The epoch is the leader key's mod_revision: it changes whenever the key
 * is (re)written by a transaction that made a node leader, and the
 * history record written in the same transaction has that revision too.
 */
#include "ha/ha_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#define SWITCHOVER_TIMEOUT_MS 60000

static const char *last_leader(const struct ha *ha)
{
	size_t n = json_array_size(ha->history);

	return n ? ha_str(json_array_get(ha->history, n - 1), "node") : NULL;
}

/* This node's received position as a replica (receive, else replay LSN), 0 when unknown. */
static uint64_t my_received_lsn(const struct ha *ha)
{
	struct pg_report r;
	uint64_t lsn = 0, replay = 0;

	pgwatch_report(ha->pg, &r);
	if (r.probed && r.in_recovery == PG_TRI_TRUE) {
		(void)pg_lsn_parse(r.receive_lsn, &lsn);
		(void)pg_lsn_parse(r.replay_lsn, &replay);
		if (replay > lsn)
			lsn = replay;
	}
	pg_report_clear(&r);
	return lsn;
}

static void txn_done(void *data, const struct etcd_result *r)
{
	struct ha *ha = data;

	ha->txn_inflight = false;
	if (r->err)
		log_warnx("ha", "store transaction failed error=%s", r->error);
	else if (!r->succeeded)
		log_info("ha", "store transaction lost a race: someone changed the key first");
	else
		ha_poll_now(ha); /* act on what it changed without waiting for the next tick */
}

/*
 * Take the leader key: only if nobody holds it (@from NULL), or only if
 * @from still holds it and the switchover request is the one read (@from set).
 */
static void take_leader(struct ha *ha, const char *kind, const char *from, const char *was)
{
	const char *me = ha_self(ha)->name;
	char k_leader[128], k_history[128], k_sw[128];
	_cleanup_free_ char *record = NULL;
	json_t *rec;
	struct etcd_cmp cmp[2];
	struct etcd_op ops[3];
	size_t n_cmp = 0, n_ops = 0;

	if (ha->txn_inflight || !ha_lease_valid(ha))
		return;
	ha_key(ha, k_leader, sizeof(k_leader), "leader");
	ha_key(ha, k_sw, sizeof(k_sw), "switchover");
	ha_key(ha, k_history, sizeof(k_history), "history/%013" PRId64, ha_wall_ms());
	if (from) {
		cmp[n_cmp++] = (struct etcd_cmp){ .key = k_leader, .target = ETCD_VALUE, .result = ETCD_EQUAL,
						  .value = from };
		cmp[n_cmp++] = (struct etcd_cmp){ .key = k_sw, .target = ETCD_MOD, .result = ETCD_EQUAL,
						  .revision = ha->switchover_mod };
		ops[n_ops++] = (struct etcd_op){ .kind = ETCD_OP_DELETE, .key = k_sw };
	} else {
		cmp[n_cmp++] = (struct etcd_cmp){ .key = k_leader, .target = ETCD_CREATE, .result = ETCD_EQUAL,
						  .revision = 0 };
	}
	ops[n_ops++] = (struct etcd_op){ .kind = ETCD_OP_PUT, .key = k_leader, .value = me,
					 .lease_id = ha->lease_id };
	if (kind) {
		rec = json_pack("{s:s, s:s, s:I}", "kind", kind, "node", me, "at", (json_int_t)(ha_wall_ms() / 1000));
		if (from || was)
			json_object_set_new(rec, "from", json_string(from ? from : was));
		if (ha->switchover && ha_str(ha->switchover, "requested_on"))
			json_object_set(rec, "requested_on", json_object_get(ha->switchover, "requested_on"));
		if (from && ha->switchover_lsn_text[0])
			json_object_set_new(rec, "lsn", json_string(ha->switchover_lsn_text));
		record = json_dumps(rec, JSON_COMPACT);
		json_decref(rec);
		ops[n_ops++] = (struct etcd_op){ .kind = ETCD_OP_PUT, .key = k_history, .value = record };
	}
	log_info("ha", "taking the leader key kind=%s from=%s", kind ? kind : "re-acquire", from ? from : "none");
	if (etcd_txn(ha->etcd, cmp, n_cmp, ops, n_ops, NULL, 0, txn_done, ha) == 0)
		ha->txn_inflight = true;
}

static void drop_switchover(struct ha *ha, const char *why)
{
	char k_sw[128];
	struct etcd_cmp cmp;
	struct etcd_op op;

	if (ha->txn_inflight)
		return;
	ha_key(ha, k_sw, sizeof(k_sw), "switchover");
	cmp = (struct etcd_cmp){ .key = k_sw, .target = ETCD_MOD, .result = ETCD_EQUAL,
				 .revision = ha->switchover_mod };
	op = (struct etcd_op){ .kind = ETCD_OP_DELETE, .key = k_sw };
	log_warnx("ha", "dropping the switchover request reason=\"%s\"", why);
	if (etcd_txn(ha->etcd, &cmp, 1, &op, 1, NULL, 0, txn_done, ha) == 0)
		ha->txn_inflight = true;
}

/* The leader hands over: stop, publish the shutdown checkpoint, wait; or take the role back. */
static void demote_step(struct ha *ha, const char *to)
{
	struct pg_control ctl;
	char lsn[32];

	if (!ha->demote_started_ms) {
		ha->demote_started_ms = now_ms();
		ha->stopped_lsn = 0;
		ha->stopped_lsn_text[0] = '\0';
		log_info("ha", "switchover: handing the primary role to %s; stopping postgres", to);
		pgwatch_hold(ha->pg, true, "switchover: stopping (checkpoint, fast shutdown) to hand over");
	}
	if (now_ms() - ha->demote_started_ms > SWITCHOVER_TIMEOUT_MS) {
		/* Never leave the cluster without a primary (repmgr#503): this node still holds the key. */
		drop_switchover(ha, "the candidate did not take over within 60 s; this node stays the primary");
		return;
	}
	if (!ha->stopped_lsn && pgwatch_stopped(ha->pg) &&
	    pg_control_read(conf_self(ha->conf)->settings.postgres.data_dir, &ctl) == 0) {
		ha->stopped_lsn = ctl.checkpoint_lsn;
		pg_lsn_text(ctl.checkpoint_lsn, ha->stopped_lsn_text, sizeof(ha->stopped_lsn_text));
		ha_poll_now(ha); /* publish the checkpoint at once: the primary is down until it is taken */
		log_info("ha", "switchover: postgres stopped cleanly=%s shutdown_checkpoint=%s",
			 ctl.state == PG_DB_SHUTDOWNED ? "yes" : "no", pg_lsn_text(ctl.checkpoint_lsn, lsn, sizeof(lsn)));
	}
	ha_set_state(ha, "demoting", "switchover to %s: %s", to,
		     ha->stopped_lsn ? "stopped; waiting for it to take the leader key" : "stopping postgres");
}

/* The candidate: take the key once everything up to the old primary's shutdown checkpoint is here. */
static void promote_step(struct ha *ha, const char *from)
{
	const char *stopped = ha_str(json_object_get(ha->members, from), "stopped_lsn");
	uint64_t want = 0, have = my_received_lsn(ha);
	char h[32];

	if (!stopped || pg_lsn_parse(stopped, &want) < 0) {
		ha_set_state(ha, "promoting", "switchover from %s: waiting for it to stop", from);
		return;
	}
	/* Past the checkpoint record's start: the walsender waited for our flush of all of it. */
	if (have <= want) {
		ha_set_state(ha, "promoting", "switchover from %s: waiting to receive its shutdown checkpoint %s (have %s)",
			     from, stopped, pg_lsn_text(have, h, sizeof(h)));
		return;
	}
	snprintf(ha->switchover_lsn_text, sizeof(ha->switchover_lsn_text), "%s", stopped);
	ha_set_state(ha, "promoting", "switchover from %s: received its shutdown checkpoint %s; taking the key",
		     from, stopped);
	take_leader(ha, "switchover", from, NULL);
}

/* A pending request: true when it decided this round (nothing else to do). */
static bool switchover_step(struct ha *ha)
{
	const char *me = ha_self(ha)->name;
	const char *from = ha_str(ha->switchover, "from"), *to = ha_str(ha->switchover, "to");

	if (!from || !to)
		return false;
	if (strcmp(ha->leader_name, from) != 0) {
		/* Done or stale: the leader named in it is gone; the leader clears it. */
		if (strcmp(ha->leader_name, me) == 0)
			drop_switchover(ha, "its leader no longer holds the key");
		return false;
	}
	if (strcmp(from, me) == 0) {
		demote_step(ha, to);
		return true;
	}
	if (strcmp(to, me) == 0) {
		promote_step(ha, from);
		return true;
	}
	return false;
}

/*
 * Automatic mode, no leader (its lease expired: it fenced itself by now):
 * the most advanced eligible candidate takes the key, ties to the lowest
 * name; only one transaction can create it. Nobody qualifies: say why.
 */
static bool race(struct ha *ha, const char *last)
{
	const char *me = ha_self(ha)->name;
	struct ha_candidate *cand = xcalloc(ha->conf->n_nodes, sizeof(*cand));
	const struct ha_candidate *best = NULL, *mine = NULL;
	uint64_t ref = 0;
	size_t n;

	if (ha->optime)
		(void)pg_lsn_parse(json_string_value(json_object_get(ha->optime, "flush_lsn")), &ref);
	n = ha_judge(ha, last, ref, false, cand);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cand[i].name, me) == 0)
			mine = &cand[i];
		if (cand[i].eligible && (!best || cand[i].lsn > best->lsn))
			best = &cand[i];
	}
	if (!best) {
		ha_set_state(ha, "leaderless", "automatic failover blocked: no eligible candidate (%s)",
			     mine ? mine->why : "this node is not a candidate");
	} else if (best == mine) {
		ha_set_state(ha, "promoting", "automatic failover: %s is gone and this node is the most advanced "
			     "candidate", last);
		take_leader(ha, "failover", NULL, last);
	} else {
		ha_set_state(ha, "leaderless", "automatic failover: %s is the most advanced candidate", best->name);
	}
	free(cand);
	return best != NULL;
}

static void leaderless(struct ha *ha)
{
	const struct conf_node *me = ha_self(ha);
	const char *last = last_leader(ha);
	int li = ha_node_index(ha, last);

	if (!last && ha->conf->ha.bootstrap_primary >= 0 &&
	    &ha->conf->nodes[ha->conf->ha.bootstrap_primary] == me) {
		ha_set_state(ha, "bootstrapping", "empty store: this node is the bootstrap primary");
		take_leader(ha, "bootstrap", NULL, NULL);
		return;
	}
	if (last && strcmp(last, me->name) == 0) {
		/* The last leader in the history, back (a restart): nobody took over meanwhile. */
		ha_set_state(ha, "leaderless", "this node was the last leader; taking the key back");
		take_leader(ha, NULL, NULL, NULL);
		return;
	}
	if (li >= 0) {
		/* Keep following the last leader: Postgres runs and reports its position for a failover. */
		ha_follow(ha, li);
	}
	if (ha->conf->ha.mode == CONF_HA_AUTOMATIC && last && race(ha, last))
		return;
	if (last)
		ha_set_state(ha, "leaderless", "no node holds the leader key (the last leader was %s); when it is "
			     "gone for good: supervisor ctl failover --to NODE", last);
	else
		ha_set_state(ha, "leaderless", "no node holds the leader key; waiting for the bootstrap primary");
}

/*
 * When this leader last knew its lease renewed by a store with a majority:
 * the older of its last renewal and its last linearizable read. etcd 3.4's
 * raft leader renews leases on its own, without its followers, until it
 * steps down (election timeout): cut off, it would otherwise count itself
 * renewed for seconds more while the others elect a new raft leader
 * (etcd#15247).
 */
static uint64_t renewed_ms(const struct ha *ha)
{
	return ha->lease_renewed_ms < ha->store_read_sent_ms ? ha->lease_renewed_ms : ha->store_read_sent_ms;
}

static void decide(struct ha *ha);
static void update_fenced(struct ha *ha);

void ha_decide(struct ha *ha)
{
	decide(ha);
	if (ha->store_ok || ha->fenced)
		update_fenced(ha);
}

static void decide(struct ha *ha)
{
	const char *me = ha_self(ha)->name;
	int li;

	if (!ha->store_ok) {
		/* Manual mode: roles stay as they are; nobody can change them without the store either. */
		char state[sizeof(ha->state)];

		snprintf(state, sizeof(state), "%s", ha->applied_leader < 0 ? "starting" : ha->state);
		ha_set_state(ha, state, "the store does not answer (%s); roles unchanged", ha->store_error);
		return;
	}
	if (ha->leader_name[0] && strcmp(ha->leader_name, me) != 0) {
		ha->demote_started_ms = 0;
		ha->stopped_lsn = 0;
		ha->stopped_lsn_text[0] = '\0';
	}
	if (ha->switchover && switchover_step(ha))
		return;
	if (!ha->switchover && ha->demote_started_ms && strcmp(ha->leader_name, me) == 0) {
		/* The request went away while this leader was handing over: stay the primary. */
		log_warnx("ha", "switchover aborted: this node stays the primary and starts postgres again");
		ha->demote_started_ms = 0;
		ha->stopped_lsn = 0;
		ha->stopped_lsn_text[0] = '\0';
	}
	if (!ha->leader_name[0]) {
		leaderless(ha);
		return;
	}
	li = ha_node_index(ha, ha->leader_name);
	if (li < 0 || !conf_ha_member(ha->conf, &ha->conf->nodes[li])) {
		/* A reload removed it, or took its Postgres away: following it would leave no primary. */
		ha_set_state(ha, "leaderless", "the leader key names %s, which is not a Postgres spoke in the cluster file",
			     ha->leader_name);
		return;
	}
	if (ha->fenced && (li != ha->conf->self || (ha_lease_valid(ha) && renewed_ms(ha) > ha->fenced_ms))) {
		/*
		 * Still the leader, with a renewal and a read sent after the fence
		 * answered (a readable store alone proves nothing: the next fence
		 * check would stop Postgres again at once): back to work. Another
		 * node: it follows it (pg_rewind first).
		 */
		log_info("ha", "unfencing leader=%s", ha->leader_name);
		ha->fenced = false;
	}
	if (ha->fenced)
		return;
	ha_follow(ha, li);
	if (li == ha->conf->self)
		ha_set_state(ha, "leader", "holds the leader key (epoch %" PRId64 ")", ha->epoch);
	else
		ha_set_state(ha, "follower", "following %s (epoch %" PRId64 ")", ha->leader_name, ha->epoch);
}

/*
 * Who is kept off: this node while it fenced itself; another node that
 * runs as a primary without the key (a zombie), or the primary a failover
 * replaced, until its own record says it runs as a replica (it rejoined).
 */
static void update_fenced(struct ha *ha)
{
	size_t nh = json_array_size(ha->history);
	const json_t *last = nh ? json_array_get(ha->history, nh - 1) : NULL;
	const char *kind = last ? ha_str(last, "kind") : NULL;
	const char *replaced = kind && !strcmp(kind, "failover") ? ha_str(last, "from") : NULL;
	bool *f = xcalloc(ha->n_fenced_nodes ? ha->n_fenced_nodes : 1, sizeof(*f));

	/* (n_fenced_nodes is conf->n_nodes: ha_set_conf() sizes them together) */
	for (size_t i = 0; i < ha->n_fenced_nodes; i++) {
		const struct conf_node *n = &ha->conf->nodes[i];
		const char *role = ha_str(json_object_get(ha->members, n->name), "role");

		if (!conf_ha_member(ha->conf, n))
			continue;
		if ((int)i == ha->conf->self)
			f[i] = ha->fenced;
		else if (role && !strcmp(role, "primary") && ha->leader_name[0] && strcmp(n->name, ha->leader_name))
			f[i] = true;
		else if (replaced && !strcmp(n->name, replaced) && !(role && !strcmp(role, "replica")))
			f[i] = true;
	}
	ha_set_fenced(ha, f);
	free(f);
}

void ha_fence_check(struct ha *ha)
{
	uint64_t now = now_ms();
	uint64_t renewed = renewed_ms(ha);
	/*
	 * Patroni's rule: a leader that could not renew for loop_wait +
	 * retry_timeout stops writing; the file guarantees loop_wait +
	 * 2 x retry_timeout <= ttl, so that is at least retry_timeout before
	 * the store can let the key expire and another node take it.
	 */
	uint64_t budget_ms = ((uint64_t)ha->conf->ha.loop_wait_s + ha->conf->ha.retry_timeout_s) * 1000;

	if (ha->conf->ha.mode != CONF_HA_AUTOMATIC || ha->applied_leader != ha->conf->self || ha->fenced ||
	    !renewed || now < renewed + budget_ms)
		return;
	ha->fenced = true;
	ha->fenced_ms = now;
	ha->fences++;
	log_warnx("ha", "fencing: the lease was last renewed %.1f s ago (ttl %u s); stopping postgres before "
		  "another node may take the key", (double)(now - renewed) / 1000, ha->conf->ha.ttl_s);
	update_fenced(ha); /* the port closes first, then Postgres stops */
	pgwatch_fence(ha->pg, "fenced: this primary could not renew its lease; no writes until it can");
	ha_set_state(ha, "fenced", "could not renew the lease for %.1f s: postgres stopped until the store answers",
		     (double)(now - renewed) / 1000);
}
