// SPDX-License-Identifier: MIT
/*
 * The model in nft(8) syntax: what check-config shows, what the benchmark
 * feeds to `nft -f` as the baseline, and what the rules hash is taken of.
 * The text lists back from the kernel the same way, rule for rule, whether
 * nft or we loaded it (tests/lab/test_firewall.sh compares the two).
 */
#include "firewall/firewall.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *hook_name(enum fw_hook h)
{
	switch (h) {
	case FW_HOOK_INPUT: return "input";
	case FW_HOOK_FORWARD: return "forward";
	case FW_HOOK_OUTPUT: return "output";
	}
	return "?";
}

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : "udp";
}

static const char *icmpv6_name(uint8_t type)
{
	switch (type) {
	case 133: return "nd-router-solicit";
	case 134: return "nd-router-advert";
	case 135: return "nd-neighbor-solicit";
	case 136: return "nd-neighbor-advert";
	}
	return NULL;
}

static void put_cidr(FILE *f, struct conf_cidr c)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &c.addr, ip, sizeof(ip));
	if (c.prefix == 32)
		fprintf(f, "%s", ip);
	else
		fprintf(f, "%s/%u", ip, c.prefix);
}

static void put_ct(FILE *f, uint32_t mask)
{
	static const struct { uint32_t bit; const char *name; } states[] = {
		{ NF_CT_STATE_INVALID_BIT, "invalid" },
		{ NF_CT_STATE_BIT(IP_CT_ESTABLISHED), "established" },
		{ NF_CT_STATE_BIT(IP_CT_RELATED), "related" },
		{ NF_CT_STATE_BIT(IP_CT_NEW), "new" },
	};
	const char *sep = "";

	fputs("ct state ", f);
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		if (mask & states[i].bit) {
			fprintf(f, "%s%s", sep, states[i].name);
			sep = ",";
		}
	}
}

static void put_match(FILE *f, const struct fw_model *m, const struct fw_match *x)
{
	const struct fw_set *s;

	switch (x->kind) {
	case FW_MATCH_IIF_LO:
		fputs("iif \"lo\"", f);
		break;
	case FW_MATCH_IIFNAME:
	case FW_MATCH_OIFNAME:
		fprintf(f, "%s %s\"%s\"", x->kind == FW_MATCH_IIFNAME ? "iifname" : "oifname",
			x->negate ? "!= " : "", x->u.ifname);
		break;
	case FW_MATCH_CT_STATE:
		put_ct(f, x->u.ct_mask);
		break;
	case FW_MATCH_SADDR:
	case FW_MATCH_DADDR:
		fprintf(f, "ip %s ", x->kind == FW_MATCH_SADDR ? "saddr" : "daddr");
		put_cidr(f, x->u.cidr);
		break;
	case FW_MATCH_DPORT:
		fprintf(f, "%s dport %u", proto_name(x->u.l4.proto), x->u.l4.port);
		break;
	case FW_MATCH_ICMPV6_TYPE:
		if (icmpv6_name(x->u.icmp_type))
			fprintf(f, "icmpv6 type %s", icmpv6_name(x->u.icmp_type));
		else
			fprintf(f, "icmpv6 type %u", x->u.icmp_type);
		break;
	case FW_MATCH_SET:
		s = &m->sets[x->u.set];
		fprintf(f, "ip saddr . %s%s dport %s@%s",
			s->key == FW_KEY_SADDR_DADDR_DPORT ? "ip daddr . " : "", proto_name(s->proto),
			s->vmap ? "vmap " : "", s->name);
		break;
	}
}

static void put_rule(FILE *f, const struct fw_model *m, const struct fw_rule *r)
{
	fputs("\t\t", f);
	for (size_t i = 0; i < r->n_match; i++) {
		if (i)
			fputc(' ', f);
		put_match(f, m, &r->match[i]);
	}
	if (r->counter)
		fputs(" counter", f);
	if (r->verdict != FW_VMAP)
		fputs(r->verdict == FW_ACCEPT ? " accept" : " drop", f);
	fputc('\n', f);
}

static void put_elem(FILE *f, const struct fw_set *s, const struct fw_elem *e)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &e->saddr, a, sizeof(a));
	inet_ntop(AF_INET, &e->daddr, b, sizeof(b));
	if (s->key == FW_KEY_SADDR_DADDR_DPORT)
		fprintf(f, "%s . %s . %u", a, b, e->port);
	else
		fprintf(f, "%s . %u", a, e->port);
	if (s->vmap)
		fputs(" : accept", f);
}

static void put_set(FILE *f, const struct fw_set *s)
{
	fprintf(f, "\t%s %s {\n", s->vmap ? "map" : "set", s->name);
	fprintf(f, "\t\ttype ipv4_addr . %sinet_service%s\n",
		s->key == FW_KEY_SADDR_DADDR_DPORT ? "ipv4_addr . " : "", s->vmap ? " : verdict" : "");
	fprintf(f, "\t\tsize %zu\n", s->n_elems);
	if (s->n_elems) {
		fputs("\t\telements = { ", f);
		for (size_t i = 0; i < s->n_elems; i++) {
			if (i)
				fputs(",\n\t\t\t     ", f);
			put_elem(f, s, &s->elems[i]);
		}
		fputs(" }\n", f);
	}
	fputs("\t}\n\n", f);
}

static void put_chain(FILE *f, const struct fw_model *m, const struct fw_chain *c)
{
	const char *why = NULL;

	fprintf(f, "\tchain %s {\n", c->name);
	fprintf(f, "\t\ttype filter hook %s priority filter; policy %s;\n", hook_name(c->hook),
		c->policy_drop ? "drop" : "accept");
	for (size_t i = 0; i < c->n_rules; i++) {
		/* One comment line per purpose, above the rules that serve it. */
		if (c->rules[i].why && (!why || strcmp(why, c->rules[i].why) != 0))
			fprintf(f, "\t\t# %s\n", c->rules[i].why);
		why = c->rules[i].why;
		put_rule(f, m, &c->rules[i]);
	}
	fputs("\t}\n", f);
}

char *fw_model_nft(const struct fw_model *m, bool replace)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = xmemstream(&text, &len);

	if (replace)
		fprintf(f, "table inet %s\ndelete table inet %s\n", m->table, m->table);
	fprintf(f, "table inet %s {\n", m->table);
	for (size_t i = 0; i < m->n_sets; i++)
		put_set(f, &m->sets[i]);
	for (size_t i = 0; i < m->n_chains; i++) {
		if (i)
			fputc('\n', f);
		put_chain(f, m, &m->chains[i]);
	}
	fputs("}\n", f);
	if (fclose(f) != 0)
		fatalx("firewall", "out of memory");
	return text;
}

void fw_model_hash(const struct fw_model *m, char out[24])
{
	_cleanup_free_ char *text = fw_model_nft(m, false);
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < 8; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", h[i]);
}
