// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the WireGuard wire code: the same bytes go to the
 * genetlink dump parser and, as text, to the UAPI reply parser. Any input
 * must give a device or an error, never a crash or a leak. A device the
 * dump parser accepted is then written back with the SET_DEVICE builder
 * into buffers of a size the input picks (a guard zone after each): no
 * byte past the buffer, and the messages read back to the same peers and
 * allowed IPs, however they were cut.
 */
#include <libmnl/libmnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/wgkey.h"
#include "overlay/overlay_internal.h"

#define GUARD 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct wg_device *d, size_t bufsize, uint32_t flags)
{
	char *buf = xmalloc(bufsize + GUARD);
	struct wg_nl_cursor cur = { 0 };
	struct wg_device back = { 0 };
	struct nlmsghdr *nlh;
	int more;

	do {
		memset(buf, 0xa5, bufsize + GUARD);
		more = wg_nl_build_set(buf, bufsize, 0x1d, 1, "wg0", d, &cur, &nlh);
		if (more < 0) {
			/* only a buffer too small for one peer's first part may refuse */
			if (bufsize >= 256)
				abort();
			goto out;
		}
		if (nlh->nlmsg_len > bufsize)
			abort();
		for (size_t i = bufsize; i < bufsize + GUARD; i++)
			if ((unsigned char)buf[i] != 0xa5)
				abort();
		nlh->nlmsg_flags = NLM_F_MULTI;
		if (wg_nl_parse_dump(buf, nlh->nlmsg_len, 0x1d, &back) != 0)
			abort();
	} while (more);
	if (back.n_peers != d->n_peers)
		abort();
	for (size_t i = 0; i < d->n_peers; i++) {
		const struct wg_peer *a = &d->peers[i], *b = &back.peers[i];

		if (memcmp(a->public_key, b->public_key, WG_KEY_LEN) || a->n_allowed != b->n_allowed)
			abort();
		for (size_t k = 0; k < a->n_allowed; k++)
			if (a->allowed[k].addr.s_addr != b->allowed[k].addr.s_addr ||
			    a->allowed[k].cidr != b->allowed[k].cidr)
				abort();
	}
out:
	(void)flags;
	wg_device_clear(&back);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device d = { 0 };
	/* Netlink messages are 4-byte aligned in the socket buffer. */
	uint32_t *aligned = xmalloc(size + 4);
	char *text = xmalloc(size + 1);

	memcpy(aligned, data, size);
	if (wg_nl_parse_dump(aligned, size, 0x1d, &d) >= 0 && size >= 2) {
		/* the flags a reconcile sets, none of which drops allowed IPs */
		uint32_t flags = data[0] & 1 ? WG_PEER_REPLACE_IPS : 0;

		flags |= data[0] & 2 ? WG_PEER_UPDATE_ONLY : 0;
		for (size_t i = 0; i < d.n_peers; i++)
			d.peers[i].flags = flags;
		roundtrip(&d, 120 + ((size_t)data[0] << 8 | data[1]) % 4096, flags);
	}
	wg_device_clear(&d);
	memcpy(text, data, size);
	text[size] = '\0';
	(void)wg_uapi_parse_get(text, &d);
	wg_device_clear(&d);
	free(text);
	free(aligned);
	return 0;
}
