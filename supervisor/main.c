// SPDX-License-Identifier: MIT
/* The one main(): everything else is in the core library. */
#include "supervisor/supervisor.h"

int main(int argc, char **argv)
{
	return supervisor_main(argc, argv);
}
