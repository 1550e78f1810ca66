// SPDX-License-Identifier: MIT
/* The one main(): everything else is in the core library. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
