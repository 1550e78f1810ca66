/* SPDX-License-Identifier: MIT */
/*
 * The overlay: wg0 on a spoke (one peer, the hub) or on the hub (a peer per
 * spoke). Brought up and kept up by one reconcile pass a second, which
 * compares what the cluster file wants with what the device has and fixes
 * the difference: the same code brings the link up, repairs it (a vanished
 * link, address, route or wireguard-go) and applies a reload as a diff that
 * leaves unchanged peers' sessions alone. It also reads every peer's last
 * handshake and judges freshness.
 *
 * Two backends sit behind one interface (struct wg_backend): the kernel's
 * WireGuard generic netlink, and wireguard-go's UAPI socket when the kernel
 * has no WireGuard (wireguard-go then runs as a supervised child).
 */
#ifndef SUP_OVERLAY_H
#define SUP_OVERLAY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "child/child.h"
#include "conf/conf.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"
#include "lib/wgkey.h"

/* ---- the device model both backends read and write -------------------- */

struct wg_allowedip {
	struct in_addr addr;
	uint8_t cidr;
};

#define WG_PEER_REMOVE 0x1       /* set: remove this peer */
#define WG_PEER_REPLACE_IPS 0x2  /* set: allowed IPs replace the old ones */
#define WG_PEER_UPDATE_ONLY 0x4  /* set: do not create the peer */

struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint32_t flags;
	bool has_endpoint;
	struct sockaddr_storage endpoint;
	bool has_keepalive;
	uint16_t keepalive;
	int64_t last_handshake_sec;  /* wall clock; 0: never */
	int64_t last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	struct wg_allowedip *allowed;
	size_t n_allowed;
};

struct wg_device {
	bool has_private_key;
	uint8_t private_key[WG_KEY_LEN];
	bool has_public_key;
	uint8_t public_key[WG_KEY_LEN];
	bool has_listen_port;
	uint16_t listen_port;
	struct wg_peer *peers;
	size_t n_peers;
};

/* wg_device_clear() - free peers and wipe the private key. */
void wg_device_clear(struct wg_device *dev);
/* wg_device_add_peer() - append a zeroed peer. Return: it. */
struct wg_peer *wg_device_add_peer(struct wg_device *dev);
void wg_peer_add_allowed(struct wg_peer *p, struct in_addr addr, uint8_t cidr);

/**
 * wg_uapi_parse_get() - parse wireguard-go's reply to "get=1".
 * @text: the reply, up to and including "errno=N" (NUL-terminated).
 * @dev: receives the device (caller clears it).
 *
 * Return: 0, the negative errno the reply carried, or -EPROTO when malformed.
 */
int wg_uapi_parse_get(const char *text, struct wg_device *dev) _must_check_;
/* wg_uapi_format_set() - the "set=1" request for @dev (caller frees; holds secrets). */
char *wg_uapi_format_set(const struct wg_device *dev);

/**
 * wg_nl_parse_dump() - coalesce a WG_CMD_GET_DEVICE dump into @dev.
 * @buf: the received messages, back to back, as read from the socket.
 * @len: their length.
 * @family: the generic netlink family id of "wireguard".
 * @dev: receives the device (call repeatedly for each recv() buffer).
 *
 * Peers split across messages (the kernel repeats a peer with only its
 * key and more allowed IPs) are merged.
 * Return: 1 when NLMSG_DONE was seen, 0 when more is to come, -errno on error.
 */
int wg_nl_parse_dump(const void *buf, size_t len, uint16_t family, struct wg_device *dev);

/* ---- the overlay ---------------------------------------------------------- */

enum tunnel_state {
	TUNNEL_DOWN,       /* no link, or not configured */
	TUNNEL_CONNECTING, /* configured, never handshaken */
	TUNNEL_FRESH,      /* last handshake at most fresh_handshake old */
	TUNNEL_STALE,      /* older than that */
};

struct overlay_peer_status {
	const char *name;
	struct in_addr overlay_ip;
	char endpoint[64];         /* "" when unknown */
	int64_t last_handshake;    /* unix seconds; 0: never */
	int64_t last_handshake_ms; /* the same in milliseconds */
	int64_t age_s;             /* -1: never */
	uint64_t rx_bytes, tx_bytes;
	enum tunnel_state state;
};


struct overlay_status {
	enum tunnel_state state;   /* the node's: spoke = its hub peer; hub = worst peer */
	const char *backend;       /* "kernel", "userspace" or "none" */
	const char *interface;
	bool link_up;
	size_t n_peers;            /* configured peers */
	size_t n_fresh;            /* of those, with a fresh handshake */
	int64_t max_age_s;         /* oldest handshake among peers; -1 if any never */
	uint64_t repairs;          /* things found missing and restored */
	uint64_t rearms;           /* stale hub peer re-armed to force a handshake */
	char last_error[256];      /* why the tunnel is down, if it is */
	unsigned mtu;              /* the interface's MTU as set, bytes */
	bool mtu_auto;             /* from the path (cluster.mtu = "auto") */
	unsigned path_mtu;         /* the underlay's MTU toward the hub (hub: the default route); 0: unknown */
	/* A spoke's hub endpoint: as configured, the address in use, when resolved. */
	const char *endpoint_host;   /* NULL on the hub */
	char endpoint_address[64];   /* "" until there is one */
	int64_t endpoint_resolved_at; /* unix s of the last answer; 0: a literal, or none yet */
	char endpoint_error[160];    /* the last lookup's error, "" if none */
	struct overlay_peer_status *peers; /* n_peers rows, owned by the overlay */
};

/*
 * WireGuard's own bytes around a packet: outer IPv6 header 40, UDP 8, its
 * header and tag 32. wg-quick subtracts 80 for IPv4 paths too; so do we.
 */
#define OVERLAY_WG_OVERHEAD 80

struct overlay;

/**
 * overlay_new() - bring up and watch this node's WireGuard interface.
 * @loop: the event loop (a 1 s reconcile timer is added).
 * @children: where wireguard-go is supervised when the kernel lacks WireGuard.
 * @conf: the configuration (must outlive the overlay or be replaced by
 *        overlay_set_conf()).
 * @out: receives the overlay.
 *
 * The private key is loaded here and kept only in memory.
 * Return: 0 or -errno. A missing key or link is not an error here: it is
 * reported in the status and retried.
 */
int overlay_new(struct loop *loop, struct child_set *children, const struct conf *conf,
		struct overlay **out) _must_check_;
struct overlay *overlay_free(struct overlay *ov);
/* overlay_set_conf() - apply a reloaded configuration as a diff. */
void overlay_set_conf(struct overlay *ov, const struct conf *conf);
/* overlay_on_change() - called after each poll in which the node's state changed. */
void overlay_on_change(struct overlay *ov, void (*fn)(void *data, enum tunnel_state st),
		       void *data);
/* overlay_status() - the status from the last poll. */
const struct overlay_status *overlay_status(const struct overlay *ov);
const char *tunnel_state_name(enum tunnel_state st);
/*
 * overlay_health() - the tunnel's part of the node's health: down critical,
 * connecting/stale degraded, an MTU above the path's degraded; component "tunnel".
 */
void overlay_health(const struct overlay_status *ov, struct health_report *out);

/* The name of the supervised wireguard-go child. */
#define OVERLAY_CHILD_NAME "wireguard-go"

/* ---- split-horizon names (overlay/names.c) ---- */

/* hosts_block() - the managed block: every node as NAME.DOMAIN, the primary also as pg-primary.DOMAIN. Caller frees. */
char *hosts_block(const struct conf *conf);
/* hosts_merge() - @old with its managed block replaced by @block (or @block appended). Caller frees. */
char *hosts_merge(const char *old, const char *block);
/**
 * hosts_apply() - bring names.hosts_file's block in line with @conf (no-op when unset).
 * @conf: the configuration.
 *
 * Other lines are kept; the file is rewritten in place only when the block changed.
 * Return: 0 or -errno.
 */
int hosts_apply(const struct conf *conf);

#endif
