// SPDX-License-Identifier: MIT
/*
 * Requests and the status: switchover and failover are judged here on the
 * store's member records (what each node itself published under its
 * lease: a missing record means a node whose supervisor or etcd is gone),
 * then written as transactions that hold only if the store still looks as
 * it did when judged.
 */
#include "ha/ha_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

static uint64_t lsn_of(const json_t *o, const char *k)
{
	uint64_t v = 0;

	(void)pg_lsn_parse(ha_str(o, k), &v);
	return v;
}

/* A member's position: a primary's flush LSN, a replica's receive (else replay) LSN. */
static uint64_t member_lsn(const json_t *m)
{
	uint64_t rx = lsn_of(m, "receive_lsn"), replay = lsn_of(m, "replay_lsn");

	if (ha_str(m, "role") && strcmp(ha_str(m, "role"), "primary") == 0)
		return lsn_of(m, "flush_lsn");
	return rx > replay ? rx : replay;
}

size_t ha_judge(const struct ha *ha, const char *exclude, uint64_t ref_lsn, bool need_streaming,
		struct ha_candidate *out)
{
	size_t n = 0;

	for (size_t i = 0; i < ha->conf->n_nodes; i++) {
		const struct conf_node *node = &ha->conf->nodes[i];
		const json_t *m = json_object_get(ha->members, node->name);
		struct ha_candidate *c = &out[n];
		const char *role;

		if (!conf_node_candidate(ha->conf, node) || (exclude && strcmp(exclude, node->name) == 0))
			continue;
		n++;
		*c = (struct ha_candidate){ .name = node->name, .lag_bytes = NAN };
		if (!m) {
			snprintf(c->why, sizeof(c->why), "no member record in the store: its supervisor or etcd is not running");
			continue;
		}
		c->lsn = member_lsn(m);
		if (ref_lsn && c->lsn)
			c->lag_bytes = ref_lsn > c->lsn ? (double)(ref_lsn - c->lsn) : 0;
		role = ha_str(m, "role");
		if (!role || strcmp(role, "replica") != 0) {
			snprintf(c->why, sizeof(c->why), "postgres is %s", role ? role : ha_str(m, "state") ?
				 ha_str(m, "state") : "not answering");
			continue;
		}
		if (need_streaming && !json_is_true(json_object_get(m, "streaming"))) {
			snprintf(c->why, sizeof(c->why), "not streaming from the primary");
			continue;
		}
		if (!c->lsn) {
			snprintf(c->why, sizeof(c->why), "its WAL position is unknown");
			continue;
		}
		if (!isnan(c->lag_bytes) && c->lag_bytes > (double)ha->conf->ha.maximum_lag_on_failover) {
			snprintf(c->why, sizeof(c->why), "%.0f bytes behind the primary (maximum_lag_on_failover %" PRIu64 ")",
				 c->lag_bytes, ha->conf->ha.maximum_lag_on_failover);
			continue;
		}
		c->eligible = true;
	}
	return n;
}

size_t ha_candidates(const struct ha *ha, const char *exclude, uint64_t ref_lsn, struct ha_candidate *out)
{
	return ha_judge(ha, exclude, ref_lsn, true, out);
}

json_t *ha_candidates_json(const struct ha_candidate *c, size_t n)
{
	json_t *a = json_array();
	char lsn[32];

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", c[i].name,
						   "eligible", c[i].eligible,
						   "lsn", c[i].lsn ? json_string(pg_lsn_text(c[i].lsn, lsn, sizeof(lsn))) : json_null(),
						   "lag_bytes", isnan(c[i].lag_bytes) ? json_null() : json_integer((json_int_t)c[i].lag_bytes),
						   "why_not", c[i].eligible ? json_null() : json_string(c[i].why)));
	return a;
}

static int refuse(json_t *reply, int err, const char *fmt, ...) _printf_(3, 4);
static int refuse(json_t *reply, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(reply, "ok", json_false());
	json_object_set_new(reply, "error", json_string(msg));
	return err;
}

static int usable(const struct ha *ha, json_t *reply)
{
	if (!ha_enabled(ha))
		return refuse(reply, -ENOTSUP, "high availability is off on this node (ha.mode in the cluster file)");
	if (!ha->store_ok)
		return refuse(reply, -EAGAIN, "the store (etcd) does not answer: %s", ha->store_error);
	return 0;
}

static void request_done(void *data, const struct etcd_result *r)
{
	(void)data;
	if (r->err)
		log_warnx("ha", "writing the request failed error=%s", r->error);
	else if (!r->succeeded)
		log_warnx("ha", "request refused by the store: the leader changed or another request is pending");
}

int ha_switchover(struct ha *ha, const char *to, bool dry_run, json_t *reply)
{
	struct ha_candidate *cand;
	const struct ha_candidate *pick = NULL;
	const json_t *leader;
	char k_leader[128], k_sw[128];
	size_t n;
	int r;

	if ((r = usable(ha, reply)) < 0)
		return r;
	if (!ha->leader_name[0])
		return refuse(reply, -ENOENT, "no node holds the leader key: a switchover needs a primary (use failover)");
	if (ha->switchover)
		return refuse(reply, -EBUSY, "a switchover from %s to %s is in progress", ha_str(ha->switchover, "from"),
			      ha_str(ha->switchover, "to"));
	if (to && ha_node_index(ha, to) < 0)
		return refuse(reply, -EINVAL, "no node named %s in the cluster file", to);
	if (to && strcmp(to, ha->leader_name) == 0)
		return refuse(reply, -EINVAL, "%s is the primary already", to);
	leader = json_object_get(ha->members, ha->leader_name);
	cand = xcalloc(ha->conf->n_nodes, sizeof(*cand));
	n = ha_judge(ha, ha->leader_name, leader ? member_lsn(leader) : 0, true, cand);
	json_object_set_new(reply, "from", json_string(ha->leader_name));
	json_object_set_new(reply, "candidates", ha_candidates_json(cand, n));
	for (size_t i = 0; i < n; i++) {
		if (to ? strcmp(cand[i].name, to) == 0 : cand[i].eligible && (!pick || cand[i].lsn > pick->lsn))
			pick = &cand[i];
	}
	if (!pick) {
		free(cand);
		return refuse(reply, -ENOENT, to ? "%s is not a candidate (postgres spoke with failover on)" :
					       "no eligible candidate%s", to ? to : "");
	}
	if (!pick->eligible) {
		r = refuse(reply, -EPERM, "%s is not eligible: %s", pick->name, pick->why);
		free(cand);
		return r;
	}
	json_object_set_new(reply, "to", json_string(pick->name));
	json_object_set_new(reply, "ok", json_true());
	if (!dry_run) {
		_cleanup_free_ char *req = xasprintf("{\"from\":\"%s\",\"to\":\"%s\",\"requested_on\":\"%s\",\"at\":%lld}",
						     ha->leader_name, pick->name, ha_self(ha)->name, (long long)time(NULL));
		struct etcd_cmp cmp[2];
		struct etcd_op op;

		ha_key(ha, k_leader, sizeof(k_leader), "leader");
		ha_key(ha, k_sw, sizeof(k_sw), "switchover");
		cmp[0] = (struct etcd_cmp){ .key = k_leader, .target = ETCD_VALUE, .result = ETCD_EQUAL,
					    .value = ha->leader_name };
		cmp[1] = (struct etcd_cmp){ .key = k_sw, .target = ETCD_CREATE, .result = ETCD_EQUAL, .revision = 0 };
		op = (struct etcd_op){ .kind = ETCD_OP_PUT, .key = k_sw, .value = req };
		log_info("ha", "switchover requested from=%s to=%s", ha->leader_name, pick->name);
		if (etcd_txn(ha->etcd, cmp, 2, &op, 1, NULL, 0, request_done, NULL) < 0)
			r = refuse(reply, -EIO, "cannot send the request to the store");
	}
	free(cand);
	return r;
}

int ha_failover(struct ha *ha, const char *to, bool allow_data_loss, json_t *reply)
{
	struct ha_candidate *cand;
	const struct ha_candidate *pick = NULL, *best = NULL;
	const char *from = NULL;
	uint64_t ref = 0;
	size_t n;
	int r;

	if ((r = usable(ha, reply)) < 0)
		return r;
	if (ha->leader_name[0])
		return refuse(reply, -EBUSY, "%s holds the leader key and its lease lives: use switchover (a failover is "
				       "for a primary that is gone; its key expires %u s after its last renewal)",
			      ha->leader_name, ha->conf->ha.ttl_s);
	if (!to || ha_node_index(ha, to) < 0)
		return refuse(reply, -EINVAL, "no node named %s in the cluster file", to ? to : "(none)");
	if (ha->optime) {
		(void)pg_lsn_parse(ha_str(ha->optime, "flush_lsn"), &ref);
		from = ha_str(ha->optime, "node");
	}
	cand = xcalloc(ha->conf->n_nodes, sizeof(*cand));
	n = ha_judge(ha, NULL, ref, false, cand);
	json_object_set_new(reply, "candidates", ha_candidates_json(cand, n));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cand[i].name, to) == 0)
			pick = &cand[i];
		if (cand[i].lsn && (!best || cand[i].lsn > best->lsn))
			best = &cand[i];
	}
	if (!pick || (!pick->eligible && !(allow_data_loss && pick->lsn))) {
		r = refuse(reply, -EPERM, "%s cannot be promoted: %s", to, pick ? pick->why :
			   "it is not a candidate (postgres spoke with failover on)");
		free(cand);
		return r;
	}
	json_object_set_new(reply, "to", json_string(to));
	json_object_set_new(reply, "from", from ? json_string(from) : json_null());
	json_object_set_new(reply, "lost_bytes_bound", isnan(pick->lag_bytes) ? json_null() :
			    json_integer((json_int_t)pick->lag_bytes));
	if (ha->optime)
		json_object_set(reply, "last_primary_report", ha->optime);
	if (!allow_data_loss && ((best && best->lsn > pick->lsn) || !pick->eligible || isnan(pick->lag_bytes) ||
				 pick->lag_bytes > 0)) {
		r = refuse(reply, -EPERM, "%s may lose data: %s; add --allow-data-loss to go on",
			   to, best && best->lsn > pick->lsn ? "another candidate is further ahead" :
			   isnan(pick->lag_bytes) ? "the last primary position is unknown" :
			   "it is behind the last position the primary reported");
		free(cand);
		return r;
	}
	{
		const json_t *m = json_object_get(ha->members, to);
		json_int_t lease = json_integer_value(json_object_get(m, "lease"));
		char k_leader[128], k_history[128];
		_cleanup_free_ char *rec = xasprintf("{\"kind\":\"failover\",\"node\":\"%s\",\"from\":\"%s\",\"requested_on\":"
						     "\"%s\",\"at\":%lld,\"lost_bytes_bound\":%.0f}", to, from ? from : "",
						     ha_self(ha)->name, (long long)time(NULL),
						     isnan(pick->lag_bytes) ? -1.0 : pick->lag_bytes);
		struct etcd_cmp cmp;
		struct etcd_op ops[2];
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ha_key(ha, k_leader, sizeof(k_leader), "leader");
		ha_key(ha, k_history, sizeof(k_history), "history/%013lld",
		       (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		cmp = (struct etcd_cmp){ .key = k_leader, .target = ETCD_CREATE, .result = ETCD_EQUAL, .revision = 0 };
		/* Under the candidate's own lease: the key dies with it, as if it had taken it itself. */
		ops[0] = (struct etcd_op){ .kind = ETCD_OP_PUT, .key = k_leader, .value = to, .lease_id = lease };
		ops[1] = (struct etcd_op){ .kind = ETCD_OP_PUT, .key = k_history, .value = rec };
		log_warnx("ha", "failover requested to=%s from=%s lost_bytes_bound=%.0f", to, from ? from : "?",
			  pick->lag_bytes);
		if (etcd_txn(ha->etcd, &cmp, 1, ops, 2, NULL, 0, request_done, NULL) < 0)
			r = refuse(reply, -EIO, "cannot send the request to the store");
		else
			json_object_set_new(reply, "ok", json_true());
	}
	free(cand);
	return r;
}

/* The member records without their lease IDs: /status is public, the store is not. */
static json_t *public_members(const json_t *members)
{
	json_t *out = json_deep_copy(members), *m;
	const char *k;

	json_object_foreach(out, k, m)
		json_object_del(m, "lease");
	return out;
}

json_t *ha_status(const struct ha *ha)
{
	struct ha_candidate *cand;
	const json_t *leader;
	json_t *o, *hist;
	size_t n, nh;

	if (!ha_enabled(ha))
		return json_pack("{s:s}", "mode", "off");
	leader = ha->leader_name[0] ? json_object_get(ha->members, ha->leader_name) : NULL;
	cand = xcalloc(ha->conf->n_nodes, sizeof(*cand));
	n = ha_judge(ha, ha->leader_name[0] ? ha->leader_name : NULL, leader ? member_lsn(leader) : 0,
		  ha->leader_name[0] != '\0', cand);
	hist = json_array();
	nh = json_array_size(ha->history);
	for (size_t i = nh > 10 ? nh - 10 : 0; i < nh; i++)
		json_array_append(hist, json_array_get(ha->history, i));
	o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:b, s:o, s:{s:b, s:o}, s:o, s:o, s:o, s:o, s:I}",
		      "mode", conf_ha_mode_name(ha->conf->ha.mode), "state", ha->state, "reason", ha->why,
		      "leader", ha->leader_name[0] ? json_string(ha->leader_name) : json_null(),
		      "epoch", (json_int_t)ha->epoch, "is_leader", ha_is_leader(ha),
		      "lease_remaining_s", ha_lease_valid(ha) ?
			      json_real((double)(ha->lease_until_ms - now_ms()) / 1000) : json_null(),
		      "store", "reachable", ha->store_ok,
		      "error", ha->store_error[0] ? json_string(ha->store_error) : json_null(),
		      "members", public_members(ha->members),
		      "candidates", ha_candidates_json(cand, n),
		      "switchover", ha->switchover ? json_deep_copy(ha->switchover) : json_null(),
		      "history", hist, "leader_changes", (json_int_t)ha->leader_changes);
	json_object_set_new(o, "fences", json_integer((json_int_t)ha->fences));
	if (ha->optime)
		json_object_set_new(o, "last_primary_report", json_deep_copy(ha->optime));
	free(cand);
	return o;
}
