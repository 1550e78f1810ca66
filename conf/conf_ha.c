// SPDX-License-Identifier: MIT
/*
 * The ha group against the nodes (issue 18). The file names the bootstrap
 * primary and which Postgres spokes may be promoted (failover); once the
 * cluster runs, the leader lives in etcd, whose members are the Postgres
 * spokes. Checked here: failover only where it means something, enough
 * candidates to fail over to, etcd ports that collide with nothing else.
 * Derived here, with an acl: the flows any leader needs. Any candidate may
 * become the primary, so every Postgres spoke must reach every candidate's
 * Postgres, and etcd's peers each other; the firewalls and pg_hba consume
 * conf.flows, so they open these with no change of their own.
 */
#include "conf/conf_internal.h"

#include <netinet/in.h>
#include <string.h>

void ha_set_defaults(struct conf_ha *ha)
{
	*ha = (struct conf_ha){
		.mode = CONF_HA_OFF,
		.bootstrap_primary = -1,
		/* Patroni's defaults, which keep its rule below. */
		.ttl_s = 30,
		.loop_wait_s = 10,
		.retry_timeout_s = 10,
		.maximum_lag_on_failover = 1048576, /* 1 MiB, Patroni's and Stolon's */
		.etcd_bin = "/usr/bin/etcd",
		.data_dir = "/var/lib/supervisor/etcd",
		.client_port = 2379, /* etcd's registered ports */
		.peer_port = 2380,
	};
}

/* Checks within the group, whatever the mode: a group kept with mode = "off" stays valid. */
void ha_finish(struct load_ctx *ctx, const config_setting_t *s, const char *path, void *target)
{
	const struct conf_ha *ha = &((struct raw_ha *)target)->ha;
	const config_setting_t *port;

	/*
	 * Patroni's rule: a leader that cannot renew its lease retries for
	 * retry_timeout, twice, after at most one loop_wait, and must have
	 * given up (fenced itself) before the lease expires for the others.
	 */
	if ((uint64_t)ha->loop_wait_s + 2 * (uint64_t)ha->retry_timeout_s > ha->ttl_s)
		diag_at(ctx, s,
			"%s: loop_wait + 2 * retry_timeout must be at most ttl, and %u + 2 * %u = %u s is more than %u s (hint: Patroni's rule: a leader that cannot renew its lease gives up before it expires; e.g. ttl = 30; loop_wait = 10; retry_timeout = 10;)",
			path, ha->loop_wait_s, ha->retry_timeout_s,
			ha->loop_wait_s + 2 * ha->retry_timeout_s, ha->ttl_s);
	if (ha->client_port == ha->peer_port) {
		/* At the key written: the defaults differ, so at least one is. */
		const char *key = "peer_port", *other = "client_port";

		port = config_setting_get_member(s, key);
		if (!port) {
			key = "client_port";
			other = "peer_port";
			port = config_setting_get_member(s, key);
		}
		diag_at(ctx, port ? port : s,
			"%s.%s: %u is also %s.%s (hint: etcd's usual ports are 2379 for clients and 2380 for peers)",
			path, key, ha->peer_port, path, other);
	}
}

static const char *label(const struct raw_node *rn)
{
	return rn->node.name ? rn->node.name : rn->path;
}

/* Candidates may be promoted: Postgres spokes without failover = false. */
static bool raw_candidate(const struct raw_node *rn)
{
	return rn->node.kind == CONF_NODE_SPOKE && rn->node.pg_role != CONF_PG_NONE &&
	       rn->node.failover;
}

/* One etcd port against the ports of everything else on the Postgres spokes. */
static void check_port(struct load_ctx *ctx, const char *key, uint16_t port, int line)
{
	const char *hint = "(hint: etcd's usual ports are 2379 for clients and 2380 for peers)";
	bool pg = false, status = false;

	if (!line)
		line = ctx->ha.ha.line; /* the default port: the group is what to change */
	if (port == ctx->conf->cluster.port)
		diag_add(ctx, NULL, line, "ha.%s: %u is also cluster.port, WireGuard's %s", key, port,
			 hint);
	/* Once per kind: a shared default would otherwise repeat on every spoke. */
	for (size_t i = 1; i < ctx->n_nodes; i++) {
		const struct raw_node *rn = &ctx->nodes[i];
		const struct conf_settings *st = &rn->node.settings;

		if (rn->node.pg_role == CONF_PG_NONE)
			continue; /* etcd runs on the Postgres spokes only */
		if (!pg && st->postgres.port == port) {
			pg = true;
			diag_add(ctx, NULL, line, "ha.%s: %u is also the Postgres port of %s %s", key,
				 port, label(rn), hint);
		}
		if (!status && st->status_listen.port == port) {
			status = true;
			diag_add(ctx, NULL, line, "ha.%s: %u is also the status port of %s (status.listen) %s",
				 key, port, label(rn), hint);
		}
	}
}

void check_ha(struct load_ctx *ctx)
{
	struct raw_ha *rh = &ctx->ha;
	size_t n_cand = 0;
	char cands[512] = "";
	int primary = -1;

	for (size_t i = 1; i < ctx->n_nodes; i++) {
		struct raw_node *rn = &ctx->nodes[i];

		if (rn->node.pg_role == CONF_PG_NONE) {
			if (rn->failover_line)
				diag_add(ctx, NULL, rn->failover_line,
					 "%s.failover: %s runs no postgres, so it has nothing to take over (hint: remove failover here, or give %s postgres = \"replica\")",
					 rn->path, label(rn), label(rn));
			rn->node.failover = false;
		} else if (!rn->failover_line) {
			rn->node.failover = true;
		}
		if (rn->node.pg_role == CONF_PG_PRIMARY && primary < 0)
			primary = (int)i;
		if (raw_candidate(rn)) {
			n_cand++;
			snprintf(cands + strlen(cands), sizeof(cands) - strlen(cands), "%s%s",
				 cands[0] ? ", " : "", label(rn));
		}
	}
	if (rh->ha.mode == CONF_HA_OFF) {
		ctx->conf->ha = rh->ha;
		return;
	}

	/* No primary at all is already reported by check_topology(). */
	if (primary >= 0 && !ctx->nodes[primary].node.failover)
		diag_add(ctx, NULL, ctx->nodes[primary].failover_line,
			 "%s.failover: %s is the bootstrap primary (postgres = \"primary\"), so it must be a failover candidate (hint: remove failover = false here, or make a candidate the primary)",
			 ctx->nodes[primary].path, label(&ctx->nodes[primary]));
	if (n_cand < 2)
		diag_add(ctx, NULL, rh->mode_line ? rh->mode_line : rh->ha.line,
			 "ha.mode: \"%s\" needs at least 2 failover candidates (Postgres spokes without failover = false), and there %s %zu%s%s (hint: set failover = true on a replica, or use mode = \"off\")",
			 conf_ha_mode_name(rh->ha.mode), n_cand == 1 ? "is" : "are", n_cand,
			 n_cand ? ": " : "", cands);
	check_port(ctx, "client_port", rh->ha.client_port, rh->client_port_line);
	check_port(ctx, "peer_port", rh->ha.peer_port, rh->peer_port_line);
	rh->ha.bootstrap_primary = primary;
	ctx->conf->ha = rh->ha;
}

/* Without an acl spokes trust each other fully: there is nothing to open. */
static bool derives_flows(const struct load_ctx *ctx)
{
	return ctx->ha.ha.mode != CONF_HA_OFF && ctx->conf->has_acl;
}

size_t ha_flows_max(const struct load_ctx *ctx)
{
	size_t n_pg = 0;

	if (!derives_flows(ctx))
		return 0;
	for (size_t i = 1; i < ctx->n_nodes; i++)
		if (ctx->nodes[i].node.pg_role != CONF_PG_NONE)
			n_pg++;
	return 2 * n_pg * n_pg; /* Postgres and etcd peer, every ordered pair */
}

void ha_add_flows(struct load_ctx *ctx, struct conf_flow *flows, size_t *n)
{
	int line = ctx->ha.ha.line;

	if (!derives_flows(ctx))
		return;
	for (size_t i = 1; i < ctx->n_nodes; i++) {
		if (ctx->nodes[i].node.pg_role == CONF_PG_NONE)
			continue;
		for (size_t j = 1; j < ctx->n_nodes; j++) {
			const struct raw_node *to = &ctx->nodes[j];

			if (j == i || to->node.pg_role == CONF_PG_NONE)
				continue;
			/* Any replica must follow whichever candidate is promoted. */
			if (raw_candidate(to))
				flows[(*n)++] = (struct conf_flow){ (int)i, (int)j, IPPROTO_TCP,
					to->node.settings.postgres.port, line, true };
			flows[(*n)++] = (struct conf_flow){ (int)i, (int)j, IPPROTO_TCP,
							    ctx->ha.ha.peer_port, line, true };
		}
	}
}

/* ---- public helpers ---------------------------------------------------- */

const char *conf_ha_mode_name(enum conf_ha_mode mode)
{
	switch (mode) {
	case CONF_HA_OFF: return "off";
	case CONF_HA_MANUAL: return "manual";
	case CONF_HA_AUTOMATIC: return "automatic";
	}
	return "?";
}

bool conf_ha_member(const struct conf *c, const struct conf_node *n)
{
	return conf_ha_on(c) && n->kind == CONF_NODE_SPOKE && n->pg_role != CONF_PG_NONE;
}

bool conf_node_candidate(const struct conf *c, const struct conf_node *n)
{
	return conf_ha_member(c, n) && n->failover;
}

size_t conf_ha_members(const struct conf *c, const struct conf_node **out, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n_nodes; i++) {
		if (!conf_ha_member(c, &c->nodes[i]))
			continue;
		if (k < max)
			out[k] = &c->nodes[i];
		k++;
	}
	return k;
}

void ha_warnings(const struct conf *c, struct conf_diag *out)
{
	const struct conf_node *m[2];
	size_t n = conf_ha_members(c, m, ARRAY_SIZE(m));

	if (!conf_ha_on(c) || n >= 3)
		return;
	diag_push(out, "%s:%d: ha: only %zu etcd members (%s%s%s): etcd needs a majority, so losing %s stops elections and failovers (hint: a third Postgres spoke, even one with failover = false, keeps a majority when one is lost)",
		  c->path, c->ha.line, n, n ? m[0]->name : "", n > 1 ? ", " : "",
		  n > 1 ? m[1]->name : "", n > 1 ? "either" : "it");
}
