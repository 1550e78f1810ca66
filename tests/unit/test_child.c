// SPDX-License-Identifier: MIT
/*
 * child/child.c with real processes (/bin/sleep): a stop that begins with the
 * spec's before_stop hook sends its first signal only when the hook reports
 * back or its deadline passes; the hook is cancelled when the child exits
 * first; a replaced stop plan is the one used.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "child/child.h"
#include "lib/log.h"
#include "lib/loop.h"

struct fixture {
	struct loop *loop;
	struct child_set *set;
	struct child *c;
	struct loop_source *later; /* calls child_stop_continue() */
	int hook_result;           /* what before_stop returns */
	unsigned hooks, cancels;
	uint64_t stop_at, exit_at;
	int status;
	bool done;
};

static struct fixture fx;

static int hook(struct child *c, void *data)
{
	struct fixture *f = data;

	(void)c;
	f->hooks++;
	return f->hook_result;
}

static void cancel(struct child *c, void *data)
{
	struct fixture *f = data;

	(void)c;
	f->cancels++;
}

static void exited(struct child *c, int status, void *data)
{
	struct fixture *f = data;

	(void)c;
	f->status = status;
	f->exit_at = now_ms();
}

static void continue_now(struct loop_source *src, void *data)
{
	struct fixture *f = data;

	(void)src;
	child_stop_continue(f->c);
}

static void shutdown_done(void *data, int status)
{
	struct fixture *f = data;

	(void)status;
	f->done = true;
}

/* Run the loop (reaping, as SIGCHLD would) until @flag or @ms pass. */
static void run_until(bool *flag, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (!*flag && now_ms() < end) {
		loop_run_once(fx.loop, 10);
		child_set_reap(fx.set);
	}
}

/* `sleep 30` as a child with the hook; returns once it runs (exec confirmed). */
static void start_sleeper(uint32_t before_stop_ms)
{
	static const char *const argv[] = { "/bin/sleep", "30", NULL };
	struct child_policy pol = { .backoff_max_ms = 1000, .stable_after_ms = 1000 };
	struct child_spec spec = {
		.name = "sleeper",
		.argv = argv,
		.restart = CHILD_RESTART_NEVER,
		.stop = { { SIGTERM, 5000 } },
		.n_stop = 1,
		.before_stop = hook,
		.before_stop_cancel = cancel,
		.before_stop_ms = before_stop_ms,
		.on_exit = exited,
		.data = &fx,
	};
	struct child_status st;
	uint64_t end = now_ms() + 2000;

	memset(&fx, 0, sizeof(fx));
	fx.status = -1;
	assert_int_equal(loop_new(&fx.loop), 0);
	assert_int_equal(child_set_new(fx.loop, &pol, &fx.set), 0);
	assert_int_equal(loop_add_timer(fx.loop, continue_now, &fx, &fx.later), 0);
	assert_int_equal(child_add(fx.set, &spec, &fx.c), 0);
	child_set_start(fx.set);
	do {
		loop_run_once(fx.loop, 10);
		child_set_status(fx.set, &st, 1);
	} while (st.state != CHILD_STATE_RUNNING && now_ms() < end);
	assert_int_equal(st.state, CHILD_STATE_RUNNING);
}

static void stop_all(void)
{
	fx.stop_at = now_ms();
	child_set_shutdown(fx.set, 10000, shutdown_done, &fx);
	run_until(&fx.done, 8000);
	assert_true(fx.done);
}

static void finish(void)
{
	loop_remove(fx.later);
	child_set_free(fx.set);
	loop_free(fx.loop);
}

static uint64_t took(void)
{
	return fx.exit_at - fx.stop_at;
}

/* The hook is still working: no signal until it reports back. */
static void test_first_signal_waits_for_hook(void **state)
{
	(void)state;
	start_sleeper(5000);
	fx.hook_result = CHILD_STOP_LATER;
	loop_timer_arm(fx.later, 300, 0);
	stop_all();
	assert_int_equal(fx.hooks, 1);
	assert_int_equal(fx.cancels, 0);
	assert_true(WIFSIGNALED(fx.status) && WTERMSIG(fx.status) == SIGTERM);
	assert_true(took() >= 290);
	assert_true(took() < 2000);
	child_stop_continue(fx.c); /* late: harmless */
	finish();
}

/* The hook never reports back: the signal goes out at its deadline, and it is cancelled. */
static void test_hook_deadline(void **state)
{
	(void)state;
	start_sleeper(250);
	fx.hook_result = CHILD_STOP_LATER;
	stop_all();
	assert_int_equal(fx.hooks, 1);
	assert_int_equal(fx.cancels, 1);
	assert_true(WIFSIGNALED(fx.status) && WTERMSIG(fx.status) == SIGTERM);
	assert_true(took() >= 240);
	assert_true(took() < 2000);
	finish();
}

/* Nothing to wait for (0), or the hook failed (-errno): the signal goes out at once. */
static void test_hook_done_at_once(void **state)
{
	static const int results[] = { 0, -EIO };

	(void)state;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		start_sleeper(5000);
		fx.hook_result = results[i];
		stop_all();
		assert_int_equal(fx.hooks, 1);
		assert_int_equal(fx.cancels, 0);
		assert_true(WIFSIGNALED(fx.status) && WTERMSIG(fx.status) == SIGTERM);
		assert_true(took() < 200);
		finish();
	}
}

/* The child dies while the hook works: the hook is cancelled, nothing else is sent. */
static void test_exit_during_hook_cancels(void **state)
{
	(void)state;
	start_sleeper(5000);
	fx.hook_result = CHILD_STOP_LATER;
	fx.stop_at = now_ms();
	child_set_shutdown(fx.set, 10000, shutdown_done, &fx);
	assert_int_equal(fx.hooks, 1);
	assert_int_equal(kill(child_pid(fx.c), SIGKILL), 0);
	run_until(&fx.done, 3000);
	assert_true(fx.done);
	assert_int_equal(fx.cancels, 1);
	assert_true(WIFSIGNALED(fx.status) && WTERMSIG(fx.status) == SIGKILL);
	assert_true(took() < 2000);
	finish();
}

/* A plan replaced after the start (a reload) is the one a later stop uses. */
static void test_replaced_stop_plan(void **state)
{
	const struct child_stop_step steps[] = { { SIGINT, 5000 } };

	(void)state;
	start_sleeper(5000);
	child_set_stop(fx.c, steps, 1, 100);
	assert_int_equal(child_spec(fx.c)->stop[0].signo, SIGINT);
	assert_int_equal(child_spec(fx.c)->before_stop_ms, 100);
	fx.hook_result = CHILD_STOP_LATER;
	stop_all();
	assert_int_equal(fx.cancels, 1);
	assert_true(WIFSIGNALED(fx.status) && WTERMSIG(fx.status) == SIGINT);
	assert_true(took() >= 90);
	finish();
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_signal_waits_for_hook),
		cmocka_unit_test(test_hook_deadline),
		cmocka_unit_test(test_hook_done_at_once),
		cmocka_unit_test(test_exit_during_hook_cancels),
		cmocka_unit_test(test_replaced_stop_plan),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
