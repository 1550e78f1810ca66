// SPDX-License-Identifier: MIT
/*
 * Reading the ruleset we do not own, for fw_foreign_judge(): every ip and
 * inet table but ours that is not dormant, and of those only the ones with
 * a base chain on the forward hook get their rules read. Dumps are
 * filtered to one table in the kernel, so our own table's sets (up to tens
 * of thousands of elements) are never read here.
 *
 * A rule is reduced to what the judgement needs: its interface and nfproto
 * comparisons, "something else" for any other match, and its verdict.
 */
#include "firewall/firewall_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/common.h>
#include <libnftnl/expr.h>

#define REGS 32

static struct fw_ftable *add_table(struct fw_foreign *f, uint32_t family, const char *name)
{
	struct fw_ftable *t;

	f->tables = xreallocarray(f->tables, f->n_tables + 1, sizeof(*f->tables));
	t = &f->tables[f->n_tables++];
	memset(t, 0, sizeof(*t));
	t->family = family;
	t->name = xstrdup(name);
	return t;
}

/* Tables that can see forwarded IPv4, not ours, hooked (not dormant). */
static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_foreign *f = data;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *name;
	uint32_t family;

	if (!t)
		fatalx("firewall", "out of memory");
	if (nftnl_table_nlmsg_parse(nlh, t) < 0)
		goto out;
	name = nftnl_table_get_str(t, NFTNL_TABLE_NAME);
	family = nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY);
	if (!name || (family != NFPROTO_IPV4 && family != NFPROTO_INET) ||
	    (family == NFPROTO_INET && strcmp(name, FW_TABLE) == 0) ||
	    (nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) & NFT_TABLE_F_DORMANT))
		goto out;
	add_table(f, family, name);
out:
	nftnl_table_free(t);
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_ftable *t = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct fw_fchain *fc;
	const char *name, *table;

	if (!c)
		fatalx("firewall", "out of memory");
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
	if (!name || !table || strcmp(table, t->name) != 0 ||
	    nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY) != t->family)
		goto out;
	t->chains = xreallocarray(t->chains, t->n_chains + 1, sizeof(*t->chains));
	fc = &t->chains[t->n_chains++];
	memset(fc, 0, sizeof(*fc));
	fc->name = xstrdup(name);
	fc->forward = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) &&
		      nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == NF_INET_FORWARD;
	fc->policy_drop = fc->forward && nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) &&
			  nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == NF_DROP;
out:
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* Building one rule's description from its expressions. */
struct rule_parse {
	struct fw_frule *r;
	enum fw_fkey regs[REGS];   /* what each register holds */
};

static void add_match(struct fw_frule *r, const struct fw_fmatch *m)
{
	r->match = xreallocarray(r->match, r->n_match + 1, sizeof(*r->match));
	r->match[r->n_match++] = *m;
}

static void add_other(struct fw_frule *r)
{
	struct fw_fmatch m = { .key = FW_FKEY_OTHER };

	add_match(r, &m);
}

static void forget_regs(struct rule_parse *p)
{
	for (size_t i = 0; i < REGS; i++)
		p->regs[i] = FW_FKEY_OTHER;
}

static void parse_meta(struct rule_parse *p, struct nftnl_expr *e)
{
	uint32_t key = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY), dreg;

	if (!nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG))
		return; /* meta set (a mark, a priority): a statement, no match */
	dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_META_DREG);
	if (dreg >= REGS)
		return;
	p->regs[dreg] = key == NFT_META_IIFNAME ? FW_FKEY_IIFNAME :
			key == NFT_META_OIFNAME ? FW_FKEY_OIFNAME :
			key == NFT_META_NFPROTO ? FW_FKEY_NFPROTO : FW_FKEY_OTHER;
}

/*
 * A comparison of a register we know. Interface names: nft compares all
 * 16 bytes, iptables the name and its NUL ("wg0\0"); a comparison with no
 * NUL in it is a prefix ("wg*", iptables' "wg+").
 */
static void parse_cmp(struct rule_parse *p, struct nftnl_expr *e)
{
	uint32_t sreg = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG);
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP), len = 0;
	const uint8_t *d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	struct fw_fmatch m = { .key = sreg < REGS ? p->regs[sreg] : FW_FKEY_OTHER, .negate = op == NFT_CMP_NEQ };

	if (!d || len == 0 || (op != NFT_CMP_EQ && op != NFT_CMP_NEQ))
		m.key = FW_FKEY_OTHER;
	switch (m.key) {
	case FW_FKEY_IIFNAME:
	case FW_FKEY_OIFNAME:
		if (len > FW_IFNAMSIZ) {
			m.key = FW_FKEY_OTHER;
			break;
		}
		memcpy(m.name, d, len < FW_IFNAMSIZ ? len : FW_IFNAMSIZ - 1);
		m.prefix = memchr(d, '\0', len) == NULL;
		break;
	case FW_FKEY_NFPROTO:
		m.nfproto = d[0];
		break;
	case FW_FKEY_OTHER:
		break;
	}
	add_match(p->r, &m);
}

static void parse_immediate(struct rule_parse *p, struct nftnl_expr *e)
{
	const char *chain;

	if (nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT) {
		forget_regs(p); /* data for a later expression */
		return;
	}
	switch ((int32_t)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) {
	case NF_ACCEPT: p->r->verdict = FW_FV_ACCEPT; break;
	case NF_DROP: p->r->verdict = FW_FV_DROP; break;
	case NFT_RETURN: p->r->verdict = FW_FV_RETURN; break;
	case NFT_CONTINUE: p->r->verdict = FW_FV_CONTINUE; break;
	case NFT_JUMP:
	case NFT_GOTO:
		chain = nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN);
		p->r->verdict = (int32_t)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT) == NFT_JUMP ?
				FW_FV_JUMP : FW_FV_GOTO;
		free(p->r->target);
		p->r->target = chain ? xstrdup(chain) : NULL;
		break;
	default: /* queue, stolen, break: not judged */
		p->r->verdict = FW_FV_OTHER;
		break;
	}
}

static int expr_cb(struct nftnl_expr *e, void *data)
{
	struct rule_parse *p = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME), *x;

	if (!name) {
		add_other(p->r);
	} else if (strcmp(name, "meta") == 0) {
		parse_meta(p, e);
	} else if (strcmp(name, "cmp") == 0) {
		parse_cmp(p, e);
	} else if (strcmp(name, "immediate") == 0) {
		parse_immediate(p, e);
	} else if (strcmp(name, "counter") == 0 || strcmp(name, "log") == 0) {
		/* neither a match nor a verdict */
	} else if (strcmp(name, "reject") == 0) {
		p->r->verdict = FW_FV_REJECT;
	} else if (strcmp(name, "target") == 0) { /* iptables-nft's xt targets */
		x = nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME);
		if (x && strcmp(x, "REJECT") == 0)
			p->r->verdict = FW_FV_REJECT;
		else if (!x || (strcmp(x, "LOG") != 0 && strcmp(x, "NFLOG") != 0))
			p->r->verdict = FW_FV_OTHER;
	} else if (strcmp(name, "match") == 0 &&
		   (x = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME)) && strcmp(x, "comment") == 0) {
		/* -m comment matches everything */
	} else {
		/* payload, ct, lookup, bitwise, limit, an xt match ...: some packets */
		add_other(p->r);
		forget_regs(p);
		if (strcmp(name, "lookup") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG) &&
		    nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG) == NFT_REG_VERDICT)
			p->r->verdict = FW_FV_OTHER; /* a verdict map */
	}
	return 0;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_ftable *t = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct fw_fchain *c = NULL;
	struct rule_parse p;
	const char *chain, *table;

	if (!r)
		fatalx("firewall", "out of memory");
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
	if (!chain || !table || strcmp(table, t->name) != 0 ||
	    nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY) != t->family)
		goto out;
	for (size_t i = 0; i < t->n_chains && !c; i++)
		if (strcmp(t->chains[i].name, chain) == 0)
			c = &t->chains[i];
	if (!c)
		goto out; /* a chain added after our chain dump: the generation check retries */
	c->rules = xreallocarray(c->rules, c->n_rules + 1, sizeof(*c->rules));
	p.r = &c->rules[c->n_rules++];
	memset(p.r, 0, sizeof(*p.r));
	p.r->handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
	forget_regs(&p);
	nftnl_expr_foreach(r, expr_cb, &p);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static struct nlmsghdr *request(struct fw_sock *s, char *buf, uint16_t type, uint16_t family,
				const char *table)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, family, NLM_F_DUMP, s->seq++);

	if (table)
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table); /* NFTA_*_TABLE are all 1 */
	return nlh;
}

static bool has_forward(const struct fw_ftable *t)
{
	for (size_t i = 0; i < t->n_chains; i++)
		if (t->chains[i].forward)
			return true;
	return false;
}

static int read_once(struct fw_sock *s, struct fw_foreign *f)
{
	char buf[FW_REQ_BUF];
	size_t kept = 0;
	int r;

	if ((r = fw_sock_query(s, request(s, buf, NFT_MSG_GETTABLE, NFPROTO_UNSPEC, NULL), table_cb, f)) < 0)
		return r;
	for (size_t i = 0; i < f->n_tables; i++) {
		struct fw_ftable *t = &f->tables[i];

		if ((r = fw_sock_query(s, request(s, buf, NFT_MSG_GETCHAIN, (uint16_t)t->family, t->name),
				       chain_cb, t)) < 0 && r != -ENOENT)
			return r;
		if (has_forward(t) &&
		    (r = fw_sock_query(s, request(s, buf, NFT_MSG_GETRULE, (uint16_t)t->family, t->name),
				       rule_cb, t)) < 0 && r != -ENOENT)
			return r;
	}
	/* Keep only the tables that matter; a table deleted meanwhile read as empty. */
	for (size_t i = 0; i < f->n_tables; i++) {
		if (has_forward(&f->tables[i])) {
			f->tables[kept++] = f->tables[i];
			continue;
		}
		for (size_t j = 0; j < f->tables[i].n_chains; j++)
			free(f->tables[i].chains[j].name); /* no rules were read: no forward chain */
		free(f->tables[i].chains);
		free(f->tables[i].name);
	}
	f->n_tables = kept;
	return 0;
}

static int read_once_cb(struct fw_sock *s, void *data)
{
	return read_once(s, data);
}

static void clear_cb(void *data)
{
	fw_foreign_clear(data);
}

int fw_foreign_read(struct fw_foreign *out)
{
	uint32_t genid = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = fw_read_stable(read_once_cb, clear_cb, out, &genid);
	out->genid = genid;
	return r;
}
