// SPDX-License-Identifier: MIT
/*
 * The status service on status.listen (:8000), serving a snapshot the event
 * loop renders once a second. libmicrohttpd runs in a thread of its own, so
 * a request never waits for the loop either: not for Postgres, a child, or
 * a long netlink read-back (a 250-spoke hub's firewall check takes 100 ms).
 * The thread touches nothing but the current response objects, under one
 * mutex; they are built in advance, and libmicrohttpd counts references,
 * so a snapshot replaced while a slow client still reads the old one is
 * freed only after it. The thread starts with every signal blocked (the
 * supervisor blocks them all first), so signals still all go to the loop.
 *
 * Routes: /status (JSON), /metrics (Prometheus), /healthz, /primary and
 * /replica (200 or 503, for load balancers), GET and HEAD only. The port is
 * public: requests are limited in size (16 KiB per connection), number
 * (256, of which 64 per client address) and time (10 s idle), and the
 * parser is libmicrohttpd's in strict mode. The same once-a-second
 * snapshot gives systemd its STATUS= line (status_line(), lib/notify.h).
 */
#include "supervisor/snapshot.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#define REFRESH_MS 1000
#define RETRY_MS 5000
#define CONN_LIMIT 256
#define PER_IP_LIMIT 64
#define IDLE_TIMEOUT_S 10
#define CONN_MEMORY 16384

struct http {
	struct daemon *d;
	struct MHD_Daemon *mhd;
	struct loop_source *refresh, *retry;
	pthread_mutex_t lock;        /* guards the snapshot below against the server thread */
	struct MHD_Response *status, *metrics, *healthz, *primary, *replica, *not_found, *not_allowed;
	unsigned healthz_code, primary_code, replica_code;
	bool replica_ready;
	int64_t replica_lag_bytes;   /* -1: unknown */
	char listen[80];
};

/* ---- responses ----------------------------------------------------------------- */

static struct MHD_Response *response(char *body, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);

	if (!r)
		fatalx("http", "out of memory");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	return r;
}

static struct MHD_Response *json_response(json_t *o)
{
	char *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
	char *text = xasprintf("%s\n", body);

	free(body);
	json_decref(o);
	return response(text, "application/json");
}

static void swap(struct MHD_Response **a, struct MHD_Response **b)
{
	struct MHD_Response *t = *a;

	*a = *b;
	*b = t;
}

static void drop(struct MHD_Response *r)
{
	if (r)
		MHD_destroy_response(r); /* freed when the last connection using it is done */
}

/* ---- readiness for load balancers ------------------------------------------------- */

static struct MHD_Response *ready_response(const struct node_snapshot *s, enum conf_pg_role role,
					   unsigned *code, bool *ready)
{
	json_t *why = json_array();
	bool ok = snapshot_ready(s, role, why);

	*code = ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	if (ready)
		*ready = ok;
	return json_response(json_pack("{s:s, s:s, s:b, s:o}", "node", s->self->name,
				       "role", conf_pg_role_name(role), "ready", ok, "reasons", why));
}

/**
 * http_parse_lag_limit() - parse ?max_lag_bytes=N: decimal digits only.
 * @s: the value (may be NULL).
 * @out: receives N.
 *
 * Return: true when @s is 1 to 19 digits (no sign, space or suffix).
 */
bool http_parse_lag_limit(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 19)
			return false;
		v = v * 10 + (uint64_t)(s[n] - '0');
	}
	*out = v;
	return true;
}

/* ---- the snapshot ------------------------------------------------------------------ */

/* Take a snapshot, render everything from it, swap it in under the lock; drop the old outside it. */
static void refresh(struct http *h)
{
	struct node_snapshot snap;
	struct MHD_Response *metrics, *healthz, *primary, *replica, *status;
	unsigned healthz_code, primary_code, replica_code;
	const struct pg_member *self;
	json_t *reasons = json_array();
	enum health overall;
	bool replica_ready;
	int64_t lag;

	snapshot_take(h->d, &snap);
	overall = snapshot_health(&snap, SNAP_ALL, reasons);
	metrics = response(metrics_text(&snap), "text/plain; version=0.0.4; charset=utf-8");
	healthz_code = overall == HEALTH_OK ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	healthz = json_response(json_pack("{s:s, s:o}", "overall", health_name(overall), "reasons", reasons));
	primary = ready_response(&snap, CONF_PG_PRIMARY, &primary_code, NULL);
	replica = ready_response(&snap, CONF_PG_REPLICA, &replica_code, &replica_ready);
	self = snapshot_self_member(&snap);
	lag = self && !isnan(self->replay_lag_bytes) ? (int64_t)self->replay_lag_bytes : -1;
	status = json_response(status_document(&snap));
	if (notify_enabled(h->d->notify)) { /* systemd's STATUS=, sent when it changed */
		char *line = status_line(&snap);

		notify_status(h->d->notify, line);
		free(line);
	}
	snapshot_clear(&snap);

	pthread_mutex_lock(&h->lock);
	swap(&h->metrics, &metrics);
	swap(&h->healthz, &healthz);
	swap(&h->primary, &primary);
	swap(&h->replica, &replica);
	swap(&h->status, &status);
	h->healthz_code = healthz_code;
	h->primary_code = primary_code;
	h->replica_code = replica_code;
	h->replica_ready = replica_ready;
	h->replica_lag_bytes = lag;
	pthread_mutex_unlock(&h->lock);
	/* now the old ones: freed when the last connection sending one is done */
	drop(metrics);
	drop(healthz);
	drop(primary);
	drop(replica);
	drop(status);
}

static void on_refresh(struct loop_source *src, void *data)
{
	(void)src;
	refresh(data);
}

/* ---- requests --------------------------------------------------------------------- */

typedef enum MHD_Result route_fn(struct http *h, struct MHD_Connection *c);

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, struct MHD_Response *r)
{
	return MHD_queue_response(c, code, r);
}

/* Route handlers run in the server thread with h->lock held. */
static enum MHD_Result get_status(struct http *h, struct MHD_Connection *c)
{
	return reply(c, MHD_HTTP_OK, h->status);
}

static enum MHD_Result get_metrics(struct http *h, struct MHD_Connection *c)
{
	return reply(c, MHD_HTTP_OK, h->metrics);
}

static enum MHD_Result get_healthz(struct http *h, struct MHD_Connection *c)
{
	return reply(c, h->healthz_code, h->healthz);
}

static enum MHD_Result get_primary(struct http *h, struct MHD_Connection *c)
{
	return reply(c, h->primary_code, h->primary);
}

static enum MHD_Result get_replica(struct http *h, struct MHD_Connection *c)
{
	const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_lag_bytes");
	struct MHD_Response *r;
	enum MHD_Result ret;
	uint64_t limit;

	if (!arg)
		return reply(c, h->replica_code, h->replica);
	if (!http_parse_lag_limit(arg, &limit)) {
		r = json_response(json_pack("{s:s}", "error", "max_lag_bytes must be a number of bytes"));
		ret = reply(c, MHD_HTTP_BAD_REQUEST, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (!h->replica_ready || h->replica_lag_bytes < 0 || (uint64_t)h->replica_lag_bytes > limit) {
		r = json_response(json_pack("{s:s, s:b, s:o, s:I}", "role", "replica", "ready", 0,
			"lag_bytes", h->replica_lag_bytes >= 0 ? json_integer(h->replica_lag_bytes) : json_null(),
			"max_lag_bytes", (json_int_t)limit));
		ret = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
		MHD_destroy_response(r);
		return ret;
	}
	return reply(c, MHD_HTTP_OK, h->replica);
}

static const struct {
	const char *path;
	route_fn *fn;
} routes[] = {
	{ "/status", get_status },
	{ "/metrics", get_metrics },
	{ "/healthz", get_healthz },
	{ "/primary", get_primary },
	{ "/replica", get_replica },
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	static int seen;
	struct http *h = cls;

	(void)version;
	(void)upload;
	/*
	 * The first call only announces the request. A response queued then
	 * makes libmicrohttpd (0.9.7x) discard the rest and close the
	 * connection, so keep-alive needs the answer on the second call.
	 */
	if (*req_cls != &seen) {
		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_size) { /* a body on a read-only service: ignore it, answer 405 below */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, h->not_allowed);
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		enum MHD_Result r;

		if (strcmp(url, routes[i].path) != 0)
			continue;
		pthread_mutex_lock(&h->lock);
		r = routes[i].fn(h, c);
		pthread_mutex_unlock(&h->lock);
		return r;
	}
	return reply(c, MHD_HTTP_NOT_FOUND, h->not_found);
}

/* ---- the server ---------------------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[300], q[400];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	str_trim_right(msg);
	log_debug("http", "libmicrohttpd says message=%s", log_quote(q, sizeof(q), msg));
}

static int listen_addr(const struct conf_hostport *hp, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char port[8];

	snprintf(port, sizeof(port), "%u", hp->port);
	if (getaddrinfo(hp->host, port, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

static int start(struct http *h)
{
	const struct conf_hostport *hp = &conf_self(h->d->conf)->settings.status_listen;
	struct sockaddr_storage ss = { 0 };
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
	int r;

	snprintf(h->listen, sizeof(h->listen), "%s:%u", hp->host, hp->port);
	if ((r = listen_addr(hp, &ss)) < 0) {
		log_errorx("http", "status.listen is not a numeric address listen=%s", h->listen);
		return r;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_END);
	if (!h->mhd) {
		log_warnx("http", "cannot listen listen=%s retry_in_ms=%d", h->listen, RETRY_MS);
		return -EADDRINUSE;
	}
	log_info("http", "status service listening listen=%s", h->listen);
	return 0;
}

static void on_retry(struct loop_source *src, void *data)
{
	struct http *h = data;

	(void)src;
	if (start(h) < 0 && !h->mhd)
		loop_timer_arm(h->retry, RETRY_MS, 0);
}

int http_open(struct daemon *d, struct http **out)
{
	struct http *h = xcalloc(1, sizeof(*h));
	int r;

	h->d = d;
	pthread_mutex_init(&h->lock, NULL);
	h->not_found = json_response(json_pack("{s:s}", "error", "not found; try /status, /metrics, /healthz, /primary or /replica"));
	h->not_allowed = json_response(json_pack("{s:s}", "error", "read-only: GET or HEAD"));
	MHD_add_response_header(h->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if ((r = loop_add_timer(d->loop, on_refresh, h, &h->refresh)) < 0 ||
	    (r = loop_add_timer(d->loop, on_retry, h, &h->retry)) < 0) {
		http_close(h);
		return r;
	}
	refresh(h);
	loop_timer_arm(h->refresh, REFRESH_MS, REFRESH_MS);
	/* A busy port is retried: the node runs on without its status page meanwhile. */
	if (start(h) < 0 && !h->mhd)
		loop_timer_arm(h->retry, RETRY_MS, 0);
	*out = h;
	return 0;
}

struct http *http_close(struct http *h)
{
	if (!h)
		return NULL;
	loop_remove(h->refresh);
	loop_remove(h->retry);
	if (h->mhd)
		MHD_stop_daemon(h->mhd); /* joins the server thread */
	drop(h->status);
	drop(h->metrics);
	drop(h->healthz);
	drop(h->primary);
	drop(h->replica);
	drop(h->not_found);
	drop(h->not_allowed);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return NULL;
}
