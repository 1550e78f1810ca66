# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# The command line's own tables, read from the source so a new command
# shows up here without anyone remembering this file. Source it.
#   cli_commands ROOT: every command of cli/cli.c's table (and help, which cli_main() handles)
#   ctl_commands ROOT: every ctl command of cli/cmd_ctl.c's printer table
cli_commands() {
	sed -n '/^static const struct cli_command commands\[\]/,/^};/p' "$1/cli/cli.c" |
		grep -oE '^[[:space:]]*\{ "[a-z][a-z0-9-]*", cmd_' | grep -oE '"[^"]+"' | tr -d '"'
	echo help
}
ctl_commands() {
	grep -oE '^[[:space:]]*\{ "[a-z][a-z0-9-]*", print_[a-z_]+ \}' "$1/cli/cmd_ctl.c" | grep -oE '"[^"]+"' | tr -d '"'
}
