// SPDX-License-Identifier: MIT
/*
 * etcd as one of this node's supervised children: one member per Postgres
 * spoke, peers on the overlay IP (the derived acl opens the peer port
 * between them), clients on loopback only. It starts once the hub tunnel
 * was fresh (the overlay IP exists to bind to) and is restarted like any
 * child. Timing follows the path: every peer message crosses the hub, about
 * 145 ms between spokes, so heartbeats of 200 ms and elections after 2 s
 * (etcd's tuning guide: heartbeat 0.5-1.5x the round trip, election 10x).
 */
#include "ha/ha_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Appends one string to @buf at *@o; Return: it, or NULL when full. */
static const char *put(char *buf, size_t size, size_t *o, const char *fmt, ...) _printf_(4, 5);
static const char *put(char *buf, size_t size, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= size)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, size - *o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 1 > size - *o)
		return NULL;
	*o += (size_t)n + 1;
	return buf + *o - (size_t)n - 1;
}

int ha_etcd_argv(const struct conf *conf, char *buf, size_t size, const char *argv[32])
{
	const struct conf_node *me = conf_self(conf);
	const struct conf_ha *h = &conf->ha;
	char ip[16], cluster[2048], net[16];
	size_t o = 0, n = 0, c = 0;

	cluster[0] = '\0';
	for (size_t i = 0; i < conf->n_nodes; i++) {
		const struct conf_node *m = &conf->nodes[i];
		int w;

		if (m->kind != CONF_NODE_SPOKE || m->pg_role == CONF_PG_NONE)
			continue;
		w = snprintf(cluster + c, sizeof(cluster) - c, "%s%s=http://%s:%u", c ? "," : "", m->name,
			     conf_ip_str(m->overlay_ip, ip), h->peer_port);
		if (w < 0 || (size_t)w >= sizeof(cluster) - c)
			return -ENOSPC;
		c += (size_t)w;
	}
	conf_ip_str(me->overlay_ip, ip);
	conf_ip_str(conf->cluster.network.addr, net);
#define ARG(...) do { if (n >= 31 || !(argv[n++] = put(buf, size, &o, __VA_ARGS__))) return -ENOSPC; } while (0)
	ARG("%s", h->etcd_bin);
	ARG("--name=%s", me->name);
	ARG("--data-dir=%s", h->data_dir);
	ARG("--listen-peer-urls=http://%s:%u", ip, h->peer_port);
	ARG("--initial-advertise-peer-urls=http://%s:%u", ip, h->peer_port);
	ARG("--listen-client-urls=http://127.0.0.1:%u", h->client_port);
	ARG("--advertise-client-urls=http://127.0.0.1:%u", h->client_port);
	ARG("--initial-cluster=%s", cluster);
	ARG("--initial-cluster-state=new");
	/* A token per overlay network: members of another cluster's etcd cannot join by mistake. */
	ARG("--initial-cluster-token=supervisor-%s-%u", net, conf->cluster.network.prefix);
	ARG("--heartbeat-interval=200");
	ARG("--election-timeout=2000");
	/*
	 * A member cut off for longer than the election timeout (a flapping
	 * link) would otherwise come back with a higher term and depose a
	 * healthy leader: a needless election that stalls every lease renewal.
	 */
	ARG("--pre-vote=true");
	/* Revisions pile up at one member record a second: keep an hour (stolon#485). */
	ARG("--auto-compaction-mode=periodic");
	ARG("--auto-compaction-retention=1h");
	ARG("--logger=zap");
	ARG("--log-level=warn");
#undef ARG
	argv[n] = NULL;
	return 0;
}

static int mkdir_p(const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ha_etcd_start(struct ha *ha)
{
	char buf[4096];
	const char *argv[32];
	const char *env[] = { "PATH=/usr/bin:/bin", NULL };
	struct child_spec spec = {
		.name = HA_ETCD_CHILD_NAME,
		.argv = argv,
		.env = env,
		.restart = CHILD_RESTART_ALWAYS,
		.stop = { { SIGTERM, 5000 } },
		.n_stop = 1,
		.owner = "ha",
	};
	int r;

	if ((r = ha_etcd_argv(ha->conf, buf, sizeof(buf), argv)) < 0) {
		log_errorx("ha", "etcd's command line does not fit");
		return r;
	}
	/* Its data: the member's identity and the cluster's state; 0700, root's. */
	if ((r = mkdir_p(ha->conf->ha.data_dir)) < 0) {
		errno = -r;
		log_warn("ha", "cannot create dir=%s", ha->conf->ha.data_dir);
		return r;
	}
	if ((r = child_add(ha->children, &spec, NULL)) < 0) {
		log_errorx("ha", "cannot add etcd: %s", strerror(-r));
		return r;
	}
	log_info("ha", "etcd added peer_port=%u client=127.0.0.1:%u dir=%s", ha->conf->ha.peer_port,
		 ha->conf->ha.client_port, ha->conf->ha.data_dir);
	return 0;
}
