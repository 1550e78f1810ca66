/* SPDX-License-Identifier: MIT */
/*
 * The command line: the command table and the commands, one file each
 * (cmd_*.c). It starts the daemon through supervisor/supervisor.h and
 * talks to a running one over the control protocol defined there; no
 * other module depends on cli/.
 */
#ifndef SUP_CLI_H
#define SUP_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "conf/conf.h"
#include "lib/common.h"

/**
 * cli_main() - dispatch a command line ("supervisor COMMAND ...").
 * @argc: as main().
 * @argv: as main().
 *
 * Return: the process exit status (0, 1, EXIT_USAGE, EXIT_CONFIG, ...).
 */
int cli_main(int argc, char **argv);

struct cli_command;
typedef int cli_command_fn(const struct cli_command *cmd, int argc, char **argv);

struct cli_command {
	const char *name;
	cli_command_fn *fn;
	const char *usage;
	const char *summary;
	const char *help; /* extra lines for `COMMAND --help`, or NULL */
};

const struct cli_command *cli_find(const char *name);
void cli_command_usage(const struct cli_command *cmd, FILE *f);

/**
 * cli_load_conf() - load the cluster file for a command, printing every
 * error to stderr.
 * @path: the cluster file.
 * @node: this node's name (NULL: conf_default_node_name()).
 * @out: receives the configuration; caller frees with conf_free().
 *
 * Return: 0, or EXIT_CONFIG.
 */
int cli_load_conf(const char *path, const char *node, struct conf **out);

/* print_backup_table() - one row per backup (ctl backups, backup list). */
void print_backup_table(const json_t *backups);

cli_command_fn cmd_cluster, cmd_backup, cmd_restore, cmd_run, cmd_check_config, cmd_ctl, cmd_genkey, cmd_pubkey, cmd_version;

#endif
