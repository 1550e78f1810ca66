// SPDX-License-Identifier: MIT
/*
 * The model as libnftnl objects, expression for expression what nft(8)
 * emits for the same text (checked against `nft --debug=netlink` in the
 * unit tests), so that `nft list` shows our rules in plain nft syntax and
 * the guards nft always adds (nfproto before an IPv4 field in an inet
 * table, l4proto before a port) are there.
 */
#include "firewall/firewall_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <string.h>

#include <libnftnl/expr.h>

/* nft's datatype ids (nftables include/datatype.h), concatenated 6 bits each. */
#define NFT_TYPE_IPV4_ADDR 7
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS 6

static const int hooks[] = {
	[FW_HOOK_INPUT] = NF_INET_LOCAL_IN,
	[FW_HOOK_FORWARD] = NF_INET_FORWARD,
	[FW_HOOK_OUTPUT] = NF_INET_LOCAL_OUT,
};

struct nftnl_table *fw_nl_table(const struct fw_model *m)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		fatalx("firewall", "out of memory");
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, m->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	/* No owner flag: the table must outlive us (design.md §4). */
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
	return t;
}

struct nftnl_chain *fw_nl_chain(const struct fw_model *m, const struct fw_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();

	if (!ch)
		fatalx("firewall", "out of memory");
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, m->table);
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, (uint32_t)hooks[c->hook]);
	nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, 0); /* "filter" */
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, c->policy_drop ? NF_DROP : NF_ACCEPT);
	return ch;
}

size_t fw_elem_key(const struct fw_set *s, const struct fw_elem *e, uint8_t key[12])
{
	uint16_t port = htons(e->port);
	size_t off = 0;

	memset(key, 0, 12);
	memcpy(key, &e->saddr.s_addr, 4);
	off = 4;
	if (s->key == FW_KEY_SADDR_DADDR_DPORT) {
		memcpy(key + off, &e->daddr.s_addr, 4);
		off += 4;
	}
	memcpy(key + off, &port, 2);
	return off + 4;
}

struct nftnl_set *fw_nl_set(const struct fw_model *m, size_t set, size_t from, size_t n)
{
	const struct fw_set *s = &m->sets[set];
	struct nftnl_set *ns = nftnl_set_alloc();
	uint32_t type = NFT_TYPE_IPV4_ADDR << NFT_TYPE_BITS | NFT_TYPE_INET_SERVICE;
	uint8_t key[12];

	if (!ns)
		fatalx("firewall", "out of memory");
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, m->table);
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(ns, NFTNL_SET_ID, fw_set_id(set));
	if (s->key == FW_KEY_SADDR_DADDR_DPORT)
		type = (NFT_TYPE_IPV4_ADDR << NFT_TYPE_BITS | NFT_TYPE_IPV4_ADDR) << NFT_TYPE_BITS |
		       NFT_TYPE_INET_SERVICE;
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_TYPE, type);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_LEN, s->key == FW_KEY_SADDR_DADDR_DPORT ? 12 : 8);
	nftnl_set_set_u32(ns, NFTNL_SET_FLAGS, s->vmap ? NFT_SET_MAP : 0);
	/*
	 * The size lets the kernel pick a hash sized for the elements at once
	 * instead of growing one: a 62 000-element apply takes 60 ms, not 115.
	 * Elements only ever come from a whole-table apply, so it is never short.
	 */
	nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, (uint32_t)s->n_elems);
	if (s->vmap) {
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_LEN, 0);
	}
	for (size_t i = from; i < from + n && i < s->n_elems; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		size_t len = fw_elem_key(s, &s->elems[i], key);

		if (!e)
			fatalx("firewall", "out of memory");
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)len);
		if (s->vmap)
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NF_ACCEPT);
		nftnl_set_elem_add(ns, e);
	}
	return ns;
}

/* ---- expressions ------------------------------------------------------------ */

static struct nftnl_expr *expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (!e)
		fatalx("firewall", "out of memory");
	nftnl_rule_add_expr(r, e);
	return e;
}

static void meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr(r, "meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}

static void cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = expr(r, "payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

static void bitwise(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "bitwise");
	static const uint8_t zero[16];

	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
}

static void meta_eq_u8(struct nftnl_rule *r, uint32_t key, uint8_t v)
{
	meta(r, key, NFT_REG_1);
	cmp(r, NFT_CMP_EQ, &v, 1);
}

/*
 * What a rule has already established about the packet: nft emits each
 * guard (nfproto, l4proto) once per rule, not once per match.
 */
struct guards {
	uint8_t nfproto;
	uint8_t l4proto;
};

static void nfproto_guard(struct nftnl_rule *r, struct guards *g, uint8_t nfproto)
{
	if (g->nfproto == nfproto)
		return;
	meta_eq_u8(r, NFT_META_NFPROTO, nfproto);
	g->nfproto = nfproto;
}

static void l4proto_guard(struct nftnl_rule *r, struct guards *g, uint8_t proto)
{
	if (g->l4proto == proto)
		return;
	meta_eq_u8(r, NFT_META_L4PROTO, proto);
	g->l4proto = proto;
}

static void ifname(struct nftnl_rule *r, uint32_t key, const char *name, bool negate)
{
	char buf[FW_IFNAMSIZ] = { 0 };

	strncpy(buf, name, sizeof(buf) - 1);
	meta(r, key, NFT_REG_1);
	cmp(r, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, buf, sizeof(buf));
}

/* A prefix on a byte boundary is a shorter load; others need a mask (as nft). */
static void addr(struct nftnl_rule *r, struct guards *g, uint32_t offset, struct conf_cidr c)
{
	uint32_t mask = c.prefix ? htonl(~0u << (32 - c.prefix)) : 0;
	uint32_t net = c.addr.s_addr & mask;

	nfproto_guard(r, g, NFPROTO_IPV4);
	if (c.prefix % 8 == 0 && c.prefix > 0) {
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, c.prefix / 8u, NFT_REG_1);
		cmp(r, NFT_CMP_EQ, &net, c.prefix / 8u);
	} else {
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, 4, NFT_REG_1);
		bitwise(r, &mask, 4);
		cmp(r, NFT_CMP_EQ, &net, 4);
	}
}

static void ct_state(struct nftnl_rule *r, uint32_t mask)
{
	struct nftnl_expr *e = expr(r, "ct");
	uint32_t zero = 0;

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	bitwise(r, &mask, 4);
	cmp(r, NFT_CMP_NEQ, &zero, 4);
}

static void dport(struct nftnl_rule *r, struct guards *g, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);

	l4proto_guard(r, g, proto);
	payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	cmp(r, NFT_CMP_EQ, &be, 2);
}

static void set_lookup(struct nftnl_rule *r, struct guards *g, const struct fw_model *m, size_t set)
{
	const struct fw_set *s = &m->sets[set];
	bool three = s->key == FW_KEY_SADDR_DADDR_DPORT;
	struct nftnl_expr *e;

	nfproto_guard(r, g, NFPROTO_IPV4);
	l4proto_guard(r, g, s->proto);
	/* Concatenated fields go to consecutive 32-bit registers. */
	payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
	if (three)
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_01);
	payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, three ? NFT_REG32_02 : NFT_REG32_01);
	e = expr(r, "lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, s->name);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, fw_set_id(set));
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0); /* the kernel reports it back */
	if (s->vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
}

static void icmpv6_type(struct nftnl_rule *r, struct guards *g, uint8_t type)
{
	nfproto_guard(r, g, NFPROTO_IPV6);
	l4proto_guard(r, g, IPPROTO_ICMPV6);
	payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	cmp(r, NFT_CMP_EQ, &type, 1);
}

static void encode_match(struct nftnl_rule *r, struct guards *g, const struct fw_model *m,
			 const struct fw_match *x)
{
	uint32_t lo = 1; /* the loopback device is always ifindex 1 */

	switch (x->kind) {
	case FW_MATCH_IIF_LO:
		meta(r, NFT_META_IIF, NFT_REG_1);
		cmp(r, NFT_CMP_EQ, &lo, 4);
		break;
	case FW_MATCH_IIFNAME:
		ifname(r, NFT_META_IIFNAME, x->u.ifname, x->negate);
		break;
	case FW_MATCH_OIFNAME:
		ifname(r, NFT_META_OIFNAME, x->u.ifname, x->negate);
		break;
	case FW_MATCH_CT_STATE:
		ct_state(r, x->u.ct_mask);
		break;
	case FW_MATCH_SADDR:
		addr(r, g, 12, x->u.cidr);
		break;
	case FW_MATCH_DADDR:
		addr(r, g, 16, x->u.cidr);
		break;
	case FW_MATCH_DPORT:
		dport(r, g, x->u.l4.proto, x->u.l4.port);
		break;
	case FW_MATCH_ICMPV6_TYPE:
		icmpv6_type(r, g, x->u.icmp_type);
		break;
	case FW_MATCH_SET:
		set_lookup(r, g, m, x->u.set);
		break;
	}
}

struct nftnl_rule *fw_nl_rule(const struct fw_model *m, const struct fw_chain *c,
			      const struct fw_rule *fr)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct guards g = { 0 };

	if (!r)
		fatalx("firewall", "out of memory");
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, m->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, c->name);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	for (size_t i = 0; i < fr->n_match; i++)
		encode_match(r, &g, m, &fr->match[i]);
	if (fr->counter) {
		struct nftnl_expr *e = expr(r, "counter");

		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_PACKETS, 0);
		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_BYTES, 0);
	}
	if (fr->verdict != FW_VMAP) {
		struct nftnl_expr *e = expr(r, "immediate");

		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT,
				   fr->verdict == FW_ACCEPT ? NF_ACCEPT : NF_DROP);
	}
	return r;
}

/* ---- canonical text -------------------------------------------------------- */

struct canon_ctx {
	uint64_t packets, bytes;
};

static int zero_counter(struct nftnl_expr *e, void *data)
{
	struct canon_ctx *ctx = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0) {
		ctx->packets += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		ctx->bytes += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_PACKETS, 0);
		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_BYTES, 0);
	}
	return 0;
}

char *fw_canon_rule(struct nftnl_rule *r, uint64_t *packets, uint64_t *bytes)
{
	struct canon_ctx ctx = { 0 };
	char buf[4096];

	nftnl_rule_unset(r, NFTNL_RULE_HANDLE);
	nftnl_rule_unset(r, NFTNL_RULE_POSITION);
	nftnl_expr_foreach(r, zero_counter, &ctx);
	nftnl_rule_snprintf(buf, sizeof(buf), r, NFTNL_OUTPUT_DEFAULT, 0);
	if (packets)
		*packets = ctx.packets;
	if (bytes)
		*bytes = ctx.bytes;
	return xstrdup(buf);
}
