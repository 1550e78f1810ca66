/* SPDX-License-Identifier: MIT */
/* Private to pgwatch/: shared between the lifecycle and the probes. */
#ifndef SUP_PGWATCH_INTERNAL_H
#define SUP_PGWATCH_INTERNAL_H

#include <libpq-fe.h>
#include <limits.h>
#include <sys/types.h>

#include "child/child.h"
#include "lib/common.h"
#include "lib/loop.h"
#include "pgwatch/pgwatch.h"

#define PG_CHILD_NAME "postgres"
#define PG_OWNER "pgwatch"

/* A running pg_basebackup's progress, from its -P lines. */
struct clone_progress {
	bool active;
	uint64_t done_kb, total_kb;  /* total_kb 0: not estimated (yet) */
	uint64_t started_ms;         /* now_ms() at its start */
};

/* Where the probe in flight is (probe.c). */
enum probe_step {
	PROBE_STEP_IDLE,        /* none in flight */
	PROBE_STEP_CONNECTING,  /* PQconnectPoll() until the connection is up */
	PROBE_STEP_QUERY,       /* the probe query sent, its result awaited */
	PROBE_STEP_SETUP,       /* the primary's role and slots SQL sent (after a good probe) */
};

struct pgwatch {
	struct loop *loop;
	struct child_set *children;
	const struct conf *conf;
	struct pgwatch_links links;
	enum pg_state state;
	char reason[512];
	bool started;
	bool tunnel_fresh;           /* the hub handshake has been fresh at least once */
	bool tunnel_fresh_now;       /* and is now (for the absent replica's hint) */
	bool firewall_applied;
	char firewall_why[320];      /* why it is not, as the firewall said */
	bool bootstrapped;          /* data dir ready, postgres added */
	struct loop_source *retry;
	uint32_t retry_ms;
	uid_t uid;
	gid_t gid;
	char rundir[256], sockdir[300], passfile[300];
	char password[256];
	/* probes */
	struct pg_session *probe;     /* the probe's connection, while one runs */
	struct loop_source *probe_timer;
	struct loop_source *probe_deadline;
	enum probe_step probe_step;
	bool setup_done;            /* role and slots ensured (primary) */
	json_t *last;               /* the last good probe, as the server sent it */
	int64_t last_ok_wall_ms;
	uint64_t last_ok_mono_ms;
	unsigned failures;
	char probe_error[300];
	json_t *bound;              /* addresses Postgres listens on (TCP) */
	uint64_t started_ms;
	struct identity_check *identity; /* in flight, or NULL */
	bool cloned;                     /* this run made the data dir itself */
	/*
	 * Bootstraps run into DATA/.supervisor-bootstrap and are moved into
	 * place only once complete: while that directory exists, DATA holds an
	 * unfinished bootstrap of ours, which is removed and redone.
	 */
	char stagedir[300];
	unsigned bootstraps_redone;      /* unfinished ones removed and redone */
	struct clone_progress clone;     /* of this node's pg_basebackup (-P) */
	bool reinit_pending;             /* ctl reinit: waiting for Postgres to be gone */
	char reinit_aside[320];          /* where the data directory goes */
	uint64_t wal_gone_ms;            /* now_ms() when the upstream last said our WAL is gone */
	/* As a replica, since when (now_ms(), 0: not so) replay is paused / the receiver is not streaming. */
	uint64_t paused_since_ms, rx_down_since_ms;
	/* the CHECKPOINT before a stop (stop.c) */
	struct pg_session *ckpt;
	struct child *ckpt_child;        /* waiting for it; NULL when none is in flight */
	uint64_t ckpt_started_ms;
	/* high availability (role.c, lifecycle.c) */
	bool held;                       /* pgwatch_hold(): keep Postgres stopped */
	char held_why[200];
	bool restart_pending;            /* stopping Postgres, to start it again in its new role */
	bool rewound;                    /* pg_rewind ran on this directory in this run */
	struct pg_rewind_note rewind;    /* the last one */
	enum conf_pg_role role_applied;  /* the role Postgres was last configured for */
	struct pg_session *role_session; /* pg_promote() or dropping slots, in flight */
	char role_what[80], role_done_what[80], role_sql[256];
	uint64_t role_started_ms;
};

/*
 * session.c: one libpq connection driven from the loop (connect, then one
 * query at a time). The ops are called from the loop; any of them may
 * close the session.
 */
struct pg_session;
struct pg_session_ops {
	/* connected: send the first query with pg_session_send() (or close) */
	void (*ready)(void *data, struct pg_session *s);
	/* each good result (tuples or command ok) of the query in flight; may be NULL */
	void (*result)(void *data, PGresult *res);
	/* the query finished (@error NULL, or its first error), or the connection failed (@error) */
	void (*done)(void *data, struct pg_session *s, const char *error);
};
/* pg_session_open() - start connecting with @conninfo. Return: 0 or -errno (-EIO: libpq refused it at once). */
int pg_session_open(struct loop *loop, const char *conninfo, const struct pg_session_ops *ops, void *data,
		    struct pg_session **out);
/* pg_session_send() - send @sql (one or more statements). Return: 0, -EBUSY (not connected or busy), -EIO. */
int pg_session_send(struct pg_session *s, const char *sql);
/* pg_session_conn() - the connection, for libpq calls that need one (e.g. PQencryptPasswordConn). */
PGconn *pg_session_conn(struct pg_session *s);
/* pg_session_close() - disconnect and free; NULL is fine. Return: NULL. */
struct pg_session *pg_session_close(struct pg_session *s);

/* identity.c: is a replica's data dir from its upstream's cluster? */
enum {
	IDENTITY_SAME,
	IDENTITY_DIFFERENT,
	IDENTITY_UNKNOWN,   /* the upstream could not be asked */
};
struct identity_check;
int pg_local_sysid(const char *data_dir, uint64_t *out);
int identity_check_start(struct pgwatch *pw, uint64_t local,
			 void (*done)(struct pgwatch *pw, int verdict, uint64_t upstream));
void identity_check_cancel(struct pgwatch *pw);

/* probe.c */
int probe_init(struct pgwatch *pw);
void probe_stop(struct pgwatch *pw);
void probe_fast(struct pgwatch *pw, bool fast);
/* listen_check() - TCP sockets listening on @port in this netns (JSON array). */
json_t *listen_check(uint16_t port);

/* report.c: after each good probe, note when replay paused or the receiver stopped. */
void replica_track(struct pgwatch *pw);
/* stop.c: the postmaster's stop plan, from the shutdown budget, and its CHECKPOINT */
void stop_fill_spec(struct pgwatch *pw, struct child_spec *spec);
void stop_set_conf(struct pgwatch *pw);
void stop_cancel(struct pgwatch *pw);

/* role.c: what a role set by high availability asks for once Postgres answers. */
void role_after_probe(struct pgwatch *pw);
void role_set_conf(struct pgwatch *pw);
void role_cancel(struct pgwatch *pw);

/* lifecycle.c */
#define PG_STAGE_NAME ".supervisor-bootstrap"
/**
 * clone_progress_parse() - read one line of pg_basebackup -P.
 * @line: e.g. "190464/465920 kB (40%), 0/1 tablespace".
 * @done_kb: receives the kB streamed.
 * @total_kb: receives the estimated total (0 when the server gave none).
 *
 * Return: true for a progress line, false for anything else.
 */
bool clone_progress_parse(const char *line, uint64_t *done_kb, uint64_t *total_kb);
int pgwatch_write_config(struct pgwatch *pw);
/*
 * The probes' events, for the lifecycle to turn into state changes (every
 * change of pw->state is in lifecycle.c):
 * lifecycle_probe_ok() - a probe answered.
 * lifecycle_probe_failed() - a probe failed (@timeout: no answer in time)
 *   while the postmaster runs; pw->probe_error says why.
 * lifecycle_postmaster_absent() - a probe found no postmaster running.
 * lifecycle_postmaster_present() - a probe found the postmaster running.
 */
void lifecycle_probe_ok(struct pgwatch *pw);
void lifecycle_probe_failed(struct pgwatch *pw, bool timeout);
void lifecycle_postmaster_absent(struct pgwatch *pw);
void lifecycle_postmaster_present(struct pgwatch *pw);

#endif
