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
 */
#include "firewall/firewall.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: fwtool nft|apply|check|apply-broken CONF NODE\n");
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

int main(int argc, char **argv)
{
	struct conf_diag diag = { 0 };
	struct conf *conf = NULL;
	struct fw_model *m;
	int r = 0;

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
