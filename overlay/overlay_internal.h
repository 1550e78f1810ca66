/* SPDX-License-Identifier: MIT */
/* Private to overlay/: the backend interface, rtnetlink helpers. */
#ifndef SUP_OVERLAY_INTERNAL_H
#define SUP_OVERLAY_INTERNAL_H

#include "lib/common.h"
#include "overlay/overlay.h"

#define WG_UAPI_DIR "/var/run/wireguard"
/* Receive buffer for rtnetlink and genetlink replies: dumps fill up to 32 KiB. */
#define RTNL_BUF 32768

/* One way to read and change a WireGuard device. */
struct wg_backend {
	const char *name;
	int (*get)(struct wg_backend *b, const char *iface, struct wg_device *out);
	int (*set)(struct wg_backend *b, const char *iface, const struct wg_device *in);
	void (*free)(struct wg_backend *b);
};

/* wg_netlink.c: NULL when the kernel has no WireGuard family. */
struct wg_backend *wg_netlink_backend(void);
/*
 * Where the next SET_DEVICE message of a large change starts. Zeroed for
 * the first message; wg_nl_build_set() advances it.
 */
struct wg_nl_cursor {
	bool started;    /* the device's own attributes went out */
	size_t peer;     /* the next peer to write */
	size_t allowed;  /* its next allowed IP */
	bool in_peer;    /* its first part went out: the rest continues it */
	bool wrote_any;  /* (private) this message holds part of the peer */
};
struct nlmsghdr;
/**
 * wg_nl_build_set() - the next WG_CMD_SET_DEVICE message for @dev.
 * @buf: where the message is built.
 * @size: the size of @buf; nothing is written past it.
 * @family: the generic netlink family id of "wireguard".
 * @seq: the message's sequence number.
 * @iface: the interface.
 * @dev: the changes (device attributes go in the first message only).
 * @cur: where this message starts (zeroed for the first); advanced.
 * @out: receives the message (in @buf).
 *
 * Peers that do not fit continue in the next message, a peer's allowed IPs
 * too (as wg(8) splits a large set).
 * Return: 1 when more messages follow, 0 when this was the last,
 * -EMSGSIZE when @size cannot hold the header and one peer's key.
 */
int wg_nl_build_set(char *buf, size_t size, uint16_t family, unsigned seq, const char *iface,
		    const struct wg_device *dev, struct wg_nl_cursor *cur, struct nlmsghdr **out);

/* wg_uapi.c */
struct wg_backend *wg_uapi_backend(void);
/**
 * wggo_error_message() - the message of one of wireguard-go's error lines.
 * @line: a line it printed, e.g. "ERROR: (wg0) 2026/12/01 04:49:01 Failed
 *        to create TUN device: operation not permitted".
 *
 * Return: a pointer into @line at the message ("Failed to ..."), or NULL
 * when it is not an error line.
 */
const char *wggo_error_message(const char *line);
bool wg_parse_endpoint(const char *s, struct sockaddr_storage *ss);
const char *wg_endpoint_str(const struct sockaddr_storage *ss, char *buf, size_t size);

/* resolve.c: the hub's endpoint, a literal or a name resolved in the background. */
struct lookup;
struct hub_endpoint {
	bool configured;
	char host[256];
	uint16_t port;
	bool literal;                  /* an address in the file: never looked up */
	bool have;                     /* addr holds an address to use */
	struct sockaddr_storage addr;
	int64_t resolved_at;           /* wall clock (unix s) of the last answer, for display; 0: none */
	uint64_t asked_ms, answered_ms; /* now_ms() */
	unsigned failures;             /* lookups failed in a row */
	char error[160];               /* the last lookup's error, "" if it worked */
	struct lookup *lookup;         /* in flight, or NULL */
};
/* hub_endpoint_set() - follow the configured host:port (a change starts over). */
void hub_endpoint_set(struct hub_endpoint *e, const struct conf_hostport *hp);
/**
 * hub_endpoint_poll() - collect a finished lookup; start one when @every_ms passed.
 * @e: the endpoint.
 * @every_ms: how long after the last question to ask again.
 *
 * Never blocks. Return: true when the address in use changed.
 */
bool hub_endpoint_poll(struct hub_endpoint *e, uint64_t every_ms);
/* hub_endpoint_clear() - stop a lookup in flight and forget everything. */
void hub_endpoint_clear(struct hub_endpoint *e);

/* rtnl.c: link, address and route over rtnetlink; 0 or -errno. */
struct rtnl;
int rtnl_open(struct rtnl **out) _must_check_;
struct rtnl *rtnl_close(struct rtnl *r);
int rtnl_link_create(struct rtnl *r, const char *iface, const char *kind);
int rtnl_link_get(struct rtnl *r, unsigned ifindex, bool *up, unsigned *mtu);
int rtnl_link_set(struct rtnl *r, unsigned ifindex, bool up, unsigned mtu);
/* rtnl_addr_has() - 1 if @ifindex has @addr/@prefix, 0 if not, -errno. */
int rtnl_addr_has(struct rtnl *r, unsigned ifindex, struct in_addr addr, uint8_t prefix);
int rtnl_addr_add(struct rtnl *r, unsigned ifindex, struct in_addr addr, uint8_t prefix);
/* rtnl_route_has() - 1 if the main table routes @dst/@prefix via @ifindex. */
int rtnl_route_has(struct rtnl *r, unsigned ifindex, struct in_addr dst, uint8_t prefix);
int rtnl_route_add(struct rtnl *r, unsigned ifindex, struct in_addr dst, uint8_t prefix);
/**
 * rtnl_path_mtu() - the MTU of the path to @dst, as `ip route get` knows it.
 * @r: the rtnetlink socket.
 * @dst: the destination (IPv4 or IPv6; the port is ignored).
 * @mtu: receives the route's MTU (a route metric or a learned path MTU),
 *       else the outgoing link's MTU, in bytes.
 *
 * Return: 0, -ENETUNREACH when no route leads there, or -errno.
 */
int rtnl_path_mtu(struct rtnl *r, const struct sockaddr_storage *dst, unsigned *mtu);

#endif
