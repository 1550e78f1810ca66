// SPDX-License-Identifier: MIT
/*
 * Health probes: every 2 s (every 250 ms while starting), a new libpq
 * connection over the private unix socket, driven non-blocking from the
 * event loop, one query that returns every figure as one JSON document,
 * and a deadline. A new connection each time is deliberate: it goes
 * through the postmaster, so a frozen postmaster shows as "unresponsive"
 * even while old backends still answer.
 *
 * On the primary, the first good probe after a start (or reload) also makes
 * sure the replication role has its password (sent as a SCRAM verifier,
 * computed here, so the plaintext never reaches the server or its logs) and
 * that every downstream replica has its physical slot.
 */
#include "pgwatch/pgwatch_internal.h"
#include "child/child.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define PROBE_EVERY_MS 2000
#define PROBE_FAST_MS 250
#define PROBE_DEADLINE_MS 1500

static const char probe_sql[] =
	"SELECT json_build_object("
	" 'in_recovery', pg_is_in_recovery(),"
	" 'sysid', (SELECT system_identifier::text FROM pg_control_system()),"
	" 'version', current_setting('server_version_num')::int,"
	" 'timeline', CASE WHEN pg_is_in_recovery() THEN COALESCE("
	"     (SELECT received_tli FROM pg_stat_wal_receiver),"
	"     (SELECT timeline_id FROM pg_control_checkpoint()))"
	"   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,"
	" 'flush_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END,"
	" 'receive_lsn', pg_last_wal_receive_lsn()::text,"
	" 'replay_lsn', pg_last_wal_replay_lsn()::text,"
	" 'replay_delay_s', CASE WHEN NOT pg_is_in_recovery() THEN NULL"
	"   WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
	"   ELSE greatest(0, extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())) END,"
	" 'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,"
	" 'receiver', (SELECT row_to_json(w) FROM (SELECT status, sender_host, sender_port, slot_name,"
	"   received_tli, latest_end_lsn::text,"
	"   extract(epoch FROM clock_timestamp() - last_msg_receipt_time) AS since_last_msg_s,"
	"   pg_wal_lsn_diff(latest_end_lsn, pg_last_wal_replay_lsn()) AS lag_bytes"
	"   FROM pg_stat_wal_receiver) w),"
	" 'replicas', COALESCE((SELECT json_agg(row_to_json(x)) FROM (SELECT r.application_name,"
	"   host(r.client_addr) AS client_addr, r.state, r.sync_state, s.slot_name,"
	"   pg_wal_lsn_diff(pg_current_wal_flush_lsn(), r.sent_lsn) AS send_lag_bytes,"
	"   pg_wal_lsn_diff(pg_current_wal_flush_lsn(), r.flush_lsn) AS flush_lag_bytes,"
	"   pg_wal_lsn_diff(pg_current_wal_flush_lsn(), r.replay_lsn) AS replay_lag_bytes,"
	"   extract(epoch FROM r.replay_lag) AS replay_lag_s,"
	"   extract(epoch FROM r.flush_lag) AS flush_lag_s,"
	"   extract(epoch FROM clock_timestamp() - r.reply_time) AS reply_age_s,"
	"   extract(epoch FROM clock_timestamp() - r.backend_start) AS backend_age_s,"
	"   p.phase AS clone_phase, p.backup_total AS clone_total_bytes,"
	"   p.backup_streamed AS clone_done_bytes"
	"   FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid"
	"   LEFT JOIN pg_stat_progress_basebackup p ON p.pid = r.pid) x),"
	"   '[]'::json),"
	" 'slots', COALESCE((SELECT json_agg(row_to_json(y)) FROM (SELECT slot_name, active, wal_status,"
	"   safe_wal_size, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
	"   ELSE pg_current_wal_lsn() END, restart_lsn) AS retained_bytes"
	"   FROM pg_replication_slots WHERE slot_type = 'physical') y), '[]'::json),"
	" 'archiver', CASE WHEN current_setting('archive_mode') = 'off' THEN NULL ELSE"
	"   (SELECT row_to_json(a) FROM (SELECT archived_count, failed_count, last_failed_wal,"
	"   extract(epoch FROM last_archived_time)::bigint AS last_archived_at,"
	"   extract(epoch FROM last_failed_time)::bigint AS last_failed_at,"
	"   COALESCE(last_failed_time > last_archived_time, last_failed_time IS NOT NULL) AS failing"
	"   FROM pg_stat_archiver) a) END"
	")::text";

static void probe_finish(struct pgwatch *pw)
{
	pw->probe = pg_session_close(pw->probe);
	pw->probe_step = PROBE_STEP_IDLE;
	loop_timer_disarm(pw->probe_deadline);
}

static bool postmaster_running(const struct pgwatch *pw)
{
	struct child *c = child_find(pw->children, PG_CHILD_NAME);

	return c && child_pid(c) > 0;
}

static void probe_failed(struct pgwatch *pw, bool timeout, const char *why)
{
	snprintf(pw->probe_error, sizeof(pw->probe_error), "%s", why);
	for (char *p = pw->probe_error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	str_trim_right(pw->probe_error);
	probe_finish(pw);
	pw->failures++;
	if (postmaster_running(pw))
		lifecycle_probe_failed(pw, timeout);
}

static const char *downstream_slots_sql(const struct pgwatch *pw, char *buf, size_t size)
{
	const struct conf *c = pw->conf;
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n_nodes; i++) {
		char slot[64];

		if (c->nodes[i].upstream != c->self)
			continue;
		pg_slot_name(c->nodes[i].name, slot, sizeof(slot));
		o += (size_t)snprintf(buf + o, size - o, "%s'%s'", o ? "," : "", slot);
		if (o >= size)
			break;
	}
	return buf;
}

/*
 * Role and slots on the primary; idempotent, sent once per start or reload.
 * Slots reserve WAL at once: a replica cloning with -S needs it from now on.
 */
static int send_setup(struct pgwatch *pw)
{
	const struct conf_postgres *pg = &conf_self(pw->conf)->settings.postgres;
	char slots[2048], rewind[600] = "";
	char *verifier = PQencryptPasswordConn(pg_session_conn(pw->probe), pw->password, pg->replication_user,
					       "scram-sha-256");
	_cleanup_free_ char *sql = NULL;
	int r;

	if (!verifier)
		return -EINVAL;
	downstream_slots_sql(pw, slots, sizeof(slots));
	/*
	 * With high availability a former primary comes back through pg_rewind,
	 * connecting as the replication role: the four functions it calls
	 * (pg_rewind docs; without them: patroni#3685).
	 */
	if (conf_ha_on(pw->conf))
		snprintf(rewind, sizeof(rewind),
			 "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO \"%s\";"
			 "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO \"%s\";"
			 "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO \"%s\";"
			 "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO \"%s\";",
			 pg->replication_user, pg->replication_user, pg->replication_user, pg->replication_user);
	/* Names are checked identifiers ([A-Za-z_][A-Za-z0-9_]*), slots [a-z0-9_]. */
	sql = xasprintf("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN "
			"CREATE ROLE \"%s\" WITH REPLICATION LOGIN; END IF; END$$;"
			"ALTER ROLE \"%s\" WITH REPLICATION LOGIN PASSWORD '%s';"
			"SELECT count(pg_create_physical_replication_slot(s, true)) FROM unnest(ARRAY[%s]::text[]) s "
			"WHERE s NOT IN (SELECT slot_name FROM pg_replication_slots);%s",
			pg->replication_user, pg->replication_user, pg->replication_user, verifier,
			slots[0] ? slots : "", rewind);
	PQfreemem(verifier);
	r = pg_session_send(pw->probe, sql);
	explicit_zero(sql, strlen(sql));
	return r;
}

/* The probe query's one row: the server's JSON (see probe_sql). */
static void probe_result(void *data, PGresult *res)
{
	struct pgwatch *pw = data;
	struct timespec ts;
	json_t *j;

	if (pw->probe_step != PROBE_STEP_QUERY || PQntuples(res) != 1 ||
	    !(j = json_loads(PQgetvalue(res, 0, 0), 0, NULL)))
		return;
	json_decref(pw->last);
	pw->last = j;
	clock_gettime(CLOCK_REALTIME, &ts);
	pw->last_ok_wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pw->last_ok_mono_ms = now_ms();
}

static void probe_ready(void *data, struct pg_session *s)
{
	struct pgwatch *pw = data;

	if (pg_session_send(s, probe_sql) < 0) {
		probe_failed(pw, false, PQerrorMessage(pg_session_conn(s)));
		return;
	}
	pw->probe_step = PROBE_STEP_QUERY;
}

static void probe_done(void *data, struct pg_session *s, const char *error)
{
	struct pgwatch *pw = data;

	(void)s;
	if (error) {
		if (pw->probe_step == PROBE_STEP_SETUP)
			log_errorx("pgwatch", "setting up the replication role and slots failed error=\"%.200s\"",
				   error);
		probe_failed(pw, false, error);
		return;
	}
	if (pw->probe_step == PROBE_STEP_SETUP) {
		pw->setup_done = true;
		log_info("pgwatch", "replication role and slots are in place");
		probe_finish(pw);
		return;
	}
	/* A good probe. */
	replica_track(pw);
	pw->failures = 0;
	pw->probe_error[0] = '\0';
	lifecycle_probe_ok(pw);
	role_after_probe(pw);
	json_decref(pw->bound);
	pw->bound = listen_check(conf_self(pw->conf)->settings.postgres.port);
	if (!json_is_true(json_object_get(pw->last, "in_recovery")) && !pw->setup_done &&
	    pw->password[0] && send_setup(pw) == 0) {
		pw->probe_step = PROBE_STEP_SETUP;
		return;
	}
	probe_finish(pw);
}

static const struct pg_session_ops probe_ops = {
	.ready = probe_ready, .result = probe_result, .done = probe_done,
};

static void on_probe(struct loop_source *src, void *data)
{
	struct pgwatch *pw = data;
	const struct conf_postgres *pg = &conf_self(pw->conf)->settings.postgres;
	_cleanup_free_ char *conninfo = NULL;

	(void)src;
	if (pw->probe_step != PROBE_STEP_IDLE || !pw->bootstrapped)
		return;
	if (!postmaster_running(pw)) {
		lifecycle_postmaster_absent(pw);
		return;
	}
	lifecycle_postmaster_present(pw);
	conninfo = xasprintf("host=%s port=%u user=%s dbname=postgres connect_timeout=2 "
			     "application_name=supervisor", pw->sockdir, pg->port, pg->user);
	if (pg_session_open(pw->loop, conninfo, &probe_ops, pw, &pw->probe) < 0) {
		probe_failed(pw, false, "cannot start a connection");
		return;
	}
	pw->probe_step = PROBE_STEP_CONNECTING;
	loop_timer_arm(pw->probe_deadline, PROBE_DEADLINE_MS, 0);
}

static void on_deadline(struct loop_source *src, void *data)
{
	(void)src;
	probe_failed(data, true, "no answer within 1.5 s");
}

int probe_init(struct pgwatch *pw)
{
	int r;

	if ((r = loop_add_timer(pw->loop, on_probe, pw, &pw->probe_timer)) < 0 ||
	    (r = loop_add_timer(pw->loop, on_deadline, pw, &pw->probe_deadline)) < 0)
		return r;
	return 0;
}

void probe_fast(struct pgwatch *pw, bool fast)
{
	uint64_t every = fast ? PROBE_FAST_MS : PROBE_EVERY_MS;

	loop_timer_arm(pw->probe_timer, fast ? 50 : every, every);
}

void probe_stop(struct pgwatch *pw)
{
	probe_finish(pw);
	loop_remove(pw->probe_timer);
	loop_remove(pw->probe_deadline);
}

/* One sock_diag dump of @family's listening TCP sockets; matches on @port go to @bound. */
static int listen_dump(struct mnl_socket *nl, uint8_t family, uint16_t port, json_t *bound)
{
	char buf[16384];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct inet_diag_req_v2 *req;
	uint32_t seq = (uint32_t)time(NULL) + family;
	ssize_t n;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = 1u << 10; /* TCP_LISTEN only: the kernel then skips the established table */
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		for (const struct nlmsghdr *h = (void *)buf; mnl_nlmsg_ok(h, (int)n);
		     h = mnl_nlmsg_next(h, (int *)&n)) {
			const struct inet_diag_msg *m = mnl_nlmsg_get_payload(h);
			char addr[INET6_ADDRSTRLEN];

			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -EPROTO;
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
			    ntohs(m->id.idiag_sport) != port)
				continue;
			inet_ntop(m->idiag_family, m->id.idiag_src, addr, sizeof(addr));
			json_array_append_new(bound, json_string(addr));
		}
	}
	return n < 0 ? -errno : 0;
}

/*
 * Asked of the kernel with sock_diag, as ss(8) does: reading /proc/net/tcp
 * walks every established socket on the host (the table is shared by all
 * namespaces), tens of milliseconds of CPU on a busy machine every probe.
 */
json_t *listen_check(uint16_t port)
{
	json_t *bound = json_array();
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	struct timeval tv = { .tv_sec = 1 };

	if (!nl)
		return bound;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 &&
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0) {
		(void)listen_dump(nl, AF_INET, port, bound);
		(void)listen_dump(nl, AF_INET6, port, bound);
	}
	mnl_socket_close(nl);
	return bound;
}
