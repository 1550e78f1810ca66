// SPDX-License-Identifier: MIT
/*
 * Stopping Postgres without crash recovery at the next start. The
 * postmaster's stop plan is cut from the shutdown budget, so that the
 * whole of it fits (pg_stop_plan()), and it begins with a CHECKPOINT
 * issued before the first signal, as Patroni does: the dirty buffers are
 * written while clients are still served, and the shutdown checkpoint that
 * follows SIGINT (fast shutdown) has little left to write. The CHECKPOINT
 * runs on its own libpq connection over the private socket, driven
 * non-blocking from the loop like the probes; the child engine holds the
 * first signal until it reports back or its deadline passes. A CHECKPOINT
 * that fails or runs out of time costs nothing: SIGINT follows at once,
 * and a checkpoint the checkpointer has begun goes on in the shutdown.
 *
 * On a replica the same command is a restartpoint (what its shutdown does
 * too), so it helps there in the same way: it runs on every role, but only
 * when the last probe found Postgres running (a starting or frozen
 * postmaster would only make the signal wait for the deadline).
 */
#include "pgwatch/pgwatch_internal.h"
#include "child/child.h"
#include "lib/common.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* What stops after Postgres (wireguard-go, orphans) gets this much of the budget. */
#define STOP_RESERVE_MS 2000
/* After SIGQUIT the postmaster SIGKILLs its own children after 5 s. */
#define STOP_IMMEDIATE_MAX_MS 5000

void pg_stop_plan(uint32_t budget_ms, struct pg_stop_plan *out)
{
	uint32_t reserve = budget_ms / 10 < STOP_RESERVE_MS ? budget_ms / 10 : STOP_RESERVE_MS;
	uint32_t avail = budget_ms - reserve;
	uint32_t rest;

	out->immediate_ms = avail / 4 < STOP_IMMEDIATE_MAX_MS ? avail / 4 : STOP_IMMEDIATE_MAX_MS;
	rest = avail - out->immediate_ms;
	/*
	 * The CHECKPOINT and the fast shutdown share the rest, 4:5: what the
	 * CHECKPOINT leaves unwritten when its time is up, the shutdown
	 * checkpoint writes, so both together are the time to write it all.
	 */
	out->checkpoint_ms = (uint32_t)((uint64_t)rest * 4 / 9);
	out->fast_ms = rest - out->checkpoint_ms;
}

void pg_stop_steps(const struct pg_stop_plan *plan, struct child_stop_step steps[2])
{
	/* fast shutdown, then immediate, then kill (docs: "Shutting Down the Server") */
	steps[0] = (struct child_stop_step){ SIGINT, plan->fast_ms };
	steps[1] = (struct child_stop_step){ SIGQUIT, plan->immediate_ms };
}

static void checkpoint_teardown(struct pgwatch *pw)
{
	pw->ckpt = pg_session_close(pw->ckpt);
	pw->ckpt_child = NULL;
}

/* Done, well or not: either way the fast shutdown comes next. */
static void checkpoint_finish(struct pgwatch *pw, const char *error)
{
	struct child *c = pw->ckpt_child;
	unsigned long long took = (unsigned long long)(now_ms() - pw->ckpt_started_ms);
	char q[400];

	if (error) {
		char msg[300];

		snprintf(msg, sizeof(msg), "%s", error);
		str_trim_right(msg);
		log_warnx("pgwatch", "checkpoint before stopping postgres failed duration_ms=%llu error=%s",
			  took, log_quote(q, sizeof(q), msg));
	} else {
		log_info("pgwatch", "checkpoint before stopping postgres done duration_ms=%llu", took);
	}
	checkpoint_teardown(pw);
	if (c)
		child_stop_continue(c);
}

static void checkpoint_ready(void *data, struct pg_session *s)
{
	if (pg_session_send(s, "CHECKPOINT") < 0)
		checkpoint_finish(data, PQerrorMessage(pg_session_conn(s)));
}

static void checkpoint_done(void *data, struct pg_session *s, const char *error)
{
	(void)s;
	checkpoint_finish(data, error);
}

static const struct pg_session_ops checkpoint_ops = {
	.ready = checkpoint_ready, .done = checkpoint_done,
};

/* child_spec.before_stop of the postmaster. */
static int checkpoint_begin(struct child *c, void *data)
{
	struct pgwatch *pw = data;
	const struct conf_postgres *pg = &conf_self(pw->conf)->settings.postgres;
	_cleanup_free_ char *conninfo = NULL;

	if (pw->state != PG_STATE_RUNNING) {
		log_info("pgwatch", "no checkpoint before stopping postgres: state=%s",
			 pg_state_name(pw->state));
		return 0;
	}
	checkpoint_teardown(pw);
	conninfo = xasprintf("host=%s port=%u user=%s dbname=postgres application_name=supervisor-stop",
			     pw->sockdir, pg->port, pg->user);
	if (pg_session_open(pw->loop, conninfo, &checkpoint_ops, pw, &pw->ckpt) < 0) {
		checkpoint_teardown(pw);
		return -EIO;
	}
	pw->ckpt_child = c;
	pw->ckpt_started_ms = now_ms();
	log_info("pgwatch", "checkpoint before stopping postgres role=%s",
		 conf_pg_role_name(conf_self(pw->conf)->pg_role));
	return CHILD_STOP_LATER;
}

/* child_spec.before_stop_cancel: out of time (or the postmaster exited). */
static void checkpoint_cancel(struct child *c, void *data)
{
	struct pgwatch *pw = data;

	(void)c;
	if (!pw->ckpt)
		return;
	log_warnx("pgwatch", "checkpoint before stopping postgres abandoned after_ms=%llu "
		  "(what it has not written, the shutdown checkpoint writes)",
		  (unsigned long long)(now_ms() - pw->ckpt_started_ms));
	checkpoint_teardown(pw);
}

void stop_fill_spec(struct pgwatch *pw, struct child_spec *spec)
{
	struct pg_stop_plan plan;

	pg_stop_plan(conf_self(pw->conf)->settings.supervision.shutdown_budget_ms, &plan);
	pg_stop_steps(&plan, spec->stop);
	spec->n_stop = 2;
	spec->before_stop = checkpoint_begin;
	spec->before_stop_cancel = checkpoint_cancel;
	spec->before_stop_ms = plan.checkpoint_ms;
}

void stop_set_conf(struct pgwatch *pw)
{
	struct child *c = child_find(pw->children, PG_CHILD_NAME);
	struct child_stop_step steps[2];
	struct pg_stop_plan plan;

	if (!c)
		return;
	pg_stop_plan(conf_self(pw->conf)->settings.supervision.shutdown_budget_ms, &plan);
	pg_stop_steps(&plan, steps);
	child_set_stop(c, steps, ARRAY_SIZE(steps), plan.checkpoint_ms);
}

void stop_cancel(struct pgwatch *pw)
{
	checkpoint_teardown(pw);
}
