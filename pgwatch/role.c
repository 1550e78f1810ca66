// SPDX-License-Identifier: MIT
/*
 * Roles that change while the supervisor runs (high availability): the
 * leader in the store decides, the daemon hands pgwatch a configuration
 * whose roles say so (conf_with_leader()), and this file makes Postgres
 * match it. A replica told it is the primary is promoted (pg_promote(),
 * from the loop, never blocking); a primary told it is a replica is
 * stopped by the lifecycle and comes back through pg_rewind as a standby
 * (lifecycle.c); a node that became a replica drops the slots it kept
 * for its own replicas, or they would hold WAL back on a standby forever.
 */
#include "pgwatch/pgwatch_internal.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/*
 * ControlFileData's head (src/include/catalog/pg_control.h), unchanged
 * since 9.3: system_identifier u64 @0, pg_control_version u32 @8,
 * catalog_version_no u32 @12, state (DBState, int) @16, time i64 @24,
 * checkPoint u64 @32, checkPointCopy.redo u64 @40,
 * checkPointCopy.ThisTimeLineID u32 @48.
 */
int pg_control_read(const char *data_dir, struct pg_control *out)
{
	_cleanup_free_ char *path = xasprintf("%s/global/pg_control", data_dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char b[52];
	uint32_t state;

	if (fd < 0)
		return -errno;
	if (read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		return -EIO;
	memcpy(&out->sysid, b, 8);
	memcpy(&state, b + 16, 4);
	memcpy(&out->checkpoint_lsn, b + 32, 8);
	memcpy(&out->timeline, b + 48, 4);
	out->state = (enum pg_db_state)state;
	return 0;
}

bool pg_control_was_primary(const struct pg_control *c)
{
	/* A standby's directory says "shut down in recovery" or "in archive recovery". */
	return c->state == PG_DB_SHUTDOWNED || c->state == PG_DB_IN_PRODUCTION ||
	       c->state == PG_DB_IN_CRASH_RECOVERY || c->state == PG_DB_SHUTDOWNING;
}

const char *pg_lsn_text(uint64_t lsn, char *buf, size_t size)
{
	snprintf(buf, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
	return buf;
}

/* 1 to 8 hex digits, nothing else (no sign, space or 0x). */
static const char *lsn_half(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	int n = 0;

	for (; isxdigit((unsigned char)s[n]) && n < 9; n++)
		v = v << 4 | (uint32_t)(isdigit((unsigned char)s[n]) ? s[n] - '0' : (tolower((unsigned char)s[n]) - 'a' + 10));
	if (n == 0 || n > 8)
		return NULL;
	*out = v;
	return s + n;
}

int pg_lsn_parse(const char *s, uint64_t *out)
{
	uint32_t hi, lo;

	if (!s || !(s = lsn_half(s, &hi)) || *s++ != '/' || !(s = lsn_half(s, &lo)) || *s)
		return -EINVAL;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

/* ---- promotion and the slots a replica no longer needs -------------------------- */

static void role_session_close(struct pgwatch *pw)
{
	pw->role_session = pg_session_close(pw->role_session);
}

static void role_ready(void *data, struct pg_session *s)
{
	struct pgwatch *pw = data;

	if (pg_session_send(s, pw->role_sql) < 0)
		role_session_close(pw);
}

static void role_done(void *data, struct pg_session *s, const char *error)
{
	struct pgwatch *pw = data;
	char q[400];

	(void)s;
	if (error) {
		char msg[300];

		snprintf(msg, sizeof(msg), "%s", error);
		str_trim_right(msg);
		log_warnx("pgwatch", "%s failed error=%s", pw->role_what, log_quote(q, sizeof(q), msg));
		pw->role_done_what[0] = '\0'; /* tried again after the next probe */
	} else {
		log_info("pgwatch", "%s done after_ms=%llu", pw->role_what,
			 (unsigned long long)(now_ms() - pw->role_started_ms));
	}
	role_session_close(pw);
}

static const struct pg_session_ops role_ops = { .ready = role_ready, .done = role_done };

static void role_run(struct pgwatch *pw, const char *what, const char *sql)
{
	const struct conf_postgres *pg = &conf_self(pw->conf)->settings.postgres;
	_cleanup_free_ char *conninfo = xasprintf("host=%s port=%u user=%s dbname=postgres "
						  "application_name=supervisor-ha", pw->sockdir, pg->port,
						  pg->user);

	if (pw->role_session || strcmp(pw->role_done_what, what) == 0)
		return; /* in flight, or done for this role already */
	snprintf(pw->role_what, sizeof(pw->role_what), "%s", what);
	snprintf(pw->role_done_what, sizeof(pw->role_done_what), "%s", what);
	snprintf(pw->role_sql, sizeof(pw->role_sql), "%s", sql);
	pw->role_started_ms = now_ms();
	log_info("pgwatch", "%s", what);
	if (pg_session_open(pw->loop, conninfo, &role_ops, pw, &pw->role_session) < 0) {
		role_session_close(pw);
		pw->role_done_what[0] = '\0';
	}
}

void role_after_probe(struct pgwatch *pw)
{
	const struct conf_node *me = conf_self(pw->conf);
	bool in_recovery = json_is_true(json_object_get(pw->last, "in_recovery"));

	if (!conf_ha_on(pw->conf))
		return;
	if (me->pg_role == CONF_PG_PRIMARY && in_recovery) {
		/* wait_seconds 60: the end of recovery is a checkpoint, not a restart */
		role_run(pw, "promoting: the store names this node the leader",
			 "SELECT pg_promote(true, 60)");
	} else if (me->pg_role == CONF_PG_REPLICA && in_recovery) {
		/* The slots it kept as a primary: on a standby they would pin WAL forever. */
		role_run(pw, "dropping the slots this node kept as a primary",
			 "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots "
			 "WHERE NOT active AND slot_type = 'physical'");
	}
}

void role_set_conf(struct pgwatch *pw)
{
	/* A new role: its one-time step (promote, drop slots) is due again. */
	if (conf_self(pw->conf)->pg_role != pw->role_applied)
		pw->role_done_what[0] = '\0';
}

void role_cancel(struct pgwatch *pw)
{
	role_session_close(pw);
}
