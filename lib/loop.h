/* SPDX-License-Identifier: MIT */
/*
 * The event loop.
 *
 * One thread, one epoll instance. Sources are fds (with a callback),
 * timers (one timerfd each) and signals (one signalfd for all). Callbacks
 * run one at a time and must not block. A source may be removed at any
 * time, also from inside any callback: it is freed after the current
 * dispatch round, and no further event is delivered to it.
 */
#ifndef SUP_LIB_LOOP_H
#define SUP_LIB_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "lib/common.h"

struct loop;
struct loop_source;

typedef void loop_fd_fn(struct loop_source *src, int fd, uint32_t events, void *data);
typedef void loop_timer_fn(struct loop_source *src, void *data);
typedef void loop_signal_fn(struct loop *loop, const struct signalfd_siginfo *si, void *data);

/* loop_new() - a new loop. Return: 0 or -errno. */
int loop_new(struct loop **out) _must_check_;
/* loop_free() - free the loop and every source still in it. Return: NULL. */
struct loop *loop_free(struct loop *loop);

/**
 * loop_add_fd() - watch @fd for @events (EPOLLIN, EPOLLOUT, ...).
 * @loop: the loop.
 * @fd: the descriptor; the caller still owns it (close it after removing).
 * @events: epoll events.
 * @fn: called with the events that fired.
 * @data: passed to @fn.
 * @out: receives the source (may be NULL).
 *
 * Return: 0 or -errno.
 */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn *fn, void *data,
		struct loop_source **out) _must_check_;
/* loop_fd_events() - change the events a fd source waits for. Return: 0 or -errno. */
int loop_fd_events(struct loop_source *src, uint32_t events);

/**
 * loop_add_timer() - a timer, initially disarmed.
 * @loop: the loop.
 * @fn: called each time it fires.
 * @data: passed to @fn.
 * @out: receives the timer source.
 *
 * Return: 0 or -errno.
 */
int loop_add_timer(struct loop *loop, loop_timer_fn *fn, void *data,
		   struct loop_source **out) _must_check_;
/* loop_timer_arm() - fire after @after_ms, then every @interval_ms (0: once). */
void loop_timer_arm(struct loop_source *timer, uint64_t after_ms, uint64_t interval_ms);
void loop_timer_disarm(struct loop_source *timer);
bool loop_timer_armed(const struct loop_source *timer);

/**
 * loop_add_signal() - deliver @signo through the loop's signalfd.
 * @loop: the loop.
 * @signo: the signal; it is blocked for the process (see loop_block_signals()).
 * @fn: called once per delivered signal.
 * @data: passed to @fn.
 *
 * Return: 0 or -errno.
 */
int loop_add_signal(struct loop *loop, int signo, loop_signal_fn *fn, void *data) _must_check_;

/* loop_remove() - remove and (later) free a source. NULL is fine. Return: NULL. */
struct loop_source *loop_remove(struct loop_source *src);
struct loop *loop_source_loop(const struct loop_source *src);

/* loop_run() - dispatch until loop_quit(). Return: the code given to loop_quit(). */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop, int code);
/* loop_run_once() - wait up to @timeout_ms and dispatch one round (tests). */
int loop_run_once(struct loop *loop, int timeout_ms);

/* now_ms() - CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

#endif
