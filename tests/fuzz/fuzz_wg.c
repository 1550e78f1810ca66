// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the WireGuard wire parsers: the same bytes go to
 * the genetlink dump parser and, as text, to the UAPI reply parser. Any
 * input must give a device or an error, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "overlay/overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device d = { 0 };
	/* Netlink messages are 4-byte aligned in the socket buffer. */
	uint32_t *aligned = xmalloc(size + 4);
	char *text = xmalloc(size + 1);

	memcpy(aligned, data, size);
	(void)wg_nl_parse_dump(aligned, size, 0x1d, &d);
	wg_device_clear(&d);
	memcpy(text, data, size);
	text[size] = '\0';
	(void)wg_uapi_parse_get(text, &d);
	wg_device_clear(&d);
	free(text);
	free(aligned);
	return 0;
}
