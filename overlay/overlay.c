// SPDX-License-Identifier: MIT
/*
 * The reconcile pass (once a second): desired state from the cluster file,
 * actual state from the device and rtnetlink, and the difference applied.
 * Bring-up, repair and reload are the same code; a reload differs from a
 * repair only in how it is counted and logged.
 *
 * Freshness: a peer is fresh when its last handshake is at most
 * cluster.fresh_handshake old (180 s = REJECT_AFTER_TIME by default: an
 * idle tunnel's handshake age is a sawtooth up to ~145 s, and that is
 * healthy). "Never" is its own state, not age 0. Ages are monotonic (see
 * struct peer_memory).
 *
 * Re-arm: after the hub restarts, the spoke's old session is useless but
 * WireGuard starts a new handshake only when its rekey timer says so (up
 * to 120 s). So when the hub peer is stale, or never handshook for 5 s, the
 * spoke removes and re-adds it (every 5 s while stale, every 1.5 s while it
 * never had one): setting a persistent keepalive on a new peer sends a
 * packet at once, which starts a handshake.
 */
#include "overlay/overlay_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/wgkey.h"

#include <signal.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 1000
/* Until the first handshake, look often: Postgres waits on it. */
#define POLL_FAST_MS 100
#define REARM_EVERY_MS 5000
/*
 * Never handshaken yet: our first initiation may have reached a hub that was
 * not configured yet, and WireGuard would wait REKEY_TIMEOUT (5 s) to retry.
 */
#define REARM_CONNECTING_MS 1500

/*
 * What we know of a peer across passes. Ages are measured on the monotonic
 * clock: the device reports a handshake as a wall-clock time, which is only
 * compared with the previous one to notice a new handshake, and shown.
 * A wall clock that steps (NTP at boot, a VM resumed) then changes nothing
 * that is judged.
 */
struct peer_memory {
	uint8_t key[WG_KEY_LEN];
	int64_t device_hs_ms;    /* the device's last value (wall clock, ms); 0: none seen */
	int64_t last_handshake_ms; /* for display (wall clock); survives a re-arm, which resets the device's */
	uint64_t handshake_mono_ms; /* now_ms() of that handshake; 0: never */
	char endpoint_set[80];   /* the endpoint we last configured, if any */
	bool has_seen_endpoint;  /* hub: where the device last saw this spoke */
	struct sockaddr_storage seen_endpoint;
	bool poked;              /* hub: re-added with a keepalive to handshake at once; clear it */
};

struct overlay {
	struct loop *loop;
	struct child_set *children;
	const struct conf *conf;
	unsigned conf_generation;
	unsigned applied_generation;
	struct wg_backend *backend;
	struct rtnl *rtnl;
	struct loop_source *timer;
	bool have_key;
	uint8_t private_key[WG_KEY_LEN];
	char key_file[256], key_env[128]; /* where the key came from (copies) */
	char key_error[240];
	char wggo_error[160];             /* wireguard-go's last error while wg0 is missing */
	bool configured_once;
	bool link_missing;
	uint64_t connecting_since;
	uint64_t poll_ms;
	uint64_t last_rearm;
	struct peer_memory *mem;
	size_t n_mem;
	struct hub_endpoint hub_ep;       /* spoke: where the hub is */
	bool rearm_now;                   /* the hub moved: handshake at its new address at once */
	struct overlay_status status;
	size_t peers_cap;                 /* rows allocated in status.peers */
	uint64_t last_judge_ms;           /* now_ms() of the previous freshness pass */
	void (*on_change)(void *data, enum tunnel_state st);
	void *on_change_data;
};

const char *tunnel_state_name(enum tunnel_state st)
{
	switch (st) {
	case TUNNEL_DOWN: return "down";
	case TUNNEL_CONNECTING: return "connecting";
	case TUNNEL_FRESH: return "fresh";
	case TUNNEL_STALE: return "stale";
	}
	return "down";
}

/* Kept sorted by key: a hub with 1000 spokes looks each up twice a pass. */
static struct peer_memory *memory_of(struct overlay *ov, const uint8_t key[WG_KEY_LEN])
{
	size_t lo = 0, hi = ov->n_mem;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(ov->mem[mid].key, key, WG_KEY_LEN);

		if (c == 0)
			return &ov->mem[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	ov->mem = xreallocarray(ov->mem, ov->n_mem + 1, sizeof(*ov->mem));
	memmove(&ov->mem[lo + 1], &ov->mem[lo], (ov->n_mem - lo) * sizeof(*ov->mem));
	memset(&ov->mem[lo], 0, sizeof(ov->mem[0]));
	memcpy(ov->mem[lo].key, key, WG_KEY_LEN);
	ov->n_mem++;
	return &ov->mem[lo];
}

/* ---- desired state ------------------------------------------------------ */

/*
 * A name is asked again every 15 s while the hub peer is fresh, and every
 * 5 s while it is not: a hub that moved shows first as a tunnel going stale.
 */
#define RESOLVE_FRESH_MS 15000
#define RESOLVE_NOT_FRESH_MS 5000

/* Spoke: follow the hub's endpoint; a new address is re-armed for at once. */
static void follow_hub_endpoint(struct overlay *ov)
{
	struct hub_endpoint *e = &ov->hub_ep;
	struct overlay_status *st = &ov->status;

	hub_endpoint_set(e, &conf_hub(ov->conf)->endpoint);
	/* A first address too: the peer went in without one, and nothing was sent yet. */
	if (hub_endpoint_poll(e, st->state == TUNNEL_FRESH ? RESOLVE_FRESH_MS : RESOLVE_NOT_FRESH_MS))
		ov->rearm_now = true;
	st->endpoint_host = conf_hub(ov->conf)->endpoint.host;
	if (e->have)
		wg_endpoint_str(&e->addr, st->endpoint_address, sizeof(st->endpoint_address));
	else
		st->endpoint_address[0] = '\0';
	st->endpoint_resolved_at = e->resolved_at;
	snprintf(st->endpoint_error, sizeof(st->endpoint_error), "%s", e->error);
}

/* What the cluster file wants this node's device to be. */
static void build_desired(struct overlay *ov, struct wg_device *want)
{
	const struct conf *c = ov->conf;
	const struct conf_node *me = conf_self(c);

	memset(want, 0, sizeof(*want));
	want->has_private_key = true;
	memcpy(want->private_key, ov->private_key, WG_KEY_LEN);
	if (me->kind == CONF_NODE_HUB) {
		want->has_listen_port = true;
		want->listen_port = c->cluster.port;
		for (size_t i = 1; i < c->n_nodes; i++) {
			struct wg_peer *p = wg_device_add_peer(want);

			memcpy(p->public_key, c->nodes[i].public_key, WG_KEY_LEN);
			wg_peer_add_allowed(p, c->nodes[i].overlay_ip, 32);
		}
		return;
	}
	struct wg_peer *hub = wg_device_add_peer(want);

	memcpy(hub->public_key, conf_hub(c)->public_key, WG_KEY_LEN);
	hub->has_endpoint = ov->hub_ep.have;
	hub->endpoint = ov->hub_ep.addr;
	hub->has_keepalive = true;
	hub->keepalive = c->cluster.keepalive;
	wg_peer_add_allowed(hub, c->cluster.network.addr, c->cluster.network.prefix);
}

static int cmp_peer_key(const void *a, const void *b)
{
	return memcmp(((const struct wg_peer *)a)->public_key, ((const struct wg_peer *)b)->public_key,
		      WG_KEY_LEN);
}

/* In @dev as read from the device, sorted by sort_peers() (its order means nothing). */
static const struct wg_peer *find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	struct wg_peer k;

	if (!dev->n_peers)
		return NULL;
	memcpy(k.public_key, key, WG_KEY_LEN);
	return bsearch(&k, dev->peers, dev->n_peers, sizeof(k), cmp_peer_key);
}

static void sort_peers(struct wg_device *dev)
{
	if (dev->n_peers > 1)
		qsort(dev->peers, dev->n_peers, sizeof(dev->peers[0]), cmp_peer_key);
}

static bool same_allowed(const struct wg_peer *a, const struct wg_peer *b)
{
	if (a->n_allowed != b->n_allowed)
		return false;
	for (size_t i = 0; i < a->n_allowed; i++) {
		bool found = false;

		for (size_t k = 0; k < b->n_allowed; k++)
			found |= a->allowed[i].addr.s_addr == b->allowed[k].addr.s_addr &&
				 a->allowed[i].cidr == b->allowed[k].cidr;
		if (!found)
			return false;
	}
	return true;
}

static void copy_peer(struct wg_peer *dst, const struct wg_peer *src, uint32_t flags)
{
	*dst = *src;
	dst->flags = flags;
	dst->allowed = NULL;
	dst->n_allowed = 0;
	for (size_t i = 0; i < src->n_allowed; i++)
		wg_peer_add_allowed(dst, src->allowed[i].addr, src->allowed[i].cidr);
}

struct diff_counts {
	unsigned added, removed, updated;
	unsigned poked, unpoked;  /* hub: re-added peers made to handshake, and their keepalive cleared */
	bool key;
	bool port;
};

/* The changes that turn @have into @want, without touching what is equal. */
static void diff_device(struct overlay *ov, const struct wg_device *want,
			const struct wg_device *have, struct wg_device *chg, struct diff_counts *n)
{
	_cleanup_free_ bool *kept = xcalloc(have->n_peers + 1, sizeof(*kept)); /* @have's peers @want has */
	char ep[80];

	memset(chg, 0, sizeof(*chg));
	if (!have->has_private_key || memcmp(have->private_key, want->private_key, WG_KEY_LEN)) {
		chg->has_private_key = true;
		memcpy(chg->private_key, want->private_key, WG_KEY_LEN);
		n->key = true;
	}
	if (want->has_listen_port && (!have->has_listen_port || have->listen_port != want->listen_port)) {
		chg->has_listen_port = true;
		chg->listen_port = want->listen_port;
		n->port = true;
	}
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct wg_peer *w = &want->peers[i];
		const struct wg_peer *h = find_peer(have, w->public_key);
		struct peer_memory *m = memory_of(ov, w->public_key);
		bool ep_changed = w->has_endpoint &&
			strcmp(m->endpoint_set, wg_endpoint_str(&w->endpoint, ep, sizeof(ep))) != 0;

		if (h)
			kept[h - have->peers] = true;
		if (!h) {
			struct wg_peer *p = wg_device_add_peer(chg);

			/* A peer (re)added has no session: what we remembered is void. */
			m->last_handshake_ms = 0;
			m->device_hs_ms = 0;
			m->handshake_mono_ms = 0;
			m->endpoint_set[0] = '\0';
			copy_peer(p, w, WG_PEER_REPLACE_IPS);
			n->added++;
			/*
			 * The hub lost a spoke it had seen (its peer removed, wg0
			 * deleted): the spoke's session is gone here but not on the
			 * spoke, which would keep sending into it until its next
			 * rekey (up to 2 minutes) and read fresh meanwhile. Re-added
			 * at the address it was seen at with a keepalive, the peer
			 * handshakes at once (WireGuard sends a keepalive when one is
			 * set on a running device, or when the device comes up); the
			 * hub keeps no keepalive, so the next pass clears it.
			 */
			if (!w->has_keepalive && m->has_seen_endpoint) {
				p->has_endpoint = true;
				p->endpoint = m->seen_endpoint;
				p->has_keepalive = true;
				p->keepalive = ov->conf->cluster.keepalive ? ov->conf->cluster.keepalive : 25;
				m->poked = true;
				n->poked++;
			}
		} else if (m->poked && !w->has_keepalive) {
			struct wg_peer *p = wg_device_add_peer(chg);

			memcpy(p->public_key, w->public_key, WG_KEY_LEN);
			p->flags = WG_PEER_UPDATE_ONLY;
			p->has_keepalive = true;
			p->keepalive = 0;
			m->poked = false;
			n->unpoked++;
			continue;
		} else if (!same_allowed(w, h) || (w->has_keepalive && h->keepalive != w->keepalive) ||
			   ep_changed || (w->has_endpoint && !h->has_endpoint)) {
			copy_peer(wg_device_add_peer(chg), w, WG_PEER_REPLACE_IPS | WG_PEER_UPDATE_ONLY);
			n->updated++;
		} else {
			continue;
		}
		if (w->has_endpoint)
			snprintf(m->endpoint_set, sizeof(m->endpoint_set), "%s", ep);
	}
	for (size_t i = 0; i < have->n_peers; i++) {
		if (kept[i])
			continue;
		struct wg_peer *p = wg_device_add_peer(chg);

		memcpy(p->public_key, have->peers[i].public_key, WG_KEY_LEN);
		p->flags = WG_PEER_REMOVE;
		n->removed++;
	}
}

/* ---- one pass ------------------------------------------------------------- */

/*
 * The device's private key was replaced (a rotation, or a key set by hand
 * undone): WireGuard expires every peer's session with it (the kernel's
 * wg_noise_expire_current_peer_keypairs(), wireguard-go's
 * ExpireCurrentKeypairs()) but keeps reporting the old handshake time, so
 * what we remember of those sessions is void: every peer is "connecting"
 * until a new handshake. A spoke re-arms its hub peer at once; otherwise
 * nothing is sent until the next keepalive (up to 25 s), while the old
 * handshake time would still read fresh.
 */
static void key_replaced(struct overlay *ov, const struct wg_device *want)
{
	for (size_t i = 0; i < want->n_peers; i++) {
		struct peer_memory *m = memory_of(ov, want->peers[i].public_key);

		/* device_hs_ms stays: the device's old value is not a new handshake */
		m->handshake_mono_ms = 0;
		m->last_handshake_ms = 0;
	}
	if (conf_self(ov->conf)->kind == CONF_NODE_SPOKE)
		ov->rearm_now = true;
}

static void repaired(struct overlay *ov, const char *what)
{
	if (!ov->configured_once || ov->applied_generation != ov->conf_generation)
		return; /* bringing up or applying a reload, not repairing */
	ov->status.repairs++;
	log_warnx("overlay", "repaired what=%s interface=%s repairs=%llu", what,
		  ov->conf->cluster.interface, (unsigned long long)ov->status.repairs);
}

static void set_down(struct overlay *ov, const char *fmt, ...) _printf_(2, 3);
static void set_down(struct overlay *ov, const char *fmt, ...)
{
	char msg[sizeof(ov->status.last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, ov->status.last_error) != 0)
		log_warnx("overlay", "tunnel down reason=\"%s\"", msg);
	snprintf(ov->status.last_error, sizeof(ov->status.last_error), "%s", msg);
	ov->status.state = TUNNEL_DOWN;
	ov->status.link_up = false;
	for (size_t i = 0; i < ov->status.n_peers; i++)
		ov->status.peers[i].state = TUNNEL_DOWN;
}

static bool same_keys(const struct overlay *ov, const struct conf_keys *k)
{
	return !strcmp(ov->key_file, k->private_key_file ? k->private_key_file : "") &&
	       !strcmp(ov->key_env, k->private_key_env ? k->private_key_env : "");
}

static bool load_key(struct overlay *ov)
{
	const struct conf_keys *k = &conf_self(ov->conf)->settings.keys;
	char why[200];

	if (ov->have_key && same_keys(ov, k))
		return true;
	if (conf_load_private_key(k, ov->private_key, why, sizeof(why)) < 0) {
		ov->have_key = false;
		snprintf(ov->key_error, sizeof(ov->key_error), "private key: %s", why);
		return false;
	}
	ov->have_key = true;
	{
		uint8_t pub[WG_KEY_LEN];

		/* half of a key rotation done: the peers will not accept us; say which half */
		if (wgkey_public(ov->private_key, pub) == 0 &&
		    memcmp(pub, conf_self(ov->conf)->public_key, WG_KEY_LEN) != 0)
			log_warnx("overlay", "the private key does not match this node's public_key in the cluster "
				  "file; peers will not accept it until both agree");
	}
	snprintf(ov->key_file, sizeof(ov->key_file), "%s", k->private_key_file ? k->private_key_file : "");
	snprintf(ov->key_env, sizeof(ov->key_env), "%s", k->private_key_env ? k->private_key_env : "");
	ov->key_error[0] = '\0';
	return true;
}

const char *wggo_error_message(const char *line)
{
	const char *p;

	if (strncmp(line, "ERROR: ", 7) != 0)
		return NULL;
	p = line + 7;
	if (*p == '(') { /* the interface */
		const char *end = strstr(p, ") ");

		if (end)
			p = end + 2;
	}
	for (int i = 0; i < 2; i++) { /* its logger's date and time, "2026/12/01 04:49:01" */
		size_t word = strcspn(p, " ");

		if (!isdigit((unsigned char)*p) || strcspn(p, "/:") >= word || p[word] != ' ')
			break;
		p += word + 1;
	}
	return *p ? p : NULL;
}

/*
 * wireguard-go says why it cannot create the link only on its output: keep
 * its last error while the link is missing, for the tunnel's reason.
 */
static bool on_wggo_output(const char *line, void *data)
{
	struct overlay *ov = data;
	const char *msg = wggo_error_message(line);

	if (msg && ov->link_missing)
		snprintf(ov->wggo_error, sizeof(ov->wggo_error), "%s", msg);
	return false; /* logged as usual */
}

static const char *wireguard_go_path(void)
{
	static const char *const paths[] = { "/usr/bin/wireguard-go", "/usr/local/bin/wireguard-go",
					     "/usr/sbin/wireguard-go" };

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static int choose_backend(struct overlay *ov)
{
	const char *iface = ov->conf->cluster.interface;

	if (ov->backend)
		return 0;
	ov->backend = wg_netlink_backend();
	if (ov->backend) {
		log_info("overlay", "using kernel WireGuard interface=%s", iface);
		return 0;
	}
	/* No kernel WireGuard: wireguard-go creates the link, supervised by us. */
	const char *path = wireguard_go_path();

	if (!path) {
		set_down(ov, "no kernel WireGuard and no wireguard-go binary");
		return -ENOENT;
	}
	const char *argv[] = { path, "-f", iface, NULL };
	struct child_spec spec = {
		.name = OVERLAY_CHILD_NAME,
		.argv = argv,
		.restart = CHILD_RESTART_ALWAYS,
		.stop = { { SIGTERM, 3000 } },
		.n_stop = 1,
		.owner = "overlay",
		.on_output = on_wggo_output,
		.data = ov,
	};
	int r = child_add(ov->children, &spec, NULL);

	if (r < 0 && r != -EEXIST) {
		set_down(ov, "cannot supervise wireguard-go: %s", strerror(-r));
		return r;
	}
	ov->backend = wg_uapi_backend();
	log_info("overlay", "no kernel WireGuard; using wireguard-go path=%s interface=%s", path, iface);
	return 0;
}

/* Make sure the link exists; return its index, or 0 (status says why). */
static unsigned ensure_link(struct overlay *ov)
{
	const char *iface = ov->conf->cluster.interface;
	unsigned ifindex = if_nametoindex(iface);
	int r;

	if (ifindex) {
		ov->link_missing = false;
		ov->wggo_error[0] = '\0';
		return ifindex;
	}
	if (!ov->link_missing && ov->configured_once)
		repaired(ov, "link");
	ov->link_missing = true;
	if (strcmp(ov->backend->name, "kernel") != 0) {
		/* its own words, e.g. no /dev/net/tun or no CAP_NET_ADMIN in a container */
		if (ov->wggo_error[0])
			set_down(ov, "wireguard-go cannot create %s: %s", iface, ov->wggo_error);
		else
			set_down(ov, "waiting for wireguard-go to create %s", iface);
		return 0;
	}
	r = rtnl_link_create(ov->rtnl, iface, "wireguard");
	if (r < 0 && r != -EEXIST) {
		set_down(ov, "cannot create %s: %s", iface, strerror(-r));
		return 0;
	}
	return if_nametoindex(iface);
}

/* ensure_sysctl() - make a one-character /proc/sys value @want; count a fix. */
static void ensure_sysctl(struct overlay *ov, const char *path, char want, const char *what)
{
	char v = 0, line[2] = { want, '\n' };
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	if (read(fd, &v, 1) == 1 && v != want) {
		if (pwrite(fd, line, 2, 0) == 2)
			repaired(ov, what);
		else
			log_warn("overlay", "cannot set sysctl path=%s", path);
	}
	close(fd);
}

/*
 * The hub routes between spokes: IPv4 forwarding on in its network
 * namespace. It routes wg0 back out of wg0, which makes the kernel send
 * ICMP redirects to the spokes; they are useless there (the spokes only
 * know the hub) and the firewall would drop them as hub-originated
 * traffic, so they are turned off (they go out if "all" or the device
 * asks for them).
 */
static void ensure_forwarding(struct overlay *ov)
{
	char path[96];

	ensure_sysctl(ov, "/proc/sys/net/ipv4/ip_forward", '1', "ip_forward");
	ensure_sysctl(ov, "/proc/sys/net/ipv4/conf/all/send_redirects", '0', "send_redirects");
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/send_redirects",
		 ov->conf->cluster.interface);
	ensure_sysctl(ov, path, '0', "send_redirects");
}

#define MTU_DEFAULT 1420 /* WireGuard's own default: a 1500-byte path */
#define MTU_MIN 1280     /* IPv6's minimum */

/*
 * The underlay's MTU, as the kernel's routes know it: toward the hub on a
 * spoke; on the hub, whose peers are wherever the spokes are, out of the
 * default route (looked up for a documentation address: a lookup in the
 * kernel's tables, nothing is sent). 0: unknown.
 */
static unsigned underlay_mtu(struct overlay *ov)
{
	struct sockaddr_storage dst = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&dst;
	unsigned mtu = 0;

	if (conf_self(ov->conf)->kind == CONF_NODE_SPOKE) {
		if (!ov->hub_ep.have)
			return 0;
		dst = ov->hub_ep.addr;
	} else {
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, "198.51.100.1", &sin->sin_addr);
	}
	return rtnl_path_mtu(ov->rtnl, &dst, &mtu) == 0 ? mtu : 0;
}

/* cluster.mtu, or with "auto" the path's MTU less WireGuard's overhead (wg-quick's rule). */
static unsigned wanted_mtu(struct overlay *ov)
{
	struct overlay_status *st = &ov->status;

	st->path_mtu = underlay_mtu(ov);
	st->mtu_auto = !ov->conf->cluster.mtu;
	if (!st->mtu_auto)
		return ov->conf->cluster.mtu;
	if (!st->path_mtu)
		return MTU_DEFAULT;
	return st->path_mtu >= MTU_MIN + OVERLAY_WG_OVERHEAD ? st->path_mtu - OVERLAY_WG_OVERHEAD : MTU_MIN;
}

static void ensure_ip_stack(struct overlay *ov, unsigned ifindex)
{
	const struct conf *c = ov->conf;
	const struct conf_node *me = conf_self(c);
	unsigned want = wanted_mtu(ov);
	bool up = false;
	unsigned mtu = 0;
	int r;

	if ((r = rtnl_link_get(ov->rtnl, ifindex, &up, &mtu)) < 0)
		log_warnx("overlay", "cannot read the link error=\"%s\"", strerror(-r));
	else if (!up || mtu != want) {
		if ((r = rtnl_link_set(ov->rtnl, ifindex, true, want)) < 0)
			log_warnx("overlay", "cannot bring the link up error=\"%s\"", strerror(-r));
		else if (!up)
			repaired(ov, "link-up");
		else if (want != ov->status.mtu)
			log_info("overlay", "mtu set mtu=%u was=%u path_mtu=%u source=%s", want, mtu,
				 ov->status.path_mtu, ov->status.mtu_auto ? "path" : "cluster.mtu");
		else
			repaired(ov, "mtu");
	}
	ov->status.mtu = want;
	ov->status.link_up = true;
	if (rtnl_addr_has(ov->rtnl, ifindex, me->overlay_ip, c->cluster.network.prefix) == 0) {
		if ((r = rtnl_addr_add(ov->rtnl, ifindex, me->overlay_ip, c->cluster.network.prefix)) < 0)
			log_warnx("overlay", "cannot add the address error=\"%s\"", strerror(-r));
		else
			repaired(ov, "address");
	}
	if (rtnl_route_has(ov->rtnl, ifindex, c->cluster.network.addr, c->cluster.network.prefix) == 0) {
		if ((r = rtnl_route_add(ov->rtnl, ifindex, c->cluster.network.addr,
					c->cluster.network.prefix)) < 0)
			log_warnx("overlay", "cannot add the route error=\"%s\"", strerror(-r));
		else
			repaired(ov, "route");
	}
	if (me->kind == CONF_NODE_HUB)
		ensure_forwarding(ov);
}

/*
 * A handshake value the device reports: a new one (it differs from the last
 * value seen) happened since the previous pass, so its monotonic time is
 * now less what the wall clock says, clamped to that interval; the first
 * one seen (a session older than this process) is placed by the wall clock
 * alone, clamped to not after now.
 */
static void note_handshake(struct peer_memory *m, int64_t device_ms, int64_t now_wall_ms,
			   uint64_t now_mono_ms, uint64_t since_last_pass_ms)
{
	int64_t behind = now_wall_ms - device_ms;

	if (!device_ms || device_ms == m->device_hs_ms)
		return;
	if (behind < 0)
		behind = 0;
	if (m->device_hs_ms && (uint64_t)behind > since_last_pass_ms)
		behind = (int64_t)since_last_pass_ms;
	if ((uint64_t)behind > now_mono_ms)
		behind = (int64_t)now_mono_ms;
	m->device_hs_ms = device_ms;
	m->last_handshake_ms = device_ms;
	m->handshake_mono_ms = now_mono_ms - (uint64_t)behind;
	if (!m->handshake_mono_ms)
		m->handshake_mono_ms = 1; /* 0 means never */
}

/* The node's peers as status rows, judged against the threshold. */
static void judge(struct overlay *ov, const struct wg_device *want, const struct wg_device *have)
{
	const struct conf *c = ov->conf;
	struct overlay_status *st = &ov->status;
	struct timespec ts;
	int64_t now_wall, age_ms;
	uint64_t now = now_ms();
	uint64_t since = ov->last_judge_ms ? now - ov->last_judge_ms : POLL_MS;
	bool any_stale = false, any_never = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	ov->last_judge_ms = now;

	st->n_peers = 0;
	st->n_fresh = 0;
	st->max_age_s = 0;
	if (want->n_peers > ov->peers_cap) { /* no fixed limit: a hub may have 1000s of spokes */
		st->peers = xreallocarray(st->peers, want->n_peers, sizeof(*st->peers));
		ov->peers_cap = want->n_peers;
	}
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct wg_peer *w = &want->peers[i];
		const struct wg_peer *h = find_peer(have, w->public_key);
		struct peer_memory *m = memory_of(ov, w->public_key);
		struct overlay_peer_status *ps = &st->peers[st->n_peers++];
		const struct conf_node *node = NULL;

		/* build_desired()'s order: the hub's peer i is node i + 1, a spoke's is the hub */
		node = conf_self(c)->kind == CONF_NODE_HUB ? (i + 1 < c->n_nodes ? &c->nodes[i + 1] : NULL) :
		       conf_hub(c);
		if (node && memcmp(node->public_key, w->public_key, WG_KEY_LEN) != 0)
			node = NULL;
		for (size_t k = 0; !node && k < c->n_nodes; k++)
			if (!memcmp(c->nodes[k].public_key, w->public_key, WG_KEY_LEN))
				node = &c->nodes[k];
		memset(ps, 0, sizeof(*ps));
		ps->name = node ? node->name : "?";
		ps->overlay_ip = node ? node->overlay_ip : (struct in_addr){ 0 };
		if (h) {
			note_handshake(m, h->last_handshake_sec ?
				       h->last_handshake_sec * 1000 + h->last_handshake_nsec / 1000000 : 0,
				       now_wall, now, since);
			ps->rx_bytes = h->rx_bytes;
			ps->tx_bytes = h->tx_bytes;
			if (h->has_endpoint) {
				wg_endpoint_str(&h->endpoint, ps->endpoint, sizeof(ps->endpoint));
				m->seen_endpoint = h->endpoint;
				m->has_seen_endpoint = true;
			}
		}
		ps->last_handshake = m->last_handshake_ms / 1000;
		ps->last_handshake_ms = m->last_handshake_ms;
		if (!m->handshake_mono_ms) {
			ps->age_s = -1;
			ps->state = TUNNEL_CONNECTING;
			any_never = true;
			continue;
		}
		age_ms = (int64_t)(now - m->handshake_mono_ms);
		ps->age_s = age_ms / 1000;
		/* Milliseconds, so "stale" shows within a poll of crossing the threshold. */
		ps->state = age_ms <= (int64_t)c->cluster.fresh_handshake_s * 1000 ? TUNNEL_FRESH :
			    TUNNEL_STALE;
		if (ps->state == TUNNEL_FRESH)
			st->n_fresh++;
		else
			any_stale = true;
		if (ps->age_s > st->max_age_s)
			st->max_age_s = ps->age_s;
	}
	if (any_never)
		st->max_age_s = -1;
	if (conf_self(c)->kind == CONF_NODE_SPOKE)
		st->state = st->n_peers ? st->peers[0].state : TUNNEL_DOWN;
	else
		st->state = any_stale ? TUNNEL_STALE : any_never ? TUNNEL_CONNECTING : TUNNEL_FRESH;
	st->last_error[0] = '\0';
}

/* Spoke only: force a new handshake with a stale or silent hub peer. */
static void maybe_rearm(struct overlay *ov, const struct wg_device *want)
{
	const struct overlay_status *st = &ov->status;
	uint64_t now = now_ms();
	struct wg_device chg = { 0 };
	int r;

	if (conf_self(ov->conf)->kind != CONF_NODE_SPOKE || !want->n_peers)
		return;
	if (st->state == TUNNEL_CONNECTING && !ov->connecting_since)
		ov->connecting_since = now;
	if (st->state != TUNNEL_CONNECTING)
		ov->connecting_since = 0;
	if (ov->rearm_now) {
		ov->rearm_now = false;
	} else if (st->state == TUNNEL_CONNECTING) {
		if (now - ov->connecting_since < REARM_CONNECTING_MS ||
		    now - ov->last_rearm < REARM_CONNECTING_MS)
			return;
	} else if (st->state != TUNNEL_STALE || now - ov->last_rearm < REARM_EVERY_MS) {
		return;
	}
	ov->last_rearm = now;
	struct wg_peer *p = wg_device_add_peer(&chg);

	memcpy(p->public_key, want->peers[0].public_key, WG_KEY_LEN);
	p->flags = WG_PEER_REMOVE;
	r = ov->backend->set(ov->backend, ov->conf->cluster.interface, &chg);
	wg_device_clear(&chg);
	if (r == 0) {
		copy_peer(wg_device_add_peer(&chg), &want->peers[0], WG_PEER_REPLACE_IPS);
		r = ov->backend->set(ov->backend, ov->conf->cluster.interface, &chg);
		wg_device_clear(&chg);
	}
	ov->status.rearms++;
	log_info("overlay", "re-armed hub peer to force a handshake state=%s age_s=%lld rearms=%llu%s",
		 tunnel_state_name(st->state), (long long)st->peers[0].age_s,
		 (unsigned long long)ov->status.rearms, r < 0 ? " failed=yes" : "");
}

static void reconcile(struct overlay *ov)
{
	const char *iface = ov->conf->cluster.interface;
	enum tunnel_state before = ov->status.state;
	struct wg_device want = { 0 }, have = { 0 }, chg = { 0 };
	struct diff_counts n = { 0 };
	unsigned ifindex;
	int r;

	if (!load_key(ov)) {
		set_down(ov, "%s", ov->key_error);
		goto out;
	}
	if (choose_backend(ov) < 0 || !(ifindex = ensure_link(ov)))
		goto out;
	r = ov->backend->get(ov->backend, iface, &have);
	if (r < 0) {
		set_down(ov, "cannot read %s (%s): %s", iface, ov->backend->name, strerror(-r));
		goto out;
	}
	sort_peers(&have);
	if (conf_self(ov->conf)->kind == CONF_NODE_SPOKE)
		follow_hub_endpoint(ov);
	build_desired(ov, &want);
	diff_device(ov, &want, &have, &chg, &n);
	if (n.key || n.port || chg.n_peers) {
		r = ov->backend->set(ov->backend, iface, &chg);
		if (r < 0) {
			set_down(ov, "cannot configure %s: %s", iface, strerror(-r));
			goto out;
		}
		if (n.poked)
			log_info("overlay", "re-added peers sent a keepalive to handshake at their last address peers=%u",
				 n.poked);
		/* (not when only the keepalives of the last pass's poked peers were cleared) */
		bool changed = n.key || n.port || n.added || n.removed || n.updated;

		if (changed && (ov->applied_generation != ov->conf_generation || !ov->configured_once))
			log_info("overlay", "configured interface=%s peers_added=%u peers_removed=%u peers_updated=%u key=%s",
				 iface, n.added, n.removed, n.updated, n.key ? "set" : "kept");
		else if (changed && !ov->rearm_now) /* a new hub address is not a repair */
			repaired(ov, n.key ? "device" : "peers");
		if (n.key && have.has_private_key)
			key_replaced(ov, &want);
	}
	ensure_ip_stack(ov, ifindex);
	judge(ov, &want, &have);
	ov->configured_once = true;
	ov->applied_generation = ov->conf_generation;
	maybe_rearm(ov, &want);
out:
	ov->status.backend = ov->backend ? ov->backend->name : "none";
	wg_device_clear(&want);
	wg_device_clear(&have);
	wg_device_clear(&chg);
	uint64_t want_poll = ov->status.state == TUNNEL_DOWN || ov->status.state == TUNNEL_CONNECTING ?
			     POLL_FAST_MS : POLL_MS;

	if (want_poll != ov->poll_ms) {
		ov->poll_ms = want_poll;
		loop_timer_arm(ov->timer, want_poll, want_poll);
	}
	if (ov->status.state != before) {
		log_info("overlay", "tunnel state=%s was=%s", tunnel_state_name(ov->status.state),
			 tunnel_state_name(before));
		if (ov->on_change)
			ov->on_change(ov->on_change_data, ov->status.state);
	}
}

static void on_poll(struct loop_source *src, void *data)
{
	(void)src;
	reconcile(data);
}

/* ---- public ------------------------------------------------------------------- */

int overlay_new(struct loop *loop, struct child_set *children, const struct conf *conf,
		struct overlay **out)
{
	struct overlay *ov = xcalloc(1, sizeof(*ov));
	int r;

	ov->loop = loop;
	ov->children = children;
	ov->conf = conf;
	ov->conf_generation = 1;
	ov->status.state = TUNNEL_DOWN;
	ov->status.interface = conf->cluster.interface;
	ov->status.backend = "none";
	if ((r = rtnl_open(&ov->rtnl)) < 0 || (r = loop_add_timer(loop, on_poll, ov, &ov->timer)) < 0) {
		overlay_free(ov);
		return r;
	}
	ov->poll_ms = POLL_FAST_MS;
	loop_timer_arm(ov->timer, 1, POLL_FAST_MS);
	*out = ov;
	return 0;
}

struct overlay *overlay_free(struct overlay *ov)
{
	if (!ov)
		return NULL;
	loop_remove(ov->timer);
	rtnl_close(ov->rtnl);
	if (ov->backend)
		ov->backend->free(ov->backend);
	explicit_zero(ov->private_key, sizeof(ov->private_key));
	free(ov->mem);
	free(ov->status.peers);
	hub_endpoint_clear(&ov->hub_ep);
	free(ov);
	return NULL;
}

void overlay_set_conf(struct overlay *ov, const struct conf *conf)
{
	ov->conf = conf;
	ov->conf_generation++;
	ov->status.interface = conf->cluster.interface;
	/*
	 * A reload re-reads the private key, even from the same file: that is
	 * how a rotated key (`supervisor cluster rotate-key`) takes effect.
	 * Peers are reconciled as a diff, so no other session drops.
	 */
	ov->have_key = false;
	reconcile(ov);
}

void overlay_on_change(struct overlay *ov, void (*fn)(void *data, enum tunnel_state st), void *data)
{
	ov->on_change = fn;
	ov->on_change_data = data;
}

const struct overlay_status *overlay_status(const struct overlay *ov)
{
	return &ov->status;
}
