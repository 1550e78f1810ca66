/* SPDX-License-Identifier: MIT */
/*
 * Private to supervisor/: the running daemon, shared by the run command,
 * the control socket and its command handlers.
 */
#ifndef SUP_DAEMON_H
#define SUP_DAEMON_H

#include <jansson.h>

#include "backup/backup.h"
#include "conf/conf.h"
#include "firewall/firewall.h"
#include "lib/common.h"
#include "lib/health.h"
#include "overlay/overlay.h"
#include "pgwatch/pgwatch.h"

#define CONTROL_REQUEST_MAX 512     /* one request line, newline included */
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_CLIENT_TIMEOUT_MS 2000

struct control;
struct http;

struct daemon {
	struct loop *loop;
	struct child_set *children;
	struct conf *conf;
	const char *conf_path;
	char *node;                /* as given (-n/env/hostname) */
	bool verbose;
	bool pid1;
	uint64_t started_ms;
	uint64_t conf_loaded_ms;   /* wall clock, for display */
	unsigned reloads;
	char *last_reload_error;   /* NULL after a good reload */
	struct control *control;
	struct http *http;
	struct firewall *firewall;
	struct overlay *overlay;
	struct pgwatch *pgwatch;
	struct backup *backup;
	char *self_exe;            /* this binary, for backup runs */
	int exit_code;
	struct conf_child *pending; /* changed children waiting for the old one to exit */
	size_t n_pending;
};

/**
 * daemon_reload() - re-read the cluster file and apply it, or keep the old one.
 * @d: the daemon.
 * @errors: receives every error when the new file is invalid (may be NULL).
 *
 * Return: 0, or CONF_E_INVALID with the old configuration still in force.
 */
int daemon_reload(struct daemon *d, json_t *errors);

/* control_open() - listen on control.socket (0600, stale socket replaced). Return: 0 or -errno. */
int control_open(struct daemon *d, struct control **out) _must_check_;
struct control *control_close(struct control *c);

/**
 * control_dispatch() - run one request line and build its reply.
 * @d: the daemon.
 * @line: the request without its newline ("status", "reload", ...).
 *
 * Return: the reply object (caller owns it); never NULL.
 */
json_t *control_dispatch(struct daemon *d, const char *line);

/**
 * http_open() - serve /status, /metrics, /healthz, /primary, /replica on
 * status.listen from the loop; a busy port is retried every 5 s.
 * @d: the daemon (its modules must exist: the first snapshot is taken now).
 * @out: receives the server.
 *
 * Return: 0 or -errno (only for the loop's own failures).
 */
int http_open(struct daemon *d, struct http **out) _must_check_;
struct http *http_close(struct http *h);
/* http_parse_lag_limit() - ?max_lag_bytes=N: 1 to 19 decimal digits, nothing else. */
bool http_parse_lag_limit(const char *s, uint64_t *out);


/* tunnel_health() - the tunnel's part of a node's health; appends reasons. */
enum health tunnel_health(const struct overlay_status *ov, json_t *reasons);
/* tunnel_peers_json() - one row per peer, for ctl tunnel and /status alike. */
json_t *tunnel_peers_json(const struct overlay_status *ov);
/* mtu_json() - {value, auto, path}: the interface's MTU, whether from the path, the path's. */
json_t *mtu_json(const struct overlay_status *ov);
/* hub_endpoint_json() - a spoke's hub endpoint {host, address, resolved_at, error}; null on the hub. */
json_t *hub_endpoint_json(const struct overlay_status *ov);
/* daemon_health() - the node's health, for ctl status and /status alike. */
enum health daemon_health(struct daemon *d, json_t *reasons);
/* status_document() - the public /status JSON (no secrets). Caller owns it. */
json_t *status_document(struct daemon *d);
/* metrics_text() - Prometheus text for @doc (from status_document). Caller frees. */
char *metrics_text(struct daemon *d, const json_t *doc);

#endif
