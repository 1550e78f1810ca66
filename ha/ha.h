/* SPDX-License-Identifier: MIT */
/*
 * High availability on a Postgres spoke: who is primary now lives in etcd
 * (run here as a supervised child, peers over the overlay, clients on
 * loopback), under a lease; this module keeps this node's lease, publishes
 * its member record, reads the leader, and turns the store's word into
 * roles: the daemon is told the leader (it hands every module a
 * configuration with that leader as primary, conf_with_leader()), and
 * Postgres is held stopped while no leader is known or while this node
 * hands the primary role over. Switchover and failover are requests
 * written to the store by transaction; the nodes concerned carry them out.
 * Nothing here blocks the loop: every store call is asynchronous.
 */
#ifndef SUP_HA_H
#define SUP_HA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "child/child.h"
#include "conf/conf.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "pgwatch/pgwatch.h"

#define HA_ETCD_CHILD_NAME "etcd"

struct ha;

/*
 * The leader or the fenced nodes changed: @leader is an index into
 * conf->nodes, or -1 (unknown); @fenced holds conf->n_nodes flags (borrowed
 * for the call): former primaries to keep off (conf_with_roles()).
 */
typedef void ha_leader_fn(void *data, int leader, const bool *fenced);

/**
 * ha_new() - high availability for this node (a no-op when ha.mode is off
 * or this node runs no Postgres).
 * @loop: the event loop.
 * @children: where etcd is supervised.
 * @conf: the cluster file's configuration (not a leader view); replace with ha_set_conf().
 * @pg: this node's Postgres (held until a leader is known).
 * @on_leader: called on every change of the leader.
 * @data: for @on_leader.
 * @out: receives the object.
 * Return: 0 or -errno.
 */
int ha_new(struct loop *loop, struct child_set *children, const struct conf *conf, struct pgwatch *pg,
	   ha_leader_fn *on_leader, void *data, struct ha **out) _must_check_;
struct ha *ha_free(struct ha *ha);
void ha_set_conf(struct ha *ha, const struct conf *conf);
/* ha_tunnel() - the hub tunnel is fresh: etcd's peer address (the overlay IP) exists. */
void ha_tunnel(struct ha *ha, bool fresh);
/* ha_enabled() - this node takes part (mode not off, a Postgres spoke). */
bool ha_enabled(const struct ha *ha);
/* ha_leader() - the leader's index in conf->nodes, or -1. */
int ha_leader(const struct ha *ha);
/* ha_is_leader() - this node holds the leader key under a lease it renewed in time. */
bool ha_is_leader(const struct ha *ha);

/**
 * ha_status() - mode, state, leader, epoch, lease, store, members with
 * their eligibility, the request in progress and the history, for `ctl
 * ha`, /status (public: no secrets are in the store) and /metrics.
 * @ha: the object (NULL: {"mode": "off"}).
 * Return: a new object (caller owns it).
 */
json_t *ha_status(const struct ha *ha);

/**
 * ha_switchover() - plan, or request, a switchover to @to (NULL: the most
 * advanced eligible candidate).
 * @ha: the object.
 * @to: the candidate's name, or NULL.
 * @dry_run: plan only.
 * @reply: receives {"ok", "from", "to", "candidates": [...], "error"?}.
 * The request is written by transaction (only while the leader is the
 * one planned against, and no other request is pending); the leader and
 * @to carry it out; `ctl switchover` waits for the outcome.
 * Return: 0 when planned/requested, -errno with "error" set otherwise.
 */
int ha_switchover(struct ha *ha, const char *to, bool dry_run, json_t *reply);

/**
 * ha_failover() - make @to the leader while no node holds the leader key.
 * @ha: the object.
 * @to: the candidate's name.
 * @allow_data_loss: go on when @to is behind the last known primary position
 *                   (or another candidate is ahead of it).
 * @reply: receives {"ok", "to", "lost_bytes_bound", "candidates", "error"?}.
 * Return: 0, or -errno with "error" set (-EBUSY while a leader's lease lives).
 */
int ha_failover(struct ha *ha, const char *to, bool allow_data_loss, json_t *reply);

/* ha_mode_text() etc. are in conf (conf_ha_mode_name). */

#endif
