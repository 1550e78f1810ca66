// SPDX-License-Identifier: MIT
/*
 * The event loop: epoll over fds, one timerfd per timer, one signalfd.
 * Small on purpose (a few sources and timers per daemon): every source is
 * a heap object the epoll event points at; removal marks it dead and puts
 * it on a list freed after the dispatch round, so a callback may remove
 * any source, including one whose event is still pending in this round.
 */
#include "lib/loop.h"
#include "lib/common.h"
#include "lib/mem.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum loop_source_kind {
	LOOP_SOURCE_FD,
	LOOP_SOURCE_TIMER,
	LOOP_SOURCE_SIGNALS,
};

struct loop_source {
	struct loop *loop;
	enum loop_source_kind kind;
	int fd;
	bool dead;
	bool armed;
	loop_fd_fn *fd_fn;
	loop_timer_fn *timer_fn;
	void *data;
	struct loop_source *next; /* all sources, or the dead list */
};

struct signal_handler {
	int signo;
	loop_signal_fn *fn;
	void *data;
};

struct loop {
	int epfd;
	bool quit;
	int code;
	struct loop_source *sources;
	struct loop_source *dead;
	struct loop_source *signals;
	sigset_t sigmask;
	struct signal_handler handlers[32];
	size_t n_handlers;
};

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	sigemptyset(&l->sigmask);
	*out = l;
	return 0;
}

static void source_free(struct loop_source *s)
{
	if (s->kind != LOOP_SOURCE_FD && s->fd >= 0)
		close(s->fd); /* timers and the signalfd are ours */
	free(s);
}

static void free_dead(struct loop *l)
{
	while (l->dead) {
		struct loop_source *s = l->dead;

		l->dead = s->next;
		source_free(s);
	}
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	while (l->sources) {
		struct loop_source *s = l->sources;

		l->sources = s->next;
		source_free(s);
	}
	free_dead(l);
	close(l->epfd);
	free(l);
	return NULL;
}

static int add_source(struct loop *l, enum loop_source_kind kind, int fd, uint32_t events,
		      void *data, struct loop_source **out)
{
	struct loop_source *s = xcalloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events, .data.ptr = s };

	s->loop = l;
	s->kind = kind;
	s->fd = fd;
	s->data = data;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		free(s);
		return r;
	}
	s->next = l->sources;
	l->sources = s;
	*out = s;
	return 0;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn *fn, void *data,
		struct loop_source **out)
{
	struct loop_source *s;
	int r = add_source(l, LOOP_SOURCE_FD, fd, events, data, &s);

	if (r < 0)
		return r;
	s->fd_fn = fn;
	if (out)
		*out = s;
	return 0;
}

int loop_fd_events(struct loop_source *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	return epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? -errno : 0;
}

int loop_add_timer(struct loop *l, loop_timer_fn *fn, void *data, struct loop_source **out)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct loop_source *s;
	int r;

	if (fd < 0)
		return -errno;
	r = add_source(l, LOOP_SOURCE_TIMER, fd, EPOLLIN, data, &s);
	if (r < 0) {
		close(fd);
		return r;
	}
	s->timer_fn = fn;
	*out = s;
	return 0;
}

static struct timespec ms_to_ts(uint64_t ms)
{
	return (struct timespec){ .tv_sec = (time_t)(ms / 1000),
				  .tv_nsec = (long)(ms % 1000) * 1000000 };
}

void loop_timer_arm(struct loop_source *t, uint64_t after_ms, uint64_t interval_ms)
{
	struct itimerspec its = { .it_value = ms_to_ts(after_ms ? after_ms : 0),
				  .it_interval = ms_to_ts(interval_ms) };

	/* A zero it_value disarms: "now" is one nanosecond from now. */
	if (!after_ms)
		its.it_value.tv_nsec = 1;
	timerfd_settime(t->fd, 0, &its, NULL);
	t->armed = true;
}

void loop_timer_disarm(struct loop_source *t)
{
	struct itimerspec its = { 0 };
	uint64_t ticks;

	timerfd_settime(t->fd, 0, &its, NULL);
	/* Drop an expiry that is already pending, so it is not delivered. */
	(void)!read(t->fd, &ticks, sizeof(ticks));
	t->armed = false;
}

bool loop_timer_armed(const struct loop_source *t)
{
	return t->armed;
}

int loop_add_signal(struct loop *l, int signo, loop_signal_fn *fn, void *data)
{
	int fd;

	if (l->n_handlers == ARRAY_SIZE(l->handlers))
		return -ENOSPC;
	/*
	 * An inherited SIG_IGN would make the kernel drop the signal once it
	 * is unblocked, and an ignored SIGCHLD even reaps children behind our
	 * back: what we read from the signalfd gets the default disposition.
	 */
	signal(signo, SIG_DFL);
	sigaddset(&l->sigmask, signo);
	fd = signalfd(l->signals ? l->signals->fd : -1, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!l->signals) {
		int r = add_source(l, LOOP_SOURCE_SIGNALS, fd, EPOLLIN, NULL, &l->signals);

		if (r < 0) {
			close(fd);
			return r;
		}
	}
	l->handlers[l->n_handlers++] = (struct signal_handler){ signo, fn, data };
	return 0;
}

struct loop_source *loop_remove(struct loop_source *s)
{
	struct loop *l;

	if (!s || s->dead)
		return NULL;
	l = s->loop;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	for (struct loop_source **pp = &l->sources; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->dead = true;
	s->next = l->dead;
	l->dead = s;
	return NULL;
}

struct loop *loop_source_loop(const struct loop_source *s)
{
	return s->loop;
}

static void dispatch_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->signals->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < l->n_handlers; i++)
			if (l->handlers[i].signo == (int)si.ssi_signo)
				l->handlers[i].fn(l, &si, l->handlers[i].data);
	}
}

static void dispatch(struct loop_source *s, uint32_t events)
{
	uint64_t ticks;

	if (s->dead)
		return;
	switch (s->kind) {
	case LOOP_SOURCE_FD:
		s->fd_fn(s, s->fd, events, s->data);
		break;
	case LOOP_SOURCE_TIMER:
		if (read(s->fd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
			break; /* disarmed after the event was queued */
		{
			struct itimerspec cur;

			timerfd_gettime(s->fd, &cur);
			s->armed = cur.it_interval.tv_sec || cur.it_interval.tv_nsec;
		}
		s->timer_fn(s, s->data);
		break;
	case LOOP_SOURCE_SIGNALS:
		dispatch_signals(s->loop);
		break;
	}
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		dispatch(evs[i].data.ptr, evs[i].events);
	free_dead(l);
	return n;
}

int loop_run(struct loop *l)
{
	l->quit = false;
	while (!l->quit) {
		int r = loop_run_once(l, -1);

		if (r < 0)
			return r;
	}
	return l->code;
}

void loop_quit(struct loop *l, int code)
{
	l->quit = true;
	l->code = code;
}
