// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for what the status service parses itself (the rest of
 * each request is libmicrohttpd's): the ?max_lag_bytes= value. Any input
 * must be accepted exactly when it is 1 to 19 decimal digits, with the
 * value strtoull gives, and never crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "supervisor/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	uint64_t got = 0;
	size_t len;
	bool digits;

	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s); /* the value as a C string: up to the first NUL */
	digits = len > 0 && len <= 19;
	for (size_t i = 0; i < len && digits; i++)
		digits = s[i] >= '0' && s[i] <= '9';
	if (http_parse_lag_limit(s, &got) != digits)
		abort();
	if (digits && got != strtoull(s, NULL, 10))
		abort();
	free(s);
	return 0;
}
