// SPDX-License-Identifier: MIT
/*
 * The daemon (`supervisor run`; cli/cmd_run.c parses its options), fit to
 * be PID 1. It blocks every signal and reads them from a signalfd in its
 * one event loop; reaps every zombie (PID 1, or a child subreaper when it
 * is not); starts the supervised children; serves the control socket;
 * reloads on SIGHUP or `ctl reload` without ever dropping the running
 * configuration for a bad one; and on SIGTERM/SIGINT stops everything in
 * reverse order within the shutdown budget before it exits. Under systemd
 * (Type=notify) it says READY=1 once wg0 is up and the firewall applied,
 * RELOADING=1/READY=1 around a reload, STOPPING=1, and pings the watchdog
 * (lib/notify.h); without NOTIFY_SOCKET none of that happens.
 */
#include "supervisor/daemon.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Children declared in the cluster file; modules' own children have other owners. */
#define CONFIG_OWNER "config"

static struct child_policy policy_of(const struct conf *c)
{
	const struct conf_supervision *s = &conf_self(c)->settings.supervision;

	return (struct child_policy){
		.backoff_max_ms = s->backoff_max_ms,
		.stable_after_ms = s->stable_after_ms,
		.give_up_after = s->give_up_after,
	};
}

static struct child_spec spec_of(const struct conf_child *cc)
{
	struct child_spec sp = {
		.name = cc->name,
		.argv = cc->argv,
		.env = cc->env,
		.user = cc->user,
		.cwd = cc->cwd,
		.restart = cc->restart,
		.n_stop = cc->n_stop,
		.after = cc->after,
		.required = cc->required,
		.owner = CONFIG_OWNER,
	};

	memcpy(sp.stop, cc->stop, sizeof(sp.stop));
	return sp;
}

static bool same_vec(const char *const *a, const char *const *b)
{
	size_t i = 0;

	if (!a || !b)
		return a == b || ((!a || !a[0]) && (!b || !b[0]));
	for (; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return !a[i] && !b[i];
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_child(const struct child_spec *a, const struct child_spec *b)
{
	return same_vec(a->argv, b->argv) && same_vec(a->env, b->env) &&
	       same_str(a->user, b->user) && same_str(a->cwd, b->cwd) &&
	       a->restart == b->restart && a->n_stop == b->n_stop &&
	       memcmp(a->stop, b->stop, sizeof(a->stop[0]) * a->n_stop) == 0 &&
	       same_vec(a->after, b->after) && a->required == b->required;
}

/*
 * Children never see the WireGuard private key or the replication password:
 * when they came in through environment variables, their environment is
 * ours without them. Nor systemd's notify socket: Postgres (built with
 * systemd support) would send its own READY=1 to it.
 */
static bool is_var(const char *entry, const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return name && strncmp(entry, name, len) == 0 && entry[len] == '=';
}

static void set_child_env(struct daemon *d)
{
	const struct conf_settings *s = &conf_self(d->conf)->settings;
	size_t n = 0, k = 0;
	const char **env;

	while (environ[n])
		n++;
	env = xcalloc(n + 1, sizeof(*env));
	for (size_t i = 0; i < n; i++) {
		if (is_var(environ[i], s->keys.private_key_env) || is_var(environ[i], s->postgres.password_env) ||
		    notify_env_var(environ[i]))
			continue;
		env[k++] = environ[i];
	}
	child_set_base_env(d->children, env);
	free(env);
}

/* Bring the set in line with this node's children in the configuration. */
static void apply_children(struct daemon *d)
{
	const struct conf_node *me = conf_self(d->conf);
	struct child_status st[256];
	size_t n = child_set_status(d->children, st, ARRAY_SIZE(st));

	/* Children that are gone from the file, or changed, are stopped. */
	for (size_t i = 0; i < n; i++) {
		struct child *c = child_find(d->children, st[i].name);
		const char *owner = child_spec(c)->owner;
		bool keep = false;

		if (!owner || strcmp(owner, CONFIG_OWNER) != 0)
			continue; /* wireguard-go, postgres: their modules decide */
		for (size_t k = 0; k < me->n_children; k++) {
			struct child_spec want = spec_of(&me->children[k]);

			if (strcmp(me->children[k].name, st[i].name) == 0)
				keep = same_child(child_spec(c), &want);
		}
		if (!keep) {
			log_info("supervisor", "removing child name=%s", st[i].name);
			child_remove(c);
		}
	}
	/* New or changed ones start, a changed one once its old self has exited. */
	free(d->pending);
	d->pending = NULL;
	d->n_pending = 0;
	for (size_t k = 0; k < me->n_children; k++) {
		struct child_spec sp = spec_of(&me->children[k]);

		if (child_find(d->children, sp.name)) {
			struct child_spec have = *child_spec(child_find(d->children, sp.name));

			if (same_child(&have, &sp))
				continue;
			d->pending = xreallocarray(d->pending, d->n_pending + 1, sizeof(*d->pending));
			d->pending[d->n_pending++] = me->children[k];
			continue;
		}
		if (child_add(d->children, &sp, NULL) < 0)
			log_errorx("supervisor", "cannot add child name=%s", sp.name);
	}
}

static void add_pending(struct daemon *d)
{
	size_t k = 0;

	for (size_t i = 0; i < d->n_pending; i++) {
		struct child_spec sp = spec_of(&d->pending[i]);

		if (child_find(d->children, sp.name))
			d->pending[k++] = d->pending[i];
		else if (child_add(d->children, &sp, NULL) < 0)
			log_errorx("supervisor", "cannot add child name=%s", sp.name);
	}
	d->n_pending = k;
}

/* The split-horizon block in names.hosts_file, if configured. */
static void apply_names(struct daemon *d)
{
	int r = hosts_apply(d->conf);

	if (r < 0) {
		errno = -r;
		log_warn("names", "cannot update path=%s", conf_self(d->conf)->settings.names.hosts_file);
	}
}

static void set_modules_conf(struct daemon *d)
{
	overlay_set_conf(d->overlay, d->conf);
	pgwatch_set_conf(d->pgwatch, d->conf);
	backup_set_conf(d->backup, d->conf);
	apply_names(d);
	firewall_set_conf(d->firewall, d->conf);
}

/*
 * The store named a new leader: every module now sees the cluster file
 * with it as the primary (pgwatch promotes, demotes or follows; the hosts
 * block's pg-primary name moves; backups follow the role).
 */
static void on_leader(void *data, int leader, const bool *fenced)
{
	struct daemon *d = data;
	struct conf *old = d->conf;

	if (!d->file_conf)
		return;
	d->conf = conf_with_roles(d->file_conf, leader, fenced);
	set_modules_conf(d);
	conf_free(old);
}

/* What check-config warns about, in the log too: valid, but fragile. */
static void log_conf_warnings(const struct conf *c)
{
	struct conf_diag warnings = { 0 };
	char q[1024];

	conf_warnings(c, &warnings);
	for (size_t i = 0; i < warnings.n; i++)
		log_warnx("supervisor", "configuration warning=%s", log_quote(q, sizeof(q), warnings.lines[i]));
	conf_diag_clear(&warnings);
}

static int reload(struct daemon *d, json_t *errors)
{
	struct conf_diag diag = { 0 };
	struct conf *next = NULL;

	log_info("supervisor", "reloading path=%s", d->conf_path);
	if (conf_load_file(d->conf_path, d->node, &next, &diag) != 0) {
		char q[1024];

		for (size_t i = 0; i < diag.n; i++) {
			log_errorx("supervisor", "reload rejected error=%s",
				   log_quote(q, sizeof(q), diag.lines[i]));
			if (errors)
				json_array_append_new(errors, json_string(diag.lines[i]));
		}
		free(d->last_reload_error);
		d->last_reload_error = xasprintf("%zu error%s in %s; the previous configuration stays in force",
						 diag.n, diag.n == 1 ? "" : "s", d->conf_path);
		log_warnx("supervisor", "keeping the running configuration errors=%zu", diag.n);
		conf_diag_clear(&diag);
		return CONF_E_INVALID;
	}
	/*
	 * The node's name is fixed for the life of the process, so @next is
	 * about the same node; everything in it replaces the old values now.
	 */
	if (strcmp(conf_self(next)->settings.control_socket,
		   conf_self(d->conf)->settings.control_socket) != 0)
		log_warnx("supervisor", "control.socket changed; it takes effect at the next start");
	if (strcmp(conf_self(next)->settings.status_listen.host, conf_self(d->conf)->settings.status_listen.host) != 0 ||
	    conf_self(next)->settings.status_listen.port != conf_self(d->conf)->settings.status_listen.port)
		log_warnx("supervisor", "status.listen changed; it takes effect at the next start");
	struct conf *old = d->conf, *old_file = d->file_conf;

	/* With HA the modules see the new file as the current leader has it. */
	if (d->file_conf) {
		d->file_conf = next;
		/* Fencing is worked out again for the new file's nodes at the next read of the store. */
		d->conf = conf_with_leader(next, ha_leader(d->ha));
	} else {
		if (conf_ha_on(next))
			log_warnx("supervisor", "ha.mode was turned on; it takes effect at the next start");
		d->conf = next;
	}
	log_conf_warnings(next);
	set_modules_conf(d);
	ha_set_conf(d->ha, d->file_conf ? d->file_conf : d->conf);
	/* Freed only now: no module ever holds a freed configuration. */
	conf_free(old);
	conf_free(old_file);
	d->reloads++;
	d->conf_loaded_ms = (uint64_t)time(NULL) * 1000;
	free(d->last_reload_error);
	d->last_reload_error = NULL;
	if (!d->verbose)
		log_set_level(conf_self(d->conf)->settings.log_level);
	struct child_policy pol = policy_of(d->conf);

	child_set_policy(d->children, &pol);
	set_child_env(d);
	apply_children(d);
	log_info("supervisor", "reloaded reloads=%u", d->reloads);
	return 0;
}

int daemon_reload(struct daemon *d, json_t *errors)
{
	bool was_ready = d->ready;
	int r;

	/*
	 * Reloading, then ready again, whether the file was taken or not (a
	 * refused one leaves the running configuration in force). Before the
	 * first READY=1 there is nothing to tell: that one comes when the
	 * node is up.
	 */
	if (was_ready)
		notify_reloading(d->notify);
	r = reload(d, errors);
	if (was_ready)
		notify_ready(d->notify);
	return r;
}

/* ---- signals ------------------------------------------------------------ */

static void shutdown_done(void *data, int status)
{
	struct daemon *d = data;

	if (status && !d->exit_code)
		log_warnx("supervisor", "shutdown was not clean: children had to be killed");
	loop_quit(d->loop, d->exit_code);
}

static void begin_shutdown(struct daemon *d, const char *why)
{
	if (child_set_shutting_down(d->children))
		return;
	log_info("supervisor", "shutting down reason=%s", why);
	notify_stopping(d->notify);
	child_set_shutdown(d->children, conf_self(d->conf)->settings.supervision.shutdown_budget_ms,
			   shutdown_done, d);
}

static void on_sigchld(struct loop *loop, const struct signalfd_siginfo *si, void *data)
{
	struct daemon *d = data;

	(void)loop;
	(void)si;
	child_set_reap(d->children);
	if (d->n_pending && !child_set_shutting_down(d->children))
		add_pending(d);
}

static void on_stop_signal(struct loop *loop, const struct signalfd_siginfo *si, void *data)
{
	(void)loop;
	begin_shutdown(data, signal_name((int)si->ssi_signo));
}

static void on_sighup(struct loop *loop, const struct signalfd_siginfo *si, void *data)
{
	(void)loop;
	(void)si;
	(void)daemon_reload(data, NULL);
}

/*
 * READY=1 for the service manager once wg0 is up (configured, whatever the
 * handshakes) and our firewall table is in force: from then on the hub
 * serves. A spoke's supervisor is PID 1 without a service manager; where
 * one runs it, the same point counts. Sent once; reloads say it again.
 */
static void maybe_ready(struct daemon *d)
{
	if (d->ready || !d->overlay || !d->firewall || child_set_shutting_down(d->children))
		return;
	if (firewall_status(d->firewall)->state != FW_STATE_APPLIED ||
	    overlay_status(d->overlay)->state == TUNNEL_DOWN)
		return;
	d->ready = true;
	log_info("supervisor", "ready interface=%s firewall=applied notify=%s",
		 overlay_status(d->overlay)->interface, notify_enabled(d->notify) ? "yes" : "no");
	notify_ready(d->notify);
}

/* Postgres starts once the tunnel is fresh (pgwatch holds that gate). */
static void on_tunnel(void *data, enum tunnel_state st)
{
	struct daemon *d = data;

	pgwatch_tunnel(d->pgwatch, st == TUNNEL_FRESH);
	ha_tunnel(d->ha, st == TUNNEL_FRESH);
	maybe_ready(d);
}

/* Postgres also waits for the firewall: it never listens unprotected. */
static void on_firewall(void *data, enum fw_state st)
{
	struct daemon *d = data;

	pgwatch_firewall(d->pgwatch, st == FW_STATE_APPLIED, firewall_status(d->firewall)->last_error);
	maybe_ready(d);
}

/* Backup runs need a Postgres that answers. */
static bool postgres_ready(void *data, const char **why)
{
	struct daemon *d = data;
	enum pg_state st = pgwatch_state(d->pgwatch);

	if (st == PG_STATE_RUNNING)
		return true;
	*why = st == PG_STATE_WAITING_FOR_TUNNEL ? "Postgres is waiting for the tunnel"
	     : st == PG_STATE_WAITING_FOR_FIREWALL ? "Postgres is waiting for the firewall"
	     : st == PG_STATE_WAITING_FOR_LEADER ? "Postgres is held by high availability"
	     : st == PG_STATE_BOOTSTRAPPING ? "Postgres is still being bootstrapped"
	     : st == PG_STATE_STARTING ? "Postgres is starting"
	     : st == PG_STATE_UNRESPONSIVE ? "Postgres does not answer"
	     : "Postgres is not running";
	return false;
}

static void on_give_up(void *data, struct child *c)
{
	struct daemon *d = data;

	log_errorx("supervisor", "a required child gave up name=%s", child_name(c));
	d->exit_code = 1;
	begin_shutdown(d, "required child failed");
}

/* ---- the run ---------------------------------------------------------------- */

static int setup(struct daemon *d)
{
	static const int stop_signals[] = { SIGTERM, SIGINT, SIGQUIT };
	const struct conf_node *me = conf_self(d->conf);
	struct child_policy pol = policy_of(d->conf);
	int r;

	sig_save_and_block();
	d->pid1 = getpid() == 1;
	/*
	 * Not PID 1 (e.g. compose's `init: true` put tini there): become a
	 * subreaper, or orphaned postgres backends would escape us.
	 */
	if (!d->pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("supervisor", "cannot become a child subreaper; orphans will not be reaped");
	if ((r = loop_new(&d->loop)) < 0)
		return r;
	if ((r = notify_new(d->loop, &d->notify)) < 0)
		return r;
	if ((r = child_set_new(d->loop, &pol, &d->children)) < 0)
		return r;
	child_set_on_give_up(d->children, on_give_up, d);
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if ((r = loop_add_signal(d->loop, stop_signals[i], on_stop_signal, d)) < 0)
			return r;
	if ((r = loop_add_signal(d->loop, SIGCHLD, on_sigchld, d)) < 0 ||
	    (r = loop_add_signal(d->loop, SIGHUP, on_sighup, d)) < 0)
		return r;
	log_conf_warnings(d->conf);
	/*
	 * High availability: the modules see the file with the leader the
	 * store names (none yet: roles as in the file, Postgres held).
	 */
	if (conf_ha_on(d->conf) && me->kind == CONF_NODE_SPOKE && me->pg_role != CONF_PG_NONE) {
		d->file_conf = d->conf;
		d->conf = conf_with_leader(d->file_conf, -1);
		me = conf_self(d->conf);
	}
	/* First the control socket: a second supervisor on this node stops here. */
	r = control_open(d, &d->control);
	if (r < 0)
		return r;
	/* Then the firewall: wg0 and Postgres come up behind it. */
	if ((r = firewall_new(d->loop, d->conf, &d->firewall)) < 0)
		return r;
	{
		/* pgwatch knows neither the overlay nor backups: it is told what it needs of them. */
		struct pgwatch_links links = { .stop_before = OVERLAY_CHILD_NAME,
					       .archive_command = backup_archive_command };

		if ((r = pgwatch_new(d->loop, d->children, d->conf, &links, &d->pgwatch)) < 0)
			return r;
	}
	if ((r = ha_new(d->loop, d->children, d->file_conf ? d->file_conf : d->conf, d->pgwatch, on_leader, d,
			&d->ha)) < 0)
		return r;
	firewall_on_change(d->firewall, on_firewall, d);
	on_firewall(d, firewall_status(d->firewall)->state);
	if ((r = overlay_new(d->loop, d->children, d->conf, &d->overlay)) < 0)
		return r;
	overlay_on_change(d->overlay, on_tunnel, d);
	apply_names(d);
	set_child_env(d);
	{
		struct backup_env env = { .self_exe = d->self_exe, .conf_path = d->conf_path,
					  .postgres_ready = postgres_ready, .data = d };

		if ((r = backup_new(d->loop, d->children, d->conf, &env, &d->backup)) < 0)
			return r;
	}
	for (size_t i = 0; i < me->n_children; i++) {
		struct child_spec sp = spec_of(&me->children[i]);

		if ((r = child_add(d->children, &sp, NULL)) < 0)
			return r;
	}
	/* Before anything is up, so an operator can always see why a node is not ready. */
	return http_open(d, &d->http);
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon d = { .conf = opts->conf, .conf_path = opts->conf_path,
			    .node = xstrdup(opts->node), .verbose = opts->verbose, .exit_code = 0 };
	int r;

	log_set_level(d.verbose ? LOG_LEVEL_DEBUG : conf_self(d.conf)->settings.log_level);
	d.started_ms = now_ms();
	/* Runs are this binary; resolved now, before anything could replace the file. */
	d.self_exe = realpath("/proc/self/exe", NULL);
	if (!d.self_exe)
		d.self_exe = xstrdup(opts->argv0);
	d.conf_loaded_ms = (uint64_t)time(NULL) * 1000;

	r = setup(&d);
	if (r < 0) {
		errno = -r;
		log_warn("supervisor", "cannot start");
		d.exit_code = 1;
	} else {
		log_info("supervisor", "running node=%s role=%s pid=%d pid1=%s version=%s",
			 conf_self(d.conf)->name,
			 conf_self(d.conf)->kind == CONF_NODE_HUB ? "hub" : "spoke", (int)getpid(),
			 d.pid1 ? "yes" : "no", SUPERVISOR_VERSION);
		child_set_start(d.children);
		r = loop_run(d.loop);
		d.exit_code = r < 0 ? 1 : r;
		log_info("supervisor", "exiting status=%d", d.exit_code);
	}
	http_close(d.http);
	control_close(d.control);
	overlay_free(d.overlay);
	backup_free(d.backup);
	ha_free(d.ha);
	pgwatch_free(d.pgwatch);
	firewall_free(d.firewall);
	notify_free(d.notify);
	child_set_free(d.children);
	loop_free(d.loop);
	conf_free(d.conf);
	conf_free(d.file_conf);
	free(d.pending);
	free(d.last_reload_error);
	free(d.node);
	free(d.self_exe);
	return d.exit_code;
}
