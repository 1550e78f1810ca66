// SPDX-License-Identifier: MIT
/*
 * Checks across values: unique names, addresses and keys, addresses inside
 * the overlay network, the replication topology (exactly one primary, every
 * replica's upstream chain ending at it), ACL names and, in conf_ha.c, the
 * ha group against the nodes. Each check reports
 * at the line of the value that breaks it and goes on, so one run lists
 * every problem.
 */
#include "conf/conf_internal.h"
#include "lib/mem.h"
#include "lib/wgkey.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char *node_label(const struct raw_node *rn)
{
	return rn->node.name ? rn->node.name : rn->path;
}

static int find_node(const struct load_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->n_nodes; i++)
		if (ctx->nodes[i].node.name && strcmp(ctx->nodes[i].node.name, name) == 0)
			return (int)i;
	return -1;
}

static void spoke_names(const struct load_ctx *ctx, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 1; i < ctx->n_nodes; i++)
		if (ctx->nodes[i].node.name)
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
				 ctx->nodes[i].node.name);
}

static void check_names_and_keys(struct load_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_nodes; i++) {
		struct raw_node *a = &ctx->nodes[i];

		if (a->node.public_key_b64 &&
		    !wgkey_from_base64(a->node.public_key_b64, a->node.public_key))
			a->node.public_key_b64 = NULL; /* already reported */
		for (size_t j = 0; j < i; j++) {
			const struct raw_node *b = &ctx->nodes[j];

			if (a->node.name && b->node.name && strcmp(a->node.name, b->node.name) == 0)
				diag_add(ctx, NULL, a->name_line,
					 "%s.name: \"%s\" is already the name of %s (line %d) (hint: node names must be unique)",
					 a->path, a->node.name, b->path, b->name_line);
			if (a->node.public_key_b64 && b->node.public_key_b64 &&
			    strcmp(a->node.public_key_b64, b->node.public_key_b64) == 0)
				diag_add(ctx, NULL, a->node.line,
					 "%s.public_key: the same key as %s (hint: every node needs its own key pair; `supervisor genkey`)",
					 a->path, node_label(b));
		}
	}
}

static void check_addresses(struct load_ctx *ctx)
{
	const struct conf_cidr *net = &ctx->conf->cluster.network;
	uint32_t mask = net->prefix ? ~(uint32_t)0 << (32 - net->prefix) : 0;
	uint32_t base = ntohl(net->addr.s_addr);
	char netbuf[16], ipbuf[16];

	conf_ip_str(net->addr, netbuf);
	for (size_t i = 0; i < ctx->n_nodes; i++) {
		struct raw_node *a = &ctx->nodes[i];
		uint32_t ip = ntohl(a->node.overlay_ip.s_addr);

		if (!ip)
			continue; /* missing or unparsable: already reported */
		conf_ip_str(a->node.overlay_ip, ipbuf);
		if ((ip & mask) != base) {
			diag_add(ctx, NULL, a->ip_line,
				 "%s.overlay_ip: %s is outside cluster.network %s/%u (hint: pick a free address in %s/%u)",
				 a->path, ipbuf, netbuf, net->prefix, netbuf, net->prefix);
			continue;
		}
		if (ip == base || ip == (base | ~mask)) {
			diag_add(ctx, NULL, a->ip_line,
				 "%s.overlay_ip: %s is the network or broadcast address of %s/%u",
				 a->path, ipbuf, netbuf, net->prefix);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			const struct raw_node *b = &ctx->nodes[j];

			if (b->node.overlay_ip.s_addr != a->node.overlay_ip.s_addr)
				continue;
			if (j == 0 && ctx->have_hub)
				diag_add(ctx, NULL, a->ip_line,
					 "%s.overlay_ip: %s is the hub's overlay IP (hint: the hub owns %s; give spokes their own addresses)",
					 a->path, ipbuf, ipbuf);
			else
				diag_add(ctx, NULL, a->ip_line,
					 "%s.overlay_ip: %s is already used by %s (line %d)", a->path,
					 ipbuf, node_label(b), b->ip_line);
			break;
		}
	}
}

/* @primary: the primary's index, or -1 when there is none (already reported). */
static void resolve_upstreams(struct load_ctx *ctx, int primary)
{
	char known[512];

	spoke_names(ctx, known, sizeof(known));
	for (size_t i = 1; i < ctx->n_nodes; i++) {
		struct raw_node *rn = &ctx->nodes[i];
		int up;

		if (!rn->upstream_name) {
			/*
			 * With ha on the leader changes at run time and every replica
			 * follows it: the file's primary is only where it first clones.
			 */
			if (rn->node.pg_role == CONF_PG_REPLICA && ctx->ha.ha.mode != CONF_HA_OFF) {
				rn->node.upstream = primary;
				continue;
			}
			if (rn->node.pg_role == CONF_PG_REPLICA)
				diag_add(ctx, NULL, rn->pg_role_line ? rn->pg_role_line : rn->node.line,
					 "%s: replica %s has no upstream (hint: add upstream = \"<name of the primary>\")",
					 rn->path, node_label(rn));
			continue;
		}
		if (rn->node.pg_role != CONF_PG_REPLICA) {
			diag_add(ctx, NULL, rn->upstream_line,
				 "%s.upstream: only a replica has an upstream, and %s is %s",
				 rn->path, node_label(rn), conf_pg_role_name(rn->node.pg_role));
			continue;
		}
		up = find_node(ctx, rn->upstream_name);
		if (up < 0 || up == 0) {
			diag_add(ctx, NULL, rn->upstream_line,
				 "%s.upstream: no spoke named \"%s\" (hint: known spokes: %s)", rn->path,
				 rn->upstream_name, known);
			continue;
		}
		if ((size_t)up == i) {
			diag_add(ctx, NULL, rn->upstream_line,
				 "%s.upstream: replica %s cannot stream from itself", rn->path,
				 node_label(rn));
			continue;
		}
		if (ctx->nodes[up].node.pg_role == CONF_PG_NONE) {
			diag_add(ctx, NULL, rn->upstream_line,
				 "%s.upstream: %s runs no postgres (hint: stream from the primary or another replica)",
				 rn->path, rn->upstream_name);
			continue;
		}
		rn->node.upstream = up;
	}
}

static void check_topology(struct load_ctx *ctx)
{
	int primary = -1;

	for (size_t i = 1; i < ctx->n_nodes; i++) {
		const struct raw_node *rn = &ctx->nodes[i];

		if (rn->node.pg_role != CONF_PG_PRIMARY)
			continue;
		if (primary < 0)
			primary = (int)i;
		else
			diag_add(ctx, NULL, rn->pg_role_line,
				 "%s.postgres: %s is a second primary (hint: %s is already the primary; make this one a replica)",
				 rn->path, node_label(rn), node_label(&ctx->nodes[primary]));
	}
	if (primary < 0 && ctx->n_nodes > 1)
		diag_add(ctx, NULL, ctx->spokes_line,
			 "spokes: no spoke is the postgres primary (hint: set postgres = \"primary\" on exactly one spoke)");

	resolve_upstreams(ctx, primary);

	/* Every replica's chain of upstreams must end at the primary. */
	for (size_t i = 1; i < ctx->n_nodes; i++) {
		const struct raw_node *rn = &ctx->nodes[i];
		int cur = (int)i;
		char chain[512];

		if (rn->node.pg_role != CONF_PG_REPLICA || rn->node.upstream < 0)
			continue;
		snprintf(chain, sizeof(chain), "%s", node_label(rn));
		for (size_t steps = 0; steps < ctx->n_nodes; steps++) {
			cur = ctx->nodes[cur].node.upstream;
			if (cur < 0)
				break;
			snprintf(chain + strlen(chain), sizeof(chain) - strlen(chain), " -> %s",
				 node_label(&ctx->nodes[cur]));
			if (ctx->nodes[cur].node.pg_role == CONF_PG_PRIMARY || cur == (int)i)
				break;
		}
		if (cur == (int)i)
			diag_add(ctx, NULL, rn->upstream_line,
				 "%s.upstream: replication chain %s is a loop that never reaches the primary",
				 rn->path, chain);
	}
}

/* Resolve one name of an ACL list to a spoke index, or report why not. */
static int acl_node(struct load_ctx *ctx, const struct raw_acl *a, const char *side,
		    const struct name_list *l, size_t k, const char *known)
{
	int idx = find_node(ctx, l->names[k]);

	if (idx == 0 && ctx->have_hub) {
		diag_add(ctx, NULL, l->lines[k],
			 "%s.%s[%zu]: \"%s\" is the hub; ACLs are between spokes only (hint: the hub's own ports are fixed: 22/tcp from ssh_from, cluster.port/udp)",
			 a->path, side, k, l->names[k]);
		return -1;
	}
	if (idx < 0)
		diag_add(ctx, NULL, l->lines[k], "%s.%s[%zu]: no spoke named \"%s\" (hint: known spokes: %s)",
			 a->path, side, k, l->names[k], known);
	return idx;
}

static void add_flow(struct conf_flow *flows, size_t *n, int from, int to, uint8_t proto,
		     uint16_t port, int line)
{
	if (from == to)
		return; /* a spoke's traffic to itself never crosses wg0 */
	flows[(*n)++] = (struct conf_flow){ from, to, proto, port, line, false };
}

static int flow_cmp(const void *a, const void *b)
{
	const struct conf_flow *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	/* A flow both written and derived is kept as written: the user's line. */
	if (x->derived != y->derived)
		return x->derived ? 1 : -1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Lists overlap (a pair named by two entries), so flows are sorted and
 * made unique, keeping the first line that asked for each. Sorting, not a
 * pairwise search: a 250-spoke mesh has 62 000 flows.
 */
static size_t unique_flows(struct conf_flow *flows, size_t n)
{
	size_t k = 0;

	if (n < 2)
		return n;
	qsort(flows, n, sizeof(*flows), flow_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct conf_flow *p = k ? &flows[k - 1] : NULL;

		if (!p || p->from != flows[i].from || p->to != flows[i].to ||
		    p->proto != flows[i].proto || p->port != flows[i].port)
			flows[k++] = flows[i];
	}
	return k;
}

static void expand_acls(struct load_ctx *ctx)
{
	size_t cap = 0, n = 0;
	struct conf_flow *flows;
	char known[512];

	spoke_names(ctx, known, sizeof(known));
	for (size_t i = 0; i < ctx->n_acls; i++) {
		const struct raw_acl *a = &ctx->acls[i];

		cap += a->from.n * a->to.n * (a->tcp.n + a->udp.n);
	}
	cap += ha_flows_max(ctx);
	flows = store_alloc(ctx->store, sizeof(*flows) * (cap ? cap : 1));
	for (size_t i = 0; i < ctx->n_acls; i++) {
		const struct raw_acl *a = &ctx->acls[i];
		_cleanup_free_ int *from_idx = xcalloc(a->from.n, sizeof(int));
		_cleanup_free_ int *to_idx = xcalloc(a->to.n, sizeof(int));

		for (size_t f = 0; f < a->from.n; f++)
			from_idx[f] = acl_node(ctx, a, "from", &a->from, f, known);
		for (size_t t = 0; t < a->to.n; t++)
			to_idx[t] = acl_node(ctx, a, "to", &a->to, t, known);
		for (size_t f = 0; f < a->from.n; f++) {
			for (size_t t = 0; t < a->to.n; t++) {
				if (from_idx[f] <= 0 || to_idx[t] <= 0)
					continue;
				for (size_t p = 0; p < a->tcp.n; p++)
					add_flow(flows, &n, from_idx[f], to_idx[t], IPPROTO_TCP,
						 a->tcp.ports[p], a->line);
				for (size_t p = 0; p < a->udp.n; p++)
					add_flow(flows, &n, from_idx[f], to_idx[t], IPPROTO_UDP,
						 a->udp.ports[p], a->line);
			}
		}
	}
	ha_add_flows(ctx, flows, &n);
	ctx->conf->flows = flows;
	ctx->conf->n_flows = unique_flows(flows, n);
}

static const char *const *to_argv(struct load_ctx *ctx, const struct name_list *l)
{
	const char **v = store_alloc(ctx->store, sizeof(*v) * (l->n + 1));

	for (size_t i = 0; i < l->n; i++)
		v[i] = l->names[i];
	return v;
}

static int find_child(const struct raw_node *rn, const char *name)
{
	for (size_t i = 0; i < rn->n_children; i++)
		if (rn->children[i].child.name && strcmp(rn->children[i].child.name, name) == 0)
			return (int)i;
	return -1;
}

/* Depth-first walk of "after" edges; true when @start is reachable again. */
static bool after_cycle(const struct raw_node *rn, size_t start, size_t cur, size_t depth)
{
	const struct raw_child *rc = &rn->children[cur];

	if (depth > rn->n_children)
		return false;
	for (size_t i = 0; i < rc->after.n; i++) {
		int j = find_child(rn, rc->after.names[i]);

		if (j < 0)
			continue;
		if ((size_t)j == start || after_cycle(rn, start, (size_t)j, depth + 1))
			return true;
	}
	return false;
}

static void check_children(struct load_ctx *ctx, struct raw_node *rn)
{
	for (size_t i = 0; i < rn->n_children; i++) {
		struct raw_child *rc = &rn->children[i];
		struct conf_child *c = &rc->child;

		if (c->name && find_child(rn, c->name) != (int)i)
			diag_add(ctx, NULL, c->line, "%s.name: \"%s\" is already the name of another child of %s",
				 rc->path, c->name, node_label(rn));
		if (rc->argv_line && rc->argv.n == 0)
			diag_add(ctx, NULL, rc->argv_line, "%s.command: the list is empty (hint: command = [ \"/usr/bin/prog\", \"arg\" ])",
				 rc->path);
		else if (rc->argv.n && rc->argv.names[0][0] != '/')
			diag_add(ctx, NULL, rc->argv_line,
				 "%s.command: \"%s\" is not an absolute path (hint: no $PATH lookup is done for PID 1's children)",
				 rc->path, rc->argv.names[0]);
		for (size_t e = 0; e < rc->env.n; e++) {
			const char *eq = strchr(rc->env.names[e], '=');

			if (!eq || eq == rc->env.names[e])
				diag_add(ctx, NULL, rc->env.lines[e], "%s.env[%zu]: \"%s\" is not NAME=VALUE",
					 rc->path, e, rc->env.names[e]);
		}
		for (size_t a = 0; a < rc->after.n; a++) {
			int j = find_child(rn, rc->after.names[a]);

			if (j < 0)
				diag_add(ctx, NULL, rc->after.lines[a], "%s.after[%zu]: no child named \"%s\" on %s",
					 rc->path, a, rc->after.names[a], node_label(rn));
			else if ((size_t)j == i)
				diag_add(ctx, NULL, rc->after.lines[a], "%s.after[%zu]: a child cannot start after itself",
					 rc->path, a);
		}
		if (after_cycle(rn, i, i, 0))
			diag_add(ctx, NULL, rc->after_line, "%s.after: the start order is a loop (hint: remove one of the after entries)",
				 rc->path);
		c->argv = to_argv(ctx, &rc->argv);
		c->env = rc->env_line ? to_argv(ctx, &rc->env) : NULL;
		c->after = to_argv(ctx, &rc->after);
	}
}

void validate_cluster(struct load_ctx *ctx, const config_setting_t *root)
{
	(void)root;
	check_names_and_keys(ctx);
	for (size_t i = 0; i < ctx->n_nodes; i++)
		check_children(ctx, &ctx->nodes[i]);
	if (ctx->have_network)
		check_addresses(ctx);
	check_topology(ctx);
	check_ha(ctx);
	expand_acls(ctx);
}

int select_node(struct load_ctx *ctx, const char *node, const config_setting_t *root)
{
	char known[512];
	int idx;

	(void)root;
	if (!node || !*node) {
		diag_add(ctx, NULL, 1, "no node name given (hint: pass -n NAME or set SUPERVISOR_NODE)");
		return -1;
	}
	idx = find_node(ctx, node);
	if (idx >= 0 && (idx > 0 || ctx->have_hub))
		return idx;
	spoke_names(ctx, known, sizeof(known));
	diag_add(ctx, NULL, ctx->spokes_line ? ctx->spokes_line : 1,
		 "this node, \"%s\", is not in the cluster file (hint: nodes are %s%s%s; choose one with -n NAME or SUPERVISOR_NODE)",
		 node, ctx->nodes[0].node.name ? ctx->nodes[0].node.name : "", known[0] ? ", " : "",
		 known);
	return -1;
}
