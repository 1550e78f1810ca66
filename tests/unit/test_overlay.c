// SPDX-License-Identifier: MIT
/*
 * overlay/: the two backends' pure parts. The UAPI text is wireguard-go's
 * reply format; the genetlink messages are built here the way the kernel
 * lays out a WG_CMD_GET_DEVICE dump (wireguard.h, netlink.c), including a
 * peer whose allowed IPs continue in the next message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/common.h"
#include "lib/mem.h"
#include "lib/wgkey.h"
#include "overlay/overlay_internal.h"

#define FAMILY 0x1d

static const char reply_ok[] =
	"private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n"
	"listen_port=51820\n"
	"public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
	"preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
	"protocol_version=1\n"
	"endpoint=192.0.2.11:43211\n"
	"last_handshake_time_sec=1795312000\n"
	"last_handshake_time_nsec=250000000\n"
	"tx_bytes=38333\n"
	"rx_bytes=2224\n"
	"persistent_keepalive_interval=0\n"
	"allowed_ip=10.88.0.11/32\n"
	"allowed_ip=fd00::11/128\n"
	"public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n"
	"endpoint=[2001:db8::1]:51820\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.88.0.0/24\n"
	"errno=0\n"
	"\n";

static void test_uapi_parse_get(void **state)
{
	struct wg_device d = { 0 };
	char ep[80];

	(void)state;
	assert_int_equal(wg_uapi_parse_get(reply_ok, &d), 0);
	assert_true(d.has_private_key);
	assert_int_equal(d.private_key[0], 0xe8);
	assert_int_equal(d.private_key[31], 0x7a);
	assert_int_equal(d.listen_port, 51820);
	assert_int_equal(d.n_peers, 2);
	assert_int_equal(d.peers[0].public_key[0], 0xb8);
	assert_string_equal(wg_endpoint_str(&d.peers[0].endpoint, ep, sizeof(ep)), "192.0.2.11:43211");
	assert_int_equal(d.peers[0].last_handshake_sec, 1795312000);
	assert_int_equal(d.peers[0].last_handshake_nsec, 250000000);
	assert_int_equal(d.peers[0].tx_bytes, 38333);
	assert_int_equal(d.peers[0].rx_bytes, 2224);
	assert_int_equal(d.peers[0].n_allowed, 1); /* the IPv6 prefix is not ours */
	assert_int_equal(d.peers[0].allowed[0].cidr, 32);
	assert_string_equal(wg_endpoint_str(&d.peers[1].endpoint, ep, sizeof(ep)), "[2001:db8::1]:51820");
	assert_int_equal(d.peers[1].last_handshake_sec, 0);
	assert_int_equal(d.peers[1].keepalive, 25);
	assert_int_equal(d.peers[1].allowed[0].cidr, 24);
	wg_device_clear(&d);
}

static void test_uapi_parse_errors(void **state)
{
	static const struct {
		const char *text;
		int want;
	} cases[] = {
		{ "errno=0\n\n", 0 },
		{ "errno=-22\n\n", -22 },
		{ "errno=5\n\n", -5 },
		{ "listen_port=1\n\n", -EPROTO },                    /* no errno line */
		{ "listen_port\nerrno=0\n\n", -EPROTO },             /* no '=' */
		{ "private_key=zz\nerrno=0\n\n", -EPROTO },           /* not hex */
		{ "listen_port=70000\nerrno=0\n\n", -EPROTO },
		{ "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		  "allowed_ip=10.0.0.1/33\nerrno=0\n\n", -EPROTO },
		{ "public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n"
		  "endpoint=nowhere\nerrno=0\n\n", -EPROTO },
		{ "errno=abc\n\n", -EPROTO },
	};
	char big[600];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct wg_device d = { 0 };
		int r = wg_uapi_parse_get(cases[i].text, &d);

		if (r != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, r, cases[i].want);
		wg_device_clear(&d);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct wg_device d = { 0 };

	assert_int_equal(wg_uapi_parse_get(big, &d), -EPROTO);
	wg_device_clear(&d);
}

static void test_uapi_format_set(void **state)
{
	struct wg_device d = { 0 };
	struct wg_peer *p;
	struct in_addr a;
	char *text;

	(void)state;
	d.has_private_key = true;
	memset(d.private_key, 0xab, WG_KEY_LEN);
	d.has_listen_port = true;
	d.listen_port = 51820;
	p = wg_device_add_peer(&d);
	memset(p->public_key, 0x01, WG_KEY_LEN);
	p->flags = WG_PEER_REPLACE_IPS | WG_PEER_UPDATE_ONLY;
	p->has_endpoint = wg_parse_endpoint("192.0.2.1:51820", &p->endpoint);
	p->has_keepalive = true;
	p->keepalive = 25;
	inet_pton(AF_INET, "10.88.0.0", &a);
	wg_peer_add_allowed(p, a, 24);
	p = wg_device_add_peer(&d);
	memset(p->public_key, 0x02, WG_KEY_LEN);
	p->flags = WG_PEER_REMOVE;
	text = wg_uapi_format_set(&d);
	assert_string_equal(text,
		"set=1\n"
		"private_key=abababababababababababababababababababababababababababababababab\n"
		"listen_port=51820\n"
		"public_key=0101010101010101010101010101010101010101010101010101010101010101\n"
		"update_only=true\n"
		"endpoint=192.0.2.1:51820\n"
		"persistent_keepalive_interval=25\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=10.88.0.0/24\n"
		"public_key=0202020202020202020202020202020202020202020202020202020202020202\n"
		"remove=true\n"
		"\n");
	free(text);
	wg_device_clear(&d);
}

/* ---- genetlink ---------------------------------------------------------- */

static struct nlmsghdr *dump_msg(char *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = FAMILY;
	nlh->nlmsg_flags = NLM_F_MULTI | flags;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = WG_GENL_VERSION;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	return nlh;
}

static void put_ip(struct nlmsghdr *nlh, const char *ip, uint8_t cidr)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, 0);
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, sizeof(a), &a);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, n);
}

static void put_key(struct nlmsghdr *nlh, uint16_t type, uint8_t fill)
{
	uint8_t k[WG_KEY_LEN];

	memset(k, fill, sizeof(k));
	mnl_attr_put(nlh, type, sizeof(k), k);
}

/* Two data messages (peer 2 continues in the second) and NLMSG_DONE. */
static size_t build_dump(char *buf)
{
	struct nlmsghdr *m1, *m2, *done;
	struct nlattr *peers, *peer, *ips;
	struct sockaddr_in ep = { .sin_family = AF_INET, .sin_port = htons(40000) };
	int64_t ts[2] = { 1795312000, 500000000 };
	size_t off;

	inet_pton(AF_INET, "192.0.2.11", &ep.sin_addr);
	m1 = dump_msg(buf, 0);
	put_key(m1, WGDEVICE_A_PRIVATE_KEY, 0x11);
	put_key(m1, WGDEVICE_A_PUBLIC_KEY, 0x22);
	mnl_attr_put_u16(m1, WGDEVICE_A_LISTEN_PORT, 51820);
	peers = mnl_attr_nest_start(m1, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(m1, 0);
	put_key(m1, WGPEER_A_PUBLIC_KEY, 0xa1);
	mnl_attr_put(m1, WGPEER_A_ENDPOINT, sizeof(ep), &ep);
	mnl_attr_put_u16(m1, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 0);
	mnl_attr_put(m1, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), ts);
	mnl_attr_put_u64(m1, WGPEER_A_RX_BYTES, 1234);
	mnl_attr_put_u64(m1, WGPEER_A_TX_BYTES, 5678);
	ips = mnl_attr_nest_start(m1, WGPEER_A_ALLOWEDIPS);
	put_ip(m1, "10.88.0.11", 32);
	mnl_attr_nest_end(m1, ips);
	mnl_attr_nest_end(m1, peer);
	peer = mnl_attr_nest_start(m1, 0);
	put_key(m1, WGPEER_A_PUBLIC_KEY, 0xa2);
	ips = mnl_attr_nest_start(m1, WGPEER_A_ALLOWEDIPS);
	put_ip(m1, "10.88.0.12", 32);
	mnl_attr_nest_end(m1, ips);
	mnl_attr_nest_end(m1, peer);
	mnl_attr_nest_end(m1, peers);

	off = MNL_ALIGN(m1->nlmsg_len);
	m2 = dump_msg(buf + off, 0);
	peers = mnl_attr_nest_start(m2, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(m2, 0); /* the same peer again: only key and more IPs */
	put_key(m2, WGPEER_A_PUBLIC_KEY, 0xa2);
	ips = mnl_attr_nest_start(m2, WGPEER_A_ALLOWEDIPS);
	put_ip(m2, "10.99.0.0", 16);
	put_ip(m2, "10.98.0.0", 16);
	mnl_attr_nest_end(m2, ips);
	mnl_attr_nest_end(m2, peer);
	peer = mnl_attr_nest_start(m2, 0);
	put_key(m2, WGPEER_A_PUBLIC_KEY, 0xa3);
	mnl_attr_nest_end(m2, peer);
	mnl_attr_nest_end(m2, peers);

	off += MNL_ALIGN(m2->nlmsg_len);
	done = mnl_nlmsg_put_header(buf + off);
	done->nlmsg_type = NLMSG_DONE;
	done->nlmsg_flags = NLM_F_MULTI;
	*(int *)mnl_nlmsg_put_extra_header(done, sizeof(int)) = 0;
	return off + MNL_ALIGN(done->nlmsg_len);
}

static void test_netlink_dump_coalesces(void **state)
{
	char *buf = xcalloc(1, 16384);
	size_t len = build_dump(buf);
	size_t first = MNL_ALIGN(((struct nlmsghdr *)buf)->nlmsg_len);
	struct wg_device d = { 0 };
	char ep[80];

	(void)state;
	/* As two recv() calls: the first message, then the rest. */
	assert_int_equal(wg_nl_parse_dump(buf, first, FAMILY, &d), 0);
	assert_int_equal(wg_nl_parse_dump(buf + first, len - first, FAMILY, &d), 1);
	assert_true(d.has_private_key);
	assert_int_equal(d.private_key[0], 0x11);
	assert_int_equal(d.public_key[0], 0x22);
	assert_int_equal(d.listen_port, 51820);
	assert_int_equal(d.n_peers, 3);
	assert_int_equal(d.peers[0].public_key[0], 0xa1);
	assert_string_equal(wg_endpoint_str(&d.peers[0].endpoint, ep, sizeof(ep)), "192.0.2.11:40000");
	assert_int_equal(d.peers[0].last_handshake_sec, 1795312000);
	assert_int_equal(d.peers[0].last_handshake_nsec, 500000000);
	assert_int_equal(d.peers[0].rx_bytes, 1234);
	assert_int_equal(d.peers[0].tx_bytes, 5678);
	assert_int_equal(d.peers[1].public_key[0], 0xa2);
	assert_int_equal(d.peers[1].n_allowed, 3); /* 1 + 2 from the continuation */
	assert_int_equal(d.peers[1].allowed[2].cidr, 16);
	assert_int_equal(d.peers[2].public_key[0], 0xa3);
	assert_int_equal(d.peers[2].n_allowed, 0);
	wg_device_clear(&d);
	free(buf);
}

static void test_netlink_dump_rejects(void **state)
{
	char *buf = xcalloc(1, 16384);
	struct wg_device d = { 0 };
	struct nlmsghdr *m;
	struct nlattr *peers, *peer;
	size_t len;

	(void)state;
	/* interrupted dump: the caller must retry */
	m = dump_msg(buf, NLM_F_DUMP_INTR);
	assert_int_equal(wg_nl_parse_dump(buf, m->nlmsg_len, FAMILY, &d), -EINTR);
	wg_device_clear(&d);

	/* a peer without a public key */
	m = dump_msg(buf, 0);
	peers = mnl_attr_nest_start(m, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(m, 0);
	mnl_attr_put_u64(m, WGPEER_A_RX_BYTES, 1);
	mnl_attr_nest_end(m, peer);
	mnl_attr_nest_end(m, peers);
	assert_true(wg_nl_parse_dump(buf, m->nlmsg_len, FAMILY, &d) < 0);
	wg_device_clear(&d);

	/* found by fuzz_wg: a length of 2^31 or more must not pass as negative */
	m = dump_msg(buf, 0);
	m->nlmsg_len = 0x80000010;
	assert_int_equal(wg_nl_parse_dump(buf, 64, FAMILY, &d), -EPROTO);
	wg_device_clear(&d);

	/* found by fuzz_wg: an NLMSG_ERROR carrying INT_MIN must not overflow */
	m = mnl_nlmsg_put_header(buf);
	m->nlmsg_type = NLMSG_ERROR;
	{
		struct nlmsgerr *e = mnl_nlmsg_put_extra_header(m, sizeof(*e));

		e->error = INT32_MIN;
	}
	assert_int_equal(wg_nl_parse_dump(buf, m->nlmsg_len, FAMILY, &d), -EPROTO);
	wg_device_clear(&d);

	/* a truncated message is an error, never a read past the end */
	len = build_dump(buf);
	assert_true(wg_nl_parse_dump(buf, 37, FAMILY, &d) < 0);
	wg_device_clear(&d);
	/* another family's message is ignored */
	((struct nlmsghdr *)buf)->nlmsg_type = FAMILY + 1;
	assert_int_equal(wg_nl_parse_dump(buf, len, FAMILY, &d), 1);
	assert_int_equal(d.n_peers, 1 + 1); /* only the second message's peers */
	wg_device_clear(&d);
	free(buf);
}

static int count_attr(const struct nlattr *a, void *data)
{
	uint32_t *flags = data;
	const struct nlattr *peer, *x;

	if (mnl_attr_get_type(a) != WGDEVICE_A_PEERS)
		return MNL_CB_OK;
	mnl_attr_for_each_nested(peer, a)
		mnl_attr_for_each_nested(x, peer)
			if (mnl_attr_get_type(x) == WGPEER_A_FLAGS)
				*flags |= mnl_attr_get_u32(x);
	return MNL_CB_OK;
}

static void test_netlink_build_set(void **state)
{
	char *buf = xcalloc(1, 65536);
	struct wg_device d = { 0 }, back = { 0 };
	struct wg_peer *p;
	struct nlmsghdr *nlh;
	uint32_t flags = 0;
	struct in_addr a;

	(void)state;
	p = wg_device_add_peer(&d);
	memset(p->public_key, 0x05, WG_KEY_LEN);
	p->flags = WG_PEER_REPLACE_IPS;
	inet_pton(AF_INET, "10.88.0.13", &a);
	wg_peer_add_allowed(p, a, 32);
	p = wg_device_add_peer(&d);
	memset(p->public_key, 0x06, WG_KEY_LEN);
	p->flags = WG_PEER_REMOVE;
	struct wg_nl_cursor cur = { 0 };

	assert_int_equal(wg_nl_build_set(buf, 65536, FAMILY, 7, "wg0", &d, &cur, &nlh), 0);
	assert_int_equal(nlh->nlmsg_type, FAMILY);
	assert_int_equal(nlh->nlmsg_seq, 7);
	assert_true(nlh->nlmsg_flags & NLM_F_ACK);
	assert_int_equal(((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd, WG_CMD_SET_DEVICE);
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), count_attr, &flags);
	assert_int_equal(flags, WGPEER_F_REPLACE_ALLOWEDIPS | WGPEER_F_REMOVE_ME);
	/* what we send parses back (as a dump would carry it) */
	nlh->nlmsg_flags = NLM_F_MULTI;
	assert_int_equal(wg_nl_parse_dump(buf, nlh->nlmsg_len, FAMILY, &back), 0);
	assert_int_equal(back.n_peers, 2);
	assert_int_equal(back.peers[0].n_allowed, 1);
	assert_int_equal(back.peers[0].allowed[0].addr.s_addr, a.s_addr);
	wg_device_clear(&d);
	wg_device_clear(&back);
	free(buf);
}


/* ---- large sets: split across messages, never past the buffer ------------ */

#define SET_BUF 65536
#define GUARD 4096

/* What one SET_DEVICE message says, read back by hand (not by the dump parser). */
struct part {
	uint8_t key[WG_KEY_LEN];
	uint32_t flags;
	bool endpoint, keepalive;
	size_t n_ips;
	struct in_addr ips[64];
};

struct msg_view {
	bool private_key, listen_port;
	size_t n_parts;
	struct part *parts;
	size_t n_ips_total;
};

static void view_peer(const struct nlattr *peer, struct msg_view *v)
{
	const struct nlattr *x, *ip, *y;
	struct part *p;

	v->parts = xreallocarray(v->parts, v->n_parts + 1, sizeof(*v->parts));
	p = &v->parts[v->n_parts++];
	memset(p, 0, sizeof(*p));
	mnl_attr_for_each_nested(x, peer) {
		switch (mnl_attr_get_type(x)) {
		case WGPEER_A_PUBLIC_KEY:
			assert_int_equal(mnl_attr_get_payload_len(x), WG_KEY_LEN);
			memcpy(p->key, mnl_attr_get_payload(x), WG_KEY_LEN);
			break;
		case WGPEER_A_FLAGS:
			p->flags = mnl_attr_get_u32(x);
			break;
		case WGPEER_A_ENDPOINT:
			p->endpoint = true;
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			p->keepalive = true;
			break;
		case WGPEER_A_ALLOWEDIPS:
			mnl_attr_for_each_nested(ip, x) {
				mnl_attr_for_each_nested(y, ip)
					if (mnl_attr_get_type(y) == WGALLOWEDIP_A_IPADDR && p->n_ips < 64)
						memcpy(&p->ips[p->n_ips], mnl_attr_get_payload(y), 4);
				p->n_ips++;
				v->n_ips_total++;
			}
			break;
		default:
			fail_msg("unexpected peer attribute %u", mnl_attr_get_type(x));
		}
	}
}

static int view_attr(const struct nlattr *a, void *data)
{
	struct msg_view *v = data;
	const struct nlattr *peer;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_PRIVATE_KEY:
		v->private_key = true;
		break;
	case WGDEVICE_A_LISTEN_PORT:
		v->listen_port = true;
		break;
	case WGDEVICE_A_PEERS:
		mnl_attr_for_each_nested(peer, a)
			view_peer(peer, v);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

/* A hub's device: @n spokes, 10.x.y.z/32 each, every fifth with @n_ips more IPs. */
static void big_device(struct wg_device *d, size_t n, size_t n_ips)
{
	memset(d, 0, sizeof(*d));
	d->has_private_key = true;
	memset(d->private_key, 0x77, WG_KEY_LEN);
	d->has_listen_port = true;
	d->listen_port = 51820;
	for (size_t i = 0; i < n; i++) {
		struct wg_peer *p = wg_device_add_peer(d);
		struct in_addr a = { htonl(0x0a000000u | (uint32_t)(i + 1)) };

		memcpy(p->public_key, &i, sizeof(i));
		p->public_key[WG_KEY_LEN - 1] = 0xee;
		p->flags = i % 7 == 3 ? WG_PEER_REMOVE :
			   i % 7 == 4 ? WG_PEER_REPLACE_IPS | WG_PEER_UPDATE_ONLY : WG_PEER_REPLACE_IPS;
		if (i % 3 == 0) {
			struct sockaddr_in *ep = (struct sockaddr_in *)&p->endpoint;

			ep->sin_family = AF_INET;
			ep->sin_port = htons(51820);
			p->has_endpoint = true;
			p->has_keepalive = true;
			p->keepalive = 25;
		}
		if (p->flags & WG_PEER_REMOVE)
			continue;
		wg_peer_add_allowed(p, a, 32);
		for (size_t k = 0; i % 5 == 0 && k < n_ips; k++)
			wg_peer_add_allowed(p, (struct in_addr){ htonl(0x0b000000u | (uint32_t)(i << 8 | k)) }, 32);
	}
}

/*
 * Build every message of @d in buffers of @size (a guard zone after each),
 * check each stays inside, reassemble the parts and compare with @d.
 * Return: the number of messages.
 */
static size_t split_and_check(const struct wg_device *d, size_t size)
{
	char *buf = xmalloc(size + GUARD);
	struct wg_nl_cursor cur = { 0 };
	struct nlmsghdr *nlh;
	size_t msgs = 0, peer = 0, ip = 0;
	bool pending = false; /* the last peer of the message before was cut */
	int more;

	do {
		struct msg_view v = { 0 };

		memset(buf, 0xa5, size + GUARD);
		more = wg_nl_build_set(buf, size, FAMILY, 100 + (unsigned)msgs, "wg0", d, &cur, &nlh);
		assert_true(more == 0 || more == 1);
		assert_ptr_equal(nlh, buf);
		assert_true(nlh->nlmsg_len <= size);
		for (size_t i = size; i < size + GUARD; i++)
			if ((unsigned char)buf[i] != 0xa5)
				fail_msg("wrote past the buffer: byte %zu of %zu (message %zu)", i, size, msgs);
		assert_int_equal(nlh->nlmsg_seq, 100 + msgs);
		assert_int_equal(((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd, WG_CMD_SET_DEVICE);
		/* the attributes nest and end where the message does */
		assert_int_equal(mnl_attr_parse(nlh, sizeof(struct genlmsghdr), view_attr, &v), MNL_CB_OK);
		/* the device's own attributes in the first message only */
		assert_int_equal(v.private_key, msgs == 0);
		assert_int_equal(v.listen_port, msgs == 0);
		assert_true(v.n_parts > 0 || msgs == 0);
		for (size_t k = 0; k < v.n_parts; k++) {
			const struct part *pt = &v.parts[k];
			bool continued = k == 0 && pending;
			const struct wg_peer *want;

			if (!continued)
				assert_true(peer < d->n_peers);
			want = &d->peers[peer];
			assert_memory_equal(pt->key, want->public_key, WG_KEY_LEN);
			/* REPLACE_ALLOWEDIPS only on a peer's first part; UPDATE_ONLY on all */
			assert_int_equal(!!(pt->flags & WGPEER_F_REPLACE_ALLOWEDIPS),
					 !continued && (want->flags & WG_PEER_REPLACE_IPS));
			assert_int_equal(!!(pt->flags & WGPEER_F_UPDATE_ONLY), !!(want->flags & WG_PEER_UPDATE_ONLY));
			assert_int_equal(!!(pt->flags & WGPEER_F_REMOVE_ME), !!(want->flags & WG_PEER_REMOVE));
			assert_int_equal(pt->endpoint, !continued && want->has_endpoint && !(want->flags & WG_PEER_REMOVE));
			assert_int_equal(pt->keepalive, !continued && want->has_keepalive && !(want->flags & WG_PEER_REMOVE));
			if (continued)
				assert_true(pt->n_ips > 0);
			for (size_t j = 0; j < pt->n_ips && j < 64; j++)
				assert_int_equal(pt->ips[j].s_addr, want->allowed[ip + j].addr.s_addr);
			ip += pt->n_ips;
			assert_true(ip <= want->n_allowed);
			/* the last part of a message may be cut; then the next continues it */
			pending = false;
			if (ip == want->n_allowed || k + 1 < v.n_parts) {
				assert_int_equal(ip, want->n_allowed);
				peer++;
				ip = 0;
			} else {
				pending = true;
			}
		}
		free(v.parts);
		msgs++;
		assert_true(msgs < 100000);
	} while (more);
	assert_int_equal(peer, d->n_peers);
	free(buf);
	return msgs;
}

static void test_netlink_build_set_splits(void **state)
{
	static const size_t counts[] = { 0, 1, 250, 1000, 5000 };
	struct wg_device d;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		size_t msgs;

		big_device(&d, counts[i], 0);
		msgs = split_and_check(&d, SET_BUF);
		print_message("# %zu peers: %zu SET_DEVICE message(s) of at most %d bytes\n", counts[i], msgs,
			      SET_BUF);
		/* ~80 bytes a peer: 1000 need two messages, 5000 seven */
		assert_true(msgs >= 1 + counts[i] * 64 / SET_BUF);
		assert_true(msgs <= 1 + counts[i] * 100 / SET_BUF + 1);
		wg_device_clear(&d);
	}
}

/* Every cut point: small buffers, peers with many allowed IPs split between messages. */
static void test_netlink_build_set_cuts(void **state)
{
	struct wg_device d;
	char buf[64];
	struct wg_nl_cursor cur = { 0 };
	struct nlmsghdr *nlh;

	(void)state;
	big_device(&d, 40, 60);
	/* from the smallest that holds a peer's first part (key, flags, endpoint, keepalive) */
	for (size_t size = 120; size < 1200; size += 3)
		split_and_check(&d, size);
	/* one peer with 5000 allowed IPs: its IPs continue over several 64 KiB messages */
	wg_device_clear(&d);
	big_device(&d, 1, 5000);
	assert_true(split_and_check(&d, SET_BUF) >= 3);
	/* a buffer that cannot hold one peer's key: an error, not an endless loop */
	assert_int_equal(wg_nl_build_set(buf, sizeof(buf), FAMILY, 1, "wg0", &d, &cur, &nlh), -EMSGSIZE);
	assert_null(nlh);
	assert_int_equal(wg_nl_build_set(buf, 8, FAMILY, 1, "wg0", &d, &cur, &nlh), -EMSGSIZE);
	wg_device_clear(&d);
}

/*
 * A dump of 1000 and 5000 peers the way the kernel sends it: many reads of
 * up to 32 KiB, a peer's allowed IPs continued in the next message, then
 * NLMSG_DONE; every peer comes back once, with all its IPs.
 */
static void test_netlink_large_dump(void **state)
{
	static const size_t counts[] = { 1000, 5000 };
	char *buf = xmalloc(32768);

	(void)state;
	for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
		struct wg_device d, back = { 0 };
		struct wg_nl_cursor cur = { 0 };
		struct nlmsghdr *nlh;
		size_t reads = 0, want_ips = 0, got_ips = 0;
		int more, r;

		big_device(&d, counts[c], 20);
		for (size_t i = 0; i < d.n_peers; i++)
			d.peers[i].flags = 0; /* a dump has no flags: every peer with its IPs */
		do {
			more = wg_nl_build_set(buf, 32768, FAMILY, 9, "wg0", &d, &cur, &nlh);
			assert_true(more >= 0);
			nlh->nlmsg_flags = NLM_F_MULTI;
			assert_int_equal(wg_nl_parse_dump(buf, nlh->nlmsg_len, FAMILY, &back), 0);
			reads++;
		} while (more);
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = NLMSG_DONE;
		nlh->nlmsg_flags = NLM_F_MULTI;
		*(int *)mnl_nlmsg_put_extra_header(nlh, sizeof(int)) = 0;
		r = wg_nl_parse_dump(buf, nlh->nlmsg_len, FAMILY, &back);
		assert_int_equal(r, 1);
		print_message("# a dump of %zu peers in %zu reads of at most 32 KiB\n", counts[c], reads);
		assert_true(reads > 1);
		assert_int_equal(back.n_peers, d.n_peers);
		assert_true(back.has_private_key); /* the first message carried the device */
		for (size_t i = 0; i < d.n_peers; i++) {
			assert_memory_equal(back.peers[i].public_key, d.peers[i].public_key, WG_KEY_LEN);
			assert_int_equal(back.peers[i].n_allowed, d.peers[i].n_allowed);
			for (size_t k = 0; k < d.peers[i].n_allowed; k++)
				assert_int_equal(back.peers[i].allowed[k].addr.s_addr, d.peers[i].allowed[k].addr.s_addr);
			want_ips += d.peers[i].n_allowed;
			got_ips += back.peers[i].n_allowed;
		}
		assert_int_equal(got_ips, want_ips);
		wg_device_clear(&d);
		wg_device_clear(&back);
	}
	free(buf);
}

/* The split-horizon block: every node, the primary's alias, other lines kept. */
static void test_hosts_block_and_merge(void **state)
{
	struct conf_diag diag = { 0 };
	struct conf *c = NULL;
	char *block, *merged, *again, *moved, *path;
	FILE *f;

	(void)state;
	assert_int_equal(conf_load_file(getenv("EXAMPLE_CONF"), "spoke-b", &c, &diag), 0);
	block = hosts_block(c);
	assert_non_null(strstr(block, "10.88.0.1       hub.vpn\n"));
	assert_non_null(strstr(block, "10.88.0.11      spoke-a.vpn pg-primary.vpn\n"));
	assert_non_null(strstr(block, "10.88.0.13      spoke-c.vpn\n"));
	assert_null(strstr(block, "spoke-b.vpn pg-primary"));
	/* appended to a file without a final newline, on its own line */
	merged = hosts_merge("127.0.0.1 localhost", block);
	assert_int_equal(strncmp(merged, "127.0.0.1 localhost\n# BEGIN", 27), 0);
	/* applying again changes nothing */
	again = hosts_merge(merged, block);
	assert_string_equal(again, merged);
	/* an old block is replaced where it is; lines after it stay */
	moved = hosts_merge("a\n# BEGIN overlay supervisor (managed: edits inside are replaced)\n1.2.3.4 x.vpn\n"
			    "# END overlay supervisor\nb\n", block);
	assert_int_equal(strncmp(moved, "a\n# BEGIN", 9), 0);
	assert_null(strstr(moved, "x.vpn"));
	assert_non_null(strstr(moved, "# END overlay supervisor\nb\n"));
	/* hosts_apply on a real file: written once, then left alone */
	path = strdup("/tmp/test-hosts-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fputs("127.0.0.1 localhost\n", f);
	fclose(f);
	conf_free(c);
	c = NULL;
	{
		char *text = NULL, line[512];
		size_t n = 0;
		FILE *in = fopen(getenv("EXAMPLE_CONF"), "r");
		FILE *out = open_memstream(&text, &n);

		while (fgets(line, sizeof(line), in))
			fputs(line, out);
		fprintf(out, "names = { hosts_file = \"%s\"; domain = \"overlay\"; };\n", path);
		fclose(in);
		fclose(out);
		assert_int_equal(conf_load_string(text, "t.conf", "spoke-b", &c, &diag), 0);
		free(text);
	}
	assert_int_equal(hosts_apply(c), 0);
	assert_int_equal(hosts_apply(c), 0);
	{
		char buf[2048] = "";
		FILE *in = fopen(path, "r");
		size_t n = fread(buf, 1, sizeof(buf) - 1, in);

		fclose(in);
		buf[n] = '\0';
		assert_int_equal(strncmp(buf, "127.0.0.1 localhost\n# BEGIN", 27), 0);
		assert_non_null(strstr(buf, "spoke-a.overlay pg-primary.overlay\n"));
		/* one block, after two applies */
		assert_null(strstr(strstr(buf, "# BEGIN") + 1, "# BEGIN"));
	}
	unlink(path);
	free(path);
	free(block);
	free(merged);
	free(again);
	free(moved);
	conf_free(c);
}

/* wireguard-go's reason for no wg0 (a container without /dev/net/tun or NET_ADMIN), as it prints it */
static void test_wggo_error_message(void **state)
{
	(void)state;
	assert_string_equal(wggo_error_message("ERROR: (wg0) 2026/12/01 04:49:01 Failed to create TUN device: "
					       "operation not permitted"),
			    "Failed to create TUN device: operation not permitted");
	assert_string_equal(wggo_error_message("ERROR: (wg0) 2026/12/01 04:49:01.123456 UAPI listen error: x"),
			    "UAPI listen error: x");
	assert_string_equal(wggo_error_message("ERROR: Failed to create TUN device: no such file or directory"),
			    "Failed to create TUN device: no such file or directory");
	assert_string_equal(wggo_error_message("ERROR: (wg0) 42 peers"), "42 peers");
	assert_null(wggo_error_message("INFO: (wg0) 2026/12/01 04:49:01 Device started"));
	assert_null(wggo_error_message("┌──────────────────────────────┐"));
	assert_null(wggo_error_message("ERROR: (wg0) 2026/12/01 04:49:01 "));
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uapi_parse_get),
		cmocka_unit_test(test_uapi_parse_errors),
		cmocka_unit_test(test_uapi_format_set),
		cmocka_unit_test(test_netlink_dump_coalesces),
		cmocka_unit_test(test_netlink_dump_rejects),
		cmocka_unit_test(test_netlink_build_set),
		cmocka_unit_test(test_netlink_build_set_splits),
		cmocka_unit_test(test_netlink_build_set_cuts),
		cmocka_unit_test(test_netlink_large_dump),
		cmocka_unit_test(test_hosts_block_and_merge),
		cmocka_unit_test(test_wggo_error_message),
	};

	return cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
}
