/* SPDX-License-Identifier: MIT */
/*
 * The daemon (`supervisor run`): one event loop that owns the children,
 * wg0, the firewall, Postgres, backups, the control socket and the HTTP
 * status. The command line (cli/) starts it with daemon_run() and talks
 * to a running one over the control protocol below; nothing else of the
 * daemon is public.
 */
#ifndef SUP_SUPERVISOR_H
#define SUP_SUPERVISOR_H

#include <stdbool.h>

struct conf;

/* ---- the control protocol (supervisor/control.c, `supervisor ctl`) ------- */

/*
 * One request line per connection ("status\n", "reload\n", ...), one JSON
 * object back: {"v": CONTROL_PROTOCOL_VERSION, "ok": bool, "command": name,
 * "error": text, ...}. A change to what a reply means is a new version;
 * a client refuses a reply of another version.
 */
#define CONTROL_PROTOCOL_VERSION 1
#define CONTROL_REQUEST_MAX 512 /* one request line, newline included */

/* ---- the daemon ----------------------------------------------------------- */

struct daemon_opts {
	struct conf *conf;       /* loaded by the caller; daemon_run() takes it over */
	const char *conf_path;   /* for reloads */
	const char *node;        /* as given (-n/env/hostname), for reloads */
	const char *argv0;       /* when /proc/self/exe cannot be resolved */
	bool verbose;            /* debug logging, whatever log.level says */
};

/**
 * daemon_run() - run the node until SIGTERM/SIGINT/SIGQUIT or a required
 * child gives up, then stop everything within the shutdown budget.
 * @opts: what to run; @opts->conf is freed before this returns.
 *
 * Return: the process exit status (0 after a clean stop, 1 otherwise).
 */
int daemon_run(const struct daemon_opts *opts);

#endif
