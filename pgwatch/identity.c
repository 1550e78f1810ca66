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
#include <sys/epoll.h>
#include <unistd.h>

#define IDENTITY_DEADLINE_MS 4000

struct identity_check {
	struct pgwatch *pw;
	PGconn *conn;
	struct loop_source *src, *deadline;
	bool sent;
	uint64_t local;
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
	loop_remove(ic->src);
	loop_remove(ic->deadline);
	if (ic->conn)
		PQfinish(ic->conn);
	free(ic);
}

static void finish(struct identity_check *ic, int verdict, uint64_t upstream)
{
	struct pgwatch *pw = ic->pw;
	void (*done)(struct pgwatch *, int, uint64_t) = ic->done;

	teardown(ic);
	done(pw, verdict, upstream);
}

static void on_identity(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct identity_check *ic = data;
	PGresult *res;

	(void)src;
	(void)fd;
	(void)events;
	if (!ic->sent) {
		switch (PQconnectPoll(ic->conn)) {
		case PGRES_POLLING_READING:
			loop_fd_events(ic->src, EPOLLIN);
			return;
		case PGRES_POLLING_WRITING:
			loop_fd_events(ic->src, EPOLLOUT);
			return;
		case PGRES_POLLING_FAILED:
			log_warnx("pgwatch", "cannot reach the upstream to check the system identifier error=\"%.200s\"",
				  PQerrorMessage(ic->conn));
			finish(ic, IDENTITY_UNKNOWN, 0);
			return;
		case PGRES_POLLING_OK:
		case PGRES_POLLING_ACTIVE:
			break;
		}
		if (PQsetnonblocking(ic->conn, 1) != 0 || !PQsendQuery(ic->conn, "IDENTIFY_SYSTEM")) {
			finish(ic, IDENTITY_UNKNOWN, 0);
			return;
		}
		ic->sent = true;
		loop_fd_events(ic->src, EPOLLIN);
		return;
	}
	if (!PQconsumeInput(ic->conn)) {
		finish(ic, IDENTITY_UNKNOWN, 0);
		return;
	}
	if (PQisBusy(ic->conn))
		return;
	res = PQgetResult(ic->conn);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		uint64_t up = strtoull(PQgetvalue(res, 0, 0), NULL, 10);

		PQclear(res);
		finish(ic, up == ic->local ? IDENTITY_SAME : IDENTITY_DIFFERENT, up);
		return;
	}
	PQclear(res);
	finish(ic, IDENTITY_UNKNOWN, 0);
}

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
	ic->conn = PQconnectStart(conninfo);
	if (!ic->conn || PQstatus(ic->conn) == CONNECTION_BAD ||
	    loop_add_fd(pw->loop, PQsocket(ic->conn), EPOLLOUT, on_identity, ic, &ic->src) < 0 ||
	    loop_add_timer(pw->loop, on_identity_deadline, ic, &ic->deadline) < 0) {
		loop_remove(ic->src);
		if (ic->conn)
			PQfinish(ic->conn);
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
