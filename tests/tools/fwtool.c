// SPDX-License-Identifier: MIT
/*
 * fwtool: the firewall module's netlink side, driven by hand, for the lab
 * tests and the benchmark (not installed).
 *
 *   fwtool nft CONF NODE           the model as `nft -f` input (a replace)
 *   fwtool apply CONF NODE         apply; print messages, time, generation
 *   fwtool check CONF NODE         read back; exit 0 if it matches
 *   fwtool apply-broken CONF NODE  apply with one bad rule at the end: must
 *                                  be refused and change nothing
 *   fwtool foreign IFNAME          the other tables' forward chains as read,
 *                                  and which drop IFNAME-to-IFNAME traffic
 *                                  (exit 1 if any)
 */
#include "firewall/firewall.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: fwtool nft|apply|check|apply-broken CONF NODE | fwtool foreign IFNAME\n");
	return 64;
}

/*
 * The last chain gets a name longer than nf_tables allows (256): the
 * kernel refuses that chain and its rules after accepting the table, the
 * sets, the elements and the other chains in the same batch.
 */
static void break_model(struct fw_model *m, char *name, size_t size)
{
	memset(name, 'x', size - 1);
	name[size - 1] = '\0';
	m->chains[m->n_chains - 1].name = name;
}

static const char *const verdicts[] = {
	[FW_FV_CONTINUE] = "continue", [FW_FV_ACCEPT] = "accept", [FW_FV_DROP] = "drop",
	[FW_FV_REJECT] = "reject", [FW_FV_JUMP] = "jump", [FW_FV_GOTO] = "goto",
	[FW_FV_RETURN] = "return", [FW_FV_OTHER] = "other",
};

static void print_match(const struct fw_fmatch *m)
{
	switch (m->key) {
	case FW_FKEY_IIFNAME:
	case FW_FKEY_OIFNAME:
		printf(" %s%s\"%s%s\"", m->key == FW_FKEY_IIFNAME ? "iifname" : "oifname",
		       m->negate ? "!=" : "=", m->name, m->prefix ? "*" : "");
		break;
	case FW_FKEY_NFPROTO:
		printf(" nfproto%s%u", m->negate ? "!=" : "=", m->nfproto);
		break;
	case FW_FKEY_OTHER:
		printf(" other");
		break;
	}
}

static int foreign(const char *ifname)
{
	struct fw_foreign f;
	struct fw_block b[FW_BLOCKS_MAX];
	size_t n;
	int r = fw_foreign_read(&f);

	if (r != 0) {
		printf("result=%d\n", r);
		return 2;
	}
	for (size_t i = 0; i < f.n_tables; i++)
		for (size_t j = 0; j < f.tables[i].n_chains; j++) {
			const struct fw_fchain *c = &f.tables[i].chains[j];

			printf("table %u %s chain %s%s%s\n", f.tables[i].family, f.tables[i].name, c->name,
			       c->forward ? " forward" : "", c->policy_drop ? " policy-drop" : "");
			for (size_t k = 0; k < c->n_rules; k++) {
				printf("  rule %llu:", (unsigned long long)c->rules[k].handle);
				for (size_t x = 0; x < c->rules[k].n_match; x++)
					print_match(&c->rules[k].match[x]);
				printf(" -> %s%s%s\n", verdicts[c->rules[k].verdict], c->rules[k].target ? " " : "",
				       c->rules[k].target ? c->rules[k].target : "");
			}
		}
	n = fw_foreign_judge(&f, ifname, b);
	for (size_t i = 0; i < n; i++)
		printf("BLOCK chain=\"%s\" why=\"%s\" fix=\"%s\"\n", b[i].chain, b[i].why, b[i].fix);
	printf("genid=%u blocks=%zu\n", f.genid, n);
	fw_foreign_clear(&f);
	return n ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct conf_diag diag = { 0 };
	struct conf *conf = NULL;
	struct fw_model *m;
	int r = 0;

	if (argc == 3 && strcmp(argv[1], "foreign") == 0)
		return foreign(argv[2]);
	if (argc != 4)
		return usage();
	if (conf_load_file(argv[2], argv[3], &conf, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		conf_diag_clear(&diag);
		return 78;
	}
	m = fw_model_build(conf);
	if (strcmp(argv[1], "nft") == 0) {
		char *text = fw_model_nft(m, true);

		fputs(text, stdout);
		free(text);
	} else if (strcmp(argv[1], "apply") == 0 || strcmp(argv[1], "apply-broken") == 0) {
		struct fw_apply_result res;
		bool broken = strcmp(argv[1], "apply-broken") == 0;

		char name[300];

		if (broken)
			break_model(m, name, sizeof(name));
		r = fw_apply(m, &res);
		printf("result=%d messages=%u duration_us=%llu genid=%u error=\"%s\"\n", r, res.messages,
		       (unsigned long long)res.duration_us, res.genid, res.error);
		r = r == 0 ? 0 : 1;
	} else if (strcmp(argv[1], "check") == 0) {
		struct fw_readback rb;

		r = fw_check(m, &rb);
		printf("result=%d present=%d matches=%d genid=%u difference=\"%s\"\n", r, rb.present,
		       rb.matches, rb.genid, rb.difference);
		r = r == 0 && rb.matches ? 0 : 1;
	} else {
		r = usage();
	}
	fw_model_free(m);
	conf_free(conf);
	return r;
}
