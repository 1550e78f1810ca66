/* SPDX-License-Identifier: MIT */
/*
 * Private to supervisor/: the running daemon, shared by daemon.c, the
 * control socket, its command handlers and the status renderers. The
 * command line sees only supervisor/supervisor.h.
 */
#ifndef SUP_DAEMON_H
#define SUP_DAEMON_H

#include <jansson.h>

#include "backup/backup.h"
#include "child/child.h"
#include "conf/conf.h"
#include "firewall/firewall.h"
#include "ha/ha.h"
#include "lib/common.h"
#include "lib/health.h"
#include "lib/loop.h"
#include "lib/notify.h"
#include "overlay/overlay.h"
#include "pgwatch/pgwatch.h"
#include "supervisor/supervisor.h"

#define CONTROL_CLIENTS_MAX 16
#define CONTROL_CLIENT_TIMEOUT_MS 2000

struct control;
struct http;

struct daemon {
	struct loop *loop;
	struct child_set *children;
	struct conf *conf;         /* what the modules see: with HA, the file seen with the current leader */
	struct conf *file_conf;    /* with HA: the cluster file's own; NULL otherwise */
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
	struct ha *ha;             /* high availability (inert when ha.mode is off) */
	struct notify *notify;     /* the service manager (systemd), if any */
	bool ready;                /* READY=1 was sent: wg0 up, firewall applied */
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

/* High availability's control commands (ctl_ha.c). */
void ctl_ha(struct daemon *d, const char *args, json_t *reply);
void ctl_switchover(struct daemon *d, const char *args, json_t *reply);
void ctl_failover(struct daemon *d, const char *args, json_t *reply);

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


#endif
