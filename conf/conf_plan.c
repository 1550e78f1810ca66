// SPDX-License-Identifier: MIT
/*
 * The node's plan as check-config prints it: what this node is, which
 * WireGuard peers it gets, its Postgres role, the ha group, and the ACL
 * flows that concern it. Only public keys are printed.
 */
#include "conf/conf_internal.h"
#include "lib/log.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>

static void print_flows(const struct conf *c, FILE *f)
{
	const struct conf_node *me = conf_self(c);
	bool any = false;

	if (!c->has_acl) {
		if (me->kind == CONF_NODE_HUB)
			fprintf(f, "  (no acl list: the hub forwards between all spokes)\n");
		else
			fprintf(f, "  (no acl list: spokes trust each other fully)\n");
		return;
	}
	for (size_t i = 0; i < c->n_flows; i++) {
		const struct conf_flow *fl = &c->flows[i];
		const char *dir;

		if (me->kind == CONF_NODE_HUB)
			dir = "fwd";
		else if (fl->to == c->self)
			dir = "in ";
		else if (fl->from == c->self)
			dir = "out";
		else
			continue;
		any = true;
		fprintf(f, "  %s %-12s -> %-12s %s/%u%s\n", dir, c->nodes[fl->from].name,
			c->nodes[fl->to].name, fl->proto == IPPROTO_TCP ? "tcp" : "udp", fl->port,
			fl->derived ? "  (derived: ha)" : "");
	}
	if (!any)
		fprintf(f, "  (no flow concerns this node: nothing from other spokes is accepted)\n");
}

static void print_peers(const struct conf *c, FILE *f)
{
	const struct conf_node *me = conf_self(c);
	char ip[16], net[16];

	conf_ip_str(c->cluster.network.addr, net);
	if (me->kind == CONF_NODE_SPOKE) {
		const struct conf_node *hub = conf_hub(c);

		fprintf(f, "  %-12s %s  endpoint %s:%u  allowed_ips %s/%u  keepalive %us\n",
			hub->name, hub->public_key_b64, hub->endpoint.host, hub->endpoint.port, net,
			c->cluster.network.prefix, c->cluster.keepalive);
		return;
	}
	for (size_t i = 1; i < c->n_nodes; i++)
		fprintf(f, "  %-12s %s  allowed_ips %s/32\n", c->nodes[i].name,
			c->nodes[i].public_key_b64, conf_ip_str(c->nodes[i].overlay_ip, ip));
}

static void print_postgres(const struct conf *c, FILE *f)
{
	const struct conf_node *me = conf_self(c);
	const struct conf_postgres *pg = &me->settings.postgres;
	char ip[16];

	fprintf(f, "  role %s", conf_pg_role_name(me->pg_role));
	if (me->pg_role == CONF_PG_NONE) {
		fprintf(f, " (no database on this node)\n");
		return;
	}
	fprintf(f, ", listen %s:%u only, data %s, run as %s\n", conf_ip_str(me->overlay_ip, ip),
		pg->port, pg->data_dir, pg->user);
	/* Deployment checks read this line: the container must be given that secret. */
	if (pg->password_env)
		fprintf(f, "  replication password from environment variable %s\n", pg->password_env);
	else
		fprintf(f, "  replication password from file %s\n", pg->password_file);
	if (me->pg_role == CONF_PG_REPLICA) {
		const struct conf_node *up = &c->nodes[me->upstream];

		fprintf(f, "  upstream %s (%s:%u) as %s\n", up->name, conf_ip_str(up->overlay_ip, ip),
			up->settings.postgres.port, pg->replication_user);
	}
	for (size_t i = 1; i < c->n_nodes; i++)
		if (c->nodes[i].upstream == c->self)
			fprintf(f, "  downstream %s (%s)\n", c->nodes[i].name,
				conf_ip_str(c->nodes[i].overlay_ip, ip));
}

/* The same on every node: each runs the HA loop, and the hub only watches. */
static void print_ha(const struct conf *c, FILE *f)
{
	const struct conf_ha *ha = &c->ha;
	size_t n = conf_ha_members(c, NULL, 0);
	const char *sep = "";
	char ip[16];

	if (!conf_ha_on(c)) {
		fprintf(f, "ha: off\n");
		return;
	}
	fprintf(f, "ha: %s, bootstrap primary %s (once the cluster runs, the leader lives in etcd)\n",
		conf_ha_mode_name(ha->mode), c->nodes[ha->bootstrap_primary].name);
	fprintf(f, "  candidates:");
	for (size_t i = 0; i < c->n_nodes; i++)
		if (conf_node_candidate(c, &c->nodes[i]))
			fprintf(f, " %s", c->nodes[i].name);
	fprintf(f, "\n");
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (!conf_ha_member(c, &c->nodes[i]) || c->nodes[i].failover)
			continue;
		fprintf(f, "%s%s", *sep ? sep : "  not candidates (failover = false): ", c->nodes[i].name);
		sep = ", ";
	}
	if (*sep)
		fprintf(f, "\n");
	fprintf(f, "  etcd members: %zu, a majority is %zu (elections survive losing %zu)\n", n,
		n / 2 + 1, n - (n / 2 + 1));
	for (size_t i = 0; i < c->n_nodes; i++)
		if (conf_ha_member(c, &c->nodes[i]))
			fprintf(f, "    %-12s peer http://%s:%u\n", c->nodes[i].name,
				conf_ip_str(c->nodes[i].overlay_ip, ip), ha->peer_port);
	fprintf(f, "  etcd client http://127.0.0.1:%u, binary %s, data %s\n", ha->client_port,
		ha->etcd_bin, ha->data_dir);
	fprintf(f, "  ttl %us, loop_wait %us, retry_timeout %us, maximum_lag_on_failover %" PRIu64 " bytes\n",
		ha->ttl_s, ha->loop_wait_s, ha->retry_timeout_s, ha->maximum_lag_on_failover);
}

void conf_print_plan(const struct conf *c, FILE *f)
{
	const struct conf_node *me = conf_self(c);
	const struct conf_settings *st = &me->settings;
	char ip[16], net[16], mtu[80];

	fprintf(f, "node %s (%s)\n", me->name, me->kind == CONF_NODE_HUB ? "hub" : "spoke");
	if (c->cluster.mtu)
		snprintf(mtu, sizeof(mtu), "%u", c->cluster.mtu);
	else
		snprintf(mtu, sizeof(mtu), "auto (the path's MTU to %s less 80)",
			 me->kind == CONF_NODE_HUB ? "the default route" : "the hub");
	fprintf(f, "overlay %s/%u on %s, mtu %s, network %s/%u\n", conf_ip_str(me->overlay_ip, ip),
		c->cluster.network.prefix, c->cluster.interface, mtu,
		conf_ip_str(c->cluster.network.addr, net), c->cluster.network.prefix);
	if (me->kind == CONF_NODE_HUB)
		fprintf(f, "listen udp/%u, forwarding between spokes only, no NAT\n", c->cluster.port);
	fprintf(f, "fresh handshake: at most %us old\n", c->cluster.fresh_handshake_s);
	fprintf(f, "public key %s\n", me->public_key_b64);
	if (st->keys.private_key_env)
		fprintf(f, "private key from environment variable %s\n", st->keys.private_key_env);
	else
		fprintf(f, "private key from file %s\n", st->keys.private_key_file);
	fprintf(f, "wg peers:\n");
	print_peers(c, f);
	if (me->kind == CONF_NODE_SPOKE) {
		fprintf(f, "postgres:\n");
		print_postgres(c, f);
		if (me->pg_role != CONF_PG_NONE) {
			const struct conf_backup *b = &st->backup;

			fprintf(f, "backup: %s %s into %s/%s, keep %u daily %u weekly %u monthly, alert after %us\n",
				conf_backup_method_name(b->method), b->schedule.text, b->dir, me->name,
				b->keep_daily, b->keep_weekly, b->keep_monthly, b->max_age_s);
			if (me->pg_role == CONF_PG_REPLICA)
				fprintf(f, "backup: none while this replica's data is over %us behind its upstream\n",
					b->max_replica_lag_s);
		}
	} else if (me->n_ssh_from) {
		fprintf(f, "ssh allowed from:");
		for (size_t i = 0; i < me->n_ssh_from; i++)
			fprintf(f, " %s/%u", conf_ip_str(me->ssh_from[i].addr, ip), me->ssh_from[i].prefix);
		fprintf(f, "\n");
	}
	print_ha(c, f);
	fprintf(f, "acl flows:\n");
	print_flows(c, f);
	fprintf(f, "status http://%s:%u/status, control socket %s, log level %s\n",
		st->status_listen.host, st->status_listen.port, st->control_socket,
		log_level_name(st->log_level));
	/* Deployment checks read this line: stop_grace_period and TimeoutStopSec must exceed it. */
	fprintf(f, "shutdown budget %us, then SIGKILL\n", st->supervision.shutdown_budget_ms / 1000);
}
