// SPDX-License-Identifier: MIT
/*
 * One libpq connection driven from the event loop, never blocking it:
 * PQconnectStart/PQconnectPoll until connected, then one query at a time
 * with PQsendQuery, flushing and reading as the socket allows. The probes,
 * the identity check and the CHECKPOINT before a stop each talk to
 * Postgres this way; they differ only in what they send and what they
 * make of the results, which they get through the session's ops.
 *
 * A session's ops may close it from inside any callback: the session is
 * not touched after a callback returns (the loop allows removing a source
 * from its own callback).
 */
#include "pgwatch/pgwatch_internal.h"
#include "lib/loop.h"
#include "lib/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

struct pg_session {
	struct loop *loop;
	PGconn *conn;
	struct loop_source *src;
	const struct pg_session_ops *ops;
	void *data;
	bool connected;
	bool busy;              /* a query is in flight */
	char error[300];        /* the first error of the query in flight */
};

static void on_socket(struct loop_source *src, int fd, uint32_t events, void *data);

static void watch(struct pg_session *s, uint32_t events)
{
	loop_fd_events(s->src, events);
}

static void failed(struct pg_session *s)
{
	snprintf(s->error, sizeof(s->error), "%s", PQerrorMessage(s->conn));
	s->ops->done(s->data, s, s->error);
}

/* The query in flight has no more results: hand them over, then say it is done. */
static void take_results(struct pg_session *s)
{
	PGresult *res;

	while ((res = PQgetResult(s->conn))) {
		ExecStatusType st = PQresultStatus(res);

		if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			if (!s->error[0])
				snprintf(s->error, sizeof(s->error), "%s", PQresultErrorMessage(res));
		} else if (s->ops->result) {
			s->ops->result(s->data, res);
		}
		PQclear(res);
	}
	s->busy = false;
	s->ops->done(s->data, s, s->error[0] ? s->error : NULL);
}

static void on_socket(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct pg_session *s = data;

	(void)src;
	(void)fd;
	(void)events;
	if (!s->connected) {
		switch (PQconnectPoll(s->conn)) {
		case PGRES_POLLING_READING:
			watch(s, EPOLLIN);
			return;
		case PGRES_POLLING_WRITING:
			watch(s, EPOLLOUT);
			return;
		case PGRES_POLLING_FAILED:
			failed(s);
			return;
		case PGRES_POLLING_OK:
		case PGRES_POLLING_ACTIVE:
			break;
		}
		if (PQsetnonblocking(s->conn, 1) != 0) {
			failed(s);
			return;
		}
		s->connected = true;
		watch(s, EPOLLIN);
		s->ops->ready(s->data, s);
		return;
	}
	if (!s->busy) {
		/* Nothing asked: input now is a notice or the server going away. */
		if (!PQconsumeInput(s->conn))
			failed(s);
		return;
	}
	switch (PQflush(s->conn)) {
	case 1:
		watch(s, EPOLLIN | EPOLLOUT);
		return;
	case -1:
		failed(s);
		return;
	}
	if (!PQconsumeInput(s->conn)) {
		failed(s);
		return;
	}
	if (PQisBusy(s->conn)) {
		watch(s, EPOLLIN);
		return;
	}
	take_results(s);
}

int pg_session_open(struct loop *loop, const char *conninfo, const struct pg_session_ops *ops, void *data,
		    struct pg_session **out)
{
	struct pg_session *s = xcalloc(1, sizeof(*s));
	int r;

	*s = (struct pg_session){ .loop = loop, .ops = ops, .data = data };
	s->conn = PQconnectStart(conninfo);
	if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
		r = -EIO;
		goto fail;
	}
	if ((r = loop_add_fd(loop, PQsocket(s->conn), EPOLLOUT, on_socket, s, &s->src)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->conn)
		PQfinish(s->conn);
	free(s);
	return r;
}

int pg_session_send(struct pg_session *s, const char *sql)
{
	if (!s->connected || s->busy)
		return -EBUSY;
	s->error[0] = '\0';
	if (!PQsendQuery(s->conn, sql))
		return -EIO;
	s->busy = true;
	/* A long query may not fit the socket buffer at once: wait for room too. */
	watch(s, PQflush(s->conn) == 1 ? EPOLLIN | EPOLLOUT : EPOLLIN);
	return 0;
}

PGconn *pg_session_conn(struct pg_session *s)
{
	return s->conn;
}

struct pg_session *pg_session_close(struct pg_session *s)
{
	if (!s)
		return NULL;
	loop_remove(s->src);
	if (s->conn)
		PQfinish(s->conn);
	free(s);
	return NULL;
}
