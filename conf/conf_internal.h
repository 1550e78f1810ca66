/* SPDX-License-Identifier: MIT */
/*
 * Private to conf/: the loading context shared by the parser (libconfig
 * walk, per-value checks) and the validator (checks across nodes).
 */
#ifndef SUP_CONF_INTERNAL_H
#define SUP_CONF_INTERNAL_H

#include <libconfig.h>

#include "conf/conf.h"
#include "lib/common.h"

/* Every allocation of a struct conf, freed together by conf_free(). */
struct conf_store {
	void **ptrs;
	size_t n;
};

struct name_list {
	const char **names;
	int *lines;
	size_t n;
};

struct port_list {
	uint16_t *ports;
	size_t n;
};

struct raw_acl {
	struct name_list from, to;
	struct port_list tcp, udp;
	int line;
	const char *path; /* "acl[3]" */
};

struct raw_child {
	struct conf_child child;
	const char *path;          /* "spokes[0].children[1]" */
	struct name_list argv, env, after;
	int argv_line, env_line, after_line;
};

/* The ha group while loading: the final group plus its keys' lines. */
struct raw_ha {
	struct conf_ha ha;
	int mode_line;
	int client_port_line;
	int peer_port_line;
};

/* A node while loading: the final node plus what only loading needs. */
struct raw_node {
	struct conf_node node;
	const char *path;          /* "hub", "spokes[1]" */
	const char *upstream_name;
	int upstream_line;
	int pg_role_line;
	int ip_line;
	int name_line;
	int failover_line;         /* 0: failover not written, take the default */
	struct conf_cidr *ssh_from;
	size_t n_ssh_from;
	struct raw_child *children;
	size_t n_children;
};

struct load_ctx {
	const char *fname;         /* for messages when libconfig has none */
	struct conf_diag *diag;
	int *diag_order;           /* line of each diag entry, for sorting */
	struct conf_store *store;
	struct conf *conf;
	struct conf_settings defaults;
	bool have_network;
	bool have_hub;
	int spokes_line;
	struct raw_node *nodes;    /* [0] is the hub */
	size_t n_nodes;
	struct raw_acl *acls;
	size_t n_acls;
	struct raw_ha ha;
};

/* conf_util.c */
void *store_alloc(struct conf_store *st, size_t size);
const char *store_strdup(struct conf_store *st, const char *s);
void store_free(struct conf_store *st);
void diag_add(struct load_ctx *ctx, const char *file, int line, const char *fmt, ...)
	_printf_(4, 5);
void diag_at(struct load_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
	_printf_(3, 4);
/* diag_push() - append one formatted line to @d (warnings: no load context). */
void diag_push(struct conf_diag *d, const char *fmt, ...) _printf_(2, 3);
/* ha_warnings() - conf_warnings()' part for the ha group. */
void ha_warnings(const struct conf *c, struct conf_diag *out);
/* diag_sort() - order the collected errors by line, keeping ties in order. */
void diag_sort(struct load_ctx *ctx);
void settings_set_defaults(struct conf_settings *s);

/* conf_parse.c */
void parse_root(struct load_ctx *ctx, const config_setting_t *root);

/* conf_validate.c */
void validate_cluster(struct load_ctx *ctx, const config_setting_t *root);
int select_node(struct load_ctx *ctx, const char *node, const config_setting_t *root);

/* conf_ha.c: the ha group's checks across nodes, and the flows it derives. */
void ha_set_defaults(struct conf_ha *ha);
void ha_finish(struct load_ctx *ctx, const config_setting_t *s, const char *path, void *target);
void check_ha(struct load_ctx *ctx);
size_t ha_flows_max(const struct load_ctx *ctx);
void ha_add_flows(struct load_ctx *ctx, struct conf_flow *flows, size_t *n);

/* conf_parse.c: "a.b.c.d/n" (host bits are the caller's concern). */
bool conf_parse_cidr(const char *s, struct conf_cidr *out);

/* conf_schedule.c: schedules, durations and stop plans. */
bool schedule_parse(const char *text, struct conf_schedule *out, const char **why);
bool stop_plan_parse(const char *text, struct conf_child *out, const char **why);

#endif
