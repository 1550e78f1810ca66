// SPDX-License-Identifier: MIT
/* Storage, error collection, defaults and small lookups for conf/. */
#include "conf/conf_internal.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *store_alloc(struct conf_store *st, size_t size)
{
	void *p = xcalloc(1, size);

	st->ptrs = xreallocarray(st->ptrs, st->n + 1, sizeof(*st->ptrs));
	st->ptrs[st->n++] = p;
	return p;
}

const char *store_strdup(struct conf_store *st, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = store_alloc(st, n);

	memcpy(p, s, n);
	return p;
}

void store_free(struct conf_store *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->ptrs[i]);
	free(st->ptrs);
	st->ptrs = NULL;
	st->n = 0;
}

static void diag_vadd(struct load_ctx *ctx, const char *file, int line, const char *fmt,
		      va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	struct conf_diag *d = ctx->diag;

	if (vasprintf(&msg, fmt, ap) < 0)
		fatalx("conf", "out of memory");
	ctx->diag_order = xreallocarray(ctx->diag_order, d->n + 1, sizeof(*ctx->diag_order));
	ctx->diag_order[d->n] = line;
	diag_push(d, "%s:%d: %s", file ? file : ctx->fname, line, msg);
}

void diag_sort(struct load_ctx *ctx)
{
	struct conf_diag *d = ctx->diag;

	/* Insertion sort: stable, and lists are short. */
	for (size_t i = 1; i < d->n; i++) {
		char *line = d->lines[i];
		int key = ctx->diag_order[i];
		size_t j = i;

		for (; j > 0 && ctx->diag_order[j - 1] > key; j--) {
			d->lines[j] = d->lines[j - 1];
			ctx->diag_order[j] = ctx->diag_order[j - 1];
		}
		d->lines[j] = line;
		ctx->diag_order[j] = key;
	}
}

void diag_add(struct load_ctx *ctx, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(ctx, file, line, fmt, ap);
	va_end(ap);
}

void diag_at(struct load_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(ctx, config_setting_source_file(s), config_setting_source_line(s), fmt, ap);
	va_end(ap);
}

void diag_push(struct conf_diag *d, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		fatalx("conf", "out of memory");
	va_end(ap);
	d->lines = xreallocarray(d->lines, d->n + 1, sizeof(*d->lines));
	d->lines[d->n++] = line;
}

/* WireGuard's REKEY_AFTER_TIME: a busy session's handshake is renewed this often. */
#define WG_REKEY_AFTER_S 120

size_t conf_warnings(const struct conf *c, struct conf_diag *out)
{
	size_t before = out->n;

	/*
	 * The handshake age of a healthy tunnel climbs to REKEY_AFTER_TIME
	 * and beyond; a shorter threshold reads it stale, and a spoke then
	 * replaces its hub peer to force a handshake: the session is dropped
	 * each time, and a network blip at that moment costs seconds (with
	 * ha, possibly a lease).
	 */
	if (c->cluster.fresh_handshake_s < WG_REKEY_AFTER_S)
		diag_push(out, "%s:%d: cluster: fresh_handshake = %u is below WireGuard's rekey interval (%d s): a healthy tunnel reads stale, and each spoke drops its session with the hub every %u s to force a new handshake (hint: the default, 180, is WireGuard's REJECT_AFTER_TIME)",
			  c->path, c->cluster.line, c->cluster.fresh_handshake_s, WG_REKEY_AFTER_S,
			  c->cluster.fresh_handshake_s);
	ha_warnings(c, out);
	return out->n - before;
}

void conf_diag_clear(struct conf_diag *diag)
{
	for (size_t i = 0; i < diag->n; i++)
		free(diag->lines[i]);
	free(diag->lines);
	diag->lines = NULL;
	diag->n = 0;
}

void conf_diag_print(const struct conf_diag *diag, FILE *f)
{
	for (size_t i = 0; i < diag->n; i++)
		fprintf(f, "%s\n", diag->lines[i]);
}

void settings_set_defaults(struct conf_settings *s)
{
	*s = (struct conf_settings){
		.keys = { .private_key_file = CONF_DEFAULT_KEY_FILE },
		.postgres = {
			.bin_dir = "/usr/lib/postgresql/15/bin",
			.data_dir = "/var/lib/postgresql/data",
			.port = 5432,
			.user = "postgres",
			.replication_user = "replicator",
			.password_file = "/etc/supervisor/replication.pass",
		},
		.backup = {
			.method = CONF_BACKUP_PG_DUMP,
			.dir = "/var/backups",
			.schedule = { .kind = CONF_SCHEDULE_DAILY, .hour = 3, .minute = 0,
				      .text = "daily 03:00" },
			.keep_daily = 7,
			.keep_weekly = 4,
			.keep_monthly = 6,
			.max_age_s = 93600,
			.timeout_s = 21600,
			.max_replica_lag_s = 300,
		},
		.status_listen = { .host = "0.0.0.0", .port = 8000 },
		.control_socket = "/run/supervisor/ctl.sock",
		.names = { .hosts_file = NULL, .domain = "vpn" },
		.log_level = LOG_LEVEL_INFO,
		.supervision = {
			.shutdown_budget_ms = 25000, /* below the shipped compose and unit's 30 s: README */
			.backoff_max_ms = 30000,
			.stable_after_ms = 10000,
			.give_up_after = 0,
		},
	};
}

struct conf *conf_free(struct conf *conf)
{
	if (conf) {
		store_free(conf->priv);
		free(conf->priv);
		free(conf);
	}
	return NULL;
}

const char *conf_default_node_name(char *buf, size_t size)
{
	const char *env = getenv("SUPERVISOR_NODE");

	if (env && *env)
		return env;
	if (gethostname(buf, size) != 0)
		return "";
	buf[size - 1] = '\0';
	return buf;
}

const char *conf_default_path(void)
{
	const char *env = getenv("SUPERVISOR_CONFIG");

	return env && *env ? env : CONF_DEFAULT_PATH;
}

const struct conf_node *conf_primary(const struct conf *c)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].pg_role == CONF_PG_PRIMARY)
			return &c->nodes[i];
	return NULL;
}

const char *conf_run_dir(const struct conf *c, char *buf, size_t size)
{
	const char *sock = conf_self(c)->settings.control_socket;
	const char *slash = strrchr(sock, '/');

	if (!slash || slash == sock)
		snprintf(buf, size, "/");
	else
		snprintf(buf, size, "%.*s", (int)(slash - sock), sock);
	return buf;
}

const char *conf_pg_socket_dir(const struct conf *c, char *buf, size_t size)
{
	char run[256];

	conf_run_dir(c, run, sizeof(run));
	snprintf(buf, size, "%s/postgresql", strcmp(run, "/") != 0 ? run : "");
	return buf;
}

const char *conf_pg_role_name(enum conf_pg_role role)
{
	switch (role) {
	case CONF_PG_NONE: return "none";
	case CONF_PG_PRIMARY: return "primary";
	case CONF_PG_REPLICA: return "replica";
	}
	return "?";
}

const char *conf_backup_method_name(enum conf_backup_method m)
{
	switch (m) {
	case CONF_BACKUP_PG_DUMP: return "pg_dump";
	case CONF_BACKUP_PGBACKREST: return "pgbackrest";
	}
	return "?";
}

const char *conf_ip_str(struct in_addr a, char buf[16])
{
	return inet_ntop(AF_INET, &a, buf, 16);
}
