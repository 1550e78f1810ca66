/* SPDX-License-Identifier: MIT */
/*
 * The supervisor binary: command-line entry points. main() only calls
 * supervisor_main(); everything else lives in the core library so tests
 * link the same code the binary runs.
 */
#ifndef SUP_SUPERVISOR_H
#define SUP_SUPERVISOR_H

/**
 * supervisor_main() - dispatch a command line ("supervisor COMMAND ...").
 * @argc: as main().
 * @argv: as main().
 *
 * Return: the process exit status (0, 1, EXIT_USAGE, EXIT_CONFIG, ...).
 */
int supervisor_main(int argc, char **argv);

#endif
