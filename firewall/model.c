// SPDX-License-Identifier: MIT
/*
 * The rule model: what a node's table holds, computed from the validated
 * configuration alone (no kernel), so every rule can be unit-tested and
 * printed before it is applied.
 *
 * Order matters within a chain and is chosen so that the common case is
 * cheap (established flows accepted early, set lookups only for new flows)
 * and so that the few hard "never" rules come before any accept: on a
 * spoke, the hub's overlay address is dropped even before established
 * flows are accepted, so no reply from 10.88.0.1 reaches an application.
 */
#include "firewall/firewall.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define CT_ESTABLISHED_RELATED (NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED))
#define CT_INVALID NF_CT_STATE_INVALID_BIT
#define SSH_PORT 22

/* ICMPv6 types an inet table with policy drop must let in, or IPv6 stops
 * working on the public side: neighbour and router discovery (RFC 4861). */
static const uint8_t nd_types[] = { 133, 134, 135, 136 };

static struct fw_rule *rule(struct fw_chain *c, enum fw_verdict v, bool counter, const char *why)
{
	struct fw_rule *r;

	c->rules = xreallocarray(c->rules, c->n_rules + 1, sizeof(*c->rules));
	r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	r->verdict = v;
	r->counter = counter;
	r->why = why;
	return r;
}

static struct fw_match *match(struct fw_rule *r, enum fw_match_kind kind)
{
	struct fw_match *m;

	if (r->n_match == FW_MATCHES_MAX)
		fatalx("firewall", "rule has too many matches why=%s", r->why);
	m = &r->match[r->n_match++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	return m;
}

static void m_ifname(struct fw_rule *r, enum fw_match_kind kind, const char *name, bool negate)
{
	struct fw_match *m = match(r, kind);

	snprintf(m->u.ifname, sizeof(m->u.ifname), "%s", name);
	m->negate = negate;
}

static void m_ct(struct fw_rule *r, uint32_t mask)
{
	match(r, FW_MATCH_CT_STATE)->u.ct_mask = mask;
}

static void m_addr(struct fw_rule *r, enum fw_match_kind kind, struct conf_cidr cidr)
{
	match(r, kind)->u.cidr = cidr;
}

static void m_host(struct fw_rule *r, enum fw_match_kind kind, struct in_addr a)
{
	m_addr(r, kind, (struct conf_cidr){ .addr = a, .prefix = 32 });
}

static void m_dport(struct fw_rule *r, uint8_t proto, uint16_t port)
{
	struct fw_match *m = match(r, FW_MATCH_DPORT);

	m->u.l4.proto = proto;
	m->u.l4.port = port;
}

static void m_set(struct fw_rule *r, size_t set)
{
	match(r, FW_MATCH_SET)->u.set = set;
}

static size_t add_set(struct fw_model *m, const char *name, enum fw_set_key key, uint8_t proto)
{
	struct fw_set *s = &m->sets[m->n_sets];

	if (m->n_sets == FW_SETS_MAX)
		fatalx("firewall", "too many sets");
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->key = key;
	s->proto = proto;
	s->vmap = key == FW_KEY_SADDR_DADDR_DPORT;
	return m->n_sets++;
}

/* @s has room: it was sized for every flow. */
static void add_elem(struct fw_set *s, struct in_addr saddr, struct in_addr daddr, uint16_t port)
{
	s->elems[s->n_elems++] = (struct fw_elem){ .saddr = saddr, .daddr = daddr, .port = port };
}

static int elem_cmp(const void *a, const void *b)
{
	const struct fw_elem *x = a, *y = b;
	uint32_t xs = ntohl(x->saddr.s_addr), ys = ntohl(y->saddr.s_addr);
	uint32_t xd = ntohl(x->daddr.s_addr), yd = ntohl(y->daddr.s_addr);

	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xd != yd)
		return xd < yd ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/*
 * Sorted and without duplicates (flows are expanded from lists, so one can
 * be listed twice): the text and its hash are then stable.
 */
static void normalise(struct fw_set *s)
{
	size_t k = 0;

	qsort(s->elems, s->n_elems, sizeof(*s->elems), elem_cmp);
	for (size_t i = 0; i < s->n_elems; i++)
		if (k == 0 || elem_cmp(&s->elems[k - 1], &s->elems[i]) != 0)
			s->elems[k++] = s->elems[i];
	s->n_elems = k;
}

static const char *proto_set_name(uint8_t proto, bool hub)
{
	if (hub)
		return proto == IPPROTO_TCP ? "pairs_tcp" : "pairs_udp";
	return proto == IPPROTO_TCP ? "acl_tcp" : "acl_udp";
}

/* The acl's flows as sets: for a spoke the flows to it, for the hub all. */
static void acl_sets(struct fw_model *m, const struct conf *c, bool hub)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	const struct conf_node *me = conf_self(c);

	for (size_t p = 0; p < ARRAY_SIZE(protos); p++) {
		size_t idx = SIZE_MAX;

		for (size_t i = 0; i < c->n_flows; i++) {
			const struct conf_flow *f = &c->flows[i];

			if (f->proto != protos[p] || (!hub && &c->nodes[f->to] != me))
				continue;
			if (idx == SIZE_MAX) {
				idx = add_set(m, proto_set_name(protos[p], hub),
					      hub ? FW_KEY_SADDR_DADDR_DPORT : FW_KEY_SADDR_DPORT, protos[p]);
				m->sets[idx].elems = xcalloc(c->n_flows, sizeof(struct fw_elem));
			}
			add_elem(&m->sets[idx], c->nodes[f->from].overlay_ip, c->nodes[f->to].overlay_ip,
				 f->port);
		}
		if (idx != SIZE_MAX)
			normalise(&m->sets[idx]);
	}
}

static void common_input_head(struct fw_chain *in)
{
	m_ifname(rule(in, FW_ACCEPT, false, "loopback"), FW_MATCH_IIF_LO, "lo", false);
	m_ct(rule(in, FW_DROP, true, "invalid packets"), CT_INVALID);
}

static void nd_rules(struct fw_chain *in)
{
	for (size_t i = 0; i < ARRAY_SIZE(nd_types); i++)
		match(rule(in, FW_ACCEPT, false, "IPv6 neighbour and router discovery"),
		      FW_MATCH_ICMPV6_TYPE)->u.icmp_type = nd_types[i];
}

static void build_spoke(struct fw_model *m, const struct conf *c)
{
	const struct conf_node *me = conf_self(c);
	const char *wg = c->cluster.interface;
	struct fw_chain *in = &m->chains[m->n_chains++];
	struct fw_chain *fwd = &m->chains[m->n_chains++];
	struct fw_rule *r;

	acl_sets(m, c, false);
	*in = (struct fw_chain){ .name = "input", .hook = FW_HOOK_INPUT, .policy_drop = true };
	/* Before lo: local clients reach the overlay IP through lo too. */
	if (me->fenced)
		m_dport(rule(in, FW_DROP, true, "fenced: a former primary without the lease (high availability)"),
			IPPROTO_TCP, me->settings.postgres.port);
	common_input_head(in);
	r = rule(in, FW_DROP, true, "from the hub's overlay address (not even replies)");
	m_ifname(r, FW_MATCH_IIFNAME, wg, false);
	m_host(r, FW_MATCH_SADDR, conf_hub(c)->overlay_ip);
	m_ct(rule(in, FW_ACCEPT, false, "established flows"), CT_ESTABLISHED_RELATED);
	m_dport(rule(in, FW_ACCEPT, false, "status page"), IPPROTO_TCP,
		me->settings.status_listen.port);
	nd_rules(in);
	if (c->has_acl) {
		for (size_t i = 0; i < m->n_sets; i++) {
			r = rule(in, FW_ACCEPT, false, "acl flows to this spoke");
			m_ifname(r, FW_MATCH_IIFNAME, wg, false);
			m_set(r, i);
		}
	} else {
		r = rule(in, FW_ACCEPT, false, "other spokes (no acl: full trust)");
		m_ifname(r, FW_MATCH_IIFNAME, wg, false);
		m_addr(r, FW_MATCH_SADDR, c->cluster.network);
	}
	m_ifname(rule(in, FW_DROP, true, "overlay traffic the acl does not allow"),
		 FW_MATCH_IIFNAME, wg, false);

	/* A spoke routes nothing into or out of the overlay, whatever its sysctls. */
	*fwd = (struct fw_chain){ .name = "forward", .hook = FW_HOOK_FORWARD };
	m_ifname(rule(fwd, FW_DROP, true, "routing from the overlay"), FW_MATCH_IIFNAME, wg, false);
	m_ifname(rule(fwd, FW_DROP, true, "routing into the overlay"), FW_MATCH_OIFNAME, wg, false);

	/* High availability: no client here reaches a fenced former primary's Postgres. */
	if (conf_ha_member(c, me)) {
		struct fw_chain *out = &m->chains[m->n_chains++];

		*out = (struct fw_chain){ .name = "output", .hook = FW_HOOK_OUTPUT };
		for (size_t i = 0; i < c->n_nodes; i++) {
			if (!c->nodes[i].fenced || (int)i == c->self)
				continue;
			r = rule(out, FW_DROP, true, "to a fenced former primary's Postgres (high availability)");
			m_host(r, FW_MATCH_DADDR, c->nodes[i].overlay_ip);
			m_dport(r, IPPROTO_TCP, c->nodes[i].settings.postgres.port);
		}
	}
}

static void build_hub(struct fw_model *m, const struct conf *c)
{
	const struct conf_node *hub = conf_hub(c);
	const char *wg = c->cluster.interface;
	struct fw_chain *in = &m->chains[m->n_chains++];
	struct fw_chain *fwd = &m->chains[m->n_chains++];
	struct fw_chain *out = &m->chains[m->n_chains++];
	struct fw_rule *r;
	bool ssh_any = hub->n_ssh_from == 0;

	if (c->has_acl)
		acl_sets(m, c, true);
	*in = (struct fw_chain){ .name = "input", .hook = FW_HOOK_INPUT, .policy_drop = true };
	common_input_head(in);
	m_ct(rule(in, FW_ACCEPT, false, "established flows"), CT_ESTABLISHED_RELATED);
	for (size_t i = 0; i < hub->n_ssh_from; i++)
		if (hub->ssh_from[i].prefix == 0)
			ssh_any = true;
	if (ssh_any) {
		m_dport(rule(in, FW_ACCEPT, false, "ssh"), IPPROTO_TCP, SSH_PORT);
	} else {
		for (size_t i = 0; i < hub->n_ssh_from; i++) {
			r = rule(in, FW_ACCEPT, false, "ssh from hub.ssh_from");
			m_addr(r, FW_MATCH_SADDR, hub->ssh_from[i]);
			m_dport(r, IPPROTO_TCP, SSH_PORT);
		}
	}
	m_dport(rule(in, FW_ACCEPT, false, "WireGuard"), IPPROTO_UDP, c->cluster.port);
	nd_rules(in);
	m_ifname(rule(in, FW_DROP, true, "spokes reaching the hub itself"), FW_MATCH_IIFNAME, wg, false);

	/* policy accept: Docker's bridges and anything else keep forwarding. */
	*fwd = (struct fw_chain){ .name = "forward", .hook = FW_HOOK_FORWARD };
	r = rule(fwd, FW_ACCEPT, false, "established spoke-to-spoke flows");
	m_ifname(r, FW_MATCH_IIFNAME, wg, false);
	m_ifname(r, FW_MATCH_OIFNAME, wg, false);
	m_ct(r, CT_ESTABLISHED_RELATED);
	if (c->has_acl) {
		for (size_t i = 0; i < m->n_sets; i++) {
			r = rule(fwd, FW_VMAP, false, "acl spoke pairs");
			m_ifname(r, FW_MATCH_IIFNAME, wg, false);
			m_ifname(r, FW_MATCH_OIFNAME, wg, false);
			m_set(r, i);
		}
	} else {
		r = rule(fwd, FW_ACCEPT, false, "spoke to spoke (no acl: all pairs)");
		m_ifname(r, FW_MATCH_IIFNAME, wg, false);
		m_ifname(r, FW_MATCH_OIFNAME, wg, false);
		m_addr(r, FW_MATCH_SADDR, c->cluster.network);
		m_addr(r, FW_MATCH_DADDR, c->cluster.network);
	}
	m_ifname(rule(fwd, FW_DROP, true, "from the overlay to elsewhere, or pairs not allowed"),
		 FW_MATCH_IIFNAME, wg, false);
	m_ifname(rule(fwd, FW_DROP, true, "from elsewhere into the overlay"), FW_MATCH_OIFNAME, wg,
		 false);

	*out = (struct fw_chain){ .name = "output", .hook = FW_HOOK_OUTPUT };
	r = rule(out, FW_DROP, true, "the hub itself to the overlay");
	m_ifname(r, FW_MATCH_OIFNAME, "lo", true);
	m_addr(r, FW_MATCH_DADDR, c->cluster.network);
}

struct fw_model *fw_model_build(const struct conf *conf)
{
	struct fw_model *m = xcalloc(1, sizeof(*m));

	m->table = FW_TABLE;
	if (conf_self(conf)->kind == CONF_NODE_HUB)
		build_hub(m, conf);
	else
		build_spoke(m, conf);
	return m;
}

struct fw_model *fw_model_free(struct fw_model *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_chains; i++)
		free(m->chains[i].rules);
	for (size_t i = 0; i < m->n_sets; i++)
		free(m->sets[i].elems);
	free(m);
	return NULL;
}

size_t fw_model_n_elems(const struct fw_model *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_sets; i++)
		n += m->sets[i].n_elems;
	return n;
}

size_t fw_model_n_rules(const struct fw_model *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_chains; i++)
		n += m->chains[i].n_rules;
	return n;
}
