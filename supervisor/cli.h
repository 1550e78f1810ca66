/* SPDX-License-Identifier: MIT */
/*
 * Private to supervisor/: the command table and the commands. Other
 * modules use supervisor/supervisor.h.
 */
#ifndef SUP_CLI_H
#define SUP_CLI_H

#include <jansson.h>
#include <stdio.h>

#include "conf/conf.h"
#include "supervisor/supervisor.h"

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

/*
 * cli_load_conf() - load the cluster file for a command, printing every
 * error to stderr. Return: 0, or EXIT_CONFIG.
 */
int cli_load_conf(const char *path, const char *node, struct conf **out);

/* print_backup_table() - one row per backup (ctl backups, backup list). */
void print_backup_table(const json_t *backups);

cli_command_fn cmd_cluster, cmd_backup, cmd_restore, cmd_run, cmd_check_config, cmd_ctl, cmd_genkey, cmd_pubkey, cmd_version;

#endif
