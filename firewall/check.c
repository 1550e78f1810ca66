// SPDX-License-Identifier: MIT
/*
 * Reading our table back and comparing it with the model: the drift check.
 *
 * Everything is compared: the table's flags (a dormant table filters
 * nothing), each chain's hook, priority, policy and type, each rule
 * expression by expression (libnftnl's rendering, without handles and
 * with counters zeroed), each set's type and every element. Anything
 * extra (a chain, set or rule someone added) is a difference too.
 *
 * The read is consistent: the generation is read before and after, and
 * the read is repeated when it moved in between.
 */
#include "firewall/firewall_internal.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/common.h>


struct got_rule {
	char chain[FW_IFNAMSIZ];
	char *canon;
	uint64_t packets, bytes;
	bool counted;
};

struct readback {
	bool table;
	uint32_t table_flags;
	struct nftnl_chain *chains[8];
	size_t n_chains, extra_chains;
	struct got_rule *rules;
	size_t n_rules;
	struct nftnl_set *sets[8];
	size_t n_sets, extra_sets;
};

static void readback_clear(struct readback *rb)
{
	for (size_t i = 0; i < rb->n_chains; i++)
		nftnl_chain_free(rb->chains[i]);
	for (size_t i = 0; i < rb->n_rules; i++)
		free(rb->rules[i].canon);
	free(rb->rules);
	for (size_t i = 0; i < rb->n_sets; i++)
		nftnl_set_free(rb->sets[i]);
	memset(rb, 0, sizeof(*rb));
}

static bool ours(const char *table, uint32_t family)
{
	return table && strcmp(table, FW_TABLE) == 0 && family == NFPROTO_INET;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct readback *rb = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t)
		fatalx("firewall", "out of memory");
	if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    ours(nftnl_table_get_str(t, NFTNL_TABLE_NAME), nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY))) {
		rb->table = true;
		rb->table_flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
	}
	nftnl_table_free(t);
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct readback *rb = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c)
		fatalx("firewall", "out of memory");
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 ||
	    !ours(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	if (rb->n_chains == ARRAY_SIZE(rb->chains)) {
		rb->extra_chains++;
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	rb->chains[rb->n_chains++] = c;
	return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct readback *rb = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct got_rule *g;

	if (!r)
		fatalx("firewall", "out of memory");
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 ||
	    !ours(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY))) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	rb->rules = xreallocarray(rb->rules, rb->n_rules + 1, sizeof(*rb->rules));
	g = &rb->rules[rb->n_rules++];
	memset(g, 0, sizeof(*g));
	snprintf(g->chain, sizeof(g->chain), "%s", nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	g->canon = fw_canon_rule(r, &g->packets, &g->bytes);
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct readback *rb = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		fatalx("firewall", "out of memory");
	if (nftnl_set_nlmsg_parse(nlh, s) < 0 ||
	    !ours(nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_u32(s, NFTNL_SET_FAMILY))) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	if (rb->n_sets == ARRAY_SIZE(rb->sets)) {
		rb->extra_sets++;
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	rb->sets[rb->n_sets++] = s;
	return MNL_CB_OK;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	return nftnl_set_elems_nlmsg_parse(nlh, data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* A request for our table's objects of one kind (a dump, or a get). */
static struct nlmsghdr *request(struct fw_sock *s, char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, s->seq++);

	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, FW_TABLE); /* NFTA_*_TABLE are all 1 */
	return nlh;
}

static int read_table(struct fw_sock *s, struct readback *rb)
{
	char buf[FW_REQ_BUF];
	int r;

	r = fw_sock_query(s, request(s, buf, NFT_MSG_GETTABLE, NLM_F_ACK), table_cb, rb);
	if (r == -ENOENT)
		return 0;
	if (r < 0 || !rb->table)
		return r;
	if ((r = fw_sock_query(s, request(s, buf, NFT_MSG_GETCHAIN, NLM_F_DUMP), chain_cb, rb)) < 0 ||
	    (r = fw_sock_query(s, request(s, buf, NFT_MSG_GETRULE, NLM_F_DUMP), rule_cb, rb)) < 0 ||
	    (r = fw_sock_query(s, request(s, buf, NFT_MSG_GETSET, NLM_F_DUMP), set_cb, rb)) < 0)
		return r;
	for (size_t i = 0; i < rb->n_sets; i++) {
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
							     NLM_F_DUMP, s->seq++);

		nftnl_set_elems_nlmsg_build_payload(nlh, rb->sets[i]);
		if ((r = fw_sock_query(s, nlh, elem_cb, rb->sets[i])) < 0)
			return r;
	}
	return 0;
}

/* ---- comparison ------------------------------------------------------------- */

static struct nftnl_chain *find_chain(struct readback *rb, const char *name)
{
	for (size_t i = 0; i < rb->n_chains; i++)
		if (strcmp(nftnl_chain_get_str(rb->chains[i], NFTNL_CHAIN_NAME), name) == 0)
			return rb->chains[i];
	return NULL;
}

static struct nftnl_set *find_set(struct readback *rb, const char *name)
{
	for (size_t i = 0; i < rb->n_sets; i++)
		if (strcmp(nftnl_set_get_str(rb->sets[i], NFTNL_SET_NAME), name) == 0)
			return rb->sets[i];
	return NULL;
}

static bool chain_same(const struct fw_model *m, const struct fw_chain *want, struct nftnl_chain *got)
{
	struct nftnl_chain *w = fw_nl_chain(m, want);
	bool same = nftnl_chain_is_set(got, NFTNL_CHAIN_HOOKNUM) &&
		    nftnl_chain_get_u32(w, NFTNL_CHAIN_HOOKNUM) == nftnl_chain_get_u32(got, NFTNL_CHAIN_HOOKNUM) &&
		    nftnl_chain_get_s32(w, NFTNL_CHAIN_PRIO) == nftnl_chain_get_s32(got, NFTNL_CHAIN_PRIO) &&
		    nftnl_chain_get_u32(w, NFTNL_CHAIN_POLICY) == nftnl_chain_get_u32(got, NFTNL_CHAIN_POLICY) &&
		    nftnl_chain_is_set(got, NFTNL_CHAIN_TYPE) &&
		    strcmp(nftnl_chain_get_str(got, NFTNL_CHAIN_TYPE), "filter") == 0;

	nftnl_chain_free(w);
	return same;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Elements as sorted 16-byte records: the key (padded to 12) and the verdict. */
static uint8_t *want_elems(const struct fw_set *s)
{
	uint8_t *v = xcalloc(s->n_elems ? s->n_elems : 1, 16);

	for (size_t i = 0; i < s->n_elems; i++) {
		int32_t verdict = s->vmap ? NF_ACCEPT : 0;

		fw_elem_key(s, &s->elems[i], v + 16 * i);
		memcpy(v + 16 * i + 12, &verdict, 4);
	}
	qsort(v, s->n_elems, 16, key_cmp);
	return v;
}

static uint8_t *got_elems(struct nftnl_set *ns, size_t *n)
{
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(ns);
	struct nftnl_set_elem *e;
	uint8_t *v = NULL;
	size_t cap = 0;

	*n = 0;
	if (!it)
		fatalx("firewall", "out of memory");
	while ((e = nftnl_set_elems_iter_next(it))) {
		uint32_t len = 0;
		const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		int32_t verdict = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT) ?
				  (int32_t)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT) : 0;

		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			v = xreallocarray(v, cap, 16);
		}
		memset(v + 16 * *n, 0, 16);
		if (key)
			memcpy(v + 16 * *n, key, len > 12 ? 12 : len);
		memcpy(v + 16 * *n + 12, &verdict, 4);
		(*n)++;
	}
	nftnl_set_elems_iter_destroy(it);
	if (*n)
		qsort(v, *n, 16, key_cmp);
	return v;
}

static bool set_same(const struct fw_model *m, size_t i, struct nftnl_set *got, char *why, size_t size)
{
	const struct fw_set *s = &m->sets[i];
	struct nftnl_set *w = fw_nl_set(m, i, 0, 0);
	static const uint16_t attrs[] = { NFTNL_SET_FLAGS, NFTNL_SET_KEY_TYPE, NFTNL_SET_KEY_LEN,
					  NFTNL_SET_DATA_TYPE };
	_cleanup_free_ uint8_t *want = NULL, *have = NULL;
	size_t n = 0;
	bool same = true;

	for (size_t k = 0; k < ARRAY_SIZE(attrs); k++)
		if (nftnl_set_is_set(w, attrs[k]) &&
		    nftnl_set_get_u32(w, attrs[k]) != nftnl_set_get_u32(got, attrs[k]))
			same = false;
	nftnl_set_free(w);
	if (!same) {
		snprintf(why, size, "set %s has a different type", s->name);
		return false;
	}
	want = want_elems(s);
	have = got_elems(got, &n);
	if (n != s->n_elems || (n && memcmp(want, have, 16 * n) != 0)) {
		snprintf(why, size, "set %s has %zu elements, not the %zu wanted%s", s->name, n,
			 s->n_elems, n == s->n_elems ? " (some differ)" : "");
		return false;
	}
	return true;
}

/* Compare chain @c's rules, in order; fills counters for counted rules. */
static bool rules_same(const struct fw_model *m, const struct fw_chain *c, struct readback *rb,
		       struct fw_readback *out)
{
	size_t k = 0;
	bool same = true;

	for (size_t i = 0; i < rb->n_rules; i++) {
		struct got_rule *g = &rb->rules[i];
		struct nftnl_rule *w;
		char *want;

		if (strcmp(g->chain, c->name) != 0)
			continue;
		if (k >= c->n_rules) {
			snprintf(out->difference, sizeof(out->difference),
				 "chain %s has a rule that is not ours (position %zu)", c->name, k);
			return false;
		}
		w = fw_nl_rule(m, c, &c->rules[k]);
		want = fw_canon_rule(w, NULL, NULL);
		nftnl_rule_free(w);
		if (strcmp(want, g->canon) != 0 && same) {
			snprintf(out->difference, sizeof(out->difference), "chain %s rule %zu (%s) was changed",
				 c->name, k, c->rules[k].why ? c->rules[k].why : "");
			same = false;
		}
		free(want);
		if (c->rules[k].counter && out->n_counters < FW_COUNTERS_MAX) {
			struct fw_counter *ct = &out->counters[out->n_counters++];

			snprintf(ct->chain, sizeof(ct->chain), "%s", c->name);
			ct->rule = (unsigned)k;
			ct->why = c->rules[k].why;
			ct->packets = g->packets;
			ct->bytes = g->bytes;
		}
		k++;
	}
	if (same && k != c->n_rules) {
		snprintf(out->difference, sizeof(out->difference), "chain %s has %zu rules, not %zu",
			 c->name, k, c->n_rules);
		same = false;
	}
	return same;
}

static void compare(const struct fw_model *m, struct readback *rb, struct fw_readback *out)
{
	char *why = out->difference;
	size_t size = sizeof(out->difference);

	out->present = rb->table;
	if (!rb->table) {
		snprintf(why, size, "table inet %s is missing", m->table);
		return;
	}
	if (rb->table_flags != 0) {
		snprintf(why, size, "table flags are 0x%x (dormant?), not 0", rb->table_flags);
		return;
	}
	if (rb->n_chains + rb->extra_chains != m->n_chains || rb->n_sets + rb->extra_sets != m->n_sets) {
		snprintf(why, size, "%zu chains and %zu sets, not %zu and %zu",
			 rb->n_chains + rb->extra_chains, rb->n_sets + rb->extra_sets, m->n_chains, m->n_sets);
		return;
	}
	for (size_t i = 0; i < m->n_chains; i++) {
		struct nftnl_chain *got = find_chain(rb, m->chains[i].name);

		if (!got) {
			snprintf(why, size, "chain %s is missing", m->chains[i].name);
			return;
		}
		if (!chain_same(m, &m->chains[i], got)) {
			snprintf(why, size, "chain %s has a different hook, priority, type or policy",
				 m->chains[i].name);
			return;
		}
	}
	for (size_t i = 0; i < m->n_sets; i++) {
		struct nftnl_set *got = find_set(rb, m->sets[i].name);

		if (!got) {
			snprintf(why, size, "set %s is missing", m->sets[i].name);
			return;
		}
		if (!set_same(m, i, got, why, size))
			return;
	}
	out->matches = true;
	for (size_t i = 0; i < m->n_chains; i++)
		if (!rules_same(m, &m->chains[i], rb, out))
			out->matches = false;
}

static int read_table_cb(struct fw_sock *s, void *data)
{
	return read_table(s, data);
}

static void readback_clear_cb(void *data)
{
	readback_clear(data);
}

int fw_check(const struct fw_model *m, struct fw_readback *out)
{
	struct readback rb = { 0 };
	uint32_t genid = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = fw_read_stable(read_table_cb, readback_clear_cb, &rb, &genid);
	if (r == 0) {
		out->genid = genid;
		compare(m, &rb, out);
	}
	readback_clear(&rb);
	return r;
}
