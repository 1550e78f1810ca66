// SPDX-License-Identifier: MIT
/* lib/loop.c: timers, fd sources removed mid-round, signals via signalfd. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/loop.h"
#include "lib/proc.h"

static int fired;

static void count_timer(struct loop_source *src, void *data)
{
	(void)src;
	(void)data;
	fired++;
}

static void run_for(struct loop *l, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		loop_run_once(l, (int)(end - now_ms()));
}

static void test_timer_once_and_interval(void **state)
{
	struct loop *l;
	struct loop_source *t;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_timer(l, count_timer, NULL, &t), 0);
	fired = 0;
	loop_timer_arm(t, 20, 0);
	assert_true(loop_timer_armed(t));
	run_for(l, 80);
	assert_int_equal(fired, 1);
	assert_false(loop_timer_armed(t));

	fired = 0;
	loop_timer_arm(t, 10, 20);
	run_for(l, 105); /* 10, 30, 50, 70, 90 */
	assert_in_range(fired, 4, 6);
	loop_timer_disarm(t);
	fired = 0;
	run_for(l, 50);
	assert_int_equal(fired, 0);
	loop_free(l);
}

static void test_disarm_drops_pending_expiry(void **state)
{
	struct loop *l;
	struct loop_source *t;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_timer(l, count_timer, NULL, &t), 0);
	fired = 0;
	loop_timer_arm(t, 1, 0);
	usleep(20000); /* expired, not yet dispatched */
	loop_timer_disarm(t);
	run_for(l, 30);
	assert_int_equal(fired, 0);
	loop_free(l);
}

struct pair {
	struct loop_source *other;
	int calls;
};

static struct pair a, b;

/* Whichever runs first removes the other, whose event is pending in this round. */
static void remove_other(struct loop_source *src, int fd, uint32_t events, void *data)
{
	struct pair *self = data;
	char c;

	(void)src;
	(void)events;
	(void)!read(fd, &c, 1);
	self->calls++;
	self->other = loop_remove(self->other);
}

static void test_remove_during_dispatch(void **state)
{
	struct loop *l;
	int p1[2], p2[2];
	struct loop_source *s1, *s2;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(loop_add_fd(l, p1[0], EPOLLIN, remove_other, &a, &s1), 0);
	assert_int_equal(loop_add_fd(l, p2[0], EPOLLIN, remove_other, &b, &s2), 0);
	a.other = s2;
	b.other = s1;
	assert_int_equal(write(p1[1], "x", 1), 1);
	assert_int_equal(write(p2[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, 100), 2); /* both events in one round */
	assert_int_equal(a.calls + b.calls, 1);     /* the removed one never ran */
	loop_free(l);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static int got_signal;

static void on_usr1(struct loop *l, const struct signalfd_siginfo *si, void *data)
{
	(void)data;
	got_signal = (int)si->ssi_signo;
	loop_quit(l, 7);
}

static void test_signal_through_loop(void **state)
{
	struct loop *l;

	(void)state;
	sig_save_and_block();
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_signal(l, SIGUSR1, on_usr1, NULL), 0);
	kill(getpid(), SIGUSR1);
	assert_int_equal(loop_run(l), 7);
	assert_int_equal(got_signal, SIGUSR1);
	loop_free(l);
}

static void test_signal_names(void **state)
{
	(void)state;
	assert_string_equal(signal_name(SIGTERM), "SIGTERM");
	assert_string_equal(signal_name(SIGKILL), "SIGKILL");
	assert_string_equal(signal_name(0), "SIG?");
	assert_string_equal(signal_name(200), "SIG?");
	/* The stop plans' parser reads names through the same table. */
	assert_int_equal(signal_from_name("SIGTERM"), SIGTERM);
	assert_int_equal(signal_from_name("INT"), SIGINT);
	assert_int_equal(signal_from_name("SIGVTALRM"), SIGVTALRM);
	assert_int_equal(signal_from_name("sigterm"), 0);
	assert_int_equal(signal_from_name("SIG"), 0);
	assert_int_equal(signal_from_name("?"), 0);
	for (int sig = 1; sig < 32; sig++)
		if (strcmp(signal_name(sig), "SIG?") != 0)
			assert_int_equal(signal_from_name(signal_name(sig)), sig);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_once_and_interval),
		cmocka_unit_test(test_disarm_drops_pending_expiry),
		cmocka_unit_test(test_remove_during_dispatch),
		cmocka_unit_test(test_signal_through_loop),
		cmocka_unit_test(test_signal_names),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
