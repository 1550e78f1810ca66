// SPDX-License-Identifier: MIT
/*
 * wireguard-go's UAPI: "key=value" lines over an AF_UNIX socket at
 * /var/run/wireguard/IFACE.sock (wireguard.com/xplatform). Keys travel as
 * lowercase hex here. The parser and the formatter are pure functions;
 * the socket exchange has a short deadline so a wedged wireguard-go cannot
 * hold the event loop for long.
 */
#include "overlay/overlay_internal.h"
#include "lib/mem.h"
#include "lib/unixsock.h"
#include "lib/wgkey.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* 64 MiB: some 200 000 peers, more than a /16 overlay holds. */
#define UAPI_REPLY_MAX (64u << 20)

void wg_device_clear(struct wg_device *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed);
	free(dev->peers);
	explicit_zero(dev, sizeof(*dev));
}

/*
 * grow_to() - the capacity an array of @n elements needs before its next
 * append: doubled whenever @n is 0 or a power of two, so that appending N
 * elements copies O(N) of them, not O(N^2) (a dump of 5000 peers, and under
 * ASan, whose realloc always moves, the difference is seconds).
 * Return: the new capacity, or 0 when the array already has room.
 */
static size_t grow_to(size_t n)
{
	return (n & (n - 1)) == 0 ? (n ? 2 * n : 1) : 0;
}

struct wg_peer *wg_device_add_peer(struct wg_device *dev)
{
	size_t cap = grow_to(dev->n_peers);

	if (cap)
		dev->peers = xreallocarray(dev->peers, cap, sizeof(*dev->peers));
	memset(&dev->peers[dev->n_peers], 0, sizeof(dev->peers[0]));
	return &dev->peers[dev->n_peers++];
}

void wg_peer_add_allowed(struct wg_peer *p, struct in_addr addr, uint8_t cidr)
{
	size_t cap = grow_to(p->n_allowed);

	if (cap)
		p->allowed = xreallocarray(p->allowed, cap, sizeof(*p->allowed));
	p->allowed[p->n_allowed++] = (struct wg_allowedip){ addr, cidr };
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* By hand, not sscanf: a hub's reply has a key per spoke, 1000s of them, every pass. */
static bool hex_key(const char *hex, uint8_t key[WG_KEY_LEN])
{
	if (strlen(hex) != 2 * WG_KEY_LEN)
		return false;
	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static void key_hex(const uint8_t key[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1])
{
	for (size_t i = 0; i < WG_KEY_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", key[i]);
}

bool wg_parse_endpoint(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;
	size_t hl;

	if (!colon)
		return false;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return false;
	hl = (size_t)(colon - s);
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a4->sin_addr) == 1;
}

const char *wg_endpoint_str(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		snprintf(buf, size, "%s:%u", inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)),
			 ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		snprintf(buf, size, "[%s]:%u", inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)),
			 ntohs(a->sin6_port));
	} else {
		snprintf(buf, size, "%s", "");
	}
	return buf;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !*end && !errno;
}

int wg_uapi_parse_get(const char *text, struct wg_device *dev)
{
	const char *line = text;
	struct wg_peer *peer = NULL;
	bool saw_errno = false;
	int err = 0;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[256], *eq;
		uint64_t v;

		if (len == 0)
			break; /* the blank line that ends the reply */
		if (len >= sizeof(buf))
			return -EPROTO;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line += len + (nl ? 1 : 0);
		eq = strchr(buf, '=');
		if (!eq)
			return -EPROTO;
		*eq = '\0';
		const char *key = buf, *val = eq + 1;

		if (strcmp(key, "errno") == 0) {
			if (!parse_u64(val, &v) && !(val[0] == '-' && parse_u64(val + 1, &v)))
				return -EPROTO;
			err = atoi(val);
			saw_errno = true;
		} else if (strcmp(key, "private_key") == 0) {
			if (!hex_key(val, dev->private_key))
				return -EPROTO;
			dev->has_private_key = true;
		} else if (strcmp(key, "listen_port") == 0) {
			if (!parse_u64(val, &v) || v > 65535)
				return -EPROTO;
			dev->listen_port = (uint16_t)v;
			dev->has_listen_port = true;
		} else if (strcmp(key, "public_key") == 0) {
			peer = wg_device_add_peer(dev);
			if (!hex_key(val, peer->public_key))
				return -EPROTO;
		} else if (!peer) {
			continue; /* fwmark and device keys we do not use */
		} else if (strcmp(key, "endpoint") == 0) {
			if (!wg_parse_endpoint(val, &peer->endpoint))
				return -EPROTO;
			peer->has_endpoint = true;
		} else if (strcmp(key, "last_handshake_time_sec") == 0) {
			if (!parse_u64(val, &v))
				return -EPROTO;
			peer->last_handshake_sec = (int64_t)v;
		} else if (strcmp(key, "last_handshake_time_nsec") == 0) {
			if (!parse_u64(val, &v) || v >= 1000000000)
				return -EPROTO;
			peer->last_handshake_nsec = (int64_t)v;
		} else if (strcmp(key, "rx_bytes") == 0) {
			if (!parse_u64(val, &peer->rx_bytes))
				return -EPROTO;
		} else if (strcmp(key, "tx_bytes") == 0) {
			if (!parse_u64(val, &peer->tx_bytes))
				return -EPROTO;
		} else if (strcmp(key, "persistent_keepalive_interval") == 0) {
			if (!parse_u64(val, &v) || v > 65535)
				return -EPROTO;
			peer->keepalive = (uint16_t)v;
			peer->has_keepalive = true;
		} else if (strcmp(key, "allowed_ip") == 0) {
			char *slash = strchr(val, '/');
			struct in_addr a;

			if (!slash)
				return -EPROTO;
			*slash = '\0';
			if (!parse_u64(slash + 1, &v))
				return -EPROTO;
			if (inet_pton(AF_INET, val, &a) != 1)
				continue; /* IPv6 allowed IPs are not ours */
			if (v > 32)
				return -EPROTO;
			wg_peer_add_allowed(peer, a, (uint8_t)v);
		}
		/* preshared_key, protocol_version: not needed */
	}
	if (!saw_errno)
		return -EPROTO;
	return err > 0 ? -err : err;
}

char *wg_uapi_format_set(const struct wg_device *dev)
{
	char *out = NULL, hex[2 * WG_KEY_LEN + 1], ep[80], ip[16];
	size_t len = 0;
	FILE *f = xmemstream(&out, &len);

	fputs("set=1\n", f);
	if (dev->has_private_key) {
		key_hex(dev->private_key, hex);
		fprintf(f, "private_key=%s\n", hex);
		explicit_zero(hex, sizeof(hex));
	}
	if (dev->has_listen_port)
		fprintf(f, "listen_port=%u\n", dev->listen_port);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		key_hex(p->public_key, hex);
		fprintf(f, "public_key=%s\n", hex);
		if (p->flags & WG_PEER_REMOVE) {
			fputs("remove=true\n", f);
			continue;
		}
		if (p->flags & WG_PEER_UPDATE_ONLY)
			fputs("update_only=true\n", f);
		if (p->has_endpoint)
			fprintf(f, "endpoint=%s\n", wg_endpoint_str(&p->endpoint, ep, sizeof(ep)));
		if (p->has_keepalive)
			fprintf(f, "persistent_keepalive_interval=%u\n", p->keepalive);
		if (p->flags & WG_PEER_REPLACE_IPS)
			fputs("replace_allowed_ips=true\n", f);
		for (size_t k = 0; k < p->n_allowed; k++)
			fprintf(f, "allowed_ip=%s/%u\n",
				inet_ntop(AF_INET, &p->allowed[k].addr, ip, sizeof(ip)), p->allowed[k].cidr);
	}
	fputs("\n", f);
	fclose(f);
	return out;
}

/* The reply ends with "errno=N\n\n". */
static bool uapi_reply_complete(const char *buf, size_t len)
{
	return len >= 2 && !strcmp(buf + len - 2, "\n\n") && strstr(buf, "errno=");
}

/* One request/reply exchange with a 1 s deadline. */
static int uapi_exchange(const char *iface, const char *request, char **reply)
{
	char path[108];

	snprintf(path, sizeof(path), "%s/%s.sock", WG_UAPI_DIR, iface);
	/*
	 * The cap only guards against a runaway child: a reply is ~300 bytes a
	 * peer (1000 spokes: 300 KiB), and the buffer grows only as needed.
	 */
	return unix_request(path, request, 1, UAPI_REPLY_MAX, uapi_reply_complete, reply);
}

static int uapi_get(struct wg_backend *b, const char *iface, struct wg_device *dev)
{
	char *reply = NULL;
	int r;

	(void)b;
	r = uapi_exchange(iface, "get=1\n\n", &reply);
	if (r < 0)
		return r;
	r = wg_uapi_parse_get(reply, dev);
	explicit_zero(reply, strlen(reply)); /* it held the private key */
	free(reply);
	return r;
}

static int uapi_set(struct wg_backend *b, const char *iface, const struct wg_device *dev)
{
	char *req = wg_uapi_format_set(dev), *reply = NULL;
	struct wg_device parsed = { 0 };
	int r;

	(void)b;
	r = uapi_exchange(iface, req, &reply);
	explicit_zero(req, strlen(req));
	free(req);
	if (r < 0)
		return r;
	r = wg_uapi_parse_get(reply, &parsed); /* just "errno=N" */
	wg_device_clear(&parsed);
	free(reply);
	return r;
}

static void uapi_free(struct wg_backend *b)
{
	free(b);
}

struct wg_backend *wg_uapi_backend(void)
{
	struct wg_backend *b = xcalloc(1, sizeof(*b));

	b->name = "userspace";
	b->get = uapi_get;
	b->set = uapi_set;
	b->free = uapi_free;
	return b;
}
