// SPDX-License-Identifier: MIT
/* `supervisor check-config`: validate and print this node's plan. */
#include "cli/cli.h"
#include "backup/backup.h"
#include "firewall/firewall.h"
#include "lib/common.h"
#include "lib/mem.h"
#include "lib/wgkey.h"
#include "pgwatch/pgwatch.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/*
 * If this node's private key is at hand, it must belong to the public key
 * the cluster file gives for this node: otherwise the hub would silently
 * never complete a handshake, the earlier deployment's most puzzling state.
 */
static int check_private_key(const struct conf *c, bool *matches)
{
	const struct conf_node *me = conf_self(c);
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char why[512];
	int r;

	r = conf_load_private_key(&me->settings.keys, priv, why, sizeof(why));
	if (r == -ENOENT) {
		fprintf(stderr, "warning: %s; `supervisor run` needs it on this node\n", why);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", c->path, why);
		return EXIT_CONFIG;
	}
	r = wgkey_public(priv, pub);
	explicit_zero(priv, sizeof(priv));
	if (r < 0 || memcmp(pub, me->public_key, WG_KEY_LEN) != 0) {
		fprintf(stderr, "%s:%d: the private key does not match %s's public_key (hint: `supervisor pubkey` prints the right public key for it)\n",
			c->path, me->line, me->name);
		return EXIT_CONFIG;
	}
	*matches = true;
	return 0;
}

/* What Postgres will be given: its generated pg_hba and settings. */
static void print_postgres_plan(const struct conf *c)
{
	const struct conf_node *me = conf_self(c);
	_cleanup_free_ char *hba = NULL, *settings = NULL, *archive = NULL;
	struct pg_stop_plan stop;

	if (me->kind != CONF_NODE_SPOKE || me->pg_role == CONF_PG_NONE)
		return;
	hba = pg_hba_text(c, NULL);
	archive = backup_archive_command(c);
	settings = pg_settings_text(c, "<run dir>/pgpass", archive);
	printf("postgres command line adds: -c listen_addresses=<overlay ip> -c port=%u "
	       "-c unix_socket_directories=<run dir>/postgresql -c hba_file=... -c ident_file=...\n",
	       me->settings.postgres.port);
	pg_stop_plan(me->settings.supervision.shutdown_budget_ms, &stop);
	printf("postgres stop: CHECKPOINT (at most %.1fs), SIGINT (fast, %.1fs), SIGQUIT (immediate, %.1fs), "
	       "then SIGKILL\n", stop.checkpoint_ms / 1000.0, stop.fast_ms / 1000.0, stop.immediate_ms / 1000.0);
	printf("generated pg_hba (pg_hba.supervisor.conf):\n%s", hba);
	printf("generated settings (supervisor.conf):\n%s", settings);
}

/* The firewall exactly as it will be applied; `nft -f` accepts this text. */
static void print_firewall_plan(const struct conf *c)
{
	struct fw_model *m = fw_model_build(c);
	char *text = fw_model_nft(m, false);
	char hash[24];

	fw_model_hash(m, hash);
	printf("firewall: table inet %s, %zu rules, %zu set elements, rules hash %s "
	       "(sha256 of the text below)\n%s", m->table, fw_model_n_rules(m), fw_model_n_elems(m),
	       hash, text);
	free(text);
	fw_model_free(m);
}

int cmd_check_config(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ 0 },
	};
	const char *path = conf_default_path(), *node = NULL;
	struct conf *c = NULL;
	bool matches = false;
	struct conf_diag warnings = { 0 };
	int opt, r;

	while ((opt = getopt_long(argc, argv, "c:n:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': node = optarg; break;
		default:
			cli_command_usage(cmd, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	r = cli_load_conf(path, node, &c);
	if (r)
		return r;
	/* Every check before the verdict: one verdict, never "OK" and an error. */
	r = check_private_key(c, &matches);
	if (r) {
		conf_free(c);
		return r;
	}
	/* Valid but fragile: said, like a missing key, without failing the check. */
	conf_warnings(c, &warnings);
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "warning: %s\n", warnings.lines[i]);
	conf_diag_clear(&warnings);
	printf("configuration OK\n");
	conf_print_plan(c, stdout);
	print_firewall_plan(c);
	print_postgres_plan(c);
	if (matches)
		printf("private key matches the public key\n");
	conf_free(c);
	return 0;
}
