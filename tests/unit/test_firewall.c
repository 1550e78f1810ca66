// SPDX-License-Identifier: MIT
/*
 * The firewall without a kernel: the rule model from configurations, its
 * nft text against reviewed golden files, and the netlink encoding against
 * what nft(8) itself emits for that text (the .netlink files in tests/firewall, made by
 * `nft --debug=netlink`; see tests/firewall/regen.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sodium.h>

#include "firewall/firewall_internal.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/wgkey.h"

static const char *dir(void)
{
	const char *d = getenv("FIREWALL_TEST_DIR");

	return d ? d : "tests/firewall";
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		fail_msg("cannot open %s", path);
	if (getdelim(&buf, &len, '\0', f) < 0)
		fail_msg("cannot read %s", path);
	fclose(f);
	return buf;
}

static struct conf *load(const char *path, const char *node)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_file(path, node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		conf_diag_clear(&diag);
		fail_msg("%s does not load", path);
	}
	return c;
}

static struct conf *load_text(const char *text, const char *node)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	if (conf_load_string(text, "test.conf", node, &c, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		conf_diag_clear(&diag);
		fail_msg("test configuration does not load");
	}
	return c;
}

struct golden {
	const char *conf;   /* relative to FIREWALL_TEST_DIR */
	const char *node;
	const char *name;
};

static const struct golden cases[] = {
	{ "../../deploy/examples/cluster.conf", "spoke-a", "example-spoke-a" },
	{ "../../deploy/examples/cluster.conf", "hub", "example-hub" },
	{ "mixed.conf", "spoke-b", "mixed-spoke-b" },
	{ "mixed.conf", "spoke-a", "mixed-spoke-a" },
	{ "mixed.conf", "hub", "mixed-hub" },
	{ "../conf/valid/minimal.conf", "spoke-a", "minimal-spoke-a" },
	{ "../conf/valid/minimal.conf", "hub", "minimal-hub" },
};

static struct fw_model *golden_model(const struct golden *g, struct conf **c)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir(), g->conf);
	*c = load(path, g->node);
	return fw_model_build(*c);
}

/* The rendered text is the reviewed golden file, byte for byte. */
static void test_nft_text_matches_golden(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *c;
		struct fw_model *m = golden_model(&cases[i], &c);
		char path[512], *want, *got = fw_model_nft(m, false);

		snprintf(path, sizeof(path), "%s/%s.nft", dir(), cases[i].name);
		want = slurp(path);
		if (strcmp(want, got) != 0)
			fail_msg("%s: rendered text differs from %s:\n%s", cases[i].name, path, got);
		free(want);
		free(got);
		fw_model_free(m);
		conf_free(c);
	}
}

/*
 * Our libnftnl rules print exactly as nft's own for the same text. The one
 * allowed difference: we send the lookup's flags (0) explicitly, because
 * the kernel reports them back and the drift check compares read-backs.
 */
static void test_encoding_matches_nft(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *c;
		struct fw_model *m = golden_model(&cases[i], &c);
		char path[512], *golden, *rules;
		char *ours = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&ours, &len);

		for (size_t k = 0; k < m->n_chains; k++) {
			for (size_t j = 0; j < m->chains[k].n_rules; j++) {
				struct nftnl_rule *r = fw_nl_rule(m, &m->chains[k], &m->chains[k].rules[j]);
				char *t = fw_canon_rule(r, NULL, NULL), *p;

				while ((p = strstr(t, " 0x0 ]")))
					memmove(p, p + 4, strlen(p + 4) + 1);
				fprintf(f, "%s\n", t); /* nft leaves a blank line after each rule */
				free(t);
				nftnl_rule_free(r);
			}
		}
		fclose(f);
		snprintf(path, sizeof(path), "%s/%s.netlink", dir(), cases[i].name);
		golden = slurp(path);
		rules = strstr(golden, "inet supervisor ");
		assert_non_null(rules);
		if (strcmp(rules, ours) != 0)
			fail_msg("%s: our bytecode differs from nft's (%s):\n%s", cases[i].name, path, ours);
		free(golden);
		free(ours);
		fw_model_free(m);
		conf_free(c);
	}
}

/* Set elements: the key bytes nft sends, shown as nft's debug output shows them. */
static void test_elements_match_nft(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *c;
		struct fw_model *m = golden_model(&cases[i], &c);
		char path[512], *golden;

		snprintf(path, sizeof(path), "%s/%s.netlink", dir(), cases[i].name);
		golden = slurp(path);
		for (size_t s = 0; s < m->n_sets; s++) {
			for (size_t e = 0; e < m->sets[s].n_elems; e++) {
				uint8_t key[12];
				size_t n = fw_elem_key(&m->sets[s], &m->sets[s].elems[e], key);
				char want[128] = "element";

				for (size_t w = 0; w < n / 4; w++) {
					uint32_t v;

					memcpy(&v, key + 4 * w, 4);
					snprintf(want + strlen(want), sizeof(want) - strlen(want), " %08x", v);
				}
				if (!strstr(golden, want))
					fail_msg("%s: set %s: \"%s\" is not in %s", cases[i].name,
						 m->sets[s].name, want, path);
			}
		}
		free(golden);
		fw_model_free(m);
		conf_free(c);
	}
}

/* The hash is the SHA-256 of the golden text, so anyone can recompute it. */
static void test_hash_is_sha256_of_text(void **state)
{
	char seen[ARRAY_SIZE(cases)][24];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf *c;
		struct fw_model *m = golden_model(&cases[i], &c);
		char path[512], want[24] = "sha256:", *text;
		unsigned char h[crypto_hash_sha256_BYTES];

		snprintf(path, sizeof(path), "%s/%s.nft", dir(), cases[i].name);
		text = slurp(path);
		crypto_hash_sha256(h, (unsigned char *)text, strlen(text));
		for (size_t k = 0; k < 8; k++)
			snprintf(want + 7 + 2 * k, 3, "%02x", h[k]);
		fw_model_hash(m, seen[i]);
		assert_string_equal(seen[i], want);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(seen[k], seen[i]);
		free(text);
		fw_model_free(m);
		conf_free(c);
	}
}

static const struct fw_rule *find_rule(const struct fw_model *m, const char *chain, const char *why)
{
	for (size_t i = 0; i < m->n_chains; i++)
		for (size_t k = 0; k < m->chains[i].n_rules; k++)
			if (strcmp(m->chains[i].name, chain) == 0 && m->chains[i].rules[k].why &&
			    strstr(m->chains[i].rules[k].why, why))
				return &m->chains[i].rules[k];
	return NULL;
}

static size_t rule_index(const struct fw_model *m, const char *chain, const char *why)
{
	for (size_t i = 0; i < m->n_chains; i++)
		for (size_t k = 0; k < m->chains[i].n_rules; k++)
			if (strcmp(m->chains[i].name, chain) == 0 && strstr(m->chains[i].rules[k].why, why))
				return k;
	fail_msg("no rule \"%s\" in %s", why, chain);
	return SIZE_MAX;
}

/* Spoke: hub-sourced traffic dropped before established flows are accepted. */
static void test_spoke_drops_hub_before_established(void **state)
{
	struct conf *c = load(getenv("EXAMPLE_CONF"), "spoke-b");
	struct fw_model *m = fw_model_build(c);
	const struct fw_rule *hub = find_rule(m, "input", "hub's overlay address");

	(void)state;
	assert_non_null(hub);
	assert_int_equal(hub->verdict, FW_DROP);
	assert_int_equal(hub->match[1].kind, FW_MATCH_SADDR);
	assert_int_equal(hub->match[1].u.cidr.addr.s_addr, inet_addr("10.88.0.1"));
	assert_true(rule_index(m, "input", "hub's overlay address") <
		    rule_index(m, "input", "established flows"));
	assert_true(m->chains[0].policy_drop);
	assert_false(m->chains[1].policy_drop); /* a spoke's forward: explicit wg0 drops only */
	/* spoke-b gets flows from spoke-a only (the acl), on 5432 */
	assert_int_equal(m->n_sets, 1);
	assert_int_equal(m->sets[0].n_elems, 1);
	assert_int_equal(m->sets[0].elems[0].saddr.s_addr, inet_addr("10.88.0.11"));
	assert_int_equal(m->sets[0].elems[0].port, 5432);
	fw_model_free(m);
	conf_free(c);
}

/*
 * High availability's fencing: a fenced node closes its own Postgres port
 * first thing in input (before lo: local clients reach the overlay IP
 * through it); every other Postgres spoke drops output to a fenced node's
 * Postgres port; with nobody fenced the output chain is empty.
 */
static void test_ha_fencing(void **state)
{
	char path[512];
	struct conf *file, *view;
	struct fw_model *m;
	const struct fw_rule *r;
	bool fenced[4] = { false, true, false, false }; /* hub, spoke-a, spoke-b, spoke-c */
	char *text;

	(void)state;
	snprintf(path, sizeof(path), "%s/../conf/valid/ha.conf", dir());
	file = load(path, "spoke-b");
	view = conf_with_roles(file, 2, NULL);
	m = fw_model_build(view);
	assert_int_equal(m->n_chains, 3);
	assert_string_equal(m->chains[2].name, "output");
	assert_int_equal(m->chains[2].n_rules, 0);
	assert_null(find_rule(m, "input", "fenced"));
	fw_model_free(m);
	conf_free(view);

	view = conf_with_roles(file, 2, fenced); /* spoke-b leads; spoke-a, the old primary, is fenced */
	m = fw_model_build(view);
	r = find_rule(m, "output", "fenced former primary");
	assert_non_null(r);
	assert_int_equal(m->chains[2].n_rules, 1);
	assert_int_equal(r->verdict, FW_DROP);
	assert_int_equal(r->match[0].kind, FW_MATCH_DADDR);
	assert_int_equal(r->match[0].u.cidr.addr.s_addr, inet_addr("10.88.0.11"));
	assert_int_equal(r->match[1].kind, FW_MATCH_DPORT);
	assert_int_equal(r->match[1].u.l4.port, 5432);
	text = fw_model_nft(m, false);
	assert_non_null(strstr(text, "ip daddr 10.88.0.11 tcp dport 5432 counter drop"));
	free(text);
	fw_model_free(m);
	conf_free(view);
	conf_free(file);

	file = load(path, "spoke-a");
	view = conf_with_roles(file, 1, fenced); /* spoke-a itself fenced */
	m = fw_model_build(view);
	assert_int_equal(rule_index(m, "input", "fenced"), 0);
	assert_true(rule_index(m, "input", "fenced") < rule_index(m, "input", "loopback"));
	r = find_rule(m, "input", "fenced");
	assert_int_equal(r->match[0].kind, FW_MATCH_DPORT);
	assert_int_equal(r->match[0].u.l4.proto, IPPROTO_TCP);
	assert_int_equal(r->match[0].u.l4.port, 5432);
	assert_int_equal(m->chains[2].n_rules, 0); /* it does not fence itself on output */
	fw_model_free(m);
	conf_free(view);
	conf_free(file);
}

/* Hub: forward policy accept (other bridges keep working), ssh any when ssh_from is 0/0. */
static void test_hub_forward_accepts_others_and_ssh_any(void **state)
{
	static const char text[] =
		"cluster = { network = \"10.88.0.0/24\"; };\n"
		"hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"192.0.2.1:51820\";\n"
		"  public_key = \"FN+bZ6djGKzJiUTbK+nkFbc3vVlLBX7D2DhBAzsGIxs=\";\n"
		"  ssh_from = [ \"198.51.100.7/32\", \"0.0.0.0/0\" ]; };\n"
		"spokes = ( { name = \"spoke-a\"; overlay_ip = \"10.88.0.11\"; postgres = \"primary\";\n"
		"  public_key = \"M3i9WQyag4lUF0QfLXkiDK/gXA6kGGUBHiOxdgohQWA=\"; } );\n";
	struct conf *c = load_text(text, "hub");
	struct fw_model *m = fw_model_build(c);
	const struct fw_rule *ssh = find_rule(m, "input", "ssh");

	(void)state;
	assert_int_equal(m->n_chains, 3);
	assert_false(m->chains[1].policy_drop);
	assert_non_null(ssh);
	assert_int_equal(ssh->n_match, 1); /* no source match: anyone */
	assert_int_equal(ssh->match[0].kind, FW_MATCH_DPORT);
	assert_null(find_rule(m, "input", "ssh from hub.ssh_from"));
	assert_int_equal(m->n_sets, 0);    /* no acl: no sets */
	assert_non_null(find_rule(m, "forward", "no acl: all pairs"));
	fw_model_free(m);
	conf_free(c);
}

/* 250 spokes, full mesh on 5432: 62 250 pairs on the hub, 249 per spoke; loads fast. */
static void test_mesh_250(void **state)
{
	char *text = NULL, *names = NULL;
	size_t tlen = 0, nlen = 0;
	FILE *f = open_memstream(&text, &tlen), *nf = open_memstream(&names, &nlen);
	struct conf *hub, *spoke;
	struct fw_model *m;
	uint8_t key[32], pub[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1];
	uint64_t t0;

	(void)state;
	fprintf(f, "cluster = { network = \"10.88.0.0/23\"; };\n");
	memset(key, 7, sizeof(key));
	wgkey_to_base64(key, b64);
	fprintf(f, "hub = { name = \"hub\"; overlay_ip = \"10.88.0.1\"; endpoint = \"192.0.2.1:51820\"; public_key = \"%s\"; };\nspokes = (\n", b64);
	for (int i = 0; i < 250; i++) {
		memset(pub, 0, sizeof(pub));
		pub[0] = (uint8_t)i;
		pub[1] = 1;
		wgkey_to_base64(pub, b64);
		fprintf(f, "%s{ name = \"s%03d\"; overlay_ip = \"10.88.%d.%d\"; public_key = \"%s\"; postgres = \"%s\"; }\n",
			i ? "," : "", i, (11 + i) / 256, (11 + i) % 256, b64, i ? "none" : "primary");
		fprintf(nf, "%s\"s%03d\"", i ? ", " : "", i);
	}
	fclose(nf);
	fprintf(f, ");\nacl = ( { from = [ %s ]; to = [ %s ]; tcp = [ 5432 ]; },\n"
		   "        { from = [ %s ]; to = [ \"s001\" ]; tcp = [ 5432 ]; } );\n", names, names, names);
	fclose(f);
	t0 = now_ms();
	hub = load_text(text, "hub");
	spoke = load_text(text, "s001");
	m = fw_model_build(hub);
	assert_int_equal(hub->n_flows, 250 * 249); /* the repeated entry adds nothing */
	assert_int_equal(m->n_sets, 1);
	assert_int_equal(m->sets[0].n_elems, 250 * 249);
	assert_true(m->sets[0].vmap);
	fw_model_free(m);
	m = fw_model_build(spoke);
	assert_int_equal(m->sets[0].n_elems, 249);
	assert_false(m->sets[0].vmap);
	/* quadratic work would take seconds here; sorting takes milliseconds */
	assert_true(now_ms() - t0 < 2000);
	fw_model_free(m);
	conf_free(hub);
	conf_free(spoke);
	free(text);
	free(names);
}

/* Keys are network-order fields padded to 4 bytes, as the kernel stores them. */
static void test_element_key_layout(void **state)
{
	struct fw_set s3 = { .key = FW_KEY_SADDR_DADDR_DPORT }, s2 = { .key = FW_KEY_SADDR_DPORT };
	struct fw_elem e = { .port = 5432 };
	static const uint8_t want3[12] = { 10, 88, 0, 12, 10, 88, 0, 11, 0x15, 0x38, 0, 0 };
	static const uint8_t want2[8] = { 10, 88, 0, 12, 0x15, 0x38, 0, 0 };
	uint8_t key[12];

	(void)state;
	e.saddr.s_addr = inet_addr("10.88.0.12");
	e.daddr.s_addr = inet_addr("10.88.0.11");
	assert_int_equal(fw_elem_key(&s3, &e, key), 12);
	assert_memory_equal(key, want3, 12);
	assert_int_equal(fw_elem_key(&s2, &e, key), 8);
	assert_memory_equal(key, want2, 8);
}

/* ---- other firewalls on the hub: the judgement ------------------------------------- */

/* Tables, chains and rules by name; the arrays move as they grow. */
static struct fw_ftable *ftable(struct fw_foreign *f, uint32_t family, const char *name)
{
	for (size_t i = 0; i < f->n_tables; i++)
		if (f->tables[i].family == family && strcmp(f->tables[i].name, name) == 0)
			return &f->tables[i];
	f->tables = xreallocarray(f->tables, f->n_tables + 1, sizeof(*f->tables));
	memset(&f->tables[f->n_tables], 0, sizeof(f->tables[0]));
	f->tables[f->n_tables].family = family;
	f->tables[f->n_tables].name = xstrdup(name);
	return &f->tables[f->n_tables++];
}

/* @hook: NULL (a regular chain), "forward drop", "forward accept", "input drop". */
static struct fw_fchain *fchain(struct fw_foreign *f, uint32_t family, const char *table, const char *name,
				const char *hook)
{
	struct fw_ftable *t = ftable(f, family, table);
	struct fw_fchain *c;

	for (size_t i = 0; i < t->n_chains; i++)
		if (strcmp(t->chains[i].name, name) == 0)
			return &t->chains[i];
	t->chains = xreallocarray(t->chains, t->n_chains + 1, sizeof(*t->chains));
	c = &t->chains[t->n_chains++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	c->forward = hook && strncmp(hook, "forward", 7) == 0;
	c->policy_drop = hook && strstr(hook, "drop");
	return c;
}

/*
 * A rule from words: "iif=wg0", "oif=wg*" (a prefix), "iif!=docker0",
 * "nfproto=10", "other" (ports, ct state ...), then "->" and the verdict:
 * accept, drop, reject, return, continue, other, jump:CHAIN, goto:CHAIN.
 */
static void frule(struct fw_foreign *f, uint32_t family, const char *table, const char *chain, const char *spec)
{
	struct fw_fchain *c = fchain(f, family, table, chain, NULL);
	struct fw_frule *r;
	_cleanup_free_ char *copy = xstrdup(spec);
	char *save = NULL, *w;
	bool verdict = false;

	c->rules = xreallocarray(c->rules, c->n_rules + 1, sizeof(*c->rules));
	r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	r->handle = 100 + c->n_rules;
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		struct fw_fmatch m = { .key = FW_FKEY_OTHER };
		char *v;

		if (strcmp(w, "->") == 0) {
			verdict = true;
			continue;
		}
		if (verdict) {
			static const char *const names[] = { "continue", "accept", "drop", "reject", "jump",
							     "goto", "return", "other" };

			if ((v = strchr(w, ':'))) {
				*v++ = '\0';
				r->target = xstrdup(v);
			}
			for (size_t i = 0; i < ARRAY_SIZE(names); i++)
				if (strcmp(w, names[i]) == 0)
					r->verdict = (enum fw_fverdict)i;
			continue;
		}
		if (strncmp(w, "iif", 3) == 0 || strncmp(w, "oif", 3) == 0) {
			m.key = w[0] == 'i' ? FW_FKEY_IIFNAME : FW_FKEY_OIFNAME;
			m.negate = w[3] == '!';
			v = strchr(w, '=') + 1;
			m.prefix = v[strlen(v) - 1] == '*';
			snprintf(m.name, sizeof(m.name), "%.*s", (int)strlen(v) - (m.prefix ? 1 : 0), v);
		} else if (strncmp(w, "nfproto", 7) == 0) {
			m.key = FW_FKEY_NFPROTO;
			m.negate = w[7] == '!';
			m.nfproto = (uint8_t)atoi(strchr(w, '=') + 1);
		}
		r->match = xreallocarray(r->match, r->n_match + 1, sizeof(*r->match));
		r->match[r->n_match++] = m;
	}
}

#define IP 2    /* NFPROTO_IPV4 */
#define INET 1  /* NFPROTO_INET */

/* `iptables -P FORWARD DROP`, and the fix it prints. */
static void test_foreign_iptables_policy_drop(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];

	(void)state;
	fchain(&f, IP, "filter", "FORWARD", "forward drop");
	fchain(&f, IP, "filter", "INPUT", "input drop");   /* not the forward hook */
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 1);
	assert_string_equal(b[0].chain, "ip filter FORWARD");
	assert_string_equal(b[0].why, "policy drop, and no rule accepts every packet from wg0 to wg0 before it");
	assert_string_equal(b[0].fix, "iptables -I FORWARD -i wg0 -o wg0 -j ACCEPT");
	/* established flows alone let no new connection through */
	frule(&f, IP, "filter", "FORWARD", "other -> accept");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 1);
	/* the printed fix, as iptables inserts it */
	frule(&f, IP, "filter", "FORWARD", "iif=wg0 oif=wg0 -> accept");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 0);
	fw_foreign_clear(&f);
	assert_int_equal(f.n_tables, 0);
}

/* Docker's chains (28 and later); @fixed: with the printed fix in DOCKER-USER. */
static void docker(struct fw_foreign *f, bool fixed)
{
	fchain(f, IP, "filter", "FORWARD", "forward drop");
	frule(f, IP, "filter", "FORWARD", "-> jump:DOCKER-USER");
	frule(f, IP, "filter", "FORWARD", "-> jump:DOCKER-FORWARD");
	if (fixed)
		frule(f, IP, "filter", "DOCKER-USER", "iif=wg0 oif=wg0 -> accept");
	frule(f, IP, "filter", "DOCKER-USER", "-> return");
	frule(f, IP, "filter", "DOCKER-FORWARD", "-> jump:DOCKER-ISOLATION-STAGE-1");
	frule(f, IP, "filter", "DOCKER-FORWARD", "oif=docker0 other -> accept");
	frule(f, IP, "filter", "DOCKER-FORWARD", "iif=docker0 -> accept");
	frule(f, IP, "filter", "DOCKER-ISOLATION-STAGE-1", "iif=docker0 oif!=docker0 -> jump:DOCKER-ISOLATION-STAGE-2");
	frule(f, IP, "filter", "DOCKER-ISOLATION-STAGE-1", "-> return");
	fchain(f, IP, "filter", "DOCKER-ISOLATION-STAGE-2", NULL);
}

/* Docker: FORWARD policy drop, DOCKER-USER jumped to first: the fix goes there. */
static void test_foreign_docker(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];

	(void)state;
	docker(&f, false);
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 1);
	assert_string_equal(b[0].chain, "ip filter FORWARD");
	assert_string_equal(b[0].fix, "iptables -I DOCKER-USER -i wg0 -o wg0 -j ACCEPT");
	fw_foreign_clear(&f);
	docker(&f, true);
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 0);
	fw_foreign_clear(&f);
}

/* UFW's routed policy: the fix is UFW's own, so its next reload keeps it. */
static void test_foreign_ufw(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];

	(void)state;
	fchain(&f, IP, "filter", "FORWARD", "forward drop");
	frule(&f, IP, "filter", "FORWARD", "-> jump:ufw-before-logging-forward");
	frule(&f, IP, "filter", "FORWARD", "-> jump:ufw-before-forward");
	frule(&f, IP, "filter", "FORWARD", "-> jump:ufw-after-forward");
	frule(&f, IP, "filter", "ufw-before-logging-forward", "other -> continue");
	frule(&f, IP, "filter", "ufw-before-forward", "other other -> accept");
	frule(&f, IP, "filter", "ufw-before-forward", "other other -> accept");
	frule(&f, IP, "filter", "ufw-before-forward", "-> jump:ufw-user-forward");
	fchain(&f, IP, "filter", "ufw-user-forward", NULL);
	fchain(&f, IP, "filter", "ufw-after-forward", NULL);
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 1);
	assert_string_equal(b[0].fix, "ufw route allow in on wg0 out on wg0");
	frule(&f, IP, "filter", "ufw-user-forward", "iif=wg0 oif=wg0 -> accept");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 0);
	fw_foreign_clear(&f);
}

/* An nft table's explicit drop or reject of all wg0 traffic, and what is not one. */
static void test_foreign_nft_rules(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];

	(void)state;
	fchain(&f, INET, "fw", "fwd", "forward accept");
	frule(&f, INET, "fw", "fwd", "nfproto=10 -> drop");          /* IPv6 only */
	frule(&f, INET, "fw", "fwd", "other -> drop");                /* ct state invalid */
	frule(&f, INET, "fw", "fwd", "iif=wg0 other -> drop");        /* one port: not all */
	frule(&f, INET, "fw", "fwd", "iif!=wg0 -> drop");
	frule(&f, INET, "fw", "fwd", "iif=eth0 oif=wg0 -> reject");
	frule(&f, INET, "fw", "fwd", "counter -> continue");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 0);
	frule(&f, INET, "fw", "fwd", "nfproto=2 oif=wg* -> reject");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 1);
	assert_string_equal(b[0].chain, "inet fw fwd");
	assert_string_equal(b[0].why, "rule 7 (handle 107) rejects every packet from wg0 to wg0");
	assert_string_equal(b[0].fix, "nft insert rule inet fw fwd iifname \"wg0\" oifname \"wg0\" accept");
	/* "iifname != wg0 drop" drops all of another overlay interface's traffic */
	assert_int_equal(fw_foreign_judge(&f, "ovl0", b), 1);
	assert_string_equal(b[0].why, "rule 4 (handle 104) drops every packet from ovl0 to ovl0");
	fw_foreign_clear(&f);
	/* the fix names the interface, "wg*" does not cover it; a drop in a chain jumped to */
	fchain(&f, INET, "fw", "fwd", "forward accept");
	frule(&f, INET, "fw", "fwd", "oif=wg* -> drop");
	assert_int_equal(fw_foreign_judge(&f, "ovl0", b), 0);
	frule(&f, INET, "fw", "fwd", "-> jump:deny");
	frule(&f, INET, "fw", "deny", "iif=ovl0 -> drop");
	assert_int_equal(fw_foreign_judge(&f, "ovl0", b), 1);
	assert_string_equal(b[0].why, "rule 1 of chain deny (handle 101) drops every packet from ovl0 to ovl0");
	assert_string_equal(b[0].fix, "nft insert rule inet fw fwd iifname \"ovl0\" oifname \"ovl0\" accept");
	fw_foreign_clear(&f);
}

/* Jumps, gotos and returns, and what is left unjudged rather than guessed. */
static void test_foreign_walk(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];

	(void)state;
	/* a goto's end is the base chain's end: the policy */
	fchain(&f, IP, "a", "fwd", "forward drop");
	frule(&f, IP, "a", "fwd", "-> goto:sub");
	frule(&f, IP, "a", "fwd", "-> accept");                       /* never reached */
	fchain(&f, IP, "a", "sub", NULL);
	/* a jump's return comes back: the accept after it counts */
	fchain(&f, IP, "b", "fwd", "forward drop");
	frule(&f, IP, "b", "fwd", "-> jump:sub");
	frule(&f, IP, "b", "fwd", "-> accept");
	frule(&f, IP, "b", "sub", "-> return");
	frule(&f, IP, "b", "sub", "-> drop");
	/* someone wrote rules for wg0 on purpose: not judged */
	fchain(&f, INET, "c", "fwd", "forward drop");
	frule(&f, INET, "c", "fwd", "iif=wg0 other -> accept");
	/* a jump for some packets into a chain that may accept: not judged */
	fchain(&f, INET, "d", "fwd", "forward drop");
	frule(&f, INET, "d", "fwd", "other -> jump:allow");
	frule(&f, INET, "d", "allow", "-> accept");
	/* a verdict map covering everything: not judged */
	fchain(&f, INET, "e", "fwd", "forward drop");
	frule(&f, INET, "e", "fwd", "other -> other");
	frule(&f, INET, "e", "fwd", "-> other");
	/* a jump to a chain that is not there, and a loop: not judged, no crash */
	fchain(&f, INET, "g", "fwd", "forward drop");
	frule(&f, INET, "g", "fwd", "-> jump:nowhere");
	fchain(&f, INET, "h", "fwd", "forward drop");
	frule(&f, INET, "h", "fwd", "-> jump:x");
	frule(&f, INET, "h", "x", "-> jump:x");
	/* by address only: reported (known: the fix is harmless) */
	fchain(&f, INET, "i", "fwd", "forward drop");
	frule(&f, INET, "i", "fwd", "other other -> accept");
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), 2);
	assert_string_equal(b[0].chain, "ip a fwd");
	assert_string_equal(b[0].fix, "nft insert rule ip a fwd iifname \"wg0\" oifname \"wg0\" accept");
	assert_string_equal(b[1].chain, "inet i fwd");
	fw_foreign_clear(&f);
}

/* Findings stop at FW_BLOCKS_MAX. */
static void test_foreign_cap(void **state)
{
	struct fw_foreign f = { 0 };
	struct fw_block b[FW_BLOCKS_MAX];
	char name[16];

	(void)state;
	for (int i = 0; i < FW_BLOCKS_MAX + 3; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		fchain(&f, INET, name, "fwd", "forward drop");
	}
	assert_int_equal(fw_foreign_judge(&f, "wg0", b), FW_BLOCKS_MAX);
	fw_foreign_clear(&f);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nft_text_matches_golden),
		cmocka_unit_test(test_encoding_matches_nft),
		cmocka_unit_test(test_elements_match_nft),
		cmocka_unit_test(test_hash_is_sha256_of_text),
		cmocka_unit_test(test_spoke_drops_hub_before_established),
		cmocka_unit_test(test_ha_fencing),
		cmocka_unit_test(test_hub_forward_accepts_others_and_ssh_any),
		cmocka_unit_test(test_mesh_250),
		cmocka_unit_test(test_element_key_layout),
		cmocka_unit_test(test_foreign_iptables_policy_drop),
		cmocka_unit_test(test_foreign_docker),
		cmocka_unit_test(test_foreign_ufw),
		cmocka_unit_test(test_foreign_nft_rules),
		cmocka_unit_test(test_foreign_walk),
		cmocka_unit_test(test_foreign_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
