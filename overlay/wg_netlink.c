// SPDX-License-Identifier: MIT
/*
 * The kernel's WireGuard generic netlink family, over libmnl (behavioural
 * reference: wireguard-tools' MIT ipc-linux.h). GET is a dump whose
 * messages may split one peer (the kernel repeats it with only its public
 * key and more allowed IPs): wg_nl_parse_dump() merges those. SET sends
 * every change in as many messages as it takes (64 KiB each, bounds-checked),
 * each acknowledged.
 */
#include "overlay/overlay_internal.h"
#include "lib/mem.h"
#include "lib/wgkey.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NL_BUF (1 << 16)

struct nl_backend {
	struct wg_backend base;
	struct mnl_socket *nl;
	uint16_t family;
	unsigned seq;
};

/* ---- parsing (pure; unit-tested on constructed dumps) ------------------ */

static int parse_allowedip(const struct nlattr *a, struct wg_peer *p)
{
	const struct nlattr *x;
	uint16_t family = 0;
	struct in_addr addr = { 0 };
	uint8_t cidr = 0;
	bool have_addr = false;

	mnl_attr_for_each_nested(x, a) {
		switch (mnl_attr_get_type(x)) {
		case WGALLOWEDIP_A_FAMILY:
			if (mnl_attr_validate(x, MNL_TYPE_U16) < 0)
				return -EPROTO;
			family = mnl_attr_get_u16(x);
			break;
		case WGALLOWEDIP_A_IPADDR:
			if (mnl_attr_get_payload_len(x) == sizeof(addr)) {
				memcpy(&addr, mnl_attr_get_payload(x), sizeof(addr));
				have_addr = true;
			}
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			if (mnl_attr_validate(x, MNL_TYPE_U8) < 0)
				return -EPROTO;
			cidr = mnl_attr_get_u8(x);
			break;
		default:
			break;
		}
	}
	if (family == AF_INET && have_addr && cidr <= 32)
		wg_peer_add_allowed(p, addr, cidr);
	return 0;
}

static int parse_peer(const struct nlattr *a, struct wg_device *dev)
{
	const struct nlattr *x, *ip;
	struct wg_peer tmp = { 0 }, *p;
	bool have_key = false;
	int r;

	mnl_attr_for_each_nested(x, a) {
		if (mnl_attr_get_type(x) == WGPEER_A_PUBLIC_KEY &&
		    mnl_attr_get_payload_len(x) == WG_KEY_LEN) {
			memcpy(tmp.public_key, mnl_attr_get_payload(x), WG_KEY_LEN);
			have_key = true;
		}
	}
	if (!have_key)
		return -EPROTO;
	/* The kernel continues a peer in the next message: same key, adjacent. */
	if (dev->n_peers && !memcmp(dev->peers[dev->n_peers - 1].public_key, tmp.public_key, WG_KEY_LEN))
		p = &dev->peers[dev->n_peers - 1];
	else {
		p = wg_device_add_peer(dev);
		memcpy(p->public_key, tmp.public_key, WG_KEY_LEN);
	}
	mnl_attr_for_each_nested(x, a) {
		switch (mnl_attr_get_type(x)) {
		case WGPEER_A_ENDPOINT: {
			size_t len = mnl_attr_get_payload_len(x);

			if (len == sizeof(struct sockaddr_in) || len == sizeof(struct sockaddr_in6)) {
				memcpy(&p->endpoint, mnl_attr_get_payload(x), len);
				p->has_endpoint = true;
			}
			break;
		}
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			if (mnl_attr_validate(x, MNL_TYPE_U16) < 0)
				return -EPROTO;
			p->keepalive = mnl_attr_get_u16(x);
			p->has_keepalive = true;
			break;
		case WGPEER_A_LAST_HANDSHAKE_TIME:
			/* struct __kernel_timespec: two 64-bit fields */
			if (mnl_attr_get_payload_len(x) == 2 * sizeof(int64_t)) {
				int64_t ts[2];

				memcpy(ts, mnl_attr_get_payload(x), sizeof(ts));
				p->last_handshake_sec = ts[0];
				p->last_handshake_nsec = ts[1];
			}
			break;
		case WGPEER_A_RX_BYTES:
			if (mnl_attr_validate(x, MNL_TYPE_U64) < 0)
				return -EPROTO;
			p->rx_bytes = mnl_attr_get_u64(x);
			break;
		case WGPEER_A_TX_BYTES:
			if (mnl_attr_validate(x, MNL_TYPE_U64) < 0)
				return -EPROTO;
			p->tx_bytes = mnl_attr_get_u64(x);
			break;
		case WGPEER_A_ALLOWEDIPS:
			mnl_attr_for_each_nested(ip, x)
				if ((r = parse_allowedip(ip, p)) < 0)
					return r;
			break;
		default:
			break;
		}
	}
	return 0;
}

static int parse_device_attr(const struct nlattr *a, void *data)
{
	struct wg_device *dev = data;
	const struct nlattr *peer;
	int r;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_PRIVATE_KEY:
		if (mnl_attr_get_payload_len(a) == WG_KEY_LEN) {
			memcpy(dev->private_key, mnl_attr_get_payload(a), WG_KEY_LEN);
			/* all zeros: no key set */
			for (size_t i = 0; i < WG_KEY_LEN; i++)
				dev->has_private_key |= dev->private_key[i] != 0;
		}
		break;
	case WGDEVICE_A_PUBLIC_KEY:
		if (mnl_attr_get_payload_len(a) == WG_KEY_LEN) {
			memcpy(dev->public_key, mnl_attr_get_payload(a), WG_KEY_LEN);
			dev->has_public_key = true;
		}
		break;
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(a, MNL_TYPE_U16) < 0)
			return MNL_CB_ERROR;
		dev->listen_port = mnl_attr_get_u16(a);
		dev->has_listen_port = true;
		break;
	case WGDEVICE_A_PEERS:
		mnl_attr_for_each_nested(peer, a)
			if ((r = parse_peer(peer, dev)) < 0)
				return MNL_CB_ERROR;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

struct parse_ctx {
	uint16_t family;
	struct wg_device *dev;
};

static int parse_message(const struct nlmsghdr *nlh, void *data)
{
	struct parse_ctx *ctx = data;

	if (nlh->nlmsg_type != ctx->family)
		return MNL_CB_OK; /* not ours */
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
		errno = EINTR;
		return MNL_CB_ERROR;
	}
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), parse_device_attr, ctx->dev);
}

int wg_nl_parse_dump(const void *buf, size_t len, uint16_t family, struct wg_device *dev)
{
	struct parse_ctx ctx = { family, dev };
	const char *p = buf;
	size_t rem = len;
	int r;

	/*
	 * Every message whole and inside the buffer, checked unsigned: libmnl
	 * stops quietly at a partial message, and its mnl_nlmsg_ok() casts the
	 * length to int, so a length of 2^31 or more would pass it.
	 */
	if (len > INT32_MAX)
		return -EPROTO;
	while (rem) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)p;
		size_t step;

		if (rem < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > rem)
			return -EPROTO;
		step = MNL_ALIGN(nlh->nlmsg_len);
		step = step > rem ? rem : step;
		p += step;
		rem -= step;
	}
	errno = 0;
	r = mnl_cb_run(buf, len, 0, 0, parse_message, &ctx);
	if (r == MNL_CB_STOP)
		return 1;
	if (r == MNL_CB_ERROR) {
		/* An NLMSG_ERROR from the wire sets errno to anything, INT_MIN too. */
		int e = errno;

		return e > 0 && e < 4096 ? -e : -EPROTO;
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

static int resolve_family(struct mnl_socket *nl, uint16_t *family)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;
	struct nlattr *a;
	ssize_t n;
	unsigned seq = (unsigned)time(NULL);

	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	nlh = (struct nlmsghdr *)buf;
	if (!mnl_nlmsg_ok(nlh, (int)n))
		return -EPROTO;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		return e->error ? e->error : -EPROTO;
	}
	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID) {
			*family = mnl_attr_get_u16(a);
			/* drain the ACK */
			(void)mnl_socket_recvfrom(nl, buf, sizeof(buf));
			return 0;
		}
	}
	return -ENOENT;
}

static struct nlmsghdr *put_request(char *buf, struct nl_backend *b, uint8_t cmd, uint16_t flags,
				    const char *iface)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = b->family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = ++b->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = WG_GENL_VERSION;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, iface);
	return nlh;
}

/* The read holds the end of a dump: NLMSG_DONE, or an error in its place. */
static bool ends_dump(const char *buf, ssize_t n)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)buf;
	int rem = (int)n;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem))
		if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR)
			return true;
	return false;
}

/*
 * Read the rest of a dump we stopped parsing (interrupted, malformed): the
 * kernel runs one dump per socket at a time and would refuse the next
 * request with EBUSY while this one is unfinished.
 */
static void drain_dump(struct nl_backend *b, char *buf)
{
	for (int reads = 0; reads < 100000; reads++) {
		ssize_t n = mnl_socket_recvfrom(b->nl, buf, NL_BUF);

		if (n <= 0 || ends_dump(buf, n))
			return;
	}
}

static int nl_get(struct wg_backend *base, const char *iface, struct wg_device *dev)
{
	struct nl_backend *b = (struct nl_backend *)base;
	_cleanup_free_ char *buf = xmalloc(NL_BUF);

	for (int attempt = 0; attempt < 3; attempt++) {
		struct nlmsghdr *nlh = put_request(buf, b, WG_CMD_GET_DEVICE,
						   NLM_F_REQUEST | NLM_F_DUMP, iface);
		ssize_t n = 0;
		int r = 0;

		if (mnl_socket_sendto(b->nl, nlh, nlh->nlmsg_len) < 0)
			return -errno;
		/*
		 * A large device comes in several reads (the kernel fills one skb of
		 * at most 32 KiB per read; 1000 peers take about five). A read holds one skb, so
		 * messages of one request: a read left over from an earlier request
		 * (an acknowledgement that came after its deadline, the tail of an
		 * interrupted dump) is skipped, not taken for this dump's end.
		 */
		while (r == 0) {
			n = mnl_socket_recvfrom(b->nl, buf, NL_BUF);
			if (n < 0)
				return -errno;
			if ((size_t)n >= sizeof(struct nlmsghdr) &&
			    ((struct nlmsghdr *)(void *)buf)->nlmsg_seq != b->seq)
				continue;
			r = wg_nl_parse_dump(buf, (size_t)n, b->family, dev);
		}
		if (r < 0 && !ends_dump(buf, n))
			drain_dump(b, buf);
		if (r != -EINTR)
			return r < 0 ? r : 0;
		wg_device_clear(dev); /* the dump was interrupted by a change: again */
	}
	return -EINTR;
}

/*
 * One peer, or the rest of one, into @nlh, never past @size. A peer that
 * does not fit whole is cut between its allowed IPs (the kernel's uAPI:
 * "several messages should be sent one after another, with each successive
 * one filling in information not contained in the prior"): the continuation
 * carries the key and more allowed IPs, never WGPEER_F_REPLACE_ALLOWEDIPS
 * again (that would drop the IPs the first part set), but UPDATE_ONLY
 * again, so a continuation cannot create a peer its first part would not.
 * Return: true when the whole peer went in (@cur moves to the next one).
 */
static bool put_peer(struct nlmsghdr *nlh, size_t size, const struct wg_peer *p,
		     struct wg_nl_cursor *cur)
{
	struct nlattr *peer, *ips = NULL, *ip;
	bool first = !cur->in_peer;
	size_t wrote = 0;
	uint32_t flags = 0;

	if (!(peer = mnl_attr_nest_start_check(nlh, size, 0)))
		return false;
	if (!mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key))
		goto cancel;
	if (p->flags & WG_PEER_REMOVE)
		flags |= WGPEER_F_REMOVE_ME;
	if ((p->flags & WG_PEER_REPLACE_IPS) && first)
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (p->flags & WG_PEER_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	if (flags && !mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, flags))
		goto cancel;
	if (p->flags & WG_PEER_REMOVE)
		goto whole;
	if (first && p->has_endpoint &&
	    !mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT,
				p->endpoint.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
				sizeof(struct sockaddr_in6), &p->endpoint))
		goto cancel;
	if (first && p->has_keepalive &&
	    !mnl_attr_put_u16_check(nlh, size, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive))
		goto cancel;
	/* An empty list still goes out: with REPLACE_ALLOWEDIPS it clears the peer's. */
	if (!(ips = mnl_attr_nest_start_check(nlh, size, WGPEER_A_ALLOWEDIPS)))
		goto cut;
	for (; cur->allowed < p->n_allowed; cur->allowed++, wrote++) {
		const struct wg_allowedip *a = &p->allowed[cur->allowed];

		if (!(ip = mnl_attr_nest_start_check(nlh, size, 0)))
			goto cut;
		if (!mnl_attr_put_u16_check(nlh, size, WGALLOWEDIP_A_FAMILY, AF_INET) ||
		    !mnl_attr_put_check(nlh, size, WGALLOWEDIP_A_IPADDR, sizeof(a->addr), &a->addr) ||
		    !mnl_attr_put_u8_check(nlh, size, WGALLOWEDIP_A_CIDR_MASK, a->cidr)) {
			mnl_attr_nest_cancel(nlh, ip);
			goto cut;
		}
		mnl_attr_nest_end(nlh, ip);
	}
	mnl_attr_nest_end(nlh, ips);
whole:
	mnl_attr_nest_end(nlh, peer);
	cur->peer++;
	cur->allowed = 0;
	cur->in_peer = false;
	return true;
cut:
	/* Keep what went in if it says something: a first part, or more IPs. */
	if (!first && !wrote)
		goto cancel;
	if (ips && wrote)
		mnl_attr_nest_end(nlh, ips);
	else if (ips)
		mnl_attr_nest_cancel(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	cur->in_peer = true;
	cur->wrote_any = true;
	return false;
cancel:
	mnl_attr_nest_cancel(nlh, peer);
	return false;
}

int wg_nl_build_set(char *buf, size_t size, uint16_t family, unsigned seq, const char *iface,
		    const struct wg_device *dev, struct wg_nl_cursor *cur, struct nlmsghdr **out)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct nlattr *peers;
	bool progress = false;

	*out = NULL;
	if (size < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*g)) || size > UINT32_MAX)
		return -EMSGSIZE;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_SET_DEVICE;
	g->version = WG_GENL_VERSION;
	if (!mnl_attr_put_strz_check(nlh, size, WGDEVICE_A_IFNAME, iface))
		return -EMSGSIZE;
	/*
	 * The device's own attributes go in the first message only (were we to
	 * send WGDEVICE_F_REPLACE_PEERS, repeating it would drop the peers the
	 * earlier messages added).
	 */
	if (!cur->started) {
		if (dev->has_private_key &&
		    !mnl_attr_put_check(nlh, size, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, dev->private_key))
			return -EMSGSIZE;
		if (dev->has_listen_port &&
		    !mnl_attr_put_u16_check(nlh, size, WGDEVICE_A_LISTEN_PORT, dev->listen_port))
			return -EMSGSIZE;
		progress = dev->has_private_key || dev->has_listen_port || !dev->n_peers;
		cur->started = true;
	}
	if (cur->peer < dev->n_peers && (peers = mnl_attr_nest_start_check(nlh, size, WGDEVICE_A_PEERS))) {
		while (cur->peer < dev->n_peers) {
			cur->wrote_any = false;
			if (put_peer(nlh, size, &dev->peers[cur->peer], cur)) {
				progress = true;
				continue;
			}
			progress |= cur->wrote_any;
			break;
		}
		if ((size_t)((char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)peers) > MNL_ATTR_HDRLEN)
			mnl_attr_nest_end(nlh, peers);
		else
			mnl_attr_nest_cancel(nlh, peers);
	}
	if (!progress)
		return -EMSGSIZE; /* not even one peer's key fits: never loop forever */
	*out = nlh;
	return cur->peer < dev->n_peers;
}

static int nl_set(struct wg_backend *base, const char *iface, const struct wg_device *dev)
{
	struct nl_backend *b = (struct nl_backend *)base;
	_cleanup_free_ char *buf = xcalloc(1, NL_BUF);
	struct wg_nl_cursor cur = { 0 };
	struct nlmsghdr *nlh;
	ssize_t n;
	int more, r;

	/*
	 * As many messages as it takes (a hub with 1000 spokes needs two), each
	 * acknowledged before the next. A failure part-way leaves part of the
	 * change applied; the next reconcile pass sees and finishes it.
	 */
	do {
		more = wg_nl_build_set(buf, NL_BUF, b->family, ++b->seq, iface, dev, &cur, &nlh);
		if (more < 0) {
			explicit_zero(buf, NL_BUF); /* a refused first message may hold the key */
			return more;
		}
		r = mnl_socket_sendto(b->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
		explicit_zero(buf, nlh->nlmsg_len); /* the first one holds the private key */
		if (r < 0)
			return r;
		n = mnl_socket_recvfrom(b->nl, buf, NL_BUF);
		if (n < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)n, b->seq, mnl_socket_get_portid(b->nl), NULL, NULL);
		if (r < 0)
			return errno > 0 ? -errno : -EPROTO;
	} while (more);
	return 0;
}

static void nl_free(struct wg_backend *base)
{
	struct nl_backend *b = (struct nl_backend *)base;

	mnl_socket_close(b->nl);
	free(b);
}

struct wg_backend *wg_netlink_backend(void)
{
	struct nl_backend *b = xcalloc(1, sizeof(*b));
	struct timeval tv = { .tv_sec = 1 };

	b->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!b->nl || mnl_socket_bind(b->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		if (b->nl)
			mnl_socket_close(b->nl);
		free(b);
		return NULL;
	}
	/* The kernel answers at once; the deadline only guards against surprises. */
	setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/*
	 * An error acknowledgement would otherwise echo the whole request: a
	 * 64 KiB SET_DEVICE (the private key in it) that no longer fits our
	 * receive buffer, read as ENOSPC instead of the kernel's error.
	 */
	(void)mnl_socket_setsockopt(b->nl, NETLINK_CAP_ACK, &(int){ 1 }, sizeof(int));
	if (resolve_family(b->nl, &b->family) < 0) {
		mnl_socket_close(b->nl);
		free(b);
		return NULL;
	}
	b->seq = (unsigned)time(NULL);
	b->base.name = "kernel";
	b->base.get = nl_get;
	b->base.set = nl_set;
	b->base.free = nl_free;
	return &b->base;
}
