/* SPDX-License-Identifier: MIT */
/*
 * The cluster file: one libconfig file, the same on every node, parsed into
 * one immutable, fully validated struct conf. Loading never stops at the
 * first mistake: every error is collected as "FILE:LINE: message (hint: ..)"
 * so an operator fixes them all in one pass. A struct conf exists only when
 * there were no errors, so the rest of the program never sees a half-valid
 * configuration (parse -> validate -> swap).
 */
#ifndef SUP_CONF_H
#define SUP_CONF_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/wgkey.h"

/* Positive return: the file has errors, listed in the struct conf_diag. */
#define CONF_E_INVALID 1

#define CONF_DEFAULT_PATH "/etc/supervisor/cluster.conf"
#define CONF_DEFAULT_KEY_FILE "/etc/supervisor/wg.key" /* keys.private_key_file */
#define CONF_DEFAULT_NETWORK "10.88.0.0/24"            /* `supervisor cluster init` */
#define CONF_NAME_MAX 32 /* node names end up in nft set elements and hostnames */

enum conf_node_kind {
	CONF_NODE_HUB,
	CONF_NODE_SPOKE,
};

enum conf_pg_role {
	CONF_PG_NONE,
	CONF_PG_PRIMARY,
	CONF_PG_REPLICA,
};

/* High availability (issue 18): who may decide a failover. */
enum conf_ha_mode {
	CONF_HA_OFF,       /* today's static roles: the file says who is primary */
	CONF_HA_MANUAL,    /* the leader lives in etcd; failovers only on request */
	CONF_HA_AUTOMATIC, /* as manual, and candidates race for a lost leader's lease */
};

enum conf_backup_method {
	CONF_BACKUP_PG_DUMP,
	CONF_BACKUP_PGBACKREST,
};

enum conf_schedule_kind {
	CONF_SCHEDULE_DAILY,    /* "daily HH:MM" (UTC) */
	CONF_SCHEDULE_INTERVAL, /* "hourly", "every 6h", "every 30m" */
};

struct conf_schedule {
	enum conf_schedule_kind kind;
	int hour, minute;     /* DAILY */
	uint32_t interval_s;  /* INTERVAL */
	uint32_t jitter_s;    /* optional " jitter 10m" suffix */
	const char *text;     /* as written, for display */
};

/* host:port; host is a name, an IPv4 address or a bracketed IPv6 address. */
struct conf_hostport {
	const char *host;
	uint16_t port;
};

struct conf_cidr {
	struct in_addr addr;
	uint8_t prefix;
};

struct conf_keys {
	const char *private_key_file; /* exactly one of these two is set */
	const char *private_key_env;
};

struct conf_postgres {
	const char *bin_dir;
	const char *data_dir;
	uint16_t port;
	const char *user;
	const char *replication_user;
	const char *password_file;
	const char *password_env;   /* if set, the password comes from this variable instead */
};

struct conf_backup {
	enum conf_backup_method method;
	const char *dir;
	struct conf_schedule schedule;
	uint32_t keep_daily, keep_weekly, keep_monthly;
	uint32_t max_age_s;
	uint32_t timeout_s; /* a run still going after this is stopped */
	uint32_t max_replica_lag_s; /* a replica further behind takes no backup */
};

/*
 * An extra supervised process declared in the cluster file (a sidecar, or
 * test children). The supervisor's own children (wireguard-go, postgres)
 * are built by their modules, not declared here.
 */
struct conf_child {
	const char *name;
	const char *const *argv;          /* NULL-terminated, argv[0] absolute */
	const char *const *env;           /* NULL-terminated "K=V"; NULL: inherit */
	const char *user;                 /* NULL: run as the supervisor's user */
	const char *cwd;                  /* NULL: "/" */
	enum child_restart restart;
	struct child_stop_step stop[CHILD_STOP_STEPS_MAX];
	size_t n_stop;                    /* SIGKILL follows the last step */
	const char *const *after;         /* NULL-terminated names of children */
	bool required;                    /* giving up stops the supervisor */
	int line;
};

/* How children are supervised (the `supervisor` group). */
struct conf_supervision {
	uint32_t shutdown_budget_ms; /* whole orderly shutdown, below stop_grace_period/TimeoutStopSec */
	uint32_t backoff_max_ms;     /* restart delay doubles from 1 s up to this */
	uint32_t stable_after_ms;    /* a child up this long gets its backoff reset */
	uint32_t give_up_after;      /* consecutive quick failures; 0 = never */
};

/* Split-horizon names (spec §7 option B): a block the supervisor keeps in a hosts file. */
struct conf_names {
	const char *hosts_file;  /* NULL: off (the default) */
	const char *domain;      /* one label: spoke-a.vpn, pg-primary.vpn */
};

/* Settings a node entry may override; top-level groups give the defaults. */
struct conf_settings {
	struct conf_keys keys;
	struct conf_postgres postgres;
	struct conf_backup backup;
	struct conf_hostport status_listen;
	const char *control_socket;
	struct conf_names names;
	enum log_level log_level;
	struct conf_supervision supervision;
};

struct conf_node {
	const char *name;
	enum conf_node_kind kind;
	struct in_addr overlay_ip;
	uint8_t public_key[WG_KEY_LEN];
	const char *public_key_b64;
	enum conf_pg_role pg_role;
	/*
	 * Index into conf.nodes, or -1. With ha on, a replica without an
	 * upstream gets the bootstrap primary: where it first clones from.
	 */
	int upstream;
	/* May be promoted (Patroni's nofailover, inverted): true by default on
	 * Postgres spokes, false elsewhere. Only counts with ha on. */
	bool failover;
	/*
	 * Only in a leader view (conf_with_roles()): a former primary kept
	 * off. On itself its Postgres port is closed first thing in input; on
	 * every other spoke output to its Postgres port is dropped.
	 */
	bool fenced;
	struct conf_hostport endpoint;  /* hub only */
	const struct conf_cidr *ssh_from; /* hub only; may be empty */
	size_t n_ssh_from;
	struct conf_settings settings;  /* effective, overrides applied */
	const struct conf_child *children;
	size_t n_children;
	int line;
};

/* One allowed flow, expanded from the acl list: from -> to, proto/port. */
struct conf_flow {
	int from, to;    /* indexes into conf.nodes (always spokes) */
	uint8_t proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;
	int line;        /* of the acl entry; of the ha group when derived */
	bool derived;    /* added by the ha group, not written in the acl */
};

/*
 * The ha group. The file names only the bootstrap primary: once the
 * cluster runs, the current leader lives in etcd, whose members are the
 * Postgres spokes (etcd peers on the overlay IP, clients on loopback).
 */
struct conf_ha {
	enum conf_ha_mode mode;
	int bootstrap_primary;      /* index into conf.nodes of the "primary" spoke; -1 when off */
	uint32_t ttl_s;             /* leader lease, seconds */
	uint32_t loop_wait_s;       /* HA loop period, seconds */
	uint32_t retry_timeout_s;   /* store and Postgres operations, seconds */
	uint64_t maximum_lag_on_failover; /* bytes; a candidate further behind is not promoted */
	const char *etcd_bin;       /* absolute path of the etcd binary */
	const char *data_dir;       /* etcd's data directory */
	uint16_t client_port;       /* TCP, on 127.0.0.1 only */
	uint16_t peer_port;         /* TCP, on the overlay IP */
	int line;                   /* of the ha group; 0 when absent */
};

struct conf {
	const char *path;
	struct {
		struct conf_cidr network;
		const char *interface;
		uint16_t port;
		uint16_t keepalive;
		uint32_t fresh_handshake_s;
		uint16_t mtu;            /* bytes; 0: "auto", from the path to the hub */
		int line;                /* of the cluster group */
	} cluster;
	const struct conf_node *nodes; /* nodes[0] is the hub, then the spokes */
	size_t n_nodes;
	bool has_acl;                  /* false: spokes trust each other fully */
	const struct conf_flow *flows;
	size_t n_flows;
	struct conf_ha ha;
	int self;                      /* index of this node in nodes[] */
	void *priv;                    /* storage owned by the struct */
};

/* Every error found while loading, already formatted as FILE:LINE: msg. */
struct conf_diag {
	char **lines;
	size_t n;
};

/**
 * conf_load_file() - read, parse and validate a cluster file.
 * @path: the file.
 * @node: this node's name; NULL means conf_default_node_name().
 * @out: receives the configuration on success; caller frees with conf_free().
 * @diag: receives every error (caller frees with conf_diag_clear()).
 *
 * Return: 0, or CONF_E_INVALID with @diag filled and *@out NULL.
 */
int conf_load_file(const char *path, const char *node, struct conf **out,
		   struct conf_diag *diag) _must_check_;

/**
 * conf_load_string() - as conf_load_file() for text in memory.
 * @text: the cluster file's contents (NUL-terminated).
 * @name: the file name used in messages.
 * @node: this node's name (NULL: conf_default_node_name()).
 * @out: as conf_load_file().
 * @diag: as conf_load_file().
 *
 * Return: as conf_load_file().
 */
int conf_load_string(const char *text, const char *name, const char *node,
		     struct conf **out, struct conf_diag *diag) _must_check_;

/* conf_free() - free a configuration; NULL is fine. Return: NULL. */
struct conf *conf_free(struct conf *conf);
/* conf_diag_clear() - free the collected errors. */
void conf_diag_clear(struct conf_diag *diag);
/* conf_diag_print() - print each error on its own line. */
void conf_diag_print(const struct conf_diag *diag, FILE *f);

/**
 * conf_default_node_name() - $SUPERVISOR_NODE, else the hostname.
 * @buf: storage for the hostname.
 * @size: its size.
 *
 * Return: the name (may point into @buf).
 */
const char *conf_default_node_name(char *buf, size_t size);
/* conf_default_path() - $SUPERVISOR_CONFIG, else CONF_DEFAULT_PATH. */
const char *conf_default_path(void);

/* conf_self() - this node. */
static inline const struct conf_node *conf_self(const struct conf *c)
{
	return &c->nodes[c->self];
}

/* conf_hub() - the hub node. */
static inline const struct conf_node *conf_hub(const struct conf *c)
{
	return &c->nodes[0];
}

/* conf_primary() - the spoke whose postgres role is primary, or NULL. */
const struct conf_node *conf_primary(const struct conf *c);

/* conf_ha_on() - whether the ha group is on (mode "manual" or "automatic"). */
static inline bool conf_ha_on(const struct conf *c)
{
	return c->ha.mode != CONF_HA_OFF;
}

/**
 * conf_node_candidate() - may @n be promoted by a failover or switchover?
 * @c: the configuration.
 * @n: one of @c's nodes.
 *
 * Return: true for a Postgres spoke without failover = false, ha on.
 */
bool conf_node_candidate(const struct conf *c, const struct conf_node *n);

/**
 * conf_ha_member() - is @n a member of the etcd cluster?
 * @c: the configuration.
 * @n: one of @c's nodes.
 *
 * Every Postgres spoke is, candidate or not, so that a replica that may not
 * be promoted still counts towards etcd's majority. Return: false with ha off.
 */
bool conf_ha_member(const struct conf *c, const struct conf_node *n);

/**
 * conf_ha_members() - the etcd members, in nodes[] order.
 * @c: the configuration.
 * @out: receives up to @max of them; may be NULL when @max is 0.
 * @max: room in @out.
 *
 * Return: the number of members (0 with ha off), even when above @max.
 */
size_t conf_ha_members(const struct conf *c, const struct conf_node **out, size_t max);

/**
 * conf_warnings() - what is valid but fragile, said without failing a check.
 * @c: the configuration.
 * @out: receives one "FILE:LINE: ..." line with a hint per warning, after
 *       any it already holds (caller frees with conf_diag_clear()).
 *
 * A fresh_handshake under WireGuard's rekey interval (a healthy tunnel then
 * reads stale, and spokes force a new session that often); with ha, fewer
 * than 3 etcd members (losing one stops elections: etcd needs a majority).
 *
 * Return: the number of lines added.
 */
size_t conf_warnings(const struct conf *c, struct conf_diag *out);

/*
 * Paths derived from the configuration, each decided here only. The run
 * directory is control.socket's directory: the control socket, Postgres'
 * socket directory and the passfile live in it.
 */
/* conf_run_dir() - this node's run directory ("/" for a socket at the root). Return: @buf. */
const char *conf_run_dir(const struct conf *c, char *buf, size_t size);
/* conf_pg_socket_dir() - Postgres' Unix socket directory, RUNDIR/postgresql. Return: @buf. */
const char *conf_pg_socket_dir(const struct conf *c, char *buf, size_t size);

/**
 * conf_load_private_key() - load this node's WireGuard private key.
 * @keys: where it lives (file or environment variable).
 * @key: receives 32 bytes; the caller wipes it with explicit_zero().
 * @why: receives a reason on failure, never any key material.
 * @why_size: size of @why.
 *
 * A key file readable by group or others is refused: the key would not be
 * secret any more. Return: 0, or -errno / -EINVAL / -EPERM with @why set.
 */
int conf_load_private_key(const struct conf_keys *keys, uint8_t key[WG_KEY_LEN],
			  char *why, size_t why_size) _must_check_;

/**
 * conf_print_plan() - print what this node will do (check-config).
 * @conf: a loaded configuration.
 * @f: where to print.
 *
 * Never prints a secret: keys are shown only as their public halves.
 */
void conf_print_plan(const struct conf *conf, FILE *f);

/* Names for display. */
const char *conf_pg_role_name(enum conf_pg_role role);
const char *conf_backup_method_name(enum conf_backup_method m);
const char *conf_ha_mode_name(enum conf_ha_mode mode);
/* conf_ip_str() - dotted quad of @a in a static-free caller buffer. */
const char *conf_ip_str(struct in_addr a, char buf[16]);

/**
 * conf_with_leader() - the configuration as seen with @leader as primary.
 * @base: the cluster file's configuration; it must outlive the view (the
 *        view borrows every string, flow and child from it).
 * @leader: index into nodes[] of the current leader, or -1 (roles as in the file).
 * Every other Postgres spoke becomes a replica whose upstream is @leader.
 * Return: a new configuration (free it with conf_free() before @base).
 */
struct conf *conf_with_leader(const struct conf *base, int leader);
/**
 * conf_with_roles() - conf_with_leader(), with fenced former primaries.
 * @base: as conf_with_leader().
 * @leader: as conf_with_leader().
 * @fenced: n_nodes flags, true for a node to fence (NULL: none).
 * Return: as conf_with_leader().
 */
struct conf *conf_with_roles(const struct conf *base, int leader, const bool *fenced);

/* Writing cluster files (`supervisor cluster`): conf/conf_edit.h. */

#endif
