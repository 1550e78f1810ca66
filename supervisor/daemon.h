/* SPDX-License-Identifier: MIT */
/*
 * Private to supervisor/: the running daemon, shared by the run command,
 * the control socket and its command handlers.
 */
#ifndef SUP_DAEMON_H
#define SUP_DAEMON_H

#include <jansson.h>

#include "conf/conf.h"
#include "firewall/firewall.h"
#include "lib/common.h"
#include "overlay/overlay.h"
#include "pgwatch/pgwatch.h"

#define CONTROL_REQUEST_MAX 512     /* one request line, newline included */
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_CLIENT_TIMEOUT_MS 2000

struct control;

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
	struct firewall *firewall;
	struct overlay *overlay;
	struct pgwatch *pgwatch;
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

/* control_open() - listen on @path (0600, stale socket replaced). Return: 0 or -errno. */
int control_open(struct daemon *d, const char *path, struct control **out) _must_check_;
struct control *control_close(struct control *c);

/**
 * control_dispatch() - run one request line and build its reply.
 * @d: the daemon.
 * @line: the request without its newline ("status", "reload", ...).
 *
 * Return: the reply object (caller owns it); never NULL.
 */
json_t *control_dispatch(struct daemon *d, const char *line);

/* Health as the Nagios-style exit codes of `supervisor ctl`. */
enum health {
	HEALTH_OK = 0,
	HEALTH_DEGRADED = 1,
	HEALTH_CRITICAL = 2,
	HEALTH_UNKNOWN = 3,
};
const char *health_name(enum health h);

#endif
