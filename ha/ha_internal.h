/* SPDX-License-Identifier: MIT */
/* Private to ha/: the HA loop (ha.c), its decisions (decide.c), etcd as a child (store.c), requests (ops.c). */
#ifndef SUP_HA_INTERNAL_H
#define SUP_HA_INTERNAL_H

#include <math.h>
#include <stdarg.h>

#include "ha/etcd.h"
#include "ha/ha.h"

/* Every key lives under this prefix; the store holds state, never configuration. */
#define HA_PREFIX "/supervisor/"

struct ha {
	struct loop *loop;
	struct child_set *children;
	const struct conf *conf;          /* the cluster file's, not a leader view */
	struct pgwatch *pg;
	ha_leader_fn *on_leader;
	void *on_leader_data;
	bool enabled;
	bool etcd_added;
	struct etcd *etcd;
	struct loop_source *tick;
	char state[32];                   /* "starting", "leader", "follower", "leaderless", "demoting", ... */
	char why[300];
	/* this node's lease (monotonic ms) */
	int64_t lease_id;
	uint64_t lease_until_ms, lease_renewed_ms;
	bool lease_inflight, put_inflight, read_inflight, optime_inflight, txn_inflight;
	/* the store, as last read */
	bool store_ok;
	char store_error[256];
	uint64_t store_ok_ms;
	uint64_t store_read_sent_ms;      /* when the last linearizable read that answered left */
	char leader_name[CONF_NAME_MAX + 1];
	int64_t epoch, leader_mod, leader_lease;
	json_t *members;                  /* name -> member record */
	json_t *history;                  /* records, oldest first, each with its "epoch" */
	json_t *switchover;               /* the pending request, or NULL */
	int64_t switchover_mod;
	json_t *optime;                   /* the last leader position: {node, flush_lsn, at} */
	char optime_text[32];             /* this node's flush LSN while primary, "" otherwise */
	/* applied */
	int applied_leader;
	bool *fenced_nodes;               /* conf->n_nodes flags, as last applied */
	size_t n_fenced_nodes;
	uint64_t leader_changes;
	uint64_t failovers, switchovers;  /* carried out with this node taking part */
	/* a switchover this leader is handing over */
	uint64_t demote_started_ms;
	uint64_t stopped_lsn;             /* its shutdown checkpoint, once stopped; 0 before */
	char stopped_lsn_text[32];
	char switchover_lsn_text[32];     /* the candidate: the checkpoint it received */
	bool fenced;                      /* automatic: Postgres stopped, the lease could not be renewed */
	uint64_t fences;                  /* times it fenced itself */
	uint64_t fenced_ms;               /* monotonic ms of the last fence */
};

/* ha_wall_ms() - CLOCK_REALTIME in ms, for records people read (never for leases). */
int64_t ha_wall_ms(void);
/* ha_str() - @o[@key] as a string, or NULL. */
const char *ha_str(const json_t *o, const char *key);
void ha_key(const struct ha *ha, char *buf, size_t size, const char *fmt, ...) _printf_(4, 5);
void ha_set_state(struct ha *ha, const char *state, const char *fmt, ...) _printf_(3, 4);
const struct conf_node *ha_self(const struct ha *ha);
int ha_node_index(const struct ha *ha, const char *name);
bool ha_lease_valid(const struct ha *ha);
void ha_optime_done(void *data, const struct etcd_result *r);
/* ha_poll_now() - publish and read now (after a change this node made). */
void ha_poll_now(struct ha *ha);

/* decide.c: after each read of the store. */
void ha_decide(struct ha *ha);
/* ha_fence_check() - automatic mode, every tick: a leader that cannot renew stops writing in time. */
void ha_fence_check(struct ha *ha);
/* apply the leader now in the store (index or -1) to this node. */
void ha_follow(struct ha *ha, int leader);
/* ha_set_fenced() - apply these fenced nodes (n_nodes flags) if they changed. */
void ha_set_fenced(struct ha *ha, const bool *fenced);

/* store.c: etcd as a supervised child. */
int ha_etcd_start(struct ha *ha);
/**
 * ha_etcd_argv() - etcd's command line for this node (pure, unit-tested).
 * @conf: the configuration.
 * @buf: storage for the strings (at least 4 KiB).
 * @size: its size.
 * @argv: receives up to 32 pointers into @buf, NULL-terminated.
 * Return: 0, or -ENOSPC.
 */
int ha_etcd_argv(const struct conf *conf, char *buf, size_t size, const char *argv[32]);

/* ops.c: members as candidates. */
struct ha_candidate {
	const char *name;
	bool eligible;
	char why[160];             /* why not, when not */
	uint64_t lsn;              /* receive (replica) or flush (primary) LSN; 0: unknown */
	double lag_bytes;          /* behind the reference position; NAN: unknown */
};
/**
 * ha_candidates() - every candidate but @exclude, judged against @ref_lsn.
 * @ha: the object.
 * @exclude: a node not to list (the current leader), or NULL.
 * @ref_lsn: the primary's position (0: unknown, lags unknown).
 * @out: at least conf->n_nodes entries.
 * Return: the count.
 */
size_t ha_candidates(const struct ha *ha, const char *exclude, uint64_t ref_lsn, struct ha_candidate *out);
/* ha_judge() - as ha_candidates(); @need_streaming false when the primary is gone (failover). */
size_t ha_judge(const struct ha *ha, const char *exclude, uint64_t ref_lsn, bool need_streaming,
		struct ha_candidate *out);
json_t *ha_candidates_json(const struct ha_candidate *c, size_t n);

#endif
