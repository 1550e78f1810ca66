// SPDX-License-Identifier: MIT
/*
 * Command table and help. Adding a command is one row here plus its
 * function; each command parses its own options with getopt_long().
 */
#include "cli/cli.h"
#include "lib/common.h"

#include <stdio.h>
#include <string.h>

static const struct cli_command commands[] = {
	{ "run", cmd_run, "[-c FILE] [-n NODE] [-v]",
	  "run the node: wg0, firewall, PostgreSQL, backups, status (PID 1 on spokes)", NULL },
	{ "check-config", cmd_check_config, "[-c FILE] [-n NODE]",
	  "validate the cluster file and print this node's plan", NULL },
	{ "ctl", cmd_ctl, "[-s SOCKET] COMMAND [--json] [--no-wait]",
	  "ask the running daemon: status, replication, tunnel, firewall, backups, backup-now, reinit, reload, ha, switchover, failover",
	  "  status        health, children and every reason (exit 0 ok, 1 degraded, 2 critical, 3 unknown)\n"
	  "  replication   each spoke's Postgres and replication row; a clone's progress\n"
	  "  tunnel        WireGuard peers: state, handshake age, endpoint, bytes\n"
	  "  firewall      our nftables table: applied, repairs, drops\n"
	  "  backups       backups and their verdicts; backup-now starts a run\n"
	  "  reinit        on a replica: stop Postgres, move its data directory aside (kept, never\n"
	  "                deleted), clone again from the upstream; follows the clone until it\n"
	  "                streams (--no-wait: return at once). Refused on the primary\n"
	  "  reload        re-read the cluster file (a bad one keeps the running configuration)\n"
	  "  ha            high availability: mode, leader, epoch, lease, members, candidates, history\n"
	  "  switchover [--to NODE] [--dry-run]\n"
	  "                hand the primary role to NODE (default: the most advanced eligible\n"
	  "                candidate) with no committed transaction lost; follows it to the end\n"
	  "  failover --to NODE [--allow-data-loss]\n"
	  "                the primary is gone (its lease expired): make NODE the primary; says\n"
	  "                what may be lost and refuses a lagging NODE without --allow-data-loss\n" },
	{ "cluster", cmd_cluster, "init|add-spoke|remove-spoke|rotate-key [NAME] [OPTIONS]",
	  "edit the cluster file: the spec's runbooks (hub key, spokes, keys, bundles)",
	  "  init --endpoint HOST:PORT --spokes A,B,C [--ssh-from CIDR]... [--network CIDR] [--hub-key FILE]\n"
	  "           a new cluster file (the first spoke is the primary), the hub's key (kept if it\n"
	  "           exists), the replication password, and a bundle per spoke\n"
	  "  add-spoke NAME [--upstream NAME | --primary] [--pubkey KEY]\n"
	  "           the next free overlay IP; a replica of the primary by default; acl updated\n"
	  "  remove-spoke NAME   out of spokes and every acl entry (not the primary, not an upstream)\n"
	  "  rotate-key NAME [--pubkey KEY]   a new key pair for a spoke or the hub\n"
	  "Options: -c FILE (default: $SUPERVISOR_CONFIG or /etc/supervisor/cluster.conf),\n"
	  "  --bundle DIR (default ./spoke-bundles): DIR/NAME/{spoke.env (0600), docker-compose.yml,\n"
	  "  cluster.conf}. --pubkey: the spoke made its own key (`supervisor genkey`), none is made here.\n"
	  "The file is written only if it loads; the previous one is kept as FILE.bak. Then copy it to\n"
	  "every node and run `supervisor ctl reload` on each: live, no other session drops.\n" },
	{ "backup", cmd_backup, "run|verify|list [-c FILE] [-n NODE] [--no-precheck] [--allow-lag] [--json]",
	  "take a backup now, re-check every backup, or list them (the daemon runs these itself)",
	  "  run      pg_dump (or pgBackRest on the primary) into backup.dir/NODE, verified, then retention\n"
	  "  verify   sweep partial runs and re-check every backup's checksums\n"
	  "  list     the backups, their checksums re-read now; exit 1 if any is not good\n"
	  "Only one run at a time: a second one exits 75 (\"already running\").\n"
	  "A replica further behind its upstream than backup.max_replica_lag takes no backup (exit 69);\n"
	  "--allow-lag takes it anyway (its age is still its data's).\n"
	  "Exit: 0 ok, 1 failed, 69 replica too far behind, 73 not enough free space (--no-precheck\n"
	  "overrides), 75 already running.\n" },
	{ "restore", cmd_restore, "--target CONNINFO [--backup NAME] [-c FILE] [-n NODE]",
	  "restore the newest good pg_dump backup (or NAME) into a fresh cluster",
	  "  CONNINFO: libpq connection string of the target cluster, e.g.\n"
	  "  \"host=/tmp port=5499 user=postgres\". Checksums are checked first; roles, then\n"
	  "  each database (created by the restore; an existing one stops it).\n" },
	{ "genkey", cmd_genkey, "", "print a new WireGuard private key (as `wg genkey`)", NULL },
	{ "pubkey", cmd_pubkey, "", "read a private key on stdin, print its public key (as `wg pubkey`)",
	  NULL },
	{ "version", cmd_version, "", "print the version", NULL },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: supervisor COMMAND [OPTIONS]\n\n"
		   "Runs a WireGuard hub-and-spoke overlay and the PostgreSQL cluster on it.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nThe cluster file defaults to $SUPERVISOR_CONFIG or %s;\n"
		   "the node name to $SUPERVISOR_NODE or the hostname.\n"
		   "`supervisor COMMAND --help` describes one command.\n"
		   "Exit status: 0 ok, 64 usage error, 78 configuration error.\n",
		CONF_DEFAULT_PATH);
}

void cli_command_usage(const struct cli_command *cmd, FILE *f)
{
	fprintf(f, "usage: supervisor %s %s\n  %s\n", cmd->name, cmd->usage, cmd->summary);
	if (cmd->help)
		fputs(cmd->help, f);
}

const struct cli_command *cli_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int cli_load_conf(const char *path, const char *node, struct conf **out)
{
	struct conf_diag diag = { 0 };

	if (conf_load_file(path, node, out, &diag) != 0) {
		conf_diag_print(&diag, stderr);
		fprintf(stderr, "%zu error%s in %s\n", diag.n, diag.n == 1 ? "" : "s", path);
		conf_diag_clear(&diag);
		return EXIT_CONFIG;
	}
	return 0;
}

int cli_main(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2 && (cmd = cli_find(argv[2]))) {
			cli_command_usage(cmd, stdout);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(cli_find("version"), argc - 1, argv + 1);
	cmd = cli_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "supervisor: unknown command \"%s\"\n\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cli_command_usage(cmd, stdout);
			return 0;
		}
	}
	return cmd->fn(cmd, argc - 1, argv + 1);
}
