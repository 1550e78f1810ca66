// SPDX-License-Identifier: MIT
/*
 * Before a replica starts on a data directory it did not just clone, its
 * system identifier must be its upstream's: otherwise the directory belongs
 * to another cluster, and nothing good comes of starting it (and nothing is
 * ever deleted to "fix" it). The local identifier is the first field of
 * global/pg_control; the upstream's comes from IDENTIFY_SYSTEM over a
 * replication connection, driven non-blocking from the loop with a
 * deadline. An unreachable upstream cannot be checked: the replica starts,
 * and its WAL receiver would refuse a foreign primary anyway.
 */
#include "pgwatch/pgwatch_internal.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDENTITY_DEADLINE_MS 4000

struct identity_check {
	struct pgwatch *pw;
	struct pg_session *session;
	struct loop_source *deadline;
	uint64_t local;
	bool answered;
	uint64_t upstream;
	void (*done)(struct pgwatch *pw, int verdict, uint64_t upstream);
};

/* ControlFileData starts with uint64 system_identifier, in host byte order. */
int pg_local_sysid(const char *data_dir, uint64_t *out)
{
	_cleanup_free_ char *path = xasprintf("%s/global/pg_control", data_dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (read(fd, out, sizeof(*out)) != (ssize_t)sizeof(*out))
		return -EIO;
	return 0;
}

static void teardown(struct identity_check *ic)
{
	ic->pw->identity = NULL;
	pg_session_close(ic->session);
	loop_remove(ic->deadline);
	free(ic);
}

static void finish(struct identity_check *ic, int verdict, uint64_t upstream)
{
	struct pgwatch *pw = ic->pw;
	void (*done)(struct pgwatch *, int, uint64_t) = ic->done;

	teardown(ic);
	done(pw, verdict, upstream);
}

static void identity_ready(void *data, struct pg_session *s)
{
	if (pg_session_send(s, "IDENTIFY_SYSTEM") < 0)
		finish(data, IDENTITY_UNKNOWN, 0);
}

static void identity_result(void *data, PGresult *res)
{
	struct identity_check *ic = data;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		ic->upstream = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		ic->answered = true;
	}
}

static void identity_done(void *data, struct pg_session *s, const char *error)
{
	struct identity_check *ic = data;

	(void)s;
	if (error && !ic->answered)
		log_warnx("pgwatch", "cannot reach the upstream to check the system identifier error=\"%.200s\"",
			  error);
	if (error || !ic->answered)
		finish(ic, IDENTITY_UNKNOWN, 0);
	else
		finish(ic, ic->upstream == ic->local ? IDENTITY_SAME : IDENTITY_DIFFERENT, ic->upstream);
}

static const struct pg_session_ops identity_ops = {
	.ready = identity_ready, .result = identity_result, .done = identity_done,
};

static void on_identity_deadline(struct loop_source *src, void *data)
{
	(void)src;
	log_warnx("pgwatch", "the upstream did not answer IDENTIFY_SYSTEM in time");
	finish(data, IDENTITY_UNKNOWN, 0);
}

int identity_check_start(struct pgwatch *pw, uint64_t local,
			 void (*done)(struct pgwatch *pw, int verdict, uint64_t upstream))
{
	const struct conf *c = pw->conf;
	const struct conf_node *me = conf_self(c), *up = &c->nodes[me->upstream];
	struct identity_check *ic = xcalloc(1, sizeof(*ic));
	_cleanup_free_ char *conninfo = NULL;
	char ip[16];

	ic->pw = pw;
	ic->local = local;
	ic->done = done;
	conninfo = xasprintf("host=%s port=%u user=%s passfile=%s replication=true dbname=replication "
			     "connect_timeout=3 application_name=%s-identity",
			     conf_ip_str(up->overlay_ip, ip), up->settings.postgres.port,
			     me->settings.postgres.replication_user, pw->passfile, me->name);
	if (pg_session_open(pw->loop, conninfo, &identity_ops, ic, &ic->session) < 0 ||
	    loop_add_timer(pw->loop, on_identity_deadline, ic, &ic->deadline) < 0) {
		pg_session_close(ic->session);
		free(ic);
		return -EIO;
	}
	loop_timer_arm(ic->deadline, IDENTITY_DEADLINE_MS, 0);
	pw->identity = ic;
	return 0;
}

void identity_check_cancel(struct pgwatch *pw)
{
	if (pw->identity)
		teardown(pw->identity);
}
