// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the cluster-file loader: any bytes must give
 * either a valid struct conf or a list of errors, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "lib/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xmalloc(size + 1);
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;

	/* @include would read files of this machine: not what is fuzzed here. */
	memcpy(text, data, size);
	text[size] = '\0';
	if (strstr(text, "@include")) {
		free(text);
		return 0;
	}
	if (conf_load_string(text, "fuzz", "spoke-a", &c, &diag) == 0) {
		static FILE *sink;

		/* The plan printer walks every field: exercise it, quietly. */
		if (!sink)
			sink = fopen("/dev/null", "w");
		conf_print_plan(c, sink);
	}
	conf_free(c);
	conf_diag_clear(&diag);
	free(text);
	return 0;
}
