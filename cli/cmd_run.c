// SPDX-License-Identifier: MIT
/* `supervisor run`: its options, the cluster file, then the daemon (supervisor/). */
#include "cli/cli.h"
#include "supervisor/supervisor.h"

#include <getopt.h>
#include <stdlib.h>

int cmd_run(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct daemon_opts d = { .conf_path = conf_default_path(), .argv0 = argv[0] };
	char host[256];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "c:n:v", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': d.conf_path = optarg; break;
		case 'n': d.node = optarg; break;
		case 'v': d.verbose = true; break;
		default:
			cli_command_usage(cmd, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_command_usage(cmd, stderr);
		return EXIT_USAGE;
	}
	if (!d.node)
		d.node = conf_default_node_name(host, sizeof(host));
	r = cli_load_conf(d.conf_path, d.node, &d.conf);
	if (r)
		return r;
	return daemon_run(&d);
}
